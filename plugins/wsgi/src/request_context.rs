//! Each request's own `contextvars.Context`, entered around every step of the request: the application
//! call, each `next` of its iterable, `close`.
//!
//! The chunks of one streamed response may be produced on different threads, each with its own thread
//! state, and a generator that set a context variable in one step (Flask's `stream_with_context` pushes its
//! request context) must find it in the next, as it would on the one thread of a gunicorn worker; and a
//! variable one request sets must not leak into the next request served on the same thread.
//!
//! The context is entered through the C API (`PyContext_Enter` and `PyContext_Exit`) rather than by calling
//! `Context.run`: the synchronous part of a request (the call, the iterable's first chunks, `close`) then
//! enters it once instead of once per step, and a step costs no bound method or argument tuple
//! (docs/ARCHITECTURE.md §19.7).

use pyo3::prelude::*;
use pyo3::{ffi, PyErr};

/// A request's context, a copy of the one current when the request began.
pub struct RequestContext(Py<PyAny>);

impl RequestContext {
    /// A copy of the calling thread's current context (`contextvars.copy_context()`).
    pub fn copy_current(py: Python<'_>) -> PyResult<RequestContext> {
        // SAFETY: the GIL is held; PyContext_CopyCurrent returns a new reference or NULL with an exception set.
        let context = unsafe { Bound::from_owned_ptr_or_err(py, ffi::PyContext_CopyCurrent()) }?;
        Ok(RequestContext(context.unbind()))
    }

    /// Another handle on the same context.
    pub fn clone_ref(&self, py: Python<'_>) -> RequestContext {
        RequestContext(self.0.clone_ref(py))
    }

    /// Runs `step` inside the context (as `Context.run` would). The context must not be entered already:
    /// a request's steps never nest.
    pub fn run<R>(&self, py: Python<'_>, step: impl FnOnce() -> PyResult<R>) -> PyResult<R> {
        let context = self.0.as_ptr();
        // SAFETY: the GIL is held and `context` is a live `contextvars.Context`; -1 means an exception is set.
        if unsafe { ffi::PyContext_Enter(context) } != 0 {
            return Err(PyErr::fetch(py));
        }
        let result = step();
        // SAFETY: as above; the context is the thread's current one again, as `step` left it (Python code
        // restores every context it enters).
        if unsafe { ffi::PyContext_Exit(context) } != 0 {
            // Taken even when `step` failed, so that no exception stays set; `step`'s own error wins.
            let exit_error = PyErr::fetch(py);
            return result.and(Err(exit_error));
        }
        result
    }
}
