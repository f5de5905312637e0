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
//! The copy is removed as soon as the library is mapped (the mapping stays); the folder, empty by then, is
//! removed when plugd exits.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use sha2::{Digest, Sha256};

/// Most folder names tried under the temporary folder before giving up (names taken by another process,
/// or planted by someone else, are skipped: `create_dir` never follows or reuses what exists).
const FOLDER_ATTEMPTS: u32 = 100;

/// A plugin file's bytes as read once, and their SHA-256 in lowercase hex.
pub struct Contents {
    pub bytes: Vec<u8>,
    pub sha256: String,
}

impl Contents {
    /// Reads `file` whole (following a symlink, which the trust check has vetted).
    pub fn read(file: &Path) -> io::Result<Contents> {
        let mut bytes = Vec::new();
        File::open(file)?.read_to_end(&mut bytes)?;
        let sha256 = hex(&Sha256::digest(&bytes));
        Ok(Contents { bytes, sha256 })
    }

    /// Writes the bytes to this process's private folder as `SHA256.so` and returns that path; the caller
    /// loads it, then calls [`remove`].
    pub fn write_private_copy(&self) -> io::Result<PathBuf> {
        let path = private_folder()?.join(format!(
            "{}.{}",
            self.sha256,
            std::env::consts::DLL_EXTENSION
        ));
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o700)
            .open(&path)?;
        file.write_all(&self.bytes)?;
        Ok(path)
    }
}

/// Removes a private copy once it is mapped (or refused).
pub fn remove(copy: &Path) {
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
        let contents = Contents {
            bytes: b"abc".to_vec(),
            sha256: hex(&Sha256::digest(b"abc")),
        };
        assert_eq!(
            contents.sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let copy = contents.write_private_copy().unwrap();
        assert_eq!(fs::read(&copy).unwrap(), b"abc");
        assert!(copy.ends_with(format!("{}.so", contents.sha256)));
        let folder_mode = fs::metadata(copy.parent().unwrap()).unwrap().permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&folder_mode) & 0o777,
            0o700
        );
        remove(&copy);
        assert!(!copy.exists());
    }
}
