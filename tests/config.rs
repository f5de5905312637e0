//! End-to-end tests of the config file (`plugd --config FILE`), mount prefixes, `plugd check` and
//! `cargo xtask new-plugin`: the real binary, real compiled plugins (the examples and the `config_echo`
//! fixture, which answers with the configuration its `init` received), real requests over TCP.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use plugd_tests::{
    RunOutput, Server, TempDir, example_plugin, plugin_dir_with, run_plugd, workspace_root,
};

#[path = "fixtures/builder.rs"]
mod fixtures;

/// How long a log line has to appear after the startup step that causes it.
const LOG_WAIT: Duration = Duration::from_secs(10);
/// Bound on a plugd run that is expected to exit by itself (a refusal, or `plugd check`).
const RUN_TIMEOUT: Duration = Duration::from_secs(20);

/// The target folder the example plugins were built into; fixtures are built there too.
fn target_dir() -> PathBuf {
    let profile_dir = example_plugin("hello").parent().unwrap().to_owned();
    profile_dir.parent().unwrap().to_owned()
}

fn config_echo() -> PathBuf {
    fixtures::build_fixture("config_echo", &target_dir())
}

/// A folder holding `plugd.toml` with `text`; returns the folder (kept alive by the caller) and the file.
fn config_file(text: &str) -> (TempDir, PathBuf) {
    let dir = TempDir::new("config");
    let file = dir.join("plugd.toml");
    fs::write(&file, text).unwrap();
    (dir, file)
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("utf-8 temp path")
}

/// Runs `plugd ARGS` expecting it to stop at startup: exit 2 with exactly one line on stderr, which is
/// returned.
fn refused_at_startup(args: &[&str]) -> String {
    let out = run_plugd(args, &[], RUN_TIMEOUT);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {:?}", out.stderr);
    lines[0].to_owned()
}

/// `plugd --config FILE` with a file holding `text`: must exit 2 with one line; returns it.
fn refused_config(text: &str) -> String {
    let (_dir, file) = config_file(text);
    refused_at_startup(&["--port", "0", "--config", path_str(&file)])
}

#[test]
fn a_plugin_table_reaches_init_flattened_in_file_order() {
    let (_dir, file) = config_file(
        r#"
[plugins.config-echo]
greeting = "Hi \"there\""
limit = 42
ratio = 1.5
enabled = true
tokens = ["a", "b"]
[plugins.config-echo.db]
url = "postgres://db/app"
"#,
    );
    let server = Server::start_with_plugin_dir(
        plugin_dir_with(&[config_echo()]),
        &["--config", path_str(&file)],
    );
    let response = server.get("/config-echo");
    assert_eq!(response.status, 200, "{}", server.stderr());
    assert_eq!(
        response.body_str(),
        "greeting=Hi \"there\"\nlimit=42\nratio=1.5\nenabled=true\ntokens=a\ntokens=b\n\
         db.url=postgres://db/app\n"
    );
}

#[test]
fn an_unknown_host_key_exits_2_naming_the_key_and_its_line() {
    let line = refused_config("port = 0\n\nprot = 8080\n");
    assert!(
        line.contains("`prot`") && line.contains("line 3") && line.contains("unknown key"),
        "{line}"
    );
    let line = refused_config("max-body-bytes = 10\n");
    assert!(
        line.contains("`max-body-bytes`") && line.contains("did you mean `max_body_bytes`"),
        "{line}"
    );
}

#[test]
fn a_wrong_type_or_an_invalid_value_exits_2_naming_the_key_and_its_line() {
    let line = refused_config("# comment\nport = \"8080\"\n");
    assert!(
        line.contains("`port`") && line.contains("line 2") && line.contains("expected an integer"),
        "{line}"
    );
    let line = refused_config("strict_plugins = \"yes\"\n");
    assert!(
        line.contains("`strict_plugins`") && line.contains("expected a boolean"),
        "{line}"
    );
    // The flag's own parser judges the value: --max-header-bytes accepts 256 to 1 MiB.
    let line = refused_config("host = \"127.0.0.1\"\nmax_header_bytes = 10\n");
    assert!(
        line.contains("`max_header_bytes`") && line.contains("line 2") && line.contains("10"),
        "{line}"
    );
    let line = refused_config("header_timeout = -1\n");
    assert!(
        line.contains("`header_timeout`") && line.contains("seconds"),
        "{line}"
    );
    let line = refused_config("[plugins.hello]\ngreeting = \"x\"\nmount = \"/api/\"\n");
    assert!(
        line.contains("`plugins.hello.mount`") && line.contains("line 3"),
        "{line}"
    );
    let line = refused_config("[plugins]\nhello = 3\n");
    assert!(
        line.contains("`plugins.hello`") && line.contains("expected a table"),
        "{line}"
    );
}

