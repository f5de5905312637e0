//! Real clients against the real binary with the example plugins: generated request sequences (proptest)
//! written in random pieces over one socket, and `curl` in its common modes.

use std::io::Write;
use std::net::SocketAddr;
use std::process::{Command, Output};
use std::time::Duration;

use plugd_tests::{Response, ResponseReader, Server, TempDir, repo_static_dir};
use proptest::prelude::*;

/// A static file larger than the 16 KiB that leave in one write with their head: it goes out with sendfile.
const BIG_FILE: &str = "big.bin";

/// The content of [`BIG_FILE`]: 64 KiB, every byte value.
fn big_file() -> Vec<u8> {
    (0..64 * 1024u32).map(|i| (i * 7 + i / 251) as u8).collect()
}

/// A server with the example plugins, for one test (a static one would outlive the test binary: statics are
/// never dropped, so its process would never be killed), serving the repository's `static/` files plus
/// [`BIG_FILE`] from a temporary copy.
struct Site {
    server: Server,
    _dir: TempDir,
}

impl std::ops::Deref for Site {
    type Target = Server;

    fn deref(&self) -> &Server {
        &self.server
    }
}

fn server() -> Site {
    let dir = TempDir::new("clients-static");
    for entry in std::fs::read_dir(repo_static_dir()).expect("static/") {
        let path = entry.expect("static/ entry").path();
        if path.is_file() {
            std::fs::copy(&path, dir.join(path.file_name().unwrap())).expect("copy static file");
        }
    }
    std::fs::write(dir.join(BIG_FILE), big_file()).expect("write big file");
    let static_dir = dir.path().to_str().expect("utf-8 temp path").to_owned();
    Site {
        server: Server::start_with_examples(&["--static-dir", &static_dir]),
        _dir: dir,
    }
}

/// A static file's bytes as the server has them.
fn static_file(name: &str) -> Vec<u8> {
    if name == BIG_FILE {
        return big_file();
    }
    std::fs::read(repo_static_dir().join(name)).unwrap_or_else(|e| panic!("static/{name}: {e}"))
}

// ---------------------------------------------------------------------------------------------------------
// Generated requests over a real socket
// ---------------------------------------------------------------------------------------------------------

/// The static files a generated request may ask for.
const STATIC_FILES: &[&str] = &[
    "index.html",
    "test.html",
    "style.css",
    "app.js",
    "logo.png",
    BIG_FILE,
];

/// One generated request, with everything needed to know its right answer.
#[derive(Clone, Debug)]
enum Req {
    Plaintext,
    Hello(String),
    /// `POST /echo` with a `Content-Length` body.
    EchoLength(Vec<u8>),
    /// `POST /echo` with a chunked body cut into chunks of these sizes (cycled).
    EchoChunked(Vec<u8>, Vec<usize>),
    Counter,
    /// `GET` or `HEAD` of `/static/<file>`.
    Static {
        file: &'static str,
        head: bool,
    },
    NotFound(String),
}

