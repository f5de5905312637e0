//! End-to-end tests of the built-in rate limit and the per-client connection limit (docs/ARCHITECTURE.md
//! §16): the real binary with the example plugins, clients on two loopback addresses (127.0.0.1 and
//! 127.0.0.2), with and without a trusted proxy in front.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use plugd_tests::{Conn, Response, ResponseReader, Server, connect_from, read_until_close};

const SECOND_CLIENT: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

fn server(extra: &[&str]) -> Server {
    Server::start_with_examples(extra)
}

/// `count` requests for `/plaintext` on one keep-alive connection, each with `fields`.
fn burst(conn: &mut Conn, count: usize, fields: &str) -> Vec<Response> {
    (0..count)
        .map(|_| {
            conn.send(format!("GET /plaintext HTTP/1.1\r\nHost: t\r\n{fields}\r\n").as_bytes());
            conn.read_response().expect("an answer")
        })
        .collect()
}

fn statuses(responses: &[Response]) -> Vec<u16> {
    responses.iter().map(|r| r.status).collect()
}

/// One `GET /plaintext` from the local address `from`.
fn get_from(server: &Server, from: Ipv4Addr) -> Response {
    let mut reader = ResponseReader::new(connect_from(from, server.addr()));
    use std::io::Write;
    reader
        .source()
        .write_all(b"GET /plaintext HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    reader.read_response().expect("an answer")
}

#[test]
fn a_burst_is_served_then_429_until_the_bucket_refills_and_other_clients_are_unaffected() {
    let server = server(&[
        "--rate-limit-requests-per-second",
        "5",
        "--rate-limit-burst",
        "10",
    ]);
    let mut conn = server.connect();
    let answers = burst(&mut conn, 50, "");
    let statuses = statuses(&answers);
    assert!(statuses[..10].iter().all(|&s| s == 200), "{statuses:?}");
    let limited: Vec<&Response> = answers[10..].iter().filter(|r| r.status == 429).collect();
    assert!(
        limited.len() >= 30,
        "most of the rest are 429: {statuses:?}"
    );
    for refused in &limited {
        let retry: u64 = refused
            .header("Retry-After")
            .expect("Retry-After")
            .parse()
            .unwrap();
        assert!((1..=2).contains(&retry), "{retry}");
    }
    assert_eq!(
        get_from(&server, SECOND_CLIENT).status,
        200,
        "127.0.0.2 has its own bucket"
    );
    assert!(server.wait_for_log("\"rate-limit\"", Duration::from_secs(10)));
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        burst(&mut conn, 1, "")[0].status,
        200,
        "served again after 2 s"
    );
}

#[test]
fn the_draft_ratelimit_fields_come_only_when_asked_for() {
    let plain = server(&[
        "--rate-limit-requests-per-second",
        "1",
        "--rate-limit-burst",
        "2",
    ]);
    let answers = burst(&mut plain.connect(), 3, "");
    assert_eq!(statuses(&answers), [200, 200, 429]);
    assert!(answers.iter().all(|r| r.header("RateLimit").is_none()));

    let drafted = server(&[
        "--rate-limit-requests-per-second",
        "1",
        "--rate-limit-burst",
        "2",
        "--rate-limit-headers",
    ]);
    let answers = burst(&mut drafted.connect(), 3, "");
    assert_eq!(statuses(&answers), [200, 200, 429]);
    let fields: Vec<(Option<&str>, Option<&str>)> = answers
        .iter()
        .map(|r| (r.header("RateLimit-Policy"), r.header("RateLimit")))
        .collect();
    assert_eq!(
        fields[0],
        (Some("\"default\";q=2;w=2"), Some("\"default\";r=1;t=1"))
    );
    assert_eq!(fields[1].1, Some("\"default\";r=0;t=2"));
    assert_eq!(fields[2].1, Some("\"default\";r=0;t=1"));
}

#[test]
fn only_the_configured_paths_are_limited() {
    let server = server(&[
        "--rate-limit-requests-per-second",
        "1",
        "--rate-limit-burst",
        "1",
        "--rate-limit-paths",
        "/plaintext",
    ]);
    let mut conn = server.connect();
    assert_eq!(statuses(&burst(&mut conn, 2, "")), [200, 429]);
    conn.send(b"GET /static/test.html HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(conn.read_response().unwrap().status, 200);
}

#[test]
fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_bucket() {
    let server = server(&[
        "--rate-limit-requests-per-second",
        "1",
        "--rate-limit-burst",
        "2",
        "--trusted-proxies",
        "127.0.0.1/32",
    ]);
    let mut proxy = server.connect();
    let first = burst(&mut proxy, 3, "X-Forwarded-For: 198.51.100.7\r\n");
    assert_eq!(statuses(&first), [200, 200, 429]);
    let second = burst(&mut proxy, 2, "Forwarded: for=198.51.100.8\r\n");
    assert_eq!(
        statuses(&second),
        [200, 200],
        "another client behind the same proxy"
    );
    // The client wrote an address itself; the proxy appended the one it saw, which counts.
    let spoofing = burst(
        &mut proxy,
        1,
        "X-Forwarded-For: 203.0.113.1, 198.51.100.7\r\n",
    );
    assert_eq!(statuses(&spoofing), [429]);
}

#[test]
fn a_spoofed_forwarded_for_from_an_untrusted_peer_is_ignored() {
    let server = server(&[
        "--rate-limit-requests-per-second",
        "1",
        "--rate-limit-burst",
        "2",
        "--trusted-proxies",
        "10.0.0.0/8",
    ]);
    let mut conn = server.connect();
    let answers: Vec<u16> = ["192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4"]
        .iter()
        .flat_map(|spoofed| {
            statuses(&burst(
                &mut conn,
                1,
                &format!("X-Forwarded-For: {spoofed}\r\n"),
            ))
        })
        .collect();
    assert_eq!(answers, [200, 200, 429, 429], "all counted as 127.0.0.1");
}

#[test]
fn a_client_over_its_connection_limit_gets_503_and_is_closed() {
    let server = server(&["--max-connections-per-client", "2"]);
    let mut held: Vec<Conn> = (0..2).map(|_| server.connect()).collect();
    for conn in &mut held {
        assert_eq!(burst(conn, 1, "")[0].status, 200);
    }
    let mut third = server.connect();
    let deadline = Duration::from_secs(10);
    let rest = read_until_close(third.stream(), deadline).expect("closed by the server");
    assert!(
        String::from_utf8_lossy(&rest).starts_with("HTTP/1.1 503 "),
        "{}",
        String::from_utf8_lossy(&rest)
    );
    assert_eq!(
        get_from(&server, SECOND_CLIENT).status,
        200,
        "another address is not affected"
    );
    drop(held.pop());
    // The place comes back once plugd has seen the close: poll with a deadline.
    let until = Instant::now() + deadline;
    loop {
        let mut conn = server.connect();
        conn.send(b"GET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n");
        match conn.read_response() {
            Ok(response) if response.status == 200 => break,
            _ if Instant::now() < until => std::thread::sleep(Duration::from_millis(50)),
            other => panic!("never served again: {:?}", other.map(|r| r.status)),
        }
    }
}
