//! One worker's loop, leader/followers style: workers wait on one shared readiness set, and the one woken
//! serves that connection (or accepts new ones) itself. No hand-off between threads per request, and a
//! handler that blocks delays only its own connection (`docs/ARCHITECTURE.md` §4.2).
//!
//! A turn of the loop: take a wake-up (from the [`Ready`] queue, else from `epoll_wait`), accept or serve
//! it, and sweep deadlines when due. One `epoll_wait` may return several events: the worker serves the
//! first and queues the others, which every worker empties before it waits again (one system call for many
//! requests under load). How many workers run this loop at once, and how many threads there are, is the
//! pool's decision (`pool.rs`); starting and ending the threads is done here.
//!
//! When every worker is blocked inside a handler and `--max-threads` are running, no worker takes a turn:
//! the thread that started them ([`keep`]) then accepts new connections (up to `--max-connections`, so they
//! wait in the readiness set, in order, rather than in the kernel's backlog) and closes the connections
//! whose deadline passed, and it ends [`crate::server::Server::run`] at the shutdown deadline even if
//! handlers still block.

use std::io;
use std::net::TcpListener;
use std::os::fd::AsRawFd;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::config::{Config, Limits, Timeouts};
use crate::conn::{Conn, Context, Next, Scratch};
use crate::connections::{Connections, LISTENER, WAKER};
use crate::dispatch::panic_message;
use crate::http::date;
use crate::metrics::prometheus::Gauges;
use crate::poller::{Event, Events, Poller};
use crate::pool::{self, Pool, Wake};
use crate::rate_limit::{ClientConnections, RateLimiter};
use crate::ready::Ready;
use crate::router::{LiveRouter, RouterCache};
use crate::streaming::Schedule;
use crate::sys;

/// How often deadlines are checked, and so the precision of every timeout.
const SWEEP_EVERY: Duration = Duration::from_millis(100);
/// Most events taken from the readiness set per `epoll_wait`.
const EVENTS_PER_WAIT: usize = 16;
/// Stack of a worker thread, where handlers run. plugd's own path (every end-to-end test of the engine,
/// plugins, static files, clients and hostile input) passes with 64 KiB; the rest is the handlers'. Only
/// touched pages cost memory (a worker blocked in a sleeping handler holds about 24 KiB resident), so a
/// generous reserve costs address space only; it is still a quarter of Rust's 2 MiB default.
const WORKER_STACK: usize = 512 * 1024;
/// Most connections the keeper accepts per turn while the loop is stalled: one sweep period's worth of a
/// busy listener, so that it still expires connections in time.
const KEEPER_ACCEPTS: usize = 1024;

/// Everything the workers share.
pub(crate) struct Shared {
    poller: Poller,
    connections: Connections,
    /// `None` once shutdown began: dropping it refuses new connections at once.
    listener: Mutex<Option<TcpListener>>,
    /// Accepting stopped because the process ran out of descriptors; the sweep resumes it.
    accept_paused: AtomicBool,
    /// The routes serving now; each worker serves from its own [`RouterCache`] of them.
    routes: Arc<LiveRouter>,
    limits: Limits,
    timeouts: Timeouts,
    max_connections: usize,
    /// Open connections per client address, when `--max-connections-per-client` limits them.
    per_client: Option<Arc<ClientConnections>>,
    /// The per-client request limit, checked before any filter or handler runs.
    rate_limit: Option<RateLimiter>,
    /// Milliseconds on the pool's clock of the last deadline sweep.
    last_sweep: AtomicU64,
    /// Set once, when shutdown begins: the time by which the server exits whatever is still open.
    shutdown_deadline: OnceLock<Instant>,
    /// Which workers run the event loop.
    pool: Pool,
    /// Connections to serve without waiting for an event.
    ready: Arc<Ready>,
    /// `ready`, as streams' wakers reach it.
    schedule: Arc<dyn Schedule>,
}

