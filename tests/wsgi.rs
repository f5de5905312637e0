//! End-to-end tests of the WSGI plugin (`plugins/wsgi`): the real plugd serving Python applications from
//! `tests/wsgi/` through the embedded interpreter. `validated.py` wraps each of its applications in the
//! standard library's `wsgiref.validate.validator`, whose complaints would surface as 500s and tracebacks in
//! the log; `flask_app.py` is a real Flask application. The Python packages they import (Flask, numpy) are
//! pip-installed once into `<target>/python-packages` with Debian's `/usr/bin/python3`, the interpreter the
//! plugin embeds (docs/ARCHITECTURE.md §19.4).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use plugd_tests::{
    Conn, Response, Server, TempDir, example_plugin, get, plugin_dir_with, run_plugd,
    workspace_root, wsgi_plugin,
};

/// The interpreter the plugin is built against (`PYO3_PYTHON` in .cargo/config.toml).
const PYTHON: &str = "/usr/bin/python3";
/// How long a log line may take to appear after the request that causes it.
const LOG_WAIT: Duration = Duration::from_secs(10);
/// Bound on a plugd run expected to exit by itself (a refused plugin with `--strict-plugins`).
const RUN_TIMEOUT: Duration = Duration::from_secs(30);

/// `tests/wsgi/`: the applications and their requirements.
fn apps_dir() -> PathBuf {
    workspace_root().join("tests/wsgi")
}

/// The packages of `tests/wsgi/requirements.txt`, installed on first use (again when the file changes).
fn python_packages() -> &'static Path {
    static INSTALLED: OnceLock<PathBuf> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let target = wsgi_plugin().parent().unwrap().parent().unwrap().to_owned();
        let dir = target.join("python-packages");
        let requirements = apps_dir().join("requirements.txt");
        let wanted = fs::read(&requirements).expect("tests/wsgi/requirements.txt");
        let stamp = dir.join(".requirements.txt");
        if fs::read(&stamp).is_ok_and(|installed| installed == wanted) {
            return dir;
        }
        let _ = fs::remove_dir_all(&dir);
        let output = Command::new(PYTHON)
            .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check"])
            .args(["--root-user-action=ignore", "--target"])
            .arg(&dir)
            .arg("-r")
            .arg(&requirements)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {PYTHON} -m pip ({e}): run `cargo xtask test`"));
        assert!(
            output.status.success(),
            "pip could not install tests/wsgi/requirements.txt (`cargo xtask test` installs pip):\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        fs::write(&stamp, wanted).unwrap();
        dir
    })
}

/// A config file whose `[plugins.wsgi]` table serves `app`, with the test applications and the installed
/// packages on `python_path`, plus `extra` lines.
fn config_for(app: &str, extra: &str) -> TempDir {
    let dir = TempDir::new("wsgi-config");
    let text = format!(
        "[plugins.wsgi]\napp = {app:?}\npython_path = [{:?}, {:?}]\n{extra}\n",
        apps_dir().to_str().unwrap(),
        python_packages().to_str().unwrap(),
    );
    fs::write(dir.join("plugd.toml"), text).unwrap();
    dir
}

/// plugd serving `app` (and the example plugins named in `also`), configured with `extra` table lines.
fn serve(app: &str, extra: &str, also: &[&str]) -> Server {
    let mut plugins = vec![wsgi_plugin()];
    plugins.extend(also.iter().map(|name| example_plugin(name)));
    let plugin_dir = plugin_dir_with(&plugins);
    let config = config_for(app, extra);
    let args = [
        "--plugin-dir",
        plugin_dir.path().to_str().unwrap(),
        "--config",
        config.join("plugd.toml").to_str().unwrap(),
    ]
    .map(str::to_owned);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server =
        Server::try_start(&args, &[], vec![plugin_dir, config]).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        server.wait_for_log("serving the WSGI application", LOG_WAIT),
        "{}",
        server.stderr()
    );
    server
}

fn validated() -> Server {
    serve("validated:application", "", &[])
}

