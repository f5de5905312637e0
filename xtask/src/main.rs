//! Project commands, std only so they build in a second: `cargo serve` (an alias for `cargo xtask serve`,
//! see `.cargo/config.toml`), `cargo xtask test` and `cargo xtask new-plugin PATH`.

mod new_plugin;

use std::env;
use std::ffi::OsString;
use std::fs;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// The example plugin crates `serve` builds and installs.
const EXAMPLE_PLUGINS: &[&str] = &["hello", "echo", "counter"];
/// The config file `serve` starts plugd with (unless given `--config` or `PLUGD_CONFIG`): where it listens,
/// the folders, the example plugins' tables. Flags after `--` and `PLUGD_*` variables still win over it.
const SERVE_CONFIG: &str = "plugd.toml";

/// The programs the end-to-end tests drive besides plugd, and the Debian packages that provide them.
const TEST_PROGRAMS: &[&str] = &["curl", "chromium"];
const TEST_PACKAGES: &[&str] = &[
    "curl",
    "ca-certificates",
    "chromium",
    "chromium-driver",
    "fonts-liberation",
];

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  serve [-- PLUGD ARGS]  build plugd and the example plugins (release), install the plugins into plugins/,
                         start plugd with plugd.toml (127.0.0.1:8080, static/ served; `cargo serve`)
  install                build and install the example plugins only
  test [-- CARGO ARGS]   install curl and Chromium if missing (apt-get, as root) and Python's Prometheus
                         parser (pip), then cargo test --workspace
  new-plugin PATH        create a plugin crate at PATH (a new folder, anywhere) that builds against this
                         repository's plugin-api: one route, one unit test";

