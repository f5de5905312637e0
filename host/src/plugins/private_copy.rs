//! Every plugin library is loaded from a private copy named by its content's SHA-256, never from the file
//! in the plugin folder (`docs/ARCHITECTURE.md` §8.8):
//!
//! - The dynamic loader returns the already-loaded image for a path it has seen, so a new version renamed
//!   over the old file would come back as the old version; a copy named by content has a new name exactly
//!   when the code is new, and a version that comes back (A, B, A) reuses its first mapping.
//! - The bytes hashed, trust-checked and loaded are the same bytes: what is in the folder may change at
//!   any moment, the copy cannot (it lives in a folder only plugd's user can write).
//! - Nothing maps the folder's files, so overwriting one in place no longer crashes a running plugd.
//!
//! The file is copied a buffer at a time, hashed as it passes, and never held in memory whole: a plugin of
//! several MiB read into one allocation raised glibc's dynamic mmap threshold, and the freed bytes of the
//! next plugins then stayed in the heap (7.6 MiB of a 13.9 MiB start with the seven example plugins).
//!
//! The copy is removed once the library is mapped (when its [`Contents`] is dropped); the folder, empty by
//! then, is removed when plugd exits.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};

/// Most folder names tried under the temporary folder before giving up (names taken by another process,
/// or planted by someone else, are skipped: `create_dir` never follows or reuses what exists).
const FOLDER_ATTEMPTS: u32 = 100;
/// Bytes copied (and hashed) at a time: below glibc's mmap threshold, so the buffer never moves it.
const COPY_BUFFER: usize = 64 * 1024;

/// A plugin file's bytes, as copied once into the private folder, and their SHA-256 in lowercase hex. The
/// copy is removed when this is dropped.
pub struct Contents {
    pub sha256: String,
    copy: PathBuf,
}

impl Contents {
    /// Copies `file` (following a symlink, which the trust check has vetted) into this process's private
    /// folder, hashing it on the way, and names the copy `SHA256.so`.
    pub fn read(file: &Path) -> io::Result<Contents> {
        let mut source = File::open(file)?;
        let incoming = Incoming::create()?;
        let sha256 = copy_hashed(&mut source, &incoming.file)?;
        let copy = incoming
            .path
            .with_file_name(format!("{sha256}.{}", std::env::consts::DLL_EXTENSION));
        fs::rename(&incoming.path, &copy)?;
        Ok(Contents { sha256, copy })
    }

    /// The private copy, to load.
    pub fn copy(&self) -> &Path {
        &self.copy
    }
}

impl Drop for Contents {
    fn drop(&mut self) {
        remove(&self.copy);
    }
}

/// A copy being written, under a name of its own until its hash is known; removed if it is not renamed.
struct Incoming {
    path: PathBuf,
    file: File,
}

impl Incoming {
    fn create() -> io::Result<Incoming> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let name = format!(".incoming-{}", NEXT.fetch_add(1, Ordering::Relaxed));
        let path = private_folder()?.join(name);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o700)
            .open(&path)?;
        Ok(Incoming { path, file })
    }
}

impl Drop for Incoming {
    fn drop(&mut self) {
        // Renamed (the usual case): nothing is left under this name.
        let _ = fs::remove_file(&self.path);
    }
}

/// Copies `source` to `sink` a buffer at a time; returns the SHA-256 of the bytes copied, in hex.
fn copy_hashed(source: &mut impl Read, mut sink: &File) -> io::Result<String> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; COPY_BUFFER];
    loop {
        let n = match source.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        };
        hasher.update(&buf[..n]);
        sink.write_all(&buf[..n])?;
    }
    Ok(hex(&hasher.finalize()))
}

/// Removes a private copy once it is mapped (or refused).
fn remove(copy: &Path) {
    if let Err(err) = fs::remove_file(copy) {
        log::debug!("cannot remove the private copy {}: {err}", copy.display());
    }
}

/// Removes the private folder (empty: every copy was removed after loading), at exit.
pub fn remove_folder() {
    if let Some(Ok(folder)) = FOLDER.get() {
        let _ = fs::remove_dir(folder);
    }
}

static FOLDER: OnceLock<Result<PathBuf, String>> = OnceLock::new();

/// `$TMPDIR/plugd-PID[-N]`, created once with mode 0700.
fn private_folder() -> io::Result<&'static Path> {
    let created = FOLDER.get_or_init(|| {
        let base = std::env::temp_dir().join(format!("plugd-{}", std::process::id()));
        let mut last_error = String::new();
        for attempt in 0..FOLDER_ATTEMPTS {
            let candidate = match attempt {
                0 => base.clone(),
                n => PathBuf::from(format!("{}-{n}", base.display())),
            };
            match DirBuilder::new().mode(0o700).create(&candidate) {
                Ok(()) => return Ok(candidate),
                Err(err) => last_error = format!("{}: {err}", candidate.display()),
            }
        }
        Err(format!(
            "no private folder for plugin copies ({last_error})"
        ))
    });
    created
        .as_ref()
        .map(PathBuf::as_path)
        .map_err(|message| io::Error::other(message.clone()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_are_named_by_content_in_a_folder_only_plugd_can_enter() {
        let source = std::env::temp_dir().join(format!("plugd-copy-test-{}", std::process::id()));
        // More than one buffer, so the hash spans several reads.
        let bytes: Vec<u8> = (0..COPY_BUFFER * 2 + 3).map(|i| i as u8).collect();
        fs::write(&source, &bytes).unwrap();
        let contents = Contents::read(&source).unwrap();
        fs::remove_file(&source).unwrap();
        assert_eq!(contents.sha256, hex(&Sha256::digest(&bytes)));
        let copy = contents.copy().to_owned();
        assert_eq!(fs::read(&copy).unwrap(), bytes);
        assert!(copy.ends_with(format!("{}.so", contents.sha256)));
        let folder_mode = fs::metadata(copy.parent().unwrap()).unwrap().permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&folder_mode) & 0o777,
            0o700
        );
        drop(contents);
        assert!(!copy.exists());
    }

    #[test]
    fn the_hash_is_sha256() {
        assert_eq!(
            hex(&Sha256::digest(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