impl Shared {
    /// The workers' world: `listener` is registered in `poller` under [`LISTENER`]; the ready queue's
    /// signal is registered here, under [`WAKER`].
    pub(crate) fn new(
        config: &Config,
        routes: Arc<LiveRouter>,
        poller: Poller,
        listener: TcpListener,
    ) -> io::Result<Shared> {
        let signal = sys::EventFd::new()?;
        poller.add_signal(signal.as_raw_fd(), WAKER)?;
        let ready = Arc::new(Ready::with_signal(signal));
        Ok(Shared {
            poller,
            connections: Connections::default(),
            listener: Mutex::new(Some(listener)),
            accept_paused: AtomicBool::new(false),
            routes,
            limits: config.limits.clone(),
            timeouts: config.timeouts,
            max_connections: config.max_connections,
            per_client: config
                .max_connections_per_client
                .map(ClientConnections::new),
            rate_limit: config
                .rate_limit
                .as_ref()
                .map(|settings| RateLimiter::new(settings, config.trusted_proxies.clone())),
            last_sweep: AtomicU64::new(0),
            shutdown_deadline: OnceLock::new(),
            pool: Pool::new(config.threads, config.max_threads),
            schedule: Arc::clone(&ready) as Arc<dyn Schedule>,
            ready,
        })
    }

    /// Stops accepting at once and starts the shutdown clock; the next sweep closes idle connections.
    /// Only the first call counts.
    pub(crate) fn begin_shutdown(&self) {
        if self
            .shutdown_deadline
            .set(Instant::now() + self.timeouts.shutdown)
            .is_err()
        {
            return;
        }
        let listener = self
            .listener
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some(listener) = listener {
            let _ = self.poller.delete(listener.as_raw_fd());
        }
        self.last_sweep.store(0, Ordering::Relaxed);
    }

    pub(crate) fn shutting_down(&self) -> bool {
        self.shutdown_deadline.get().is_some()
    }

    /// Connections and workers at this moment, for the admin listener (a lock on each table, no
    /// request pays for it).
    pub(crate) fn gauges(&self) -> Gauges {
        let (open_connections, idle_connections) = self.connections.open_and_idle();
        Gauges {
            open_connections,
            idle_connections,
            busy_workers: self.pool.busy(),
            workers: self.pool.started(),
        }
    }

    /// Shutdown began and every connection is gone, or its deadline passed.
    fn finished(&self) -> bool {
        match self.shutdown_deadline.get() {
            None => false,
            Some(deadline) => Instant::now() >= *deadline || self.connections.open() == 0,
        }
    }
}

/// Starts the base workers, then keeps the server while they serve (see [`keep`]) until they have all
/// ended or the shutdown deadline passed.
pub(crate) fn run(shared: &Arc<Shared>) -> io::Result<()> {
    for (n, id) in shared.pool.start_base().into_iter().enumerate() {
        if let Err(err) = start(shared, id, n == 0) {
            shared.begin_shutdown();
            keep(shared);
            return Err(err);
        }
    }
    keep(shared);
    Ok(())
}

/// Starts worker `id`, in the loop or as a spare; frees its id if the thread cannot start.
fn start(shared: &Arc<Shared>, id: usize, in_loop: bool) -> io::Result<()> {
    let mine = Arc::clone(shared);
    let started = std::thread::Builder::new()
        .name(format!("plugd-worker-{id}"))
        .stack_size(WORKER_STACK)
        .spawn(move || work(&mine, id, in_loop));
    if started.is_err() {
        shared.pool.end(id);
    }
    started.map(drop)
}

/// One worker's life: wait, serve, repeat, until shutdown is complete or, as a spare, it retires.
fn work(shared: &Arc<Shared>, id: usize, in_loop: bool) {
    let pool = &shared.pool;
    let mut scratch = Scratch::default();
    let mut routes = shared.routes.cache();
    let mut events = Events::with_capacity(EVENTS_PER_WAIT);
    pool.register_worker(id);
    if !in_loop && !wait_as_spare(shared, id) {
        return;
    }
    while !shared.finished() {
        let event = match shared.ready.pop() {
            Some(event) => Some(event),
            None if pool.steps_aside() => {
                if !wait_as_spare(shared, id) {
                    return;
                }
                continue;
            }
            None => next_event(shared, &mut events),
        };
        // One clock reading per turn serves the connection's clocks, the pool's and the sweep's.
        let now = Instant::now();
        let micros = pool.micros_at(now);
        match event {
            Some(event) if event.token == LISTENER => {
                accept(shared);
            }
            Some(event) => {
                if shared.ready.len() > 0 && pool.should_hand_over_queue(micros) {
                    shared.ready.wake_one();
                }
                pool.start_serving(id, micros);
                serve(shared, event, now, &mut scratch, &mut routes);
                pool.stop_serving(id, micros);
            }
            None => {}
        }
        sweep_if_due(shared, now, micros);
    }
    pool.end(id);
}

