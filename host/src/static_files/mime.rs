//! Content-Type from a file name's extension.
//!
//! The table holds what a static site serves; everything else is `application/octet-stream` (RFC 9110
//! §8.3: the safe default, which browsers download rather than render). Text types carry `charset=utf-8`
//! so a browser never guesses the encoding.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

/// What a file with an unknown (or no) extension is served as.
pub const DEFAULT_CONTENT_TYPE: &str = "application/octet-stream";

/// Lower-case extension -> Content-Type.
const TYPES: &[(&str, &str)] = &[
    ("html", "text/html; charset=utf-8"),
    ("htm", "text/html; charset=utf-8"),
    ("css", "text/css; charset=utf-8"),
    ("js", "text/javascript; charset=utf-8"),
    ("mjs", "text/javascript; charset=utf-8"),
    ("json", "application/json; charset=utf-8"),
    ("map", "application/json; charset=utf-8"),
    ("txt", "text/plain; charset=utf-8"),
    ("md", "text/markdown; charset=utf-8"),
    ("csv", "text/csv; charset=utf-8"),
    ("svg", "image/svg+xml; charset=utf-8"),
    ("xml", "application/xml; charset=utf-8"),
    ("png", "image/png"),
    ("jpg", "image/jpeg"),
    ("jpeg", "image/jpeg"),
    ("gif", "image/gif"),
    ("webp", "image/webp"),
    ("avif", "image/avif"),
    ("ico", "image/x-icon"),
    ("woff", "font/woff"),
    ("woff2", "font/woff2"),
    ("ttf", "font/ttf"),
    ("otf", "font/otf"),
    ("wasm", "application/wasm"),
    ("pdf", "application/pdf"),
    ("mp4", "video/mp4"),
    ("webm", "video/webm"),
    ("mp3", "audio/mpeg"),
    ("ogg", "audio/ogg"),
    ("wav", "audio/wav"),
    ("zip", "application/zip"),
    ("gz", "application/gzip"),
];

/// The Content-Type for a file called `name` (only its extension counts, in any letter case).
pub fn content_type(name: &OsStr) -> &'static str {
    let name = name.as_bytes();
    let Some(dot) = name.iter().rposition(|&b| b == b'.') else {
        return DEFAULT_CONTENT_TYPE;
    };
    let extension = &name[dot + 1..];
    TYPES
        .iter()
        .find(|(ext, _)| ext.as_bytes().eq_ignore_ascii_case(extension))
        .map_or(DEFAULT_CONTENT_TYPE, |(_, content_type)| content_type)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(name: &str) -> &'static str {
        content_type(OsStr::new(name))
    }

    #[test]
    fn required_extensions_map_to_their_types() {
        for (name, expected) in [
            ("index.html", "text/html; charset=utf-8"),
            ("style.css", "text/css; charset=utf-8"),
            ("app.js", "text/javascript; charset=utf-8"),
            ("module.mjs", "text/javascript; charset=utf-8"),
            ("data.json", "application/json; charset=utf-8"),
            ("notes.txt", "text/plain; charset=utf-8"),
            ("logo.svg", "image/svg+xml; charset=utf-8"),
            ("feed.xml", "application/xml; charset=utf-8"),
            ("logo.png", "image/png"),
            ("photo.jpg", "image/jpeg"),
            ("photo.jpeg", "image/jpeg"),
            ("anim.gif", "image/gif"),
            ("pic.webp", "image/webp"),
            ("favicon.ico", "image/x-icon"),
            ("font.woff", "font/woff"),
            ("font.woff2", "font/woff2"),
            ("module.wasm", "application/wasm"),
            ("paper.pdf", "application/pdf"),
            ("clip.mp4", "video/mp4"),
            ("clip.webm", "video/webm"),
        ] {
            assert_eq!(of(name), expected, "{name}");
        }
    }

    #[test]
    fn extensions_match_in_any_case() {
        assert_eq!(of("INDEX.HTML"), "text/html; charset=utf-8");
        assert_eq!(of("Photo.JpEg"), "image/jpeg");
        assert_eq!(of("a.WOFF2"), "font/woff2");
    }

    #[test]
    fn unknown_missing_or_partial_extensions_are_octet_stream() {
        for name in [
            "Makefile",
            "archive.tar.xz",
            "binary.exe",
            "trailing.",
            "html",
            "a.htmlx",
            "a.xhtml",
            "a.html.bak",
            "",
        ] {
            assert_eq!(of(name), DEFAULT_CONTENT_TYPE, "{name:?}");
        }
    }

    #[test]
    fn only_the_last_extension_counts() {
        assert_eq!(of("page.txt.html"), "text/html; charset=utf-8");
        assert_eq!(of("bundle.min.js"), "text/javascript; charset=utf-8");
        assert_eq!(of("style.css.gz"), "application/gzip");
    }

    #[test]
    fn non_utf8_names_do_not_panic() {
        assert_eq!(
            content_type(OsStr::from_bytes(b"\xff\xfe.PNG")),
            "image/png"
        );
        assert_eq!(
            content_type(OsStr::from_bytes(b"\xff.\xfe")),
            DEFAULT_CONTENT_TYPE
        );
    }
}
