//! The `environ` dictionary of PEP 3333 for one request: CGI variables, `HTTP_*` fields and the `wsgi.*`
//! keys.
//!
//! What does not change between requests (`wsgi.version`, `wsgi.errors`, `SCRIPT_NAME`, ...) is built once
//! at load into a template dictionary that each request copies, so a request adds only its own items.
//! Text follows PEP 3333's "native strings": every value is a `str` whose characters are the bytes received
//! (latin-1), so a non-ASCII path or field value reaches the application exactly as sent.

use std::borrow::Cow;

use plugin_api::{percent, Error, Request, Version};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyTuple};

use crate::error_log::ErrorLog;
use crate::file_wrapper::FileWrapper;
use crate::input::Input;

/// `SERVER_NAME` and `SERVER_PORT` when the request has no `Host` field (only HTTP/1.0 may omit it).
const NO_HOST: (&str, &str) = ("localhost", "80");

/// The port a `Host` without one means (RFC 9110 §4.2.1: the scheme's default, 80 for http).
const DEFAULT_PORT: &str = "80";

/// What every request's `environ` starts from.
pub struct Environ {
    template: Py<PyDict>,
    script_name: String,
}

impl Environ {
    /// The template for an application mounted at `script_name` (empty at the root).
    pub fn new(py: Python<'_>, script_name: &str) -> PyResult<Environ> {
        let template = PyDict::new(py);
        template.set_item("wsgi.version", PyTuple::new(py, [1, 0])?)?;
        template.set_item("wsgi.url_scheme", "http")?;
        template.set_item("wsgi.errors", Bound::new(py, ErrorLog::default())?)?;
        template.set_item("wsgi.multithread", true)?;
        template.set_item("wsgi.multiprocess", false)?;
        template.set_item("wsgi.run_once", false)?;
        // The input ends where the body ends (plugd frames it): reading to EOF is safe, which a chunked upload
        // (no CONTENT_LENGTH) needs (werkzeug reads such a body only when this is true).
        template.set_item("wsgi.input_terminated", true)?;
        template.set_item("wsgi.file_wrapper", py.get_type::<FileWrapper>())?;
        template.set_item("SCRIPT_NAME", script_name)?;
        template.set_item(
            "SERVER_SOFTWARE",
            concat!("plugd-wsgi/", env!("CARGO_PKG_VERSION")),
        )?;
        Ok(Environ {
            template: template.unbind(),
            script_name: script_name.to_owned(),
        })
    }

    /// `PATH_INFO` as bytes: the path after `SCRIPT_NAME`, percent-decoded. A malformed `%` is a 400, as for
    /// every route of plugd.
    pub fn path_info<'r>(&self, req: &Request<'r>) -> Result<Cow<'r, [u8]>, Error> {
        let path = req.path();
        let below_mount = path.strip_prefix(&self.script_name).unwrap_or(path);
        percent::decode(below_mount.as_bytes())
            .ok_or_else(|| Error::bad_request("malformed percent-encoding in the path"))
    }

    /// The `environ` of `req`, whose decoded `PATH_INFO` is `path_info` and whose body, of the declared
    /// `content_length` (none when chunked), `input` reads.
    pub fn for_request<'py>(
        &self,
        py: Python<'py>,
        req: &Request<'_>,
        path_info: &[u8],
        content_length: Option<u64>,
        input: Input,
    ) -> PyResult<Bound<'py, PyDict>> {
        let environ = self.template.bind(py).copy()?;
        environ.set_item(intern!(py, "REQUEST_METHOD"), req.method())?;
        environ.set_item(intern!(py, "PATH_INFO"), latin1(py, path_info))?;
        environ.set_item(intern!(py, "QUERY_STRING"), req.query().unwrap_or(""))?;
        let protocol = match req.version() {
            Version::Http10 => intern!(py, "HTTP/1.0"),
            Version::Http11 => intern!(py, "HTTP/1.1"),
        };
        environ.set_item(intern!(py, "SERVER_PROTOCOL"), protocol)?;
        let peer = req.peer();
        environ.set_item(intern!(py, "REMOTE_ADDR"), peer.ip().to_string())?;
        environ.set_item(intern!(py, "REMOTE_PORT"), peer.port().to_string())?;
        let host = req.header("Host").map(|host| latin1(py, host).to_string());
        let (name, port) = host.as_deref().map_or(NO_HOST, split_host);
        environ.set_item(intern!(py, "SERVER_NAME"), name)?;
        environ.set_item(intern!(py, "SERVER_PORT"), port)?;
        add_fields(py, &environ, req)?;
        let content_length =
            content_length.filter(|&n| n > 0 || req.header("Content-Length").is_some());
        if let Some(length) = content_length {
            environ.set_item(intern!(py, "CONTENT_LENGTH"), length.to_string())?;
        }
        environ.set_item(intern!(py, "wsgi.input"), Bound::new(py, input)?)?;
        Ok(environ)
    }
}