#[test]
fn a_file_that_is_not_toml_is_missing_or_is_a_folder_exits_2_in_one_line() {
    let line = refused_config("port = 0\n[plugins.hello\n");
    assert!(
        line.contains("not valid TOML") && line.contains("line 2"),
        "{line}"
    );

    let dir = TempDir::new("config-missing");
    let missing = dir.join("absent.toml");
    let line = refused_at_startup(&["--config", path_str(&missing)]);
    assert!(
        line.contains("absent.toml") && line.contains("No such file"),
        "{line}"
    );

    let line = refused_at_startup(&["--config", path_str(dir.path())]);
    assert!(line.contains("Is a directory"), "{line}");

    // PLUGD_CONFIG names the file just as --config does.
    let out = run_plugd(
        &["--port", "0"],
        &[("PLUGD_CONFIG", path_str(&missing))],
        RUN_TIMEOUT,
    );
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(out.stderr.contains("absent.toml"), "{out:?}");
}

/// The worker count `plugd` logs at startup with `threads` set by any of the four layers.
fn workers(args: &[&str], envs: &[(&str, &str)]) -> String {
    let server = Server::start_with_env(args, envs);
    let line = server
        .wait_for_log_line(&["listening on http://"], LOG_WAIT)
        .unwrap();
    // `listening on http://ADDR with N workers (up to M while handlers block)`
    let counts = line.split(" with ").nth(1).unwrap();
    counts.split(" (").next().unwrap().to_owned()
}

#[test]
fn precedence_is_flag_then_environment_then_file_then_default() {
    let (_dir, file) = config_file("threads = 5\n");
    let file = path_str(&file);
    assert_eq!(workers(&["--config", file], &[]), "5 workers");
    assert_eq!(
        workers(&["--config", file], &[("PLUGD_THREADS", "6")]),
        "6 workers"
    );
    assert_eq!(
        workers(
            &["--config", file, "--threads", "7"],
            &[("PLUGD_THREADS", "6")]
        ),
        "7 workers"
    );
    let default = workers(&[], &[]);
    assert!(
        !["5 workers", "6 workers", "7 workers"].contains(&default.as_str()),
        "{default}"
    );

    // A boolean follows the same order: the file turns --strict-plugins on, the variable turns it off.
    let plugins = plugin_dir_with(&[example_plugin("hello")]);
    fs::write(plugins.join("x.so"), b"not a library").unwrap();
    let (_strict_dir, strict) = config_file(&format!(
        "port = 0\nplugin_dir = \"{}\"\nstrict_plugins = true\n",
        path_str(plugins.path())
    ));
    let out = run_plugd(&["--config", path_str(&strict)], &[], RUN_TIMEOUT);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let server = Server::start_with_env(
        &[
            "--config",
            path_str(&strict),
            "--plugin-dir",
            path_str(plugins.path()),
        ],
        &[("PLUGD_STRICT_PLUGINS", "false")],
    );
    assert_eq!(server.get("/plaintext").status, 200);
}

#[test]
fn a_plugin_that_refuses_its_configuration_is_refused_with_its_message() {
    let (_dir, file) = config_file("[plugins.config-echo]\nrefuse = \"no database url\"\n");
    let plugins = [config_echo(), example_plugin("hello")];
    let server =
        Server::start_with_plugin_dir(plugin_dir_with(&plugins), &["--config", path_str(&file)]);
    let line = server
        .wait_for_log_line(
            &["plugin refused: ", "libconfig_echo.so: init failed: "],
            LOG_WAIT,
        )
        .unwrap_or_else(|| panic!("no refusal logged:\n{}", server.stderr()));
    assert!(
        line.ends_with("config-echo refuses its configuration: no database url"),
        "{line}"
    );
    assert_eq!(server.get("/config-echo").status, 404);
    assert_eq!(server.get("/hello/Ann").body_str(), "Hello, Ann!");

    let dir = plugin_dir_with(&plugins);
    let out = run_plugd(
        &[
            "--port",
            "0",
            "--config",
            path_str(&file),
            "--plugin-dir",
            path_str(dir.path()),
            "--strict-plugins",
        ],
        &[],
        RUN_TIMEOUT,
    );
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(out.stderr.contains("no database url"), "{out:?}");
}

