//! Plugin `wsgi`: serves a Python web application written to PEP 3333 (Flask, Django, Falcon, any WSGI
//! callable) from plugd, as mod_wsgi serves one from Apache.
//!
//! The library embeds CPython through pyo3 (docs/ARCHITECTURE.md §19): plugd's workers call the application
//! directly, holding the GIL only while Python runs, so the host reads and writes sockets while other workers
//! run Python. Configuration (`[plugins.wsgi]`):
//!
//! * `app = "module:callable"`: the application, imported once at load (`module` alone means
//!   `module:application`, mod_wsgi's default); an import error or a missing callable refuses the plugin with
//!   the Python traceback.
//! * `python_path = ["dir", ...]`: folders put in front of `sys.path`, in order (relative to plugd's working
//!   directory), for the application and its packages (a virtual environment's `site-packages`).
//! * `mount = "/py"`: plugd serves the application under this prefix, which becomes `SCRIPT_NAME`.
//! * `threads = 8`: the most requests in Python at once ([`python_threads`]): how many may wait inside
//!   Python (for a database, a lock, `time.sleep`) while the others are still served.
//!
//! The plugin declares one route, every method on `/{*path}`: the application dispatches by itself, and
//! any more specific route of another plugin (or `/static/`) still wins.

mod body;
mod environ;
mod error_log;
mod file_wrapper;
mod input;
mod interpreter;
mod python_threads;
mod request_context;
mod start_response;

use std::path::PathBuf;
use std::sync::Arc;

use plugin_api::stream::{streamed_body, BodyReader, Reply, Streaming};
use plugin_api::{log, Config, Error, InitError, Request};
use pyo3::prelude::*;

use crate::body::Body;
use crate::environ::Environ;
use crate::input::{BodySlot, Input};
use crate::python_threads::PythonThreads;
use crate::request_context::RequestContext;
use crate::start_response::StartResponse;

/// Python threads when the table does not say `threads`: requests that may wait inside Python at once
/// (gunicorn's `gthread` default is 1 per process, mod_wsgi's 15 per daemon process). A thread that waits
/// for nothing costs only its stack's touched pages and a Python thread state.
const DEFAULT_THREADS: usize = 8;

/// The plugin's state: the application and what every request's `environ` starts from.
pub struct Wsgi {
    /// Where Python runs; shared with the streamed bodies, which run Python for each chunk.
    python: Arc<PythonThreads>,
    app: Py<PyAny>,
    environ: Environ,
}

impl Wsgi {
    fn new(config: &Config<'_>) -> Result<Wsgi, InitError> {
        let spec: String = config.require("app").map_err(|_| {
            "plugin wsgi: config key `app` is required: name the WSGI application as \"module:callable\" \
             in [plugins.wsgi]"
        })?;
        let python_path: Vec<PathBuf> = config.list("python_path")?;
        let mount = config.get("mount").unwrap_or("/");
        let threads: usize = config.parse_or("threads", DEFAULT_THREADS)?;
        interpreter::start()?;
        let python = Arc::new(PythonThreads::start(threads)?);
        let runs_the_app = Arc::clone(&python);
        python
            .run(|py| {
                Wsgi::load(py, &spec, &python_path, mount, runs_the_app).map_err(|err| {
                    let traceback = interpreter::traceback(py, &err);
                    format!("cannot load the WSGI application {spec:?}: {traceback}")
                })
            })
            .map_err(InitError::from)
    }

    fn load(
        py: Python<'_>,
        spec: &str,
        python_path: &[PathBuf],
        mount: &str,
        python: Arc<PythonThreads>,
    ) -> PyResult<Wsgi> {
        interpreter::prepend_to_sys_path(py, python_path)?;
        let app = interpreter::import_app(py, spec)?;
        let environ = Environ::new(py, script_name(mount))?;
        log::info!(
            "serving the WSGI application {spec} on Python {}",
            py.version()
        );
        Ok(Wsgi {
            python,
            app,
            environ,
        })
    }

    /// One request: `environ` and `start_response` in, the application's response out. A Python exception
    /// is a 500 whose traceback goes to plugd's log only.
    fn call(&self, req: &Request<'_>, body: &mut BodyReader<'_>) -> Result<Reply, Error> {
        let path_info = self.environ.path_info(req)?;
        let content_length = body.length();
        let loan = BodySlot::lend(body);
        let slot = loan.slot();
        self.python.run(|py| {
            let input = Input::new(slot);
            self.respond(py, req, &path_info, content_length, input)
                .map_err(|err| Error::internal(interpreter::traceback(py, &err)))
        })
    }

    fn respond(
        &self,
        py: Python<'_>,
        req: &Request<'_>,
        path_info: &[u8],
        content_length: Option<u64>,
        input: Input,
    ) -> PyResult<Reply> {
        let environ = self
            .environ
            .for_request(py, req, path_info, content_length, input)?;
        let start_response = Bound::new(py, StartResponse::default())?;
        let context = RequestContext::copy_current(py)?;
        let body = context.run(py, || {
            let result = self.app.bind(py).call1((environ, &start_response))?;
            body::begin(&result, &start_response, &context, &self.python)
        })?;
        match body {
            Body::Whole => Ok(Reply::Whole(start_response.borrow_mut().take_response()?)),
            Body::File(file) => Ok(Reply::Streamed(Streaming::file(
                start_response.borrow_mut().take_head()?,
                file,
            ))),
            Body::Streamed(body) => {
                let length = body.declared_length(py);
                let streaming = body.head(py)?.stream(body);
                Ok(Reply::Streamed(match length {
                    Some(length) => streaming.with_length(length),
                    None => streaming,
                }))
            }
        }
    }
}

/// `SCRIPT_NAME` for a mount prefix: empty for the root (PEP 3333: the application is at the server's root).
fn script_name(mount: &str) -> &str {
    mount.trim_end_matches('/')
}

plugin_api::export_plugin! {
    name: "wsgi",
    version: env!("CARGO_PKG_VERSION"),
    routes: [("*", "/{*path}", streamed_body(Wsgi::call))],
    init: Wsgi::new,
}
