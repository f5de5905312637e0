//! `start_response(status, response_headers, exc_info=None)` and the `write` callable it returns (PEP 3333
//! "The start_response() Callable"), and the response they collect.
//!
//! The status and fields are checked here, before plugd writes them: a field value with CR or LF would
//! let the application (or a client whose input it echoes) split the response, so it raises `ValueError`
//! in the application, which becomes a 500.

use plugin_api::Response;
use pyo3::exceptions::{PyAssertionError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

/// The status codes an application may answer with: final responses (RFC 9110 §15). A 1xx is the
/// server's business (plugd sends `100 Continue` itself).
const FINAL_STATUSES: std::ops::RangeInclusive<u16> = 200..=599;

/// One request's `start_response`: what the application has said so far.
#[pyclass(module = "plugd")]
#[derive(Default)]
pub struct StartResponse {
    /// Whether `start_response` was called.
    started: bool,
    /// The status and fields, until plugd takes them.
    head: Option<Head>,
    body: Vec<u8>,
    /// Whether body bytes were produced: from then on the status is final (an `exc_info` re-raises).
    body_started: bool,
}

/// The status and fields of the latest `start_response` call.
struct Head {
    status: u16,
    fields: Vec<(String, String)>,
    /// The `Content-Length` the application declared, if it did.
    length: Option<u64>,
}

impl StartResponse {
    /// Appends body bytes from `write` or the returned iterable; both need `start_response` first.
    pub fn push_body(&mut self, bytes: &[u8]) -> PyResult<()> {
        if !self.started {
            return Err(PyAssertionError::new_err(
                "the application produced body data before calling start_response",
            ));
        }
        if !bytes.is_empty() {
            self.body_started = true;
            self.body.extend_from_slice(bytes);
        }
        Ok(())
    }

    /// Whether body bytes are waiting in the buffer.
    pub fn has_body(&self) -> bool {
        !self.body.is_empty()
    }

    /// Whether the buffer holds the whole body the application declared with `Content-Length`.
    pub fn is_complete(&self) -> bool {
        self.declared_length() == Some(self.body.len() as u64)
    }

    /// The `Content-Length` the application declared.
    pub fn declared_length(&self) -> Option<u64> {
        self.head.as_ref().and_then(|head| head.length)
    }

    /// The buffered body bytes, leaving the buffer empty.
    pub fn take_body(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.body)
    }

    /// The status and fields, as a response without a body.
    pub fn take_head(&mut self) -> PyResult<Response> {
        let Some(head) = self.head.take() else {
            return Err(PyAssertionError::new_err(
                "the application returned without calling start_response",
            ));
        };
        let mut response = Response::empty(head.status);
        for (name, value) in head.fields {
            response = response.with_header(name, value);
        }
        Ok(response)
    }

    /// The complete response, once the iterable is exhausted.
    pub fn take_response(&mut self) -> PyResult<Response> {
        let head = self.take_head()?;
        Ok(head.with_body(self.take_body()))
    }

    fn start(
        &mut self,
        status: &str,
        fields: Vec<(String, String)>,
        exc_info: Option<Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        match (self.started, exc_info) {
            (true, None) => {
                return Err(PyAssertionError::new_err(
                    "start_response called a second time without exc_info",
                ))
            }
            // PEP 3333: once the status may have reached the client, re-raise the application's error.
            (true, Some(exc_info)) if self.body_started => {
                return Err(PyErr::from_value(exc_info.get_item(1)?))
            }
            _ => {}
        }
        let mut length = None;
        for (name, value) in &fields {
            check_field(name, value)?;
            if name.eq_ignore_ascii_case("Content-Length") {
                length = Some(value.trim().parse().map_err(|_| {
                    PyValueError::new_err(format!("invalid Content-Length {value:?}"))
                })?);
            }
        }
        self.head = Some(Head {
            status: parse_status(status)?,
            fields,
            length,
        });
        self.started = true;
        Ok(())
    }
}

#[pymethods]
impl StartResponse {
    /// Records the status and fields; returns `write`.
    #[pyo3(signature = (status, response_headers, exc_info = None))]
    fn __call__<'py>(
        slf: &Bound<'py, Self>,
        status: &str,
        response_headers: Vec<(String, String)>,
        exc_info: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let exc_info = exc_info.filter(|info| !info.is_none());
        slf.borrow_mut().start(status, response_headers, exc_info)?;
        slf.getattr(intern!(slf.py(), "write"))
    }

    /// The imperative body API of PEP 3333, for applications that predate iterables.
    fn write(&mut self, data: &Bound<'_, PyBytes>) -> PyResult<()> {
        self.push_body(data.as_bytes())
    }
}

/// `"200 OK"` -> 200. PEP 3333: three digits, a space, a reason phrase (which plugd replaces with its own).
fn parse_status(status: &str) -> PyResult<u16> {
    let invalid = || PyValueError::new_err(format!("invalid WSGI status {status:?}"));
    let (code, _reason) = status.split_once(' ').ok_or_else(invalid)?;
    if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    let code: u16 = code.parse().map_err(|_| invalid())?;
    if !FINAL_STATUSES.contains(&code) {
        return Err(PyValueError::new_err(format!(
            "WSGI status {status:?} is not a final status ({}-{})",
            FINAL_STATUSES.start(),
            FINAL_STATUSES.end()
        )));
    }
    Ok(code)
}

/// A field name must be a token (RFC 9110 §5.1), a value free of CR, LF and NUL (§5.5).
fn check_field(name: &str, value: &str) -> PyResult<()> {
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if name.is_empty() || !name.bytes().all(token) {
        return Err(PyValueError::new_err(format!(
            "invalid response header name {name:?}"
        )));
    }
    if value.chars().any(|c| matches!(c, '\r' | '\n' | '\0')) {
        return Err(PyValueError::new_err(format!(
            "response header {name} has CR, LF or NUL in its value {value:?}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_status;

    #[test]
    fn statuses_are_three_digits_a_space_and_a_reason() {
        assert_eq!(parse_status("200 OK").ok(), Some(200));
        assert_eq!(parse_status("404 Not Found").ok(), Some(404));
        assert_eq!(parse_status("599 x").ok(), Some(599));
        for bad in [
            "200",
            "200OK",
            "2000 x",
            "abc x",
            "100 Continue",
            "600 x",
            " 200 OK",
            "",
        ] {
            assert!(parse_status(bad).is_err(), "{bad:?}");
        }
    }
}
