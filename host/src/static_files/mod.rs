//! `/static/...` -> files under the static root, as nginx serves them.
//!
//! [`StaticFiles`] is a [`Handler`] registered on `GET /static/{*path}`; it receives the still
//! percent-encoded rest of the path as the `path` parameter. The work is split by concern:
//! [`resolve`] maps the path to an open file safely (beneath the [`root`]'s descriptor, through
//! [`openat`]), [`mime`] names its type, [`encoding`] picks a precompressed sidecar, [`conditional`] answers 304/412 from the validators, [`range`] picks the bytes.
//! File contents always leave as [`Body::File`], which the connection streams with `sendfile`: nothing
//! here reads a file into memory.

pub mod conditional;
pub mod encoding;
pub mod mime;
pub mod openat;
pub mod range;
pub mod resolve;
pub mod root;

use std::borrow::Cow;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::handler::{Body, Field, Handler, Request, Response};
use crate::http::RequestHead;

use conditional::{Precondition, Validators};
use encoding::{Coding, Preferences};
use range::RangeOutcome;
use resolve::{FoundFile, Refusal, Resolved};
use root::Root;

/// The route parameter holding the path below the mount point.
pub const PATH_PARAM: &str = "path";

/// Serves the files under one root directory.
#[derive(Debug)]
pub struct StaticFiles {
    /// The root, or `None` when it was missing at startup (then every request is 404, so a server
    /// started without its static folder still serves its plugins).
    root: Option<Root>,
}

impl StaticFiles {
    /// Serves `root`, canonicalized once here. A missing root (or one that is not a directory) is logged
    /// as a warning and answered with 404s.
    pub fn new(root: &Path) -> StaticFiles {
        StaticFiles::serving(root, Root::open(root))
    }

    /// Serves `root` always resolving paths as on a kernel without `openat2` (see [`Root::open_by_path`]).
    #[cfg(test)]
    fn by_path(root: &Path) -> StaticFiles {
        StaticFiles::serving(root, Root::open_by_path(root))
    }

    fn serving(path: &Path, root: std::io::Result<Root>) -> StaticFiles {
        let root = match root {
            Ok(root) => Some(root),
            Err(error) => {
                log::warn!(
                    "static dir {}: {error}; /static/ will answer 404",
                    path.display()
                );
                None
            }
        };
        StaticFiles { root }
    }

    /// The canonical root being served, if it existed at startup.
    pub fn root(&self) -> Option<&Path> {
        self.root.as_ref().map(Root::path)
    }
}

impl Handler for StaticFiles {
    fn handle(&self, req: &Request<'_>) -> Response {
        let head = req.head;
        // The router only sends GET and HEAD here; this guards any other registration.
        if head.method != "GET" && head.method != "HEAD" {
            return Response::text(405, "method not allowed\n").with_header("Allow", "GET, HEAD");
        }
        let Some(root) = &self.root else {
            return not_found();
        };
        // The `{*path}` capture; failing that, the last capture, which is where a `{*rest}` always sits.
        let raw = req
            .param(PATH_PARAM)
            .or_else(|| req.params.last().map(|&(_, value)| value))
            .unwrap_or("");
        match resolve::resolve(root, raw, head.path.ends_with('/')) {
            Ok(Resolved::File(found)) => serve(root, head, *found),
            Ok(Resolved::AddSlash) => add_slash(head),
            Err(Refusal::BadRequest) => Response::text(400, "bad request\n"),
            Err(Refusal::NotFound) => not_found(),
        }
    }
}

fn not_found() -> Response {
    Response::text(404, "not found\n")
}

/// 301 to the request's own path plus `/`, query kept.
fn add_slash(head: &RequestHead<'_>) -> Response {
    // A path starting with `//` would make the Location protocol-relative (another host): keep one slash.
    let mut location = format!("/{}/", head.path.trim_start_matches('/'));
    if let Some(query) = head.query {
        location.push('?');
        location.push_str(query);
    }
    Response::text(301, "moved permanently\n").with_header("Location", location)
}

/// One stored representation of the requested file: the file itself or a precompressed sidecar.
struct Representation {
    file: std::fs::File,
    metadata: std::fs::Metadata,
    /// `None` for the file itself.
    coding: Option<Coding>,
}

