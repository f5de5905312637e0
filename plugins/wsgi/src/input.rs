//! `wsgi.input`: the request body as a binary file the application reads (PEP 3333 "Input and Error
//! Streams": `read`, `readline`, `readlines`, iteration).

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};

/// The body and how far the application has read it.
#[pyclass(module = "plugd")]
pub struct Input {
    body: Vec<u8>,
    position: usize,
}

impl Input {
    pub fn new(body: &[u8]) -> Input {
        Input {
            body: body.to_vec(),
            position: 0,
        }
    }

    /// The unread bytes.
    fn rest(&self) -> &[u8] {
        &self.body[self.position..]
    }

    /// Takes up to `limit` unread bytes (all of them for `None` or a negative limit), `PEP 3333`'s `size`.
    fn take(&mut self, limit: Option<isize>) -> &[u8] {
        let available = self.rest().len();
        let n = match limit {
            Some(limit) if limit >= 0 => available.min(limit as usize),
            _ => available,
        };
        let start = self.position;
        self.position += n;
        &self.body[start..start + n]
    }

    /// The length of the next line, its `\n` included, at most `limit` bytes.
    fn line_length(&self, limit: Option<isize>) -> isize {
        let rest = self.rest();
        let line = rest
            .iter()
            .position(|&b| b == b'\n')
            .map_or(rest.len(), |i| i + 1);
        match limit {
            Some(limit) if limit >= 0 => line.min(limit as usize) as isize,
            _ => line as isize,
        }
    }
}

#[pymethods]
impl Input {
    /// Up to `size` bytes; everything left without one. `b""` at the end.
    #[pyo3(signature = (size = None))]
    fn read<'py>(&mut self, py: Python<'py>, size: Option<isize>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.take(size))
    }

    /// One line, `\n` included, or at most `size` bytes of it; `b""` at the end.
    #[pyo3(signature = (size = None))]
    fn readline<'py>(&mut self, py: Python<'py>, size: Option<isize>) -> Bound<'py, PyBytes> {
        let length = self.line_length(size);
        PyBytes::new(py, self.take(Some(length)))
    }

    /// The remaining lines; with a positive `hint`, stops after the line that reaches `hint` bytes.
    #[pyo3(signature = (hint = None))]
    fn readlines<'py>(
        &mut self,
        py: Python<'py>,
        hint: Option<isize>,
    ) -> PyResult<Bound<'py, PyList>> {
        let lines = PyList::empty(py);
        let budget = hint.filter(|&h| h > 0).map(|h| h as usize);
        let mut total = 0;
        while !self.rest().is_empty() && budget.is_none_or(|b| total < b) {
            let line = self.readline(py, None);
            total += line.as_bytes().len();
            lines.append(line)?;
        }
        Ok(lines)
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    /// The next line; iteration stops at the end of the body.
    fn __next__<'py>(&mut self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        if self.rest().is_empty() {
            return None;
        }
        Some(self.readline(py, None))
    }
}

#[cfg(test)]
mod tests {
    use super::Input;

    #[test]
    fn reads_take_what_is_asked_and_stop_at_the_end() {
        let mut input = Input::new(b"ab\ncd\nef");
        assert_eq!(input.take(Some(1)), b"a");
        assert_eq!(input.line_length(None), 2);
        assert_eq!(input.take(Some(2)), b"b\n");
        assert_eq!(input.line_length(Some(1)), 1);
        assert_eq!(input.take(Some(-1)), b"cd\nef");
        assert_eq!(input.take(None), b"");
        assert_eq!(input.line_length(None), 0);
    }
}
