//! End-to-end tests of the admin listener (`--admin ADDR:PORT`): the real `plugd` binary with the example
//! plugins and fixtures, raw HTTP over TCP. `/plugins` is read back with serde_json, `/metrics` with the
//! Prometheus project's own Python parser (`prometheus_client`, which `cargo xtask test` installs): a
//! format error fails the test. The listener must be off unless asked for, loopback unless
//! `--admin-public`, and answer while every worker is blocked in a handler. (The page for people is
//! tested in a real browser in `tests/browser.rs`.)

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use plugd_tests::{
    Response, Server, example_plugin, example_plugins, get, plugin_dir_with, run_status, send_raw,
};

#[path = "fixtures/builder.rs"]
mod fixtures;

/// How long something that must happen "soon" (a log line, a status change) has to happen.
const EVENTUALLY: Duration = Duration::from_secs(10);

/// The target folder the example plugins were built into; fixtures are built there too.
fn target_dir() -> PathBuf {
    let profile_dir = example_plugin("hello").parent().unwrap().to_owned();
    profile_dir.parent().unwrap().to_owned()
}

/// plugd with the example plugins plus the named fixtures, and the admin listener on a free port.
fn start(fixture_names: &[&str], extra_args: &[&str]) -> (Server, SocketAddr) {
    let mut libs = example_plugins();
    libs.extend(
        fixture_names
            .iter()
            .map(|name| fixtures::build_fixture(name, &target_dir())),
    );
    let mut args = vec!["--admin", "127.0.0.1:0"];
    args.extend_from_slice(extra_args);
    let server = Server::start_with_plugin_dir(plugin_dir_with(&libs), &args);
    let admin = server.admin_addr();
    (server, admin)
}

fn json(response: &Response) -> serde_json::Value {
    assert_eq!(response.status, 200, "{}", response.body_str());
    assert_eq!(response.header("Content-Type"), Some("application/json"));
    serde_json::from_slice(&response.body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", response.body_str()))
}

/// The plugin named `name` in a `/plugins` answer.
fn plugin<'a>(plugins: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    plugins["plugins"]
        .as_array()
        .expect("a list of plugins")
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no plugin {name} in {plugins}"))
}

/// SHA-256 of a file, by coreutils' `sha256sum`: an implementation other than the server's.
fn sha256sum(path: &Path) -> String {
    let out = Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("run sha256sum");
    assert!(out.status.success(), "sha256sum {}", path.display());
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .expect("a digest")
        .to_owned()
}

/// One sample of a Prometheus exposition: metric name, labels, value.
struct Sample {
    name: String,
    labels: HashMap<String, String>,
    value: f64,
}

/// Parses `text` with `prometheus_client`'s exposition parser (the reference implementation's Python
/// client); panics with the parser's complaint if the text is not valid exposition format.
fn parse_prometheus(text: &str) -> Vec<Sample> {
    const SCRIPT: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
samples = []
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        samples.append([s.name, s.labels, s.value])
print(json.dumps(samples))
"#;
    let mut child = Command::new("python3")
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run python3");
    child
        .stdin
        .take()
        .expect("stdin piped")
        .write_all(text.as_bytes())
        .expect("feed the parser");
    let out = child.wait_with_output().expect("python3 finished");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("No module named 'prometheus_client'"),
        "the Prometheus parser is missing: `pip install prometheus_client` (cargo xtask test does)"
    );
    assert!(
        out.status.success(),
        "the Prometheus parser refused /metrics: {stderr}\n{text}"
    );
    let samples: Vec<(String, HashMap<String, String>, f64)> =
        serde_json::from_slice(&out.stdout).expect("the parser's JSON");
    samples
        .into_iter()
        .map(|(name, labels, value)| Sample {
            name,
            labels,
            value,
        })
        .collect()
}

/// The value of the sample `name` whose labels include all of `labels`; `None` if there is none.
fn sample(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
}

