//! `wsgi.errors`: a text stream whose lines go to plugd's log (PEP 3333 "Input and Error Streams").
//!
//! One stream serves every request, so a line written in pieces (`print(..., file=errors)` writes the text
//! and the `\n` separately) is held until its end; concurrent writers can interleave pieces, never lose them.

use std::sync::Mutex;

use plugin_api::log;
use pyo3::prelude::*;

/// The text written since the last complete line.
#[pyclass(module = "plugd", frozen)]
#[derive(Default)]
pub struct ErrorLog {
    pending: Mutex<String>,
}

impl ErrorLog {
    fn pending(&self) -> std::sync::MutexGuard<'_, String> {
        // A panic while holding the lock leaves a string, which is still valid text.
        self.pending
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[pymethods]
impl ErrorLog {
    /// Logs each complete line of `text` at error level; keeps the rest for the next write.
    fn write(&self, text: &str) -> usize {
        let mut pending = self.pending();
        pending.push_str(text);
        while let Some(end) = pending.find('\n') {
            log::error!("wsgi.errors: {}", &pending[..end]);
            pending.drain(..=end);
        }
        text.chars().count()
    }

    fn writelines(&self, lines: &Bound<'_, PyAny>) -> PyResult<()> {
        for line in lines.try_iter()? {
            self.write(line?.extract()?);
        }
        Ok(())
    }

    /// Logs a partial line, if any.
    fn flush(&self) {
        let mut pending = self.pending();
        if !pending.is_empty() {
            log::error!("wsgi.errors: {pending}");
            pending.clear();
        }
    }
}
