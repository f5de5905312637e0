//! Shared helpers for the end-to-end tests: build the real `plugd` binary and the example plugins, start the
//! binary on a free port, talk raw HTTP/1.1 to it over TCP.
//!
//! Every wait in here is bounded, so a broken server fails a test instead of hanging it.
//!
//! Building: `cargo test --workspace` does not produce the plugins' `cdylib` files (DESIGN.md pitfall 6), so the
//! first helper that needs a binary runs `cargo build -p plugd -p hello -p echo -p counter` once per test
//! binary. That nested cargo runs while the outer `cargo test` is executing tests, when the outer cargo no
//! longer holds the build-directory lock, so it does not deadlock; when several test binaries run at once
//! (nextest), cargo's own lock serialises their builds and the later ones find everything fresh.

use std::collections::VecDeque;
use std::ffi::OsStr;
use std::io::{self, BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How long a started server has to print `listening on`: a debug binary starting with plugins loads in
/// milliseconds; the margin is for a loaded 2-core machine.
pub const START_TIMEOUT: Duration = Duration::from_secs(20);
/// Default bound on any single read from the server in the raw helpers.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// The example plugin crates, built by [`example_plugins`].
pub const EXAMPLE_PLUGINS: &[&str] = &["hello", "echo", "counter"];

// ---------------------------------------------------------------------------------------------------------
// Building
// ---------------------------------------------------------------------------------------------------------

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
        let profile_dir = profile_dir();
        let target_dir = profile_dir.parent().expect("profile dir has a parent");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
        let mut cmd = Command::new(cargo);
        cmd.current_dir(workspace_root())
            .arg("build")
            .arg("--target-dir")
            .arg(target_dir)
            .args(["-p", "plugd"]);
        for plugin in EXAMPLE_PLUGINS {
            cmd.args(["-p", plugin]);
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
            .expect("could not run cargo to build plugd and the example plugins");
        assert!(
            output.status.success(),
            "building plugd and the example plugins failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        profile_dir
    })
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
        .map(|name| {
            let lib = dir.join(format!(
                "{}{name}{}",
                std::env::consts::DLL_PREFIX,
                std::env::consts::DLL_SUFFIX
            ));
            assert!(lib.is_file(), "{} missing after build", lib.display());
            lib
        })
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

// ---------------------------------------------------------------------------------------------------------
// Temporary folders
// ---------------------------------------------------------------------------------------------------------

/// A fresh folder under the system temp dir, removed with everything in it on drop.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(label: &str) -> TempDir {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path = std::env::temp_dir().join(format!(
            "plugd-test-{label}-{}-{}-{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
        TempDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `self.path().join(rel)`.
    pub fn join(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.path.join(rel)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A fresh plugin folder holding copies of `libs` under their file names. Copies, never hard links: glibc
/// identifies a loaded library by name and inode, and a link would alias the original (DESIGN.md pitfall 5).
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

// ---------------------------------------------------------------------------------------------------------
// Running the binary
// ---------------------------------------------------------------------------------------------------------

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
fn plugd_command(args: &[&str], envs: &[(&str, &str)]) -> Command {
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
fn wait_child(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
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

/// Finds `listening on http://ADDR:PORT` in `log`.
fn parse_listening(log: &str) -> Option<SocketAddr> {
    let rest = &log[log.find("listening on http://")? + "listening on http://".len()..];
    let end = rest.find(|c: char| c.is_whitespace()).unwrap_or(rest.len());
    let addr = rest[..end].trim_end_matches('/');
    // `[::1]:8080` and `127.0.0.1:8080` both parse as SocketAddr.
    addr.parse().ok()
}

// ---------------------------------------------------------------------------------------------------------
// Raw HTTP over TCP
// ---------------------------------------------------------------------------------------------------------

/// Connects with [`IO_TIMEOUT`] on reads and writes and `TCP_NODELAY`.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)
        .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.set_nodelay(true).unwrap();
    stream
}

/// Writes `bytes` on a fresh connection and reads until the server closes it. Panics if the server has not
/// closed within [`IO_TIMEOUT`] (so send `Connection: close`, or a request the server must close on).
pub fn send_raw(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut stream = connect(addr);
    // The server may answer and close before reading everything (e.g. 413): a failed write is not the test's
    // concern, what comes back is.
    let _ = stream.write_all(bytes);
    match read_until_close(&mut stream, IO_TIMEOUT) {
        Ok(bytes) => bytes,
        Err(got) => panic!(
            "server did not close the connection within {IO_TIMEOUT:?}; received so far:\n{}",
            String::from_utf8_lossy(&got)
        ),
    }
}

/// Reads until EOF (or a reset, which also ends the connection). `Err(bytes so far)` if `timeout` passes first.
pub fn read_until_close(stream: &mut TcpStream, timeout: Duration) -> Result<Vec<u8>, Vec<u8>> {
    let deadline = Instant::now() + timeout;
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(got);
        }
        stream.set_read_timeout(Some(left)).unwrap();
        match stream.read(&mut buf) {
            Ok(0) => return Ok(got),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Err(got);
            }
            // Reset or aborted: the server closed.
            Err(_) => return Ok(got),
        }
    }
}

