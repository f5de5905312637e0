//! The plugin folder's candidate files: what the startup scan and every reload look at.

use std::fs;
use std::path::{Path, PathBuf};

/// The candidate plugin files directly inside `dir`, sorted by name.
pub(super) fn discover(dir: &Path) -> Vec<PathBuf> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) => {
            log::warn!(
                "plugin folder {} cannot be read ({err}): no plugins loaded",
                dir.display()
            );
            return Vec::new();
        }
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| {
            path.extension()
                .is_some_and(|ext| ext == std::env::consts::DLL_EXTENSION)
        })
        // `metadata` follows symlinks: a link to a library counts, a folder named `x.so` does not.
        .filter(|path| fs::metadata(path).is_ok_and(|m| m.is_file()))
        .collect();
    files.sort();
    files
}
