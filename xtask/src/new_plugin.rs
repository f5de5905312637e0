//! `cargo xtask new-plugin PATH`: a plugin crate that builds, as `cargo new` or `spin new` would make one. It
//! sits outside plugd's workspace (its own `[workspace]` table), depends on this repository's `plugin-api` by
//! absolute path, and has one route that reads its configuration and one unit test, so `cargo test`,
//! `cargo build` and `plugd check` all pass before its author writes a line.

use std::fs;
use std::path::Path;

/// Creates the crate; refuses a `PATH` that exists (never overwrites) or whose last component is not a crate
/// name.
pub fn run(args: &[std::ffi::OsString], workspace: &Path) -> Result<(), String> {
    let [path] = args else {
        return Err("usage: cargo xtask new-plugin PATH".to_owned());
    };
    // `cargo run` keeps the caller's working directory, so a relative PATH means where the author stands.
    let path =
        std::path::absolute(path).map_err(|e| format!("{}: {e}", Path::new(path).display()))?;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| format!("{} has no folder name to name the plugin", path.display()))?;
    check_name(name)?;
    if path.exists() {
        return Err(format!(
            "{} already exists; give a new folder",
            path.display()
        ));
    }
    let api = workspace
        .join("plugin-api")
        .canonicalize()
        .map_err(|e| format!("cannot find this repository's plugin-api: {e}"))?;
    let files = [
        ("Cargo.toml", cargo_toml(name, &api)),
        ("src/lib.rs", lib_rs(name)),
        (".gitignore", "/target\n/Cargo.lock\n".to_owned()),
    ];
    for (file, text) in files {
        let file = path.join(file);
        fs::create_dir_all(file.parent().expect("files sit in a folder"))
            .and_then(|()| fs::write(&file, text))
            .map_err(|e| format!("cannot write {}: {e}", file.display()))?;
    }
    let library = format!(
        "{}{}{}",
        std::env::consts::DLL_PREFIX,
        name.replace('-', "_"),
        std::env::consts::DLL_SUFFIX
    );
    println!(
        "created plugin `{name}` in {dir}\n\n    cd {dir}\n    cargo test\n    cargo build --release\n    \
         plugd check target/release/{library}\n",
        dir = path.display()
    );
    Ok(())
}

/// A crate name that is also a fine plugin name: a lowercase ASCII letter, then lowercase letters, digits,
/// `-` and `_`.
fn check_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{name}` cannot name a plugin crate: use a lowercase letter, then lowercase letters, digits, - or _"
        ))
    }
}

fn cargo_toml(name: &str, api: &Path) -> String {
    format!(
        r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2021"
publish = false

[lib]
# cdylib: the library plugd loads; rlib: what `cargo test` links the unit tests against.
crate-type = ["cdylib", "rlib"]

[dependencies]
plugin-api = {{ path = "{api}" }}

# Its own workspace wherever it sits. Keep the default `panic = "unwind"`: a panic in a handler then becomes a
# 500 for that request, never a crash of plugd.
[workspace]
"#,
        api = api.display()
    )
}

fn lib_rs(name: &str) -> String {
    TEMPLATE.replace("NAME", name)
}

/// The plugin's source; `NAME` is replaced by the plugin's name.
const TEMPLATE: &str = r#"//! NAME: a plugd plugin. Build it with `cargo build --release`, check it with
//! `plugd check target/release/<library>`, then copy the library into plugd's plugin folder.

use plugin_api::{Config, Handler, InitError, Request, Response};

/// The plugin's state, built once by `init` and shared by every worker (`&self` only: use atomics or locks
/// for anything that changes).
pub struct Plugin {
    greeting: String,
}

impl Plugin {
    /// Reads the plugin's table in plugd's config file, e.g. `[plugins.NAME] greeting = "Hi"`.
    fn new(config: &Config<'_>) -> Result<Plugin, InitError> {
        let greeting = config.get("greeting").unwrap_or("Hello");
        if greeting.is_empty() {
            return Err("greeting must not be empty".into());
        }
        Ok(Plugin {
            greeting: greeting.to_owned(),
        })
    }
}

impl Handler for Plugin {
    fn handle(&self, req: &Request<'_>) -> Response {
        // Path parameters arrive percent-decoded.
        let who = req.param("who").unwrap_or("stranger");
        Response::text(format!("{}, {who}!", self.greeting))
    }
}

plugin_api::export_plugin! {
    name: "NAME",
    version: env!("CARGO_PKG_VERSION"),
    routes: [("GET", "/NAME/{who}")],
    init: Plugin::new,
}

#[cfg(test)]
mod tests {
    use plugin_api::testing::{TestPlugin, TestRequest};

    #[test]
    fn greets_with_the_configured_greeting() {
        let plugin = TestPlugin::start_with_config(super::plugd_plugin, &[("greeting", "Hi")]).unwrap();
        let response = plugin.call(TestRequest::get("/NAME/Ann%20Lee"));
        assert_eq!(response.body_str(), Some("Hi, Ann Lee!"));
    }
}
"#;
