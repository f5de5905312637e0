//! `wsgi.file_wrapper` (PEP 3333 "Optional Platform-Specific File Handling"): wraps a file-like object as
//! an iterable of blocks. [`crate::body`] hands a wrapped real file to plugd, which sends it with
//! `sendfile`, and reads any other file-like object in one `read()` instead of block by block.

use std::fs::File;
use std::os::fd::{FromRawFd, RawFd};

use plugin_api::stream::FileBody;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

/// The block size when the application gives none.
const DEFAULT_BLOCK_SIZE: usize = 8192;

/// A file-like object and the size of the blocks iteration reads.
#[pyclass(module = "plugd", frozen)]
pub struct FileWrapper {
    file: Py<PyAny>,
    block_size: usize,
}

impl FileWrapper {
    /// The wrapped object as a file plugd sends itself, when it is a binary file object (`io.RawIOBase` or
    /// `io.BufferedIOBase`: a text file yields `str`, which is no body) over a regular file: from its
    /// current position (`tell()`, which counts a buffered reader's read-ahead) to its end, or for
    /// `declared` bytes when the application declared fewer (PEP 3333: no more than `Content-Length`).
    /// The descriptor is duplicated, so the application's `close()` leaves plugd's copy open.
    pub fn file_body(&self, py: Python<'_>, declared: Option<u64>) -> PyResult<Option<FileBody>> {
        let file = self.file.bind(py);
        let io = py.import(intern!(py, "io"))?;
        let binary = (
            io.getattr(intern!(py, "RawIOBase"))?,
            io.getattr(intern!(py, "BufferedIOBase"))?,
        );
        if !file.is_instance(binary.into_pyobject(py)?.as_any())? {
            return Ok(None);
        }
        let Ok(fd) = file
            .call_method0(intern!(py, "fileno"))
            .and_then(|fd| fd.extract::<RawFd>())
        else {
            return Ok(None);
        };
        let position: u64 = file.call_method0(intern!(py, "tell"))?.extract()?;
        let Some(copy) = duplicate(fd) else {
            return Ok(None);
        };
        let size = match copy.metadata() {
            Ok(metadata) if metadata.is_file() => metadata.len(),
            _ => return Ok(None),
        };
        let rest = size.saturating_sub(position);
        let len = declared.map_or(rest, |declared| declared.min(rest));
        Ok(Some(FileBody::new(copy, position, len)))
    }

    /// Everything left in the file, read at once.
    pub fn read_all<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.file.bind(py).call_method0(intern!(py, "read"))
    }
}

/// A descriptor of our own for the file `fd` names (close-on-exec), or `None` when `fd` is not open.
fn duplicate(fd: RawFd) -> Option<File> {
    // SAFETY: F_DUPFD_CLOEXEC only reads `fd` (any number is safe to pass) and returns a new descriptor.
    let copy = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
    // SAFETY: `copy` is a descriptor just made for us, owned by nobody else.
    (copy >= 0).then(|| unsafe { File::from_raw_fd(copy) })
}

#[pymethods]
impl FileWrapper {
    #[new]
    #[pyo3(signature = (filelike, blksize = DEFAULT_BLOCK_SIZE))]
    fn new(filelike: Py<PyAny>, blksize: usize) -> FileWrapper {
        FileWrapper {
            file: filelike,
            block_size: blksize.max(1),
        }
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    /// The next block; iteration stops at the end of the file.
    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let block = self
            .file
            .bind(py)
            .call_method1(intern!(py, "read"), (self.block_size,))?;
        let block = block.downcast_into::<PyBytes>()?;
        Ok((!block.as_bytes().is_empty()).then_some(block))
    }

    /// Closes the file, if it has a `close` (PEP 3333: the server calls the iterable's `close`).
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let file = self.file.bind(py);
        if file.hasattr(intern!(py, "close"))? {
            file.call_method0(intern!(py, "close"))?;
        }
        Ok(())
    }
}
