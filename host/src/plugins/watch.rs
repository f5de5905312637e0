//! Watches the plugin folder and calls for a reload when it changes: through inotify, or, where inotify is
//! not available (no more watches, a kernel or a file system without it), by polling the folder's listing
//! (`docs/ARCHITECTURE.md` §8.8). Either way a change is acted on within a second.
//!
//! Events come in bursts (a copy is a create, writes and a close; `cargo build` replaces several files), so
//! the watcher waits until the folder has been quiet for [`SETTLE`] (at most [`SETTLE_MAX`]) before it calls
//! for one reload; a reload of an unchanged folder costs a `stat` per file.

use std::ffi::CString;
use std::fs;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Quiet time after an event before the reload: a file copied in place is complete by then.
const SETTLE: Duration = Duration::from_millis(100);
/// Longest wait for quiet: a folder that never stops changing is still reloaded within a second.
const SETTLE_MAX: Duration = Duration::from_millis(500);
/// How often the polling fallback lists the folder.
const POLL_EVERY: Duration = Duration::from_millis(400);
/// Events that can change which plugin files the folder holds or what they contain.
const EVENTS: u32 = libc::IN_CREATE
    | libc::IN_DELETE
    | libc::IN_MOVED_TO
    | libc::IN_MOVED_FROM
    | libc::IN_CLOSE_WRITE
    | libc::IN_MODIFY
    | libc::IN_ATTRIB
    | libc::IN_DELETE_SELF
    | libc::IN_MOVE_SELF;

/// Starts watching (the inotify watch is in place when this returns) and the watching thread; `reload` is
/// called once at once (a change between the startup scan and the watch would otherwise be missed), then
/// after each burst of changes.
pub fn spawn(dir: PathBuf, reload: impl Fn() + Send + 'static) -> io::Result<()> {
    let inotify = Inotify::watch(&dir);
    std::thread::Builder::new()
        .name("plugd-watch".into())
        .spawn(move || {
            reload();
            match inotify {
                Ok(inotify) => {
                    log::debug!("watching {} with inotify", dir.display());
                    inotify.run(&reload);
                    log::warn!(
                        "plugin folder {} was moved or deleted: polling for it instead",
                        dir.display()
                    );
                    poll(&dir, &reload);
                }
                Err(err) => {
                    log::warn!(
                        "cannot watch {} with inotify ({err}): polling it every {POLL_EVERY:?} instead",
                        dir.display()
                    );
                    poll(&dir, &reload);
                }
            }
        })
        .map(drop)
}

struct Inotify {
    fd: OwnedFd,
}