impl Req {
    fn method(&self) -> &'static str {
        match self {
            Req::EchoLength(_) | Req::EchoChunked(..) => "POST",
            Req::Static { head: true, .. } => "HEAD",
            _ => "GET",
        }
    }

    /// The request's bytes on the wire.
    fn encode(&self) -> Vec<u8> {
        let head = |method: &str, target: &str, extra: &str| {
            format!("{method} {target} HTTP/1.1\r\nHost: proptest\r\nUser-Agent: proptest\r\n{extra}\r\n")
                .into_bytes()
        };
        match self {
            Req::Plaintext => head("GET", "/plaintext", ""),
            Req::Hello(name) => head("GET", &format!("/hello/{name}"), ""),
            Req::Counter => head("GET", "/counter", "Accept: */*\r\n"),
            Req::Static {
                file,
                head: is_head,
            } => head(
                if *is_head { "HEAD" } else { "GET" },
                &format!("/static/{file}"),
                "",
            ),
            Req::NotFound(path) => head("GET", path, ""),
            Req::EchoLength(body) => {
                let mut out = head(
                    "POST",
                    "/echo",
                    &format!(
                        "Content-Type: application/x-proptest\r\nContent-Length: {}\r\n",
                        body.len()
                    ),
                );
                out.extend_from_slice(body);
                out
            }
            Req::EchoChunked(body, sizes) => {
                let mut out = head(
                    "POST",
                    "/echo",
                    "Content-Type: application/x-proptest\r\nTransfer-Encoding: chunked\r\n",
                );
                let mut rest = &body[..];
                for &size in sizes.iter().cycle() {
                    if rest.is_empty() {
                        break;
                    }
                    let (chunk, tail) = rest.split_at(size.min(rest.len()));
                    out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                    out.extend_from_slice(chunk);
                    out.extend_from_slice(b"\r\n");
                    rest = tail;
                }
                out.extend_from_slice(b"0\r\n\r\n");
                out
            }
        }
    }

    /// Checks `response` is this request's answer; `last_count` is the highest counter value seen so far.
    fn check(&self, response: &Response, last_count: &mut u64) -> Result<(), TestCaseError> {
        let body = &response.body;
        match self {
            Req::Plaintext => {
                prop_assert_eq!(response.status, 200);
                prop_assert_eq!(body.as_slice(), b"Hello, World!");
            }
            Req::Hello(name) => {
                prop_assert_eq!(response.status, 200);
                prop_assert_eq!(response.body_str(), format!("Hello, {name}!"));
            }
            Req::EchoLength(sent) | Req::EchoChunked(sent, _) => {
                prop_assert_eq!(response.status, 200);
                prop_assert_eq!(
                    response.header("Content-Type"),
                    Some("application/x-proptest")
                );
                prop_assert_eq!(body, sent);
            }
            Req::Counter => {
                prop_assert_eq!(response.status, 200);
                let n: u64 = response.body_str().parse().map_err(|_| {
                    TestCaseError::fail(format!("counter body {:?}", response.body_str()))
                })?;
                // This file's tests are the server's only clients and run one request at a time.
                prop_assert!(n > *last_count, "counter went from {} to {}", last_count, n);
                *last_count = n;
            }
            Req::Static { file, head } => {
                prop_assert_eq!(response.status, 200);
                let expected = static_file(file);
                let length = expected.len().to_string();
                prop_assert_eq!(response.header("Content-Length"), Some(length.as_str()));
                if *head {
                    prop_assert!(body.is_empty());
                } else {
                    prop_assert!(
                        body == &expected,
                        "{}: {} bytes that differ from the file's {}",
                        file,
                        body.len(),
                        expected.len()
                    );
                }
            }
            Req::NotFound(_) => prop_assert_eq!(response.status, 404),
        }
        Ok(())
    }
}

fn body_strategy() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => proptest::collection::vec(any::<u8>(), 0..64),
        1 => proptest::collection::vec(any::<u8>(), 64..4096),
    ]
}

fn req_strategy() -> impl Strategy<Value = Req> {
    prop_oneof![
        1 => Just(Req::Plaintext),
        1 => "[A-Za-z0-9_-]{1,16}".prop_map(Req::Hello),
        1 => body_strategy().prop_map(Req::EchoLength),
        1 => (body_strategy(), proptest::collection::vec(1usize..300, 1..4))
            .prop_map(|(body, sizes)| Req::EchoChunked(body, sizes)),
        1 => Just(Req::Counter),
        2 => (proptest::sample::select(STATIC_FILES), any::<bool>())
            .prop_map(|(file, head)| Req::Static { file, head }),
        1 => "/(nope|static/missing|hello)/[a-z]{0,8}/x".prop_map(Req::NotFound),
    ]
}

/// A sequence of requests for one connection, and where to cut its bytes into separate writes (fractions of
/// the total length), and how long to pause after each write.
fn case_strategy() -> impl Strategy<Value = (Vec<Req>, Vec<f64>, Vec<u8>)> {
    (
        proptest::collection::vec(req_strategy(), 1..7),
        proptest::collection::vec(0.0f64..1.0, 0..8),
        proptest::collection::vec(0u8..3, 9),
    )
}

