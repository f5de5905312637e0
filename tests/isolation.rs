//! End-to-end tests of isolation from slow handlers: the real `plugd` binary, the example plugins and the
//! `sleepy` fixture (`GET /sleep/{ms}` blocks its worker), real clients over TCP. Other routes answer while
//! more handlers block than `--threads`; a plugin's `max_in_flight` (set, or by default a share of
//! `--max-threads`) gives 503 + `Retry-After` beyond it, within `--max-threads` threads; a slow handler is
//! named once; extra workers retire; a saturated server still accepts up to `--max-connections`, serves
//! waiting requests in order, expires idle connections and shuts down.

use std::path::PathBuf;
use std::thread;
use std::time::{Duration, Instant};

use plugd_tests::{Conn, Server, TempDir, example_plugin, example_plugins, plugin_dir_with};

#[path = "fixtures/builder.rs"]
mod fixtures;

/// How long a log line has to appear after what causes it.
const LOG_WAIT: Duration = Duration::from_secs(10);
/// How long a request that must not wait for the sleeping handlers has to be answered: far above the
/// milliseconds it takes, far below the handlers' sleep.
const PROMPT: Duration = Duration::from_secs(4);
/// How long the handlers that hold workers sleep: longer than [`PROMPT`] plus the test's own steps.
const LONG_SLEEP_MS: u64 = 8_000;

/// The target folder the example plugins were built into; the fixture is built there too.
fn target_dir() -> PathBuf {
    let profile_dir = example_plugin("hello").parent().unwrap().to_owned();
    profile_dir.parent().unwrap().to_owned()
}

/// A plugin folder with the example plugins and the `sleepy` fixture.
fn plugins_with_sleepy() -> TempDir {
    let sleepy = fixtures::build_fixture("sleepy", &target_dir());
    let mut libs = example_plugins();
    libs.push(sleepy);
    plugin_dir_with(&libs)
}

/// Starts plugd with the example plugins, `sleepy`, and a config file holding `config`.
fn start(config: &str, args: &[&str]) -> Server {
    let dir = plugins_with_sleepy();
    let config_path = dir.join("plugd.toml");
    std::fs::write(&config_path, config).unwrap();
    let config_arg = config_path.to_str().unwrap().to_owned();
    let mut all = vec!["--config", config_arg.as_str()];
    all.extend_from_slice(args);
    Server::start_with_plugin_dir(dir, &all)
}

/// Sends `GET path` (keep-alive) on a new connection, without reading the answer.
fn send_get(server: &Server, path: &str) -> Conn {
    let mut conn = server.connect();
    conn.send(format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes());
    conn
}

/// `count` connections each waiting for `GET /sleep/{ms}`.
fn sleepers(server: &Server, count: usize, ms: u64) -> Vec<Conn> {
    (0..count)
        .map(|_| send_get(server, &format!("/sleep/{ms}")))
        .collect()
}

/// Threads of process `pid`, from `/proc/PID/task`.
fn threads_of(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/task: {e}"))
        .count()
}

/// Waits (up to `timeout`) until `done` holds; returns whether it did.
fn wait_until(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        thread::sleep(Duration::from_millis(50));
    }
    done()
}

/// `GET path` answered 200 within [`PROMPT`].
fn assert_prompt(server: &Server, path: &str) {
    let started = Instant::now();
    let response = server.get(path);
    let took = started.elapsed();
    assert_eq!(
        response.status,
        200,
        "GET {path}: {}",
        response.status_line()
    );
    assert!(
        took < PROMPT,
        "GET {path} waited {took:?} behind the sleeping handlers"
    );
}

#[test]
fn other_routes_answer_while_more_handlers_sleep_than_there_are_threads() {
    let server = start("", &["--threads", "2", "--max-threads", "64"]);
    let mut asleep = sleepers(&server, 12, LONG_SLEEP_MS);
    thread::sleep(Duration::from_millis(500));
    assert_prompt(&server, "/plaintext");
    assert_prompt(&server, "/static/index.html");
    assert_prompt(&server, "/sleep/1");
    for conn in &mut asleep {
        let response = conn.read_response().expect("the sleeping handler answers");
        assert_eq!(response.status, 200);
        assert_eq!(response.body_str(), "slept");
    }
}

