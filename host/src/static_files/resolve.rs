//! Request path -> an open file under the static root, or a refusal. All path safety lives here.
//!
//! The rules, in order:
//! 1. The path is percent-decoded exactly once (`%252e` stays the three bytes `%2e`, a harmless name).
//! 2. After decoding, a NUL byte, a backslash, or a `.` / `..` segment is a malformed request (400): no
//!    legitimate link contains one, and refusing them means no normalisation can be tricked.
//! 3. A segment starting with `.` (`.git`, `.env`) is hidden: 404, as if it did not exist.
//! 4. The joined path is canonicalized (symlinks followed) and must still lie under the canonical root,
//!    with no hidden component either: a symlink leading outside, or onto a hidden file, is 404.
//! 5. The canonical path is opened without following a final symlink, and (on Linux) the open descriptor's
//!    own path is checked against the root again, so swapping a directory for a symlink between the check
//!    and the open cannot escape the root.
//! 6. Only regular files are served; a directory serves its `index.html`.
//!
//! Errors carry no path or OS detail: those go to the debug log only, never into a response.

use std::ffi::{OsStr, OsString};
use std::fs::{File, Metadata, OpenOptions};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};

use crate::http::percent;

/// The file served for a directory.
pub const INDEX_FILE: &str = "index.html";

/// Why a request path is not served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The path is malformed (bad escape, NUL, backslash, dot segment): 400.
    BadRequest,
    /// Nothing servable there (missing, hidden, outside the root, not a regular file): 404.
    NotFound,
}

/// What a request path resolves to.
#[derive(Debug)]
pub enum Resolved {
    /// A regular file under the root.
    File(Box<FoundFile>),
    /// A directory requested without the trailing slash: redirect to the same path plus `/`, so relative
    /// links in its index resolve against the directory.
    AddSlash,
}

/// A regular file, open, with what the response needs to know about it.
#[derive(Debug)]
pub struct FoundFile {
    pub file: File,
    pub metadata: Metadata,
    /// The canonical path (sidecars are looked up beside it).
    pub path: PathBuf,
    /// The name the client asked for (`index.html` for a directory): its extension gives the MIME type,
    /// as in nginx, so a symlink `page.html -> blob` is still HTML.
    pub requested_name: OsString,
}

/// Resolves `raw`, the still percent-encoded path below the mount point, against `root` (which must be
/// canonical). `trailing_slash` tells whether the request's path ended in `/`, i.e. names a directory.
pub fn resolve(root: &Path, raw: &str, trailing_slash: bool) -> Result<Resolved, Refusal> {
    let decoded = percent::decode(raw.as_bytes()).ok_or(Refusal::BadRequest)?;
    if decoded.iter().any(|&b| b == 0 || b == b'\\') {
        return Err(Refusal::BadRequest);
    }
    // Rule 2 before rule 3 for the whole path: `.git/../x` is malformed (400), not hidden (404).
    if decoded
        .split(|&b| b == b'/')
        .any(|segment| segment == b"." || segment == b"..")
    {
        return Err(Refusal::BadRequest);
    }
    let mut joined = root.to_path_buf();
    let mut requested_name = OsString::from(INDEX_FILE);
    // Empty segments (`a//b`, a leading `/`) are skipped, as nginx's merge_slashes does.
    for segment in decoded.split(|&b| b == b'/').filter(|s| !s.is_empty()) {
        if segment.starts_with(b".") {
            return Err(Refusal::NotFound);
        }
        let segment = OsStr::from_bytes(segment);
        joined.push(segment);
        requested_name = segment.to_owned();
    }

    let path = canonical_under(root, &joined)?;
    let (file, metadata) = open_checked(root, &path)?;
    if metadata.is_file() {
        // `file.txt/` names a directory that is not there.
        if trailing_slash {
            return Err(Refusal::NotFound);
        }
        return Ok(Resolved::File(Box::new(FoundFile {
            file,
            metadata,
            path,
            requested_name,
        })));
    }
    if !metadata.is_dir() {
        log::debug!("static: {} is not a regular file", path.display());
        return Err(Refusal::NotFound);
    }
    if !trailing_slash {
        return Ok(Resolved::AddSlash);
    }
    drop(file);
    let index = canonical_under(root, &path.join(INDEX_FILE))?;
    let (file, metadata) = open_checked(root, &index)?;
    if !metadata.is_file() {
        return Err(Refusal::NotFound);
    }
    Ok(Resolved::File(Box::new(FoundFile {
        file,
        metadata,
        path: index,
        requested_name: OsString::from(INDEX_FILE),
    })))
}