/// Writes `reqs` over one connection in the pieces given by `cuts`, pausing `pauses[i]` ms after piece `i`,
/// then reads one response per request and checks each in order.
fn run_case(
    addr: SocketAddr,
    reqs: &[Req],
    cuts: &[f64],
    pauses: &[u8],
    last_count: &mut u64,
) -> Result<(), TestCaseError> {
    let wire: Vec<u8> = reqs.iter().flat_map(Req::encode).collect();
    let mut points: Vec<usize> = cuts
        .iter()
        .map(|f| (f * wire.len() as f64) as usize)
        .collect();
    points.push(wire.len());
    points.sort_unstable();
    points.dedup();

    let mut stream = plugd_tests::connect(addr);
    // Every answer here is small and immediate: 3 s without a byte is a stall.
    stream
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let mut reader = ResponseReader::new(stream.try_clone().expect("clone socket"));
    for req in reqs {
        reader.expect_method(req.method());
    }
    let mut start = 0;
    for (i, &end) in points.iter().enumerate() {
        stream
            .write_all(&wire[start..end])
            .map_err(|e| TestCaseError::fail(format!("write: {e}")))?;
        start = end;
        let pause = pauses[i % pauses.len()];
        if pause > 0 {
            std::thread::sleep(Duration::from_millis(u64::from(pause)));
        }
    }
    for (i, req) in reqs.iter().enumerate() {
        let response = reader
            .read_final_response()
            .map_err(|e| TestCaseError::fail(format!("response #{} to {req:?}: {e}", i + 1)))?;
        req.check(&response, last_count)
            .map_err(|e| TestCaseError::fail(format!("response #{} to {req:?}: {e}", i + 1)))?;
    }
    Ok(())
}

/// Generated valid requests, several per connection and cut into random writes, come back right and in order.
/// Static files anywhere in a sequence, the 64 KiB one included: the property test found requests pipelined
/// behind a sendfile response left waiting (see [`a_request_pipelined_after_a_static_file_is_answered`]).
#[test]
fn generated_requests_in_random_writes_are_answered_in_order() {
    let server = server();
    // Each case is a real connection to a real process: a modest count keeps CI fast.
    let config = ProptestConfig {
        cases: 64,
        // A stalled response costs a read timeout per shrinking step: bound the steps.
        max_shrink_iters: 64,
        ..ProptestConfig::default()
    };
    let mut runner = proptest::test_runner::TestRunner::new(config);
    // Every request in this test goes through this one server, one at a time: the counter only goes up.
    let last_count = std::cell::Cell::new(0);
    let result = runner.run(&case_strategy(), |(reqs, cuts, pauses)| {
        let mut count = last_count.get();
        let outcome = run_case(server.addr(), &reqs, &cuts, &pauses, &mut count);
        last_count.set(count);
        outcome
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

// ---------------------------------------------------------------------------------------------------------
// Regressions
// ---------------------------------------------------------------------------------------------------------

/// Writes `wire` in one piece and reads `count` responses; each read waits at most 3 s.
fn pipelined(server: &Server, wire: &[u8], count: usize) -> Vec<Response> {
    let mut stream = plugd_tests::connect(server.addr());
    stream
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let mut reader = ResponseReader::new(stream.try_clone().expect("clone socket"));
    stream.write_all(wire).expect("write requests");
    (0..count)
        .map(|i| {
            reader
                .read_final_response()
                .unwrap_or_else(|e| panic!("response #{} of {count}: {e}", i + 1))
        })
        .collect()
}

/// Found by the property test: after a static file response sent with sendfile (since main's 9922b91, files
/// over 16 KiB), a request that arrived in the same read was only answered when more bytes came, the client
/// closed, or the header timeout passed.
#[test]
fn a_request_pipelined_after_a_static_file_is_answered() {
    let server = server();
    let responses = pipelined(
        &server,
        b"GET /static/big.bin HTTP/1.1\r\nHost: a\r\n\r\nGET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n",
        2,
    );
    assert!(responses[0].body == big_file(), "big.bin came back changed");
    assert_eq!(responses[1].body, b"Hello, World!");
}

/// The same stall when one read's responses pass the connection's output high-water mark (256 KiB): 1,000
/// pipelined `GET /` (27 KB of requests, about 900 KB of answers) stopped after about 320 responses.
#[test]
fn pipelined_responses_past_the_output_high_water_mark_all_come_back() {
    let server = server();
    let responses = pipelined(
        &server,
        &b"GET / HTTP/1.1\r\nHost: a\r\n\r\n".repeat(1000),
        1000,
    );
    assert!(responses.iter().all(|r| r.status == 200));
}

// ---------------------------------------------------------------------------------------------------------
// curl
// ---------------------------------------------------------------------------------------------------------

/// Runs `curl` with `args` (bounded by `--max-time`), failing clearly when curl is not installed.
fn curl(args: &[&str]) -> Output {
    let output = Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "20"])
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("could not run curl ({e}): install it (`apt-get install curl`; .ci/run does)")
        });
    assert!(
        output.status.success(),
        "curl {args:?} failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn curl_verbose_shows_status_and_server() {
    let server = server();
    let out = curl(&["-v", &server.url("/plaintext")]);
    let log = stderr(&out);
    assert!(log.contains("< HTTP/1.1 200 OK"), "{log}");
    assert!(log.contains("< Server: plugd"), "{log}");
    assert_eq!(out.stdout, b"Hello, World!");
}

