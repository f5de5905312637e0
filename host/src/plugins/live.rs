//! The plugins serving now, kept in step with the plugin folder while plugd runs (`docs/ARCHITECTURE.md`
//! §8.8). A reload (the folder watcher, `SIGHUP`, the admin listener) compares the folder with what serves:
//!
//! - a new file is added, a changed file replaces its version, a file gone is removed;
//! - a changed `[plugins.NAME]` table (after `SIGHUP` re-read the config file) starts the same code anew;
//! - each new version is read once, trust-checked, loaded from its private copy, `init`ed and its routes
//!   registered against everything else serving; only if all of that succeeds does it take the old
//!   version's place. Otherwise the old version keeps serving, and the log has the one line `plugd check`
//!   would print;
//! - the new routes are swapped in at once, for every worker, and only then are the old versions retired:
//!   they drain their requests in flight and their shutdown hooks run (`drain.rs`).
//!
//! Files are compared by their status first (device, inode, size, times) and read only when that changed;
//! a file whose bytes are those already serving is left alone. A refused file is not tried again until it
//! changes, except one refused for clashing with another plugin (a route or its name): it is tried again
//! after any plugin was removed or replaced, which may have freed what it clashed with.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use super::drain::{self, Draining};
use super::error::{LoadError, LoadErrorKind};
use super::filter::middleware_chain;
use super::folder::discover;
use super::load::{LoadPolicy, LoadedPlugin, open_contents, read, route_list, start};
use crate::config::{ConfigSource, PluginTable, PluginTables, Reloaded};
use crate::middleware::Chain;
use crate::router::{LiveRouter, RouteError, Router, RouterBuilder};

/// What a live registry needs besides its plugins.
pub struct LiveSettings {
    pub dir: PathBuf,
    /// The `--config` file (and arguments) whose `[plugins.NAME]` tables and `middleware` list
    /// [`LivePlugins::reload`] reads again.
    pub config: Option<ConfigSource>,
    pub policy: LoadPolicy,
    /// How long a retired version's requests and then its shutdown hook get (`--shutdown-timeout`).
    pub shutdown_timeout: Duration,
    /// The routes registered before any plugin's (`static`), built anew for every router.
    pub base_routes: Box<dyn Fn() -> RouterBuilder + Send>,
    /// The configuration's `middleware` list: the chain is made anew from the filters serving.
    pub middleware: Vec<String>,
}

/// The plugins serving now and the routes they serve; shared by whoever triggers reloads.
pub struct LivePlugins {
    routes: Arc<LiveRouter>,
    state: Mutex<State>,
    /// Versions replaced or removed whose requests or shutdown hook are not done yet.
    draining: Arc<Draining>,
}

struct State {
    settings: LiveSettings,
    tables: PluginTables,
    /// The version serving for each plugin file, keyed by the file's path in the folder.
    serving: BTreeMap<PathBuf, Version>,
    /// Files refused as they are now: not tried again until they change (or, for a clash, until another
    /// plugin goes away).
    refused: BTreeMap<PathBuf, Refusal>,
}

/// A file refused as it is now.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Refusal {
    /// The file's status when it was judged.
    status: Option<FileStatus>,
    /// It clashed with another plugin serving (a route, or its name).
    clash: bool,
}

impl Refusal {
    fn of(err: &LoadError, status: Option<FileStatus>) -> Refusal {
        let clash = matches!(
            err.kind,
            LoadErrorKind::Route(RouteError::Conflict { .. }) | LoadErrorKind::DuplicateName { .. }
        );
        Refusal { status, clash }
    }
}

/// One plugin version serving.
struct Version {
    plugin: LoadedPlugin,
    /// The file's status when it was read.
    status: Option<FileStatus>,
    /// The table its `init` got.
    table: Option<PluginTable>,
}

/// What identifies a file's contents without reading it: a rename over it, a write into it or a `touch`
/// changes one of these.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FileStatus {
    device: u64,
    inode: u64,
    len: u64,
    modified_ns: i128,
    changed_ns: i128,
}

impl FileStatus {
    /// The status of the file `path` names (following a symlink); `None` if it cannot be read.
    fn of(path: &Path) -> Option<FileStatus> {
        let meta = fs::metadata(path).ok()?;
        let ns = |secs: i64, nanos: i64| i128::from(secs) * 1_000_000_000 + i128::from(nanos);
        Some(FileStatus {
            device: meta.dev(),
            inode: meta.ino(),
            len: meta.len(),
            modified_ns: ns(meta.mtime(), meta.mtime_nsec()),
            changed_ns: ns(meta.ctime(), meta.ctime_nsec()),
        })
    }
}