#[test]
fn a_plugin_beyond_its_max_in_flight_gets_503_with_retry_after() {
    let server = start("[plugins.sleepy]\nmax_in_flight = 2\n", &[]);
    let mut asleep = sleepers(&server, 2, 3_000);
    thread::sleep(Duration::from_millis(500));
    let refused = server.get("/sleep/1");
    assert_eq!(refused.status, 503, "{}", refused.status_line());
    assert_eq!(refused.header("Retry-After"), Some("1"));
    assert!(
        refused.body_str().contains("limit of 2"),
        "{}",
        refused.body_str()
    );
    assert!(
        server
            .wait_for_log_line(&["plugin sleepy: refused 1 request(s) with 503"], LOG_WAIT)
            .is_some(),
        "the refusal is logged"
    );
    assert_prompt(&server, "/plaintext");
    for conn in &mut asleep {
        assert_eq!(conn.read_response().unwrap().status, 200);
    }
    assert_eq!(server.get("/sleep/1").status, 200, "places are given back");
}

#[test]
fn with_default_limits_a_flooded_plugin_gets_503s_while_other_routes_answer_within_max_threads() {
    // --max-threads 8: the default max_in_flight is 6 (three quarters), with one request let wait.
    let server = start("", &["--threads", "2", "--max-threads", "8"]);
    assert_eq!(server.get("/sleep/1").status, 200);
    let idle = threads_of(server.pid());
    let mut flood = sleepers(&server, 16, LONG_SLEEP_MS);
    thread::sleep(Duration::from_millis(500));
    assert_prompt(&server, "/plaintext");
    assert_prompt(&server, "/static/index.html");
    let workers_at_most = idle - 2 + 8;
    assert!(
        threads_of(server.pid()) <= workers_at_most,
        "{} threads with --max-threads 8 (idle: {idle} with 2 workers)",
        threads_of(server.pid())
    );
    let mut statuses = Vec::new();
    for conn in &mut flood {
        let response = conn.read_response().expect("every request is answered");
        if response.status == 503 {
            assert_eq!(response.header("Retry-After"), Some("1"));
            assert!(
                response.body_str().contains("limit of 6"),
                "{}",
                response.body_str()
            );
        }
        statuses.push(response.status);
    }
    let served = statuses.iter().filter(|&&status| status == 200).count();
    let refused = statuses.iter().filter(|&&status| status == 503).count();
    assert_eq!((served, refused), (6, 10), "{statuses:?}");
}

#[test]
fn max_in_flight_must_be_a_positive_integer() {
    let dir = TempDir::new("isolation-config");
    let config = dir.join("plugd.toml");
    std::fs::write(&config, "[plugins.sleepy]\nmax_in_flight = 0\n").unwrap();
    let out = plugd_tests::run_plugd(
        &["--config", config.to_str().unwrap(), "--port", "0"],
        &[],
        Duration::from_secs(20),
    );
    assert_eq!(out.status.code(), Some(2), "{}", out.stderr);
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{}", out.stderr);
    assert!(
        lines[0].contains("plugins.sleepy.max_in_flight")
            && lines[0].contains("expected a positive integer"),
        "{}",
        lines[0]
    );
}

#[test]
fn a_slow_handler_is_named_once_while_it_runs() {
    let server = start("", &["--slow-handler", "0.3"]);
    let mut conn = send_get(&server, "/sleep/2500");
    let peer = conn.stream().local_addr().unwrap().to_string();
    let line = server
        .wait_for_log_line(
            &["slow handler", "plugin sleepy", "GET /sleep/2500", &peer],
            LOG_WAIT,
        )
        .expect("a warning names the slow handler");
    assert!(line.contains("still running after"), "{line}");
    let response = conn.read_response().unwrap();
    assert_eq!(response.status, 200, "the warning came before the answer");
    thread::sleep(Duration::from_millis(600));
    let warnings = server.stderr().matches("slow handler").count();
    assert_eq!(warnings, 1, "one warning per call:\n{}", server.stderr());
}

#[test]
fn extra_workers_retire_back_to_the_base_after_the_burst() {
    let server = start("", &["--threads", "2", "--max-threads", "64"]);
    // The first plugin call starts the slow-handler watcher: count the threads once it runs.
    assert_eq!(server.get("/sleep/1").status, 200);
    let idle = threads_of(server.pid());
    let mut asleep = sleepers(&server, 20, 2_000);
    let grew = wait_until(LOG_WAIT, || threads_of(server.pid()) >= idle + 10);
    assert!(
        grew,
        "20 sleeping handlers, {} threads (idle: {idle})",
        threads_of(server.pid())
    );
    for conn in &mut asleep {
        assert_eq!(conn.read_response().unwrap().status, 200);
    }
    // The retire period is 10 s; the bound leaves a loaded machine plenty of room.
    let back = wait_until(Duration::from_secs(40), || threads_of(server.pid()) <= idle);
    assert!(
        back,
        "{} threads 40 s after the burst (idle: {idle})",
        threads_of(server.pid())
    );
    assert_prompt(&server, "/plaintext");
}

