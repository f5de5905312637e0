//! The worker pool, leader/followers style: workers wait on one shared readiness set, and the one woken
//! serves that connection (or accepts new ones) itself. No hand-off between threads per request, and a
//! handler that blocks delays only its own connection (DESIGN.md measured both).
//!
//! One `epoll_wait` may return several events: the worker serves the first and puts the others in the
//! shared [`Ready`] queue, which every worker empties before it waits again (one system call for many
//! requests under load).
//!
//! How many workers run the loop adapts to the load, because each one more waiting for events costs
//! context switches: it is woken for every event that comes while the others are busy. On 2 cores, with
//! one worker in the loop plaintext cost 6.1 us of CPU and 0.04 context switches per request, with two
//! 7.9 us and 0.27. So one worker waits for events, and the others are spares, parked off the readiness
//! set. A spare joins the loop:
//! - when every worker in the loop has been inside one connection for [`BLOCKED_AFTER`] (a handler that
//!   blocks, or a worker the machine preempted): it takes the place of the blocked one;
//! - when the watcher finds the queue deep at two checks in a row (more ready connections than one worker
//!   keeps up with), up to one per core.
//!
//! A worker seen sleeping in the kernel inside a handler (not merely preempted) shows that handlers here
//! block: for [`BLOCKING_MEMORY`] after that, the pool keeps two unblocked workers in the loop, so that
//! the next handler that blocks delays nobody else. Blocking handlers then cost only their own connection,
//! up to `--threads` of them at once.
//!
//! A worker steps aside again when it has nothing to do and more workers are in the loop than wanted.

use std::collections::VecDeque;
use std::io;
use std::net::Shutdown;
use std::os::fd::AsRawFd;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::conn::{Conn, Context, Next, Scratch};
use crate::connections::LISTENER;
use crate::dispatch::panic_message;
use crate::http::{date, response};
use crate::poller::{Event, Events};
use crate::server::Shared;
use crate::sys;

/// How often deadlines are checked, and so the precision of every timeout.
const SWEEP_EVERY: Duration = Duration::from_millis(100);
/// Most events taken from the readiness set per `epoll_wait`.
const EVENTS_PER_WAIT: usize = 16;
/// Ready connections waiting in the queue from which a spare joins to help, when the watcher sees that
/// many at two checks in a row: a worker preempted for a moment does not call one.
const DEEP_QUEUE: usize = EVENTS_PER_WAIT / 2;
/// A worker serving one connection for longer than this counts as blocked, and a spare takes its place.
/// Serving a request that does not block takes microseconds; this is far above that and below the 2 ms
/// p99 a blocked worker must not cause to other connections.
const BLOCKED_AFTER: Duration = Duration::from_millis(1);
/// How long after a blocked worker the pool keeps a second unblocked worker in the loop.
/// Short, as a false alarm (a worker waiting for a lock that a preempted one holds) costs context switches
/// for that long.
const BLOCKING_MEMORY: Duration = Duration::from_secs(2);
/// How often the watching spare looks for blocked workers while the server is active. Two 10 ms blockers
/// on 2 cores, p99 of the other connections: 5.1 ms watching every 5 ms, 2.1 ms every 1 ms. Cost: ~1,000
/// wake-ups a second of one thread, within noise of plaintext CPU per request; an idle server's watcher
/// waits [`SWEEP_EVERY`] instead (idle CPU 80 -> 10 ms per 10 s), and the next event wakes it.
const WATCH_EVERY: Duration = Duration::from_millis(1);