/// One change a reload made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    Added {
        name: String,
        version: String,
        file: PathBuf,
    },
    Replaced {
        name: String,
        from: String,
        to: String,
        file: PathBuf,
    },
    Removed {
        name: String,
        version: String,
        file: PathBuf,
    },
    /// The config file's `middleware` list changed.
    Middleware { from: Vec<String>, to: Vec<String> },
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::Added {
                name,
                version,
                file,
            } => {
                write!(f, "added: {name} {version} from {}", file.display())
            }
            Change::Replaced {
                name,
                from,
                to,
                file,
            } => {
                write!(f, "replaced: {name} {from} by {to} from {}", file.display())
            }
            Change::Removed {
                name,
                version,
                file,
            } => {
                write!(f, "removed: {name} {version} ({} is gone)", file.display())
            }
            Change::Middleware { from, to } => write!(f, "middleware: {from:?} -> {to:?}"),
        }
    }
}

/// What a reload did: the changes made and the files refused (each kept the version serving, if any).
#[derive(Debug, Default)]
pub struct ReloadReport {
    /// What became of the config file, when the reload read it again: `Ok(file)` or why it was not
    /// applied (the running configuration stays).
    pub config: Option<Result<PathBuf, String>>,
    pub changes: Vec<Change>,
    /// One line each, as logged and as `plugd check` prints it.
    pub refused: Vec<String>,
}

impl ReloadReport {
    /// One line: how many changes and refusals.
    pub fn summary(&self) -> String {
        let config = match &self.config {
            None => String::new(),
            Some(Ok(file)) => format!("config file {} re-read; ", file.display()),
            Some(Err(_)) => "config file kept as it was running; ".to_owned(),
        };
        format!(
            "{config}{} change(s), {} file(s) refused",
            self.changes.len(),
            self.refused.len()
        )
    }
}

impl fmt::Display for ReloadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.config {
            Some(Ok(file)) => writeln!(f, "config file {} re-read", file.display())?,
            Some(Err(reason)) => writeln!(
                f,
                "config file not applied, the running one stays: {reason}"
            )?,
            None => {}
        }
        if self.changes.is_empty() && self.refused.is_empty() {
            return writeln!(f, "nothing changed: the plugin folder matches what serves");
        }
        for change in &self.changes {
            writeln!(f, "{change}")?;
        }
        for refusal in &self.refused {
            writeln!(
                f,
                "refused {refusal}; the version serving (if any) keeps serving"
            )?;
        }
        Ok(())
    }
}

impl LivePlugins {
    /// Takes over the plugins loaded at startup and the files refused then ([`super::Plugins::into_parts`]),
    /// the plugins already registered on `router`, which becomes the live router.
    pub fn adopt(
        (loaded, refused): (Vec<LoadedPlugin>, Vec<LoadError>),
        router: Router,
        tables: PluginTables,
        settings: LiveSettings,
    ) -> LivePlugins {
        let serving = loaded
            .into_iter()
            .map(|plugin| {
                let path = plugin.path().to_owned();
                let version = Version {
                    status: FileStatus::of(&path),
                    table: tables.get(plugin.name()).cloned(),
                    plugin,
                };
                (path, version)
            })
            .collect();
        let refused = refused
            .into_iter()
            .filter(|err| err.path != settings.dir)
            .map(|err| {
                let refusal = Refusal::of(&err, FileStatus::of(&err.path));
                (err.path, refusal)
            })
            .collect();
        LivePlugins {
            routes: Arc::new(LiveRouter::new(router)),
            state: Mutex::new(State {
                settings,
                tables,
                serving,
                refused,
            }),
            draining: Arc::default(),
        }
    }

    /// The routes the server serves (swapped by every reload that changes something).
    pub fn routes(&self) -> &Arc<LiveRouter> {
        &self.routes
    }

    /// Brings what serves in step with the plugin folder (the folder watcher's reload); see the module
    /// docs.
    pub fn rescan(&self) -> ReloadReport {
        self.lock()
            .reload(&self.routes, &self.draining, ReloadReport::default())
    }

    /// What `SIGHUP` and the admin listener's reload do: read the config file's `[plugins.NAME]` tables and
    /// `middleware` list again (plugins whose table changed start anew, the chain is made anew; an invalid
    /// file is logged in one line and the running configuration stays), then [`LivePlugins::rescan`].
    pub fn reload(&self) -> ReloadReport {
        let mut state = self.lock();
        let mut report = ReloadReport::default();
        if let Some(source) = state.settings.config.clone() {
            report.config = Some(match source.reread() {
                Ok(reloaded) => {
                    state.take_config(reloaded, &mut report);
                    Ok(source.file)
                }
                Err(reason) => {
                    log::warn!(
                        "config file not applied, the running configuration stays: {reason}"
                    );
                    Err(reason)
                }
            });
        }
        state.reload(&self.routes, &self.draining, report)
    }

