//! End-to-end tests of live plugins (`docs/ARCHITECTURE.md` §8.8): the real `plugd` binary watching its
//! plugin folder while clients talk to it, plugin files added, replaced (a temporary name renamed over the
//! old file, as the README tells users), broken and removed under it.
//!
//! The `live` fixtures (`tests/fixtures/live_*`) are one plugin at versions that answer differently; its
//! configuration makes its shutdown hook log, panic or hang.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use plugd_tests::{Conn, Response, Server, TempDir, example_plugin};

#[path = "fixtures/builder.rs"]
mod fixtures;

/// How long a change to the folder has to show: plugd acts within a second; the rest is margin for a busy
/// 2-core machine running a debug build.
const CHANGE_WAIT: Duration = Duration::from_secs(15);
const V1: &str = "live 1.0.0\n";
const V2: &str = "live 2.0.0\n";

/// The target folder the example plugins were built into; fixtures are built there too.
fn target_dir() -> PathBuf {
    let profile_dir = example_plugin("hello").parent().unwrap().to_owned();
    profile_dir.parent().unwrap().to_owned()
}

fn fixture(name: &str) -> PathBuf {
    fixtures::build_fixture(name, &target_dir())
}

/// A plugin folder holding `files`, each `(source, name)`.
fn plugin_dir(files: &[(&Path, &str)]) -> TempDir {
    let dir = TempDir::new("live-plugins");
    for (source, name) in files {
        fs::copy(source, dir.join(name)).unwrap();
    }
    dir
}

/// Installs `bytes` as `name` in `dir` the way the README says: a temporary name, then a rename over it.
fn install(dir: &Path, name: &str, bytes: &[u8]) {
    let temporary = dir.join(format!(".{name}.tmp"));
    fs::write(&temporary, bytes).unwrap();
    fs::rename(&temporary, dir.join(name)).unwrap();
}

fn install_file(dir: &Path, name: &str, source: &Path) {
    install(dir, name, &fs::read(source).unwrap());
}

