//! A `plugd` process serving on a free port for the length of a test: started with a clean environment,
//! its stderr captured so tests can wait for log lines, killed and reaped on drop.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::process::{plugd_command, wait_child};
use crate::{
    Conn, Response, TempDir, example_plugins, get, plugin_dir_with, repo_static_dir, send_signal,
};

/// How long a started server has to print `listening on`: a debug binary starting with plugins loads in
/// milliseconds; the margin is for a loaded 2-core machine.
pub const START_TIMEOUT: Duration = Duration::from_secs(20);

/// The line that names the admin listener's address.
const ADMIN_LISTENING: &str = "admin listening on http://";

/// Everything a running server has written to stderr so far, shared with the thread that reads it.
#[derive(Default)]
struct LogBuf {
    text: Mutex<String>,
    grew: Condvar,
}

/// A `plugd` process started by a test. Killed and reaped on drop; its stderr is printed if the test panicked.
pub struct Server {
    child: Child,
    addr: SocketAddr,
    log: Arc<LogBuf>,
    reader: Option<JoinHandle<()>>,
    exit: Option<ExitStatus>,
    /// Folders the server reads (its plugin dir); kept alive as long as the process.
    _dirs: Vec<TempDir>,
}

impl Server {
    /// Starts `plugd` with `args` plus, unless given: `--port 0`, `--host 127.0.0.1`, an empty temporary
    /// `--plugin-dir` and the repository's `static/` as `--static-dir`; `RUST_LOG=debug` so the access log and
    /// rejections show in [`Server::stderr`]. Panics (with stderr) if it does not log `listening on` in time.
    pub fn start(args: &[&str]) -> Server {
        Server::start_with_env(args, &[])
    }

    /// [`Server::start`] with extra environment variables (they override `RUST_LOG`).
    pub fn start_with_env(args: &[&str], envs: &[(&str, &str)]) -> Server {
        Server::try_start(args, envs, Vec::new()).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Starts `plugd` with the example plugins (copied into a fresh plugin dir) and the repository's `static/`.
    pub fn start_with_examples(extra_args: &[&str]) -> Server {
        let dir = plugin_dir_with(&example_plugins());
        Server::start_with_plugin_dir(dir, extra_args)
    }

    /// Starts `plugd` serving the plugins in `dir` (which the server keeps alive).
    pub fn start_with_plugin_dir(dir: TempDir, extra_args: &[&str]) -> Server {
        let plugin_dir = dir.path().to_str().expect("utf-8 temp path").to_owned();
        let mut args = vec!["--plugin-dir", plugin_dir.as_str()];
        args.extend_from_slice(extra_args);
        Server::try_start(&args, &[], vec![dir]).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Like [`Server::start`], but returns the failure (with the server's stderr) instead of panicking.
    pub fn try_start(
        args: &[&str],
        envs: &[(&str, &str)],
        mut dirs: Vec<TempDir>,
    ) -> Result<Server, String> {
        let has = |flag: &str| {
            args.iter()
                .any(|a| *a == flag || a.starts_with(&format!("{flag}=")))
        };
        let mut full: Vec<String> = Vec::new();
        if !has("--port") {
            full.extend(["--port".into(), "0".into()]);
        }
        if !has("--host") {
            full.extend(["--host".into(), "127.0.0.1".into()]);
        }
        if !has("--plugin-dir") {
            let empty = TempDir::new("no-plugins");
            full.extend(["--plugin-dir".into(), empty.path().display().to_string()]);
            dirs.push(empty);
        }
        if !has("--static-dir") {
            full.extend([
                "--static-dir".into(),
                repo_static_dir().display().to_string(),
            ]);
        }
        full.extend(args.iter().map(|a| a.to_string()));
        let full: Vec<&str> = full.iter().map(String::as_str).collect();

        let mut cmd = plugd_command(&full, envs);
        cmd.stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| format!("spawn plugd: {e}"))?;
        let log = Arc::new(LogBuf::default());
        let reader = {
            let log = Arc::clone(&log);
            let mut stderr = BufReader::new(child.stderr.take().expect("stderr piped"));
            thread::spawn(move || {
                let mut line = Vec::new();
                loop {
                    line.clear();
                    match stderr.read_until(b'\n', &mut line) {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {
                            log.text
                                .lock()
                                .unwrap()
                                .push_str(&String::from_utf8_lossy(&line));
                            log.grew.notify_all();
                        }
                    }
                }
                // EOF: wake waiters so they notice the process is gone.
                log.grew.notify_all();
            })
        };
        let mut server = Server {
            child,
            addr: SocketAddr::from(([0, 0, 0, 0], 0)),
            log,
            reader: Some(reader),
            exit: None,
            _dirs: dirs,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(addr) = parse_listening(&server.stderr()) {
                server.addr = addr;
                return Ok(server);
            }
            if let Some(status) = server.child.try_wait().map_err(|e| e.to_string())? {
                server.exit = Some(status);
                server.join_reader();
                return Err(format!(
                    "plugd {full:?} exited with {status} before listening; stderr:\n{}",
                    server.stderr()
                ));
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "plugd {full:?} did not log `listening on` within {START_TIMEOUT:?}; stderr:\n{}",
                    server.stderr()
                ));
            }
            server.wait_log_change(Duration::from_millis(50));
        }
    }

