//! Raw-TCP tests of the HTTP/1.1 engine against the real `plugd` binary, one section per concern
//! (docs/ARCHITECTURE.md §4-§7, §11, §12). Requests go to paths no route serves wherever the point is about
//! the protocol: a 404 is a complete response whose framing is as testable as any other, and it needs no
//! plugin.
//! Handlers with special behaviour (panicking, sleeping, echoing) are in `inprocess.rs`.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use plugd_tests::*;

/// A complete GET on a path no route serves, keeping the connection open (HTTP/1.1 default).
fn get_req(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").into_bytes()
}

/// The same with `Connection: close`.
fn get_close(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").into_bytes()
}

/// The server still answers a normal request completely.
fn assert_serving(server: &Server) {
    let response = server.get("/still-serving");
    assert_eq!(response.status_line(), "HTTP/1.1 404 Not Found");
}

/// Sends `request` on a fresh connection; the server must answer it with exactly one response whose status
/// line is `status_line`, carrying `Connection: close`, and then close the connection. Bytes after the bad
/// request (a second, valid request) must not be answered.
fn assert_refused(server: &Server, request: &[u8], status_line: &str) {
    let mut bytes = request.to_vec();
    bytes.extend_from_slice(&get_req("/after-a-refused-request"));
    let got = send_raw(server.addr(), &bytes);
    let responses = parse_responses(&got, &[]);
    let shown = String::from_utf8_lossy(request);
    assert_eq!(
        responses.len(),
        1,
        "{shown:?}: expected one response, got {:?}",
        String::from_utf8_lossy(&got)
    );
    let response = &responses[0];
    assert_eq!(response.status_line(), status_line, "for {shown:?}");
    assert!(
        response.header_has_token("Connection", "close"),
        "{shown:?}: refusal without Connection: close:\n{}",
        response.raw_head
    );
    assert_short_text_error(response);
}

/// [`assert_refused`] for each of `requests`.
fn assert_all_refused(server: &Server, requests: &[&[u8]], status_line: &str) {
    for request in requests {
        assert_refused(server, request, status_line);
    }
}

