//! Raw-TCP tests of `/static/` (docs/ARCHITECTURE.md §10) against the real `plugd` binary: mapping and traversal safety,
//! content types, directories, validators, ranges, precompressed sidecars, and streaming large files in
//! bounded memory.

use std::io::{Read, Write};
use std::os::unix::fs::symlink;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use plugd_tests::*;

/// Content planted just outside the static root (and in hidden files inside it): it must never come back.
const SECRET: &str = "TOP-SECRET-7f3a9c";

/// A static root in a temp dir, with a secret beside it and traps inside it.
struct Site {
    /// Holds `root/`, `secret.txt`, `Cargo.toml`, `outside/` (removed on drop).
    tmp: TempDir,
    root: PathBuf,
}

impl Site {
    fn new() -> Site {
        let tmp = TempDir::new("static");
        let root = tmp.join("root");
        let site = Site { tmp, root };
        site.write("hello.txt", "hello, static world\n");
        site.write("alphabet.txt", "abcdefghijklmnopqrstuvwxyz");
        site.write("index.html", "<h1>root index</h1>");
        site.write("docs/index.html", "<h1>docs index</h1>");
        site.write("docs/page.html", "<p>page</p>");
        site.write("noindex/file.txt", "no index here");
        site.write("sp ace/\u{fc}ber.txt", "unicode name");
        site.write("sub/inner.txt", "inner");
        site.write(".env", SECRET);
        site.write(".git/config", SECRET);
        site.write("sub/.hidden", SECRET);
        site.write("app.js", "console.log('identity');");
        site.write("app.js.gz", "GZIP-BYTES");
        site.write("app.js.br", "BROTLI-BYTES");
        std::fs::write(site.tmp.join("secret.txt"), SECRET).unwrap();
        std::fs::write(site.tmp.join("Cargo.toml"), SECRET).unwrap();
        std::fs::create_dir_all(site.tmp.join("outside")).unwrap();
        std::fs::write(site.tmp.join("outside/secret.txt"), SECRET).unwrap();
        std::fs::write(site.tmp.join("outside/index.html"), SECRET).unwrap();
        // Symlinks: one inside (served), escapes by file and by directory, onto a hidden file.
        symlink("hello.txt", site.root.join("link_in.txt")).unwrap();
        symlink("../secret.txt", site.root.join("link_out.txt")).unwrap();
        symlink(site.tmp.join("outside"), site.root.join("link_out_dir")).unwrap();
        symlink("..", site.root.join("parent")).unwrap();
        symlink(".env", site.root.join("link_hidden.txt")).unwrap();
        site
    }

    fn write(&self, rel: &str, content: &str) {
        let path = self.root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }

    fn start(&self) -> Server {
        Server::start(&["--static-dir", self.root.to_str().unwrap()])
    }
}

/// One request on a fresh connection (`Connection: close` added), returning the parsed response and the raw
/// bytes received.
fn request(
    server: &Server,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
) -> (Response, Vec<u8>) {
    let mut raw = format!("{method} {target} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n");
    for (name, value) in headers {
        raw.push_str(&format!("{name}: {value}\r\n"));
    }
    raw.push_str("\r\n");
    let bytes = send_raw(server.addr(), raw.as_bytes());
    let mut responses = parse_responses(&bytes, &[method]);
    assert_eq!(
        responses.len(),
        1,
        "{method} {target}: {:?}",
        String::from_utf8_lossy(&bytes)
    );
    (responses.remove(0), bytes)
}