/// Opens the sidecar `<path><extension>` (e.g. `app.js.gz`) of a served file, if it is a regular file that
/// passes the same checks as any served file.
pub fn open_sidecar(root: &Path, path: &Path, extension: &str) -> Option<(File, Metadata)> {
    let sidecar = sidecar_path(path, extension);
    let canonical = canonical_under(root, &sidecar).ok()?;
    let (file, metadata) = open_checked(root, &canonical).ok()?;
    metadata.is_file().then_some((file, metadata))
}

/// Whether `<path><extension>` looks like a sidecar: one `stat`, so the common case of none stays cheap.
/// [`open_sidecar`] makes the real checks.
pub fn sidecar_exists(path: &Path, extension: &str) -> bool {
    std::fs::metadata(sidecar_path(path, extension)).is_ok_and(|m| m.is_file())
}

fn sidecar_path(path: &Path, extension: &str) -> PathBuf {
    let mut sidecar = path.as_os_str().to_owned();
    sidecar.push(extension);
    PathBuf::from(sidecar)
}

/// `path` with every symlink followed, if it exists and lies under `root` with no hidden component.
fn canonical_under(root: &Path, path: &Path) -> Result<PathBuf, Refusal> {
    let canonical = std::fs::canonicalize(path).map_err(|error| {
        log::debug!("static: {}: {error}", path.display());
        Refusal::NotFound
    })?;
    if is_under_root(root, &canonical) {
        Ok(canonical)
    } else {
        log::debug!(
            "static: {} resolves to {}, outside the root or hidden",
            path.display(),
            canonical.display()
        );
        Err(Refusal::NotFound)
    }
}

/// Whether `canonical` is `root` or below it, with no component below the root starting with `.`.
fn is_under_root(root: &Path, canonical: &Path) -> bool {
    canonical.strip_prefix(root).is_ok_and(|below| {
        below.components().all(|component| match component {
            Component::Normal(name) => !name.as_bytes().starts_with(b"."),
            _ => false,
        })
    })
}

/// Opens the canonical `path` read-only and re-checks, on the descriptor itself, that it is under `root`.
fn open_checked(root: &Path, path: &Path) -> Result<(File, Metadata), Refusal> {
    let not_found = |error: std::io::Error| {
        log::debug!("static: {}: {error}", path.display());
        Refusal::NotFound
    };
    let file = OpenOptions::new()
        .read(true)
        // O_NOFOLLOW: the path is canonical, so a symlink here was planted after the check.
        // O_NONBLOCK: opening a FIFO must not block the worker waiting for a writer.
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(not_found)?;
    if let Some(opened) = descriptor_path(&file) {
        if !is_under_root(root, &opened) {
            log::warn!(
                "static: {} changed under us (now {}); refused",
                path.display(),
                opened.display()
            );
            return Err(Refusal::NotFound);
        }
    }
    let metadata = file.metadata().map_err(not_found)?;
    Ok((file, metadata))
}