/// Error bodies are a short plain-text line, framed by an exact `Content-Length`.
fn assert_short_text_error(response: &Response) {
    assert!(
        response
            .header("Content-Type")
            .is_some_and(|t| t.starts_with("text/plain")),
        "error without a text/plain type:\n{}",
        response.raw_head
    );
    assert!(
        !response.body.is_empty() && response.body.len() <= 200,
        "error body should be a short text, got {:?}",
        response.body_str()
    );
    assert_eq!(
        response.header("Content-Length"),
        Some(response.body.len().to_string().as_str())
    );
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

// ---------------------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------------------

#[test]
fn help_states_every_flag_with_its_default_and_unit() {
    let out = run_plugd(&["--help"], &[], secs(10.0));
    assert!(
        out.status.success(),
        "--help: {}\n{}",
        out.status,
        out.stderr
    );
    let help = out.stdout;
    for (flag, env, default) in [
        ("--host", "PLUGD_HOST", "[default: 127.0.0.1]"),
        ("--port", "PLUGD_PORT", "[default: 8080]"),
        ("--static-dir", "PLUGD_STATIC_DIR", "[default: static]"),
        ("--plugin-dir", "PLUGD_PLUGIN_DIR", "[default: plugins]"),
        ("--threads", "PLUGD_THREADS", "default"),
        (
            "--max-body-bytes",
            "PLUGD_MAX_BODY_BYTES",
            "[default: 1048576]",
        ),
        ("--max-header-bytes", "PLUGD_MAX_HEADER_BYTES", "[default:"),
        ("--header-timeout", "PLUGD_HEADER_TIMEOUT", "[default:"),
        ("--body-timeout", "PLUGD_BODY_TIMEOUT", "[default:"),
        ("--idle-timeout", "PLUGD_IDLE_TIMEOUT", "[default:"),
        ("--max-connections", "PLUGD_MAX_CONNECTIONS", "[default:"),
        ("--shutdown-timeout", "PLUGD_SHUTDOWN_TIMEOUT", "[default:"),
    ] {
        // The flag's paragraph: from the flag to the next flag.
        let start = help
            .find(&format!("  {flag} "))
            .or_else(|| help.find(&format!("  {flag}\n")))
            .unwrap_or_else(|| panic!("--help does not list {flag}:\n{help}"));
        let rest = &help[start + 2..];
        let end = rest[flag.len()..]
            .find("\n  --")
            .map_or(rest.len(), |e| e + flag.len());
        let paragraph = &rest[..end];
        assert!(
            paragraph.contains(env),
            "{flag}: no env var {env}:\n{paragraph}"
        );
        assert!(
            paragraph.contains(default),
            "{flag}: no {default}:\n{paragraph}"
        );
        if flag.ends_with("-timeout") {
            assert!(
                paragraph.to_lowercase().contains("second"),
                "{flag}: no unit:\n{paragraph}"
            );
        }
        if flag.ends_with("-bytes") {
            assert!(paragraph.contains("bytes"), "{flag}: no unit:\n{paragraph}");
        }
    }
}

#[test]
fn invalid_values_exit_2_with_a_one_line_message() {
    for args in [
        &["--port", "abc"][..],
        &["--port", "70000"],
        &["--threads", "0"],
        &["--header-timeout", "-1"],
        &["--header-timeout=-1"],
        &["--idle-timeout", "0"],
        &["--body-timeout", "soon"],
        &["--max-body-bytes", "-5"],
        &["--max-connections", "0"],
        &["--no-such-flag"],
    ] {
        let (status, stderr) = run_status(args);
        assert_eq!(
            status.code(),
            Some(2),
            "{args:?}: {status}, stderr {stderr:?}"
        );
        let message = stderr.trim();
        assert!(!message.is_empty(), "{args:?}: no message");
        assert_eq!(
            message.lines().count(),
            1,
            "{args:?}: message is not one line:\n{stderr}"
        );
    }
}

#[test]
fn invalid_environment_values_exit_2_too() {
    let out = run_plugd(&[], &[("PLUGD_PORT", "abc")], secs(10.0));
    assert_eq!(out.status.code(), Some(2), "{}", out.stderr);
    assert_eq!(out.stderr.trim().lines().count(), 1, "{}", out.stderr);
}

#[test]
fn port_0_logs_listening_on_the_real_port() {
    let server = Server::start(&["--port", "0"]);
    let port = server.addr().port();
    assert_ne!(port, 0);
    assert!(
        server
            .stderr()
            .contains(&format!("listening on http://127.0.0.1:{port}")),
        "{}",
        server.stderr()
    );
    assert_serving(&server);
}

/// Requests logged by `server` whose target starts with `prefix` (its access log is on stderr).
fn logged_requests(server: &Server, prefix: &str) -> usize {
    server.stderr().matches(&format!("\"GET {prefix}")).count()
}

#[test]
fn reuse_port_shares_one_port_among_processes_and_a_plain_second_bind_is_refused() {
    let mut first = Server::start(&["--reuse-port"]);
    let port = first.addr().port().to_string();
    let second = Server::start(&["--reuse-port", "--port", &port]);
    assert_eq!(second.addr(), first.addr());

    const REQUESTS: usize = 64;
    for n in 0..REQUESTS {
        let response = first.get(&format!("/spread/{n}"));
        assert_eq!(response.status_line(), "HTTP/1.1 404 Not Found");
    }
    // Access log lines are flushed within a second; wait (bounded) until all 64 are out.
    let deadline = Instant::now() + secs(20.0);
    let counts = loop {
        let counts = [
            logged_requests(&first, "/spread/"),
            logged_requests(&second, "/spread/"),
        ];
        if counts.iter().sum::<usize>() == REQUESTS || Instant::now() >= deadline {
            break counts;
        }
        thread::sleep(secs(0.1));
    };
    assert_eq!(counts.iter().sum::<usize>(), REQUESTS, "{counts:?}");
    // 64 connections from fresh source ports: all on one process has odds of 2^-63.
    assert!(
        counts.iter().all(|&n| n > 0),
        "the kernel sent every connection to one process: {counts:?}"
    );

    let no_plugins = TempDir::new("no-plugins");
    let plugin_dir = no_plugins.path().display().to_string();
    let taken = run_plugd(
        &[
            "--host",
            "127.0.0.1",
            "--port",
            &port,
            "--plugin-dir",
            &plugin_dir,
        ],
        &[],
        secs(10.0),
    );
    assert_eq!(taken.status.code(), Some(1), "{}", taken.stderr);
    assert!(
        taken.stderr.contains(&format!(
            "cannot listen on 127.0.0.1:{port}: Address already in use"
        )),
        "{}",
        taken.stderr
    );

    first.terminate();
    assert!(first.wait_exit(secs(20.0)).success());
    for n in 0..16 {
        let response = second.get(&format!("/after/{n}"));
        assert_eq!(response.status_line(), "HTTP/1.1 404 Not Found");
    }
}

#[test]
fn environment_variables_configure_the_server() {
    let server = Server::start_with_env(&[], &[("PLUGD_MAX_BODY_BYTES", "10")]);
    assert_refused(
        &server,
        b"POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n\r\nhello world",
        "HTTP/1.1 413 Content Too Large",
    );
}

// ---------------------------------------------------------------------------------------------------------
// Network model
// ---------------------------------------------------------------------------------------------------------

#[test]
fn thousand_rapid_connects_then_a_normal_request_is_served() {
    let server = Server::start(&[]);
    let started = Instant::now();
    for i in 0..1000 {
        let mut stream = TcpStream::connect(server.addr())
            .unwrap_or_else(|e| panic!("connect #{i} failed: {e}"));
        if i % 3 == 0 {
            // Some leave half a request behind.
            let _ = stream.write_all(b"GET /half HTTP/1.1\r\nHo");
        }
    }
    assert!(
        started.elapsed() < secs(30.0),
        "1,000 connects took {:?}",
        started.elapsed()
    );
    assert_serving(&server);
}

#[test]
fn over_max_connections_gets_a_fast_503_then_close() {
    let server = Server::start(&["--max-connections", "2"]);
    // Two connections the server has certainly accepted: each got an answer and stays open.
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut conn = server.connect();
        conn.send(&get_req("/held"));
        assert_eq!(conn.read_response().unwrap().status, 404);
        held.push(conn);
    }
    let mut extra = server.connect();
    let asked = Instant::now();
    let _ = extra.try_send(&get_req("/one-too-many"));
    let response = extra.read_response().expect("503 response");
    assert!(
        asked.elapsed() < secs(1.0),
        "503 took {:?}",
        asked.elapsed()
    );
    assert_eq!(response.status_line(), "HTTP/1.1 503 Service Unavailable");
    assert!(response.header_has_token("Connection", "close"));
    extra.expect_closed(secs(2.0)).unwrap();

    // Once one of them is gone there is room again.
    drop(held.pop());
    let deadline = Instant::now() + secs(5.0);
    loop {
        let mut conn = server.connect();
        // A 503 may close before the request is written: only the answer matters.
        let _ = conn.try_send(&get_close("/room-again"));
        let status = conn.read_response().unwrap().status;
        if status == 404 {
            break;
        }
        assert_eq!(status, 503);
        assert!(
            Instant::now() < deadline,
            "no room after a connection closed"
        );
        thread::sleep(secs(0.05));
    }
}

// ---------------------------------------------------------------------------------------------------------
// Parsing and framing
// ---------------------------------------------------------------------------------------------------------

#[test]
fn malformed_request_lines_get_400() {
    let server = Server::start(&[]);
    assert_all_refused(
        &server,
        &[
            &b"GARBAGE\r\n\r\n"[..],
            b"GET /\r\nHost: t\r\n\r\n",
            b"GET  / HTTP/1.1\r\nHost: t\r\n\r\n",
            b"GET / HTTP/1.1 \r\nHost: t\r\n\r\n",
            b"GET / HTTP/1.1x\r\nHost: t\r\n\r\n",
            b"GET / http/1.1\r\nHost: t\r\n\r\n",
            b"GET / HTTP/11\r\nHost: t\r\n\r\n",
            b"GET / HTTP/1.\r\nHost: t\r\n\r\n",
            b"GET / HTTP/1.10\r\nHost: t\r\n\r\n",
            b"G(T / HTTP/1.1\r\nHost: t\r\n\r\n",
            b"GET /a b HTTP/1.1\r\nHost: t\r\n\r\n",
            b"GET /\x01 HTTP/1.1\r\nHost: t\r\n\r\n",
        ],
        "HTTP/1.1 400 Bad Request",
    );
    assert_serving(&server);
}

#[test]
fn other_major_versions_get_505() {
    let server = Server::start(&[]);
    assert_all_refused(
        &server,
        &[
            &b"GET / HTTP/2.0\r\nHost: t\r\n\r\n"[..],
            b"GET / HTTP/3.0\r\nHost: t\r\n\r\n",
            b"GET / HTTP/0.9\r\nHost: t\r\n\r\n",
        ],
        "HTTP/1.1 505 HTTP Version Not Supported",
    );
}

