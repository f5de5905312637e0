//! The application's return value: an iterable of byte strings, drained into the response and then
//! closed (PEP 3333: the server calls `close()` whenever the iterable has one, even when iterating raised).

use pyo3::exceptions::PyTypeError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};

use crate::file_wrapper::FileWrapper;
use crate::start_response::StartResponse;

/// Moves every chunk of `result` into `start_response`'s body, then closes `result`. The first error
/// (iterating, a chunk that is not `bytes`, or `close` itself) is returned.
pub fn drain(result: &Bound<'_, PyAny>, start_response: &Bound<'_, StartResponse>) -> PyResult<()> {
    let drained = collect(result, start_response);
    let closed = close(result);
    drained.and(closed)
}

fn collect(result: &Bound<'_, PyAny>, start_response: &Bound<'_, StartResponse>) -> PyResult<()> {
    let py = result.py();
    if let Ok(list) = result.downcast::<PyList>() {
        // The common case (`return [b"Hello"]`): no iterator object.
        for chunk in list.iter() {
            push(&chunk, start_response)?;
        }
        return Ok(());
    }
    if let Ok(wrapper) = result.downcast::<FileWrapper>() {
        return push(&wrapper.get().read_all(py)?, start_response);
    }
    for chunk in result.try_iter()? {
        push(&chunk?, start_response)?;
    }
    Ok(())
}

fn push(chunk: &Bound<'_, PyAny>, start_response: &Bound<'_, StartResponse>) -> PyResult<()> {
    let bytes = chunk.downcast::<PyBytes>().map_err(|_| {
        let kind = chunk
            .get_type()
            .name()
            .map_or("?".to_owned(), |n| n.to_string());
        PyTypeError::new_err(format!("the application's body holds a {kind}, not bytes"))
    })?;
    start_response.borrow_mut().push_body(bytes.as_bytes())
}

fn close(result: &Bound<'_, PyAny>) -> PyResult<()> {
    let py = result.py();
    if result.hasattr(intern!(py, "close"))? {
        result.call_method0(intern!(py, "close"))?;
    }
    Ok(())
}