fn main() -> ExitCode {
    let mut args = env::args_os().skip(1);
    let command = args.next().and_then(|c| c.into_string().ok());
    let rest: Vec<OsString> = args.skip_while(|a| a == "--").collect();
    let result = match command.as_deref() {
        Some("serve") => serve(rest),
        Some("install") => build_and_install().map(drop),
        Some("test") => test(rest),
        Some("new-plugin") => new_plugin::run(&rest, &workspace_root()),
        Some("help" | "-h" | "--help") | None => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Some(other) => Err(format!("unknown command `{other}`\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Makes sure the tests' outside programs are there, then replaces this process with
/// `cargo test --workspace`: the one test command, the same on a developer's machine and in CI.
fn test(extra: Vec<OsString>) -> Result<(), String> {
    install_test_programs()?;
    install_prometheus_parser()?;
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let err = Command::new(cargo)
        .current_dir(workspace_root())
        .args(["test", "--workspace"])
        .args(extra)
        .exec();
    Err(format!("cannot run cargo test: {err}"))
}

/// Installs the Debian packages of [`TEST_PROGRAMS`] that are missing. Only root can; anyone else is told
/// the command to run.
fn install_test_programs() -> Result<(), String> {
    let missing: Vec<&str> = TEST_PROGRAMS
        .iter()
        .copied()
        .filter(|p| !on_path(p))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let install = format!(
        "apt-get install -y --no-install-recommends {}",
        TEST_PACKAGES.join(" ")
    );
    if !is_root() || !on_path("apt-get") {
        return Err(format!(
            "the tests need {} on PATH: run `{install}` as root",
            missing.join(" and ")
        ));
    }
    eprintln!("xtask: installing {} for the tests", missing.join(", "));
    let apt = |args: &str| {
        Command::new("sh")
            .arg("-c")
            .arg(format!("apt-get {args} </dev/null"))
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .map_err(|e| format!("cannot run apt-get: {e}"))?
            .success()
            .then_some(())
            .ok_or_else(|| format!("apt-get {args} failed"))
    };
    apt("update -qq")?;
    apt(&format!(
        "install -y -qq --no-install-recommends {}",
        TEST_PACKAGES.join(" ")
    ))
}

/// The Python module the admin tests read `/metrics` back with: the Prometheus project's own client
/// library and its exposition parser. Installed with pip for the `python3` on PATH (the one the tests
/// run); only root installs it, anyone else is told the command.
const PROMETHEUS_PARSER: &str = "prometheus_client";

fn install_prometheus_parser() -> Result<(), String> {
    let python = |args: &[&str]| {
        Command::new("python3")
            .args(args)
            .status()
            .is_ok_and(|s| s.success())
    };
    if python(&["-c", &format!("import {PROMETHEUS_PARSER}")]) {
        return Ok(());
    }
    let install = format!("python3 -m pip install --quiet {PROMETHEUS_PARSER}");
    if !is_root() {
        return Err(format!(
            "the admin tests need Python's {PROMETHEUS_PARSER}: run `{install}`"
        ));
    }
    eprintln!("xtask: installing {PROMETHEUS_PARSER} for the tests");
    python(&["-m", "pip", "install", "--quiet", PROMETHEUS_PARSER])
        .then_some(())
        .ok_or_else(|| format!("`{install}` failed"))
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout == b"0\n")
}

fn on_path(program: &str) -> bool {
    env::var_os("PATH")
        .is_some_and(|path| env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

/// Builds, installs, then replaces this process with `plugd` (so Ctrl-C and SIGTERM reach it directly).
fn serve(extra: Vec<OsString>) -> Result<(), String> {
    let release = build_and_install()?;
    let mut cmd = Command::new(release.join("plugd"));
    cmd.current_dir(workspace_root());
    let given = extra.iter().any(|a| {
        a.to_str()
            .is_some_and(|a| a == "--config" || a.starts_with("--config="))
    });
    if !given && env::var_os("PLUGD_CONFIG").is_none() {
        cmd.args(["--config", SERVE_CONFIG]);
    }
    cmd.args(&extra);
    let err = cmd.exec();
    Err(format!(
        "cannot start {}: {err}",
        release.join("plugd").display()
    ))
}

/// `cargo build --release` of the host and the example plugins, then installs each plugin into `plugins/`.
/// Returns the release folder.
fn build_and_install() -> Result<PathBuf, String> {
    let root = workspace_root();
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = Command::new(&cargo);
    build
        .current_dir(&root)
        .args(["build", "--release", "-p", "plugd"]);
    for plugin in EXAMPLE_PLUGINS {
        build.args(["-p", plugin]);
    }
    let status = build
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err(format!("cargo build failed ({status})"));
    }
    let release = target_dir(&cargo, &root)?.join("release");
    for plugin in EXAMPLE_PLUGINS {
        let file = format!(
            "{}{plugin}{}",
            env::consts::DLL_PREFIX,
            env::consts::DLL_SUFFIX
        );
        install(&release.join(&file), &root.join("plugins").join(&file))
            .map_err(|e| format!("installing {file} into plugins/: {e}"))?;
        eprintln!("xtask: installed plugins/{file}");
    }
    Ok(release)
}

/// Copies `src` to a temporary name beside `dst`, then renames it over `dst`. Overwriting a loaded library in
/// place crashes the process that mapped it; a rename leaves the old inode intact for whoever has it open
/// (docs/ARCHITECTURE.md §8.6). The temporary name does not end in the library suffix, so a server scanning the
/// folder meanwhile never sees a half-written library.
fn install(src: &Path, dst: &Path) -> io::Result<()> {
    let name = dst.file_name().expect("file name").to_string_lossy();
    let tmp = dst.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    fs::copy(src, &tmp)?;
    fs::rename(&tmp, dst).inspect_err(|_| {
        let _ = fs::remove_file(&tmp);
    })
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask/ lives inside the workspace")
        .to_path_buf()
}

/// The target folder as cargo sees it (`CARGO_TARGET_DIR`, `build.target-dir` and all), from `cargo metadata`.
fn target_dir(cargo: &OsString, root: &Path) -> Result<PathBuf, String> {
    let out = Command::new(cargo)
        .current_dir(root)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .output()
        .map_err(|e| format!("cannot run cargo metadata: {e}"))?;
    let json = String::from_utf8_lossy(&out.stdout);
    // The one string field we need; a JSON parser would be the only dependency of this crate.
    let key = "\"target_directory\":\"";
    let start = json
        .find(key)
        .ok_or("cargo metadata did not report target_directory")?
        + key.len();
    let end = json[start..]
        .find('"')
        .ok_or("malformed cargo metadata output")?;
    Ok(PathBuf::from(
        json[start..start + end].replace("\\\\", "\\"),
    ))
}
