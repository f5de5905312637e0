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
    // Resumed over many reads (pieces of 1 to 32 bytes, the size drawn from the input's last byte), it
    // says and decodes the same.
    let step = 1 + usize::from(data.last().copied().unwrap_or(0) % 32);
    let (mut progress, mut resumed) = (ChunkedProgress::default(), Vec::new());
    let mut end = 0;
    let result = loop {
        end = (end + step).min(data.len());
        match decode_chunked_resume(&data[..end], MAX, &mut progress, &mut resumed) {
            Ok(None) if end < data.len() => {}
            done => break done,
        }
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

/// A static root for [`static_path`], built once per process under the temp dir: files, a directory with an
/// index, hidden files, symlinks that stay inside and ones that lead out, and secrets beside the root.
pub struct StaticFixture {
    /// The temp folder holding `root/` and the secrets; [`remove_static_fixture`] deletes it.
    pub base: std::path::PathBuf,
    /// The root handed to the resolver: beneath its descriptor where the kernel has openat2.
    pub root: plugd::static_files::root::Root,
    /// The same root, always resolved by path (as without openat2).
    pub root_by_path: plugd::static_files::root::Root,
}

/// Content of every file the resolver must never serve (outside the root, or hidden).
const FORBIDDEN: &[u8] = b"FORBIDDEN";

fn static_fixture() -> &'static StaticFixture {
    use std::os::unix::fs::symlink;
    use std::path::Path;
    static FIXTURE: std::sync::OnceLock<StaticFixture> = std::sync::OnceLock::new();
    FIXTURE.get_or_init(|| {
        let base = std::env::temp_dir().join(format!("plugd-fuzz-static-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let root = base.join("root");
        let write = |path: &Path, content: &[u8]| {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, content).unwrap();
        };
        write(&root.join("a.txt"), b"A");
        write(&root.join("index.html"), b"ROOT");
        write(&root.join("dir/b.txt"), b"B");
        write(&root.join("dir/index.html"), b"INDEX");
        write(&root.join("dir/sub/c.txt"), b"C");
        write(&root.join("sp ace/u.txt"), b"U");
        write(&root.join(".env"), FORBIDDEN);
        write(&root.join(".git/config"), FORBIDDEN);
        write(&root.join("dir/.hidden"), FORBIDDEN);
        write(&base.join("secret.txt"), FORBIDDEN);
        write(&base.join("root2/index.html"), FORBIDDEN); // shares the root's name as a prefix
        write(&base.join("outside/index.html"), FORBIDDEN);
        symlink("a.txt", root.join("link_in")).unwrap();
        symlink("dir", root.join("link_dir")).unwrap();
        symlink("../secret.txt", root.join("link_out")).unwrap();
        symlink(base.join("outside"), root.join("link_out_dir")).unwrap();
        symlink("../root2", root.join("link_sibling")).unwrap();
        symlink(".env", root.join("link_hidden")).unwrap();
        symlink("/", root.join("link_slash")).unwrap();
        symlink("missing", root.join("dangling")).unwrap();
        symlink("../../secret.txt", root.join("dir/up2")).unwrap();
        std::fs::create_dir_all(root.join("dir_out_index")).unwrap();
        symlink("../../secret.txt", root.join("dir_out_index/index.html")).unwrap();
        StaticFixture {
            base,
            root: plugd::static_files::root::Root::open(&root).unwrap(),
            root_by_path: plugd::static_files::root::Root::open_by_path(&root).unwrap(),
        }
    })
}

/// Deletes this process's [`static_path`] fixture, if one was built (the corpus test calls it at the end).
pub fn remove_static_fixture() {
    let base = std::env::temp_dir().join(format!("plugd-fuzz-static-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(base);
}

/// The first byte says whether the request path ended in `/` (bit 0) and whether the root is resolved
/// by path (bit 1, the way without openat2); the rest (UTF-8, as request paths are) is the
/// raw path below `/static/`. Never panics; anything served is a regular file under the root (by its
/// canonical path and by the open descriptor's own path), with no hidden component, and is never one of the
/// forbidden files; a decoded `.`/`..` segment, NUL or backslash is always a 400.
pub fn static_path(data: &[u8]) {
    use plugd::static_files::resolve::{Refusal, Resolved, resolve};
    use std::io::Read;
    use std::os::fd::AsRawFd;
    use std::path::Component;

    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let Ok(raw) = std::str::from_utf8(rest) else {
        return;
    };
    let fixture = static_fixture();
    let root = if flags & 2 == 2 {
        &fixture.root_by_path
    } else {
        &fixture.root
    };
    let outcome = resolve(root, raw, flags & 1 == 1);

    let under_root = |path: &std::path::Path| {
        path.strip_prefix(root.path()).is_ok_and(|below| {
            below.components().all(
                |c| matches!(c, Component::Normal(name) if !name.as_encoded_bytes().starts_with(b".")),
            )
        })
    };
    if let Some(decoded) = plugd::http::percent::decode(raw.as_bytes()) {
        let dot_segment = decoded
            .split(|&b| b == b'/')
            .any(|s| s == b"." || s == b"..");
        if dot_segment || decoded.contains(&0) || decoded.contains(&b'\\') {
            assert!(
                matches!(outcome, Err(Refusal::BadRequest)),
                "{raw:?}: {outcome:?}"
            );
        }
    }
    if let Ok(Resolved::File(mut found)) = outcome {
        let path = found.path(root);
        assert!(under_root(&path), "{raw:?} -> {path:?}");
        assert!(found.metadata.is_file(), "{raw:?} -> not a regular file");
        let opened = std::fs::read_link(format!("/proc/self/fd/{}", found.file.as_raw_fd()))
            .expect("descriptor path");
        assert!(under_root(&opened), "{raw:?} opened {opened:?}");
        let mut content = Vec::new();
        found.file.read_to_end(&mut content).unwrap();
        assert_ne!(content, FORBIDDEN, "{raw:?} served a forbidden file");
    }
}
