//! Plugin libraries: discovery in the plugin folder, ABI verification, configuration from the config file's
//! `[plugins.NAME]` tables, and the adapter that lets the router call a plugin's handler like any other
//! [`crate::handler::Handler`].
//!
//! Startup, as `app::run` drives it:
//!
//! ```ignore
//! let policy = LoadPolicy::from(&config);
//! let mut plugins = Plugins::load_dir(&config.plugin_dir, &config.plugins, &policy); // logs each refused file
//! plugins.register(&mut router_builder);   // after `static`; logs each loaded plugin, its routes mounted,
//!                                          // behind its bulkhead
//! if config.strict_plugins && !plugins.refused().is_empty() { std::process::exit(2) }
//! let live = LivePlugins::adopt(plugins, ...); // from now on the folder is watched ([`live`])
//! ...
//! live.shutdown();                         // on SIGINT/SIGTERM, after the drain
//! ```
//!
//! Every file gets exactly one log line: `plugin loaded: NAME VERSION from FILE: ROUTES` (info, from
//! [`Plugins::register`]) or `plugin refused: FILE: REASON` (warn, from whichever step refused it).
//! `plugd check` runs the same steps on one file ([`check`]).

mod adapter;
mod bulkhead;
mod check;
mod drain;
mod error;
mod filter;
mod folder;
mod live;
mod load;
mod private_copy;
mod slow_calls;
mod trust;
mod watch;

use std::path::Path;

pub use adapter::{PluginHandler, PluginRoute};
pub use bulkhead::{Bulkhead, Isolation, default_max_in_flight};
pub use check::{CheckReport, check};
pub use error::{LoadError, LoadErrorKind};
pub use filter::middleware_chain;
use folder::discover;
pub use live::{Change, LivePlugins, LiveSettings, ReloadReport};
use load::route_list;
pub use load::{LoadPolicy, LoadedPlugin};
use load::{open_contents, read, start};
pub use private_copy::remove_folder as remove_private_copies;
pub use trust::TrustPolicy;
pub use watch::spawn as watch;

use crate::config::PluginTables;
use crate::metrics::EVENTS;
use crate::router::RouterBuilder;

/// The plugins found in the plugin folder: those that loaded and started, and the files that were refused.
#[derive(Default)]
pub struct Plugins {
    loaded: Vec<LoadedPlugin>,
    refused: Vec<LoadError>,
}

/// What a loaded plugin serves, for its `plugin loaded` line: its routes, or `filter`.
fn plugin_role(plugin: &LoadedPlugin) -> String {
    let routes = plugin.routes();
    match (routes.is_empty(), plugin.handler().instance().is_filter()) {
        (true, true) => "filter".to_owned(),
        (false, true) => format!("filter, {}", route_list(&routes)),
        (_, false) => route_list(&routes),
    }
}

impl Plugins {
    /// Loads every regular file with the platform's library extension (`.so` on Linux) directly inside `dir`,
    /// in file-name order, and starts each with its table from `tables` (none: an empty configuration). A
    /// refused file is logged and recorded; it never stops the others. A missing folder is a warning: plugd
    /// then serves no plugins; a folder others could write into is refused whole (see [`TrustPolicy`]). A
    /// table naming no plugin in the folder is a warning too (a typo would otherwise silently leave a plugin
    /// unconfigured).
    pub fn load_dir(dir: &Path, tables: &PluginTables, policy: &LoadPolicy) -> Plugins {
        let mut plugins = Plugins::default();
        if let Err(reason) = policy.trust.check_folder(dir) {
            log::warn!("plugin folder refused: {}: {reason}", dir.display());
            plugins.refused.push(LoadError {
                path: dir.to_owned(),
                kind: LoadErrorKind::Untrusted(reason),
            });
            return plugins;
        }
        let mut names = Vec::new();
        for path in discover(dir) {
            match prepare(dir, &path, tables, policy, |name| names.push(name)) {
                Ok(plugin) => plugins.loaded.push(plugin),
                Err(err) => plugins.refuse(err),
            }
        }
        for name in tables.names().filter(|name| !names.contains(name)) {
            log::warn!(
                "the config file has a [plugins.{name}] table, but no plugin named `{name}` is in {}",
                dir.display()
            );
        }
        plugins
    }

    /// Registers each loaded plugin's routes for it, atomically per plugin and in file-name order, so a plugin
    /// whose routes conflict with an earlier owner's (register `static` and built-ins first) is refused whole,
    /// with the conflict named in its log line, and its shutdown hook runs at once. Each plugin serves behind
    /// its bulkhead, as `isolation` says.
    pub fn register(&mut self, router: &mut RouterBuilder) {
        let mut registered: Vec<LoadedPlugin> = Vec::with_capacity(self.loaded.len());
        for plugin in std::mem::take(&mut self.loaded) {
            let outcome = match registered.iter().find(|p| p.name() == plugin.name()) {
                Some(first) => Err(LoadErrorKind::DuplicateName {
                    name: plugin.name().to_owned(),
                    first: first.path().to_owned(),
                }),
                None => plugin.register_isolated(router),
            };
            match outcome {
                Ok(()) => {
                    EVENTS.plugin_loads.count();
                    log::info!(
                        "plugin loaded: {} {} from {}: {}",
                        plugin.name(),
                        plugin.version(),
                        plugin.path().display(),
                        plugin_role(&plugin)
                    );
                    registered.push(plugin);
                }
                Err(kind) => {
                    plugin.handler().shutdown();
                    self.refuse(LoadError {
                        path: plugin.path().to_owned(),
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

    /// The plugins that serve and the files refused, taken apart (for [`LivePlugins::adopt`]).
    pub fn into_parts(self) -> (Vec<LoadedPlugin>, Vec<LoadError>) {
        (self.loaded, self.refused)
    }

    fn refuse(&mut self, err: LoadError) {
        EVENTS.plugin_refusals.count();
        log::warn!("plugin refused: {err}");
        self.refused.push(err);
    }
}

/// One plugin file through every step before registration: trust, one read, its private copy loaded and
/// verified, `init` with its table. `loaded_name` hears the plugin's name once the library is verified.
fn prepare(
    dir: &Path,
    path: &Path,
    tables: &PluginTables,
    policy: &LoadPolicy,
    loaded_name: impl FnOnce(&'static str),
) -> Result<LoadedPlugin, LoadError> {
    policy
        .trust
        .check_file(dir, path)
        .map_err(|reason| LoadError {
            path: path.to_owned(),
            kind: LoadErrorKind::Untrusted(reason),
        })?;
    let contents = read(path)?;
    let library = open_contents(path, &contents)?;
    loaded_name(library.name());
    start(
        path,
        library,
        &contents.sha256,
        tables.get(library.name()),
        &policy.isolation,
    )
}

#[cfg(test)]
mod tests;