/// Picks the representation to send: the sidecar of the best coding the client accepts, else the file
/// itself. Also tells whether the response varies on `Accept-Encoding` (RFC 9110 §12.5.5).
///
/// Only the sidecars of accepted codings are looked for, best first, and the first found is served: a
/// request without `Accept-Encoding` (every benchmark client, most scripts) costs no probe at all, where
/// nginx's `gzip_static` with `gzip_vary` probes the `.gz` on every request. A sidecar found means the
/// response varies. When none is found, the response varies unless every coding was looked for: a
/// refused coding's sidecar may exist, and then a request accepting it would get another representation,
/// so the identity response says `Vary: Accept-Encoding` rather than let a shared cache hand it to every
/// client. Only a request accepting both codings learns that a file has no sidecar, and gets no `Vary`.
fn choose_representation(
    root: &Root,
    head: &RequestHead<'_>,
    found: FoundFile,
) -> (Representation, bool) {
    let preferences = Preferences::of(head.field_values("Accept-Encoding"));
    for &coding in preferences.accepted() {
        if let Some((file, metadata)) = resolve::open_sidecar(root, &found, coding.extension()) {
            let sidecar = Representation {
                file,
                metadata,
                coding: Some(coding),
            };
            return (sidecar, true);
        }
    }
    let identity = Representation {
        file: found.file,
        metadata: found.metadata,
        coding: None,
    };
    (identity, preferences.refuses_any())
}

/// A header field for a [`Response`].
fn field(name: &'static str, value: impl Into<Cow<'static, str>>) -> Field {
    (name.into(), value.into())
}

/// Answers for a regular file: 200, 206, 304, 412 or 416.
fn serve(root: &Root, head: &RequestHead<'_>, found: FoundFile) -> Response {
    let content_type = mime::content_type(&found.requested_name);
    let (repr, varies) = choose_representation(root, head, found);
    let size = repr.metadata.len();
    let validators = Validators::new(
        size,
        repr.metadata.modified().unwrap_or(UNIX_EPOCH),
        SystemTime::now(),
        repr.coding.map(Coding::token),
    );
    // Sent on 304 too (RFC 9110 §15.4.5: the fields a 200 would carry that describe the representation).
    let mut headers = vec![
        field("ETag", validators.etag().to_owned()),
        field("Last-Modified", validators.last_modified()),
    ];
    if varies {
        headers.push(field("Vary", "Accept-Encoding"));
    }
    match conditional::evaluate(head, &validators) {
        Precondition::Proceed => {}
        Precondition::NotModified => {
            return Response {
                status: 304,
                headers: headers.into(),
                body: Body::Empty,
            };
        }
        Precondition::Failed => return Response::text(412, "precondition failed\n"),
    }

    let outcome = requested_range(head, &validators, size);
    if outcome == RangeOutcome::Unsatisfiable {
        let mut response = Response::text(416, "range not satisfiable\n")
            .with_header("Content-Range", format!("bytes */{size}"))
            .with_header("Accept-Ranges", "bytes");
        response.headers.extend(headers);
        return response;
    }
    headers.push(field("Content-Type", content_type));
    headers.push(field("Accept-Ranges", "bytes"));
    headers.push(field("X-Content-Type-Options", "nosniff"));
    if let Some(coding) = repr.coding {
        headers.push(field("Content-Encoding", coding.token()));
    }
    // A satisfiable range is 206 even when it covers the whole file: `bytes=0-` is how download managers
    // probe for range support.
    let (status, offset, len) = match outcome {
        RangeOutcome::Partial { first, last } => {
            headers.push(field(
                "Content-Range",
                format!("bytes {first}-{last}/{size}"),
            ));
            (206, first, last - first + 1)
        }
        RangeOutcome::Full | RangeOutcome::Unsatisfiable => (200, 0, size),
    };
    Response {
        status,
        headers: headers.into(),
        body: Body::File {
            file: repr.file,
            offset,
            len,
        },
    }
}