#[test]
fn a_table_for_a_plugin_that_is_not_loaded_is_a_warning() {
    let (_dir, file) = config_file("[plugins.hello]\n[plugins.helo]\ngreeting = \"Hi\"\n");
    let server = Server::start_with_plugin_dir(
        plugin_dir_with(&[example_plugin("hello")]),
        &["--config", path_str(&file)],
    );
    let line = server
        .wait_for_log_line(&["WARN", "[plugins.helo]"], LOG_WAIT)
        .unwrap_or_else(|| panic!("no warning:\n{}", server.stderr()));
    assert!(line.contains("no plugin named `helo`"), "{line}");
    assert!(!server.stderr().contains("[plugins.hello]"));
    assert_eq!(server.get("/plaintext").status, 200);
}

#[test]
fn a_mount_prefix_moves_every_route_of_its_plugin() {
    let (_dir, file) = config_file(
        "[plugins.config-echo]\nmount = \"/api/v1\"\n[plugins.hello]\nmount = \"/greet\"\n",
    );
    let server = Server::start_with_plugin_dir(
        plugin_dir_with(&[config_echo(), example_plugin("hello")]),
        &["--config", path_str(&file)],
    );
    let echoed = server.get("/api/v1/config-echo");
    assert_eq!(
        (echoed.status, echoed.body_str()),
        (200, "mount=/api/v1\n".to_owned())
    );
    assert_eq!(server.get("/api/v1/items/7").body_str(), "item 7");
    assert_eq!(server.get("/greet/hello/Ann").body_str(), "Hello, Ann!");
    // The plugin's `/` is the prefix plus `/`.
    assert_eq!(server.get("/greet/").status, 200);
    for unmounted in [
        "/config-echo",
        "/items/7",
        "/hello/Ann",
        "/",
        "/api/v1",
        "/greet",
    ] {
        assert_eq!(server.get(unmounted).status, 404, "{unmounted}");
    }
}

#[test]
fn a_mount_prefix_clash_is_refused_naming_both_owners() {
    // `clash` claims GET /plaintext like `hello`: mounted apart they both serve, mounted together the later
    // file (libzz-clash.so) is refused.
    let clash = fixtures::build_fixture("clash", &target_dir());
    let dir_with_both = || {
        let dir = plugin_dir_with(&[example_plugin("hello")]);
        fs::copy(&clash, dir.join("libzz-clash.so")).unwrap();
        dir
    };

    let (_apart_dir, apart) = config_file("[plugins.clash]\nmount = \"/c\"\n");
    let server = Server::start_with_plugin_dir(dir_with_both(), &["--config", path_str(&apart)]);
    assert_eq!(server.get("/c/clash-only").body_str(), "clash");
    assert_eq!(server.get("/c/plaintext").body_str(), "clash");
    assert_eq!(server.get("/plaintext").body_str(), "Hello, World!");
    drop(server);

    let (_same_dir, same) =
        config_file("[plugins.hello]\nmount = \"/x\"\n[plugins.clash]\nmount = \"/x\"\n");
    let server = Server::start_with_plugin_dir(dir_with_both(), &["--config", path_str(&same)]);
    let line = server
        .wait_for_log_line(&["plugin refused: ", "libzz-clash.so: "], LOG_WAIT)
        .unwrap_or_else(|| panic!("no refusal logged:\n{}", server.stderr()));
    assert!(
        line.contains("GET /x/plaintext") && line.contains("`clash`") && line.contains("`hello`"),
        "{line}"
    );
    assert_eq!(server.get("/x/clash-only").status, 404);
    assert_eq!(server.get("/x/hello/Ann").body_str(), "Hello, Ann!");
}

/// `plugd check ARGS`, which must exit by itself.
fn check(args: &[&str]) -> RunOutput {
    let mut full = vec!["check"];
    full.extend_from_slice(args);
    run_plugd(&full, &[], RUN_TIMEOUT)
}