    /// The address the server listens on (parsed from its `listening on http://ADDR:PORT` line).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The admin listener's address, from its `admin listening on http://ADDR:PORT` line (logged right
    /// after `listening on`, so waited for); panics without one.
    pub fn admin_addr(&self) -> SocketAddr {
        let line = self
            .wait_for_log_line(&[ADMIN_LISTENING], START_TIMEOUT)
            .unwrap_or_else(|| panic!("no `{ADMIN_LISTENING}` line; stderr:\n{}", self.stderr()));
        let rest = &line[line.find(ADMIN_LISTENING).unwrap_or(0) + ADMIN_LISTENING.len()..];
        let addr = rest.split_whitespace().next().unwrap_or_default();
        addr.parse()
            .unwrap_or_else(|e| panic!("admin address {addr:?} in {line:?}: {e}"))
    }

    /// `http://ADDR:PORT` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A snapshot of everything the server wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.log.text.lock().unwrap().clone()
    }

    /// Waits until stderr contains `needle`; returns whether it did within `timeout`.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut text = self.log.text.lock().unwrap();
        loop {
            if text.contains(needle) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            text = self.log.grew.wait_timeout(text, deadline - now).unwrap().0;
        }
    }

    /// Waits until stderr has a line containing every one of `needles`; returns that line.
    pub fn wait_for_log_line(&self, needles: &[&str], timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        let mut text = self.log.text.lock().unwrap();
        loop {
            if let Some(line) = text
                .lines()
                .find(|line| needles.iter().all(|n| line.contains(n)))
            {
                return Some(line.to_owned());
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            text = self.log.grew.wait_timeout(text, deadline - now).unwrap().0;
        }
    }

    fn wait_log_change(&self, timeout: Duration) {
        let text = self.log.text.lock().unwrap();
        let _ = self.log.grew.wait_timeout(text, timeout);
    }

    /// Sends SIGTERM (graceful shutdown).
    pub fn terminate(&self) {
        self.signal(libc::SIGTERM);
    }

    /// Sends `signal` to the server process.
    pub fn signal(&self, signal: libc::c_int) {
        assert!(self.exit.is_none(), "server already exited");
        send_signal(self.pid(), signal);
    }

    /// Waits for the process to exit; panics (after killing it) if it is still running after `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        if let Some(status) = self.exit {
            return status;
        }
        match wait_child(&mut self.child, timeout) {
            Some(status) => {
                self.exit = Some(status);
                self.join_reader();
                status
            }
            None => {
                self.kill();
                panic!(
                    "plugd did not exit within {timeout:?}; stderr:\n{}",
                    self.stderr()
                );
            }
        }
    }

    /// Whether the process is still running (not exited).
    pub fn is_running(&mut self) -> bool {
        if self.exit.is_some() {
            return false;
        }
        match self.child.try_wait() {
            Ok(Some(status)) => {
                self.exit = Some(status);
                false
            }
            _ => true,
        }
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        if self.exit.is_none() {
            let _ = self.child.kill();
            self.exit = self.child.wait().ok();
        }
        self.join_reader();
    }

    fn join_reader(&mut self) {
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }

    /// Opens a raw connection to the server.
    pub fn connect(&self) -> Conn {
        Conn::open(self.addr)
    }

    /// One `GET path` on a fresh connection with `Connection: close`.
    pub fn get(&self, path: &str) -> Response {
        get(self.addr, path)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
        if thread::panicking() {
            eprintln!(
                "---- plugd stderr ({}) ----\n{}---- end of plugd stderr ----",
                self.addr,
                self.stderr()
            );
        }
    }
}

/// Finds `listening on http://ADDR:PORT` in `log`.
fn parse_listening(log: &str) -> Option<SocketAddr> {
    let rest = &log[log.find("listening on http://")? + "listening on http://".len()..];
    let end = rest.find(|c: char| c.is_whitespace()).unwrap_or(rest.len());
    let addr = rest[..end].trim_end_matches('/');
    // `[::1]:8080` and `127.0.0.1:8080` both parse as SocketAddr.
    addr.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listening_line_gives_the_address() {
        let log = "[2026 INFO plugd::server] listening on http://127.0.0.1:41234\n";
        assert_eq!(
            parse_listening(log),
            Some("127.0.0.1:41234".parse().unwrap())
        );
        assert_eq!(
            parse_listening("listening on http://[::1]:80/ x"),
            Some("[::1]:80".parse().unwrap())
        );
        assert_eq!(parse_listening("starting"), None);
    }
}
