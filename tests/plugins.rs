//! End-to-end tests of plugins: the real `plugd` binary, the real compiled example plugins and fixture plugins
//! (tests/fixtures/), real clients over TCP.

use std::fs;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use plugd_tests::{
    Conn, Response, Server, TempDir, example_plugin, example_plugins, plugin_dir_with, run_plugd,
};

#[path = "fixtures/builder.rs"]
mod fixtures;

/// How long a log line has to appear after the request that causes it.
const LOG_WAIT: Duration = Duration::from_secs(10);

/// The target folder the example plugins were built into; fixtures are built there too.
fn target_dir() -> PathBuf {
    let profile_dir = example_plugin("hello").parent().unwrap().to_owned();
    profile_dir.parent().unwrap().to_owned()
}

/// A plugin folder with the example plugins plus `extra` files, each copied under the given file name.
fn plugin_dir_with_extra(extra: &[(&Path, &str)]) -> TempDir {
    let dir = plugin_dir_with(&example_plugins());
    for (source, name) in extra {
        fs::copy(source, dir.join(name)).unwrap();
    }
    dir
}

/// Sends one request on `conn` (keep-alive) and reads its response.
fn request(conn: &mut Conn, method: &str, path: &str, headers: &str, body: &[u8]) -> Response {
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: test\r\n{headers}Content-Length: {}\r\n\r\n",
        body.len()
    );
    conn.send(&[head.as_bytes(), body].concat());
    conn.read_response()
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

fn get(conn: &mut Conn, path: &str) -> Response {
    request(conn, "GET", path, "", b"")
}

fn counter_value(conn: &mut Conn) -> u64 {
    let response = get(conn, "/counter");
    assert_eq!(response.status, 200);
    response
        .body_str()
        .parse()
        .expect("counter answers a number")
}

