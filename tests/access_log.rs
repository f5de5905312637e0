//! End-to-end tests of the access log: the real `plugd` binary writing to a file, checked over raw TCP.
//! Hostile values a client sends stay inside their field, in both formats; requests refused before any
//! handler (400, 408, 413, 414, 431, a connection over the limit) have their line too; no line is lost when
//! the server shuts down under load; SIGUSR1 reopens the file after it was renamed (logrotate).

use std::fs;
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use plugd_tests::{ResponseReader, Server, TempDir, example_plugin, plugin_dir_with, send_raw};

#[path = "fixtures/builder.rs"]
mod fixtures;

/// How long a line may take to reach the file: buffered lines are written at least every second; the rest
/// is margin for a loaded 2-core machine.
const LOG_WAIT: Duration = Duration::from_secs(10);

/// Starts plugd logging to `dir/access.log` in `format`; returns the server and the log's path.
fn start_logging_to_file(dir: &TempDir, format: &str, extra: &[&str]) -> (Server, String) {
    let path = dir.join("access.log").display().to_string();
    let mut args = vec!["--access-log", &path, "--access-log-format", format];
    args.extend_from_slice(extra);
    (Server::start(&args), path)
}

fn read_lines(path: impl AsRef<Path>) -> Vec<String> {
    fs::read(path)
        .map(|bytes| {
            String::from_utf8(bytes)
                .expect("the access log is UTF-8")
                .lines()
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// Waits until the file has a line holding `needle`; returns it, or panics naming what the file held.
fn wait_for_line(path: &str, needle: &str) -> String {
    let deadline = Instant::now() + LOG_WAIT;
    loop {
        if let Some(line) = read_lines(path).into_iter().find(|l| l.contains(needle)) {
            return line;
        }
        assert!(
            Instant::now() < deadline,
            "no line with {needle:?} in {path} after {LOG_WAIT:?}:\n{:?}",
            read_lines(path)
        );
        thread::sleep(Duration::from_millis(50));
    }
}

/// A request whose target, Referer and User-Agent try to end the line or the quoted field early, and
/// carry bytes that are no UTF-8 (obs-text, which RFC 9110 §5.5 allows in field values).
const HOSTILE_REQUEST: &[u8] = b"GET /probe?q=\"x\\y HTTP/1.1\r\nHost: t\r\n\
Referer: \xff\xfe\"ref\r\n\
User-Agent: evil\" 200 1 \"-\" \"-\" 0 \"forged\\\r\n\
Connection: close\r\n\r\n";

#[test]
fn combined_line_escapes_what_the_client_sent() {
    let dir = TempDir::new("access-log");
    let (server, path) = start_logging_to_file(&dir, "combined", &[]);
    let response = plugd_tests::parse_response(&send_raw(server.addr(), HOSTILE_REQUEST));
    assert_eq!(response.status, 404);
    let body_bytes = response.body.len();

    let line = wait_for_line(&path, "/probe");
    // 127.0.0.1 - - [02/Dec/2026:01:53:49 +0000] "GET ..." 404 10 "..." "..." 0.000 "builtin"
    let (prefix, rest) = line.split_once(" [").expect("a [time] field");
    assert_eq!(prefix, "127.0.0.1 - -");
    let (time, rest) = rest.split_once("] ").expect("a closed [time] field");
    assert_eq!(time.len(), 26, "dd/Mon/yyyy:hh:mm:ss +0000: {time}");
    assert!(time.ends_with(" +0000"), "{time}");
    let (before_duration, handler) = rest.rsplit_once(' ').expect("a handler field");
    assert_eq!(handler, "\"builtin\"");
    let (fields, duration) = before_duration.rsplit_once(' ').expect("a duration");
    assert!(
        duration.len() >= 5 && duration.as_bytes()[duration.len() - 4] == b'.',
        "seconds with milliseconds: {duration}"
    );
    assert!(duration.parse::<f64>().is_ok(), "{duration}");
    assert_eq!(
        fields,
        format!(
            "\"GET /probe?q=\\x22x\\x5Cy HTTP/1.1\" 404 {body_bytes} \"\\xFF\\xFE\\x22ref\" \
             \"evil\\x22 200 1 \\x22-\\x22 \\x22-\\x22 0 \\x22forged\\x5C\""
        )
    );
    assert_eq!(read_lines(&path).len(), 1, "one request, one line");
}

#[test]
fn json_line_escapes_what_the_client_sent() {
    let dir = TempDir::new("access-log");
    let (server, path) = start_logging_to_file(&dir, "json", &[]);
    let response = plugd_tests::parse_response(&send_raw(server.addr(), HOSTILE_REQUEST));
    assert_eq!(response.status, 404);

    let line = wait_for_line(&path, "/probe");
    let entry: serde_json::Value = serde_json::from_str(&line).expect("a JSON line");
    assert_eq!(entry["remote_addr"], "127.0.0.1");
    assert_eq!(entry["method"], "GET");
    assert_eq!(entry["target"], "/probe?q=\"x\\y");
    assert_eq!(entry["protocol"], "HTTP/1.1");
    assert_eq!(entry["status"], 404);
    assert_eq!(entry["body_bytes"], response.body.len());
    // Bytes that are no UTF-8 come through as the code points of the same numbers.
    assert_eq!(entry["referer"], "\u{ff}\u{fe}\"ref");
    assert_eq!(entry["user_agent"], "evil\" 200 1 \"-\" \"-\" 0 \"forged\\");
    assert!(entry["request_time"].is_f64(), "seconds: {line}");
    assert_eq!(entry["handler"], "builtin");
    let time = entry["time"].as_str().expect("a time string");
    assert!(
        time.len() == 25 && time.ends_with("+00:00"),
        "ISO 8601: {time}"
    );
}

#[test]
fn requests_refused_before_any_handler_are_logged_as_nginx_logs_them() {
    let dir = TempDir::new("access-log");
    let limits = [
        "--max-body-bytes",
        "100",
        "--max-header-bytes",
        "256",
        "--header-timeout",
        "0.5",
    ];
    let (server, path) = start_logging_to_file(&dir, "combined", &limits);
    let huge_field = format!(
        "GET /huge HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n",
        "a".repeat(300)
    );
    let long_target = format!("GET /{} HTTP/1.1\r\nHost: t\r\n\r\n", "l".repeat(9000));
    // The line shows at most 2 KiB of a request line it could not read.
    let long_shown = format!("GET /{}", "l".repeat(2048 - 5));
    // (what is sent, its status, the request as the line must show it)
    let refusals: [(&[u8], u16, &str); 5] = [
        (
            b"\r\nGET /bad\x01 HTTP/1.1\r\nHost: t\r\n\r\n",
            400,
            "GET /bad\\x01 HTTP/1.1",
        ),
        (
            b"POST /big HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n",
            413,
            "POST /big HTTP/1.1",
        ),
        (long_target.as_bytes(), 414, &long_shown),
        (huge_field.as_bytes(), 431, "GET /huge HTTP/1.1"),
        // Half a head, then silence: the header timeout answers it.
        (b"GET /slow HTTP/1.1\r\nHost", 408, "GET /slow HTTP/1.1"),
    ];
    for (sent, status, request) in refusals {
        let response = plugd_tests::parse_response(&send_raw(server.addr(), sent));
        assert_eq!(response.status, status, "{request}");
        let line = wait_for_line(&path, &format!("\"{request}\" {status} "));
        assert!(
            line.starts_with("127.0.0.1 - - [")
                && line.contains(&format!(" {status} {} ", response.body.len()))
                && line.ends_with(" \"builtin\""),
            "{line}"
        );
    }
    assert_eq!(
        read_lines(&path).len(),
        refusals.len(),
        "{:#?}",
        read_lines(&path)
    );
}

#[test]
fn a_connection_over_the_limit_is_logged_with_its_503() {
    let dir = TempDir::new("access-log");
    let (server, path) = start_logging_to_file(&dir, "combined", &["--max-connections", "2"]);
    // Two connections the server has certainly accepted: each got an answer and stays open.
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut conn = plugd_tests::Conn::open(server.addr());
        conn.send(b"GET /held HTTP/1.1\r\nHost: t\r\n\r\n");
        assert_eq!(conn.read_response().unwrap().status, 404);
        held.push(conn);
    }
    let response = plugd_tests::parse_response(&send_raw(
        server.addr(),
        b"GET /one-too-many HTTP/1.1\r\nHost: t\r\n\r\n",
    ));
    assert_eq!(response.status, 503);
    // Refused before its request was read: the line shows none (`"-"`), as nginx shows a request it
    // never read.
    let line = wait_for_line(&path, "\"-\" 503 ");
    assert!(
        line.starts_with("127.0.0.1 - - [")
            && line.contains(&format!(" 503 {} \"-\" \"-\" ", response.body.len()))
            && line.ends_with(" \"builtin\""),
        "{line}"
    );
}

#[test]
fn a_handler_that_panics_is_logged_with_its_500() {
    let panicky = fixtures::build_fixture("panicky", &target_dir());
    let plugins = plugin_dir_with(&[panicky]);
    let dir = TempDir::new("access-log");
    let path = dir.join("access.log").display().to_string();
    let server = Server::start_with_plugin_dir(plugins, &["--access-log", &path]);
    for _ in 0..3 {
        assert_eq!(server.get("/panic").status, 500);
    }
    assert_eq!(server.get("/panicky").status, 200);
    wait_for_line(&path, "/panicky");
    let lines = read_lines(&path);
    let panics: Vec<&String> = lines.iter().filter(|l| l.contains("/panic ")).collect();
    assert_eq!(panics.len(), 3, "{lines:#?}");
    assert!(
        panics
            .iter()
            .all(|l| l.contains("\" 500 ") && l.ends_with(" \"panicky\"")),
        "{panics:#?}"
    );
}

/// The folder the example plugins were built into; fixtures are built there too.
fn target_dir() -> std::path::PathBuf {
    let profile_dir = example_plugin("hello").parent().unwrap().to_owned();
    profile_dir.parent().unwrap().to_owned()
}

#[test]
fn off_writes_no_access_line() {
    let server = Server::start(&["--access-log", "off"]);
    assert_eq!(server.get("/not-logged").status, 404);
    // Long enough for a buffered line to have been written, had there been one.
    thread::sleep(Duration::from_millis(1500));
    assert!(
        !server.stderr().contains("/not-logged"),
        "{}",
        server.stderr()
    );
}

/// Sequential keep-alive requests on fresh connections until the server stops answering; counts the
/// responses received whole.
fn load_until_refused(addr: SocketAddr, client: usize, received: &AtomicU64, stop: &AtomicBool) {
    let mut n = 0u64;
    'connections: while !stop.load(Ordering::Relaxed) {
        let Ok(stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(5)) else {
            return; // refused: the listener is closed
        };
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut writer = stream.try_clone().unwrap();
        let mut reader = ResponseReader::new(stream);
        loop {
            n += 1;
            let request = format!("GET /load/{client}/{n} HTTP/1.1\r\nHost: t\r\n\r\n");
            if writer.write_all(request.as_bytes()).is_err() {
                continue 'connections;
            }
            let Ok(response) = reader.read_response() else {
                continue 'connections;
            };
            assert_eq!(response.status, 404);
            received.fetch_add(1, Ordering::Relaxed);
            if response.header_has_token("Connection", "close") || stop.load(Ordering::Relaxed) {
                continue 'connections;
            }
        }
    }
}

#[test]
fn no_line_is_lost_when_shutting_down_under_load() {
    const CLIENTS: usize = 4;
    /// Responses before SIGTERM: several buffers' worth would take too long on a debug build, so this
    /// checks the flush at shutdown, not at 64 KiB (the unit tests and the bench cover batching).
    const BEFORE_SIGTERM: u64 = 3_000;
    let dir = TempDir::new("access-log");
    let (mut server, path) = start_logging_to_file(&dir, "combined", &[]);
    let received = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let addr = server.addr();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let (received, stop) = (Arc::clone(&received), Arc::clone(&stop));
            thread::spawn(move || load_until_refused(addr, client, &received, &stop))
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    while received.load(Ordering::Relaxed) < BEFORE_SIGTERM && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }
    server.terminate();
    let status = server.wait_exit(Duration::from_secs(20));
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.join().expect("client thread");
    }
    assert!(status.success(), "exit {status}:\n{}", server.stderr());
    let received = received.load(Ordering::Relaxed);
    assert!(received >= BEFORE_SIGTERM, "only {received} responses");
    let lines = read_lines(&path);
    let logged = lines.iter().filter(|l| l.contains("\"GET /load/")).count();
    assert_eq!(
        logged as u64, received,
        "lines logged vs responses received"
    );
    assert!(
        lines.iter().all(|l| l.ends_with(" \"builtin\"")),
        "a torn line"
    );
}

