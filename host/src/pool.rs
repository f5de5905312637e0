//! The worker pool, leader/followers style: every worker waits on the shared readiness set, the one woken
//! serves that connection (or accepts new ones) and re-arms it. No hand-off between threads per request,
//! and a handler that blocks delays only its own connection (DESIGN.md measured both).
//!
//! Only as many workers as there are cores run the event loop at once; the others are spares, parked off
//! the readiness set. Every extra thread waiting in `epoll_wait` is one the kernel wakes (a context switch)
//! for an event a running worker would have taken a moment later: on 2 cores, 4 workers in the loop cost
//! 0.74 context switches and 8.4 us of CPU per plaintext request, 2 workers 0.26 and 6.9 us. A spare takes
//! the place of a worker that has been inside one connection's handler for [`BLOCKED_AFTER`] (a handler
//! blocking on I/O or a lock), so blocking handlers still cost only their own connection, up to
//! `--threads` of them at once; the worker steps aside again once it is back.

use std::io;
use std::net::Shutdown;
use std::os::fd::AsRawFd;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::conn::{Conn, Context, Next, Scratch};
use crate::connections::LISTENER;
use crate::dispatch::panic_message;
use crate::http::{date, response};
use crate::poller::Interest;
use crate::server::Shared;
use crate::sys;

/// How often deadlines are checked, and so the precision of every timeout.
const SWEEP_EVERY: Duration = Duration::from_millis(100);
/// Connections accepted per wake-up of the listener before it is re-armed for another worker.
const ACCEPT_BATCH: usize = 64;
/// A worker serving one connection for longer than this counts as blocked, and a spare takes its place.
/// Serving a request that does not block takes microseconds; this is far above that and below the 2 ms
/// p99 a blocked worker must not cause to other connections.
const BLOCKED_AFTER: Duration = Duration::from_millis(1);
/// How often a spare looks for blocked workers itself. Workers in the loop notice a blocked peer after
/// each event and call a spare at once; this covers the moments when every worker in the loop is blocked.
/// Two 10 ms blockers on 2 cores, p99 of the other connections: 5.1 ms watching every 5 ms, 2.1 ms every
/// 1 ms (5 ms unless a worker was already blocked: 3.9-6.0 ms). Cost: ~1,000 wake-ups a second of one
/// thread, within noise of plaintext CPU per request (7.10-7.24 vs 7.26-7.41 us), paid only while some
/// worker is serving: an idle server's watcher waits [`SWEEP_EVERY`] (idle CPU 80 -> 10 ms per 10 s).
const WATCH_EVERY: Duration = Duration::from_millis(1);

/// Which workers run the event loop, and the spares that take the place of blocked ones.
pub(crate) struct Pool {
    /// Workers that may run the event loop at once, blocked ones not counted: the number of cores.
    runnable: usize,
    /// Workers in the event loop (blocked ones included); the others wait in `spares`.
    in_loop: AtomicUsize,
    /// Per worker: microseconds since `epoch` at which it started serving a connection, 0 when not serving.
    serving_since: Box<[AtomicU64]>,
    epoch: Instant,
    /// A worker in the loop has called a spare that has not joined yet (so it calls only once).
    called: AtomicBool,
    /// Whether one spare is watching (every [`WATCH_EVERY`]); the others wait to be called.
    watching: Mutex<bool>,
    spares: Condvar,
}

impl Pool {
    /// A pool of `threads` workers of which as many as the machine has cores run at once.
    pub(crate) fn new(threads: usize) -> Pool {
        let threads = threads.max(1);
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let runnable = cores.clamp(1, threads);
        Pool {
            runnable,
            in_loop: AtomicUsize::new(runnable),
            serving_since: (0..threads).map(|_| AtomicU64::new(0)).collect(),
            epoch: Instant::now(),
            called: AtomicBool::new(false),
            watching: Mutex::new(false),
            spares: Condvar::new(),
        }
    }

    /// Microseconds since `epoch`, plus one (0 means "not serving").
    fn micros(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64 + 1
    }

    /// Workers serving one connection for longer than [`BLOCKED_AFTER`] at `now`.
    fn blocked(&self, now: u64) -> usize {
        let limit = BLOCKED_AFTER.as_micros() as u64;
        self.serving_since
            .iter()
            .map(|since| since.load(Ordering::Relaxed))
            .filter(|&since| since != 0 && now.saturating_sub(since) > limit)
            .count()
    }