/// The path the kernel has for an open descriptor, where the OS tells it (`/proc/self/fd` on Linux).
fn descriptor_path(file: &File) -> Option<PathBuf> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())).ok()
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = file;
        None
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::os::unix::fs::symlink;

    use super::*;
    use crate::static_files::test_support::TempDir;

    /// A static root inside a temp dir, with a secret beside it (outside the root) and symlinks both ways.
    fn fixture() -> (TempDir, PathBuf) {
        let tmp = TempDir::new();
        let root = tmp.path().join("root");
        let write = |rel: &str, content: &str| {
            let path = root.join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, content).unwrap();
        };
        write("a.txt", "A");
        write("index.html", "ROOT");
        write("dir/b.txt", "B");
        write("dir/index.html", "INDEX");
        write("noindex/c.txt", "C");
        write(".env", "HIDDEN");
        write(".git/config", "HIDDEN");
        write("dir/.hidden.txt", "HIDDEN");
        write("sp ace/ü.txt", "UNICODE");
        std::fs::write(tmp.path().join("secret.txt"), "SECRET").unwrap();
        std::fs::create_dir(tmp.path().join("outside_dir")).unwrap();
        std::fs::write(tmp.path().join("outside_dir/index.html"), "SECRET").unwrap();
        symlink("a.txt", root.join("link_in.txt")).unwrap();
        symlink("dir", root.join("link_dir")).unwrap();
        symlink("../secret.txt", root.join("link_out.txt")).unwrap();
        symlink(tmp.path().join("outside_dir"), root.join("link_out_dir")).unwrap();
        symlink(".env", root.join("link_hidden")).unwrap();
        symlink("missing", root.join("dangling")).unwrap();
        std::fs::create_dir(root.join("dir_out_index")).unwrap();
        symlink("../../secret.txt", root.join("dir_out_index/index.html")).unwrap();
        std::fs::write(root.join(OsStr::from_bytes(b"bin\xffary")), "BINARY").unwrap();
        let root = std::fs::canonicalize(root).unwrap();
        (tmp, root)
    }

    fn content(result: Result<Resolved, Refusal>) -> Result<String, Refusal> {
        match result? {
            Resolved::File(mut found) => {
                let mut s = String::new();
                found.file.read_to_string(&mut s).unwrap();
                Ok(s)
            }
            Resolved::AddSlash => Ok("<redirect>".to_owned()),
        }
    }

    #[test]
    fn resolution_table() {
        let (_tmp, root) = fixture();
        use Refusal::{BadRequest, NotFound};
        let ok = |s: &str| Ok(s.to_owned());
        let table: Vec<(&str, bool, Result<String, Refusal>)> = vec![
            ("a.txt", false, ok("A")),
            ("/a.txt", false, ok("A")),
            ("dir//b.txt", false, ok("B")),
            ("dir/b.txt", false, ok("B")),
            ("%61.txt", false, ok("A")),
            ("dir%2Fb.txt", false, ok("B")),
            ("sp%20ace/%C3%BC.txt", false, ok("UNICODE")),
            ("bin%FFary", false, ok("BINARY")),
            // Directories.
            ("", true, ok("ROOT")),
            ("/", true, ok("ROOT")),
            ("", false, ok("<redirect>")),
            ("dir", false, ok("<redirect>")),
            ("dir/", true, ok("INDEX")),
            ("dir/index.html", false, ok("INDEX")),
            ("noindex/", true, Err(NotFound)),
            ("a.txt/", true, Err(NotFound)),
            ("missing.txt", false, Err(NotFound)),
            ("dir/missing/", true, Err(NotFound)),
            // Symlinks: inside followed, outside / hidden / dangling refused.
            ("link_in.txt", false, ok("A")),
            ("link_dir/b.txt", false, ok("B")),
            ("link_out.txt", false, Err(NotFound)),
            ("link_out_dir/", true, Err(NotFound)),
            ("link_out_dir/index.html", false, Err(NotFound)),
            ("link_hidden", false, Err(NotFound)),
            ("dangling", false, Err(NotFound)),
            ("dir_out_index/", true, Err(NotFound)),
            // Hidden files and directories.
            (".env", false, Err(NotFound)),
            (".git/config", false, Err(NotFound)),
            ("%2egit/config", false, Err(NotFound)),
            ("dir/.hidden.txt", false, Err(NotFound)),
            // Malformed: traversal, NUL, backslash, bad escapes.
            ("..", false, Err(BadRequest)),
            ("../secret.txt", false, Err(BadRequest)),
            ("dir/../../secret.txt", false, Err(BadRequest)),
            ("%2e%2e/secret.txt", false, Err(BadRequest)),
            ("%2E%2E%2Fsecret.txt", false, Err(BadRequest)),
            ("dir/%2e%2e/a.txt", false, Err(BadRequest)),
            ("./a.txt", false, Err(BadRequest)),
            ("dir/./b.txt", false, Err(BadRequest)),
            // A dot segment after a hidden one is still malformed (found by the static_path fuzz target).
            (".b/../c", false, Err(BadRequest)),
            ("%2egit/%2e%2e/a.txt", false, Err(BadRequest)),
            ("%2e/a.txt", false, Err(BadRequest)),
            ("..%5csecret.txt", false, Err(BadRequest)),
            ("dir\\..\\..\\secret.txt", false, Err(BadRequest)),
            ("a.txt%00.png", false, Err(BadRequest)),
            ("%00", false, Err(BadRequest)),
            ("%", false, Err(BadRequest)),
            ("%zz", false, Err(BadRequest)),
            // Decoded once only: `%252e%252e` is the literal name `%2e%2e`, which does not exist.
            ("%252e%252e/secret.txt", false, Err(NotFound)),
            // Overlong UTF-8 for `.` is just two odd bytes, not a dot.
            ("%c0%ae%c0%ae/secret.txt", false, Err(NotFound)),
        ];
        for (raw, trailing_slash, expected) in table {
            assert_eq!(
                content(resolve(&root, raw, trailing_slash)),
                expected,
                "{raw:?} (trailing slash: {trailing_slash})"
            );
        }
    }

    /// Any path built from traversal-prone pieces either is refused or yields a file under the root.
    #[test]
    fn no_path_escapes_the_root() {
        use proptest::prelude::*;
        let (_tmp, root) = fixture();
        let pieces = proptest::collection::vec(
            proptest::sample::select(vec![
                "..",
                ".",
                "%2e",
                "%2E%2e",
                "%252e",
                "/",
                "%2f",
                "%5c",
                "\\",
                "%00",
                "%c0%ae",
                "",
                "dir",
                "a.txt",
                "link_out.txt",
                "link_out_dir",
                "link_dir",
                "link_hidden",
                ".env",
                "%2eenv",
                "index.html",
                "secret.txt",
                "outside_dir",
                "%",
            ]),
            0..10,
        );
        let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(2000));
        runner
            .run(&(pieces, any::<bool>()), |(pieces, trailing_slash)| {
                let raw: String = pieces.concat();
                if let Ok(Resolved::File(found)) = resolve(&root, &raw, trailing_slash) {
                    prop_assert!(
                        is_under_root(&root, &found.path),
                        "{raw:?} -> {:?}",
                        found.path
                    );
                    let served = content(Ok(Resolved::File(found))).unwrap();
                    prop_assert!(
                        served != "SECRET" && served != "HIDDEN",
                        "{raw:?}: {served:?}"
                    );
                }
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn requested_name_drives_the_mime_type_not_the_link_target() {
        let (_tmp, root) = fixture();
        symlink("a.txt", root.join("page.html")).unwrap();
        let Ok(Resolved::File(found)) = resolve(&root, "page.html", false) else {
            panic!("page.html not served");
        };
        assert_eq!(found.requested_name, "page.html");
        assert_eq!(found.path, root.join("a.txt"));
        let Ok(Resolved::File(found)) = resolve(&root, "dir/", true) else {
            panic!("dir/ not served");
        };
        assert_eq!(found.requested_name, INDEX_FILE);
    }

    #[test]
    fn the_open_descriptor_is_checked_against_the_root_on_its_own() {
        // The second line of defence, for a path that changed after canonicalization.
        let (tmp, root) = fixture();
        let outside = std::fs::canonicalize(tmp.path().join("secret.txt")).unwrap();
        assert_eq!(open_checked(&root, &outside).err(), Some(Refusal::NotFound));
        assert!(open_checked(&root, &root.join("a.txt")).is_ok());
        // A final symlink is not followed at all.
        assert_eq!(
            open_checked(&root, &root.join("link_in.txt")).err(),
            Some(Refusal::NotFound)
        );
    }

    #[test]
    fn fifos_are_refused_without_blocking() {
        let (_tmp, root) = fixture();
        let fifo = std::ffi::CString::new(root.join("pipe").as_os_str().as_bytes()).unwrap();
        // SAFETY: `fifo` is a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
        assert_eq!(
            content(resolve(&root, "pipe", false)),
            Err(Refusal::NotFound)
        );
    }

    #[test]
    fn sidecars_must_be_regular_files_under_the_root() {
        let (tmp, root) = fixture();
        std::fs::write(root.join("a.txt.gz"), "GZ").unwrap();
        symlink(tmp.path().join("secret.txt"), root.join("a.txt.br")).unwrap();
        std::fs::create_dir(root.join("dir/b.txt.gz")).unwrap();
        let a = root.join("a.txt");
        assert!(open_sidecar(&root, &a, ".gz").is_some());
        assert!(open_sidecar(&root, &a, ".br").is_none());
        assert!(open_sidecar(&root, &root.join("dir/b.txt"), ".gz").is_none());
        assert!(open_sidecar(&root, &root.join("dir/b.txt"), ".br").is_none());
    }
}