#[test]
fn sigusr1_reopens_the_file_after_it_was_renamed() {
    let dir = TempDir::new("access-log");
    let (server, path) = start_logging_to_file(&dir, "combined", &[]);
    assert_eq!(server.get("/before").status, 404);
    wait_for_line(&path, "/before");
    // Likely still in a worker's buffer when the file is renamed: it belongs to the old file.
    assert_eq!(server.get("/buffered").status, 404);
    let rotated = dir.join("access.log.1");
    fs::rename(&path, &rotated).unwrap();

    server.signal(libc::SIGUSR1);
    assert!(
        server.wait_for_log("access log reopened", LOG_WAIT),
        "{}",
        server.stderr()
    );
    assert_eq!(server.get("/after").status, 404);
    wait_for_line(&path, "/after");

    let old = read_lines(&rotated);
    let new = read_lines(&path);
    let has = |lines: &[String], target: &str| {
        lines
            .iter()
            .any(|l| l.contains(&format!("\"GET {target} ")))
    };
    assert!(
        has(&old, "/before") && has(&old, "/buffered"),
        "old file: {old:#?}"
    );
    assert!(!has(&old, "/after"), "old file: {old:#?}");
    assert_eq!(new.len(), 1, "new file: {new:#?}");
    assert!(has(&new, "/after"), "new file: {new:#?}");
}
