//! Engine tests that need handlers with special behaviour (echoing, panicking, sleeping): the server runs
//! in this process through `plugd::server::Server` with test handlers, and is still reached over raw TCP.

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use plugd::config::Config;
use plugd::handler::{Handler, Request, Response};
use plugd::router::RouterBuilder;
use plugd::server::{Server, ShutdownHandle};
use plugd_tests::{Conn, connect, parse_responses, read_until_close, send_raw};

/// A handler from a closure.
struct FnHandler<F>(F);

impl<F: Fn(&Request<'_>) -> Response + Send + Sync> Handler for FnHandler<F> {
    fn handle(&self, req: &Request<'_>) -> Response {
        (self.0)(req)
    }
}

fn handler(f: impl Fn(&Request<'_>) -> Response + Send + Sync + 'static) -> Arc<dyn Handler> {
    Arc::new(FnHandler(f))
}

/// How long a test shutdown may take: the drain deadline given to in-process servers.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(3);
/// How long the sleeping handler sleeps.
const SLEEP: Duration = Duration::from_secs(1);

/// An in-process server with the test routes; shut down and joined on drop.
struct TestServer {
    addr: SocketAddr,
    handle: ShutdownHandle,
    running: Option<JoinHandle<std::io::Result<()>>>,
}

impl TestServer {
    fn start() -> TestServer {
        let mut routes = RouterBuilder::new();
        routes
            .add_all(
                &[("GET", "/ok")],
                "ok",
                handler(|_| Response::text(200, "ok")),
            )
            .unwrap();
        routes
            .add_all(
                &[("POST", "/echo"), ("PUT", "/echo")],
                "echo",
                handler(|req| {
                    let content_type = req
                        .head
                        .header("Content-Type")
                        .map_or("application/octet-stream".to_owned(), |t| {
                            String::from_utf8_lossy(t).into_owned()
                        });
                    Response::new(200, plugd::handler::Body::Bytes(req.body.to_vec()))
                        .with_header("Content-Type", content_type)
                }),
            )
            .unwrap();
        routes
            .add_all(
                &[("GET", "/panic")],
                "panicker",
                handler(|_| panic!("test handler panics on purpose")),
            )
            .unwrap();
        routes
            .add_all(
                &[("GET", "/sleep")],
                "sleeper",
                handler(|_| {
                    thread::sleep(SLEEP);
                    Response::text(200, "slept")
                }),
            )
            .unwrap();
        routes
            .add_all(
                &[("GET", "/items/{id}"), ("GET", "/files/{*rest}")],
                "params",
                handler(|req| {
                    let shown: Vec<String> =
                        req.params.iter().map(|(n, v)| format!("{n}={v}")).collect();
                    Response::text(200, shown.join("&"))
                }),
            )
            .unwrap();
        let mut config = Config::for_tests();
        config.timeouts.shutdown = SHUTDOWN_TIMEOUT;
        let server = Server::bind(&config, routes.build()).expect("bind");
        let addr = server.local_addr();
        let handle = server.shutdown_handle();
        let running = Some(thread::spawn(move || server.run()));
        TestServer {
            addr,
            handle,
            running,
        }
    }

    fn conn(&self) -> Conn {
        Conn::open(self.addr)
    }

    /// Starts the drain and waits (bounded) for `run` to return.
    fn shutdown(&mut self) -> Duration {
        let started = Instant::now();
        self.handle.shutdown();
        if let Some(running) = self.running.take() {
            while !running.is_finished() {
                assert!(
                    started.elapsed() < SHUTDOWN_TIMEOUT + Duration::from_secs(3),
                    "run() did not return after shutdown"
                );
                thread::sleep(Duration::from_millis(10));
            }
            running.join().expect("run panicked").expect("run failed");
        }
        started.elapsed()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if self.running.is_some() && !thread::panicking() {
            self.shutdown();
        } else {
            self.handle.shutdown();
        }
    }
}

#[test]
fn content_length_body_is_echoed_and_the_next_request_follows() {
    let server = TestServer::start();
    let got = send_raw(
        server.addr,
        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: text/x-test\r\nContent-Length: 11\r\n\r\nhello world\
GET /ok HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    let responses = parse_responses(&got, &["POST", "GET"]);
    assert_eq!(responses.len(), 2, "{}", String::from_utf8_lossy(&got));
    assert_eq!(responses[0].status_line(), "HTTP/1.1 200 OK");
    assert_eq!(responses[0].body, b"hello world");
    assert_eq!(responses[0].header("Content-Type"), Some("text/x-test"));
    assert_eq!(responses[1].body, b"ok");
}

#[test]
fn chunked_body_with_extensions_and_trailers_is_echoed() {
    let server = TestServer::start();
    let got = send_raw(
        server.addr,
        b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
5;name=value\r\nhello\r\n1;flag\r\n \r\nA;q=\"quo;ted\"\r\n0123456789\r\n0\r\nX-Trailer: one\r\nX-Other: two\r\n\r\n",
    );
    let response = plugd_tests::parse_response(&got);
    assert_eq!(response.status, 200);
    assert_eq!(response.body_str(), "hello 0123456789");
    assert_eq!(response.header("Content-Length"), Some("16"));
}

#[test]
fn chunked_sizes_are_hex_in_either_case() {
    let server = TestServer::start();
    let body = "x".repeat(0x1a + 0x1B);
    let request = format!(
        "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n1a\r\n{}\r\n1B\r\n{}\r\n0\r\n\r\n",
        &body[..0x1a],
        &body[0x1a..]
    );
    let response = plugd_tests::parse_response(&send_raw(server.addr, request.as_bytes()));
    assert_eq!(response.body_str(), body);
}

#[test]
fn empty_bodies_are_echoed_empty() {
    let server = TestServer::start();
    let got = send_raw(
        server.addr,
        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n\
POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n\
POST /echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    let responses = parse_responses(&got, &[]);
    assert_eq!(responses.len(), 3, "{}", String::from_utf8_lossy(&got));
    for response in responses {
        assert_eq!(response.status, 200);
        assert!(response.body.is_empty());
        assert_eq!(response.header("Content-Length"), Some("0"));
    }
}

#[test]
fn expect_100_continue_gets_100_only_before_a_body_that_will_be_read() {
    let server = TestServer::start();
    let mut conn = server.conn();
    conn.send(
        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n",
    );
    let interim = conn.read_response().unwrap();
    assert_eq!(interim.raw_head, "HTTP/1.1 100 Continue\r\n\r\n");
    conn.send(b"hello");
    let response = conn.read_response().unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.body, b"hello");

    // Body sent along with the head: a 100 may precede the answer, the answer must be right.
    let mut conn = server.conn();
    conn.send(
        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\nworld",
    );
    let response = conn.read_final_response().unwrap();
    assert_eq!(response.body, b"world");
}

#[test]
fn handler_panic_gives_500_and_the_server_keeps_serving() {
    let server = TestServer::start();
    let mut conn = server.conn();
    for _ in 0..20 {
        conn.send(b"GET /panic HTTP/1.1\r\nHost: t\r\n\r\n");
        let response = conn.read_response().unwrap();
        assert_eq!(response.status_line(), "HTTP/1.1 500 Internal Server Error");
        assert!(
            !response.body_str().contains("on purpose"),
            "500 leaks the panic message: {:?}",
            response.body_str()
        );
    }
    // Same connection and new ones still work.
    conn.send(b"GET /ok HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(conn.read_response().unwrap().body, b"ok");
    for _ in 0..8 {
        let mut conn = server.conn();
        conn.send(b"GET /ok HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        assert_eq!(conn.read_response().unwrap().status, 200);
    }
}

#[test]
fn head_is_served_by_the_get_route_with_get_headers_and_no_body() {
    let server = TestServer::start();
    let mut conn = server.conn();
    conn.send(b"HEAD /ok HTTP/1.1\r\nHost: t\r\n\r\nGET /ok HTTP/1.1\r\nHost: t\r\n\r\n");
    let head = conn.read_response().unwrap();
    let get = conn.read_response().unwrap();
    assert_eq!(head.status_line(), "HTTP/1.1 200 OK");
    assert_eq!(get.body, b"ok");
    let without_date = |r: &plugd_tests::Response| -> Vec<(String, String)> {
        r.headers
            .iter()
            .filter(|(n, _)| !n.eq_ignore_ascii_case("Date"))
            .cloned()
            .collect()
    };
    assert_eq!(without_date(&head), without_date(&get));
    // Nothing followed the HEAD response: the connection is in sync.
    conn.send(b"GET /ok HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    assert_eq!(conn.read_response().unwrap().body, b"ok");
    conn.expect_closed(Duration::from_secs(3)).unwrap();
}

#[test]
fn routes_capture_params_and_rest() {
    let server = TestServer::start();
    let mut conn = server.conn();
    conn.send(
        b"GET /items/42 HTTP/1.1\r\nHost: t\r\n\r\n\
GET /files/a/b%20c.txt HTTP/1.1\r\nHost: t\r\n\r\n\
GET /items/42/more HTTP/1.1\r\nHost: t\r\n\r\n\
POST /ok HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(conn.read_response().unwrap().body_str(), "id=42");
    assert_eq!(conn.read_response().unwrap().body_str(), "rest=a/b%20c.txt");
    assert_eq!(conn.read_response().unwrap().status, 404);
    let not_allowed = conn.read_response().unwrap();
    assert_eq!(not_allowed.status_line(), "HTTP/1.1 405 Method Not Allowed");
    assert!(not_allowed.header_has_token("Allow", "GET"));
    assert!(not_allowed.header_has_token("Allow", "HEAD"));
}

#[test]
fn a_sleeping_handler_delays_only_its_own_connection() {
    let server = TestServer::start();
    let mut slow = server.conn();
    slow.send(b"GET /sleep HTTP/1.1\r\nHost: t\r\n\r\n");
    thread::sleep(Duration::from_millis(100));
    let asked = Instant::now();
    let mut fast = server.conn();
    fast.send(b"GET /ok HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(fast.read_response().unwrap().status, 200);
    assert!(
        asked.elapsed() < Duration::from_millis(500),
        "a request waited {:?} behind a sleeping handler",
        asked.elapsed()
    );
    assert_eq!(slow.read_response().unwrap().body, b"slept");
}

#[test]
fn shutdown_finishes_the_request_in_flight_and_refuses_new_connections() {
    let mut server = TestServer::start();
    let mut idle = server.conn();
    idle.send(b"GET /ok HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(idle.read_response().unwrap().status, 200);
    let mut slow = server.conn();
    slow.send(b"GET /sleep HTTP/1.1\r\nHost: t\r\n\r\n");
    thread::sleep(Duration::from_millis(200));

    let handle = server.handle.clone();
    let started = Instant::now();
    handle.shutdown();
    // The idle connection is closed at once, new connections are refused.
    idle.expect_closed(Duration::from_secs(2)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(2);
    while std::net::TcpStream::connect_timeout(&server.addr, Duration::from_millis(200)).is_ok() {
        assert!(Instant::now() < deadline, "still accepting after shutdown");
        thread::sleep(Duration::from_millis(20));
    }
    // The sleeping request completes, told the connection closes.
    let response = slow.read_response().unwrap();
    assert_eq!(response.body, b"slept");
    assert!(
        response.header_has_token("Connection", "close"),
        "{}",
        response.raw_head
    );
    slow.expect_closed(Duration::from_secs(2)).unwrap();
    let took = server.shutdown();
    assert!(
        started.elapsed() < SHUTDOWN_TIMEOUT,
        "drain took {:?} (run returned after {took:?})",
        started.elapsed()
    );
}

#[test]
fn shutdown_deadline_ends_run_even_if_a_connection_stays_busy() {
    let mut server = TestServer::start();
    // A request whose head never completes keeps its connection busy.
    let mut stuck = connect(server.addr);
    std::io::Write::write_all(&mut stuck, b"GET /ok HTTP/1.1\r\nHost:").unwrap();
    thread::sleep(Duration::from_millis(200));
    let took = server.shutdown();
    assert!(
        took >= SHUTDOWN_TIMEOUT - Duration::from_millis(200)
            && took < SHUTDOWN_TIMEOUT + Duration::from_secs(2),
        "run returned after {took:?}, deadline {SHUTDOWN_TIMEOUT:?}"
    );
    let _ = read_until_close(&mut stuck, Duration::from_secs(1));
}

#[test]
fn real_client_ureq_gets_and_posts_over_one_connection() {
    let server = TestServer::start();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let url = |path: &str| format!("http://{}{path}", server.addr);
    for _ in 0..3 {
        let mut response = agent.get(&url("/ok")).call().unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.body_mut().read_to_string().unwrap(), "ok");
    }
    let mut response = agent
        .post(&url("/echo"))
        .header("Content-Type", "text/plain")
        .send(&b"sent with a length"[..])
        .unwrap();
    assert_eq!(
        response.body_mut().read_to_string().unwrap(),
        "sent with a length"
    );
    // ureq sends a reader's body chunked.
    let big = "0123456789".repeat(10_000);
    let mut reader = big.as_bytes();
    let mut response = agent
        .post(&url("/echo"))
        .send(ureq::SendBody::from_reader(&mut reader))
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.body_mut().read_to_string().unwrap(), big);
    let response = agent.get(&url("/nope")).call().unwrap();
    assert_eq!(response.status(), 404);
}