/// Sends `request` (complete bytes, `Connection: close` added by the caller if wanted) and reads one response.
fn exchange(server: &Server, request: &[u8]) -> Response {
    let mut conn = Conn::open(server.addr());
    conn.send(request);
    conn.read_response().unwrap_or_else(|e| {
        panic!(
            "{}: {e}\n{}",
            String::from_utf8_lossy(request),
            server.stderr()
        )
    })
}

fn post(path: &str, content_type: &str, body: &[u8]) -> Vec<u8> {
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    request
}

fn chunked(path: &str, content_type: &str, body: &[u8], chunk: usize) -> Vec<u8> {
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: {content_type}\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    .into_bytes();
    for piece in body.chunks(chunk) {
        request.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        request.extend_from_slice(piece);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    request
}

fn json(response: &Response) -> serde_json::Value {
    serde_json::from_slice(&response.body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", response.body_str()))
}

/// The validator's table: each request with the status and body plugd must answer. Any complaint of the
/// validator would turn the answer into a 500 (and an AssertionError or WSGIWarning in the log).
#[test]
fn the_validator_finds_nothing_to_complain_about_across_the_request_table() {
    let server = validated();
    let form = b"name=Ann&age=7";
    let lines = b"first\nsecond\nthird\nfourth\nfifth";
    let upload: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
    let source = fs::read(apps_dir().join("validated.py")).unwrap();
    let table: Vec<(&str, Vec<u8>, u16, Vec<u8>)> = vec![
        ("form POST", post("/form", "application/x-www-form-urlencoded", form), 200,
            br#"{"name": "Ann", "age": "7"}"#.to_vec()),
        ("chunked form POST", chunked("/form", "application/x-www-form-urlencoded", form, 3), 200,
            br#"{"name": "Ann", "age": "7"}"#.to_vec()),
        ("readline, readlines, iteration", post("/lines", "text/plain", lines), 200,
            br#"{"first": "first\n", "partial": "sec", "hinted": ["ond\n"], "rest": ["third\n", "fourth\n", "fifth"], "after": ""}"#.to_vec()),
        ("chunked upload read in pieces", chunked("/upload", "application/octet-stream", &upload, 777), 200,
            b"5000 bytes in 5 reads".to_vec()),
        ("iterable body", b"GET /stream HTTP/1.1\r\nHost: test\r\n\r\n".to_vec(), 200, b"one two three".to_vec()),
        ("HEAD", b"HEAD /stream HTTP/1.1\r\nHost: test\r\n\r\n".to_vec(), 200, b"".to_vec()),
        ("write()", b"GET /write HTTP/1.1\r\nHost: test\r\n\r\n".to_vec(), 200, b"written then returned".to_vec()),
        ("exception before start_response", b"GET /error-before HTTP/1.1\r\nHost: test\r\n\r\n".to_vec(), 500,
            b"Internal Server Error".to_vec()),
        ("start_response again with exc_info", b"GET /exc-info HTTP/1.1\r\nHost: test\r\n\r\n".to_vec(), 503,
            b"handled with exc_info".to_vec()),
        ("wsgi.file_wrapper", b"GET /file HTTP/1.1\r\nHost: test\r\n\r\n".to_vec(), 200, source),
        ("wsgi.errors", b"GET /errors HTTP/1.1\r\nHost: test\r\n\r\n".to_vec(), 200, b"logged".to_vec()),
        ("201", b"GET /status/201 HTTP/1.1\r\nHost: test\r\n\r\n".to_vec(), 201, b"status 201".to_vec()),
        ("204", b"GET /status/204 HTTP/1.1\r\nHost: test\r\n\r\n".to_vec(), 204, b"".to_vec()),
        ("404", b"GET /status/404 HTTP/1.1\r\nHost: test\r\n\r\n".to_vec(), 404, b"status 404".to_vec()),
        ("418", b"GET /status/418 HTTP/1.1\r\nHost: test\r\n\r\n".to_vec(), 418, b"status 418".to_vec()),
        // PATH_INFO and field values are native strings: the bytes received, each as one code point.
        ("latin-1 native strings", b"GET /latin1/caf%C3%A9 HTTP/1.1\r\nHost: test\r\nX-Latin: \xe9t\xe9\r\n\r\n".to_vec(),
            200, b"/latin1/caf\xc3\xa9|\xe9t\xe9".to_vec()),
    ];
    for (what, request, status, body) in &table {
        let response = exchange(&server, request);
        assert_eq!(
            (response.status, &response.body),
            (*status, body),
            "{what}: {:?}\n{}",
            response.body_str(),
            server.stderr()
        );
    }
    let mut cut = Conn::open(server.addr());
    cut.send(b"GET /error-after HTTP/1.1\r\nHost: test\r\n\r\n");
    assert!(
        cut.read_response().is_err(),
        "a body that fails after its first chunk is cut, never complete-looking"
    );
    let closes = json(&get(server.addr(), "/raw/closed"));
    assert_eq!(
        closes,
        serde_json::json!({
            "closed": {"/stream": 2, "/write": 1, "/error-after": 1},
            "unraisable": [],
        }),
        "close() is called on every iterable, also when iterating raised"
    );
    let log = server.stderr();
    assert!(
        !log.contains("AssertionError") && !log.contains("WSGIWarning"),
        "{log}"
    );
    assert!(
        log.contains("ValueError: the application failed before start_response"),
        "{log}"
    );
    assert!(
        log.contains("GET /error-before: Traceback (most recent call last):"),
        "{log}"
    );
    assert!(
        log.contains("in error_before_app"),
        "the traceback names the function: {log}"
    );
    assert!(
        log.contains("RuntimeError: failed while producing the body"),
        "{log}"
    );
    for line in ["a line for plugd's log", "first of two", "second of two"] {
        assert!(
            log.contains(&format!("wsgi.errors: {line}")),
            "{line}: {log}"
        );
    }
}

#[test]
fn environ_has_every_variable_of_pep_3333() {
    let server = validated();
    let response = exchange(
        &server,
        b"GET /environ?x=1&y=%20z HTTP/1.1\r\nHost: example.com:8080\r\nX-Dup: a\r\nX-Dup: b\r\n\
          Cookie: a=1\r\nCookie: b=2\r\nX_Dup: forged\r\nAccept: */*\r\n\r\n",
    );
    assert_eq!(response.status, 200, "{}", server.stderr());
    let environ = json(&response);
    let expected = serde_json::json!({
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": "/environ",
        "QUERY_STRING": "x=1&y=%20z",
        "CONTENT_TYPE": null,
        "CONTENT_LENGTH": null,
        "SERVER_NAME": "example.com",
        "SERVER_PORT": "8080",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.url_scheme": "http",
        "wsgi.multithread": true,
        "wsgi.multiprocess": false,
        "wsgi.run_once": false,
        "wsgi.input_terminated": true,
        "wsgi.version": [1, 0],
        "HTTP": {
            "HTTP_HOST": "example.com:8080",
            "HTTP_X_DUP": "a, b",
            "HTTP_COOKIE": "a=1; b=2",
            "HTTP_ACCEPT": "*/*",
        },
        "types": ["str"],
    });
    assert_eq!(environ, expected);
    let form = exchange(&server, &post("/environ", "text/plain", b"abc"));
    let environ = json(&form);
    assert_eq!(
        (
            &environ["CONTENT_TYPE"],
            &environ["CONTENT_LENGTH"],
            &environ["REQUEST_METHOD"]
        ),
        (
            &serde_json::json!("text/plain"),
            &serde_json::json!("3"),
            &serde_json::json!("POST")
        )
    );
    let http10 = exchange(&server, b"GET /environ HTTP/1.0\r\n\r\n");
    let environ = json(&http10);
    assert_eq!(
        (
            &environ["SERVER_PROTOCOL"],
            &environ["SERVER_NAME"],
            &environ["SERVER_PORT"]
        ),
        (
            &serde_json::json!("HTTP/1.0"),
            &serde_json::json!("localhost"),
            &serde_json::json!("80")
        )
    );
}

#[test]
fn the_mount_prefix_is_script_name() {
    let server = serve("validated:application", "mount = \"/py\"", &[]);
    let environ = json(&get(server.addr(), "/py/environ"));
    assert_eq!(
        (&environ["SCRIPT_NAME"], &environ["PATH_INFO"]),
        (&serde_json::json!("/py"), &serde_json::json!("/environ"))
    );
    assert_eq!(
        get(server.addr(), "/environ").status,
        404,
        "outside the mount"
    );
    assert_eq!(
        get(server.addr(), "/py/a%2Fb").body_str(),
        "no test application at /a/b"
    );
    assert_eq!(
        get(server.addr(), "/py/%zz").status,
        400,
        "malformed percent-encoding"
    );
}

#[test]
fn broken_applications_get_a_bare_500_and_their_traceback_goes_to_the_log() {
    let server = validated();
    let cases = [
        (
            "/raw/not-bytes",
            "TypeError: the application's body holds a str, not bytes",
        ),
        (
            "/raw/no-start",
            "AssertionError: the application produced body data before calling start_response",
        ),
        (
            "/raw/crlf-header",
            "ValueError: response header X-Injected has CR, LF or NUL in its value",
        ),
    ];
    for (path, logged) in cases {
        let response = get(server.addr(), path);
        assert_eq!(
            (response.status, response.body_str().as_str()),
            (500, "Internal Server Error"),
            "{path}"
        );
        assert!(
            response.header("Set-Cookie").is_none(),
            "{path}: {:?}",
            response.raw_head
        );
        assert!(
            server.wait_for_log(&format!("GET {path}: "), LOG_WAIT)
                && server.wait_for_log(logged, LOG_WAIT),
            "{path}: {}",
            server.stderr()
        );
    }
    assert_eq!(
        get(server.addr(), "/status/201").status,
        201,
        "still serving"
    );
}

/// Three requests wait inside Python (`threading.Event.wait`, which releases the GIL) while other Python
/// requests, another plugin's route and a static file are answered; then they are released and answer too.
#[test]
fn a_blocked_application_stalls_no_other_route() {
    let server = serve("validated:application", "", &["hello"]);
    let addr = server.addr();
    let blocked: Vec<_> = (0..3)
        .map(|_| thread::spawn(move || get(addr, "/raw/block")))
        .collect();
    let deadline = Instant::now() + LOG_WAIT;
    while get(addr, "/raw/blocked").body_str() != "3" {
        assert!(
            Instant::now() < deadline,
            "the three requests never blocked: {}",
            server.stderr()
        );
        thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(get(addr, "/status/201").status, 201);
    assert_eq!(get(addr, "/plaintext").body_str(), "Hello, World!");
    assert_eq!(get(addr, "/static/test.html").status, 200);
    assert_eq!(
        get(addr, "/raw/blocked").body_str(),
        "3",
        "still blocked meanwhile"
    );
    assert_eq!(get(addr, "/raw/release").status, 200);
    for request in blocked {
        assert_eq!(request.join().unwrap().body_str(), "released");
    }
}

/// With `threads = 2`, two requests waiting inside Python take both places: a third Python request waits
/// in the queue while other routes are served, and is answered once one of the two returns.
#[test]
fn python_requests_beyond_the_threads_wait_for_one_to_return() {
    let server = serve("validated:application", "threads = 2", &["hello"]);
    let addr = server.addr();
    let files = TempDir::new("wsgi-release");
    let waiting: Vec<_> = ["a", "b"]
        .map(|name| files.join(name).to_str().unwrap().to_owned())
        .into_iter()
        .map(|file| {
            let path = format!("/raw/wait-for-file?{file}");
            (file.clone(), thread::spawn(move || get(addr, &path)))
        })
        .collect();
    for (file, _) in &waiting {
        assert!(
            server.wait_for_log(&format!("waiting for {file}"), LOG_WAIT),
            "{}",
            server.stderr()
        );
    }
    let mut queued = Conn::open(addr);
    queued.send(b"GET /status/201 HTTP/1.1\r\nHost: test\r\n\r\n");
    queued
        .stream()
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut byte = [0; 1];
    let early = std::io::Read::read(queued.stream(), &mut byte);
    assert!(
        early.is_err(),
        "a third Python request was answered while both Python threads wait: {early:?}"
    );
    assert_eq!(get(addr, "/plaintext").body_str(), "Hello, World!");
    assert_eq!(get(addr, "/static/test.html").status, 200);

    for (file, _) in &waiting {
        fs::write(file, b"").unwrap();
    }
    for (_, request) in waiting {
        assert_eq!(request.join().unwrap().body_str(), "released");
    }
    queued.stream().set_read_timeout(None).unwrap();
    assert_eq!(queued.read_response().unwrap().status, 201);
}

/// A `wsgi.file_wrapper` around a real file is sent by plugd (`sendfile`) from the file's position, for the
/// declared length when the application gave one: the file object's Python `read` raises, so a body read in
/// Python would be a 500. A file-like object without a descriptor is read in Python.
#[test]
fn a_wrapped_real_file_is_sent_by_plugd_without_python_reading_it() {
    let server = validated();
    let source = fs::read(apps_dir().join("validated.py")).unwrap();
    let whole = get(server.addr(), "/raw/file");
    assert_eq!(whole.status, 200, "{}", server.stderr());
    assert_eq!(whole.body, source);
    let length = source.len().to_string();
    assert_eq!(whole.header("Content-Length"), Some(length.as_str()));
    assert_eq!(whole.header("Content-Type"), Some("text/x-python"));

    let span = get(server.addr(), "/raw/file?from=100&length=50");
    assert_eq!(span.body, &source[100..150], "{}", server.stderr());
    let rest = get(server.addr(), "/raw/file?from=100");
    assert_eq!(rest.body, &source[100..]);
    let head = exchange(
        &server,
        b"HEAD /raw/file HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(head.header("Content-Length"), Some(length.as_str()));
    assert!(head.body.is_empty());

    let file_like = get(server.addr(), "/raw/file-like");
    assert_eq!(file_like.body, b"not a file ".repeat(1000));
    assert!(
        !server.stderr().contains("read in Python"),
        "{}",
        server.stderr()
    );
}

/// A generator's chunks leave as it yields them: the first arrives while the second is not produced yet.
#[test]
fn iterable_bodies_are_streamed_as_produced() {
    let server = validated();
    let mut conn = Conn::open(server.addr());
    conn.send(b"GET /raw/slow-stream HTTP/1.1\r\nHost: test\r\n\r\n");
    let mut received = Vec::new();
    let deadline = Instant::now() + LOG_WAIT;
    while !received.ends_with(b"first\n\r\n") {
        assert!(
            Instant::now() < deadline,
            "no first chunk: {:?}",
            String::from_utf8_lossy(&received)
        );
        let mut buf = [0; 1024];
        let n = std::io::Read::read(conn.stream(), &mut buf).expect("read the first chunk");
        assert!(n > 0, "closed early");
        received.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&received);
    assert!(
        head.starts_with("HTTP/1.1 200 OK\r\n") && head.contains("Transfer-Encoding: chunked"),
        "{head}"
    );
    assert_eq!(get(server.addr(), "/raw/release-stream").status, 200);
    let rest = conn
        .read_rest(Duration::from_secs(1))
        .unwrap_or_else(|bytes| bytes);
    assert!(
        String::from_utf8_lossy(&rest).contains("second\n"),
        "{rest:?}"
    );

    // A client that leaves mid-stream: plugd drops the body, which closes the iterable.
    let mut leaving = Conn::open(server.addr());
    leaving.send(b"GET /raw/endless HTTP/1.1\r\nHost: test\r\n\r\n");
    let mut buf = [0; 64 * 1024];
    let n = std::io::Read::read(leaving.stream(), &mut buf).unwrap();
    assert!(n > 0);
    drop(leaving);
    let deadline = Instant::now() + LOG_WAIT;
    while json(&get(server.addr(), "/raw/closed"))["closed"]["/raw/endless"] != 1 {
        assert!(
            Instant::now() < deadline,
            "the endless iterable was never closed: {}",
            server.stderr()
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// Each request runs in a context of its own: a context variable the application sets is seen by every
/// later step of that request (each chunk of its streamed body, `close()`), on whichever thread runs it,
/// and by no other request.
#[test]
fn each_request_has_a_context_of_its_own_across_its_steps() {
    let server = validated();
    for query in ["one", "two", "three"] {
        let response = get(server.addr(), &format!("/raw/context?{query}"));
        assert_eq!(response.status, 200, "{}", server.stderr());
        assert_eq!(
            response.body_str(),
            format!("found unset\nnext {query}\nthen {query}\n")
        );
    }
    assert_eq!(
        json(&get(server.addr(), "/raw/context?closed")),
        serde_json::json!({"one": "one", "two": "two", "three": "three"})
    );
}

/// `wsgi.input` reads the body as it arrives: the application handles the first line while the client has
/// not sent the second yet.
#[test]
fn the_request_body_is_read_as_it_arrives() {
    let server = validated();
    let mut conn = Conn::open(server.addr());
    conn.send(
        b"POST /raw/line-by-line HTTP/1.1\r\nHost: test\r\nContent-Length: 13\r\n\r\nfirst\n",
    );
    assert!(
        server.wait_for_log("wsgi.errors: line 1: first", LOG_WAIT),
        "the first line was not read before the rest arrived: {}",
        server.stderr()
    );
    conn.send(b"second\n");
    let response = conn.read_response().unwrap();
    assert_eq!(
        (response.status, response.body_str().as_str()),
        (200, "2 lines")
    );

    let chunked_upload = chunked("/raw/line-by-line", "text/plain", b"a\nb\nc", 2);
    assert_eq!(exchange(&server, &chunked_upload).body_str(), "3 lines");
    let too_large = post("/upload", "application/octet-stream", &vec![b'x'; 2 << 20]);
    let mut conn = Conn::open(server.addr());
    let _ = conn.try_send(&too_large);
    assert_eq!(
        conn.read_response().unwrap().status,
        413,
        "--max-body-bytes still holds"
    );
}

/// C extensions built without a link to libpython (the standard library's `_ctypes`, numpy) import: the
/// plugin made libpython's symbols global.
#[test]
fn c_extensions_import() {
    let server = validated();
    let response = get(server.addr(), "/raw/extensions");
    assert_eq!(
        (response.status, response.body_str().as_str()),
        (200, "_ctypes numpy 10"),
        "{}",
        server.stderr()
    );
}

/// `plugd --strict-plugins` with a WSGI table: exits 2; returns stderr.
fn refused(app_line: &str) -> String {
    let plugin_dir = plugin_dir_with(&[wsgi_plugin()]);
    let config = TempDir::new("wsgi-refused");
    let text = format!(
        "[plugins.wsgi]\n{app_line}\npython_path = [{:?}]\n",
        apps_dir().to_str().unwrap()
    );
    fs::write(config.join("plugd.toml"), text).unwrap();
    let out = run_plugd(
        &[
            "--port",
            "0",
            "--strict-plugins",
            "--plugin-dir",
            plugin_dir.path().to_str().unwrap(),
            "--config",
            config.join("plugd.toml").to_str().unwrap(),
        ],
        &[],
        RUN_TIMEOUT,
    );
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    out.stderr
}

#[test]
fn a_missing_or_broken_application_refuses_the_plugin_with_the_reason() {
    let no_app = refused("");
    assert!(
        no_app.contains("plugin refused")
            && no_app.contains(
                "config key `app` is required: name the WSGI application as \"module:callable\""
            ),
        "{no_app}"
    );
    let no_module = refused("app = \"no_such_module:app\"");
    assert!(
        no_module.contains("Traceback")
            && no_module.contains("ModuleNotFoundError: No module named 'no_such_module'"),
        "{no_module}"
    );
    let no_callable = refused("app = \"validated:no_such_callable\"");
    assert!(
        no_callable.contains("AttributeError") && no_callable.contains("no_such_callable"),
        "{no_callable}"
    );
    let not_callable = refused("app = \"validated:ENVIRON_KEYS\"");
    assert!(
        not_callable.contains("validated:ENVIRON_KEYS is a list, not a WSGI callable"),
        "{not_callable}"
    );
}

// ---------------------------------------------------------------------------------------------------------
// Flask
// ---------------------------------------------------------------------------------------------------------

fn curl(args: &[&str]) -> Output {
    let output = Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "20"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("could not run curl ({e}): `cargo xtask test` installs it"));
    assert!(
        output.status.success(),
        "curl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

#[test]
fn flask_serves_pages_forms_json_streams_and_uploads() {
    let server = serve("flask_app:app", "", &[]);
    let addr = server.addr();
    let hello = get(addr, "/");
    assert_eq!(
        (
            hello.body_str().as_str(),
            hello.header("Content-Length"),
            hello.chunked
        ),
        ("Hello, World!", Some("13"), false),
        "a framework's ordinary response is sent whole"
    );
    assert_eq!(
        json(&get(addr, "/json")),
        serde_json::json!({"message": "Hello, World!"})
    );
    assert!(
        get(addr, "/form")
            .body_str()
            .contains("<form method=\"post\">")
    );

    let sent = exchange(
        &server,
        &post(
            "/form",
            "application/x-www-form-urlencoded",
            b"name=J%C3%BCrgen",
        ),
    );
    assert_eq!(
        (sent.status, sent.header("Location")),
        (302, Some("/greet/J%C3%BCrgen")),
        "{}",
        server.stderr()
    );
    assert_eq!(
        get(addr, "/greet/J%C3%BCrgen").body_str(),
        "<p>Hello, Jürgen!</p>"
    );
    assert_eq!(
        exchange(
            &server,
            &post("/form", "application/x-www-form-urlencoded", b"")
        )
        .status,
        400
    );

    let created = exchange(
        &server,
        &post("/api/items", "application/json", br#"{"name": "pen"}"#),
    );
    assert_eq!(
        (created.status, created.header("Location")),
        (201, Some("/api/items/1"))
    );
    assert_eq!(json(&created), serde_json::json!({"id": 1, "name": "pen"}));
    assert_eq!(
        json(&get(addr, "/api/items")),
        serde_json::json!([{"id": 1, "name": "pen"}])
    );
    let missing = get(addr, "/api/items/9");
    assert_eq!(
        (missing.status, json(&missing)),
        (404, serde_json::json!({"error": "no item 9"}))
    );
    assert_eq!(
        exchange(&server, &post("/api/items", "application/json", b"[1]")).status,
        400
    );

    assert_eq!(
        get(addr, "/stream?n=3").body_str(),
        "line 0 of 3\nline 1 of 3\nline 2 of 3\n"
    );

    let dir = TempDir::new("flask-upload");
    let file = dir.join("photo.bin");
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 256) as u8).collect();
    fs::write(&file, &data).unwrap();
    let digest = Command::new("sha256sum")
        .arg(&file)
        .output()
        .unwrap()
        .stdout;
    let digest = String::from_utf8(digest).unwrap();
    let digest = digest.split_whitespace().next().unwrap();
    let uploaded = curl(&[
        "-F",
        &format!("file=@{}", file.display()),
        "-F",
        "note=from curl",
        &server.url("/upload"),
    ]);
    let uploaded: serde_json::Value = serde_json::from_slice(&uploaded.stdout).unwrap();
    assert_eq!(
        uploaded,
        serde_json::json!({"filename": "photo.bin", "size": 300_000, "sha256": digest, "note": "from curl"})
    );

    let boom = get(addr, "/boom");
    assert_eq!(boom.status, 500);
    assert!(
        !boom.body_str().contains("on purpose"),
        "no traceback to the client"
    );
    assert!(
        server.wait_for_log("RuntimeError: Flask route failed on purpose", LOG_WAIT),
        "{}",
        server.stderr()
    );
}