#[test]
fn curl_http10_gets_an_answer_and_a_closed_connection() {
    let server = server();
    let out = curl(&["-v", "--http1.0", &server.url("/hello/curl")]);
    let log = stderr(&out);
    assert!(log.contains("> GET /hello/curl HTTP/1.0"), "{log}");
    assert!(log.contains(" 200 OK"), "{log}");
    // HTTP/1.0 without keep-alive: the server closes after the response.
    assert!(!log.contains("left intact"), "{log}");
    assert_eq!(out.stdout, b"Hello, curl!");
}

#[test]
fn curl_post_form_data_is_echoed() {
    let server = server();
    let out = curl(&["-X", "POST", "-d", "name=test", &server.url("/echo")]);
    assert_eq!(out.stdout, b"name=test");
    let out = curl(&["-X", "POST", "-d", "name=test", &server.url("/submit")]);
    assert_eq!(out.stdout, b"name=test\n");
}

#[test]
fn curl_chunked_upload_of_a_file_is_echoed() {
    let server = server();
    let dir = TempDir::new("curl-upload");
    let path = dir.join("upload.bin");
    // 200 KiB of every byte value, so curl sends many chunks.
    let data: Vec<u8> = (0..200 * 1024)
        .map(|i: u32| (i * 7 + i / 256) as u8)
        .collect();
    std::fs::write(&path, &data).unwrap();
    let file_arg = format!("@{}", path.display());
    let out = curl(&[
        "-v",
        "-H",
        "Transfer-Encoding: chunked",
        "-H",
        "Content-Type: application/octet-stream",
        "--data-binary",
        &file_arg,
        &server.url("/echo"),
    ]);
    let log = stderr(&out);
    assert!(log.contains("> Transfer-Encoding: chunked"), "{log}");
    assert!(log.contains("< HTTP/1.1 200 OK"), "{log}");
    assert!(
        out.stdout == data,
        "echoed {} bytes, sent {}",
        out.stdout.len(),
        data.len()
    );
}

#[test]
fn curl_range_gets_the_first_hundred_bytes() {
    let server = server();
    let out = curl(&[
        "-r",
        "0-99",
        "-w",
        "\n%{http_code}",
        &server.url("/static/style.css"),
    ]);
    let full = static_file("style.css");
    let mut expected = full[..100].to_vec();
    expected.extend_from_slice(b"\n206");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&expected)
    );
}

#[test]
fn curl_head_shows_the_get_headers_without_a_body() {
    let server = server();
    let out = curl(&["-I", &server.url("/static/test.html")]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    let length = static_file("test.html").len();
    assert!(
        text.contains(&format!("Content-Length: {length}\r\n")),
        "{text}"
    );
    assert!(text.contains("Content-Type: text/html"), "{text}");
    // Nothing after the head: the output ends with the blank line.
    assert!(text.ends_with("\r\n\r\n"), "{text}");
}

#[test]
fn curl_reuses_the_connection_for_two_urls() {
    let server = server();
    let out = curl(&["-v", &server.url("/plaintext"), &server.url("/hello/again")]);
    let log = stderr(&out);
    assert!(log.contains("Re-using existing connection"), "{log}");
    assert_eq!(out.stdout, b"Hello, World!Hello, again!");
}