#[test]
fn a_saturated_server_still_accepts_expires_idle_connections_and_answers_in_turn() {
    let server = start(
        "[plugins.sleepy]\nmax_in_flight = 100\n",
        &[
            "--threads",
            "2",
            "--max-threads",
            "3",
            "--idle-timeout",
            "1",
        ],
    );
    let mut idle = send_get(&server, "/plaintext");
    assert_eq!(idle.read_response().unwrap().status, 200);
    let mut asleep = sleepers(&server, 3, 5_000);
    thread::sleep(Duration::from_millis(500));
    // Every worker sleeps: new connections are still accepted, with their requests...
    let mut waiting: Vec<Conn> = (0..3).map(|_| send_get(&server, "/plaintext")).collect();
    // ... and the idle keep-alive connection is closed at its idle timeout, not when a worker is free.
    let started = Instant::now();
    idle.expect_closed(PROMPT)
        .expect("the idle timeout closes a connection while every worker sleeps");
    assert!(started.elapsed() < PROMPT);
    // The requests that waited are answered once workers are free, each on its connection.
    for conn in asleep.iter_mut().chain(waiting.iter_mut()) {
        assert_eq!(conn.read_response().unwrap().status, 200);
    }
}

#[test]
fn a_saturated_server_accepts_up_to_max_connections_and_refuses_the_next_with_503() {
    let server = start(
        "[plugins.sleepy]\nmax_in_flight = 100\n",
        &[
            "--threads",
            "2",
            "--max-threads",
            "2",
            "--max-connections",
            "5",
        ],
    );
    let mut asleep = sleepers(&server, 2, 3_000);
    thread::sleep(Duration::from_millis(500));
    // Every worker sleeps; 3 more connections fit under --max-connections, with their requests.
    let mut waiting: Vec<Conn> = (0..3).map(|_| send_get(&server, "/plaintext")).collect();
    let mut over = send_get(&server, "/plaintext");
    let refused = over
        .read_response()
        .expect("a fast answer beyond the limit");
    assert_eq!(refused.status, 503, "{}", refused.status_line());
    assert!(
        refused.body_str().contains("connection limit"),
        "{}",
        refused.body_str()
    );
    for conn in asleep.iter_mut().chain(waiting.iter_mut()) {
        assert_eq!(conn.read_response().unwrap().status, 200);
    }
}

#[test]
fn requests_that_wait_for_a_saturated_server_are_served_in_the_order_they_came() {
    let server = start(
        "[plugins.sleepy]\nmax_in_flight = 100\n",
        &["--threads", "2", "--max-threads", "2"],
    );
    // One worker sleeps through the test, the other until the requests below wait.
    let mut asleep = vec![send_get(&server, &format!("/sleep/{LONG_SLEEP_MS}"))];
    thread::sleep(Duration::from_millis(300));
    asleep.push(send_get(&server, "/sleep/1500"));
    thread::sleep(Duration::from_millis(300));
    let mut waiting: Vec<Conn> = (0..5).map(|_| send_get(&server, "/counter")).collect();
    // The one worker that wakes serves them one by one: the counter numbers them in the order served.
    let order: Vec<String> = waiting
        .iter_mut()
        .map(|conn| conn.read_response().unwrap().body_str())
        .collect();
    assert_eq!(order, ["1", "2", "3", "4", "5"]);
    for conn in &mut asleep {
        assert_eq!(conn.read_response().unwrap().status, 200);
    }
}

#[test]
fn shutdown_completes_within_its_timeout_while_handlers_still_sleep() {
    let mut server = start("", &["--shutdown-timeout", "1", "--threads", "2"]);
    let _asleep = sleepers(&server, 4, 30_000);
    thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    server.terminate();
    let status = server.wait_exit(Duration::from_secs(15));
    assert!(status.success(), "{status}:\n{}", server.stderr());
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "handlers sleep 30 s; the shutdown timeout is 1 s"
    );
    assert!(
        server.stderr().contains("exiting with"),
        "{}",
        server.stderr()
    );
}