/// The range to send, after RFC 9110 §14.2's rules: only for GET ("GET is the only method for which range
/// handling is defined", so HEAD gets the 200 head), only with exactly one Range field, and only if
/// `If-Range`, when present, still matches.
fn requested_range(head: &RequestHead<'_>, validators: &Validators, size: u64) -> RangeOutcome {
    if head.method != "GET" {
        return RangeOutcome::Full;
    }
    let mut ranges = head.field_values("Range");
    let (Some(value), None) = (ranges.next(), ranges.next()) else {
        return RangeOutcome::Full;
    };
    if let Some(if_range) = head.header("If-Range") {
        if !conditional::if_range_matches(if_range, validators) {
            return RangeOutcome::Full;
        }
    }
    range::evaluate(value, size)
}

/// The end-to-end tests' temporary folders, one definition for both crates (std only).
#[cfg(test)]
#[path = "../../../tests/support/temp_dir.rs"]
mod temp_dir;

#[cfg(test)]
pub(crate) mod test_support {
    use crate::http::{BodyFraming, Header, RequestHead, Version};

    /// A request head built by hand, `GET /static/...`-shaped.
    pub fn head<'a>(method: &'a str, headers: &[(&'a str, &'a str)]) -> RequestHead<'a> {
        RequestHead {
            method,
            target: "/static/x",
            path: "/static/x",
            query: None,
            version: Version::Http11,
            headers: headers
                .iter()
                .map(|&(name, value)| Header {
                    name,
                    value: value.as_bytes(),
                })
                .collect(),
            body: BodyFraming::None,
            keep_alive: true,
            expect_continue: false,
        }
    }

    pub use super::temp_dir::TempDir;
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::test_support::{TempDir, head};
    use super::*;
    use crate::http::date::format_http_date;

    /// Root with `hello.txt` (26 bytes), `docs/index.html`, `app.js` + `app.js.gz` + `app.js.br`.
    fn fixture() -> (TempDir, StaticFiles) {
        let tmp = TempDir::new("static");
        let root = tmp.join("root");
        std::fs::create_dir_all(root.join("docs")).unwrap();
        std::fs::write(root.join("hello.txt"), "abcdefghijklmnopqrstuvwxyz").unwrap();
        std::fs::write(root.join("docs/index.html"), "<p>docs</p>").unwrap();
        std::fs::write(root.join("app.js"), "console.log('plain')").unwrap();
        std::fs::write(root.join("app.js.gz"), "GZ").unwrap();
        std::fs::write(root.join("app.js.br"), "BROTLI").unwrap();
        let files = StaticFiles::new(&root);
        (tmp, files)
    }

    struct Call<'a> {
        method: &'a str,
        path: &'a str,
        query: Option<&'a str>,
        headers: Vec<(&'a str, &'a str)>,
    }

    fn get(path: &str) -> Call<'_> {
        Call {
            method: "GET",
            path,
            query: None,
            headers: Vec::new(),
        }
    }

    impl<'a> Call<'a> {
        fn header(mut self, name: &'a str, value: &'a str) -> Self {
            self.headers.push((name, value));
            self
        }

        fn method(mut self, method: &'a str) -> Self {
            self.method = method;
            self
        }

        fn send(self, files: &StaticFiles) -> Response {
            let mut head = head(self.method, &self.headers);
            head.path = self.path;
            head.query = self.query;
            let rest = self.path.strip_prefix("/static/").unwrap_or("");
            let params = [(PATH_PARAM, rest)];
            let req = Request {
                head: &head,
                params: &params,
                body: b"",
                peer: "127.0.0.1:1".parse().unwrap(),
                upload: None,
            };
            files.handle(&req)
        }
    }

    fn header<'r>(response: &'r Response, name: &str) -> Option<&'r str> {
        response
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// The bytes the body would put on the wire.
    fn body(response: Response) -> Vec<u8> {
        use std::io::{Read, Seek, SeekFrom};
        match response.body {
            Body::Empty => Vec::new(),
            Body::Bytes(bytes) => bytes,
            Body::Static(bytes) => bytes.to_vec(),
            Body::Plugin(bytes) => bytes.as_bytes().to_vec(),
            Body::File {
                mut file,
                offset,
                len,
            } => {
                file.seek(SeekFrom::Start(offset)).unwrap();
                let mut out = Vec::new();
                file.take(len).read_to_end(&mut out).unwrap();
                out
            }
            Body::Stream(_) => unreachable!("static files are never streamed by a plugin"),
        }
    }

    #[test]
    fn serves_a_file_with_type_validators_and_nosniff() {
        let (_tmp, files) = fixture();
        let response = get("/static/hello.txt").send(&files);
        assert_eq!(response.status, 200);
        assert_eq!(
            header(&response, "Content-Type"),
            Some("text/plain; charset=utf-8")
        );
        assert_eq!(header(&response, "Accept-Ranges"), Some("bytes"));
        assert_eq!(header(&response, "X-Content-Type-Options"), Some("nosniff"));
        assert!(header(&response, "ETag").unwrap().starts_with("\"1a-"));
        let mtime = std::fs::metadata(files.root().unwrap().join("hello.txt"))
            .unwrap()
            .modified()
            .unwrap();
        assert_eq!(
            header(&response, "Last-Modified"),
            Some(format_http_date(mtime).as_str())
        );
        // No sidecar was looked for (the request accepts no coding), so whether one exists is unknown.
        assert_eq!(header(&response, "Vary"), Some("Accept-Encoding"));
        assert!(matches!(
            response.body,
            Body::File {
                offset: 0,
                len: 26,
                ..
            }
        ));
        assert_eq!(body(response), b"abcdefghijklmnopqrstuvwxyz");
    }

    #[test]
    fn vary_is_left_out_only_when_every_coding_was_looked_for() {
        let (_tmp, files) = fixture();
        for (accept, vary) in [
            ("gzip, br", None),
            ("*", None),
            ("gzip", Some("Accept-Encoding")),
            ("br;q=0, gzip", Some("Accept-Encoding")),
            ("identity", Some("Accept-Encoding")),
        ] {
            let response = get("/static/hello.txt")
                .header("Accept-Encoding", accept)
                .send(&files);
            assert_eq!(header(&response, "Vary"), vary, "{accept}");
            assert_eq!(header(&response, "Content-Encoding"), None, "{accept}");
        }
    }

    #[test]
    fn the_path_based_way_serves_the_same() {
        // What a kernel without openat2 gets.
        let (_tmp, files) = fixture();
        let by_path = StaticFiles::by_path(files.root().unwrap());
        for call in [
            || get("/static/hello.txt"),
            || get("/static/docs/"),
            || get("/static/app.js").header("Accept-Encoding", "gzip"),
        ] {
            let (fast, slow) = (call().send(&files), call().send(&by_path));
            assert_eq!(fast.status, slow.status);
            assert!(fast.headers.iter().eq(slow.headers.iter()));
            assert_eq!(body(fast), body(slow));
        }
        assert_eq!(get("/static/docs").send(&by_path).status, 301);
        assert_eq!(get("/static/.env").send(&by_path).status, 404);
    }

    #[test]
    fn head_gets_the_get_response() {
        let (_tmp, files) = fixture();
        let response = get("/static/hello.txt").method("HEAD").send(&files);
        assert_eq!(response.status, 200);
        assert_eq!(response.body.len(), 26);
    }

    #[test]
    fn directories_redirect_then_serve_their_index() {
        let (_tmp, files) = fixture();
        let mut call = get("/static/docs");
        call.query = Some("a=1");
        let response = call.send(&files);
        assert_eq!(response.status, 301);
        assert_eq!(header(&response, "Location"), Some("/static/docs/?a=1"));
        let response = get("/static/docs/").send(&files);
        assert_eq!(response.status, 200);
        assert_eq!(
            header(&response, "Content-Type"),
            Some("text/html; charset=utf-8")
        );
        assert_eq!(body(response), b"<p>docs</p>");
        // The root itself has no index.html here.
        assert_eq!(get("/static/").send(&files).status, 404);
    }

    #[test]
    fn the_bare_mount_point_redirects_when_registered_without_a_capture() {
        // Registered also on `GET /static` (no `{*path}` capture), the handler redirects to `/static/`.
        let (_tmp, files) = fixture();
        let mut head = head("GET", &[]);
        head.path = "/static";
        let req = Request {
            head: &head,
            params: &[],
            body: b"",
            peer: "127.0.0.1:1".parse().unwrap(),
            upload: None,
        };
        let response = files.handle(&req);
        assert_eq!(response.status, 301);
        assert_eq!(header(&response, "Location"), Some("/static/"));
    }

    #[test]
    fn redirects_never_point_to_another_host() {
        let mut head = head("GET", &[]);
        head.path = "//evil.example/static/docs";
        let response = add_slash(&head);
        assert_eq!(
            header(&response, "Location"),
            Some("/evil.example/static/docs/")
        );
    }

    #[test]
    fn refusals_say_nothing_about_the_filesystem() {
        let (_tmp, files) = fixture();
        for (path, status) in [
            ("/static/missing.txt", 404),
            ("/static/%2e%2e/secret", 400),
            ("/static/a%00b", 400),
            ("/static/.env", 404),
        ] {
            let response = get(path).send(&files);
            assert_eq!(response.status, status, "{path}");
            let text = String::from_utf8(body(response)).unwrap();
            assert!(text == "not found\n" || text == "bad request\n", "{text:?}");
        }
    }

    #[test]
    fn missing_root_answers_404_without_panicking() {
        let tmp = TempDir::new("static");
        let files = StaticFiles::new(&tmp.join("nope"));
        assert!(files.root().is_none());
        assert_eq!(get("/static/hello.txt").send(&files).status, 404);
        let file_root = tmp.join("file");
        std::fs::write(&file_root, "x").unwrap();
        assert_eq!(
            get("/static/").send(&StaticFiles::new(&file_root)).status,
            404
        );
    }

    #[test]
    fn other_methods_get_405_with_allow() {
        let (_tmp, files) = fixture();
        let response = get("/static/hello.txt").method("POST").send(&files);
        assert_eq!(response.status, 405);
        assert_eq!(header(&response, "Allow"), Some("GET, HEAD"));
    }

    #[test]
    fn not_modified_carries_validators_and_no_body() {
        let (_tmp, files) = fixture();
        let first = get("/static/hello.txt").send(&files);
        let etag = header(&first, "ETag").unwrap().to_owned();
        let last_modified = header(&first, "Last-Modified").unwrap().to_owned();
        for call in [
            get("/static/hello.txt").header("If-None-Match", &etag),
            get("/static/hello.txt").header("If-Modified-Since", &last_modified),
            get("/static/hello.txt")
                .header("If-None-Match", &etag)
                .header("Range", "bytes=0-1"),
        ] {
            let response = call.send(&files);
            assert_eq!(response.status, 304);
            assert_eq!(header(&response, "ETag"), Some(etag.as_str()));
            assert_eq!(
                header(&response, "Last-Modified"),
                Some(last_modified.as_str())
            );
            assert!(matches!(response.body, Body::Empty));
        }
        let stale = get("/static/hello.txt")
            .header("If-None-Match", "\"stale\"")
            .header("If-Modified-Since", &last_modified)
            .send(&files);
        assert_eq!(stale.status, 200);
        let failed = get("/static/hello.txt")
            .header("If-Match", "\"stale\"")
            .send(&files);
        assert_eq!(failed.status, 412);
    }

    #[test]
    fn single_ranges_give_206_with_content_range() {
        let (_tmp, files) = fixture();
        for (range, expected_body, content_range) in [
            ("bytes=0-4", &b"abcde"[..], "bytes 0-4/26"),
            ("bytes=23-", b"xyz", "bytes 23-25/26"),
            ("bytes=-2", b"yz", "bytes 24-25/26"),
            ("bytes=20-999", b"uvwxyz", "bytes 20-25/26"),
            // Download managers probe range support with `bytes=0-`: a 206 even for the whole file.
            ("bytes=0-", b"abcdefghijklmnopqrstuvwxyz", "bytes 0-25/26"),
        ] {
            let response = get("/static/hello.txt").header("Range", range).send(&files);
            assert_eq!(response.status, 206, "{range}");
            assert_eq!(header(&response, "Content-Range"), Some(content_range));
            assert_eq!(body(response), expected_body, "{range}");
        }
    }

    #[test]
    fn unsatisfiable_ranges_give_416_with_the_size() {
        let (_tmp, files) = fixture();
        let response = get("/static/hello.txt")
            .header("Range", "bytes=26-")
            .send(&files);
        assert_eq!(response.status, 416);
        assert_eq!(header(&response, "Content-Range"), Some("bytes */26"));
    }

    #[test]
    fn ignored_ranges_give_the_full_200() {
        let (_tmp, files) = fixture();
        let etag = header(&get("/static/hello.txt").send(&files), "ETag")
            .unwrap()
            .to_owned();
        for call in [
            get("/static/hello.txt").header("Range", "bytes=5-1"),
            get("/static/hello.txt").header("Range", "bytes=0-1,3-4"),
            get("/static/hello.txt").header("Range", "lines=1-2"),
            get("/static/hello.txt")
                .header("Range", "bytes=0-1")
                .header("Range", "bytes=0-1"),
            get("/static/hello.txt")
                .header("Range", "bytes=0-1")
                .method("HEAD"),
        ] {
            let response = call.send(&files);
            assert_eq!(response.status, 200);
            assert_eq!(header(&response, "Content-Range"), None);
            assert_eq!(response.body.len(), 26);
        }
        assert_eq!(status_with_if_range(&files, &format!("W/{etag}")), 200);
        assert_eq!(status_with_if_range(&files, "\"stale\""), 200);
        assert_eq!(
            status_with_if_range(&files, "Sun, 06 Nov 1994 08:49:37 GMT"),
            200
        );
        assert_eq!(status_with_if_range(&files, "not a validator"), 200);
        assert_eq!(status_with_if_range(&files, &etag), 206);
    }

    /// The status of `GET /static/hello.txt` with `Range: bytes=0-1` and the given `If-Range`.
    fn status_with_if_range(files: &StaticFiles, if_range: &str) -> u16 {
        get("/static/hello.txt")
            .header("Range", "bytes=0-1")
            .header("If-Range", if_range)
            .send(files)
            .status
    }

    #[test]
    fn if_range_with_the_exact_last_modified_date_applies_the_range() {
        let (_tmp, files) = fixture();
        let root = files.root().unwrap().to_owned();
        let an_hour_ago = SystemTime::now() - Duration::from_secs(3600);
        std::fs::File::options()
            .write(true)
            .open(root.join("hello.txt"))
            .unwrap()
            .set_modified(an_hour_ago)
            .unwrap();
        let date = format_http_date(an_hour_ago);
        assert_eq!(status_with_if_range(&files, &date), 206);
        let a_second_later = format_http_date(an_hour_ago + Duration::from_secs(1));
        assert_eq!(status_with_if_range(&files, &a_second_later), 200);
    }

    #[test]
    fn precompressed_sidecars_follow_accept_encoding() {
        let (_tmp, files) = fixture();
        let plain = get("/static/app.js").send(&files);
        assert_eq!(header(&plain, "Vary"), Some("Accept-Encoding"));
        assert_eq!(header(&plain, "Content-Encoding"), None);
        let plain_etag = header(&plain, "ETag").unwrap().to_owned();
        assert_eq!(body(plain), b"console.log('plain')");

        let gzip = get("/static/app.js")
            .header("Accept-Encoding", "gzip, br;q=0")
            .send(&files);
        assert_eq!(header(&gzip, "Content-Encoding"), Some("gzip"));
        assert_eq!(header(&gzip, "Vary"), Some("Accept-Encoding"));
        assert_eq!(
            header(&gzip, "Content-Type"),
            Some("text/javascript; charset=utf-8")
        );
        let gzip_etag = header(&gzip, "ETag").unwrap().to_owned();
        assert_eq!(body(gzip), b"GZ");

        let br = get("/static/app.js")
            .header("Accept-Encoding", "gzip, deflate, br")
            .send(&files);
        assert_eq!(header(&br, "Content-Encoding"), Some("br"));
        let br_etag = header(&br, "ETag").unwrap().to_owned();
        assert_eq!(body(br), b"BROTLI");

        assert_ne!(plain_etag, gzip_etag);
        assert_ne!(gzip_etag, br_etag);
        assert_ne!(plain_etag, br_etag);

        let refused = get("/static/app.js")
            .header("Accept-Encoding", "gzip;q=0, br;q=0")
            .send(&files);
        assert_eq!(header(&refused, "Content-Encoding"), None);
        // The 304 for the gzip representation keeps Vary.
        let not_modified = get("/static/app.js")
            .header("Accept-Encoding", "gzip")
            .header("If-None-Match", &gzip_etag)
            .send(&files);
        assert_eq!(not_modified.status, 304);
        assert_eq!(header(&not_modified, "Vary"), Some("Accept-Encoding"));
    }
}