    /// Whether any worker is inside a connection right now.
    fn anyone_serving(&self) -> bool {
        self.serving_since
            .iter()
            .any(|since| since.load(Ordering::Relaxed) != 0)
    }

    /// Fewer than `runnable` workers in the loop are not blocked, and a spare exists to help.
    fn needs_spare(&self, now: u64) -> bool {
        let in_loop = self.in_loop.load(Ordering::Relaxed);
        in_loop < self.serving_since.len() && in_loop < self.runnable + self.blocked(now)
    }

    /// After each event: calls a spare when a worker in the loop is blocked. Four atomic loads, and a
    /// futex wake once per blocked episode.
    fn call_spare_if_needed(&self, now: u64) {
        if self.needs_spare(now) && !self.called.swap(true, Ordering::Relaxed) {
            self.spares.notify_one();
        }
    }

    /// After serving: leaves the loop when more workers than `runnable` are in it and not blocked (a spare
    /// took this worker's place while it was blocked). One atomic load when nothing was blocked.
    fn steps_aside(&self) -> bool {
        let mut in_loop = self.in_loop.load(Ordering::Relaxed);
        while in_loop > self.runnable {
            if in_loop <= self.runnable + self.blocked(self.micros()) {
                return false;
            }
            match self.in_loop.compare_exchange(
                in_loop,
                in_loop - 1,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(now) => in_loop = now,
            }
        }
        false
    }

    /// Waits as a spare until a worker in the loop is blocked (then returns to take its place) or shutdown
    /// is complete.
    fn wait_as_spare(&self, shared: &Shared) {
        let mut watching = self
            .watching
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        loop {
            if finished(shared) {
                return;
            }
            if self.needs_spare(self.micros()) {
                self.in_loop.fetch_add(1, Ordering::Relaxed);
                return;
            }
            let watcher = !*watching;
            *watching = true;
            // While no worker is serving, none can be blocked: the watcher need not wake every millisecond,
            // and an idle server stays idle. Workers in the loop still call a spare the moment one blocks.
            let timeout = if watcher && self.anyone_serving() {
                WATCH_EVERY
            } else {
                SWEEP_EVERY
            };
            watching = self
                .spares
                .wait_timeout(watching, timeout)
                .map_or_else(|poisoned| poisoned.into_inner().0, |(guard, _)| guard);
            if watcher {
                *watching = false;
            }
            // Called or not, a spare is awake and checks: a later blocked worker may call again.
            self.called.store(false, Ordering::Relaxed);
        }
    }
}

/// One worker's life: wait, serve, repeat, until shutdown is complete. Workers from `id` = the number of
/// cores up start as spares.
pub(crate) fn work(shared: &Shared, id: usize) {
    let pool = &shared.pool;
    let mut scratch = Scratch::default();
    if id >= pool.runnable {
        pool.wait_as_spare(shared);
    }
    let serving_since = &pool.serving_since[id % pool.serving_since.len()];
    while !finished(shared) {
        match shared.poller.wait(SWEEP_EVERY) {
            Ok(Some(event)) if event.token == LISTENER => accept(shared),
            Ok(Some(event)) => {
                let now = pool.micros();
                serving_since.store(now, Ordering::Relaxed);
                serve(shared, event.token, &mut scratch);
                serving_since.store(0, Ordering::Relaxed);
                if pool.steps_aside() {
                    pool.wait_as_spare(shared);
                } else {
                    pool.call_spare_if_needed(now);
                }
            }
            Ok(None) => {}
            Err(err) => {
                log::error!("waiting for events failed: {err}");
                std::thread::sleep(SWEEP_EVERY);
            }
        }
        sweep_if_due(shared);
    }
}

/// Shutdown began and every connection is gone, or its deadline passed.
fn finished(shared: &Shared) -> bool {
    match shared.shutdown_deadline.get() {
        None => false,
        Some(deadline) => Instant::now() >= *deadline || shared.connections.open() == 0,
    }
}

