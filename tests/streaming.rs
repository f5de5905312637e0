//! Streamed responses and streamed uploads against the real binary, through the example plugin `stream` and
//! the `faulty_stream` fixture: chunked, `Content-Length` and close-delimited framing, HEAD, pipelining after
//! a stream, a client that leaves mid-stream (its producer is dropped, its descriptors and threads freed), a
//! producer that fails mid-stream (the body is cut, never completed), uploads chunked and by length with
//! their size and sha256, limits and timeouts. Sizes stay CI-friendly; the 1 GiB figures are in
//! `bench/streaming.sh`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use plugd_tests::{
    Server, TempDir, connect, example_plugin, example_plugins, parse_response, plugin_dir_with,
    proc_status, read_until_close,
};
use sha2::{Digest, Sha256};

#[path = "fixtures/builder.rs"]
mod fixtures;

/// Byte `i` of a `/bytes/` body.
fn pattern_byte(i: usize) -> u8 {
    b'a' + (i % 26) as u8
}

fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The folder the example plugins were built into; fixtures are built there too.
fn target_dir() -> std::path::PathBuf {
    let profile_dir = example_plugin("hello").parent().unwrap().to_owned();
    profile_dir.parent().unwrap().to_owned()
}

/// Sends `request` on a fresh connection and reads until the server closes it.
fn exchange(server: &Server, request: &[u8]) -> Vec<u8> {
    let mut stream = connect(server.addr());
    stream.write_all(request).unwrap();
    read_until_close(&mut stream, Duration::from_secs(30)).expect("the server closes")
}

fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("/proc/PID/fd")
        .count()
}

