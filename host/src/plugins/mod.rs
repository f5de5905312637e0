//! Plugin libraries: discovery in the plugin folder, ABI verification, and the adapter that lets the router
//! call a plugin's handler like any other [`crate::handler::Handler`].
//!
//! Startup, as `main` drives it:
//!
//! ```ignore
//! let mut plugins = Plugins::load_dir(&config.plugin_dir); // logs each refused file
//! plugins.register(&mut router_builder);                    // after `static`; logs each loaded plugin
//! if config.strict_plugins && !plugins.refused().is_empty() { std::process::exit(2) }
//! ...
//! plugins.shutdown();                                       // on SIGINT/SIGTERM, after the drain
//! ```
//!
//! Every file gets exactly one log line: `plugin loaded: NAME VERSION from FILE: ROUTES` (info, from
//! [`Plugins::register`]) or `plugin refused: FILE: REASON` (warn, from whichever step refused it).

mod adapter;
mod error;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use plugin_api::host::{Library, LoadFailure};

pub use adapter::{PluginHandler, PluginRoute};
pub use error::{LoadError, LoadErrorKind};

use crate::router::{RouteError, RouterBuilder};

/// The plugins found in the plugin folder: those that loaded and started, and the files that were refused.
#[derive(Default)]
pub struct Plugins {
    loaded: Vec<LoadedPlugin>,
    refused: Vec<LoadError>,
}

/// One plugin that loaded, passed the ABI checks and whose `init` succeeded.
pub struct LoadedPlugin {
    path: PathBuf,
    library: Library,
    handler: Arc<PluginHandler>,
}

impl LoadedPlugin {
    /// The plugin's name (its owner name in the router).
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

    /// Its `(method, pattern)` routes.
    pub fn routes(&self) -> impl Iterator<Item = (&'static str, &'static str)> {
        self.library.routes()
    }

    /// Its handler, as the router calls it.
    pub fn handler(&self) -> &Arc<PluginHandler> {
        &self.handler
    }

    /// `GET /, GET /hello/{name}` for log lines.
    fn route_list(&self) -> String {
        let routes: Vec<String> = self.routes().map(|(m, p)| format!("{m} {p}")).collect();
        routes.join(", ")
    }
}

impl Plugins {
    /// Loads every regular file with the platform's library extension (`.so` on Linux) directly inside `dir`,
    /// in file-name order, and starts each with an empty configuration. A refused file is logged and
    /// recorded; it never stops the others. A missing folder is a warning: plugd then serves no plugins.
    pub fn load_dir(dir: &Path) -> Plugins {
        let mut plugins = Plugins::default();
        for path in discover(dir) {
            match load_file(&path) {
                Ok(plugin) => plugins.loaded.push(plugin),
                Err(err) => plugins.refuse(err),
            }
        }
        plugins
    }

    /// Registers each loaded plugin's routes for it, atomically per plugin and in file-name order, so a plugin
    /// whose routes conflict with an earlier owner's (register `static` and built-ins first) is refused whole,
    /// with the conflict named in its log line, and its shutdown hook runs at once.
    pub fn register(&mut self, router: &mut RouterBuilder) {
        let mut registered: Vec<LoadedPlugin> = Vec::with_capacity(self.loaded.len());
        for plugin in std::mem::take(&mut self.loaded) {
            let kind = match registered.iter().find(|p| p.name() == plugin.name()) {
                Some(first) => Some(LoadErrorKind::DuplicateName {
                    name: plugin.name().to_owned(),
                    first: first.path.clone(),
                }),
                None => {
                    // One handler per route, carrying the route's manifest index.
                    let routes = plugin
                        .routes()
                        .enumerate()
                        .map(|(index, (method, pattern))| {
                            let route = PluginRoute::new(Arc::clone(&plugin.handler), index);
                            (
                                method,
                                pattern,
                                Arc::new(route) as Arc<dyn crate::handler::Handler>,
                            )
                        });
                    router
                        .add_routes(routes, plugin.name())
                        .err()
                        .map(route_error_kind)
                }
            };
            match kind {
                None => {
                    log::info!(
                        "plugin loaded: {} {} from {}: {}",
                        plugin.name(),
                        plugin.version(),
                        plugin.path.display(),
                        plugin.route_list()
                    );
                    registered.push(plugin);
                }
                Some(kind) => {
                    plugin.handler.shutdown();
                    self.refuse(LoadError {
                        path: plugin.path,
                        kind,
                    });
                }
            }
        }
        self.loaded = registered;
    }

