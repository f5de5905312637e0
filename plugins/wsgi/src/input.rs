//! `wsgi.input`: the request body as a binary file the application reads (PEP 3333 "Input and Error
//! Streams": `read`, `readline`, `readlines`, iteration), read from the connection as the application asks,
//! so an upload of any size passes through a small buffer (docs/ARCHITECTURE.md §19.6).
//!
//! The body comes from plugd's [`BodyReader`], which lives only for the duration of the route call. The
//! application may keep `wsgi.input` longer (a streamed response's generator may read it): the reader is
//! lent through a [`BodySlot`] that the route revokes before it returns, after which reading raises
//! `ValueError`. While a read waits for the network, the GIL is released.

use std::io::Read;
use std::sync::{Arc, Mutex, MutexGuard};

use plugin_api::stream::BodyReader;
use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};

/// How much a line or a `read()` without size asks the connection for at a time.
const READ_AHEAD: usize = 16 * 1024;

/// The route's body reader, lent to Python for the length of the route call.
pub struct BodySlot(Mutex<Option<ReaderPtr>>);

/// A pointer to the route's [`BodyReader`], with its lifetime erased.
#[derive(Clone, Copy)]
struct ReaderPtr(*mut BodyReader<'static>);

// SAFETY: the pointer is dereferenced only while the slot holds it, under the slot's lock, by one thread at a
// time; the reader reads from the host's connection, which any worker thread may do.
unsafe impl Send for ReaderPtr {}

/// A reader lent to Python; dropping the loan (at the end of the route call, also when it unwinds) revokes it.
pub struct Loan<'r> {
    slot: Arc<BodySlot>,
    _reader: std::marker::PhantomData<&'r mut BodyReader<'r>>,
}

impl Loan<'_> {
    /// The slot `wsgi.input` reads through.
    pub fn slot(&self) -> Arc<BodySlot> {
        Arc::clone(&self.slot)
    }
}

impl Drop for Loan<'_> {
    fn drop(&mut self) {
        *self.slot.lock() = None;
    }
}

impl BodySlot {
    /// Lends `reader` for as long as the returned [`Loan`] lives (at most as long as the borrow).
    pub fn lend<'r>(reader: &'r mut BodyReader<'_>) -> Loan<'r> {
        let ptr = (reader as *mut BodyReader<'_>).cast::<BodyReader<'static>>();
        Loan {
            slot: Arc::new(BodySlot(Mutex::new(Some(ReaderPtr(ptr))))),
            _reader: std::marker::PhantomData,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Option<ReaderPtr>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Reads up to `buf.len()` bytes from the connection, without the GIL; 0 at the end of the body.
    fn read(&self, py: Python<'_>, buf: &mut [u8]) -> PyResult<usize> {
        let slot = self.lock();
        let Some(reader) = *slot else {
            return Err(PyValueError::new_err(
                "wsgi.input is closed: the request body can be read only until the application returns",
            ));
        };
        let read = py.allow_threads(move || {
            let reader = reader;
            // SAFETY: the slot still holds the pointer, and its lock (held until this returns) keeps the
            // loan's end, and so the end of the route call that owns the reader, from happening meanwhile.
            unsafe { (*reader.0).read(buf) }
        });
        drop(slot);
        read.map_err(|err| PyOSError::new_err(format!("reading the request body: {err}")))
    }
}

/// The body: bytes read ahead of the application, and the connection for the rest.
#[pyclass(module = "plugd")]
pub struct Input {
    slot: Arc<BodySlot>,
    /// Bytes read from the connection and not yet given to the application, from `start` on.
    buffer: Vec<u8>,
    start: usize,
    /// The connection said the body is over.
    at_end: bool,
}

impl Input {
    pub fn new(slot: Arc<BodySlot>) -> Input {
        Input {
            slot,
            buffer: Vec::new(),
            start: 0,
            at_end: false,
        }
    }

    fn buffered(&self) -> &[u8] {
        &self.buffer[self.start..]
    }

    /// Reads more into the buffer; `false` at the end of the body.
    fn fill(&mut self, py: Python<'_>, want: usize) -> PyResult<bool> {
        if self.at_end {
            return Ok(false);
        }
        if self.start > 0 {
            self.buffer.drain(..self.start);
            self.start = 0;
        }
        let old = self.buffer.len();
        self.buffer.resize(old + want.max(1), 0);
        let n = self.slot.read(py, &mut self.buffer[old..]);
        let n = n.inspect_err(|_| self.buffer.truncate(old))?;
        self.buffer.truncate(old + n);
        self.at_end = n == 0;
        Ok(n > 0)
    }

    /// Takes `n` buffered bytes.
    fn take<'py>(&mut self, py: Python<'py>, n: usize) -> Bound<'py, PyBytes> {
        let n = n.min(self.buffered().len());
        let bytes = PyBytes::new(py, &self.buffer[self.start..self.start + n]);
        self.start += n;
        bytes
    }

    /// `size` as PEP 3333's `read(size)` means it: `None` or negative for "everything".
    fn limit(size: Option<isize>) -> Option<usize> {
        size.and_then(|size| usize::try_from(size).ok())
    }
}

#[pymethods]
impl Input {
    /// Up to `size` bytes (fewer only at the end of the body); everything left without one. `b""` at the end.
    #[pyo3(signature = (size = None))]
    fn read<'py>(&mut self, py: Python<'py>, size: Option<isize>) -> PyResult<Bound<'py, PyBytes>> {
        let limit = Input::limit(size);
        while limit.is_none_or(|limit| self.buffered().len() < limit) {
            let want = limit.map_or(READ_AHEAD, |limit| limit - self.buffered().len());
            if !self.fill(py, want.min(READ_AHEAD))? {
                break;
            }
        }
        let n = limit.unwrap_or(usize::MAX);
        Ok(self.take(py, n))
    }

    /// One line, `\n` included, or at most `size` bytes of it; `b""` at the end.
    #[pyo3(signature = (size = None))]
    fn readline<'py>(
        &mut self,
        py: Python<'py>,
        size: Option<isize>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let limit = Input::limit(size).unwrap_or(usize::MAX);
        loop {
            if let Some(i) = self.buffered().iter().position(|&b| b == b'\n') {
                return Ok(self.take(py, (i + 1).min(limit)));
            }
            if self.buffered().len() >= limit || !self.fill(py, READ_AHEAD)? {
                return Ok(self.take(py, limit));
            }
        }
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
        while budget.is_none_or(|b| total < b) {
            let line = self.readline(py, None)?;
            if line.as_bytes().is_empty() {
                break;
            }
            total += line.as_bytes().len();
            lines.append(line)?;
        }
        Ok(lines)
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    /// The next line; iteration stops at the end of the body.
    fn __next__<'py>(&mut self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let line = self.readline(py, None)?;
        Ok((!line.as_bytes().is_empty()).then_some(line))
    }
}