/// Waits as a spare; returns `false` when the worker retired (its id is already free).
fn wait_as_spare(shared: &Arc<Shared>, id: usize) -> bool {
    match shared
        .pool
        .wait_as_spare(id, &shared.ready, || shared.finished())
    {
        Wake::Join => true,
        Wake::JoinAndStart(new) => {
            if let Err(err) = start(shared, new, false) {
                warn_rate_limited(&format!("cannot start a worker thread: {err}"));
            }
            true
        }
        Wake::Retire => false,
    }
}

/// The starting thread's watch while the workers serve: returns once they all ended, or at the shutdown
/// deadline even if handlers still block (the process then exits without them). While no worker takes a
/// turn for long ([`pool::stalled`]: every one blocked, none left to start), it accepts and expires
/// connections in their place; it never runs a handler.
fn keep(shared: &Shared) {
    let mut scratch = Scratch::default();
    let mut routes = shared.routes.cache();
    loop {
        if shared.pool.wait_ended(SWEEP_EVERY) {
            return;
        }
        let now = Instant::now();
        if shared
            .shutdown_deadline
            .get()
            .is_some_and(|deadline| now >= *deadline)
        {
            log::warn!(
                "shutdown timeout: exiting with {} worker(s) still inside handlers",
                shared.pool.started()
            );
            return;
        }
        let micros = shared.pool.micros_at(now);
        let last_turn = shared.last_sweep.load(Ordering::Relaxed) * 1000;
        if pool::stalled(last_turn, micros) {
            keep_stalled(shared, now, &mut scratch, &mut routes);
        }
    }
}

/// What the workers would do without running a handler: accept what waits, and close the connections whose
/// deadline passed (or, shutting down, that are idle).
fn keep_stalled(shared: &Shared, now: Instant, scratch: &mut Scratch, routes: &mut RouterCache) {
    for _ in 0..KEEPER_ACCEPTS {
        if !accept(shared) {
            break;
        }
    }
    let shutting_down = shared.shutdown_deadline.get().is_some();
    for expired in shared.connections.expire(now, shutting_down) {
        // An expired connection is closed (after a 408 if a request was half-received): no handler runs.
        serve(shared, expired, now, scratch, routes);
    }
}

/// Waits for events; returns the first and queues the others for whichever worker is free next. New
/// connections go first (as nginx posts accept events before the others): a connection waiting to be
/// accepted has had no answer at all yet.
///
/// The ready queue's signal is taken here, never queued: it only says "take the queue", which this worker
/// does next. Queued behind the wake-ups it announced, it stayed pending while this worker blocked in a
/// handler, so no later signal was sent and the queue could wait for the 100 ms timeout of the workers in
/// `epoll_wait`.
fn next_event(shared: &Shared, events: &mut Events) -> Option<Event> {
    let waited = shared
        .pool
        .waiting_for_events(|| shared.poller.wait(events, SWEEP_EVERY));
    if let Err(err) = waited {
        log::error!("waiting for events failed: {err}");
        std::thread::sleep(SWEEP_EVERY);
        return None;
    }
    let pool = &shared.pool;
    let now = pool.micros_at(Instant::now());
    pool.note_events(now);
    if events.iter().any(|event| event.token == WAKER) {
        shared.ready.clear_signal();
    }
    let first = events
        .iter()
        .find(|event| event.token == LISTENER)
        .or_else(|| events.iter().find(|event| event.token != WAKER))?;
    // One event per descriptor and wait, so `first` stands for itself only.
    let mut others = events
        .iter()
        .filter(|event| *event != first && event.token != WAKER)
        .peekable();
    if others.peek().is_some() {
        shared.ready.push(others);
        pool.call_spare_if_needed(now);
    }
    Some(first)
}