#[test]
fn later_minor_version_is_answered_as_http_1_1() {
    let server = Server::start(&[]);
    let got = send_raw(
        server.addr(),
        b"GET /minor HTTP/1.7\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(parse_response(&got).status_line(), "HTTP/1.1 404 Not Found");
}

#[test]
fn absolute_and_asterisk_form_targets_are_parsed() {
    let server = Server::start(&[]);
    let got = send_raw(
        server.addr(),
        b"GET http://test/absolute HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(parse_response(&got).status_line(), "HTTP/1.1 404 Not Found");
    let got = send_raw(
        server.addr(),
        b"OPTIONS * HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n",
    );
    let status = parse_response(&got).status;
    assert!(status != 400 && status < 500, "OPTIONS * answered {status}");
}

#[test]
fn long_request_target_gets_414() {
    let server = Server::start(&[]);
    let request = format!("GET /{} HTTP/1.1\r\nHost: t\r\n\r\n", "a".repeat(9 * 1024));
    assert_refused(&server, request.as_bytes(), "HTTP/1.1 414 URI Too Long");
    assert_serving(&server);
}

#[test]
fn big_header_section_gets_431() {
    let server = Server::start(&["--max-header-bytes", "1024"]);
    let request = format!(
        "GET / HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n",
        "b".repeat(2000)
    );
    assert_refused(
        &server,
        request.as_bytes(),
        "HTTP/1.1 431 Request Header Fields Too Large",
    );
    // Many small fields count too.
    let mut many = String::from("GET / HTTP/1.1\r\nHost: t\r\n");
    for i in 0..200 {
        many.push_str(&format!("X-{i}: v\r\n"));
    }
    many.push_str("\r\n");
    assert_refused(
        &server,
        many.as_bytes(),
        "HTTP/1.1 431 Request Header Fields Too Large",
    );
    assert_serving(&server);
}

#[test]
fn header_section_within_the_limit_is_accepted() {
    let server = Server::start(&["--max-header-bytes", "1024"]);
    let request = format!(
        "GET /fits HTTP/1.1\r\nHost: t\r\nX-Fits: {}\r\nConnection: close\r\n\r\n",
        "b".repeat(600)
    );
    let got = send_raw(server.addr(), request.as_bytes());
    assert_eq!(parse_response(&got).status, 404);
}

#[test]
fn body_over_max_body_bytes_gets_413() {
    let server = Server::start(&["--max-body-bytes", "100"]);
    let body = "x".repeat(101);
    let request = format!("POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 101\r\n\r\n{body}");
    assert_refused(
        &server,
        request.as_bytes(),
        "HTTP/1.1 413 Content Too Large",
    );
    // Chunked: the de-framed size counts.
    let request = format!(
        "POST /x HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n32\r\n{}\r\n33\r\n{}\r\n0\r\n\r\n",
        "y".repeat(50),
        "z".repeat(51)
    );
    assert_refused(
        &server,
        request.as_bytes(),
        "HTTP/1.1 413 Content Too Large",
    );
    // Exactly at the limit is fine.
    let request = format!(
        "POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\nConnection: close\r\n\r\n{}",
        "x".repeat(100)
    );
    let got = send_raw(server.addr(), request.as_bytes());
    assert_eq!(parse_response(&got).status, 404);
}

#[test]
fn content_length_with_transfer_encoding_gets_400_and_close() {
    let server = Server::start(&[]);
    assert_all_refused(
        &server,
        &[
            &b"POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"[..],
            b"POST /x HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
        ],
        "HTTP/1.1 400 Bad Request",
    );
}

#[test]
fn unknown_transfer_coding_gets_501() {
    let server = Server::start(&[]);
    assert_all_refused(
        &server,
        &[
            &b"POST /x HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: foo\r\n\r\n"[..],
            b"POST /x HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        ],
        "HTTP/1.1 501 Not Implemented",
    );
}

#[test]
fn bad_content_lengths_get_400() {
    let server = Server::start(&[]);
    assert_all_refused(
        &server,
        &[
            &b"POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"
                [..],
            b"POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 5, 6\r\n\r\nhello!",
            b"POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: +5\r\n\r\nhello",
            b"POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 0x5\r\n\r\nhello",
            b"POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: five\r\n\r\nhello",
            b"POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: -1\r\n\r\n",
            b"POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: \r\n\r\n",
        ],
        "HTTP/1.1 400 Bad Request",
    );
}

#[test]
fn host_must_appear_exactly_once_in_http_1_1() {
    let server = Server::start(&[]);
    assert_refused(
        &server,
        b"GET /x HTTP/1.1\r\nAccept: */*\r\n\r\n",
        "HTTP/1.1 400 Bad Request",
    );
    assert_refused(
        &server,
        b"GET /x HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        "HTTP/1.1 400 Bad Request",
    );
    // HTTP/1.0 does not require it.
    let got = send_raw(server.addr(), b"GET /x HTTP/1.0\r\n\r\n");
    assert_eq!(parse_response(&got).status_line(), "HTTP/1.1 404 Not Found");
}

#[test]
fn malformed_header_fields_get_400() {
    let server = Server::start(&[]);
    assert_all_refused(
        &server,
        &[
            // Whitespace between field name and colon (RFC 9112 §5.1).
            &b"GET /x HTTP/1.1\r\nHost : t\r\n\r\n"[..],
            b"GET /x HTTP/1.1\r\nHost: t\r\nX-A\t: 1\r\n\r\n",
            // Obsolete line folding (RFC 9112 §5.2).
            b"GET /x HTTP/1.1\r\nHost: t\r\nX-A: 1\r\n 2\r\n\r\n",
            b"GET /x HTTP/1.1\r\nHost: t\r\nX-A: 1\r\n\t2\r\n\r\n",
            // Not a token, no colon, empty name. (A NUL in a value may be rejected or replaced by SP, RFC 9110
            // §5.5, so it is not in this list.)
            b"GET /x HTTP/1.1\r\nHost: t\r\nBad Name: 1\r\n\r\n",
            b"GET /x HTTP/1.1\r\nHost: t\r\nNoColon\r\n\r\n",
            b"GET /x HTTP/1.1\r\nHost: t\r\n: empty\r\n\r\n",
            // A first line that starts with whitespace would be a fold of the request line.
            b"GET /x HTTP/1.1\r\n Host: t\r\n\r\n",
        ],
        "HTTP/1.1 400 Bad Request",
    );
    assert_serving(&server);
}

#[test]
fn optional_whitespace_around_field_values_is_trimmed() {
    let server = Server::start(&[]);
    let got = send_raw(
        server.addr(),
        b"GET /ows HTTP/1.1\r\nHost:test\r\nConnection: \t close \t\r\n\r\n",
    );
    let response = parse_response(&got);
    assert_eq!(response.status, 404);
    assert!(response.header_has_token("Connection", "close"));
}

#[test]
fn unknown_expectation_gets_417() {
    let server = Server::start(&[]);
    assert_refused(
        &server,
        b"POST /x HTTP/1.1\r\nHost: t\r\nExpect: something\r\nContent-Length: 2\r\n\r\nhi",
        "HTTP/1.1 417 Expectation Failed",
    );
}

#[test]
fn expect_100_continue_over_the_body_limit_gets_413_without_100() {
    let server = Server::start(&["--max-body-bytes", "100"]);
    let mut conn = server.connect();
    conn.send(
        b"POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\nExpect: 100-continue\r\n\r\n",
    );
    let response = conn.read_response().unwrap();
    assert_eq!(response.status_line(), "HTTP/1.1 413 Content Too Large");
    assert!(response.header_has_token("Connection", "close"));
    conn.expect_closed(secs(3.0)).unwrap();
}

#[test]
fn expect_100_continue_gets_100_before_the_final_response() {
    let server = Server::start(&[]);
    let mut conn = server.connect();
    conn.send(b"POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
    let interim = conn.read_response().unwrap();
    assert_eq!(interim.raw_head, "HTTP/1.1 100 Continue\r\n\r\n");
    conn.send(b"hello");
    assert_eq!(conn.read_response().unwrap().status, 404);
    // The connection is still usable and in sync.
    conn.send(&get_close("/after-continue"));
    assert_eq!(conn.read_response().unwrap().status, 404);
}

#[test]
fn request_hidden_in_a_body_is_answered_exactly_once() {
    let server = Server::start(&[]);
    let smuggled = "GET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n";
    // Content-Length body holding a request.
    let request = format!(
        "POST /carrier HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{smuggled}",
        smuggled.len()
    );
    let got = send_raw(server.addr(), request.as_bytes());
    let responses = parse_responses(&got, &[]);
    assert_eq!(responses.len(), 1, "{}", String::from_utf8_lossy(&got));
    assert_eq!(responses[0].status, 404);
    // Chunked body holding a request.
    let request = format!(
        "POST /carrier HTTP/1.1\r\nHost: t\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{smuggled}\r\n0\r\n\r\n",
        smuggled.len()
    );
    let got = send_raw(server.addr(), request.as_bytes());
    assert_eq!(
        parse_responses(&got, &[]).len(),
        1,
        "{}",
        String::from_utf8_lossy(&got)
    );
    // CL.TE and TE.CL ambiguity: refused, and what follows is never read as a request.
    let request = format!(
        "POST /carrier HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{smuggled}"
    );
    let got = send_raw(server.addr(), request.as_bytes());
    let responses = parse_responses(&got, &[]);
    assert_eq!(responses.len(), 1, "{}", String::from_utf8_lossy(&got));
    assert_eq!(responses[0].status, 400);
    thread::sleep(secs(0.2));
    assert!(
        !server.stderr().contains("/smuggled"),
        "a smuggled request reached the server:\n{}",
        server.stderr()
    );
}

#[test]
fn chunked_body_with_extensions_and_trailers_keeps_the_connection_in_sync() {
    let server = Server::start(&[]);
    let got = send_raw(
        server.addr(),
        b"POST /chunked HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n\
5;name=value\r\nhello\r\n6;flag;q=\"quoted\"\r\n world\r\n0\r\nX-Trailer: done\r\n\r\n\
GET /after-chunked HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    let responses = parse_responses(&got, &[]);
    let statuses: Vec<u16> = responses.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [404, 404], "{}", String::from_utf8_lossy(&got));
    assert!(
        server
            .wait_for_log_line(&["/after-chunked", "404"], secs(2.0))
            .is_some()
    );
}

#[test]
fn chunked_body_in_thousands_of_tiny_chunks_over_many_writes_is_echoed_whole() {
    let server = Server::start_with_examples(&[]);
    let mut conn = server.connect();
    conn.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n");
    let mut expected = Vec::new();
    let mut encoded = Vec::new();
    for i in 0..5_000u32 {
        let byte = b'a' + (i % 26) as u8;
        expected.push(byte);
        encoded.extend_from_slice(b"1\r\n");
        encoded.push(byte);
        encoded.extend_from_slice(b"\r\n");
    }
    encoded.extend_from_slice(b"0\r\n\r\n");
    // Each write is its own read on the server, so the body is re-entered hundreds of times.
    for piece in encoded.chunks(97) {
        conn.send(piece);
        std::thread::sleep(Duration::from_micros(200));
    }
    let response = conn.read_response().unwrap();
    assert_eq!(response.status, 200, "{}", response.raw_head);
    assert_eq!(response.body, expected);
}

#[test]
fn malformed_chunked_bodies_get_400() {
    let server = Server::start(&[]);
    for body in [
        &b"zz\r\nhello\r\n0\r\n\r\n"[..],
        // A size that overflows 64 bits.
        b"10000000000000000000005\r\nhello\r\n0\r\n\r\n",
        // Data not followed by CRLF.
        b"5\r\nhelloXX0\r\n\r\n",
        b"-5\r\nhello\r\n0\r\n\r\n",
    ] {
        let mut request =
            b"POST /x HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        request.extend_from_slice(body);
        assert_refused(&server, &request, "HTTP/1.1 400 Bad Request");
    }
}

// ---------------------------------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------------------------------

/// Seconds since the epoch of an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`, RFC 9110 §5.6.7), or `None`
/// if `s` is not exactly in that form.
fn parse_imf_fixdate(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() != 29 || &s[3..5] != ", " || &s[25..] != " GMT" {
        return None;
    }
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"]
        .iter()
        .position(|d| *d == &s[..3])?;
    let num = |r: std::ops::Range<usize>| -> Option<u64> {
        let part = &s[r];
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let day = num(5..7)?;
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| *m == &s[8..11])? as u64
        + 1;
    let year = num(12..16)?;
    if &s[7..8] != " "
        || &s[11..12] != " "
        || &s[16..17] != " "
        || &s[19..20] != ":"
        || &s[22..23] != ":"
    {
        return None;
    }
    let (h, m, sec) = (num(17..19)?, num(20..22)?, num(23..25)?);
    // Days from civil (Howard Hinnant's algorithm), valid for years after 1970.
    let (y, mo) = if month <= 2 {
        (year - 1, month + 9)
    } else {
        (year, month - 3)
    };
    let era = y / 400;
    let yoe = y - era * 400;
    let doy = (153 * mo + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    // 1970-01-01 was a Thursday.
    if days % 7 != weekday as u64 {
        return None;
    }
    Some(days * 86_400 + h * 3600 + m * 60 + sec)
}

#[test]
fn imf_fixdate_checker_accepts_the_rfc_example() {
    assert_eq!(
        parse_imf_fixdate("Sun, 06 Nov 1994 08:49:37 GMT"),
        Some(784_111_777)
    );
    assert_eq!(parse_imf_fixdate("Mon, 06 Nov 1994 08:49:37 GMT"), None);
    assert_eq!(parse_imf_fixdate("Sunday, 06-Nov-94 08:49:37 GMT"), None);
}

#[test]
fn every_response_has_status_reason_date_server_and_content_length() {
    let server = Server::start(&[]);
    let got = send_raw(server.addr(), &get_close("/nothing-here"));
    let response = parse_response(&got);
    assert_eq!(response.version, "HTTP/1.1");
    assert_eq!(response.status_line(), "HTTP/1.1 404 Not Found");
    let date = response.header("Date").expect("Date");
    let when =
        parse_imf_fixdate(date).unwrap_or_else(|| panic!("Date {date:?} is not IMF-fixdate"));
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(now.abs_diff(when) <= 5, "Date {date:?} is not now");
    assert!(
        response
            .header("Server")
            .is_some_and(|s| s.starts_with("plugd")),
        "{}",
        response.raw_head
    );
    assert_eq!(
        response.header("Content-Length"),
        Some(response.body.len().to_string().as_str())
    );
    assert!(!response.chunked);
    assert_short_text_error(&response);
    // No field appears twice that must not.
    for name in ["Date", "Server", "Content-Length", "Connection"] {
        assert!(
            response.headers_named(name).len() <= 1,
            "{name} repeated:\n{}",
            response.raw_head
        );
    }
}

#[test]
fn connection_close_is_sent_whenever_the_server_closes() {
    let server = Server::start(&[]);
    // Client asked to close.
    let response = parse_response(&send_raw(server.addr(), &get_close("/a")));
    assert!(
        response.header_has_token("Connection", "close"),
        "{}",
        response.raw_head
    );
    // HTTP/1.0 without keep-alive.
    let response = parse_response(&send_raw(server.addr(), b"GET /a HTTP/1.0\r\n\r\n"));
    assert!(
        response.header_has_token("Connection", "close"),
        "{}",
        response.raw_head
    );
    // An error that ends the connection.
    let response = parse_response(&send_raw(server.addr(), b"BROKEN\r\n\r\n"));
    assert!(
        response.header_has_token("Connection", "close"),
        "{}",
        response.raw_head
    );
    // A persistent exchange does not say close.
    let mut conn = server.connect();
    conn.send(&get_req("/a"));
    let response = conn.read_response().unwrap();
    assert!(
        !response.header_has_token("Connection", "close"),
        "{}",
        response.raw_head
    );
}

#[test]
fn head_has_the_headers_of_get_and_no_body() {
    let server = Server::start(&[]);
    for path in ["/missing", "/static/test.html"] {
        let mut conn = server.connect();
        // HEAD first: if it carried a body, the GET's response would not parse where it should.
        conn.send(format!("HEAD {path} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
        conn.send(&get_close(path));
        let head = conn.read_response().unwrap();
        let get = conn.read_response().unwrap();
        conn.expect_closed(secs(3.0)).unwrap();
        assert_eq!(head.status_line(), get.status_line(), "{path}");
        let without_date = |r: &Response| -> Vec<(String, String)> {
            r.headers
                .iter()
                .filter(|(n, _)| {
                    !n.eq_ignore_ascii_case("Date") && !n.eq_ignore_ascii_case("Connection")
                })
                .cloned()
                .collect()
        };
        assert_eq!(without_date(&head), without_date(&get), "{path}");
        assert_eq!(
            head.header("Content-Length"),
            Some(get.body.len().to_string().as_str()),
            "{path}"
        );
    }
}

// ---------------------------------------------------------------------------------------------------------
// Connections
// ---------------------------------------------------------------------------------------------------------

#[test]
fn http_1_1_connections_persist_by_default() {
    let server = Server::start(&[]);
    let mut conn = server.connect();
    for i in 0..5 {
        conn.send(&get_req(&format!("/keep/{i}")));
        let response = conn.read_response().unwrap();
        assert_eq!(response.status, 404, "request {i} on the same connection");
    }
}

#[test]
fn http_1_0_closes_unless_keep_alive_is_asked() {
    let server = Server::start(&[]);
    let mut conn = server.connect();
    conn.send(b"GET /old HTTP/1.0\r\n\r\n");
    assert_eq!(conn.read_response().unwrap().status, 404);
    conn.expect_closed(secs(3.0)).unwrap();

    let mut conn = server.connect();
    conn.send(b"GET /old HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    let first = conn.read_response().unwrap();
    assert_eq!(first.status, 404);
    assert!(
        first.header_has_token("Connection", "keep-alive"),
        "{}",
        first.raw_head
    );
    conn.send(b"GET /old-again HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert_eq!(conn.read_response().unwrap().status, 404);
    conn.send(b"GET /old-last HTTP/1.0\r\n\r\n");
    assert_eq!(conn.read_response().unwrap().status, 404);
    conn.expect_closed(secs(3.0)).unwrap();
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let server = Server::start(&[]);
    // Ten requests of mixed kinds in one write; each kind has its own answer, so order is visible.
    let one_round = "GET /p1 HTTP/1.1\r\nHost: t\r\n\r\n\
DELETE /static/test.html HTTP/1.1\r\nHost: t\r\n\r\n\
HEAD /p3 HTTP/1.1\r\nHost: t\r\n\r\n\
FOO /p4 HTTP/1.1\r\nHost: t\r\n\r\n\
POST /p5 HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc";
    let all =
        format!("{one_round}{one_round}GET /last HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    let got = send_raw(server.addr(), all.as_bytes());
    let methods = ["GET", "DELETE", "HEAD", "FOO", "POST"];
    let mut expected_methods: Vec<&str> = methods.iter().chain(methods.iter()).copied().collect();
    expected_methods.push("GET");
    let responses = parse_responses(&got, &expected_methods);
    let statuses: Vec<u16> = responses.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses,
        [404, 405, 404, 501, 404, 404, 405, 404, 501, 404, 404],
        "{}",
        String::from_utf8_lossy(&got)
    );
    assert!(responses[2].body.is_empty());
}

#[test]
fn pipelined_requests_split_across_writes_are_answered_in_order() {
    let server = Server::start(&[]);
    let mut conn = server.connect();
    let all: Vec<u8> = (0..10)
        .flat_map(|i| get_req(&format!("/split/{i}")))
        .collect();
    // Odd split points: mid-line, mid-CRLF, mid-request.
    for piece in all.chunks(7) {
        conn.send(piece);
        thread::sleep(Duration::from_millis(2));
    }
    for i in 0..10 {
        assert_eq!(conn.read_response().unwrap().status, 404, "response {i}");
    }
    let line = server.wait_for_log_line(&["/split/9"], secs(2.0));
    assert!(line.is_some(), "{}", server.stderr());
    let log = server.stderr();
    let positions: Vec<usize> = (0..10)
        .map(|i| log.find(&format!("/split/{i} ")).expect("logged"))
        .collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "access log order:\n{log}"
    );
}

/// Writes `bytes` one at a time, `every` apart, until the server closes the connection; returns how long
/// after the first byte it closed and what it sent, or panics if it is still open after `limit`.
fn trickle_until_closed(
    stream: &mut TcpStream,
    bytes: &[u8],
    every: Duration,
    limit: Duration,
) -> (Duration, Vec<u8>) {
    let start = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    let mut next = 0;
    loop {
        if next < bytes.len() && stream.write_all(&bytes[next..next + 1]).is_ok() {
            next += 1;
        }
        stream.set_read_timeout(Some(every)).unwrap();
        loop {
            match stream.read(&mut buf) {
                Ok(0) => return (start.elapsed(), got),
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return (start.elapsed(), got),
            }
        }
        assert!(
            start.elapsed() < limit,
            "still open after {limit:?} (sent {next} bytes, got {:?})",
            String::from_utf8_lossy(&got)
        );
    }
}

#[test]
fn header_timeout_cuts_off_a_client_sending_one_byte_at_a_time() {
    let server = Server::start(&["--header-timeout", "1"]);
    let mut stream = connect(server.addr());
    let slow_head = format!(
        "GET /slowloris HTTP/1.1\r\nHost: t\r\nX-Pad: {}\r\n\r\n",
        "p".repeat(100)
    );
    let (elapsed, got) =
        trickle_until_closed(&mut stream, slow_head.as_bytes(), secs(0.3), secs(10.0));
    assert!(
        elapsed >= secs(0.9) && elapsed <= secs(2.5),
        "closed after {elapsed:?}, expected about 1 s"
    );
    if !got.is_empty() {
        assert_eq!(
            parse_response(&got).status_line(),
            "HTTP/1.1 408 Request Timeout"
        );
    }
    assert_serving(&server);
}

#[test]
fn body_timeout_cuts_off_a_client_trickling_its_body() {
    let server = Server::start(&["--body-timeout", "1"]);
    let mut stream = connect(server.addr());
    stream
        .write_all(b"POST /slow-body HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n")
        .unwrap();
    let (elapsed, got) = trickle_until_closed(&mut stream, &[b'b'; 100], secs(0.3), secs(10.0));
    assert!(
        elapsed >= secs(0.9) && elapsed <= secs(2.5),
        "closed after {elapsed:?}, expected about 1 s"
    );
    if !got.is_empty() {
        assert_eq!(
            parse_response(&got).status_line(),
            "HTTP/1.1 408 Request Timeout"
        );
    }
    assert_serving(&server);
}

#[test]
fn idle_keep_alive_connection_is_closed_after_idle_timeout() {
    let server = Server::start(&["--idle-timeout", "0.5"]);
    let mut conn = server.connect();
    conn.send(&get_req("/then-idle"));
    assert_eq!(conn.read_response().unwrap().status, 404);
    let idle_since = Instant::now();
    conn.expect_closed(secs(5.0)).unwrap();
    let idle = idle_since.elapsed();
    assert!(
        idle >= secs(0.4) && idle <= secs(2.0),
        "closed after {idle:?} idle, expected about 0.5 s"
    );
}

#[test]
fn idle_timeout_does_not_cut_an_active_connection() {
    let server = Server::start(&["--idle-timeout", "0.5"]);
    let mut conn = server.connect();
    // Eight requests 0.25 s apart: never idle for 0.5 s, so never closed.
    for i in 0..8 {
        conn.send(&get_req(&format!("/active/{i}")));
        assert_eq!(conn.read_response().unwrap().status, 404, "request {i}");
        thread::sleep(secs(0.25));
    }
}

#[test]
fn half_closed_client_still_gets_its_response() {
    let server = Server::start(&[]);
    let mut conn = server.connect();
    conn.send(&get_req("/half-close"));
    conn.shutdown_write();
    // The request and the EOF may arrive in one read or two: the server cannot always know it will close
    // when it answers, so `Connection: close` is not required here; the answer and the close are.
    let response = conn.read_response().unwrap();
    assert_eq!(response.status_line(), "HTTP/1.1 404 Not Found");
    conn.expect_closed(secs(3.0)).unwrap();

    // Pipelined requests then a half-close: all answered.
    let mut conn = server.connect();
    conn.send(&[get_req("/hc1"), get_req("/hc2")].concat());
    conn.shutdown_write();
    assert_eq!(conn.read_response().unwrap().status, 404);
    assert_eq!(conn.read_response().unwrap().status, 404);
    conn.expect_closed(secs(3.0)).unwrap();
}

// ---------------------------------------------------------------------------------------------------------
// Routing core
// ---------------------------------------------------------------------------------------------------------

#[test]
fn unrouted_path_gets_404() {
    let server = Server::start(&[]);
    let response = parse_response(&send_raw(server.addr(), &get_close("/no/such/route")));
    assert_eq!(response.status_line(), "HTTP/1.1 404 Not Found");
}

#[test]
fn wrong_method_on_a_routed_path_gets_405_with_allow() {
    let server = Server::start(&[]);
    let got = send_raw(
        server.addr(),
        b"DELETE /static/test.html HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    let response = parse_response(&got);
    assert_eq!(response.status_line(), "HTTP/1.1 405 Method Not Allowed");
    assert!(
        response.header_has_token("Allow", "GET"),
        "{}",
        response.raw_head
    );
    assert!(
        response.header_has_token("Allow", "HEAD"),
        "{}",
        response.raw_head
    );
}

#[test]
fn unknown_method_gets_501() {
    let server = Server::start(&[]);
    let got = send_raw(
        server.addr(),
        b"FOO /static/test.html HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(
        parse_response(&got).status_line(),
        "HTTP/1.1 501 Not Implemented"
    );
}

#[test]
fn static_test_html_is_served() {
    let server = Server::start(&[]);
    let response = server.get("/static/test.html");
    assert_eq!(response.status_line(), "HTTP/1.1 200 OK");
    assert!(
        response
            .header("Content-Type")
            .is_some_and(|t| t.starts_with("text/html")),
        "{}",
        response.raw_head
    );
    assert!(!response.body.is_empty());
}

// ---------------------------------------------------------------------------------------------------------
// Failure
// ---------------------------------------------------------------------------------------------------------

/// Sends `bytes`, half-closes, and reads until the server closes: malformed input must end in a bounded time
/// with nothing, or with well-formed HTTP/1.1 responses.
fn throw_at(server: &Server, bytes: &[u8]) -> Result<(), String> {
    let mut stream = connect(server.addr());
    let _ = stream.write_all(bytes);
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let got = read_until_close(&mut stream, secs(5.0)).map_err(|got| {
        format!(
            "connection still open 5 s after {:?} (got {:?})",
            String::from_utf8_lossy(bytes),
            String::from_utf8_lossy(&got)
        )
    })?;
    if !got.is_empty() && !got.starts_with(b"HTTP/1.1 ") {
        return Err(format!(
            "{:?} got a non-HTTP/1.1 answer {:?}",
            String::from_utf8_lossy(bytes),
            String::from_utf8_lossy(&got)
        ));
    }
    Ok(())
}

#[test]
fn random_bytes_never_crash_or_hang_the_server() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};
    let mut server = Server::start(&["--header-timeout", "2"]);
    let mut runner = TestRunner::new(Config {
        cases: 150,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&proptest::collection::vec(any::<u8>(), 0..600), |bytes| {
            throw_at(&server, &bytes).map_err(TestCaseError::fail)
        })
        .unwrap();
    assert!(server.is_running(), "server died:\n{}", server.stderr());
    assert_serving(&server);
}

#[test]
fn random_request_heads_never_crash_or_hang_the_server() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};
    let mut server = Server::start(&["--header-timeout", "2", "--max-body-bytes", "64"]);
    let head = (
        prop_oneof![
            Just("GET".to_owned()),
            Just("POST".to_owned()),
            Just("HEAD".to_owned()),
            "[A-Za-z]{0,8}"
        ],
        "[ -~]{0,20}",
        prop_oneof![
            Just("HTTP/1.1".to_owned()),
            Just("HTTP/1.0".to_owned()),
            "HTTP/[0-9]\\.[0-9]",
            "[ -~]{0,10}"
        ],
        proptest::collection::vec(
            (
                prop_oneof![
                    Just("Host".to_owned()),
                    Just("Content-Length".to_owned()),
                    Just("Transfer-Encoding".to_owned()),
                    Just("Connection".to_owned()),
                    Just("Expect".to_owned()),
                    "[!-~]{0,12}"
                ],
                "[ -~\t]{0,16}",
                prop_oneof![Just("\r\n"), Just("\n"), Just("\r"), Just("")],
            ),
            0..6,
        ),
        proptest::collection::vec(any::<u8>(), 0..40),
    );
    let mut runner = TestRunner::new(Config {
        cases: 200,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&head, |(method, target, version, fields, tail)| {
            let mut bytes = format!("{method} {target} {version}\r\n").into_bytes();
            for (name, value, eol) in fields {
                bytes.extend_from_slice(format!("{name}:{value}{eol}").as_bytes());
            }
            bytes.extend_from_slice(b"\r\n");
            bytes.extend_from_slice(&tail);
            throw_at(&server, &bytes).map_err(TestCaseError::fail)
        })
        .unwrap();
    assert!(server.is_running(), "server died:\n{}", server.stderr());
    assert_serving(&server);
}

#[test]
fn abrupt_disconnects_mid_request_leave_the_server_serving() {
    let server = Server::start(&[]);
    for cut in [
        &b"GET /cut HTTP/1.1\r\nHost:"[..],
        b"POST /cut HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nabc",
        b"POST /cut HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
    ] {
        for _ in 0..20 {
            let mut stream = connect(server.addr());
            let _ = stream.write_all(cut);
            // Reset instead of FIN: SO_LINGER 0 is not in std, so just drop after a write.
        }
    }
    assert_serving(&server);
}

// ---------------------------------------------------------------------------------------------------------
// Logging
// ---------------------------------------------------------------------------------------------------------

#[test]
fn access_log_has_peer_method_target_status_bytes_duration_handler() {
    let server = Server::start(&[]);
    let mut conn = server.connect();
    conn.send(&get_close("/log-probe?x=1"));
    let response = conn.read_response().unwrap();
    let local = conn.stream().local_addr().unwrap();
    let bytes = response.header("Content-Length").unwrap().to_owned();
    let line = server
        .wait_for_log_line(&["/log-probe?x=1"], secs(3.0))
        .unwrap_or_else(|| panic!("no access log line:\n{}", server.stderr()));
    // Combined Log Format on stderr by default, then the duration in microseconds and the handler.
    assert!(
        line.starts_with(&format!("{} - - [", local.ip())),
        "no peer {local}: {line}"
    );
    assert!(
        line.contains(&format!(
            "\"GET /log-probe?x=1 HTTP/1.1\" 404 {bytes} \"-\" \"-\" "
        )),
        "no request line, status and bytes: {line}"
    );
    let mut last = line.rsplit(' ');
    assert_eq!(last.next(), Some("\"builtin\""), "no handler: {line}");
    assert!(
        last.next()
            .is_some_and(|seconds| seconds.contains('.') && seconds.parse::<f64>().is_ok()),
        "no duration: {line}"
    );
}

#[test]
fn one_access_log_line_per_request() {
    let server = Server::start(&[]);
    let requests: Vec<u8> = (0..5)
        .flat_map(|i| get_req(&format!("/count-me/{i}")))
        .collect();
    let mut conn = server.connect();
    conn.send(&requests);
    for _ in 0..5 {
        conn.read_response().unwrap();
    }
    assert!(server.wait_for_log("/count-me/4", secs(3.0)));
    thread::sleep(secs(0.2));
    let log = server.stderr();
    let lines = log.lines().filter(|l| l.contains("/count-me/")).count();
    assert_eq!(lines, 5, "{log}");
}

/// Waits for a log line at `level` (or any of `levels`) holding the word `status` (e.g. `400` or `400:`).
fn wait_for_status_log(server: &Server, levels: &[&str], status: &str, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    loop {
        let found = server.stderr().lines().any(|line| {
            levels.iter().any(|level| line.contains(level))
                && line
                    .split(|c: char| c.is_whitespace() || c == ':' || c == ',')
                    .any(|word| word == status)
        });
        if found {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(secs(0.05));
    }
}

#[test]
fn rejections_are_logged_at_debug_and_5xx_at_warn() {
    let server = Server::start(&[]);
    send_raw(server.addr(), b"BROKEN\r\n\r\n");
    send_raw(server.addr(), b"GET / HTTP/2.0\r\nHost: t\r\n\r\n");
    assert!(
        wait_for_status_log(&server, &["DEBUG"], "400", secs(3.0)),
        "400 not logged at debug:\n{}",
        server.stderr()
    );
    assert!(
        wait_for_status_log(&server, &["WARN", "ERROR"], "505", secs(3.0)),
        "505 not logged at warn:\n{}",
        server.stderr()
    );
}

// ---------------------------------------------------------------------------------------------------------
// Graceful shutdown
// ---------------------------------------------------------------------------------------------------------

/// Connecting fails (refused) within `within`.
fn wait_until_refused(server: &Server, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        match TcpStream::connect_timeout(&server.addr(), secs(0.5)) {
            Err(_) => return,
            Ok(mut stream) => {
                // Accepted by the kernel backlog of a listener about to close, or still served: it must not
                // be answered as a new request once shutdown began, but only refusal proves the listener is gone.
                let _ = stream.write_all(&get_close("/after-shutdown"));
            }
        }
        assert!(
            Instant::now() < deadline,
            "new connections still accepted {within:?} after SIGTERM"
        );
        thread::sleep(secs(0.05));
    }
}

/// Sends the rest of a request that was in flight when shutdown began: it is answered, told the connection
/// closes, and the connection is closed.
fn finish_in_flight(conn: &mut Conn, rest: &[u8]) {
    conn.send(rest);
    let response = conn.read_response().unwrap();
    assert_eq!(response.status_line(), "HTTP/1.1 404 Not Found");
    assert!(
        response.header_has_token("Connection", "close"),
        "{}",
        response.raw_head
    );
    conn.expect_closed(secs(3.0)).unwrap();
}

#[test]
fn sigterm_finishes_the_request_in_flight_closes_idle_connections_and_exits_0() {
    let mut server = Server::start(&["--shutdown-timeout", "5"]);
    // An idle keep-alive connection.
    let mut idle = server.connect();
    idle.send(&get_req("/idle"));
    assert_eq!(idle.read_response().unwrap().status, 404);
    // A request in flight: its head has started arriving.
    let mut in_flight = server.connect();
    in_flight.send(b"GET /in-flight HTTP/1.1\r\nHost: t\r\n");
    thread::sleep(secs(0.3));

    let signalled = Instant::now();
    server.terminate();
    idle.expect_closed(secs(3.0))
        .unwrap_or_else(|e| panic!("idle connection: {e}"));
    wait_until_refused(&server, secs(3.0));

    finish_in_flight(&mut in_flight, b"\r\n");

    let status = server.wait_exit(secs(6.0));
    assert_eq!(status.code(), Some(0), "{}", server.stderr());
    assert!(
        signalled.elapsed() < secs(5.0),
        "exit took {:?}",
        signalled.elapsed()
    );
}

#[test]
fn sigterm_lets_a_request_body_in_flight_finish() {
    let mut server = Server::start(&["--shutdown-timeout", "5"]);
    let mut in_flight = server.connect();
    in_flight.send(b"POST /uploading HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nhalf-");
    thread::sleep(secs(0.3));
    server.terminate();
    assert!(
        server.wait_for_log("shutting down", secs(3.0)),
        "{}",
        server.stderr()
    );
    thread::sleep(secs(0.3));
    finish_in_flight(&mut in_flight, b"done!");
    assert_eq!(
        server.wait_exit(secs(6.0)).code(),
        Some(0),
        "{}",
        server.stderr()
    );
}

#[test]
fn sigterm_with_only_idle_connections_exits_promptly() {
    let mut server = Server::start(&["--shutdown-timeout", "10"]);
    let mut idle: Vec<Conn> = (0..5).map(|_| server.connect()).collect();
    for conn in &mut idle {
        conn.send(&get_req("/idle"));
        assert_eq!(conn.read_response().unwrap().status, 404);
    }
    let signalled = Instant::now();
    server.terminate();
    let status = server.wait_exit(secs(5.0));
    assert_eq!(status.code(), Some(0), "{}", server.stderr());
    assert!(
        signalled.elapsed() < secs(2.0),
        "idle connections held shutdown for {:?}",
        signalled.elapsed()
    );
    for conn in &mut idle {
        conn.expect_closed(secs(1.0)).unwrap();
    }
}

#[test]
fn shutdown_timeout_bounds_a_request_that_never_completes() {
    let mut server = Server::start(&["--shutdown-timeout", "1", "--header-timeout", "30"]);
    let mut stuck = server.connect();
    stuck.send(b"GET /never-finished HTTP/1.1\r\nHost: t\r\n");
    thread::sleep(secs(0.3));
    let signalled = Instant::now();
    server.terminate();
    let status = server.wait_exit(secs(5.0));
    let took = signalled.elapsed();
    assert!(took >= secs(0.8) && took < secs(3.0), "exit after {took:?}");
    assert_eq!(status.code(), Some(0), "{}", server.stderr());
}

#[test]
fn sigint_also_shuts_down_gracefully() {
    let mut server = Server::start(&[]);
    assert_serving(&server);
    server.signal(libc::SIGINT);
    let status = server.wait_exit(secs(5.0));
    assert_eq!(status.code(), Some(0), "{}", server.stderr());
}

/// CPU seconds (user + system) the process has used so far.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the state.
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    // SAFETY: sysconf takes no pointers.
    ticks / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
}

#[test]
fn out_of_descriptors_the_server_pauses_accepting_without_spinning_and_resumes() {
    let server = Server::start(&[]);
    let open_now = std::fs::read_dir(format!("/proc/{}/fd", server.pid()))
        .unwrap()
        .count() as u64;
    let limit = libc::rlimit {
        rlim_cur: open_now + 8,
        rlim_max: open_now + 8,
    };
    // SAFETY: `limit` outlives the call; a null old-limit pointer is allowed.
    let set = unsafe {
        libc::prlimit(
            server.pid() as libc::pid_t,
            libc::RLIMIT_NOFILE,
            &limit,
            std::ptr::null_mut(),
        )
    };
    assert_eq!(set, 0, "prlimit: {}", std::io::Error::last_os_error());
    // More connections than descriptors left: the kernel completes them, plugd cannot accept them all.
    let waiting: Vec<TcpStream> = (0..20).map(|_| connect(server.addr())).collect();
    assert!(
        server.wait_for_log("accept paused", secs(5.0)),
        "{}",
        server.stderr()
    );
    let before = cpu_seconds(server.pid());
    thread::sleep(secs(1.0));
    let used = cpu_seconds(server.pid()) - before;
    assert!(
        used < 0.5,
        "a listener with pending connections it cannot accept must not busy-loop: {used} s of CPU in 1 s"
    );
    drop(waiting);
    // Descriptors free again: the pending and new connections are accepted and served.
    let deadline = Instant::now() + secs(5.0);
    loop {
        let mut conn = server.connect();
        conn.send(&get_req("/after-pause"));
        match conn.read_response() {
            Ok(response) => {
                assert_eq!(response.status, 404);
                break;
            }
            Err(err) => assert!(Instant::now() < deadline, "never served again: {err}"),
        }
    }
}
