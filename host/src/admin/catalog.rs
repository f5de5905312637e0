//! What the admin listener asks of whoever owns the plugins: which versions are loaded and how each is
//! doing, and to reload them. The listener knows nothing else about plugins, so the registry that loads
//! them (startup only, or live reloading) can change without touching the listener.
//!
//! The live registry ([`LivePlugins`]) is the catalog: its versions serving and draining, and its reload,
//! which is what `SIGHUP` does.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use crate::metrics::PluginCounters;
use crate::plugins::{LivePlugins, LoadedPlugin};

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
    /// This version's counters: requests answered, 5xx, panics, latency.
    pub counters: Arc<PluginCounters>,
    /// Its calls in flight now (its bulkhead's count).
    pub in_flight: usize,
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

/// One version as the admin view shows it.
fn status(plugin: &LoadedPlugin, serving: bool) -> PluginStatus {
    PluginStatus {
        name: plugin.name().to_owned(),
        version: plugin.version().to_owned(),
        file: plugin.path().to_owned(),
        sha256: plugin.sha256().to_owned(),
        loaded_at: plugin.loaded_at(),
        state: if serving {
            PluginState::Serving
        } else {
            PluginState::Draining
        },
        routes: plugin
            .routes()
            .into_iter()
            .map(|(method, pattern)| (method.to_owned(), pattern))
            .collect(),
        counters: Arc::clone(plugin.counters()),
        in_flight: plugin.bulkhead().in_flight(),
    }
}

impl PluginCatalog for LivePlugins {
    fn plugins(&self) -> Vec<PluginStatus> {
        let mut plugins = Vec::new();
        self.visit_versions(|plugin, serving| plugins.push(status(plugin, serving)));
        plugins
    }

    fn reload(&self) -> ReloadReport {
        let report = LivePlugins::reload(self);
        let mut refusals = Vec::new();
        if let Some(Err(reason)) = &report.config {
            refusals.push(format!(
                "config file not applied, the running configuration stays: {reason}"
            ));
        }
        refusals.extend(report.refused.iter().cloned());
        ReloadReport {
            changes: report.changes.iter().map(ToString::to_string).collect(),
            refusals,
            not_attempted: None,
        }
    }
}
