//! `wsgi.file_wrapper` (PEP 3333 "Optional Platform-Specific File Handling"): wraps a file-like object as
//! an iterable of blocks. [`crate::body`] reads a wrapped file in one `read()` instead of block by block.

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
    /// Everything left in the file, read at once.
    pub fn read_all<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.file.bind(py).call_method0(intern!(py, "read"))
    }
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
