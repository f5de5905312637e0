//! End-to-end tests of the plugin SDK (plugin-api 0.1.1): plugin logs in plugd's log under `RUST_LOG`,
//! any-method routes, `?` errors, `plugin_api::testing` agreeing with plugd, and compatibility both ways
//! with plugin-api 0.1.0. The real `plugd` binary serves real compiled plugins: the examples and the
//! fixtures in tests/fixtures/ (`probe` in the new style, `legacy` built against plugin-api 0.1.0 exactly as
//! released, `old-host` loading plugins the way plugd 0.1.0 did).

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use plugd_tests::{
    Conn, Response, Server, TempDir, example_plugin, example_plugins, plugin_dir_with,
};
use plugin_api::testing::{TestPlugin, TestRequest};

#[path = "fixtures/builder.rs"]
mod fixtures;

/// The `probe` fixture compiled into this test too, to run it through `plugin_api::testing`.
#[path = "fixtures/probe/src/lib.rs"]
mod probe;

/// How long a log line has to appear after the request that causes it.
const LOG_WAIT: Duration = Duration::from_secs(10);

/// The target folder the example plugins were built into; fixtures are built there too.
fn target_dir() -> PathBuf {
    let profile_dir = example_plugin("hello").parent().unwrap().to_owned();
    profile_dir.parent().unwrap().to_owned()
}

/// The built `probe` fixture, once per test binary.
fn probe_library() -> &'static PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| fixtures::build_fixture("probe", &target_dir()))
}

/// plugd serving the example plugins and `probe`, with `RUST_LOG` set to `rust_log`.
fn start(rust_log: &str) -> Server {
    let dir = plugin_dir_with(&example_plugins());
    std::fs::copy(probe_library(), dir.join("libprobe.so")).unwrap();
    start_in(dir, rust_log)
}