/// Which workers run the event loop, and the spares that join it.
pub(crate) struct Pool {
    /// Most unblocked workers in the loop at once: the number of cores.
    runnable: usize,
    /// Workers in the event loop (blocked ones included); the others wait in `spares`.
    in_loop: AtomicUsize,
    /// Per worker: microseconds since `epoch` at which it started serving a connection, 0 when not serving.
    serving_since: Box<[AtomicU64]>,
    /// Per worker: its kernel thread id, to tell a blocked worker from a preempted one.
    thread_ids: Box<[AtomicI32]>,
    epoch: Instant,
    /// Until when (microseconds since `epoch`) two unblocked workers stay in the loop: one blocked lately.
    blocking_until: AtomicU64,
    /// When the last events came (microseconds since `epoch`): the watcher watches closely only after.
    last_events: AtomicU64,
    /// The watcher waits the long [`SWEEP_EVERY`]: the next events wake it.
    dozing: AtomicBool,
    /// A spare was called that has not joined yet (so it is called only once).
    called: AtomicBool,
    /// Whether one spare is watching; the others wait to be called.
    watching: Mutex<bool>,
    spares: Condvar,
    /// Connections to serve without waiting for an event.
    pub(crate) ready: Ready,
}

/// Wake-ups to serve before waiting for new events: the rest of an `epoll_wait` batch, events that reached
/// a connection while it was busy, work no event will announce, and expired connections.
#[derive(Default)]
pub(crate) struct Ready {
    events: Mutex<VecDeque<Event>>,
    /// The queue's length, readable without the lock.
    len: AtomicUsize,
}

impl Ready {
    pub(crate) fn push(&self, events: impl IntoIterator<Item = Event>) {
        let mut queue = self.lock();
        queue.extend(events);
        self.len.store(queue.len(), Ordering::Relaxed);
    }

    fn pop(&self) -> Option<Event> {
        if self.len.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let mut queue = self.lock();
        let event = queue.pop_front();
        self.len.store(queue.len(), Ordering::Relaxed);
        event
    }