/// Polls `reading` until it is at most `bound`, for up to 20 s (a spare worker started meanwhile retires
/// after 10 s without work); returns the last reading.
fn settles_at_most(bound: u64, reading: impl Fn() -> u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = reading();
        if now <= bound || Instant::now() >= deadline {
            return now;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn bytes_sends_exactly_n_pattern_bytes_with_their_length_even_to_a_slow_reader() {
    let server = Server::start_with_examples(&[]);
    let n = 32 << 20;
    let mut stream = connect(server.addr());
    write!(
        stream,
        "GET /bytes/{n} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    // A client that reads nothing at first: plugd must wait for it, not buffer the body.
    std::thread::sleep(Duration::from_millis(1500));
    let rss_kib = proc_status(server.pid(), "VmRSS");
    let got = read_until_close(&mut stream, Duration::from_secs(60)).expect("the body ends");
    let response = parse_response(&got);
    assert_eq!(response.status, 200);
    assert_eq!(response.header("content-length"), Some("33554432"));
    assert!(!response.chunked);
    assert_eq!(response.body.len(), n);
    assert!(
        response
            .body
            .iter()
            .enumerate()
            .all(|(i, &b)| b == pattern_byte(i))
    );
    assert!(
        rss_kib < 64 * 1024,
        "plugd held {rss_kib} KiB while the client did not read"
    );
}

#[test]
fn events_are_chunked_for_http11_and_end_after_count() {
    let server = Server::start_with_examples(&[]);
    let got = exchange(
        &server,
        b"GET /events?every_ms=20&count=3 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    let response = parse_response(&got);
    assert_eq!(response.status, 200);
    assert!(response.chunked, "{}", response.raw_head);
    assert_eq!(response.header("content-type"), Some("text/event-stream"));
    assert_eq!(response.header("content-length"), None);
    assert_eq!(response.body_str(), "data: 1\n\ndata: 2\n\ndata: 3\n\n");
    assert!(got.ends_with(b"\r\n0\r\n\r\n"), "ends with the last chunk");
}

#[test]
fn an_http10_client_gets_the_stream_until_the_connection_closes() {
    let server = Server::start_with_examples(&[]);
    let got = exchange(&server, b"GET /events?every_ms=10&count=2 HTTP/1.0\r\n\r\n");
    let text = String::from_utf8(got).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(head.contains("\r\nConnection: close"), "{head}");
    assert!(
        !head.to_ascii_lowercase().contains("transfer-encoding")
            && !head.to_ascii_lowercase().contains("content-length"),
        "{head}"
    );
    assert_eq!(body, "data: 1\n\ndata: 2\n\n");
    // With a declared length, an HTTP/1.0 client keeps its connection (it asked for it).
    let mut conn = server.connect();
    conn.send(b"GET /bytes/5 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    let response = conn.read_response().unwrap();
    assert_eq!(response.body, b"abcde");
    assert_eq!(response.header("connection"), Some("keep-alive"));
}

#[test]
fn head_gets_the_head_of_a_stream_only_and_the_connection_goes_on() {
    let server = Server::start_with_examples(&[]);
    let mut conn = server.connect();
    conn.send(
        b"HEAD /events HTTP/1.1\r\nHost: t\r\n\r\nHEAD /bytes/1000 HTTP/1.1\r\nHost: t\r\n\r\n",
    );
    let events = conn.read_response().unwrap();
    assert_eq!(events.status, 200);
    assert_eq!(events.header("transfer-encoding"), Some("chunked"));
    assert!(events.body.is_empty());
    let bytes = conn.read_response().unwrap();
    assert_eq!(bytes.header("content-length"), Some("1000"));
    assert!(bytes.body.is_empty());
    conn.send(b"GET /bytes/3 HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(conn.read_response().unwrap().body, b"abc");
}

#[test]
fn pipelined_requests_after_a_streamed_response_are_answered_in_order() {
    let server = Server::start_with_examples(&[]);
    let mut conn = server.connect();
    conn.send(
        b"GET /bytes/200000 HTTP/1.1\r\nHost: t\r\n\r\n\
          GET /events?every_ms=5&count=2 HTTP/1.1\r\nHost: t\r\n\r\n\
          GET /bytes/4 HTTP/1.1\r\nHost: t\r\n\r\n\
          POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello",
    );
    let first = conn.read_response().unwrap();
    assert_eq!(first.body.len(), 200_000);
    assert_eq!(
        conn.read_response().unwrap().body_str(),
        "data: 1\n\ndata: 2\n\n"
    );
    assert_eq!(conn.read_response().unwrap().body, b"abcd");
    assert_eq!(conn.read_response().unwrap().body, b"hello");
}

#[test]
fn a_client_that_leaves_mid_stream_stops_its_producer_and_frees_everything() {
    let server = Server::start_with_examples(&[]);
    let pid = server.pid();
    // Warm up: one finished stream starts the plugin's timer thread and plugd's usual workers.
    exchange(
        &server,
        b"GET /events?every_ms=20&count=2 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    std::thread::sleep(Duration::from_millis(300));
    let fds = fd_count(pid) as u64;
    let threads = proc_status(pid, "Threads");
    let clients: Vec<TcpStream> = (0..20)
        .map(|_| {
            let mut stream = connect(server.addr());
            stream
                .write_all(b"GET /events?every_ms=50 HTTP/1.1\r\nHost: t\r\n\r\n")
                .unwrap();
            let mut got = Vec::new();
            let mut piece = [0u8; 512];
            while !String::from_utf8_lossy(&got).contains("data: 1") {
                let n = stream.read(&mut piece).unwrap();
                assert!(n > 0, "closed before the first event");
                got.extend_from_slice(&piece[..n]);
            }
            stream
        })
        .collect();
    assert!(fd_count(pid) as u64 >= fds + 20);
    drop(clients);
    let deadline = Instant::now() + Duration::from_secs(10);
    while server
        .stderr()
        .matches("events stream closed after")
        .count()
        < 21
    {
        assert!(
            Instant::now() < deadline,
            "the producers of the 20 streams whose clients left were not all dropped:\n{}",
            server.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let left_fds = settles_at_most(fds, || fd_count(pid) as u64);
    assert!(left_fds <= fds, "descriptors: {left_fds}, baseline {fds}");
    let left_threads = settles_at_most(threads, || proc_status(pid, "Threads"));
    assert!(
        left_threads <= threads,
        "threads: {left_threads}, baseline {threads}"
    );
    assert_eq!(server.get("/bytes/2").body, b"ab", "still serving");
}

#[test]
fn a_producer_that_fails_mid_stream_cuts_the_body_instead_of_ending_it() {
    let faulty = fixtures::build_fixture("faulty_stream", &target_dir());
    let server = Server::start_with_plugin_dir(plugin_dir_with(&[faulty]), &[]);
    let got = exchange(&server, b"GET /panic-midway HTTP/1.1\r\nHost: t\r\n\r\n");
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text:.200}");
    assert!(text.contains("Transfer-Encoding: chunked"));
    assert!(
        !text.ends_with("0\r\n\r\n"),
        "a cut chunked body has no last chunk"
    );
    let (_, body) = text.split_once("\r\n\r\n").unwrap();
    let data = body.bytes().filter(|&b| b == b'x').count();
    assert_eq!(
        data, 100_000,
        "everything produced before the panic was sent"
    );
    assert!(server.wait_for_log("producer exploded midway", Duration::from_secs(5)));

    let got = exchange(&server, b"GET /short HTTP/1.1\r\nHost: t\r\n\r\n");
    let text = String::from_utf8_lossy(&got);
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert!(head.contains("Content-Length: 1000"), "{head}");
    assert_eq!(body.len(), 500, "the connection closed short of the length");
    let still = exchange(
        &server,
        b"GET /nope HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    assert!(still.starts_with(b"HTTP/1.1 404 "), "still serving");
}

/// `POST /upload` with `body` framed by `Content-Length` or chunked (in 64 KiB chunks).
fn upload_request(body: &[u8], chunked: bool) -> Vec<u8> {
    let mut request = b"POST /upload HTTP/1.1\r\nHost: t\r\n".to_vec();
    if chunked {
        request.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
        for chunk in body.chunks(64 * 1024) {
            request.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
            request.extend_from_slice(chunk);
            request.extend_from_slice(b"\r\n");
        }
        request.extend_from_slice(b"0\r\n\r\n");
    } else {
        request.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
        request.extend_from_slice(body);
    }
    request
}

#[test]
fn uploads_beyond_max_body_bytes_answer_their_size_and_sha256_and_the_connection_goes_on() {
    // The default --max-body-bytes is 1 MiB: the upload route's own limit lets 16 MiB through.
    let server = Server::start_with_examples(&[]);
    let body: Vec<u8> = (0..16u32 << 20).map(|i| (i * 7 % 251) as u8).collect();
    let expected = format!(
        r#"{{"bytes":{},"sha256":"{}"}}"#,
        body.len(),
        sha256_hex(&body)
    );
    for chunked in [false, true] {
        let mut conn = server.connect();
        let mut request = upload_request(&body, chunked);
        // Pipelined behind the body: the bytes read past it belong to this request.
        request.extend_from_slice(b"GET /bytes/3 HTTP/1.1\r\nHost: t\r\n\r\n");
        let writer = {
            let mut stream = conn.stream().try_clone().unwrap();
            std::thread::spawn(move || stream.write_all(&request).unwrap())
        };
        let response = conn.read_response().unwrap();
        assert_eq!(response.status, 200, "chunked: {chunked}");
        assert_eq!(response.body_str(), expected, "chunked: {chunked}");
        assert_eq!(conn.read_response().unwrap().body, b"abc");
        writer.join().unwrap();
    }
}

/// plugd with the examples and `[plugins.stream] max_upload = 1000`.
fn server_with_small_uploads(extra: &[&str]) -> (Server, TempDir) {
    let dir = TempDir::new("streaming-config");
    let config = dir.join("plugd.toml");
    std::fs::write(&config, "[plugins.stream]\nmax_upload = 1000\n").unwrap();
    let config = config.to_str().unwrap().to_owned();
    let mut args = vec!["--config", config.as_str()];
    args.extend_from_slice(extra);
    let server = Server::start_with_plugin_dir(plugin_dir_with(&example_plugins()), &args);
    (server, dir)
}

#[test]
fn an_upload_over_the_routes_limit_gets_413_and_the_unread_rest_closes_the_connection() {
    let (server, _dir) = server_with_small_uploads(&[]);
    let mut conn = server.connect();
    // Announced too large: refused before a byte of the body is read, even though it is still coming.
    conn.send(b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 100000000\r\n\r\nxxxx");
    let response = conn.read_response().unwrap();
    assert_eq!(response.status, 413);
    assert_eq!(response.header("connection"), Some("close"));
    // Chunked, found too large while reading.
    let mut request = upload_request(&[b'y'; 5000], true);
    request.extend_from_slice(b"GET /bytes/3 HTTP/1.1\r\nHost: t\r\n\r\n");
    let got = exchange(&server, &request);
    let response = parse_response(&got);
    assert_eq!(response.status, 413);
    assert!(
        !String::from_utf8_lossy(&got).contains("abc"),
        "nothing after the refused body is read as a request"
    );
}

#[test]
fn a_stalled_upload_gets_408_and_a_slow_steady_one_succeeds() {
    let server = Server::start_with_examples(&["--body-timeout", "1", "--min-body-rate", "100"]);
    let mut stalled = connect(server.addr());
    stalled
        .write_all(b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n0123456789")
        .unwrap();
    let got = read_until_close(&mut stalled, Duration::from_secs(15)).expect("closed");
    assert_eq!(parse_response(&got).status, 408);

    // 3,000 bytes over about 3 s: three times the inactivity timeout in total, never idle that long, and
    // faster than 100 B/s.
    let mut steady = connect(server.addr());
    steady
        .write_all(b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 3000\r\nConnection: close\r\n\r\n")
        .unwrap();
    let body = [b's'; 3000];
    for piece in body.chunks(250) {
        steady.write_all(piece).unwrap();
        std::thread::sleep(Duration::from_millis(250));
    }
    let got = read_until_close(&mut steady, Duration::from_secs(15)).expect("closed");
    let response = parse_response(&got);
    assert_eq!(response.status, 200, "{}", response.body_str());
    assert_eq!(
        response.body_str(),
        format!(r#"{{"bytes":3000,"sha256":"{}"}}"#, sha256_hex(&body))
    );
}

#[test]
fn a_client_that_stops_reading_a_stream_is_cut_after_the_send_timeout() {
    let server = Server::start_with_examples(&["--send-timeout", "1"]);
    let pid = server.pid();
    let fds = fd_count(pid) as u64;
    let mut stream = connect(server.addr());
    // A body far larger than the socket buffers, never read.
    stream
        .write_all(b"GET /bytes/1073741824 HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert!(fd_count(pid) as u64 > fds);
    let left = settles_at_most(fds, || fd_count(pid) as u64);
    assert!(
        left <= fds,
        "the non-reading client's connection is still open"
    );
}
