//! `plugd check FILE`: one plugin file through the steps `plugd` takes at startup (load and verify, `init`
//! with its config table, route registration after `static`), without serving, then its shutdown hook. A
//! plugin author learns before deploying whether plugd will serve the file, and the reason if not is the very
//! line the server would log.

use std::fmt::Write as _;
use std::path::Path;

use super::bulkhead::Isolation;
use super::error::LoadError;
use super::load::{mounted_routes, open, start};
use crate::config::PluginTables;
use crate::router::RouterBuilder;

/// What `plugd check` found: a description of the plugin (as far as it got) and the verdict.
pub struct CheckReport {
    /// Lines for the operator: name, version, plugin-api, mount prefix, routes, configuration, init.
    pub text: String,
    /// `Ok` if plugd would serve the plugin; otherwise the refusal, as the server logs it.
    pub verdict: Result<(), LoadError>,
}

/// Checks the plugin at `path` against `router`, which already holds the routes registered before plugins
/// (`static`). Runs the plugin's `init` and, if that succeeded, its shutdown hook.
pub fn check(
    path: &Path,
    tables: &PluginTables,
    isolation: &Isolation,
    router: &mut RouterBuilder,
) -> CheckReport {
    let mut text = String::new();
    let verdict = run(path, tables, isolation, router, &mut text);
    CheckReport { text, verdict }
}

fn run(
    path: &Path,
    tables: &PluginTables,
    isolation: &Isolation,
    router: &mut RouterBuilder,
    text: &mut String,
) -> Result<(), LoadError> {
    let (library, contents) = open(path)?;
    let name = library.name();
    let table = tables.get(name);
    let mount = table.map(|t| t.mount.clone()).unwrap_or_default();
    // Writing into a String cannot fail.
    let _ = writeln!(text, "plugin      {name} {}", library.version());
    let _ = writeln!(text, "file        {}", path.display());
    let _ = writeln!(text, "sha256      {}", contents.sha256);
    let _ = writeln!(
        text,
        "plugin-api  {} (this plugd: {})",
        library.api_version(),
        plugin_api::host::API_VERSION
    );
    let _ = writeln!(text, "mount       {}", mount.as_str());
    for (i, (method, pattern)) in mounted_routes(&library, &mount).iter().enumerate() {
        let label = if i == 0 { "routes" } else { "" };
        let _ = writeln!(text, "{label:<11} {method} {pattern}");
    }
    let _ = match table {
        Some(table) => writeln!(
            text,
            "config      [plugins.{name}]: {} {}",
            table.entries.len(),
            if table.entries.len() == 1 {
                "entry"
            } else {
                "entries"
            }
        ),
        None => writeln!(
            text,
            "config      no [plugins.{name}] table: init gets no entries"
        ),
    };
    let plugin = start(path, library, &contents.sha256, table, isolation)?;
    let _ = writeln!(text, "init        accepted its configuration");
    let registered = plugin.register(router);
    plugin.handler().shutdown();
    registered.map_err(|kind| LoadError {
        path: path.to_owned(),
        kind,
    })
}
