//! The static root: its canonical path, and a directory descriptor that files are opened beneath.
//!
//! With the descriptor, a request costs one `openat2` ([`super::openat`]) where resolving the path costs a
//! `readlink` per component of the root and of the request, and the open another `readlink` on
//! `/proc/self/fd` (see [`super::resolve`]). Without `openat2` (Linux before 5.6, some seccomp filters),
//! decided once here, every request takes the path-based way.
//!
//! A descriptor pins the directory it was opened on, where the path-based way follows whatever the path
//! names now. So that a root deleted and recreated, or replaced by `rename`, is served as before (the
//! usual deployment swaps), the descriptor is checked against the path at most once per [`RECHECK`]: one
//! `stat`, and a new descriptor when the path names another directory. Between a swap and that check
//! the old directory is still served.

use std::ffi::CStr;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{PoisonError, RwLock};
use std::time::{Duration, Instant};

use super::openat;

/// How often, at most, the root descriptor is checked against the root path: the longest a replaced
/// root is still served (nginx's `open_file_cache_valid` is 60 s by default when the cache is on).
pub const RECHECK: Duration = Duration::from_secs(1);

/// The directory served under `/static/`.
#[derive(Debug)]
pub struct Root {
    /// Canonical (absolute, no symlink), fixed at startup as it always was: the path-based way resolves
    /// against it and checks that what it found lies below it.
    path: PathBuf,
    /// `None` when the kernel has no `openat2`: then every request is resolved by path.
    beneath: Option<Beneath>,
}

/// The descriptor of the root and when to check it next.
#[derive(Debug)]
struct Beneath {
    /// `None` while the root path names no directory we may use (deleted, or now reached through a
    /// symlink): requests then go the path-based way, which answers 404 for those exactly as before.
    dir: RwLock<Option<Dir>>,
    /// Start of the [`RECHECK`] clock.
    epoch: Instant,
    /// Milliseconds after `epoch` when the next request checks the descriptor against the path.
    next_check: AtomicU64,
}

#[derive(Debug)]
struct Dir {
    fd: OwnedFd,
    /// Device and inode of the directory `fd` was opened on, to compare with what the path names now.
    id: (u64, u64),
}

impl Root {
    /// The directory at `path`, canonicalized. Where the kernel offers `openat2`, files will be opened
    /// beneath a descriptor of it; otherwise (logged once) by path.
    pub fn open(path: &Path) -> io::Result<Root> {
        let path = std::fs::canonicalize(path)?;
        if !std::fs::metadata(&path)?.is_dir() {
            return Err(io::Error::from(io::ErrorKind::NotADirectory));
        }
        let beneath = match Dir::open(&path) {
            Ok(dir) => Some(Beneath {
                dir: RwLock::new(Some(dir)),
                epoch: Instant::now(),
                next_check: AtomicU64::new(millis(RECHECK)),
            }),
            Err(error) if openat::is_unsupported(&error) => {
                log::info!(
                    "static dir {}: openat2 unavailable ({error}); files are resolved by path",
                    path.display()
                );
                None
            }
            Err(error) => return Err(error),
        };
        Ok(Root { path, beneath })
    }

    /// The directory at `path`, always resolved by path, as on a kernel without `openat2`: the tests and
    /// the fuzz target use it to cover that way too.
    pub fn open_by_path(path: &Path) -> io::Result<Root> {
        let mut root = Root::open(path)?;
        root.beneath = None;
        Ok(root)
    }

    /// The canonical root path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens `below` (relative, made of plain non-hidden names) beneath the root with [`openat::open_beneath`],
    /// or `None` when there is no descriptor to open it beneath: then the caller resolves by path.
    pub fn open_beneath(&self, below: &CStr) -> Option<io::Result<File>> {
        let beneath = self.beneath.as_ref()?;
        beneath.recheck_when_due(&self.path);
        let dir = beneath.dir.read().unwrap_or_else(PoisonError::into_inner);
        Some(openat::open_beneath(dir.as_ref()?.fd.as_fd(), below))
    }
}

impl Beneath {
    /// At most once per [`RECHECK`] (one request wins the race), makes the descriptor follow the path.
    fn recheck_when_due(&self, path: &Path) {
        let now = millis(self.epoch.elapsed());
        let due = self.next_check.load(Ordering::Relaxed);
        if now < due
            || self
                .next_check
                .compare_exchange(
                    due,
                    now + millis(RECHECK),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_err()
        {
            return;
        }
        let current = std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()));
        let held = self
            .dir
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(|dir| dir.id);
        if current.is_some() && current == held {
            return;
        }
        let reopened = Dir::open(path);
        match (&reopened, held) {
            (Ok(_), _) => log::info!(
                "static dir {} was replaced; serving the new one",
                path.display()
            ),
            (Err(error), Some(_)) => log::warn!(
                "static dir {}: {error}; /static/ answers 404 until it is back",
                path.display()
            ),
            (Err(_), None) => {}
        }
        let reopened = reopened.ok();
        *self.dir.write().unwrap_or_else(PoisonError::into_inner) = reopened;
    }
}

impl Dir {
    fn open(path: &Path) -> io::Result<Dir> {
        let dir = File::from(openat::open_directory(path)?);
        let metadata = dir.metadata()?;
        Ok(Dir {
            fd: OwnedFd::from(dir),
            id: (metadata.dev(), metadata.ino()),
        })
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
