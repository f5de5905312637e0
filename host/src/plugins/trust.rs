//! Only trusted files become code. Once the plugin folder is watched, whoever can write into it runs code
//! inside plugd within a second; so, as sshd's `StrictModes` does for its keys, a plugin folder or file
//! that someone other than plugd's user (or root) could have written is refused, and so is a symlink
//! leading out of the folder (`docs/ARCHITECTURE.md` §8.8). `--allow-insecure-plugins` loads them anyway,
//! with a warning.

use std::fs::{self, Metadata};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Mode bits that let the file's group or everyone write it.
const WRITABLE_BY_OTHERS: u32 = 0o022;

/// Whether untrusted plugin files are refused or loaded with a warning.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TrustPolicy {
    /// Refuse them (the default).
    #[default]
    Strict,
    /// `--allow-insecure-plugins`: load them, with a warning each time.
    AllowInsecure,
}

impl TrustPolicy {
    /// `Ok` if the folder may hold plugins (or cannot be read: then it holds none); `Err` is the one-line
    /// reason (a warning under [`TrustPolicy::AllowInsecure`], which then returns `Ok`).
    pub fn check_folder(self, dir: &Path) -> Result<(), String> {
        let verdict = match fs::metadata(dir) {
            Ok(meta) => untrusted_by_owner_or_mode(&meta, effective_uid()).map_or(Ok(()), Err),
            Err(_) => Ok(()),
        };
        self.apply(dir, verdict, "plugin folder")
    }

    /// `Ok` if the plugin file `file`, directly inside `dir`, may be loaded.
    pub fn check_file(self, dir: &Path, file: &Path) -> Result<(), String> {
        self.apply(file, file_verdict(dir, file), "plugin file")
    }

    fn apply(self, path: &Path, verdict: Result<(), String>, what: &str) -> Result<(), String> {
        match (verdict, self) {
            (Ok(()), _) => Ok(()),
            (Err(reason), TrustPolicy::Strict) => Err(format!(
                "{reason}; refusing to run it (--allow-insecure-plugins overrides)"
            )),
            (Err(reason), TrustPolicy::AllowInsecure) => {
                log::warn!(
                    "{what} {}: {reason}; loading it anyway because of --allow-insecure-plugins",
                    path.display()
                );
                Ok(())
            }
        }
    }
}

fn file_verdict(dir: &Path, file: &Path) -> Result<(), String> {
    let link = fs::symlink_metadata(file).map_err(|err| format!("cannot inspect it: {err}"))?;
    if link.file_type().is_symlink() {
        let target = fs::canonicalize(file).map_err(|err| format!("a broken symlink: {err}"))?;
        let folder =
            fs::canonicalize(dir).map_err(|err| format!("cannot resolve its folder: {err}"))?;
        if target.parent() != Some(folder.as_path()) {
            return Err(format!(
                "a symlink leading out of the plugin folder (to {})",
                target.display()
            ));
        }
    }
    let meta = fs::metadata(file).map_err(|err| format!("cannot inspect it: {err}"))?;
    untrusted_by_owner_or_mode(&meta, effective_uid()).map_or(Ok(()), Err)
}

/// Why a file or folder with `meta` could have been written by someone other than user `me` or root.
fn untrusted_by_owner_or_mode(meta: &Metadata, me: u32) -> Option<String> {
    untrusted(meta.uid(), meta.mode(), me)
}

/// The rule itself, on plain numbers: owned by `me` or root, and not writable by group or others.
fn untrusted(owner: u32, mode: u32, me: u32) -> Option<String> {
    if owner != me && owner != 0 {
        return Some(format!(
            "owned by uid {owner}, neither plugd's user (uid {me}) nor root"
        ));
    }
    if mode & WRITABLE_BY_OTHERS != 0 {
        return Some(format!(
            "writable by its group or by everyone (mode {:o}; `chmod go-w` it)",
            mode & 0o7777
        ));
    }
    None
}

fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_files_that_plugd_or_root_alone_can_write_are_trusted() {
        assert_eq!(untrusted(1000, 0o100644, 1000), None);
        assert_eq!(untrusted(0, 0o100755, 1000), None);
        assert_eq!(untrusted(0, 0o040700, 0), None);
        assert!(
            untrusted(1001, 0o100644, 1000)
                .unwrap()
                .contains("uid 1001")
        );
        assert!(
            untrusted(1000, 0o100664, 1000)
                .unwrap()
                .contains("mode 664")
        );
        assert!(untrusted(0, 0o040777, 0).unwrap().contains("writable"));
        assert!(
            untrusted(1000, 0o041777, 1000)
                .unwrap()
                .contains("mode 1777")
        );
    }
}
