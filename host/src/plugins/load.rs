//! One plugin file through the steps every path shares (the server's folder scans and `plugd check`): read
//! it once, load and verify its private copy without running its code, `init` it with its config table,
//! register its routes under its mount prefix.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use plugin_api::host::Library;

use super::adapter::{PluginHandler, PluginRoute};
use super::bulkhead::{Bulkhead, Bulkheaded, Isolation};
use super::error::{LoadError, LoadErrorKind};
use super::private_copy::Contents;
use super::trust::TrustPolicy;
use crate::config::{Config, Mount, PluginTable};
use crate::handler::Handler;
use crate::metrics::PluginCounters;
use crate::router::RouterBuilder;

/// How plugin files are loaded: whether untrusted files are refused, and each plugin's bulkhead.
#[derive(Clone, Copy, Debug)]
pub struct LoadPolicy {
    pub trust: TrustPolicy,
    pub isolation: Isolation,
}

impl From<&Config> for LoadPolicy {
    fn from(config: &Config) -> LoadPolicy {
        LoadPolicy {
            trust: if config.allow_insecure_plugins {
                TrustPolicy::AllowInsecure
            } else {
                TrustPolicy::Strict
            },
            isolation: Isolation::from(config),
        }
    }
}

/// `GET /, GET /hello/{name}` for log lines.
pub(super) fn route_list(routes: &[(&str, String)]) -> String {
    let routes: Vec<String> = routes.iter().map(|(m, p)| format!("{m} {p}")).collect();
    routes.join(", ")
}

/// One plugin that loaded, passed the ABI checks and whose `init` accepted its configuration.
pub struct LoadedPlugin {
    path: PathBuf,
    library: Library,
    /// SHA-256 of the file's bytes as loaded (lowercase hex).
    sha256: String,
    /// When this version's `init` succeeded.
    loaded_at: SystemTime,
    handler: Arc<PluginHandler>,
    mount: Mount,
    /// Its cap of requests in flight, shared by all of its routes; also what it drains on when retired.
    bulkhead: Arc<Bulkhead>,
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

    /// SHA-256 of the file's bytes as loaded, in lowercase hex.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// When this version started.
    pub fn loaded_at(&self) -> SystemTime {
        self.loaded_at
    }

    /// Its `(method, pattern)` routes as served: each pattern under the plugin's mount prefix.
    pub fn routes(&self) -> Vec<(&'static str, String)> {
        mounted_routes(&self.library, &self.mount)
    }

    /// Its handler, as the router calls it.
    pub fn handler(&self) -> &Arc<PluginHandler> {
        &self.handler
    }

    /// Its bulkhead: requests in flight, retirement.
    pub fn bulkhead(&self) -> &Arc<Bulkhead> {
        &self.bulkhead
    }

    /// The library it runs (a new instance of the same code can be started from it).
    pub(super) fn library(&self) -> Library {
        self.library
    }

    /// Its calls, statuses, durations and panics (this version's own).
    pub fn counters(&self) -> &Arc<PluginCounters> {
        self.handler.counters()
    }

    /// Registers all of its routes, or none if the router refuses one.
    pub(super) fn register(&self, router: &mut RouterBuilder) -> Result<(), LoadErrorKind> {
        self.register_routes(router, |route| route)
    }

    /// Registers all of its routes behind its bulkhead (its cap of requests in flight, its slow calls
    /// named), or none if the router refuses one.
    pub(super) fn register_isolated(
        &self,
        router: &mut RouterBuilder,
    ) -> Result<(), LoadErrorKind> {
        self.register_routes(router, |route| {
            Arc::new(Bulkheaded::new(Arc::clone(&self.bulkhead), route))
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

/// Reads one plugin file and loads and verifies it, without running any of its code.
pub fn open(path: &Path) -> Result<(Library, Contents), LoadError> {
    let contents = read(path)?;
    let library = open_contents(path, &contents)?;
    Ok((library, contents))
}

/// Reads the bytes of the plugin file at `path` once, into its private copy.
pub fn read(path: &Path) -> Result<Contents, LoadError> {
    Contents::read(path).map_err(|err| LoadError {
        path: path.to_owned(),
        kind: LoadErrorKind::Unreadable(err.to_string()),
    })
}

/// Loads and verifies `contents`, read from `path`, from its private copy (removed when `contents` is
/// dropped).
pub fn open_contents(path: &Path, contents: &Contents) -> Result<Library, LoadError> {
    let loaded = Library::load(contents.copy());
    loaded.map_err(|failure| {
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
/// applies when it is registered, behind a bulkhead as `isolation` and its table say.
pub fn start(
    path: &Path,
    library: Library,
    sha256: &str,
    table: Option<&PluginTable>,
    isolation: &Isolation,
) -> Result<LoadedPlugin, LoadError> {
    let entries = table.map(PluginTable::entry_refs).unwrap_or_default();
    let instance = library.init(&entries).map_err(|message| LoadError {
        path: path.to_owned(),
        kind: LoadErrorKind::InitFailed { message },
    })?;
    let limit = table
        .and_then(|t| t.max_in_flight)
        .unwrap_or(isolation.default_max_in_flight);
    let counters = Arc::new(PluginCounters::new());
    Ok(LoadedPlugin {
        path: path.to_owned(),
        library,
        sha256: sha256.to_owned(),
        loaded_at: SystemTime::now(),
        handler: Arc::new(PluginHandler::new(
            library.name().into(),
            instance,
            counters,
        )),
        mount: table.map(|t| t.mount.clone()).unwrap_or_default(),
        bulkhead: Arc::new(Bulkhead::new(
            library.name().into(),
            limit,
            isolation.slow_handler,
        )),
    })
}