fn serve(shared: &Shared, token: u64, scratch: &mut Scratch) {
    let Some(mut conn) = shared.connections.take(token) else {
        return;
    };
    let date = date::now();
    let cx = Context {
        router: &shared.router,
        limits: &shared.limits,
        timeouts: &shared.timeouts,
        shutdown: &shared.shutdown_deadline,
        date: &date,
    };
    let next =
        catch_unwind(AssertUnwindSafe(|| conn.serve(scratch, &cx))).unwrap_or_else(|panic| {
            log::error!(
                "bug: panic while serving {}: {}",
                conn.peer(),
                panic_message(&*panic)
            );
            *scratch = Scratch::default();
            Next::Close
        });
    match next {
        Next::Park(interest) => {
            let fd = conn.socket().as_raw_fd();
            shared.connections.park(token, conn);
            if let Err(err) = shared.poller.rearm(fd, token, interest) {
                log::warn!("cannot re-arm a connection: {err}");
                if let Some(conn) = shared.connections.take(token) {
                    close(shared, token, conn);
                }
            }
        }
        Next::Close => close(shared, token, conn),
    }
}

fn close(shared: &Shared, token: u64, conn: Box<Conn>) {
    drop(conn);
    shared.connections.remove(token);
}

/// Accepts a batch of new connections, then re-arms the listener.
fn accept(shared: &Shared) {
    let guard = shared
        .listener
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let Some(listener) = guard.as_ref() else {
        return;
    };
    for _ in 0..ACCEPT_BATCH {
        // Non-blocking and TCP_NODELAY from the start: no system call per connection to set them.
        match sys::accept_nonblocking(listener) {
            Ok((socket, peer)) => {
                register(shared, Box::new(Conn::new(socket, peer, &shared.timeouts)));
            }
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
            Err(err) if is_out_of_descriptors(&err) => {
                warn_rate_limited(&format!(
                    "accept paused: {err} (raise the open-files limit)"
                ));
                shared.accept_paused.store(true, Ordering::Relaxed);
                return;
            }
            Err(err) => log::debug!("accept failed: {err}"),
        }
    }
    rearm_listener(shared, listener);
}

fn rearm_listener(shared: &Shared, listener: &std::net::TcpListener) {
    if let Err(err) = shared
        .poller
        .rearm(listener.as_raw_fd(), LISTENER, Interest::Read)
    {
        log::error!("cannot re-arm the listener: {err}");
    }
}

/// Parks a new connection in the readiness set, or answers 503 when `--max-connections` are open.
fn register(shared: &Shared, conn: Box<Conn>) {
    let fd = conn.socket().as_raw_fd();
    match shared.connections.insert(conn, shared.max_connections) {
        Ok(token) => {
            if let Err(err) = shared.poller.add(fd, token, Interest::Read) {
                log::warn!("cannot watch a new connection: {err}");
                if let Some(conn) = shared.connections.take(token) {
                    close(shared, token, conn);
                }
            }
        }
        Err(conn) => refuse_overloaded(&conn),
    }
}

/// Over the connection limit: a fast 503 instead of unbounded memory, then close.
fn refuse_overloaded(conn: &Conn) {
    warn_rate_limited(&format!(
        "{}: refused with 503: connection limit reached",
        conn.peer()
    ));
    let mut out = Vec::new();
    response::write_error(
        &mut out,
        503,
        "server at its connection limit",
        &date::now(),
    );
    let _ = std::io::Write::write(&mut conn.socket(), &out);
    let _ = conn.socket().shutdown(Shutdown::Write);
}

fn is_out_of_descriptors(err: &io::Error) -> bool {
    matches!(err.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
}

/// Logs at most one such warning per second, so an overload does not also flood the log.
fn warn_rate_limited(message: &str) {
    static LAST_SECOND: AtomicU64 = AtomicU64::new(u64::MAX);
    static PROCESS_START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    let second = Instant::now()
        .duration_since(*PROCESS_START.get_or_init(Instant::now))
        .as_secs();
    if LAST_SECOND.swap(second, Ordering::Relaxed) != second {
        log::warn!("{message}");
    }
}

/// One worker per `SWEEP_EVERY` wakes the connections whose deadline passed, and resumes accepting.
fn sweep_if_due(shared: &Shared) {
    let now = Instant::now();
    let elapsed = now.duration_since(shared.started).as_millis() as u64;
    let last = shared.last_sweep.load(Ordering::Relaxed);
    if elapsed < last + SWEEP_EVERY.as_millis() as u64
        || shared
            .last_sweep
            .compare_exchange(last, elapsed, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
    {
        return;
    }
    let shutting_down = shared.shutdown_deadline.get().is_some();
    shared
        .connections
        .expire(now, shutting_down, &shared.poller);
    if shared.accept_paused.swap(false, Ordering::Relaxed) {
        let guard = shared
            .listener
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(listener) = guard.as_ref() {
            rearm_listener(shared, listener);
        }
    }
}
