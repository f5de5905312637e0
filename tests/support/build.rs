//! The binaries under test: `plugd` and the example plugins, built once per test binary, and plugin folders
//! holding copies of them.
//!
//! `cargo test --workspace` builds the test targets but not the plugins' `cdylib` files, so the first helper
//! that needs a binary runs `cargo build -p plugd -p hello -p echo -p counter -p stream` once per test binary. That nested
//! cargo runs while the outer `cargo test` is executing tests, when the outer cargo no longer holds the
//! build-directory lock, so it does not deadlock; when several test binaries run at once (nextest), cargo's own
//! lock serialises their builds and the later ones find everything fresh.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use crate::TempDir;

/// The example plugin crates, built by [`example_plugins`].
pub const EXAMPLE_PLUGINS: &[&str] = &[
    "hello",
    "echo",
    "counter",
    "stream",
    "request-id",
    "bearer-auth",
    "headers",
];

/// The workspace root (the folder holding the top-level `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ lives inside the workspace")
        .to_path_buf()
}

/// The repository's `static/` folder.
pub fn repo_static_dir() -> PathBuf {
    workspace_root().join("static")
}

/// The profile folder the running test binary was built into (`target/debug`), so the nested build writes its
/// outputs beside it whatever `CARGO_TARGET_DIR`, `--target-dir` or `build.target-dir` said.
fn profile_dir() -> PathBuf {
    // Test binaries live in `<target>/<profile>/deps/`.
    let exe = std::env::current_exe().expect("current_exe");
    let deps = exe.parent().expect("test binary has a parent folder");
    if deps.file_name() == Some(OsStr::new("deps")) {
        return deps.parent().expect("deps has a parent").to_path_buf();
    }
    // Not run by cargo (e.g. a debugger on a copied binary): fall back to the conventional locations.
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|t| {
            if t.is_relative() {
                workspace_root().join(t)
            } else {
                t
            }
        })
        .unwrap_or_else(|| workspace_root().join("target"));
    target.join("debug")
}

/// Builds the host binary and the example plugins, once per test binary. Panics with cargo's output on failure.
fn build_all() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let mut packages = vec!["plugd"];
        packages.extend_from_slice(EXAMPLE_PLUGINS);
        cargo_build(&packages);
        profile_dir()
    })
}

/// `cargo build -p P...` of workspace packages into the running test binary's profile folder.
fn cargo_build(packages: &[&str]) {
    let profile_dir = profile_dir();
    let target_dir = profile_dir.parent().expect("profile dir has a parent");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace_root())
        .arg("build")
        .arg("--target-dir")
        .arg(target_dir);
    for package in packages {
        cmd.args(["-p", package]);
    }
    match profile_dir.file_name().and_then(OsStr::to_str) {
        Some("debug") | None => {}
        Some("release") => {
            cmd.arg("--release");
        }
        Some(other) => {
            cmd.args(["--profile", other]);
        }
    }
    let output = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("could not run cargo to build {packages:?}: {e}"));
    assert!(
        output.status.success(),
        "building {packages:?} failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The WSGI plugin (`plugins/wsgi`), built on first use and only by the tests that serve Python: it links
/// libpython (Debian's python3-dev, which `cargo xtask test` installs).
pub fn wsgi_plugin() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            build_all();
            cargo_build(&["wsgi"]);
            library_path(&profile_dir(), "wsgi")
        })
        .clone()
}

fn library_path(dir: &Path, name: &str) -> PathBuf {
    // Cargo names a library after its crate with `-` as `_`.
    let lib = dir.join(format!(
        "{}{}{}",
        std::env::consts::DLL_PREFIX,
        name.replace('-', "_"),
        std::env::consts::DLL_SUFFIX
    ));
    assert!(lib.is_file(), "{} missing after build", lib.display());
    lib
}

/// The freshly built `plugd` binary.
pub fn plugd_bin() -> PathBuf {
    let bin = build_all().join(format!("plugd{}", std::env::consts::EXE_SUFFIX));
    assert!(bin.is_file(), "{} missing after build", bin.display());
    bin
}

/// The built example plugin libraries (`libhello.so`, ...), in [`EXAMPLE_PLUGINS`] order.
pub fn example_plugins() -> Vec<PathBuf> {
    let dir = build_all();
    EXAMPLE_PLUGINS
        .iter()
        .map(|name| library_path(dir, name))
        .collect()
}

/// One built example plugin by crate name.
pub fn example_plugin(name: &str) -> PathBuf {
    let i = EXAMPLE_PLUGINS
        .iter()
        .position(|p| *p == name)
        .unwrap_or_else(|| panic!("{name} is not an example plugin"));
    example_plugins().swap_remove(i)
}

/// A fresh plugin folder holding copies of `libs` under their file names. Copies, never hard links: glibc
/// identifies a loaded library by name and inode, and a link would alias the original (docs/ARCHITECTURE.md §8.6).
pub fn plugin_dir_with(libs: &[impl AsRef<Path>]) -> TempDir {
    let dir = TempDir::new("plugins");
    for lib in libs {
        let lib = lib.as_ref();
        let name = lib.file_name().expect("plugin path has a file name");
        std::fs::copy(lib, dir.join(name))
            .unwrap_or_else(|e| panic!("copy {} into plugin dir: {e}", lib.display()));
    }
    dir
}