    fn is_deep(&self) -> bool {
        self.len.load(Ordering::Relaxed) >= DEEP_QUEUE
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Event>> {
        // Each operation is one step, so a poisoned lock still holds a consistent queue.
        self.events
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Pool {
    /// A pool of `threads` workers of which at most as many as the machine has cores run at once.
    pub(crate) fn new(threads: usize) -> Pool {
        let threads = threads.max(1);
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Pool {
            runnable: cores.clamp(1, threads),
            in_loop: AtomicUsize::new(1),
            serving_since: (0..threads).map(|_| AtomicU64::new(0)).collect(),
            thread_ids: (0..threads).map(|_| AtomicI32::new(0)).collect(),
            epoch: Instant::now(),
            blocking_until: AtomicU64::new(0),
            last_events: AtomicU64::new(0),
            dozing: AtomicBool::new(false),
            called: AtomicBool::new(false),
            watching: Mutex::new(false),
            spares: Condvar::new(),
            ready: Ready::default(),
        }
    }

    /// Microseconds since `epoch`, plus one (0 means "not serving").
    fn micros(&self) -> u64 {
        self.micros_at(Instant::now())
    }

    fn micros_at(&self, instant: Instant) -> u64 {
        instant.saturating_duration_since(self.epoch).as_micros() as u64 + 1
    }

    /// Indices of the workers serving one connection for longer than [`BLOCKED_AFTER`] at `now`.
    fn blocked_workers(&self, now: u64) -> impl Iterator<Item = usize> + '_ {
        let limit = BLOCKED_AFTER.as_micros() as u64;
        self.serving_since
            .iter()
            .map(|since| since.load(Ordering::Relaxed))
            .enumerate()
            .filter(move |&(_, since)| since != 0 && now.saturating_sub(since) > limit)
            .map(|(worker, _)| worker)
    }

    fn blocked(&self, now: u64) -> usize {
        self.blocked_workers(now).count()
    }

    /// Remembers for [`BLOCKING_MEMORY`] that a handler blocks, when a worker inside one connection for
    /// longer than [`BLOCKED_AFTER`] sleeps in the kernel. One that is only preempted (the machine's cores
    /// are busy) does not count: more workers waiting for events would not help it, and only cost.
    fn remember_blocking(&self, now: u64) {
        let sleeping = self
            .blocked_workers(now)
            .any(|worker| sys::is_sleeping(self.thread_ids[worker].load(Ordering::Relaxed)));
        if sleeping {
            let until = now + BLOCKING_MEMORY.as_micros() as u64;
            self.blocking_until.fetch_max(until, Ordering::Relaxed);
        }
    }

    /// How many workers the loop wants at `now`: the blocked ones, plus one to wait for events (two if a
    /// handler blocked lately), plus up to one per core while the queue stays deep.
    fn wanted(&self, now: u64, queue_stays_deep: bool) -> usize {
        let blocked = self.blocked(now);
        let free = if queue_stays_deep {
            self.runnable
        } else if now < self.blocking_until.load(Ordering::Relaxed) {
            2
        } else {
            1
        };
        blocked + free
    }

    /// A spare should join: fewer workers are in the loop than wanted, and a spare exists.
    fn needs_spare(&self, now: u64, queue_stays_deep: bool) -> bool {
        let in_loop = self.in_loop.load(Ordering::Relaxed);
        in_loop < self.serving_since.len() && in_loop < self.wanted(now, queue_stays_deep)
    }

    /// Calls a spare when every worker in the loop is blocked: a few atomic loads, and a futex wake per
    /// call.
    fn call_spare_if_needed(&self, now: u64) {
        if self.needs_spare(now, false) && !self.called.swap(true, Ordering::Relaxed) {
            self.spares.notify_one();
        }
    }

    /// With nothing to do: leaves the loop when more workers are in it than wanted.
    fn steps_aside(&self) -> bool {
        let mut in_loop = self.in_loop.load(Ordering::Relaxed);
        while in_loop > 1 {
            if in_loop <= self.wanted(self.micros(), false) {
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

    /// Events came: notes when, and wakes a dozing watcher (the server was idle and is active again).
    fn note_events(&self, now: u64) {
        self.last_events.store(now, Ordering::Relaxed);
        if self.dozing.load(Ordering::Relaxed) && self.dozing.swap(false, Ordering::Relaxed) {
            self.spares.notify_all();
        }
    }

    /// Waits as a spare until the loop needs one more worker (then returns to join it) or shutdown is
    /// complete.
    fn wait_as_spare(&self, shared: &Shared) {
        let mut watching = self
            .watching
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut was_deep = false;
        loop {
            if finished(shared) {
                return;
            }
            let now = self.micros();
            let deep = self.ready.is_deep();
            if self.needs_spare(now, deep && was_deep) {
                self.in_loop.fetch_add(1, Ordering::Relaxed);
                return;
            }
            was_deep = deep;
            let watcher = !*watching;
            *watching = true;
            // While no events come, no worker can be blocked: the watcher need not wake every millisecond,
            // and an idle server stays idle. The next events wake it.
            let active = now.saturating_sub(self.last_events.load(Ordering::Relaxed))
                < SWEEP_EVERY.as_micros() as u64;
            let timeout = if watcher && active {
                WATCH_EVERY
            } else {
                SWEEP_EVERY
            };
            if watcher && !active {
                self.dozing.store(true, Ordering::Relaxed);
            }
            watching = self
                .spares
                .wait_timeout(watching, timeout)
                .map_or_else(|poisoned| poisoned.into_inner().0, |(guard, _)| guard);
            if watcher {
                *watching = false;
                self.dozing.store(false, Ordering::Relaxed);
                self.remember_blocking(self.micros());
            }
            // Called or not, a spare is awake and checks: a later need may call again.
            self.called.store(false, Ordering::Relaxed);
        }
    }
}

/// One worker's life: wait, serve, repeat, until shutdown is complete. Worker 0 starts in the loop, the
/// others as spares.
pub(crate) fn work(shared: &Shared, id: usize) {
    let pool = &shared.pool;
    let mut scratch = Scratch::default();
    let mut events = Events::with_capacity(EVENTS_PER_WAIT);
    pool.thread_ids[id % pool.thread_ids.len()].store(sys::thread_id(), Ordering::Relaxed);
    if id > 0 {
        pool.wait_as_spare(shared);
    }
    let serving_since = &pool.serving_since[id % pool.serving_since.len()];
    while !finished(shared) {
        let event = match pool.ready.pop() {
            Some(event) => Some(event),
            None if pool.steps_aside() => {
                pool.wait_as_spare(shared);
                continue;
            }
            None => next_event(shared, &mut events),
        };
        // One clock reading per turn serves the connection's clocks, the pool's and the sweep's.
        let now = Instant::now();
        let micros = pool.micros_at(now);
        match event {
            Some(event) if event.token == LISTENER => accept(shared),
            Some(event) => {
                serving_since.store(micros, Ordering::Relaxed);
                serve(shared, event, now, &mut scratch);
                serving_since.store(0, Ordering::Relaxed);
                pool.call_spare_if_needed(micros);
            }
            None => {}
        }
        sweep_if_due(shared, now, micros);
    }
}

/// Waits for events; returns the first and queues the others for whichever worker is free next. New
/// connections go first (as nginx posts accept events before the others): a connection waiting to be
/// accepted has had no answer at all yet.
fn next_event(shared: &Shared, events: &mut Events) -> Option<Event> {
    if let Err(err) = shared.poller.wait(events, SWEEP_EVERY) {
        log::error!("waiting for events failed: {err}");
        std::thread::sleep(SWEEP_EVERY);
        return None;
    }
    let first = events
        .iter()
        .find(|event| event.token == LISTENER)
        .or_else(|| events.iter().next())?;
    let pool = &shared.pool;
    let now = pool.micros();
    pool.note_events(now);
    if events.iter().len() > 1 {
        // One event per descriptor and wait, so `first` stands for itself only.
        pool.ready
            .push(events.iter().filter(|event| *event != first));
        pool.call_spare_if_needed(now);
    }
    Some(first)
}

/// Shutdown began and every connection is gone, or its deadline passed.
fn finished(shared: &Shared) -> bool {
    match shared.shutdown_deadline.get() {
        None => false,
        Some(deadline) => Instant::now() >= *deadline || shared.connections.open() == 0,
    }
}

fn serve(shared: &Shared, event: Event, now: Instant, scratch: &mut Scratch) {
    let token = event.token;
    let Some(mut conn) = shared.connections.take(event) else {
        return;
    };
    let date = date::now();
    let cx = Context {
        router: &shared.router,
        limits: &shared.limits,
        timeouts: &shared.timeouts,
        shutdown: &shared.shutdown_deadline,
        date: &date,
        now,
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
    if conn.has_pending_output() && !conn.watching_writes {
        if let Err(err) = shared.poller.watch_writes(conn.socket().as_raw_fd(), token) {
            log::warn!("{}: cannot watch for writability: {err}", conn.peer());
            return close(shared, token, conn);
        }
        conn.watching_writes = true;
    }
    match shared.connections.park(token, conn) {
        Some(missed) => shared.pool.ready.push([missed]),
        None if next == Next::Again => shared.pool.ready.push([Event::internal(token)]),
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
fn accept(shared: &Shared) {
    let guard = shared
        .listener
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let Some(listener) = guard.as_ref() else {
        return;
    };
    // Non-blocking and TCP_NODELAY from the start: no system call per connection to set them.
    match sys::accept_nonblocking(listener) {
        Ok((socket, peer)) => {
            register(shared, Box::new(Conn::new(socket, peer, &shared.timeouts)));
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
}

/// Parks a new connection in the readiness set, or answers 503 when `--max-connections` are open.
fn register(shared: &Shared, conn: Box<Conn>) {
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
    shared.pool.ready.push(expired);
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
