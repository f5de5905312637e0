//! What the admin listener asks of whoever owns the plugins: which versions are loaded and how each is
//! doing, and to reload them. The listener knows nothing else about plugins, so the registry that loads
//! them (startup only, or live reloading) can change without touching the listener.
//!
//! [`StaticCatalog`] is the plugins loaded at startup, which never change: its reload says so honestly.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use crate::metrics::PluginCounters;
use crate::plugins::LoadedPlugin;

/// The loaded plugins and their reloading, as the admin listener sees them. Called from the admin thread
/// while the workers serve.
pub trait PluginCatalog: Send + Sync {
    /// Every loaded plugin version: those serving, then those still finishing requests after being
    /// replaced or removed (draining).
    fn plugins(&self) -> Vec<PluginStatus>;

    /// Rescans the plugin folder (what SIGHUP does) and says what changed, or why nothing did.
    fn reload(&self) -> ReloadReport;
}

/// One loaded plugin version.
#[derive(Clone)]
pub struct PluginStatus {
    pub name: String,
    /// The plugin's own version string, from its manifest.
    pub version: String,
    /// The file it was loaded from (as found in the plugin folder).
    pub file: PathBuf,
    /// SHA-256 of the library's bytes, lowercase hex.
    pub sha256: String,
    /// When its `init` succeeded.
    pub loaded_at: SystemTime,
    pub state: PluginState,
    /// Its `(method, pattern)` routes as served (under its mount prefix).
    pub routes: Vec<(String, String)>,
    /// This version's counters: calls, 5xx, panics, in flight, latency.
    pub counters: Arc<PluginCounters>,
}

/// Whether a version takes new requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PluginState {
    /// Its routes lead to it.
    Serving,
    /// Replaced or removed: it only finishes the requests it already has.
    Draining,
}

impl PluginState {
    pub fn as_str(self) -> &'static str {
        match self {
            PluginState::Serving => "serving",
            PluginState::Draining => "draining",
        }
    }
}

/// What a reload did: one line per change and per refused file, or why nothing was attempted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReloadReport {
    /// One line per change made (`added hello 0.2.0 from plugins/libhello.so`, `removed echo`, ...).
    pub changes: Vec<String>,
    /// One line per file refused, as `plugd check` would print it; the version serving before stays.
    pub refusals: Vec<String>,
    /// Set when no reload was attempted, saying why.
    pub not_attempted: Option<String>,
}

/// The plugins loaded at startup, for a plugd that does not reload them.
pub struct StaticCatalog {
    plugins: Vec<PluginStatus>,
}

impl StaticCatalog {
    /// The catalog of `loaded`, every one of them serving.
    pub fn new(loaded: &[LoadedPlugin]) -> StaticCatalog {
        let plugins = loaded
            .iter()
            .map(|plugin| PluginStatus {
                name: plugin.name().to_owned(),
                version: plugin.version().to_owned(),
                file: plugin.path().to_owned(),
                sha256: plugin.sha256().to_owned(),
                loaded_at: plugin.loaded_at(),
                state: PluginState::Serving,
                routes: plugin
                    .routes()
                    .into_iter()
                    .map(|(method, pattern)| (method.to_owned(), pattern))
                    .collect(),
                counters: Arc::clone(plugin.counters()),
            })
            .collect();
        StaticCatalog { plugins }
    }
}

impl PluginCatalog for StaticCatalog {
    fn plugins(&self) -> Vec<PluginStatus> {
        self.plugins.clone()
    }

    fn reload(&self) -> ReloadReport {
        ReloadReport {
            not_attempted: Some(
                "live plugin reload is not available in this build: restart plugd to load changed plugins"
                    .to_owned(),
            ),
            ..ReloadReport::default()
        }
    }
}