    /// Calls `visit` with every plugin version: those serving (`true`), in file-name order, then those
    /// draining (`false`), oldest first.
    pub fn visit_versions(&self, mut visit: impl FnMut(&LoadedPlugin, bool)) {
        for version in self.lock().serving.values() {
            visit(&version.plugin, true);
        }
        for plugin in self.draining.versions() {
            visit(&plugin, false);
        }
    }

    /// Runs every serving plugin's shutdown hook (each bounded by the shutdown timeout), at exit.
    pub fn shutdown(&self) {
        let state = self.lock();
        for version in state.serving.values() {
            drain::shutdown_hook(&version.plugin, state.settings.shutdown_timeout);
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A reload that panicked left the previous routes serving and `serving` describing them.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl State {
    /// Takes the plugin tables and the middleware list read again from the config file; a changed list is
    /// noted in `report`, so that the router is built anew.
    fn take_config(&mut self, reloaded: Reloaded, report: &mut ReloadReport) {
        self.tables = reloaded.plugins;
        // A file refused by its `init` may start with its new table.
        self.refused.clear();
        if reloaded.middleware != self.settings.middleware {
            report.changes.push(Change::Middleware {
                from: std::mem::replace(&mut self.settings.middleware, reloaded.middleware.clone()),
                to: reloaded.middleware,
            });
        }
    }

    /// Brings what serves in step with the folder, after the changes `report` already holds.
    fn reload(
        &mut self,
        routes: &LiveRouter,
        draining: &Arc<Draining>,
        mut report: ReloadReport,
    ) -> ReloadReport {
        let dir = self.settings.dir.clone();
        if let Err(reason) = self.settings.policy.trust.check_folder(&dir) {
            let line = format!("{}: {reason}", dir.display());
            log::warn!("plugin folder refused: {line}");
            report.refused.push(line);
            return report;
        }
        let files = if dir.is_dir() {
            discover(&dir)
        } else {
            Vec::new()
        };
        let mut retired = Vec::new();
        let gone: Vec<PathBuf> = self
            .serving
            .keys()
            .filter(|path| !files.contains(path))
            .cloned()
            .collect();
        for path in gone {
            if let Some(version) = self.serving.remove(&path) {
                report.changes.push(Change::Removed {
                    name: version.plugin.name().to_owned(),
                    version: version.plugin.version().to_owned(),
                    file: path,
                });
                retired.push(version.plugin);
            }
        }
        self.refused.retain(|path, _| files.contains(path));
        self.consider_all(&files, &mut report, &mut retired);
        let freed = report
            .changes
            .iter()
            .any(|change| matches!(change, Change::Removed { .. } | Change::Replaced { .. }));
        if freed {
            // What a clash was with may be gone: those files get one more try.
            let clashed: Vec<PathBuf> = self
                .refused
                .iter()
                .filter(|(_, refusal)| refusal.clash)
                .map(|(path, _)| path.clone())
                .collect();
            self.refused.retain(|_, refusal| !refusal.clash);
            // A clash refused earlier in this reload is judged again: only its new verdict is reported.
            report.refused.retain(|line| {
                !clashed
                    .iter()
                    .any(|path| line.starts_with(&format!("{}: ", path.display())))
            });
            self.consider_all(&clashed, &mut report, &mut retired);
        }
        if report.changes.is_empty() {
            return report;
        }
        match self.build_router(routes.current().middleware()) {
            Ok(router) => routes.swap(router),
            Err(err) => log::error!("bug: the plugins serving no longer register together: {err}"),
        }
        for change in &report.changes {
            log::info!("plugin {change}");
        }
        for plugin in retired {
            draining.retire(plugin, self.settings.shutdown_timeout);
        }
        report
    }

    /// Considers each file of `files` (see [`State::consider`]), noting in `report` the changes and the
    /// refusals, and in `retired` the versions replaced.
    fn consider_all(
        &mut self,
        files: &[PathBuf],
        report: &mut ReloadReport,
        retired: &mut Vec<LoadedPlugin>,
    ) {
        for path in files {
            // Taken before the file is read: a refusal is remembered for the bytes it judged, so a file
            // renamed over them meanwhile is still considered.
            let status = FileStatus::of(path);
            match self.consider(path, status) {
                Ok(Some((change, old))) => {
                    report.changes.push(change);
                    retired.extend(old);
                }
                Ok(None) => {}
                Err(err) => {
                    log::warn!("plugin refused: {err}");
                    self.refused.insert(path.clone(), Refusal::of(&err, status));
                    report.refused.push(err.to_string());
                }
            }
        }
    }

    /// The file at `path` against the version serving from it: unchanged (`None`), or the change made and
    /// the version it retires. `Err`: refused, and whatever served keeps serving.
    fn consider(
        &mut self,
        path: &Path,
        status: Option<FileStatus>,
    ) -> Result<Option<(Change, Option<LoadedPlugin>)>, LoadError> {
        let serving = self.serving.get(path);
        let table_of = |name: &str| self.tables.get(name).cloned();
        let unchanged = serving.is_some_and(|version| {
            version.status == status && version.table == table_of(version.plugin.name())
        });
        if unchanged
            || self
                .refused
                .get(path)
                .is_some_and(|refusal| refusal.status == status)
        {
            return Ok(None);
        }
        let policy = self.settings.policy;
        policy
            .trust
            .check_file(&self.settings.dir, path)
            .map_err(|reason| LoadError {
                path: path.to_owned(),
                kind: LoadErrorKind::Untrusted(reason),
            })?;
        let contents = read(path)?;
        let library = match serving {
            Some(version) if version.plugin.sha256() == contents.sha256 => {
                if version.table == table_of(version.plugin.name()) {
                    // Touched, or renamed over by the same bytes: nothing to do.
                    if let Some(version) = self.serving.get_mut(path) {
                        version.status = status;
                    }
                    return Ok(None);
                }
                version.plugin.library()
            }
            _ => open_contents(path, &contents)?,
        };
        let table = table_of(library.name());
        let plugin = start(
            path,
            library,
            &contents.sha256,
            table.as_ref(),
            &policy.isolation,
        )?;
        if let Err(kind) = self.fits(path, &plugin) {
            drain::shutdown_hook(&plugin, self.settings.shutdown_timeout);
            return Err(LoadError {
                path: path.to_owned(),
                kind,
            });
        }
        log::debug!(
            "plugin {} {} from {} fits: {}",
            plugin.name(),
            plugin.version(),
            path.display(),
            route_list(&plugin.routes())
        );
        self.refused.remove(path);
        let new = Version {
            plugin,
            status,
            table,
        };
        let change = match self.serving.get(path) {
            Some(old) => Change::Replaced {
                name: new.plugin.name().to_owned(),
                from: old.plugin.version().to_owned(),
                to: new.plugin.version().to_owned(),
                file: path.to_owned(),
            },
            None => Change::Added {
                name: new.plugin.name().to_owned(),
                version: new.plugin.version().to_owned(),
                file: path.to_owned(),
            },
        };
        let old = self
            .serving
            .insert(path.to_owned(), new)
            .map(|old| old.plugin);
        Ok(Some((change, old)))
    }

    /// Whether `plugin`, taking the place of whatever serves from `path`, fits beside every other plugin
    /// serving: a name of its own, routes no one else serves.
    fn fits(&self, path: &Path, plugin: &LoadedPlugin) -> Result<(), LoadErrorKind> {
        let others = || {
            self.serving
                .iter()
                .filter(|(file, _)| file.as_path() != path)
        };
        if let Some((first, _)) = others().find(|(_, v)| v.plugin.name() == plugin.name()) {
            return Err(LoadErrorKind::DuplicateName {
                name: plugin.name().to_owned(),
                first: first.clone(),
            });
        }
        let mut router = (self.settings.base_routes)();
        for (_, version) in others() {
            version.plugin.register_isolated(&mut router)?;
        }
        plugin.register_isolated(&mut router)
    }

    /// The router for everything serving, inside the middleware chain made of the filters serving (or
    /// `running`, the chain serving now, with one line why, when a name of the chain is no longer served);
    /// `Err` only if they no longer register together (a bug: each was checked against the others before it
    /// took its place).
    fn build_router(&self, running: &Chain) -> Result<Router, LoadErrorKind> {
        let mut router = (self.settings.base_routes)();
        for version in self.serving.values() {
            version.plugin.register_isolated(&mut router)?;
        }
        let serving: Vec<&LoadedPlugin> = self.serving.values().map(|v| &v.plugin).collect();
        let chain = middleware_chain(&self.settings.middleware, &serving, &self.tables)
            .unwrap_or_else(|why| {
                log::warn!("{why}: the running middleware chain is kept");
                running.clone()
            });
        router.set_middleware(chain);
        Ok(router.build())
    }
}