    /// The plugins that loaded (after [`Plugins::register`]: those that serve routes).
    pub fn loaded(&self) -> &[LoadedPlugin] {
        &self.loaded
    }

    /// The files that were refused, in the order they were refused; `--strict-plugins` exits 2 if any.
    pub fn refused(&self) -> &[LoadError] {
        &self.refused
    }

    /// Runs every loaded plugin's shutdown hook, once: further calls do nothing.
    pub fn shutdown(&self) {
        for plugin in &self.loaded {
            plugin.handler.shutdown();
        }
    }

    fn refuse(&mut self, err: LoadError) {
        log::warn!("plugin refused: {err}");
        self.refused.push(err);
    }
}

/// The candidate plugin files directly inside `dir`, sorted by name.
fn discover(dir: &Path) -> Vec<PathBuf> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) => {
            log::warn!(
                "plugin folder {} cannot be read ({err}): no plugins loaded",
                dir.display()
            );
            return Vec::new();
        }
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| {
            path.extension()
                .is_some_and(|ext| ext == std::env::consts::DLL_EXTENSION)
        })
        // `metadata` follows symlinks: a link to a library counts, a folder named `x.so` does not.
        .filter(|path| fs::metadata(path).is_ok_and(|m| m.is_file()))
        .collect();
    files.sort();
    files
}

/// Loads, verifies and starts one plugin file.
pub fn load_file(path: &Path) -> Result<LoadedPlugin, LoadError> {
    let refused = |kind| LoadError {
        path: path.to_owned(),
        kind,
    };
    let library = Library::load(path).map_err(|failure| {
        if let Some(detail) = failure.detail() {
            log::debug!("plugin {}: abi_stable's report:\n{detail}", path.display());
        }
        refused(failure_kind(failure))
    })?;
    let instance = library
        .init(&[])
        .map_err(|message| refused(LoadErrorKind::InitFailed { message }))?;
    let handler = Arc::new(PluginHandler::new(library.name().into(), instance));
    Ok(LoadedPlugin {
        path: path.to_owned(),
        library,
        handler,
    })
}

fn failure_kind(failure: LoadFailure) -> LoadErrorKind {
    match failure {
        LoadFailure::NotALibrary { reason } => LoadErrorKind::NotALibrary { reason },
        LoadFailure::MissingRootModule => LoadErrorKind::MissingRootModule,
        LoadFailure::Incompatible {
            expected, found, ..
        } => LoadErrorKind::AbiMismatch { expected, found },
        other => LoadErrorKind::Library {
            summary: other.to_string(),
        },
    }
}

fn route_error_kind(err: RouteError) -> LoadErrorKind {
    match err {
        RouteError::Conflict {
            method,
            pattern,
            existing_owner,
            new_owner,
        } => LoadErrorKind::RouteConflict {
            method,
            pattern,
            existing_owner,
            new_owner,
        },
        RouteError::InvalidPattern { pattern, reason } => {
            LoadErrorKind::InvalidRoute { pattern, reason }
        }
        // `RouteError` is non-exhaustive (the router also refuses invalid methods): any other refusal is still
        // reported in one line.
        #[allow(unreachable_patterns)]
        other => LoadErrorKind::RouteRefused {
            reason: format!("{other:?}"),
        },
    }
}

#[cfg(test)]
mod tests;