fn get(conn: &mut Conn, path: &str) -> Response {
    conn.send(format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes());
    conn.read_response()
        .unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

/// Polls `GET path` on fresh connections until its status and body are `want`; panics after
/// [`CHANGE_WAIT`] with the last answer and the server's log.
fn wait_for_answer(server: &Server, path: &str, want: (u16, &str)) {
    let deadline = Instant::now() + CHANGE_WAIT;
    loop {
        let response = server.get(path);
        if (response.status, response.body_str().as_str()) == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "GET {path} still answers {} {:?}, not {want:?}; stderr:\n{}",
            response.status,
            response.body_str(),
            server.stderr()
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// A server serving the plugins in `dir`, and the folder's path.
fn start(dir: TempDir, args: &[&str]) -> (Server, PathBuf) {
    let path = dir.path().to_owned();
    (Server::start_with_plugin_dir(dir, args), path)
}

#[test]
fn a_plugin_renamed_into_the_folder_starts_serving() {
    let hello = example_plugin("hello");
    let (server, dir) = start(plugin_dir(&[(&hello, "hello.so")]), &[]);
    assert_eq!(server.get("/live").status, 404);
    install_file(&dir, "live.so", &fixture("live_v1"));
    wait_for_answer(&server, "/live", (200, V1));
    assert!(server.wait_for_log("plugin added: live 1.0.0", CHANGE_WAIT));
    assert_eq!(server.get("/plaintext").body_str(), "Hello, World!");
}

#[test]
fn a_replaced_plugin_finishes_its_requests_in_flight_then_shuts_down() {
    let v1 = fixture("live_v1");
    let (server, dir) = start(plugin_dir(&[(&v1, "live.so")]), &[]);
    let mut keep_alive = Conn::open(server.addr());
    assert_eq!(get(&mut keep_alive, "/live").body_str(), V1);
    let mut slow = Conn::open(server.addr());
    slow.send(b"GET /live/slow/3000 HTTP/1.1\r\nHost: test\r\n\r\n");
    // The slow request is inside version 1 before the replacement: the log shows it was called.
    thread::sleep(Duration::from_millis(200));

    install_file(&dir, "live.so", &fixture("live_v2"));
    wait_for_answer(&server, "/live", (200, V2));
    assert!(server.wait_for_log("plugin replaced: live 1.0.0 by 2.0.0", CHANGE_WAIT));
    let still_running = slow.stream().peek(&mut [0u8]).is_err();
    let hook = "live 1.0.0: shutdown hook ran";
    assert!(
        !still_running || !server.stderr().contains(hook),
        "version 1 shut down while its request was in flight:\n{}",
        server.stderr()
    );
    let answer = slow.read_response().unwrap();
    assert_eq!(
        (answer.status, answer.body_str().as_str()),
        (200, V1),
        "finished on its version"
    );
    assert!(
        server.wait_for_log(hook, CHANGE_WAIT),
        "{}",
        server.stderr()
    );
    assert_eq!(
        get(&mut keep_alive, "/live").body_str(),
        V2,
        "an open keep-alive connection gets the new version from its next request"
    );
}

#[test]
fn garbage_an_init_failure_or_a_route_clash_keeps_the_version_serving() {
    let v1 = fixture("live_v1");
    let hello = example_plugin("hello");
    let (server, dir) = start(plugin_dir(&[(&v1, "live.so"), (&hello, "hello.so")]), &[]);

    install(&dir, "live.so", b"\x7fELF but not really a library");
    let garbage = server
        .wait_for_log_line(&["plugin refused: ", "live.so"], CHANGE_WAIT)
        .expect("the garbage is refused in one line");
    assert_eq!(server.get("/live").body_str(), V1, "after {garbage}");

    install_file(&dir, "live.so", &fixture("live_broken"));
    assert!(server.wait_for_log(
        "init failed: live 3.0.0-broken refuses to start",
        CHANGE_WAIT
    ));
    assert_eq!(server.get("/live").body_str(), V1);

    install_file(&dir, "clash.so", &fixture("clash"));
    let clash = server
        .wait_for_log_line(&["plugin refused: ", "clash.so", "conflicts"], CHANGE_WAIT)
        .expect("the clash is refused, naming both owners");
    assert!(clash.contains("`hello`"), "{clash}");
    assert_eq!(server.get("/plaintext").body_str(), "Hello, World!");
    assert_eq!(server.get("/clash-only").status, 404);

    install_file(&dir, "live.so", &fixture("live_v2"));
    wait_for_answer(&server, "/live", (200, V2));
}

#[test]
fn a_plugin_refused_for_a_route_clash_starts_once_the_other_plugin_is_removed() {
    let hello = example_plugin("hello");
    let (server, dir) = start(plugin_dir(&[(&hello, "hello.so")]), &[]);
    install_file(&dir, "clash.so", &fixture("clash"));
    assert!(
        server
            .wait_for_log_line(&["plugin refused: ", "clash.so", "conflicts"], CHANGE_WAIT)
            .is_some()
    );
    assert_eq!(server.get("/clash-only").status, 404);

    fs::remove_file(dir.join("hello.so")).unwrap();
    assert!(server.wait_for_log("plugin removed: hello", CHANGE_WAIT));
    // The clash is gone: the refused file is tried again and serves both of its routes.
    wait_for_answer(&server, "/clash-only", (200, "clash"));
    assert_eq!(server.get("/plaintext").body_str(), "clash");
}

#[test]
fn a_removed_plugin_answers_404_after_its_requests_in_flight() {
    let v1 = fixture("live_v1");
    let (server, dir) = start(plugin_dir(&[(&v1, "live.so")]), &[]);
    let mut slow = Conn::open(server.addr());
    slow.send(b"GET /live/slow/2000 HTTP/1.1\r\nHost: test\r\n\r\n");
    thread::sleep(Duration::from_millis(200));
    fs::remove_file(dir.join("live.so")).unwrap();
    wait_for_answer(&server, "/live", (404, "Not Found"));
    assert!(server.wait_for_log("plugin removed: live 1.0.0", CHANGE_WAIT));
    let answer = slow.read_response().unwrap();
    assert_eq!((answer.status, answer.body_str().as_str()), (200, V1));
    assert!(server.wait_for_log("live 1.0.0: shutdown hook ran", CHANGE_WAIT));
}

#[test]
fn files_others_could_write_and_symlinks_out_of_the_folder_are_refused() {
    let v1 = fixture("live_v1");
    let outside = TempDir::new("outside");
    fs::copy(fixture("live_v2"), outside.join("elsewhere.so")).unwrap();
    let dir = plugin_dir(&[(&v1, "live.so")]);
    fs::set_permissions(dir.join("live.so"), fs::Permissions::from_mode(0o666)).unwrap();
    std::os::unix::fs::symlink(outside.join("elsewhere.so"), dir.join("link.so")).unwrap();
    let (server, dir) = start(dir, &[]);
    let writable = server
        .wait_for_log_line(
            &[
                "plugin refused: ",
                "live.so",
                "writable by its group or by everyone",
            ],
            CHANGE_WAIT,
        )
        .expect("refused at startup");
    assert!(writable.contains("--allow-insecure-plugins"), "{writable}");
    assert!(server.wait_for_log("a symlink leading out of the plugin folder", CHANGE_WAIT));
    assert_eq!(server.get("/live").status, 404);

    fs::set_permissions(dir.join("live.so"), fs::Permissions::from_mode(0o644)).unwrap();
    wait_for_answer(&server, "/live", (200, V1));
    drop(server);

    let open = plugin_dir(&[(&v1, "live.so")]);
    fs::set_permissions(open.path(), fs::Permissions::from_mode(0o777)).unwrap();
    let (server, _) = start(open, &[]);
    assert!(server.wait_for_log("plugin folder refused: ", CHANGE_WAIT));
    assert_eq!(server.get("/live").status, 404);
    drop(server);

    let open = plugin_dir(&[(&v1, "live.so")]);
    fs::set_permissions(open.path(), fs::Permissions::from_mode(0o777)).unwrap();
    let (server, _) = start(open, &["--allow-insecure-plugins"]);
    assert!(server.wait_for_log(
        "loading it anyway because of --allow-insecure-plugins",
        CHANGE_WAIT
    ));
    assert_eq!(server.get("/live").body_str(), V1);
}

#[test]
fn sighup_rereads_the_config_file_and_an_invalid_one_keeps_the_running_tables() {
    let echo = fixture("config_echo");
    let config_dir = TempDir::new("live-config");
    let config = config_dir.join("plugd.toml");
    fs::write(&config, "[plugins.config-echo]\ngreeting = \"first\"\n").unwrap();
    let (server, _) = start(
        plugin_dir(&[(&echo, "config_echo.so")]),
        &["--config", config.to_str().unwrap()],
    );
    assert_eq!(server.get("/config-echo").body_str(), "greeting=first\n");

    fs::write(&config, "[plugins.config-echo]\ngreeting = \"second\"\n").unwrap();
    server.signal(libc::SIGHUP);
    wait_for_answer(&server, "/config-echo", (200, "greeting=second\n"));
    assert!(server.wait_for_log("SIGHUP: config file", CHANGE_WAIT));

    fs::write(
        &config,
        "threads = \"many\"\n[plugins.config-echo]\ngreeting = \"third\"\n",
    )
    .unwrap();
    server.signal(libc::SIGHUP);
    let kept = server
        .wait_for_log_line(
            &["config file not applied, the running configuration stays"],
            CHANGE_WAIT,
        )
        .expect("one line says why");
    assert!(kept.contains("threads"), "{kept}");
    assert_eq!(server.get("/config-echo").body_str(), "greeting=second\n");
}

/// `GET /plaintext`'s `X-Request-Id`: whether the `request-id` filter runs around it.
fn has_request_id(server: &Server) -> bool {
    server.get("/plaintext").header("x-request-id").is_some()
}

#[test]
fn sighup_rereads_the_middleware_list_keeping_the_chain_when_a_name_is_unknown() {
    let config_dir = TempDir::new("live-middleware");
    let config = config_dir.join("plugd.toml");
    fs::write(
        &config,
        "middleware = []
",
    )
    .unwrap();
    let plugins = [
        (&*example_plugin("hello"), "hello.so"),
        (&*example_plugin("request-id"), "request_id.so"),
    ];
    let (server, _) = start(
        plugin_dir(&plugins),
        &["--config", config.to_str().unwrap()],
    );
    assert!(!has_request_id(&server));

    fs::write(&config, "middleware = [\"request-id\"]\n").unwrap();
    server.signal(libc::SIGHUP);
    assert!(server.wait_for_log("middleware: [] -> [\"request-id\"]", CHANGE_WAIT));
    assert!(has_request_id(&server), "{}", server.stderr());

    fs::write(
        &config,
        "middleware = [\"request-id\", \"no-such-filter\"]\n",
    )
    .unwrap();
    server.signal(libc::SIGHUP);
    let kept = server
        .wait_for_log_line(&["the running middleware chain is kept"], CHANGE_WAIT)
        .expect("one line says why");
    assert!(kept.contains("no-such-filter"), "{kept}");
    assert!(has_request_id(&server));

    fs::write(&config, "middleware = []\n").unwrap();
    server.signal(libc::SIGHUP);
    assert!(server.wait_for_log("-> []", CHANGE_WAIT));
    assert!(!has_request_id(&server), "{}", server.stderr());
}

#[test]
fn a_middleware_argument_still_wins_over_the_file_after_sighup() {
    let config_dir = TempDir::new("live-middleware-argument");
    let config = config_dir.join("plugd.toml");
    fs::write(&config, "middleware = []\n").unwrap();
    let plugins = [
        (&*example_plugin("hello"), "hello.so"),
        (&*example_plugin("request-id"), "request_id.so"),
    ];
    let args = [
        "--config",
        config.to_str().unwrap(),
        "--middleware",
        "request-id",
    ];
    let (server, _) = start(plugin_dir(&plugins), &args);
    assert!(has_request_id(&server));
    fs::write(&config, "middleware = []\n[plugins.hello]\n").unwrap();
    server.signal(libc::SIGHUP);
    assert!(server.wait_for_log("SIGHUP: config file", CHANGE_WAIT));
    assert!(has_request_id(&server), "{}", server.stderr());
}

#[test]
fn a_shutdown_hook_that_panics_or_hangs_harms_nothing_else() {
    for (on_shutdown, logged) in [
        ("panic", "panicked in its shutdown hook"),
        (
            "hang",
            "its shutdown hook is still running after 1s; left running",
        ),
    ] {
        let config_dir = TempDir::new("live-config");
        let config = config_dir.join("plugd.toml");
        fs::write(
            &config,
            format!("[plugins.live]\non_shutdown = \"{on_shutdown}\"\n"),
        )
        .unwrap();
        let v1 = fixture("live_v1");
        let hello = example_plugin("hello");
        let (mut server, dir) = start(
            plugin_dir(&[(&v1, "live.so"), (&hello, "hello.so")]),
            &[
                "--config",
                config.to_str().unwrap(),
                "--shutdown-timeout",
                "1",
            ],
        );
        install_file(&dir, "live.so", &fixture("live_v2"));
        wait_for_answer(&server, "/live", (200, V2));
        assert!(
            server.wait_for_log(logged, CHANGE_WAIT),
            "{on_shutdown}: {}",
            server.stderr()
        );
        assert_eq!(server.get("/plaintext").body_str(), "Hello, World!");
        server.terminate();
        assert!(
            server.wait_exit(CHANGE_WAIT).success(),
            "{}",
            server.stderr()
        );
    }
}

/// The CI-sized version of `bench/reload.sh`: clients on keep-alive connections while the plugin is
/// replaced again and again, broken files mixed in. Every answer is one of the two versions.
#[test]
fn replacing_a_plugin_under_load_fails_no_request() {
    const CLIENTS: usize = 8;
    const REPLACEMENTS: usize = 12;
    let (v1, v2, broken) = (
        fixture("live_v1"),
        fixture("live_v2"),
        fixture("live_broken"),
    );
    let (server, dir) = start(plugin_dir(&[(&v1, "live.so")]), &[]);
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (stop, addr) = (Arc::clone(&stop), server.addr());
            thread::spawn(move || {
                let mut conn = Conn::open(addr);
                let mut answers = [0u64; 2];
                while !stop.load(Ordering::Relaxed) {
                    let response = get(&mut conn, "/live");
                    match (response.status, response.body_str().as_str()) {
                        (200, V1) => answers[0] += 1,
                        (200, V2) => answers[1] += 1,
                        (status, body) => panic!("unexpected answer {status} {body:?}"),
                    }
                }
                answers
            })
        })
        .collect();
    for round in 0..REPLACEMENTS {
        let next = if round % 2 == 0 { &v2 } else { &v1 };
        match round % 4 {
            1 => install(&dir, "live.so", b"not a library"),
            3 => install_file(&dir, "live.so", &broken),
            _ => {}
        }
        thread::sleep(Duration::from_millis(150));
        install_file(&dir, "live.so", next);
        thread::sleep(Duration::from_millis(250));
    }
    let last = if REPLACEMENTS.is_multiple_of(2) {
        V1
    } else {
        V2
    };
    wait_for_answer(&server, "/live", (200, last));
    stop.store(true, Ordering::Relaxed);
    let mut totals = [0u64; 2];
    for client in clients {
        let answers = client.join().expect("no client saw a failure");
        totals[0] += answers[0];
        totals[1] += answers[1];
    }
    assert!(
        totals[0] > 0 && totals[1] > 0,
        "both versions answered: {totals:?}"
    );
}