/// Serves the connection `event` is for, unless it is stale or another worker holds it, then parks or
/// closes it as the connection says.
fn serve(
    shared: &Shared,
    event: Event,
    now: Instant,
    scratch: &mut Scratch,
    routes: &mut RouterCache,
) {
    let token = event.token;
    let Some(mut conn) = shared.connections.take(event) else {
        return;
    };
    let date = date::now();
    let cx = Context {
        router: routes.refresh(&shared.routes),
        live: &shared.routes,
        rate_limit: shared.rate_limit.as_ref(),
        limits: &shared.limits,
        timeouts: &shared.timeouts,
        shutdown: &shared.shutdown_deadline,
        date: &date,
        now,
        schedule: &shared.schedule,
        token,
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
    if next == Next::Close {
        return close(shared, token, conn);
    }
    if conn.needs_write_events() {
        if let Err(err) = shared.poller.watch_writes(conn.socket().as_raw_fd(), token) {
            log::warn!("{}: cannot watch for writability: {err}", conn.peer());
            return close(shared, token, conn);
        }
        conn.write_events_watched();
    }
    match shared.connections.park(token, conn) {
        Some(missed) => shared.ready.push([missed]),
        None if next == Next::Again => shared.ready.push([Event::internal(token)]),
        None => {}
    }
}

fn close(shared: &Shared, token: u64, conn: Box<Conn>) {
    drop(conn);
    shared.connections.remove(token);
}

/// Accepts one new connection. The listener is level-triggered: while more wait, the next `epoll_wait`
/// reports it again, so no worker accepts until the queue is empty (an `accept` failing with EAGAIN per
/// wake-up) nor re-arms it. A new connection is not served at once: its request has almost never arrived
/// yet (wrk -H 'Connection: close': 99% of such reads found nothing), and the readiness set reports it.
/// Returns whether a connection was accepted (more may wait).
fn accept(shared: &Shared) -> bool {
    let guard = shared
        .listener
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let Some(listener) = guard.as_ref() else {
        return false;
    };
    // Non-blocking and TCP_NODELAY from the start: no system call per connection to set them.
    match sys::accept_nonblocking(listener) {
        Ok((socket, peer)) => {
            register(shared, Box::new(Conn::new(socket, peer, &shared.timeouts)));
            return true;
        }
        Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
        Err(err) if is_out_of_descriptors(&err) => {
            warn_rate_limited(&format!(
                "accept paused: {err} (raise the open-files limit)"
            ));
            // Still pending, the listener would be reported to every wait: silence it until the sweep.
            if let Err(err) = shared.poller.pause_listener(listener.as_raw_fd(), LISTENER) {
                log::error!("cannot pause the listener: {err}");
            }
            shared.accept_paused.store(true, Ordering::Relaxed);
        }
        Err(err) => log::debug!("accept failed: {err}"),
    }
    false
}

/// Parks a new connection in the readiness set, or answers 503 when `--max-connections` are open, or when
/// its client has `--max-connections-per-client` open already.
fn register(shared: &Shared, mut conn: Box<Conn>) {
    if let Some(per_client) = &shared.per_client {
        match per_client.acquire(conn.peer().ip()) {
            Some(slot) => conn.hold(slot),
            None => return refuse_overloaded(&conn, "client connection limit reached"),
        }
    }
    let fd = conn.socket().as_raw_fd();
    match shared.connections.insert(conn, shared.max_connections) {
        Ok(token) => {
            if let Err(err) = shared.poller.add_connection(fd, token) {
                log::warn!("cannot watch a new connection: {err}");
                if let Some(conn) = shared.connections.take(Event::internal(token)) {
                    close(shared, token, conn);
                }
            }
        }
        Err(conn) => refuse_overloaded(&conn, "connection limit reached"),
    }
}

/// Over a connection limit: a fast 503 instead of unbounded memory, then close.
fn refuse_overloaded(conn: &Conn, reason: &str) {
    warn_rate_limited(&format!("{}: refused with 503: {reason}", conn.peer()));
    conn.refuse_overloaded(reason);
}

fn is_out_of_descriptors(err: &io::Error) -> bool {
    matches!(err.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
}

/// Logs at most one such warning per second, so an overload does not also flood the log.
fn warn_rate_limited(message: &str) {
    static LAST_SECOND: AtomicU64 = AtomicU64::new(u64::MAX);
    static PROCESS_START: OnceLock<Instant> = OnceLock::new();
    let second = Instant::now()
        .duration_since(*PROCESS_START.get_or_init(Instant::now))
        .as_secs();
    if LAST_SECOND.swap(second, Ordering::Relaxed) != second {
        log::warn!("{message}");
    }
}

/// One worker per `SWEEP_EVERY` wakes the connections whose deadline passed, and resumes accepting.
/// `micros`: `now` on the pool's clock.
fn sweep_if_due(shared: &Shared, now: Instant, micros: u64) {
    let elapsed = micros / 1000;
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
    let expired = shared.connections.expire(now, shutting_down);
    shared.ready.push(expired);
    if shared.accept_paused.swap(false, Ordering::Relaxed) {
        let guard = shared
            .listener
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(listener) = guard.as_ref() {
            if let Err(err) = shared
                .poller
                .resume_listener(listener.as_raw_fd(), LISTENER)
            {
                log::error!("cannot resume accepting: {err}");
            }
        }
    }
}