#[test]
fn every_example_route_is_served() {
    let server = Server::start_with_examples(&[]);
    for plugin in ["hello", "echo", "counter"] {
        assert!(
            server
                .wait_for_log_line(&["plugin loaded: ", plugin, "0.1.0 from "], LOG_WAIT)
                .is_some(),
            "no `plugin loaded` line for {plugin}:\n{}",
            server.stderr()
        );
    }
    let mut conn = server.connect();

    let page = get(&mut conn, "/");
    assert_eq!(page.status, 200);
    assert!(
        page.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    for asset in ["/static/style.css", "/static/app.js", "/static/logo.png"] {
        assert!(page.body_str().contains(asset), "home page lacks {asset}");
    }

    let greeting = get(&mut conn, "/hello/J%C3%BCrgen");
    assert_eq!(
        (greeting.status, greeting.body_str()),
        (200, "Hello, Jürgen!".to_owned())
    );

    let plaintext = get(&mut conn, "/plaintext");
    assert_eq!(plaintext.status, 200);
    assert_eq!(plaintext.body, b"Hello, World!");
    assert!(
        plaintext
            .header("content-type")
            .unwrap()
            .starts_with("text/plain")
    );
    assert_eq!(plaintext.header("content-length"), Some("13"));

    let form = request(
        &mut conn,
        "POST",
        "/submit",
        "Content-Type: application/x-www-form-urlencoded\r\n",
        b"name=test",
    );
    assert_eq!(
        (form.status, form.body_str()),
        (200, "name=test\n".to_owned())
    );

    let echoed = request(
        &mut conn,
        "POST",
        "/echo",
        "Content-Type: application/json\r\n",
        br#"{"a":1}"#,
    );
    assert_eq!(echoed.status, 200);
    assert_eq!(echoed.header("content-type"), Some("application/json"));
    assert_eq!(echoed.body, br#"{"a":1}"#);

    let first = counter_value(&mut conn);
    assert_eq!(counter_value(&mut conn), first + 1);
}

#[test]
fn a_plugin_built_against_an_incompatible_plugin_api_is_refused_while_the_others_serve() {
    let incompatible = fixtures::build_incompatible_fixture(&target_dir());
    let dir = plugin_dir_with_extra(&[(&incompatible, "libincompatible.so")]);
    let server = Server::start_with_plugin_dir(dir, &[]);
    let line = server
        .wait_for_log_line(&["plugin refused: ", "libincompatible.so: "], LOG_WAIT)
        .unwrap_or_else(|| panic!("no refusal logged:\n{}", server.stderr()));
    let expected = format!(
        "built against an incompatible plugin-api: this plugd expects plugin-api 0.1.0, the plugin was built against \
         plugin-api {}",
        fixtures::INCOMPATIBLE_API_VERSION
    );
    assert!(line.contains(&expected), "{line}");
    assert_eq!(server.get("/plaintext").status, 200);
    assert_eq!(server.get("/incompatible").status, 404);
}

#[test]
fn random_bytes_named_x_so_are_refused() {
    let dir = plugin_dir_with(&example_plugins());
    let noise: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    fs::write(dir.join("x.so"), noise).unwrap();
    let server = Server::start_with_plugin_dir(dir, &[]);
    let line = server
        .wait_for_log_line(
            &["plugin refused: ", "x.so: not a loadable library"],
            LOG_WAIT,
        )
        .unwrap_or_else(|| panic!("no refusal logged:\n{}", server.stderr()));
    assert!(!line.contains("panicked"), "{line}");
    assert_eq!(server.get("/plaintext").status, 200);
}

#[test]
fn a_route_conflict_is_refused_naming_both_plugins() {
    // `clash` claims GET /plaintext, which `hello` (loaded first: files load in name order) already serves.
    let clash = fixtures::build_fixture("clash", &target_dir());
    let dir = plugin_dir_with_extra(&[(&clash, "libzz-clash.so")]);
    let server = Server::start_with_plugin_dir(dir, &[]);
    let line = server
        .wait_for_log_line(
            &[
                "plugin refused: ",
                "libzz-clash.so: route ",
                "conflicts with",
            ],
            LOG_WAIT,
        )
        .unwrap_or_else(|| panic!("no conflict logged:\n{}", server.stderr()));
    assert!(
        line.contains("`clash`") && line.contains("`hello`"),
        "{line}"
    );
    assert_eq!(server.get("/plaintext").body, b"Hello, World!");
    assert_eq!(
        server.get("/clash-only").status,
        404,
        "a refused plugin registers none of its routes"
    );
}

#[test]
fn a_panicking_plugin_gives_500_and_the_server_keeps_serving() {
    let panicky = fixtures::build_fixture("panicky", &target_dir());
    let dir = plugin_dir_with_extra(&[(&panicky, "libpanicky.so")]);
    let server = Server::start_with_plugin_dir(dir, &[]);
    let mut conn = server.connect();

    let time_plaintext = |conn: &mut Conn| {
        let start = Instant::now();
        for _ in 0..200 {
            assert_eq!(get(conn, "/plaintext").status, 200);
        }
        start.elapsed()
    };
    let before = time_plaintext(&mut conn);

    let response = get(&mut conn, "/panic");
    assert_eq!(response.status, 500);
    assert!(
        !response.body_str().contains("secret"),
        "the panic message leaked: {}",
        response.body_str()
    );
    let logged = server
        .wait_for_log_line(
            &[
                "panicky",
                "GET /panic",
                "secret-internal-detail: deliberate panic",
            ],
            LOG_WAIT,
        )
        .unwrap_or_else(|| {
            panic!(
                "panic not logged with plugin and route:\n{}",
                server.stderr()
            )
        });
    assert!(logged.contains("panicked"), "{logged}");

    for i in 0..10_000 {
        let response = get(&mut conn, "/panic");
        assert_eq!(response.status, 500, "panicking request #{i}");
    }
    assert_eq!(
        get(&mut conn, "/panicky").body_str(),
        "panicky is still serving"
    );
    let after = time_plaintext(&mut conn);
    eprintln!("200 plaintext requests: {before:?} before, {after:?} after 10,000 panics");
    // Generous: a 2-core machine shared with other builds is noisy; a leak or a stuck worker is not subtle.
    assert!(
        after < before * 10 + Duration::from_secs(1),
        "{before:?} before, {after:?} after"
    );
}

#[test]
fn counter_counts_exactly_under_eight_concurrent_clients() {
    const CLIENTS: u64 = 8;
    const REQUESTS: u64 = 500;
    let server = Server::start_with_examples(&[]);
    let start = counter_value(&mut server.connect());
    let mut seen: Vec<u64> = thread::scope(|s| {
        let clients: Vec<_> = (0..CLIENTS)
            .map(|_| {
                s.spawn(|| {
                    let mut conn = server.connect();
                    (0..REQUESTS)
                        .map(|_| counter_value(&mut conn))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        clients
            .into_iter()
            .flat_map(|c| c.join().unwrap())
            .collect()
    });
    let end = counter_value(&mut server.connect());
    assert_eq!(
        end,
        start + CLIENTS * REQUESTS + 1,
        "exactly 4,000 more, plus this request"
    );
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(
        seen.len() as u64,
        CLIENTS * REQUESTS,
        "every request got its own number"
    );
}

#[test]
fn strict_plugins_exits_2_when_a_plugin_is_refused() {
    let dir = plugin_dir_with(&example_plugins());
    fs::write(dir.join("x.so"), b"not a library").unwrap();
    let plugin_dir = dir.path().to_str().unwrap();
    let out = run_plugd(
        &[
            "--port",
            "0",
            "--host",
            "127.0.0.1",
            "--plugin-dir",
            plugin_dir,
            "--strict-plugins",
        ],
        &[],
        Duration::from_secs(20),
    );
    assert_eq!(out.status.code(), Some(2), "stderr:\n{}", out.stderr);
    assert!(
        out.stderr.contains("plugin refused: "),
        "stderr:\n{}",
        out.stderr
    );
}