impl Inotify {
    fn watch(dir: &Path) -> io::Result<Inotify> {
        // SAFETY: no pointer arguments; the result is checked.
        let raw = unsafe { libc::inotify_init1(libc::IN_CLOEXEC) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a new descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let path = CString::new(dir.as_os_str().as_bytes()).map_err(io::Error::other)?;
        // SAFETY: `path` is a NUL-terminated string that outlives the call.
        if unsafe { libc::inotify_add_watch(fd.as_raw_fd(), path.as_ptr(), EVENTS) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Inotify { fd })
    }

    /// Reloads after each burst, until the folder itself goes away.
    fn run(&self, reload: &dyn Fn()) {
        loop {
            match self.read(None) {
                Ok(Burst::Changed) => {}
                Ok(Burst::FolderGone) | Err(_) => return,
                Ok(Burst::Quiet) => continue,
            }
            let started = Instant::now();
            let mut gone = false;
            while started.elapsed() < SETTLE_MAX {
                match self.read(Some(SETTLE)) {
                    Ok(Burst::Changed) => {}
                    Ok(Burst::Quiet) => break,
                    Ok(Burst::FolderGone) | Err(_) => {
                        gone = true;
                        break;
                    }
                }
            }
            reload();
            if gone {
                return;
            }
        }
    }

    /// Waits up to `timeout` (`None`: for ever) for events and reads them.
    fn read(&self, timeout: Option<Duration>) -> io::Result<Burst> {
        let mut poll = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let millis = timeout.map_or(-1, |t| t.as_millis().min(i32::MAX as u128) as i32);
        // SAFETY: one valid pollfd for the length of the call.
        let ready = unsafe { libc::poll(&mut poll, 1, millis) };
        if ready < 0 {
            let err = io::Error::last_os_error();
            return if err.kind() == io::ErrorKind::Interrupted {
                Ok(Burst::Quiet)
            } else {
                Err(err)
            };
        }
        if ready == 0 {
            return Ok(Burst::Quiet);
        }
        let mut buf = [0u8; 4096];
        // SAFETY: `buf` is writable for its whole length.
        let read = unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if read < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(classify(&buf[..read as usize]))
    }
}

/// What a read of inotify events showed.
#[derive(Debug, PartialEq, Eq)]
enum Burst {
    Quiet,
    Changed,
    /// The watched folder was deleted or moved: its watch is gone.
    FolderGone,
}

/// Reads the `mask` of each `inotify_event` in `events` (a header of 16 bytes, then `len` bytes of name).
fn classify(events: &[u8]) -> Burst {
    const HEADER: usize = std::mem::size_of::<libc::inotify_event>();
    let mut burst = Burst::Quiet;
    let mut rest = events;
    while rest.len() >= HEADER {
        let field =
            |at: usize| u32::from_ne_bytes([rest[at], rest[at + 1], rest[at + 2], rest[at + 3]]);
        let (mask, name_len) = (field(4), field(12) as usize);
        if mask & (libc::IN_DELETE_SELF | libc::IN_MOVE_SELF | libc::IN_IGNORED) != 0 {
            return Burst::FolderGone;
        }
        burst = Burst::Changed;
        rest = rest.get(HEADER + name_len..).unwrap_or_default();
    }
    burst
}

/// The polling fallback: lists the folder every [`POLL_EVERY`] and reloads when the listing changed.
fn poll(dir: &Path, reload: &dyn Fn()) {
    let mut seen = listing(dir);
    loop {
        std::thread::sleep(POLL_EVERY);
        let now = listing(dir);
        if now != seen {
            seen = now;
            reload();
        }
    }
}

/// Each entry's name, inode, size, mode and times: what any change to a plugin file changes.
fn listing(dir: &Path) -> Vec<(PathBuf, [i64; 6])> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut listing: Vec<_> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let meta = fs::metadata(entry.path()).ok()?;
            let status = [
                meta.ino() as i64,
                meta.len() as i64,
                i64::from(meta.mode()),
                meta.mtime(),
                meta.mtime_nsec(),
                meta.ctime_nsec(),
            ];
            Some((entry.path(), status))
        })
        .collect();
    listing.sort();
    listing
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(mask: u32, name: &[u8]) -> Vec<u8> {
        let len = name.len().next_multiple_of(16) as u32;
        let mut bytes = Vec::new();
        bytes.extend(1i32.to_ne_bytes());
        bytes.extend(mask.to_ne_bytes());
        bytes.extend(0u32.to_ne_bytes());
        bytes.extend(len.to_ne_bytes());
        bytes.extend(name);
        bytes.resize(16 + len as usize, 0);
        bytes
    }

    #[test]
    fn events_are_read_one_after_the_other_and_a_vanished_folder_is_noticed() {
        assert_eq!(classify(&[]), Burst::Quiet);
        let mut two = event(libc::IN_MOVED_TO, b"hello.so");
        two.extend(event(
            libc::IN_CLOSE_WRITE,
            b"a-longer-name-than-sixteen.so",
        ));
        assert_eq!(classify(&two), Burst::Changed);
        two.extend(event(libc::IN_DELETE_SELF, b""));
        assert_eq!(classify(&two), Burst::FolderGone);
    }
}
