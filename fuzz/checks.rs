//! The invariants the fuzz targets check, one function per target. Shared, through `#[path]`, with
//! `host/tests/fuzz_corpus.rs`, which replays the corpus and the committed regressions in plain `cargo test`.
#![allow(dead_code)] // each includer uses only some of the checks

use std::sync::Arc;

use plugd::handler::{Handler, Request, Response};
use plugd::http::body::{
    ChunkedProgress, decode_chunked, decode_chunked_resume, write_chunk, write_last_chunk,
};
use plugd::http::{HeadLimits, parse_head};
use plugd::router::{RouteMatch, RouterBuilder};

/// The server's defaults, then limits small enough for the fuzzer to reach 414/431.
const LIMITS: [HeadLimits; 2] = [
    HeadLimits {
        max_request_line: 8 * 1024,
        max_header_bytes: 16 * 1024,
        max_headers: 100,
    },
    HeadLimits {
        max_request_line: 40,
        max_header_bytes: 80,
        max_headers: 4,
    },
];

/// Never panics; a parsed head took at most the input, every shorter prefix needs more bytes, and the
/// head written back out parses to the same head.
pub fn request_head(data: &[u8]) {
    let unlimited = HeadLimits {
        max_request_line: usize::MAX,
        max_header_bytes: usize::MAX,
        max_headers: usize::MAX,
    };
    for limits in &LIMITS {
        let Ok(Some((head, n))) = parse_head(data, limits) else {
            continue;
        };
        assert!(0 < n && n <= data.len());
        let k = data.len() % n;
        assert_eq!(
            parse_head(&data[..k], limits),
            Ok(None),
            "prefix of {k} bytes"
        );
        let mut again = Vec::new();
        head.write_to(&mut again);
        let reparsed = parse_head(&again, &unlimited);
        assert_eq!(reparsed, Ok(Some((head, again.len()))));
    }
}

/// Never panics on any body; a decoded body took at most the input and every shorter prefix needs more;
/// resumed decoding agrees; the input as data, chunked in sizes drawn from its first bytes, decodes back to
/// itself.
pub fn chunked(data: &[u8]) {
    const MAX: u64 = 4096;
    let mut out = Vec::new();
    let whole = decode_chunked(data, MAX, &mut out);
    if let Ok(Some(n)) = whole {
        assert!(n <= data.len() && out.len() as u64 <= MAX);
        let k = data.len() % n;
        assert_eq!(decode_chunked(&data[..k], MAX, &mut Vec::new()), Ok(None));
    }
    // Resumed over two reads, it says and decodes the same.
    let (mut progress, mut resumed) = (ChunkedProgress::default(), Vec::new());
    let first = decode_chunked_resume(&data[..data.len() / 2], MAX, &mut progress, &mut resumed);
    let result = match first {
        Ok(None) => decode_chunked_resume(data, MAX, &mut progress, &mut resumed),
        done => done,
    };
    assert_eq!(result, whole);
    if let Ok(Some(_)) = whole {
        assert_eq!(resumed, out);
    }

    let (sizes, payload) = data.split_at(data.len().min(4));
    let mut encoded = Vec::new();
    let mut rest = payload;
    for size in sizes.iter().map(|&s| usize::from(s) + 1).cycle() {
        if rest.is_empty() {
            break;
        }
        let (chunk, tail) = rest.split_at(size.min(rest.len()));
        write_chunk(&mut encoded, chunk);
        rest = tail;
    }
    write_chunk(&mut encoded, rest);
    write_last_chunk(&mut encoded);
    let mut decoded = Vec::new();
    assert_eq!(
        decode_chunked(&encoded, MAX, &mut decoded),
        Ok(Some(encoded.len()))
    );
    assert_eq!(decoded, payload);
    let k = payload.len() % encoded.len();
    assert_eq!(
        decode_chunked(&encoded[..k], MAX, &mut Vec::new()),
        Ok(None)
    );
}

struct Nop;

impl Handler for Nop {
    fn handle(&self, _: &Request<'_>) -> Response {
        Response::text(200, "")
    }
}

/// Lines `METHOD PATTERN` register routes (refusals are fine), the last line `METHOD PATH` is looked up.
/// Never panics; a found route's method fits the request and its pattern with the params put back in is
/// the path; a 405's Allow never lists the request's method.
pub fn router(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines: Vec<&str> = text.split('\n').collect();
    let Some((method, path)) = lines.pop().and_then(|l| l.split_once(' ')) else {
        return;
    };
    let mut builder = RouterBuilder::new();
    for (i, line) in lines.iter().enumerate() {
        if let Some(route) = line.split_once(' ') {
            let _ = builder.add_all(&[route], &format!("owner{i}"), Arc::new(Nop));
        }
    }
    let router = builder.build();
    match router.lookup(method, path) {
        RouteMatch::Found { route, params } => {
            assert!(route.method == method || (method == "HEAD" && route.method == "GET"));
            let mut values = params.iter().map(|(_, v)| *v);
            let rebuilt: Vec<&str> = route
                .pattern
                .split('/')
                .map(|seg| {
                    if seg.starts_with('{') {
                        values.next().expect("a param per {segment}")
                    } else {
                        seg
                    }
                })
                .collect();
            assert_eq!(rebuilt.join("/"), path);
        }
        RouteMatch::MethodNotAllowed { allow } => {
            assert!(!allow.is_empty());
            assert!(!allow.split(", ").any(|m| m == method), "{allow}");
        }
        RouteMatch::NotFound => {}
    }
}
