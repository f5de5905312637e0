//! The worker pool, leader/followers style: every worker waits on the shared readiness set, the one woken
//! serves that connection (or accepts new ones) and re-arms it. No hand-off between threads per request,
//! and a handler that blocks delays only its own connection (DESIGN.md measured both).

use std::io;
use std::net::Shutdown;
use std::os::fd::AsRawFd;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::conn::{Conn, Context, Next, Scratch};
use crate::connections::LISTENER;
use crate::dispatch::panic_message;
use crate::http::{date, response};
use crate::poller::Interest;
use crate::server::Shared;

/// How often deadlines are checked, and so the precision of every timeout.
const SWEEP_EVERY: Duration = Duration::from_millis(100);
/// Connections accepted per wake-up of the listener before it is re-armed for another worker.
const ACCEPT_BATCH: usize = 64;

/// One worker's life: wait, serve, repeat, until shutdown is complete.
pub(crate) fn work(shared: &Shared) {
    let mut scratch = Scratch::default();
    while !finished(shared) {
        match shared.poller.wait(SWEEP_EVERY) {
            Ok(Some(event)) if event.token == LISTENER => accept(shared),
            Ok(Some(event)) => serve(shared, event.token, &mut scratch),
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
        match listener.accept() {
            Ok((socket, peer)) => {
                if let Err(err) = socket
                    .set_nonblocking(true)
                    .and_then(|()| socket.set_nodelay(true))
                {
                    log::debug!("{peer}: cannot set up connection: {err}");
                    continue;
                }
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