#[test]
fn check_describes_a_good_plugin_with_its_mounted_routes_and_exits_0() {
    let (_dir, file) = config_file("[plugins.config-echo]\nmount = \"/api\"\ngreeting = \"Hi\"\n");
    let library = config_echo();
    let out = check(&[path_str(&library), "--config", path_str(&file)]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let api = format!("plugin-api  {}", plugin_api::host::API_VERSION);
    for expected in [
        "plugin      config-echo 0.1.0",
        api.as_str(),
        "mount       /api",
        "GET /api/config-echo",
        "GET /api/items/{id}",
        "[plugins.config-echo]: 2 entries",
        "init        accepted its configuration",
        "plugd would serve it",
    ] {
        assert!(out.stdout.contains(expected), "{expected}: {out:?}");
    }

    let (_refusing_dir, refusing) = config_file("[plugins.config-echo]\nrefuse = \"bad limit\"\n");
    let out = check(&["--config", path_str(&refusing), path_str(&library)]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        out.stderr.contains(
            "plugin refused: {}: init failed: config-echo refuses its configuration: bad limit"
                .replace("{}", path_str(&library))
                .as_str()
        ),
        "{out:?}"
    );
}

#[test]
fn check_refuses_a_garbage_file_with_the_servers_reason_and_exits_1() {
    let dir = TempDir::new("check-garbage");
    let garbage = dir.join("garbage.so");
    fs::write(
        &garbage,
        (0..4096u32)
            .map(|i| (i * 31 % 251) as u8)
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let out = check(&[path_str(&garbage)]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        out.stderr.contains("plugin refused: ")
            && out.stderr.contains("garbage.so: not a loadable library"),
        "{out:?}"
    );
    assert!(out.stdout.contains("plugd would refuse it"), "{out:?}");
}

#[test]
fn check_refuses_an_incompatible_plugin_naming_both_versions_and_exits_1() {
    let library = fixtures::build_incompatible_fixture(&target_dir());
    let out = check(&[path_str(&library)]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let expected = format!(
        "built against an incompatible plugin-api: this plugd expects plugin-api {}, the plugin was built \
         against plugin-api {}",
        plugin_api::host::API_VERSION,
        fixtures::INCOMPATIBLE_API_VERSION
    );
    assert!(out.stderr.contains(&expected), "{out:?}");
}

fn cargo(args: &[&str], dir: &Path) {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("cargo runs");
    assert!(
        output.status.success(),
        "cargo {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn new_plugin_creates_a_crate_that_tests_builds_checks_and_serves() {
    let dir = TempDir::new("new-plugin");
    let crate_dir = dir.join("greeter");
    cargo(
        &[
            "run",
            "--quiet",
            "-p",
            "xtask",
            "--",
            "new-plugin",
            path_str(&crate_dir),
        ],
        &workspace_root(),
    );
    let manifest = fs::read_to_string(crate_dir.join("Cargo.toml")).unwrap();
    assert!(
        manifest.contains(r#"crate-type = ["cdylib", "rlib"]"#),
        "{manifest}"
    );
    // Built into the workspace's target folder, where abi_stable is already compiled.
    let target = target_dir();
    let target = path_str(&target);
    cargo(&["test", "--quiet", "--target-dir", target], &crate_dir);
    cargo(&["build", "--quiet", "--target-dir", target], &crate_dir);
    let library = Path::new(target).join("debug/libgreeter.so");

    let out = check(&[path_str(&library)]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(out.stdout.contains("GET /greeter/{who}"), "{out:?}");

    let (_config_dir, file) = config_file("[plugins.greeter]\ngreeting = \"Howdy\"\n");
    let server =
        Server::start_with_plugin_dir(plugin_dir_with(&[library]), &["--config", path_str(&file)]);
    assert_eq!(
        server.get("/greeter/Ann%20Lee").body_str(),
        "Howdy, Ann Lee!"
    );

    // A second new-plugin at the same place never overwrites the author's work.
    let cargo_bin = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let again = Command::new(cargo_bin)
        .args([
            "run",
            "--quiet",
            "-p",
            "xtask",
            "--",
            "new-plugin",
            path_str(&crate_dir),
        ])
        .current_dir(workspace_root())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
}