fn get(server: &Server, target: &str, headers: &[(&str, &str)]) -> Response {
    request(server, "GET", target, headers).0
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

// ---------------------------------------------------------------------------------------------------------
// Mapping and safety
// ---------------------------------------------------------------------------------------------------------

#[test]
fn traversal_attempts_never_leave_the_root() {
    let site = Site::new();
    let server = site.start();
    let attempts = [
        "/static/../secret.txt",
        "/static/../Cargo.toml",
        "/static/../../secret.txt",
        "/static/sub/../../secret.txt",
        "/static/./../secret.txt",
        "/static//../secret.txt",
        "/static/%2e%2e/secret.txt",
        "/static/%2E%2E/secret.txt",
        "/static/%2e%2E/secret.txt",
        "/static/.%2e/secret.txt",
        "/static/%2e./secret.txt",
        "/static/..%2fsecret.txt",
        "/static/..%2Fsecret.txt",
        "/static/%2e%2e%2fsecret.txt",
        "/static/%2E%2e%2F%2E%2esecret.txt",
        "/static/sub/%2e%2e/%2e%2e/secret.txt",
        "/static/%2e%2e%2f%2e%2e%2fsecret.txt",
        "/static/%252e%252e/secret.txt",
        "/static/%252e%252e%252fsecret.txt",
        "/static/%25252e%25252e/secret.txt",
        "/static/..\\secret.txt",
        "/static/..%5csecret.txt",
        "/static/..%5Csecret.txt",
        "/static/%5c..%5csecret.txt",
        "/static/sub%5c..%5c..%5csecret.txt",
        "/static/secret.txt%00",
        "/static/hello.txt%00/../../secret.txt",
        "/static/%00../secret.txt",
        "/static/..%00/secret.txt",
        "/static/%c0%ae%c0%ae/secret.txt",
        "/static/%c0%ae%c0%ae%c0%afsecret.txt",
        "/static/%e0%80%ae%e0%80%ae/secret.txt",
        "/static/%uff0e%uff0e/secret.txt",
        "/static/%%32%65%%32%65/secret.txt",
        "/static/..;/secret.txt",
        "/static/%2e%2e;/secret.txt",
        "/static/....//secret.txt",
        "/static/%2fsecret.txt",
        "/static/%2f%2e%2e%2fsecret.txt",
        "/static//etc/passwd",
        "/static/%2fetc%2fpasswd",
        "/static/link_out.txt",
        "/static/link_out_dir/secret.txt",
        "/static/link_out_dir/",
        "/static/parent/secret.txt",
        "/static/parent/root/../secret.txt",
        "/static/link_hidden.txt",
        "/static/.env",
        "/static/%2eenv",
        "/static/.git/config",
        "/static/%2Egit/config",
        "/static/sub/.hidden",
        "/STATIC/../secret.txt",
        "http://test/static/../secret.txt",
        "http://test/static/%2e%2e/secret.txt",
        "http://test/static/link_out.txt",
    ];
    assert!(attempts.len() >= 30);
    for target in attempts {
        let bytes = send_raw(
            server.addr(),
            format!("GET {target} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").as_bytes(),
        );
        assert!(!contains(&bytes, SECRET), "{target} leaked the secret");
        assert!(!contains(&bytes, "root:"), "{target} leaked /etc/passwd");
        let response = parse_response(&bytes);
        assert!(
            matches!(response.status, 400 | 404),
            "{target}: {} {:?}",
            response.status,
            response.body_str()
        );
        let body = response.body_str();
        let tmp = site.tmp.path().to_str().unwrap();
        for leak in [tmp, "os error", "No such file", "Permission denied"] {
            assert!(
                !body.contains(leak),
                "{target}: body {body:?} mentions {leak:?}"
            );
        }
    }
    // Still serving afterwards.
    assert_eq!(get(&server, "/static/hello.txt", &[]).status, 200);
}

/// Plain names are opened beneath the root with openat2, which refuses every symlink; a path with one takes
/// the path-based way, so symlinks behave as they always did (and as in nginx): followed while they stay in
/// the root, relative or absolute, refused when they lead out or onto a hidden file.
#[test]
fn symlinks_are_followed_inside_the_root_and_refused_outside() {
    let site = Site::new();
    let root = std::fs::canonicalize(&site.root).unwrap();
    symlink(root.join("hello.txt"), root.join("abs_in.txt")).unwrap();
    symlink(root.join("docs"), root.join("abs_docs")).unwrap();
    symlink("../hello.txt", root.join("sub/up_in.txt")).unwrap();
    symlink("../../secret.txt", root.join("sub/up_out.txt")).unwrap();
    symlink(site.tmp.join("secret.txt"), root.join("abs_out.txt")).unwrap();
    symlink("../index.html", root.join("noindex/index.html")).unwrap();
    site.write("abs_in.txt.gz", "GZIP-OF-HELLO");
    let server = site.start();
    for (target, status, body) in [
        ("/static/link_in.txt", 200, "hello, static world\n"),
        ("/static/abs_in.txt", 200, "hello, static world\n"),
        ("/static/abs_docs/", 200, "<h1>docs index</h1>"),
        ("/static/abs_docs/page.html", 200, "<p>page</p>"),
        ("/static/sub/up_in.txt", 200, "hello, static world\n"),
        ("/static/noindex/", 200, "<h1>root index</h1>"),
        ("/static/sub/up_out.txt", 404, "not found\n"),
        ("/static/abs_out.txt", 404, "not found\n"),
        ("/static/link_out.txt", 404, "not found\n"),
        ("/static/link_hidden.txt", 404, "not found\n"),
    ] {
        let response = get(&server, target, &[]);
        assert_eq!(response.status, status, "{target}");
        assert_eq!(response.body_str(), body, "{target}");
    }
    // A symlink's sidecars are looked for beside its target (the canonical path), not beside the link
    // (nginx's gzip_static would take `abs_in.txt.gz`): plugd has always done so.
    let response = get(
        &server,
        "/static/abs_in.txt",
        &[("Accept-Encoding", "gzip")],
    );
    assert_eq!(response.header("Content-Encoding"), None);
}

#[test]
fn decodes_the_path_exactly_once() {
    let site = Site::new();
    site.write("%2e%2e", "literal percent name");
    let server = site.start();
    for (target, body) in [
        ("/static/hello.txt", "hello, static world\n"),
        ("/static/%68ello.txt", "hello, static world\n"),
        ("/static/sub%2Finner.txt", "inner"),
        ("/static/sub//inner.txt", "inner"),
        ("/static/sp%20ace/%C3%BCber.txt", "unicode name"),
        // `%252e%252e` decodes once to the literal name `%2e%2e`.
        ("/static/%252e%252e", "literal percent name"),
        ("/static/link_in.txt", "hello, static world\n"),
        // The query is not part of the file name (cache busting).
        ("/static/hello.txt?v=123", "hello, static world\n"),
        ("/static/sub/inner.txt?a=%2e%2e/x", "inner"),
    ] {
        let response = get(&server, target, &[]);
        assert_eq!(
            (response.status, response.body_str().as_str()),
            (200, body),
            "{target}"
        );
    }
}

#[test]
fn non_utf8_file_names_are_reachable() {
    use std::os::unix::ffi::OsStrExt;
    let site = Site::new();
    std::fs::write(
        site.root.join(std::ffi::OsStr::from_bytes(b"caf\xe9.txt")),
        "latin-1 name",
    )
    .unwrap();
    let server = site.start();
    let response = get(&server, "/static/caf%E9.txt", &[]);
    assert_eq!(response.status, 200);
    assert_eq!(response.body_str(), "latin-1 name");
}

// ---------------------------------------------------------------------------------------------------------
// Content
// ---------------------------------------------------------------------------------------------------------

#[test]
fn content_type_comes_from_the_extension() {
    let site = Site::new();
    let table = [
        ("a.html", "text/html; charset=utf-8"),
        ("a.css", "text/css; charset=utf-8"),
        ("a.js", "text/javascript; charset=utf-8"),
        ("a.mjs", "text/javascript; charset=utf-8"),
        ("a.json", "application/json; charset=utf-8"),
        ("a.txt", "text/plain; charset=utf-8"),
        ("a.svg", "image/svg+xml; charset=utf-8"),
        ("a.xml", "application/xml; charset=utf-8"),
        ("a.png", "image/png"),
        ("a.jpg", "image/jpeg"),
        ("a.jpeg", "image/jpeg"),
        ("a.gif", "image/gif"),
        ("a.webp", "image/webp"),
        ("a.ico", "image/x-icon"),
        ("a.woff", "font/woff"),
        ("a.woff2", "font/woff2"),
        ("a.wasm", "application/wasm"),
        ("a.pdf", "application/pdf"),
        ("a.mp4", "video/mp4"),
        ("a.webm", "video/webm"),
        ("UPPER.HTML", "text/html; charset=utf-8"),
        ("Mixed.PnG", "image/png"),
        ("noext", "application/octet-stream"),
        ("a.unknownext", "application/octet-stream"),
    ];
    for (name, _) in table {
        site.write(&format!("types/{name}"), "x");
    }
    let server = site.start();
    for (name, content_type) in table {
        let response = get(&server, &format!("/static/types/{name}"), &[]);
        assert_eq!(response.status, 200, "{name}");
        assert_eq!(
            response.header("Content-Type"),
            Some(content_type),
            "{name}"
        );
        assert_eq!(
            response.header("X-Content-Type-Options"),
            Some("nosniff"),
            "{name}"
        );
        assert_eq!(response.header("Accept-Ranges"), Some("bytes"), "{name}");
    }
}

#[test]
fn get_and_head_serve_the_file_with_validators() {
    let site = Site::new();
    let server = site.start();
    let (response, _) = request(&server, "GET", "/static/hello.txt", &[]);
    assert_eq!(response.status_line(), "HTTP/1.1 200 OK");
    assert_eq!(response.body_str(), "hello, static world\n");
    assert_eq!(response.header("Content-Length"), Some("20"));
    let etag = response.header("ETag").expect("ETag");
    assert!(
        etag.starts_with("\"14-") && etag.ends_with('"') && !etag.starts_with("W/"),
        "{etag}"
    );
    let last_modified = response.header("Last-Modified").expect("Last-Modified");
    assert!(
        last_modified.ends_with(" GMT") && last_modified.len() == 29,
        "{last_modified}"
    );

    let (head, raw) = request(&server, "HEAD", "/static/hello.txt", &[]);
    assert_eq!(head.status, 200);
    assert_eq!(head.header("Content-Length"), Some("20"));
    assert_eq!(head.header("ETag"), Some(etag));
    assert_eq!(head.header("Last-Modified"), Some(last_modified));
    assert_eq!(head.header("Content-Type"), response.header("Content-Type"));
    assert_eq!(
        raw.len(),
        head.raw_head.len(),
        "HEAD response carried a body"
    );
}

#[test]
fn other_methods_get_405_with_allow() {
    let site = Site::new();
    let server = site.start();
    for method in ["POST", "PUT", "DELETE"] {
        let raw = format!(
            "{method} /static/hello.txt HTTP/1.1\r\nHost: test\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        let response = parse_response(&send_raw(server.addr(), raw.as_bytes()));
        assert_eq!(response.status, 405, "{method}");
        let allow = response.header("Allow").unwrap_or_default().to_owned();
        assert!(
            allow.contains("GET") && allow.contains("HEAD"),
            "{method}: Allow {allow:?}"
        );
    }
}

#[test]
fn directories_redirect_then_serve_their_index() {
    let site = Site::new();
    let server = site.start();
    let response = get(&server, "/static/docs", &[]);
    assert_eq!(response.status, 301);
    assert_eq!(response.header("Location"), Some("/static/docs/"));
    let response = get(&server, "/static/docs?v=1&x=%20", &[]);
    assert_eq!(response.status, 301);
    assert_eq!(response.header("Location"), Some("/static/docs/?v=1&x=%20"));

    let response = get(&server, "/static/docs/", &[]);
    assert_eq!(response.status, 200);
    assert_eq!(
        response.header("Content-Type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(response.body_str(), "<h1>docs index</h1>");

    let response = get(&server, "/static/", &[]);
    assert_eq!(response.status, 200);
    assert_eq!(response.body_str(), "<h1>root index</h1>");

    // No listings: a directory without index.html is 404; a file with a trailing slash too.
    assert_eq!(get(&server, "/static/noindex/", &[]).status, 404);
    assert_eq!(get(&server, "/static/hello.txt/", &[]).status, 404);
    assert_eq!(get(&server, "/static/missing.txt", &[]).status, 404);
}

#[test]
fn missing_static_root_answers_404_and_the_server_still_runs() {
    let tmp = TempDir::new("no-static");
    let missing = tmp.join("does-not-exist");
    let server = Server::start(&["--static-dir", missing.to_str().unwrap()]);
    let response = get(&server, "/static/hello.txt", &[]);
    assert_eq!(response.status, 404);
    assert!(!response.body_str().contains("does-not-exist"));
}

#[test]
fn the_repository_static_folder_serves_the_demo_site() {
    let server = Server::start(&[]);
    let page = get(&server, "/static/test.html", &[]);
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("Content-Type"),
        Some("text/html; charset=utf-8")
    );
    let html = page.body_str();
    for (link, content_type) in [
        ("/static/style.css", "text/css; charset=utf-8"),
        ("/static/app.js", "text/javascript; charset=utf-8"),
        ("/static/logo.png", "image/png"),
    ] {
        assert!(html.contains(link), "test.html does not link {link}");
        let response = get(&server, link, &[]);
        assert_eq!(response.status, 200, "{link}");
        assert_eq!(
            response.header("Content-Type"),
            Some(content_type),
            "{link}"
        );
    }
    assert!(html.contains("id=\"out\""));
    assert!(
        get(&server, "/static/app.js", &[])
            .body_str()
            .contains("JS-RAN")
    );
    let logo = get(&server, "/static/logo.png", &[]);
    assert!(logo.body.starts_with(b"\x89PNG\r\n\x1a\n"));
    let index = get(&server, "/static/", &[]);
    assert_eq!(index.status, 200);
    assert!(index.body_str().contains("test.html"));
}

// ---------------------------------------------------------------------------------------------------------
// Validators
// ---------------------------------------------------------------------------------------------------------

#[test]
fn conditional_requests_give_304_per_rfc_9110_precedence() {
    let site = Site::new();
    let server = site.start();
    let first = get(&server, "/static/hello.txt", &[]);
    let etag = first.header("ETag").unwrap().to_owned();
    let last_modified = first.header("Last-Modified").unwrap().to_owned();
    let weak = format!("W/{etag}");
    let list = format!("\"nope\", {etag}");
    let long_ago = "Sun, 06 Nov 1994 08:49:37 GMT";
    let far_future = "Fri, 31 Dec 9999 23:59:59 GMT";
    let table: &[(&[(&str, &str)], u16)] = &[
        (&[("If-None-Match", &etag)], 304),
        (&[("If-None-Match", &weak)], 304),
        (&[("If-None-Match", &list)], 304),
        (&[("If-None-Match", "*")], 304),
        (&[("If-None-Match", "\"nope\"")], 200),
        (&[("If-Modified-Since", &last_modified)], 304),
        (&[("If-Modified-Since", far_future)], 304),
        (&[("If-Modified-Since", long_ago)], 200),
        (&[("If-Modified-Since", "not a date")], 200),
        // If-None-Match wins over If-Modified-Since, both ways.
        (
            &[
                ("If-None-Match", "\"nope\""),
                ("If-Modified-Since", far_future),
            ],
            200,
        ),
        (
            &[("If-None-Match", &etag), ("If-Modified-Since", long_ago)],
            304,
        ),
        // 304 even with a Range: ranges do not apply to a 304.
        (&[("If-None-Match", &etag), ("Range", "bytes=0-1")], 304),
        (&[("If-Match", "\"nope\"")], 412),
        (&[("If-Match", &etag)], 200),
    ];
    for &(headers, status) in table {
        let (response, raw) = request(&server, "GET", "/static/hello.txt", headers);
        assert_eq!(response.status, status, "{headers:?}");
        if status == 304 {
            assert_eq!(
                raw.len(),
                response.raw_head.len(),
                "304 carried a body: {headers:?}"
            );
            assert_eq!(response.header("ETag"), Some(etag.as_str()));
            assert_eq!(
                response.header("Last-Modified"),
                Some(last_modified.as_str())
            );
        }
    }
    // Obsolete date forms are accepted too (RFC 9110 §5.6.7).
    for date in ["Friday, 31-Dec-99 23:59:59 GMT", "Fri Dec 31 23:59:59 9999"] {
        let response = get(
            &server,
            "/static/alphabet.txt",
            &[("If-Modified-Since", date)],
        );
        let expected = if date.contains("-99 ") { 200 } else { 304 };
        assert_eq!(response.status, expected, "{date}");
    }
}

#[test]
fn etag_and_last_modified_change_when_the_file_does() {
    let site = Site::new();
    let server = site.start();
    let before = get(&server, "/static/hello.txt", &[]);
    let etag = before.header("ETag").unwrap().to_owned();
    site.write("hello.txt", "a different, longer body\n");
    let after = get(&server, "/static/hello.txt", &[("If-None-Match", &etag)]);
    assert_eq!(after.status, 200);
    assert_ne!(after.header("ETag"), Some(etag.as_str()));
    assert_eq!(after.body_str(), "a different, longer body\n");
}

// ---------------------------------------------------------------------------------------------------------
// Ranges
// ---------------------------------------------------------------------------------------------------------

#[test]
fn single_ranges_give_206_and_unsatisfiable_ones_416() {
    let site = Site::new();
    let server = site.start();
    for (range, status, body, content_range) in [
        ("bytes=0-4", 206, "abcde", Some("bytes 0-4/26")),
        ("bytes=10-10", 206, "k", Some("bytes 10-10/26")),
        ("bytes=23-", 206, "xyz", Some("bytes 23-25/26")),
        ("bytes=-3", 206, "xyz", Some("bytes 23-25/26")),
        ("bytes=20-1000", 206, "uvwxyz", Some("bytes 20-25/26")),
        (
            "bytes=-1000",
            206,
            "abcdefghijklmnopqrstuvwxyz",
            Some("bytes 0-25/26"),
        ),
        ("bytes=26-", 416, "", Some("bytes */26")),
        ("bytes=100-200", 416, "", Some("bytes */26")),
        ("bytes=-0", 416, "", Some("bytes */26")),
        // Invalid or several ranges: the full 200.
        ("bytes=5-1", 200, "abcdefghijklmnopqrstuvwxyz", None),
        ("bytes=x-y", 200, "abcdefghijklmnopqrstuvwxyz", None),
        ("pages=1-2", 200, "abcdefghijklmnopqrstuvwxyz", None),
        ("bytes=0-1,4-5", 200, "abcdefghijklmnopqrstuvwxyz", None),
    ] {
        let response = get(&server, "/static/alphabet.txt", &[("Range", range)]);
        assert_eq!(response.status, status, "{range}");
        assert_eq!(response.header("Content-Range"), content_range, "{range}");
        assert_eq!(response.header("Accept-Ranges"), Some("bytes"), "{range}");
        if status != 416 {
            assert_eq!(response.body_str(), body, "{range}");
            assert_eq!(
                response.header("Content-Length"),
                Some(body.len().to_string().as_str()),
                "{range}"
            );
        }
    }
}

#[test]
fn if_range_applies_the_range_only_while_the_validator_matches() {
    let site = Site::new();
    let server = site.start();
    let first = get(&server, "/static/alphabet.txt", &[]);
    let etag = first.header("ETag").unwrap().to_owned();
    let last_modified = first.header("Last-Modified").unwrap().to_owned();
    let weak = format!("W/{etag}");
    for (if_range, status) in [
        (etag.as_str(), 206),
        (last_modified.as_str(), 206),
        ("\"stale\"", 200),
        (weak.as_str(), 200),
        ("Sun, 06 Nov 1994 08:49:37 GMT", 200),
        ("garbage", 200),
    ] {
        let response = get(
            &server,
            "/static/alphabet.txt",
            &[("Range", "bytes=0-1"), ("If-Range", if_range)],
        );
        assert_eq!(response.status, status, "If-Range: {if_range}");
    }
}

// ---------------------------------------------------------------------------------------------------------
// Precompressed sidecars
// ---------------------------------------------------------------------------------------------------------

#[test]
fn precompressed_sidecars_are_chosen_by_accept_encoding() {
    let site = Site::new();
    let server = site.start();
    let mut etags = Vec::new();
    for (accept, encoding, body) in [
        (None, None, "console.log('identity');"),
        (Some("identity"), None, "console.log('identity');"),
        (Some("gzip"), Some("gzip"), "GZIP-BYTES"),
        (Some("gzip, deflate, br"), Some("br"), "BROTLI-BYTES"),
        (Some("br;q=0.5, gzip;q=0.9"), Some("gzip"), "GZIP-BYTES"),
        (Some("br;q=0, gzip;q=0"), None, "console.log('identity');"),
        (Some("*;q=0"), None, "console.log('identity');"),
    ] {
        let headers: Vec<(&str, &str)> =
            accept.map(|a| ("Accept-Encoding", a)).into_iter().collect();
        let response = get(&server, "/static/app.js", &headers);
        assert_eq!(response.status, 200, "{accept:?}");
        assert_eq!(response.header("Content-Encoding"), encoding, "{accept:?}");
        assert_eq!(
            response.header("Vary"),
            Some("Accept-Encoding"),
            "{accept:?}"
        );
        assert_eq!(
            response.header("Content-Type"),
            Some("text/javascript; charset=utf-8"),
            "{accept:?}"
        );
        assert_eq!(response.body_str(), body, "{accept:?}");
        let etag = response.header("ETag").unwrap().to_owned();
        if !etags.iter().any(|(e, enc)| *e == etag && *enc == encoding) {
            etags.push((etag, encoding));
        }
    }
    // One ETag per representation.
    assert_eq!(etags.len(), 3, "{etags:?}");
    // A file without sidecars has no Vary.
    let plain = get(
        &server,
        "/static/hello.txt",
        &[("Accept-Encoding", "gzip, br")],
    );
    assert_eq!(plain.header("Vary"), None);
    assert_eq!(plain.header("Content-Encoding"), None);
}

// ---------------------------------------------------------------------------------------------------------
// Streaming
// ---------------------------------------------------------------------------------------------------------

/// Size of the sparse file served in the streaming tests: at least 256 MiB, far more than the
/// server's memory bound below, so a file read whole into memory fails the test.
const BIG: u64 = 256 * 1024 * 1024;
/// The server's resident memory must stay under this while serving [`BIG`].
const RSS_LIMIT_KIB: u64 = 64 * 1024;

/// A sparse `BIG`-byte file with markers at both ends, so offsets can be checked.
fn big_file(site: &Site) {
    let path = site.root.join("big.bin");
    let mut file = std::fs::File::create(&path).unwrap();
    file.set_len(BIG).unwrap();
    file.write_all(b"BEGIN").unwrap();
    use std::io::{Seek, SeekFrom};
    file.seek(SeekFrom::Start(BIG - 3)).unwrap();
    file.write_all(b"END").unwrap();
}

/// The server's resident set size in KiB, from `/proc/PID/status`.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/PID/status")
}

/// Opens `GET target` and reads the response head, leaving the body on the socket.
fn start_download(server: &Server, target: &str) -> (std::net::TcpStream, Vec<u8>) {
    let mut stream = connect(server.addr());
    stream
        .write_all(format!("GET {target} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes())
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !contains(&got, "\r\n\r\n") {
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0, "closed before the head");
        got.extend_from_slice(&buf[..n]);
    }
    let end = got.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let head = String::from_utf8_lossy(&got[..end]).into_owned();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains(&format!("content-length: {BIG}\r\n")),
        "{head}"
    );
    (stream, got[end..].to_vec())
}

#[test]
fn a_large_file_to_a_slow_client_keeps_rss_flat() {
    let site = Site::new();
    big_file(&site);
    let server = site.start();
    let pid = server.pid();
    let baseline = rss_kib(pid);
    let (mut stream, mut first) = start_download(&server, "/static/big.bin");
    let mut total = first.len() as u64;
    let mut max_rss = baseline;
    let mut buf = vec![0u8; 64 * 1024];
    let started = Instant::now();
    let mut tail = Vec::new();
    // Slow for the first 2 seconds (the server's socket buffer stays full, so a server that buffered the file
    // would have to hold it), then as fast as possible.
    while total < BIG {
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0, "connection closed after {total} of {BIG} bytes");
        if first.len() < 5 {
            first.extend_from_slice(&buf[..n.min(5)]);
        }
        total += n as u64;
        tail.extend_from_slice(&buf[..n]);
        if tail.len() > 16 {
            tail.drain(..tail.len() - 16);
        }
        if started.elapsed() < Duration::from_secs(2) {
            std::thread::sleep(Duration::from_millis(5));
            max_rss = max_rss.max(rss_kib(pid));
        } else if total % (16 * 1024 * 1024) < n as u64 {
            max_rss = max_rss.max(rss_kib(pid));
        }
    }
    assert_eq!(total, BIG);
    assert!(
        first.starts_with(b"BEGIN"),
        "first bytes {:?}",
        &first[..first.len().min(5)]
    );
    assert!(tail.ends_with(b"END"));
    assert!(
        max_rss < RSS_LIMIT_KIB,
        "server RSS reached {max_rss} KiB (baseline {baseline} KiB) while serving {BIG} bytes"
    );
}

#[test]
fn ranges_into_a_large_file_start_at_the_right_offset() {
    let site = Site::new();
    big_file(&site);
    let server = site.start();
    let last = BIG - 1;
    let range = format!("bytes={}-", BIG - 3);
    let response = get(&server, "/static/big.bin", &[("Range", &range)]);
    assert_eq!(response.status, 206);
    assert_eq!(response.body, b"END");
    assert_eq!(
        response.header("Content-Range"),
        Some(format!("bytes {}-{last}/{BIG}", BIG - 3).as_str())
    );
}

#[test]
fn a_client_leaving_mid_file_frees_its_worker() {
    let site = Site::new();
    big_file(&site);
    // Fewer workers than abandoned downloads: a worker stuck on a dead client would starve the last request.
    let server = Server::start(&[
        "--static-dir",
        site.root.to_str().unwrap(),
        "--threads",
        "2",
    ]);
    for _ in 0..4 {
        let (mut stream, _) = start_download(&server, "/static/big.bin");
        let mut buf = vec![0u8; 256 * 1024];
        let mut read = 0;
        while read < 1024 * 1024 {
            read += stream.read(&mut buf).unwrap();
        }
        drop(stream);
    }
    let started = Instant::now();
    let response = get(&server, "/static/hello.txt", &[]);
    assert_eq!(response.status, 200);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the next request waited {:?}",
        started.elapsed()
    );
    // And again on a kept-alive connection, to be sure the server is healthy.
    let mut conn = server.connect();
    conn.send(b"GET /static/alphabet.txt HTTP/1.1\r\nHost: test\r\n\r\n");
    assert_eq!(
        conn.read_response().unwrap().body_str(),
        "abcdefghijklmnopqrstuvwxyz"
    );
}
