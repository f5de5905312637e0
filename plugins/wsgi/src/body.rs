//! The application's return value: an iterable of byte strings (PEP 3333 "The Application/Framework
//! Side"), answered whole when it is already complete, streamed as it is produced otherwise, and closed in
//! either case (the server calls `close()` whenever the iterable has one, even when iterating raised, and
//! when the client left before the end).
//!
//! A `wsgi.file_wrapper` around a real file (a binary file object with a `fileno()` of a regular file) is
//! handed to plugd as the file itself, from its current position, which plugd sends with `sendfile`: the
//! bytes never pass through Python or this plugin. Any other file-like object is read whole.
//!
//! Whole: a list or tuple (`return [b"Hello"]`), a `wsgi.file_wrapper`, and any iterable whose first bytes
//! already make the `Content-Length` the application declared (a framework's ordinary response: werkzeug wraps
//! its body list in an iterator). Anything else (a generator, Flask's `stream_with_context`) is streamed: plugd
//! sends the head with the first non-empty chunk, then asks for the next chunk whenever the client can take
//! it (docs/ARCHITECTURE.md §19.6).
//!
//! Every step (the application call, each `next`, `close`) runs in the request's own context
//! ([`RequestContext`]): [`begin`] is called inside it, and a streamed body enters it again for each chunk.

use std::sync::Arc;

use plugin_api::stream::{FileBody, Produce, Produced, Waker};
use plugin_api::{log, Response};
use pyo3::exceptions::PyTypeError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyIterator, PyList, PyTuple};

use crate::file_wrapper::FileWrapper;
use crate::interpreter;
use crate::python_threads::PythonThreads;
use crate::request_context::RequestContext;
use crate::start_response::StartResponse;

/// The body an application returned.
pub enum Body {
    /// Complete: in `start_response`'s buffer, and closed.
    Whole,
    /// A `wsgi.file_wrapper` around a real file, closed: plugd sends the file with `sendfile`.
    File(FileBody),
    /// The rest is produced as the client takes it; `start_response`'s buffer holds the first chunk.
    Streamed(IterableBody),
}

/// How far [`read_start`] got.
enum Start<'py> {
    Whole,
    File(FileBody),
    Streamed(Bound<'py, PyIterator>),
}

/// Reads `result` far enough to know its status and first bytes; called inside `context`, which a
/// streamed body keeps for the rest. Errors (iterating, a chunk that is not `bytes`, `close` itself) come
/// back after `close` was called.
pub fn begin(
    result: &Bound<'_, PyAny>,
    start_response: &Bound<'_, StartResponse>,
    context: &RequestContext,
    python: &Arc<PythonThreads>,
) -> PyResult<Body> {
    let begun = read_start(result, start_response);
    let body = match begun {
        Ok(Start::Streamed(iterator)) => {
            return Ok(Body::Streamed(IterableBody {
                python: Arc::clone(python),
                iterator: Some(iterator.unbind()),
                result: result.clone().unbind(),
                start_response: start_response.clone().unbind(),
                context: context.clone_ref(result.py()),
                pending: Vec::new(),
                written: 0,
            }))
        }
        Ok(Start::Whole) => Ok(Body::Whole),
        Ok(Start::File(file)) => Ok(Body::File(file)),
        Err(err) => Err(err),
    };
    let closed = close(result);
    body.and_then(|body| closed.map(|()| body))
}