fn start_in(dir: TempDir, rust_log: &str) -> Server {
    let path = dir.path().to_str().expect("utf-8 temp path").to_owned();
    Server::try_start(
        &["--plugin-dir", &path],
        &[("RUST_LOG", rust_log)],
        vec![dir],
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

/// Sends one request on `conn` (keep-alive) and reads its response.
fn request(conn: &mut Conn, method: &str, target: &str) -> Response {
    let head = format!("{method} {target} HTTP/1.1\r\nHost: test\r\nContent-Length: 0\r\n\r\n");
    conn.send(head.as_bytes());
    conn.read_response()
        .unwrap_or_else(|e| panic!("{method} {target}: {e}"))
}

#[test]
fn a_plugins_log_line_reaches_plugds_stderr_under_its_name() {
    let server = start("info");
    assert_eq!(server.get("/hello/Ann").body_str(), "Hello, Ann!");
    let line = server
        .wait_for_log_line(&["greeted Ann"], LOG_WAIT)
        .unwrap_or_else(|| panic!("no log line from hello:\n{}", server.stderr()));
    assert!(
        line.contains("INFO") && line.contains(" hello]"),
        "the line names the level and the plugin: {line}"
    );
}

#[test]
fn rust_log_filters_plugin_lines_by_level_and_by_plugin_name() {
    // `plugd=info` keeps the `listening on` line the test harness waits for.
    let server = start("warn,plugd=info");
    assert_eq!(server.get("/hello/Bob").status, 200);
    assert_eq!(server.get("/log/warn").status, 200);
    assert_eq!(server.get("/log/info").status, 200);
    // Lines are written in order, so once the later warn line is in, the info lines would be too.
    let warn = server
        .wait_for_log_line(&["probe line at WARN"], LOG_WAIT)
        .unwrap_or_else(|| panic!("no warn line from probe:\n{}", server.stderr()));
    assert!(warn.contains(" probe]"), "{warn}");
    let stderr = server.stderr();
    assert!(
        !stderr.contains("greeted Bob"),
        "info shown at warn:\n{stderr}"
    );
    assert!(!stderr.contains("probe line at INFO"), "{stderr}");

    let server = start("warn,plugd=info,hello=info");
    assert_eq!(server.get("/hello/Cy").status, 200);
    assert_eq!(server.get("/log/info").status, 200);
    assert_eq!(server.get("/log/warn").status, 200);
    assert!(
        server
            .wait_for_log_line(&["probe line at WARN"], LOG_WAIT)
            .is_some()
    );
    let stderr = server.stderr();
    assert!(
        stderr.contains("greeted Cy"),
        "hello=info shows hello's line:\n{stderr}"
    );
    assert!(
        !stderr.contains("probe line at INFO"),
        "but not probe's:\n{stderr}"
    );
}

#[test]
fn any_method_routes_take_every_method_and_lose_to_the_exact_method() {
    let server = start("info");
    let mut conn = server.connect();
    for (method, target, status, body) in [
        ("DELETE", "/any/x/y", 200, "any DELETE rest=x/y"),
        ("PATCH", "/any/", 200, "any PATCH rest="),
        ("GET", "/any/status", 200, "get-status GET "),
        ("POST", "/any/status", 200, "any POST rest=status"),
        ("GET", "/any", 404, "Not Found"),
    ] {
        let response = request(&mut conn, method, target);
        assert_eq!(
            (response.status, response.body_str().trim_end()),
            (status, body.trim_end()),
            "{method} {target}"
        );
    }
}

#[test]
fn question_mark_errors_give_500_with_the_message_only_in_the_log() {
    let server = start("info");
    let failed = server.get("/fail/io");
    assert_eq!(failed.status, 500);
    assert!(
        !failed.body_str().contains("secret-io-detail"),
        "the error leaked: {}",
        failed.body_str()
    );
    let line = server
        .wait_for_log_line(&["GET /fail/io: ", "secret-io-detail"], LOG_WAIT)
        .unwrap_or_else(|| panic!("the error was not logged:\n{}", server.stderr()));
    assert!(line.contains("ERROR") && line.contains(" probe]"), "{line}");

    let missing = server.get("/fail/missing/gizmo");
    assert_eq!(
        (missing.status, missing.body_str()),
        (404, "no thing named gizmo".to_owned()),
        "a client error's message is the answer"
    );
}

/// The same plugin through `plugin_api::testing` and through plugd must route, decode and answer alike,
/// including the two cases where they used to differ: a route declared before a more specific one, and `%+1`.
#[test]
fn plugin_api_testing_and_plugd_agree_on_routes_and_decoding() {
    let server = start("info");
    let tested = TestPlugin::start(probe::plugd_plugin).expect("probe starts");
    let mut conn = server.connect();
    for (method, target) in [
        ("GET", "/items/new"),
        ("GET", "/items/7"),
        ("GET", "/items/J%C3%BCrgen"),
        ("GET", "/items/%2F"),
        ("GET", "/items/%+1"),
        ("GET", "/items/%4"),
        ("GET", "/items/%FF"),
        ("GET", "/items/"),
        ("GET", "/items/a/b"),
        ("POST", "/items/7"),
        ("DELETE", "/items/new"),
        ("PUT", "/any/a%20b/c"),
        ("GET", "/any/status"),
        ("OPTIONS", "/any/status"),
        ("GET", "/nowhere"),
    ] {
        let served = request(&mut conn, method, target);
        let local = tested.call(TestRequest::new(method, target));
        let what = format!("{method} {target}");
        assert_eq!(served.status, local.status(), "{what}: status");
        assert_eq!(
            served.header("allow"),
            local.header("allow"),
            "{what}: Allow"
        );
        if served.status == 200 || served.status == 400 {
            assert_eq!(
                served.body_str(),
                local.body_str().unwrap_or_default(),
                "{what}: body"
            );
        }
    }
}

#[test]
fn a_plugin_built_against_plugin_api_0_1_0_loads_and_serves() {
    let legacy = fixtures::build_fixture("legacy", &target_dir());
    let dir = plugin_dir_with(&example_plugins());
    std::fs::copy(legacy, dir.join("liblegacy.so")).unwrap();
    let server = start_in(dir, "info");
    assert!(
        server
            .wait_for_log_line(&["plugin loaded: legacy 0.1.0 from "], LOG_WAIT)
            .is_some(),
        "{}",
        server.stderr()
    );
    let mut conn = server.connect();
    let greeting = request(&mut conn, "GET", "/legacy/J%C3%BCrgen");
    assert_eq!(
        (greeting.status, greeting.body_str()),
        (200, "Hello, Jürgen! (from plugin-api 0.1.0)".to_owned())
    );
    let posted = request(&mut conn, "POST", "/legacy");
    assert_eq!(posted.body_str(), "legacy POST /legacy");
    assert_eq!(request(&mut conn, "GET", "/legacy").status, 405);
    assert_eq!(
        request(&mut conn, "GET", "/plaintext").body,
        b"Hello, World!"
    );
}

/// What plugd 0.1.0 does with a plugin built against this SDK: abi_stable accepts it (0.1.1 against 0.1.0:
/// same minor), and the plugin is served through its single `handle` entry, which routes by itself.
#[test]
fn an_older_plugd_serves_a_plugin_built_against_the_new_sdk_without_the_new_features() {
    let old_host = fixtures::build_old_host(&target_dir());
    let run = |library: &PathBuf, args: &[&str]| {
        let output = Command::new(&old_host)
            .arg(library)
            .args(args)
            .output()
            .expect("old-host runs");
        let stdout = String::from_utf8_lossy(&output.stdout)
            .trim_end()
            .to_owned();
        assert!(
            output.status.success(),
            "{args:?}: {stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
    };
    let hello = example_plugin("hello");
    assert_eq!(run(&hello, &["GET", "/plaintext"]), "200 Hello, World!");
    // No configuration in plugd 0.1.0: the default greeting.
    assert_eq!(
        run(&hello, &["GET", "/hello/Ann", "name=Ann"]),
        "200 Hello, Ann!"
    );
    let probe = probe_library();
    assert_eq!(
        run(probe, &["GET", "/items/new"]),
        "200 new-item GET",
        "the most specific route, found by the plugin itself"
    );
    assert_eq!(
        run(probe, &["GET", "/fail/missing/x", "thing=x"]),
        "404 no thing named x"
    );
}

/// `[plugins.hello] greeting = "Howdy"` in plugd's configuration file reaches hello's `init`.
#[test]
fn hellos_greeting_comes_from_the_config_file() {
    let dir = TempDir::new("sdk-config");
    let config = dir.join("plugd.toml");
    std::fs::write(&config, "[plugins.hello]\ngreeting = \"Howdy\"\n").unwrap();
    let plugins = plugin_dir_with(&example_plugins());
    let plugin_dir = plugins.path().to_str().unwrap().to_owned();
    let server = Server::try_start(
        &[
            "--plugin-dir",
            &plugin_dir,
            "--config",
            config.to_str().unwrap(),
        ],
        &[],
        vec![plugins, dir],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(server.get("/hello/Ann").body_str(), "Howdy, Ann!");
}

/// Records the test process's log lines from plugin `probe` (target `probe`), at every level.
struct ProbeLines(std::sync::Mutex<Vec<String>>);

impl log::Log for ProbeLines {
    fn enabled(&self, _metadata: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        if record.target() == "probe" {
            let line = format!("{} {}", record.level(), record.args());
            self.0.lock().unwrap().push(line);
        }
    }

    fn flush(&self) {}
}

/// A `log::debug!` in a plugin loaded by a host at info level is dropped inside the plugin: no record crosses,
/// while an info record does. Loaded in this process (through `plugin_api::host`, as plugd does), so the
/// host's logger can count what arrives; the host then lowers its own level to trace, so a debug record that
/// did cross would be recorded.
#[test]
fn a_disabled_log_level_never_crosses_into_the_host() {
    static LINES: ProbeLines = ProbeLines(std::sync::Mutex::new(Vec::new()));
    log::set_logger(&LINES).expect("the only logger of this test binary");
    log::set_max_level(log::LevelFilter::Info);
    let dir = TempDir::new("sdk-inprocess");
    let copy = dir.join("libprobe-inprocess.so");
    std::fs::copy(probe_library(), &copy).unwrap();
    let library = plugin_api::host::Library::load(&copy).expect("probe loads");
    let instance = library.init(&[]).expect("probe starts");
    log::set_max_level(log::LevelFilter::Trace);
    let route = |pattern: &str| library.routes().position(|(_, p)| p == pattern).unwrap();
    let call = |pattern: &str, path: &str, params: &[plugin_api::Param<'_>]| {
        let request = plugin_api::Request::new(plugin_api::RequestParts {
            method: "GET",
            target: path,
            path,
            query: None,
            version: plugin_api::Version::Http11,
            headers: &[],
            params,
            body: b"",
            peer: ([127, 0, 0, 1], 40000).into(),
        });
        let response = instance.handle_route(route(pattern), &request).unwrap();
        assert_eq!(response.status(), 200, "{path}");
    };
    call("/probe/debug", "/probe/debug", &[]);
    call(
        "/log/{level}",
        "/log/debug",
        &[plugin_api::Param::new("level", "debug")],
    );
    call(
        "/log/{level}",
        "/log/info",
        &[plugin_api::Param::new("level", "info")],
    );
    assert_eq!(*LINES.0.lock().unwrap(), ["INFO probe line at INFO"]);
}
