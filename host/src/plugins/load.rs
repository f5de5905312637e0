//! One plugin file through the startup steps every path shares (the server's folder scan and `plugd check`):
//! load and verify it without running its code, `init` it with its config table, register its routes under
//! its mount prefix.

use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use plugin_api::host::Library;
use sha2::{Digest, Sha256};

use super::adapter::{PluginHandler, PluginRoute};
use super::bulkhead::{Bulkhead, Bulkheaded, Isolation};
use super::error::{LoadError, LoadErrorKind};
use crate::config::{Mount, PluginTable};
use crate::handler::Handler;
use crate::metrics::PluginCounters;
use crate::router::RouterBuilder;

/// One plugin that loaded, passed the ABI checks and whose `init` accepted its configuration.
pub struct LoadedPlugin {
    path: PathBuf,
    library: Library,
    handler: Arc<PluginHandler>,
    mount: Mount,
    /// Its table's cap on requests in flight, if it sets one.
    max_in_flight: Option<NonZeroUsize>,
    /// SHA-256 of the file's bytes, lowercase hex: which build this is, whatever the file is called.
    sha256: String,
    /// When its `init` succeeded.
    loaded_at: SystemTime,
}

impl LoadedPlugin {
    /// The plugin's name (its owner name in the router, and its table in the config file).
    pub fn name(&self) -> &'static str {
        self.library.name()
    }

    /// The plugin's own version.
    pub fn version(&self) -> &'static str {
        self.library.version()
    }

    /// The file it was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Its `(method, pattern)` routes as served: each pattern under the plugin's mount prefix.
    pub fn routes(&self) -> Vec<(&'static str, String)> {
        mounted_routes(&self.library, &self.mount)
    }

    /// Its handler, as the router calls it.
    pub fn handler(&self) -> &Arc<PluginHandler> {
        &self.handler
    }

    /// SHA-256 of the library file, lowercase hex.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// When it was started.
    pub fn loaded_at(&self) -> SystemTime {
        self.loaded_at
    }

    /// Its calls, statuses, durations and panics (this version's own).
    pub fn counters(&self) -> &Arc<PluginCounters> {
        self.handler.counters()
    }

    /// Registers all of its routes, or none if the router refuses one.
    pub(super) fn register(&self, router: &mut RouterBuilder) -> Result<(), LoadErrorKind> {
        self.register_routes(router, |route| route)
    }

    /// Registers all of its routes behind one shared bulkhead (its cap of requests in flight, its slow calls
    /// named), or none if the router refuses one.
    pub(super) fn register_isolated(
        &self,
        router: &mut RouterBuilder,
        isolation: &Isolation,
    ) -> Result<(), LoadErrorKind> {
        let limit = self
            .max_in_flight
            .unwrap_or(isolation.default_max_in_flight);
        let bulkhead = Arc::new(Bulkhead::new(
            self.name().into(),
            limit,
            isolation.slow_handler,
        ));
        self.register_routes(router, |route| {
            Arc::new(Bulkheaded::new(Arc::clone(&bulkhead), route))
        })
    }

    /// One handler per route, carrying the route's manifest index (the plugin's own dispatch key), each
    /// passed through `wrap`.
    fn register_routes(
        &self,
        router: &mut RouterBuilder,
        wrap: impl Fn(Arc<dyn Handler>) -> Arc<dyn Handler>,
    ) -> Result<(), LoadErrorKind> {
        let routes = self.routes();
        let routes = routes.iter().enumerate().map(|(index, (method, pattern))| {
            let route: Arc<dyn Handler> =
                Arc::new(PluginRoute::new(Arc::clone(&self.handler), index));
            (*method, pattern.as_str(), wrap(route))
        });
        router
            .add_routes(routes, self.name())
            .map_err(LoadErrorKind::Route)
    }
}

/// A library's routes under `mount`.
pub(super) fn mounted_routes(library: &Library, mount: &Mount) -> Vec<(&'static str, String)> {
    library
        .routes()
        .map(|(method, pattern)| (method, mount.apply(pattern)))
        .collect()
}

/// Loads and verifies one plugin file, without running any of its code.
pub fn open(path: &Path) -> Result<Library, LoadError> {
    Library::load(path).map_err(|failure| {
        if let Some(detail) = failure.detail() {
            log::debug!("plugin {}: abi_stable's report:\n{detail}", path.display());
        }
        LoadError {
            path: path.to_owned(),
            kind: LoadErrorKind::Library(failure),
        }
    })
}

/// Runs the plugin's `init` with its table's entries (none without a table); the table's mount prefix
/// applies when it is registered.
pub fn start(
    path: &Path,
    library: Library,
    table: Option<&PluginTable>,
) -> Result<LoadedPlugin, LoadError> {
    let entries = table.map(PluginTable::entry_refs).unwrap_or_default();
    let instance = library.init(&entries).map_err(|message| LoadError {
        path: path.to_owned(),
        kind: LoadErrorKind::InitFailed { message },
    })?;
    let counters = Arc::new(PluginCounters::new());
    Ok(LoadedPlugin {
        path: path.to_owned(),
        library,
        handler: Arc::new(PluginHandler::new(
            library.name().into(),
            instance,
            counters,
        )),
        mount: table.map(|t| t.mount.clone()).unwrap_or_default(),
        max_in_flight: table.and_then(|t| t.max_in_flight),
        sha256: file_sha256(path),
        loaded_at: SystemTime::now(),
    })
}

/// The SHA-256 of the file at `path` in lowercase hex; empty if it cannot be read again (it was loaded,
/// so only a file removed since gives that).
fn file_sha256(path: &Path) -> String {
    match std::fs::read(path) {
        Ok(bytes) => Sha256::digest(&bytes)
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect(),
        Err(err) => {
            log::warn!(
                "plugin {}: cannot read it to hash it: {err}",
                path.display()
            );
            String::new()
        }
    }
}