/// Drains what is complete, or takes the file out of a file wrapper; returns the iterator when the rest is
/// to be streamed.
fn read_start<'py>(
    result: &Bound<'py, PyAny>,
    start_response: &Bound<'py, StartResponse>,
) -> PyResult<Start<'py>> {
    if let Ok(list) = result.downcast::<PyList>() {
        for chunk in list.iter() {
            push(&chunk, start_response)?;
        }
        return Ok(Start::Whole);
    }
    if let Ok(tuple) = result.downcast::<PyTuple>() {
        for chunk in tuple.iter() {
            push(&chunk, start_response)?;
        }
        return Ok(Start::Whole);
    }
    if let Ok(wrapper) = result.downcast::<FileWrapper>() {
        let py = result.py();
        let declared = start_response.borrow().declared_length();
        if let Some(file) = wrapper.get().file_body(py, declared)? {
            return Ok(Start::File(file));
        }
        push(&wrapper.get().read_all(py)?, start_response)?;
        return Ok(Start::Whole);
    }
    let mut iterator = result.try_iter()?;
    while !start_response.borrow().has_body() {
        match iterator.next().transpose()? {
            Some(chunk) => push(&chunk, start_response)?,
            None => return Ok(Start::Whole),
        }
    }
    if start_response.borrow().is_complete() {
        // The declared length is reached: what follows can only be the end.
        while let Some(chunk) = iterator.next().transpose()? {
            push(&chunk, start_response)?;
        }
        return Ok(Start::Whole);
    }
    Ok(Start::Streamed(iterator))
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
    if let Ok(close) = result.getattr(intern!(result.py(), "close")) {
        close.call0()?;
    }
    Ok(())
}

/// The rest of an application's iterable, produced as the client takes it.
pub struct IterableBody {
    /// Where each chunk is taken from the iterable.
    python: Arc<PythonThreads>,
    /// `None` once the iterable is exhausted, failed or closed.
    iterator: Option<Py<PyIterator>>,
    /// What the application returned: its `close()` is called once, at the end.
    result: Py<PyAny>,
    /// Where `write()` and the first chunk left their bytes.
    start_response: Py<StartResponse>,
    /// The request's context, in which every step runs.
    context: RequestContext,
    /// Bytes taken from the application and not sent yet, from `written` on.
    pending: Vec<u8>,
    written: usize,
}

impl IterableBody {
    /// The response head (status and fields) to send before the body.
    pub fn head(&self, py: Python<'_>) -> PyResult<Response> {
        self.start_response.bind(py).borrow_mut().take_head()
    }

    /// The length the application declared, if any.
    pub fn declared_length(&self, py: Python<'_>) -> Option<u64> {
        self.start_response.bind(py).borrow().declared_length()
    }

    /// Moves the next bytes into `pending`: `write()`'s, or the iterable's next non-empty chunk. `false` at
    /// the end.
    fn refill(&mut self, py: Python<'_>) -> PyResult<bool> {
        let start_response = self.start_response.bind(py);
        loop {
            let written = start_response.borrow_mut().take_body();
            if !written.is_empty() {
                self.pending = written;
                self.written = 0;
                return Ok(true);
            }
            let Some(iterator) = &self.iterator else {
                return Ok(false);
            };
            match iterator.bind(py).clone().next().transpose()? {
                Some(chunk) => push(&chunk, start_response)?,
                None => {
                    self.finish(py)?;
                    return Ok(false);
                }
            }
        }
    }

    /// Closes the iterable, once.
    fn finish(&mut self, py: Python<'_>) -> PyResult<()> {
        if self.iterator.take().is_some() {
            close(self.result.bind(py))?;
        }
        Ok(())
    }
}

impl Produce for IterableBody {
    fn produce(&mut self, buf: &mut [u8], _waker: &Waker) -> Produced {
        if self.written == self.pending.len() {
            let python = Arc::clone(&self.python);
            let refilled = python.run(|py| {
                let context = self.context.clone_ref(py);
                context
                    .run(py, || {
                        self.refill(py).inspect_err(|_| {
                            let _ = self.finish(py);
                        })
                    })
                    .map_err(|err| interpreter::traceback(py, &err))
            });
            match refilled {
                Ok(true) => {}
                Ok(false) => return Produced::Done,
                Err(traceback) => return Produced::Failed(traceback),
            }
        }
        let rest = &self.pending[self.written..];
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        self.written += n;
        Produced::Wrote(n)
    }
}

impl Drop for IterableBody {
    /// The client left (or plugd stopped asking) before the end: close the iterable all the same.
    fn drop(&mut self) {
        if self.iterator.is_some() {
            let python = Arc::clone(&self.python);
            python.run(|py| {
                let context = self.context.clone_ref(py);
                if let Err(err) = context.run(py, || self.finish(py)) {
                    log::error!(
                        "closing the application's iterable: {}",
                        interpreter::traceback(py, &err)
                    );
                }
            });
        }
    }
}
