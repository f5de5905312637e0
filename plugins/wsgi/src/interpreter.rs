//! The one CPython interpreter of the process: started at the first load, given the application's folders,
//! and asked for the application. Also turns Python exceptions into the traceback text plugd logs.
//!
//! CPython keeps its state in process globals, so there is exactly one interpreter per process, shared by
//! every copy of this library that plugd loads (docs/ARCHITECTURE.md §19.3).

use std::ffi::CStr;
use std::path::{Path, PathBuf};

use pyo3::exceptions::PyTypeError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyList;

/// The callable a `module` without `:callable` names (mod_wsgi's and gunicorn's default).
const DEFAULT_CALLABLE: &str = "application";

/// Starts the interpreter unless it runs already. Python installs no signal handlers (`Py_InitializeEx(0)`):
/// SIGINT and SIGTERM stay plugd's, for its graceful shutdown.
pub fn start() -> Result<(), String> {
    make_libpython_global()?;
    pyo3::prepare_freethreaded_python();
    Ok(())
}

/// Re-opens libpython with `RTLD_GLOBAL`. plugd opens plugins with `RTLD_LOCAL`, so libpython, loaded as
/// this library's dependency, would lend its symbols to this library only; a C extension (numpy,
/// markupsafe's speedups, the standard library's `_ctypes`) is built without a link to libpython and expects
/// `PyFloat_Type` and friends in the global scope, as the `python3` executable provides them. Without this
/// its import fails with `undefined symbol: PyExc_...`.
fn make_libpython_global() -> Result<(), String> {
    let libpython = libpython_path()?;
    // SAFETY: `libpython` is a NUL-terminated path; RTLD_NOLOAD only changes the flags of a library that is
    // already loaded (it is: this library links it), so no initialiser runs. The handle is never closed: the
    // library stays for the life of the process, as plugd's plugins do.
    let handle = unsafe {
        libc::dlopen(
            libpython.as_ptr(),
            libc::RTLD_NOW | libc::RTLD_GLOBAL | libc::RTLD_NOLOAD,
        )
    };
    if handle.is_null() {
        return Err(format!(
            "cannot make {} global for C extensions: {}",
            libpython.to_string_lossy(),
            dl_error()
        ));
    }
    Ok(())
}

/// The file the interpreter's code was loaded from (libpython3.X.so.1.0).
fn libpython_path() -> Result<&'static CStr, String> {
    let mut info = std::mem::MaybeUninit::<libc::Dl_info>::zeroed();
    let symbol = pyo3::ffi::Py_IsInitialized as *const libc::c_void;
    // SAFETY: dladdr reads the address and fills `info`; both pointers are valid for the call.
    let found = unsafe { libc::dladdr(symbol, info.as_mut_ptr()) };
    // SAFETY: zero-initialised, and filled by dladdr when it returns non-zero.
    let info = unsafe { info.assume_init() };
    if found == 0 || info.dli_fname.is_null() {
        return Err("cannot find the loaded libpython".to_owned());
    }
    // SAFETY: dli_fname points to the loader's copy of the library's path, NUL-terminated, which lives as
    // long as the library stays loaded: for the life of the process.
    Ok(unsafe { CStr::from_ptr(info.dli_fname) })
}

fn dl_error() -> String {
    // SAFETY: dlerror returns NULL or a NUL-terminated message owned by the loader.
    let message = unsafe { libc::dlerror() };
    if message.is_null() {
        return "unknown error".to_owned();
    }
    // SAFETY: non-NULL, NUL-terminated, read before any other dl* call on this thread.
    unsafe { CStr::from_ptr(message) }
        .to_string_lossy()
        .into_owned()
}

/// Puts `dirs` in front of `sys.path`, in order, each made absolute (relative to plugd's working folder) so a
/// later `os.chdir` in the application does not move them.
pub fn prepend_to_sys_path(py: Python<'_>, dirs: &[PathBuf]) -> PyResult<()> {
    let sys_path = py.import("sys")?.getattr("path")?;
    let sys_path = sys_path.downcast::<PyList>()?;
    for (i, dir) in dirs.iter().enumerate() {
        // A `str`: the import system skips `sys.path` entries of any other type (pyo3 would pass a PathBuf
        // as a `pathlib.Path`).
        sys_path.insert(i, absolute(dir).to_string_lossy())?;
    }
    Ok(())
}

fn absolute(dir: &Path) -> PathBuf {
    std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf())
}

/// Imports `module:callable` (`callable` may be dotted: `module:factory.app`) and checks that it is callable.
pub fn import_app(py: Python<'_>, spec: &str) -> PyResult<Py<PyAny>> {
    let (module, path) = spec.split_once(':').unwrap_or((spec, DEFAULT_CALLABLE));
    let mut app = py.import(module)?.into_any();
    for name in path.split('.') {
        app = app.getattr(name)?;
    }
    if !app.is_callable() {
        let kind = app.get_type().name()?;
        return Err(PyTypeError::new_err(format!(
            "{spec} is a {kind}, not a WSGI callable"
        )));
    }
    Ok(app.unbind())
}

/// The exception as Python prints it: the traceback (when it was raised in Python), then the exception line.
pub fn traceback(py: Python<'_>, err: &PyErr) -> String {
    let formatted = py
        .import("traceback")
        .and_then(|module| {
            let value = err.value(py);
            // pyo3 holds the traceback of an exception raised through it; one raised inside the import system
            // carries its own.
            let traceback = match err.traceback(py) {
                Some(traceback) => traceback.into_any(),
                None => value.getattr(intern!(py, "__traceback__"))?,
            };
            module.call_method1("format_exception", (err.get_type(py), value, traceback))
        })
        .and_then(|lines| lines.extract::<Vec<String>>());
    match formatted {
        Ok(lines) => lines.concat().trim_end().to_owned(),
        Err(_) => err.to_string(),
    }
}