/// `CONTENT_TYPE` and one `HTTP_*` item per field name, repeated fields joined (RFC 9110 §5.3).
fn add_fields(py: Python<'_>, environ: &Bound<'_, PyDict>, req: &Request<'_>) -> PyResult<()> {
    for field in req.headers() {
        let name = field.name();
        if name.eq_ignore_ascii_case("Content-Type") {
            environ.set_item(intern!(py, "CONTENT_TYPE"), latin1(py, field.value()))?;
            continue;
        }
        if name.eq_ignore_ascii_case("Content-Length") || name.contains('_') {
            // CONTENT_LENGTH is the length plugd framed the body by. A name with `_` would share its key with
            // the same name spelled with `-`, so a client could forge one with the other: dropped, as nginx does.
            continue;
        }
        let key = PyString::new(py, &cgi_name(name));
        let value = latin1(py, field.value());
        match environ.get_item(&key)? {
            Some(earlier) => {
                // Cookie lines join with "; " (RFC 6265 §5.4), every other field with ", ".
                let separator = if name.eq_ignore_ascii_case("Cookie") {
                    "; "
                } else {
                    ", "
                };
                let joined = format!("{}{separator}{}", earlier.str()?, value);
                environ.set_item(key, joined)?;
            }
            None => environ.set_item(key, value)?,
        }
    }
    Ok(())
}

/// `HTTP_` and the field name in capitals with `-` as `_` (CGI, RFC 3875 §4.1.18), in one allocation.
fn cgi_name(name: &str) -> String {
    let mut key = String::with_capacity("HTTP_".len() + name.len());
    key.push_str("HTTP_");
    key.extend(name.chars().map(|c| match c {
        '-' => '_',
        c => c.to_ascii_uppercase(),
    }));
    key
}

/// Bytes as a `str` of the same code points (latin-1): PEP 3333's native string.
fn latin1<'py>(py: Python<'py>, bytes: &[u8]) -> Bound<'py, PyString> {
    match std::str::from_utf8(bytes) {
        Ok(text) if text.is_ascii() => PyString::new(py, text),
        _ => PyString::new(
            py,
            &bytes.iter().map(|&b| char::from(b)).collect::<String>(),
        ),
    }
}

/// `Host` as `(SERVER_NAME, SERVER_PORT)`: `example.com:8080`, `[::1]:8080`, or a name alone (port 80).
fn split_host(host: &str) -> (&str, &str) {
    match host.rsplit_once(':') {
        Some((name, port))
            if !name.is_empty() && !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) =>
        {
            (name, port)
        }
        _ => (host, DEFAULT_PORT),
    }
}

#[cfg(test)]
mod tests {
    use super::{cgi_name, split_host};

    #[test]
    fn field_names_become_cgi_keys() {
        assert_eq!(cgi_name("Content-MD5"), "HTTP_CONTENT_MD5");
        assert_eq!(cgi_name("x-forwarded-for"), "HTTP_X_FORWARDED_FOR");
        assert_eq!(cgi_name("Host"), "HTTP_HOST");
    }

    #[test]
    fn host_splits_into_name_and_port() {
        assert_eq!(split_host("example.com:8080"), ("example.com", "8080"));
        assert_eq!(split_host("example.com"), ("example.com", "80"));
        assert_eq!(split_host("[::1]:9000"), ("[::1]", "9000"));
        assert_eq!(split_host("[::1]"), ("[::1]", "80"));
        assert_eq!(split_host("example.com:"), ("example.com:", "80"));
    }
}