/// `GET path` on a fresh connection with `Connection: close`, parsed.
pub fn get(addr: SocketAddr, path: &str) -> Response {
    let mut conn = Conn::open(addr);
    conn.send(format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").as_bytes());
    conn.read_response()
        .unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

/// One parsed HTTP response.
#[derive(Clone, Debug)]
pub struct Response {
    /// `HTTP/1.1`.
    pub version: String,
    pub status: u16,
    pub reason: String,
    /// Fields in the order received, names as sent.
    pub headers: Vec<(String, String)>,
    /// The de-framed body (chunked decoded).
    pub body: Vec<u8>,
    /// The status line and header section exactly as received, up to and including the empty line.
    pub raw_head: String,
    /// Whether the body came chunked.
    pub chunked: bool,
}

impl Response {
    /// The status line without CRLF, e.g. `HTTP/1.1 200 OK`.
    pub fn status_line(&self) -> &str {
        self.raw_head.split("\r\n").next().unwrap_or("")
    }

    /// The first field named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of fields named `name`, in order.
    pub fn headers_named(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Whether `name`'s value, as a comma-separated list, contains `token` (case-insensitive).
    pub fn header_has_token(&self, name: &str, token: &str) -> bool {
        self.headers_named(name)
            .iter()
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }

    pub fn body_str(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Parses responses one at a time from a byte source, keeping leftover bytes between them, so keep-alive and
/// pipelining can be checked byte-exact.
pub struct ResponseReader<R> {
    src: R,
    /// Bytes received but not yet consumed by a parsed response.
    buf: VecDeque<u8>,
    /// Methods of the requests whose responses are still to come, so a HEAD response is read without a body.
    pending_methods: VecDeque<String>,
}

impl<R: Read> ResponseReader<R> {
    pub fn new(src: R) -> ResponseReader<R> {
        ResponseReader {
            src,
            buf: VecDeque::new(),
            pending_methods: VecDeque::new(),
        }
    }

    /// Records that the next unanswered request used `method` (only HEAD changes how a response is read).
    pub fn expect_method(&mut self, method: &str) {
        self.pending_methods.push_back(method.to_owned());
    }

    /// Records the methods of the request lines in `bytes`: a line `METHOD target HTTP/x` at the start or
    /// right after an empty line. Pipelined requests are recognised when each starts a write or follows a head.
    fn note_methods(&mut self, bytes: &[u8]) {
        let text = String::from_utf8_lossy(bytes);
        let mut at_start = true;
        for line in text.split("\r\n") {
            if at_start && line.contains(" HTTP/") {
                let method = line.split(' ').next().unwrap_or_default();
                self.pending_methods.push_back(method.to_owned());
            }
            at_start = line.is_empty();
        }
    }

    /// Reads one response (a 1xx interim response counts as one). Errors on a read timeout, on EOF before a
    /// complete response, or on a malformed response.
    pub fn read_response(&mut self) -> io::Result<Response> {
        let head_end = loop {
            if let Some(end) = find(self.buf.make_contiguous(), b"\r\n\r\n") {
                break end + 4;
            }
            if self.buf.len() > 1 << 20 {
                return Err(invalid("response head over 1 MiB"));
            }
            if self.fill()? == 0 {
                return Err(io::Error::new(
                    ErrorKind::UnexpectedEof,
                    format!(
                        "connection closed before a complete response head; got {:?}",
                        String::from_utf8_lossy(self.buf.make_contiguous())
                    ),
                ));
            }
        };
        let raw_head = String::from_utf8(self.buf.drain(..head_end).collect())
            .map_err(|_| invalid("response head is not UTF-8"))?;
        let mut lines = raw_head.split("\r\n");
        let status_line = lines.next().unwrap_or("");
        let mut parts = status_line.splitn(3, ' ');
        let version = parts.next().unwrap_or("").to_owned();
        let status: u16 = parts
            .next()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| invalid(&format!("bad status line {status_line:?}")))?;
        let reason = parts.next().unwrap_or("").to_owned();
        let mut headers = Vec::new();
        for line in lines.filter(|l| !l.is_empty()) {
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| invalid(&format!("bad header line {line:?}")))?;
            headers.push((name.to_owned(), value.trim().to_owned()));
        }
        let mut response = Response {
            version,
            status,
            reason,
            headers,
            body: Vec::new(),
            raw_head,
            chunked: false,
        };
        if (100..200).contains(&status) {
            return Ok(response);
        }
        let method = self.pending_methods.pop_front().unwrap_or_default();
        // RFC 9112 §6.3: responses to HEAD, and 204 and 304 responses, have no body whatever their fields say.
        if method == "HEAD" || status == 204 || status == 304 {
            return Ok(response);
        }
        if response.header_has_token("Transfer-Encoding", "chunked") {
            response.chunked = true;
            response.body = self.read_chunked()?;
        } else if let Some(len) = response.header("Content-Length") {
            let len: usize = len
                .parse()
                .map_err(|_| invalid(&format!("bad Content-Length {len:?}")))?;
            response.body = self.read_exact_body(len)?;
        } else {
            // Delimited by close (RFC 9112 §6.3 rule 8).
            while self.fill()? != 0 {}
            response.body = self.buf.drain(..).collect();
        }
        Ok(response)
    }

    /// Like [`ResponseReader::read_response`] but skips 1xx interim responses.
    pub fn read_final_response(&mut self) -> io::Result<Response> {
        loop {
            let response = self.read_response()?;
            if response.status >= 200 {
                return Ok(response);
            }
        }
    }

    /// Reads more bytes into the buffer; 0 at EOF. A reset counts as EOF.
    fn fill(&mut self) -> io::Result<usize> {
        let mut chunk = [0u8; 8192];
        loop {
            match self.src.read(&mut chunk) {
                Ok(n) => {
                    self.buf.extend(&chunk[..n]);
                    return Ok(n);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted
                    ) =>
                {
                    return Ok(0);
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn read_exact_body(&mut self, len: usize) -> io::Result<Vec<u8>> {
        while self.buf.len() < len {
            if self.fill()? == 0 {
                return Err(io::Error::new(
                    ErrorKind::UnexpectedEof,
                    format!("body cut short: {} of {len} bytes", self.buf.len()),
                ));
            }
        }
        Ok(self.buf.drain(..len).collect())
    }

    fn read_line(&mut self) -> io::Result<String> {
        loop {
            if let Some(end) = find(self.buf.make_contiguous(), b"\r\n") {
                let line: Vec<u8> = self.buf.drain(..end + 2).take(end).collect();
                return String::from_utf8(line).map_err(|_| invalid("chunk line is not UTF-8"));
            }
            if self.fill()? == 0 {
                return Err(io::Error::new(
                    ErrorKind::UnexpectedEof,
                    "EOF inside chunked body",
                ));
            }
        }
    }

    /// RFC 9112 §7.1: chunk-size [ext] CRLF data CRLF ... last-chunk trailer-section CRLF.
    fn read_chunked(&mut self) -> io::Result<Vec<u8>> {
        let mut body = Vec::new();
        loop {
            let line = self.read_line()?;
            let size = line.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(size, 16)
                .map_err(|_| invalid(&format!("bad chunk size line {line:?}")))?;
            if size == 0 {
                while !self.read_line()?.is_empty() {}
                return Ok(body);
            }
            body.extend(self.read_exact_body(size)?);
            if !self.read_line()?.is_empty() {
                return Err(invalid("chunk data not followed by CRLF"));
            }
        }
    }
}

/// A raw client connection: write any bytes, read parsed responses one at a time.
pub struct Conn {
    reader: ResponseReader<TcpStream>,
}

impl Conn {
    pub fn open(addr: SocketAddr) -> Conn {
        Conn {
            reader: ResponseReader::new(connect(addr)),
        }
    }

    /// The underlying socket (to change timeouts, write without method tracking, ...).
    pub fn stream(&mut self) -> &mut TcpStream {
        &mut self.reader.src
    }

    /// Writes `bytes` as they are, noting the methods of the request lines in them so HEAD responses are read
    /// without a body.
    pub fn send(&mut self, bytes: &[u8]) {
        self.try_send(bytes)
            .unwrap_or_else(|e| panic!("write to server: {e}"));
    }

    /// Like [`Conn::send`], returning the write error instead of panicking (the server may have closed).
    pub fn try_send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.reader.note_methods(bytes);
        self.reader.src.write_all(bytes)
    }

    /// Half-closes the write side: the server sees EOF after what was sent.
    pub fn shutdown_write(&mut self) {
        self.reader.src.shutdown(Shutdown::Write).unwrap();
    }

    /// See [`ResponseReader::read_response`]; each read waits at most [`IO_TIMEOUT`].
    pub fn read_response(&mut self) -> io::Result<Response> {
        self.reader.read_response()
    }

    /// See [`ResponseReader::read_final_response`].
    pub fn read_final_response(&mut self) -> io::Result<Response> {
        self.reader.read_final_response()
    }

    /// `Ok(())` if the server closes the connection (EOF or reset) within `timeout` without sending anything
    /// more; otherwise what happened instead (bytes arrived, or it stayed open).
    pub fn expect_closed(&mut self, timeout: Duration) -> Result<(), String> {
        match self.read_rest(timeout) {
            Ok(bytes) if bytes.is_empty() => Ok(()),
            Ok(bytes) => Err(format!(
                "got more bytes before close: {:?}",
                String::from_utf8_lossy(&bytes)
            )),
            Err(bytes) => Err(format!(
                "still open after {timeout:?} (received {:?})",
                String::from_utf8_lossy(&bytes)
            )),
        }
    }

    /// Everything the server sends until it closes, after any buffered bytes; `Err(bytes so far)` if it is
    /// still open after `timeout`.
    pub fn read_rest(&mut self, timeout: Duration) -> Result<Vec<u8>, Vec<u8>> {
        let mut got: Vec<u8> = self.reader.buf.drain(..).collect();
        let result = read_until_close(&mut self.reader.src, timeout);
        self.reader.src.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        match result {
            Ok(more) => {
                got.extend(more);
                Ok(got)
            }
            Err(more) => {
                got.extend(more);
                Err(got)
            }
        }
    }
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(ErrorKind::InvalidData, msg.to_owned())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Parses every response in `bytes` (as returned by [`send_raw`]); `methods` are the requests' methods in order
/// (only `HEAD` matters: its response has no body). Panics on a malformed or truncated response.
pub fn parse_responses(bytes: &[u8], methods: &[&str]) -> Vec<Response> {
    let mut reader = ResponseReader::new(bytes);
    for method in methods {
        reader.expect_method(method);
    }
    let mut out = Vec::new();
    while !(reader.buf.is_empty() && reader.src.is_empty()) {
        out.push(reader.read_response().unwrap_or_else(|e| {
            panic!(
                "malformed response #{} in {:?}: {e}",
                out.len() + 1,
                String::from_utf8_lossy(bytes)
            )
        }));
    }
    out
}

/// Parses the single response `bytes` must hold (panics if there are more or none).
pub fn parse_response(bytes: &[u8]) -> Response {
    let mut all = parse_responses(bytes, &[]);
    assert_eq!(
        all.len(),
        1,
        "expected exactly one response in {:?}",
        String::from_utf8_lossy(bytes)
    );
    all.remove(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_pipelined_responses_with_every_framing() {
        let bytes = b"HTTP/1.1 100 Continue\r\n\r\n\
HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello\
HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n\
HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nT: v\r\n\r\n\
HTTP/1.1 204 No Content\r\n\r\n\
HTTP/1.0 200 OK\r\nConnection: close\r\n\r\nuntil close";
        let all = parse_responses(bytes, &["POST", "HEAD", "GET", "GET", "GET"]);
        let summary: Vec<(u16, String)> = all.iter().map(|r| (r.status, r.body_str())).collect();
        assert_eq!(
            summary,
            [
                (100, String::new()),
                (200, "hello".into()),
                (200, String::new()),
                (200, "abcde".into()),
                (204, String::new()),
                (200, "until close".into()),
            ]
        );
        assert!(all[3].chunked);
        assert_eq!(all[1].status_line(), "HTTP/1.1 200 OK");
        assert_eq!(all[1].header("content-length"), Some("5"));
        assert_eq!(all[5].version, "HTTP/1.0");
    }

    #[test]
    #[should_panic(expected = "malformed response #1")]
    fn truncated_body_is_an_error() {
        parse_responses(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc", &[]);
    }

    #[test]
    fn send_methods_are_noted_per_request_line() {
        let mut reader = ResponseReader::new(&b""[..]);
        reader
            .note_methods(b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\nGET /x HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(reader.pending_methods, ["HEAD", "GET"]);
    }

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
