//! `plugd` runs that end by themselves (startup failures, `--help`), signals, and `/proc` readings of a
//! running process. Every wait is bounded.

use std::io::{self, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::plugd_bin;

/// What a finished `plugd` run printed.
#[derive(Debug)]
pub struct RunOutput {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `plugd args` to completion (bounded: killed after `timeout`) with stdin closed.
pub fn run_plugd(args: &[&str], envs: &[(&str, &str)], timeout: Duration) -> RunOutput {
    let mut cmd = plugd_command(args, envs);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn plugd");
    let out = drain_pipe(child.stdout.take().expect("stdout piped"));
    let err = drain_pipe(child.stderr.take().expect("stderr piped"));
    let status = wait_child(&mut child, timeout).unwrap_or_else(|| {
        let _ = child.kill();
        let _ = child.wait();
        panic!("plugd {args:?} did not exit within {timeout:?}");
    });
    RunOutput {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

/// `plugd args` for a startup failure: its exit status and stderr (10 s bound).
pub fn run_status(args: &[&str]) -> (ExitStatus, String) {
    let out = run_plugd(args, &[], Duration::from_secs(10));
    (out.status, out.stderr)
}

/// A `plugd` command with a clean environment: no inherited `PLUGD_*` variable changes what a test asked for.
pub(crate) fn plugd_command(args: &[&str], envs: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(plugd_bin());
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("PLUGD_") {
            cmd.env_remove(key);
        }
    }
    cmd.env("RUST_LOG", "debug")
        // Plain text even if the test runner's stderr is a terminal: tests match on log lines.
        .env("RUST_LOG_STYLE", "never")
        .envs(envs.iter().copied())
        .args(args)
        .stdin(Stdio::null());
    cmd
}

fn drain_pipe(mut pipe: impl Read + Send + 'static) -> JoinHandle<String> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    })
}

/// Waits for `child` to exit, polling; `None` if it is still running after `timeout`.
pub(crate) fn wait_child(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// Sends `signal` to process `pid`.
pub fn send_signal(pid: u32, signal: libc::c_int) {
    // SAFETY: kill(2) has no memory-safety preconditions; pid is a child we spawned and have not reaped.
    let rc = unsafe { libc::kill(pid as libc::pid_t, signal) };
    assert_eq!(
        rc,
        0,
        "kill({pid}, {signal}): {}",
        io::Error::last_os_error()
    );
}

/// A numeric field of `/proc/PID/status`, e.g. `VmRSS` (in KiB) or `Threads`.
pub fn proc_status(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/status: {e}"));
    status
        .lines()
        .filter_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .find_map(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}