/// Counters are recorded just after an answer is written, so a client that has read its answer may ask a
/// moment before they count it: asks again until `settled` holds, or the deadline passed (then the last
/// answer, for the assertions to name).
fn settled<T>(fetch: impl Fn() -> T, settled: impl Fn(&T) -> bool) -> T {
    let deadline = Instant::now() + EVENTUALLY;
    loop {
        let value = fetch();
        if settled(&value) || Instant::now() >= deadline {
            return value;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The requests `samples` count, over the routes `route` accepts.
fn requests_counted(samples: &[Sample], route: impl Fn(&str) -> bool) -> f64 {
    samples
        .iter()
        .filter(|s| {
            s.name == "plugd_requests_total" && s.labels.get("route").is_some_and(|r| route(r))
        })
        .map(|s| s.value)
        .sum()
}

fn metrics(admin: SocketAddr) -> Vec<Sample> {
    let response = get(admin, "/metrics");
    assert_eq!(response.status, 200, "{}", response.body_str());
    assert!(
        response
            .header("Content-Type")
            .is_some_and(|t| t.starts_with("text/plain; version=0.0.4")),
        "{:?}",
        response.header("Content-Type")
    );
    parse_prometheus(&response.body_str())
}

fn post(addr: SocketAddr, path: &str) -> Response {
    let raw = send_raw(
        addr,
        format!(
            "POST {path} HTTP/1.1\r\nHost: admin\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .as_bytes(),
    );
    plugd_tests::parse_response(&raw)
}

#[test]
fn the_admin_listener_is_off_unless_configured() {
    let server = Server::start_with_examples(&[]);
    assert!(server.get("/plaintext").status == 200);
    assert!(
        !server.stderr().contains("admin listening"),
        "{}",
        server.stderr()
    );
}

#[test]
fn a_non_loopback_admin_address_is_refused_in_one_line_unless_admin_public() {
    let (status, stderr) = run_status(&["--port", "0", "--admin", "0.0.0.0:0"]);
    assert_eq!(status.code(), Some(2), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {stderr}");
    assert!(lines[0].contains("--admin-public") && lines[0].contains("not a loopback address"));

    let server = Server::start(&["--admin", "0.0.0.0:0", "--admin-public"]);
    let line = server
        .wait_for_log_line(&["admin listening on http://0.0.0.0:"], EVENTUALLY)
        .expect("the admin line with the real port");
    assert!(!line.ends_with(":0"), "{line}");
    let port = server.admin_addr().port();
    assert_ne!(port, 0);
    let health = get(SocketAddr::from(([127, 0, 0, 1], port)), "/healthz");
    assert_eq!(health.status, 200);
}

#[test]
fn plugins_lists_each_version_with_its_file_hash_routes_and_counters() {
    let (server, admin) = start(&["panicky"], &[]);
    for _ in 0..5 {
        assert_eq!(server.get("/plaintext").status, 200);
    }
    for _ in 0..3 {
        assert_eq!(server.get("/panic").status, 500);
    }
    let plugins = settled(
        || json(&get(admin, "/plugins")),
        |plugins| {
            plugin(plugins, "hello")["counters"]["requests"] == 5
                && plugin(plugins, "panicky")["counters"]["requests"] == 3
        },
    );

    let hello = plugin(&plugins, "hello");
    let file = PathBuf::from(hello["file"].as_str().expect("file"));
    assert_eq!(file.file_name(), example_plugin("hello").file_name());
    assert_eq!(hello["sha256"], sha256sum(&file));
    assert_eq!(hello["version"], "0.1.0");
    assert_eq!(hello["state"], "serving");
    assert!(
        hello["loaded_at"]
            .as_str()
            .is_some_and(|t| t.ends_with(" GMT"))
    );
    assert!(
        hello["loaded_at_unix"]
            .as_u64()
            .is_some_and(|t| t > 1_700_000_000)
    );
    let routes = hello["routes"].as_array().expect("routes");
    assert!(
        routes
            .iter()
            .any(|r| r["method"] == "GET" && r["pattern"] == "/plaintext"),
        "{routes:?}"
    );
    let counters = &hello["counters"];
    assert_eq!(counters["requests"], 5, "{counters}");
    assert_eq!(counters["errors_5xx"], 0);
    assert_eq!(counters["panics"], 0);
    assert_eq!(counters["in_flight"], 0);
    let p50 = counters["latency_p50_seconds"].as_f64().expect("a p50");
    let p99 = counters["latency_p99_seconds"].as_f64().expect("a p99");
    assert!(0.0 < p50 && p50 <= p99, "{counters}");

    let panicky = &plugin(&plugins, "panicky")["counters"];
    assert_eq!(panicky["requests"], 3, "{panicky}");
    assert_eq!(panicky["errors_5xx"], 3);
    assert_eq!(panicky["panics"], 3);
    // A plugin nobody called has counted nothing and has no latency yet.
    let echo = &plugin(&plugins, "echo")["counters"];
    assert_eq!(echo["requests"], 0);
    assert!(echo["latency_p99_seconds"].is_null());
}

#[test]
fn metrics_parse_as_prometheus_text_and_count_by_route_method_and_status() {
    let (server, admin) = start(&["panicky"], &[]);
    for _ in 0..3 {
        assert_eq!(server.get("/plaintext").status, 200);
    }
    assert_eq!(server.get("/hello/ada").status, 200);
    assert_eq!(server.get("/hello/bob").status, 200);
    for _ in 0..2 {
        assert_eq!(server.get("/no/such/route").status, 404);
    }
    assert_eq!(server.get("/panic").status, 500);
    let head = send_raw(
        server.addr(),
        b"HEAD /plaintext HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    assert!(head.starts_with(b"HTTP/1.1 200 "));

    let samples = settled(
        || metrics(admin),
        |samples| requests_counted(samples, |_| true) == 9.0,
    );
    let requests = |route: &str, method: &str, status: &str| {
        sample(
            &samples,
            "plugd_requests_total",
            &[("route", route), ("method", method), ("status", status)],
        )
    };
    assert_eq!(requests("/plaintext", "GET", "2xx"), Some(3.0));
    assert_eq!(requests("/plaintext", "HEAD", "2xx"), Some(1.0));
    assert_eq!(
        requests("/hello/{name}", "GET", "2xx"),
        Some(2.0),
        "one series per pattern"
    );
    assert_eq!(requests("(none)", "GET", "4xx"), Some(2.0));
    assert_eq!(requests("/panic", "GET", "5xx"), Some(1.0));
    assert_eq!(requests("/plaintext", "GET", "5xx"), None);

    let duration = |suffix: &str, extra: &[(&str, &str)]| {
        let mut labels = vec![("route", "/plaintext"), ("method", "GET")];
        labels.extend_from_slice(extra);
        sample(
            &samples,
            &format!("plugd_request_duration_seconds{suffix}"),
            &labels,
        )
    };
    assert_eq!(
        duration("_count", &[]),
        Some(4.0),
        "GET and HEAD on the GET route"
    );
    assert_eq!(duration("_bucket", &[("le", "+Inf")]), Some(4.0));
    assert!(duration("_sum", &[]).is_some_and(|s| s > 0.0));

    let value = |name: &str| sample(&samples, name, &[]).unwrap_or_else(|| panic!("no {name}"));
    assert_eq!(
        value("plugd_plugin_loads_total"),
        (plugd_tests::build::EXAMPLE_PLUGINS.len() + 1) as f64,
        "the example plugins and panicky"
    );
    assert_eq!(value("plugd_plugin_refusals_total"), 0.0);
    assert_eq!(value("plugd_plugin_reloads_total"), 0.0);
    assert_eq!(value("plugd_plugin_panics_total"), 1.0);
    assert!(value("plugd_received_bytes_total") > 0.0);
    assert!(value("plugd_sent_bytes_total") > value("plugd_received_bytes_total"));
    assert!(value("plugd_workers") >= 1.0);
    assert!(value("plugd_workers_busy") >= 0.0);
    assert!(value("plugd_connections_open") >= value("plugd_connections_idle"));
}

#[test]
fn requests_refused_before_their_head_are_counted_under_their_own_route_label() {
    let (server, admin) = start(&[], &["--max-header-bytes", "256"]);
    let huge_field = format!(
        "GET /huge HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n",
        "a".repeat(300)
    );
    let refusals: [(&[u8], u16); 3] = [
        (b"GET /bad\x01 HTTP/1.1\r\nHost: t\r\n\r\n", 400),
        // A TLS handshake sent to the plain port: no method at all.
        (b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\r\n\r\n", 400),
        (huge_field.as_bytes(), 431),
    ];
    for (sent, status) in refusals {
        let response = plugd_tests::parse_response(&send_raw(server.addr(), sent));
        assert_eq!(response.status, status);
    }
    let samples = settled(
        || metrics(admin),
        |samples| requests_counted(samples, |route| route == "(refused)") == 3.0,
    );
    let requests = |method: &str| {
        sample(
            &samples,
            "plugd_requests_total",
            &[
                ("route", "(refused)"),
                ("method", method),
                ("status", "4xx"),
            ],
        )
    };
    assert_eq!(requests("GET"), Some(2.0), "its first word, when a method");
    assert_eq!(requests("other"), Some(1.0));
}

#[test]
fn open_and_idle_connections_are_gauged() {
    let (server, admin) = start(&[], &[]);
    let mut idle: Vec<_> = (0..3).map(|_| server.connect()).collect();
    for conn in &mut idle {
        conn.send(b"GET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n");
        assert_eq!(conn.read_response().expect("an answer").status, 200);
    }
    // The three connections are open and idle, kept alive.
    let deadline = Instant::now() + EVENTUALLY;
    loop {
        let samples = metrics(admin);
        let open = sample(&samples, "plugd_connections_open", &[]);
        let idle = sample(&samples, "plugd_connections_idle", &[]);
        if open == Some(3.0) && idle == Some(3.0) {
            break;
        }
        assert!(Instant::now() < deadline, "open {open:?}, idle {idle:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn post_reload_says_nothing_changed_and_other_methods_are_refused() {
    let (_server, admin) = start(&[], &[]);
    let report = json(&post(admin, "/reload"));
    assert_eq!(report["changes"].as_array().map(Vec::len), Some(0));
    assert_eq!(report["refusals"].as_array().map(Vec::len), Some(0));
    assert!(report["not_attempted"].is_null(), "{report}");
    let wrong = get(admin, "/reload");
    assert_eq!(wrong.status, 405);
    assert_eq!(wrong.header("Allow"), Some("POST"));
    let wrong = post(admin, "/metrics");
    assert_eq!(wrong.status, 405);
    assert_eq!(wrong.header("Allow"), Some("GET, HEAD"));
    assert_eq!(get(admin, "/nothing").status, 404);
    // A malformed request gets the engine's own answer.
    let bad = send_raw(admin, b"GET / HTTP/1.1\nHost: x\n\n");
    assert!(
        bad.starts_with(b"HTTP/1.1 400 "),
        "{}",
        String::from_utf8_lossy(&bad)
    );
}

#[test]
fn the_page_for_people_is_html_that_reads_plugins() {
    let (_server, admin) = start(&[], &[]);
    let page = get(admin, "/");
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("Content-Type"),
        Some("text/html; charset=utf-8")
    );
    let html = page.body_str();
    assert!(html.starts_with("<!doctype html>"));
    assert!(html.contains("fetch(\"/plugins\""));
}

#[test]
fn healthz_is_200_while_serving_and_503_while_draining() {
    let (mut server, admin) = start(&["sleepy"], &["--shutdown-timeout", "20"]);
    let health = get(admin, "/healthz");
    assert_eq!((health.status, health.body_str().as_str()), (200, "ok\n"));
    // A request in flight keeps the drain going while we look.
    let mut sleeper = server.connect();
    sleeper.send(b"GET /sleep/5000 HTTP/1.1\r\nHost: t\r\n\r\n");
    let deadline = Instant::now() + EVENTUALLY;
    while sample(&metrics(admin), "plugd_workers_busy", &[]) != Some(1.0) {
        assert!(
            Instant::now() < deadline,
            "the sleeping request never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    server.terminate();
    assert!(server.wait_for_log("shutting down", EVENTUALLY));
    let health = get(admin, "/healthz");
    assert_eq!(
        (health.status, health.body_str().as_str()),
        (503, "shutting down\n")
    );
    assert_eq!(
        sleeper
            .read_response()
            .expect("the in-flight answer")
            .status,
        200
    );
    assert!(server.wait_exit(EVENTUALLY).success());
}

#[test]
fn the_admin_listener_answers_while_every_worker_is_blocked() {
    let (server, admin) = start(&["sleepy"], &["--threads", "1", "--max-threads", "1"]);
    let mut sleeper = server.connect();
    sleeper.send(b"GET /sleep/8000 HTTP/1.1\r\nHost: t\r\n\r\n");
    // The only worker is inside the handler: the admin listener still answers, and sees it.
    let deadline = Instant::now() + EVENTUALLY;
    loop {
        let plugins = json(&get(admin, "/plugins"));
        if plugin(&plugins, "sleepy")["counters"]["in_flight"] == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "{plugins}");
        std::thread::sleep(Duration::from_millis(20));
    }
    let samples = metrics(admin);
    assert_eq!(sample(&samples, "plugd_workers_busy", &[]), Some(1.0));
    assert_eq!(sample(&samples, "plugd_workers", &[]), Some(1.0));
    assert_eq!(get(admin, "/healthz").status, 200);
    drop(sleeper);
}
