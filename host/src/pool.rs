//! How many workers wait for events, when the others join or step aside, and how many threads there are:
//! the pool's policy. The workers' loop itself is `worker.rs`; this module decides, and its decisions are
//! pure functions of time and load ([`Capacity::wanted`], [`Capacity::missing`],
//! [`Capacity::steps_aside`], [`Capacity::grows`], [`Capacity::retires`], [`Nap::choose`], [`stalled`]),
//! tested without threads (`docs/ARCHITECTURE.md` §4.4).
//!
//! Each worker more waiting for events costs context switches: it is woken for every event that comes
//! while the others are busy. On 2 cores, with one worker in the loop plaintext cost 6.1 us of CPU and
//! 0.04 context switches per request, with two 7.9 us and 0.27. So one worker waits for events, and the
//! others are spares, parked off the readiness set. A spare joins the loop:
//! - when every worker in the loop has been inside one connection for [`BLOCKED_AFTER`] (a handler that
//!   blocks, or a worker the machine preempted): it takes the place of the blocked one;
//! - when the watcher finds the ready queue deep at two checks in a row (more ready connections than one
//!   worker keeps up with), up to one per core.
//!
//! A worker seen sleeping in the kernel inside a handler (not merely preempted) shows that handlers here
//! block: for [`BLOCKING_MEMORY`] after that, the pool keeps two unblocked workers in the loop, so that
//! the next handler that blocks delays nobody else.
//!
//! The pool is elastic: `--threads` workers start, and when the last waiting spare joins the loop, it
//! starts another (up to `--max-threads`), so a spare is always there to take the place of the next worker
//! that blocks: blocking handlers cost only their own connections, up to `--max-threads` of them at once.
//! A worker steps aside again when it has nothing to do and more workers are in the loop than wanted, and
//! a spare beyond `--threads` retires after [`RETIRE_AFTER`] without being called. None of this costs a
//! request anything while handlers do not block: threads start and end only when spares join or idle.
//!
//! Times are microseconds on the pool's clock ([`Pool::micros_at`]), so that a worker's "serving since"
//! fits in one atomic.

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::ready::Ready;
use crate::sys;

/// Ready connections waiting in the queue from which a spare joins to help, when the watcher sees that
/// many at two checks in a row: a worker preempted for a moment does not call one. Half of the events one
/// `epoll_wait` returns (`worker.rs`).
const DEEP_QUEUE: usize = 8;
/// A worker serving one connection for longer than this counts as blocked, and a spare takes its place.
/// Serving a request that does not block takes microseconds; this is far above that and below the 2 ms
/// p99 a blocked worker must not cause to other connections.
const BLOCKED_AFTER: Duration = Duration::from_millis(1);
/// While handlers block, one more free worker waits for events per this many blocked. 1,000 clients on a
/// 200 ms route (216 workers blocked in it or waiting at its bulkhead, about 1,400 handler entries a
/// second): with 2 free workers, /plaintext p99 565 ms, every free worker entering a handler before a
/// spare replaced the previous one; with 2 + 216/16 = 15, see `bench/blocking.sh -s 1000`.
const BLOCKED_PER_FREE: usize = 16;
/// How long after a blocked worker the pool keeps a second unblocked worker in the loop.
/// Short, as a false alarm (a worker waiting for a lock that a preempted one holds) costs context switches
/// for that long.
const BLOCKING_MEMORY: Duration = Duration::from_secs(2);
/// How often the watching spare looks for blocked workers while the server is active. Two 10 ms blockers
/// on 2 cores, p99 of the other connections: 5.1 ms watching every 5 ms, 2.1 ms every 1 ms. Cost: ~1,000
/// wake-ups a second of one thread, within noise of plaintext CPU per request; an idle server's watcher
/// waits [`IDLE_WAIT`] instead (idle CPU 80 -> 10 ms per 10 s), and the next event wakes it.
const WATCH_EVERY: Duration = Duration::from_millis(1);
/// How long a spare that is not watching closely waits before it looks again (whether shutdown is
/// complete, whether it is needed): the same period as the deadline sweep.
const IDLE_WAIT: Duration = Duration::from_millis(100);
/// The server counts as active while events came within this long: no events, no worker can be blocked.
const ACTIVE_FOR: Duration = Duration::from_millis(100);
/// A spare beyond `--threads` that was not called for this long ends. Long enough that a burst of slow
/// requests every few seconds keeps its workers (starting one costs about 50 us and a wake-up), short
/// enough that after a burst the memory of its threads returns within seconds.
pub(crate) const RETIRE_AFTER: Duration = Duration::from_secs(10);
/// The loop counts as stalled (every worker in it blocked, and no spare left to join) when no worker
/// finished a turn for this long: three deadline sweeps missed (`worker.rs` sweeps every 100 ms, also
/// when idle). Then the thread that started the workers accepts and expires connections in their place.
const STALLED_AFTER: Duration = Duration::from_millis(300);

/// The pool's fixed shape.
#[derive(Clone, Copy, Debug)]
struct Capacity {
    /// Worker threads that never retire (`--threads`, at least 2 when the pool may grow, so that a spare
    /// watches for blocked workers).
    base: usize,
    /// Most worker threads (`--max-threads`).
    max: usize,
    /// Most unblocked workers in the loop at once: the number of cores.
    runnable: usize,
}

/// What the pool's decisions depend on, read at one moment.
#[derive(Clone, Copy, Debug, Default)]
struct Load {
    /// Workers in the event loop, blocked ones included.
    in_loop: usize,
    /// Workers serving one connection for longer than [`BLOCKED_AFTER`].
    blocked: usize,
    /// A handler was seen blocking within the last [`BLOCKING_MEMORY`].
    blocking_lately: bool,
    /// The ready queue was at least [`DEEP_QUEUE`] long at two checks in a row.
    queue_stays_deep: bool,
}

impl Capacity {
    /// How many workers the loop wants: the blocked ones, plus one to wait for events, or more: one per
    /// core while the queue stays deep; two if a handler blocked lately, and one more per
    /// [`BLOCKED_PER_FREE`] blocked (the more handlers block at once, the more often a free worker enters
    /// one, and a spare replaces it only a millisecond or two later).
    fn wanted(self, load: Load) -> usize {
        let for_queue = if load.queue_stays_deep {
            self.runnable
        } else {
            1
        };
        let for_blocking = if load.blocking_lately {
            2 + load.blocked / BLOCKED_PER_FREE
        } else {
            1
        };
        load.blocked + for_queue.max(for_blocking)
    }

    /// How many spares should join: fewer workers are in the loop than wanted (and than the most threads).
    fn missing(self, load: Load) -> usize {
        self.wanted(load).min(self.max).saturating_sub(load.in_loop)
    }

    /// A thread starts as a new spare: the last waiting spare just joined the loop (`waiting` is 0), and
    /// fewer than the most threads run (`started`: threads running or starting).
    fn grows(self, started: usize, waiting: usize) -> bool {
        waiting == 0 && started < self.max
    }

    /// A spare ends: it was not called for [`RETIRE_AFTER`], and more threads run than the base.
    fn retires(self, started: usize, idle_for: Duration) -> bool {
        started > self.base && idle_for >= RETIRE_AFTER
    }

    /// A worker with nothing to do leaves the loop: more workers are in it than wanted. The last one stays.
    fn steps_aside(self, load: Load) -> bool {
        load.in_loop > 1 && load.in_loop > self.wanted(load)
    }
}

/// No worker finished a turn since `last_turn` (on the pool's clock), and it is `now`: the loop is stalled.
pub(crate) fn stalled(last_turn: u64, now: u64) -> bool {
    now.saturating_sub(last_turn) > STALLED_AFTER.as_micros() as u64
}

/// A worker that started serving one connection at `since` (0: not serving) is blocked at `now`.
fn is_blocked(since: u64, now: u64) -> bool {
    since != 0 && now.saturating_sub(since) > BLOCKED_AFTER.as_micros() as u64
}

/// How a waiting spare sleeps until it looks again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Nap {
    /// The watcher of an active server: looks for blocked workers every [`WATCH_EVERY`].
    Watch,
    /// The watcher of an idle server: the next events wake it.
    Doze,
    /// A spare that is not the watcher: waits to be called.
    Wait,
}

impl Nap {
    /// `last_events`: when events last came.
    fn choose(watcher: bool, now: u64, last_events: u64) -> Nap {
        let active = now.saturating_sub(last_events) < ACTIVE_FOR.as_micros() as u64;
        match (watcher, active) {
            (true, true) => Nap::Watch,
            (true, false) => Nap::Doze,
            (false, _) => Nap::Wait,
        }
    }

    fn timeout(self) -> Duration {
        match self {
            Nap::Watch => WATCH_EVERY,
            Nap::Doze | Nap::Wait => IDLE_WAIT,
        }
    }
}

/// Which workers run the event loop, and the spares that join it.
pub(crate) struct Pool {
    capacity: Capacity,
    /// Workers in the event loop (blocked ones included); the others wait in `spares`.
    in_loop: AtomicUsize,
    /// Per worker: when it started serving a connection, 0 when not serving.
    serving_since: Box<[AtomicU64]>,
    /// Per worker: its kernel thread id, to tell a blocked worker from a preempted one.
    thread_ids: Box<[AtomicI32]>,
    epoch: Instant,
    /// Until when two unblocked workers stay in the loop: one blocked lately.
    blocking_until: AtomicU64,
    /// When the last events came: the watcher watches closely only after.
    last_events: AtomicU64,
    /// The watcher waits the long [`IDLE_WAIT`]: the next events wake it.
    dozing: AtomicBool,
    /// Workers inside `epoll_wait` now.
    waiting_for_events: AtomicUsize,
    /// A spare was called that has not joined yet (so it is called only once).
    called: AtomicBool,
    /// Threads slots, spares and the watcher.
    threads: Mutex<Threads>,
    spares: Condvar,
    /// Signalled when the last thread ends.
    ended: Condvar,
    /// One more than the highest worker id in use: how far the per-worker arrays are read.
    ids_in_use: AtomicUsize,
}

/// Which threads run, changed only when a spare waits, joins, starts or ends.
struct Threads {
    /// Per worker id: whether a thread has it.
    taken: Vec<bool>,
    /// Threads running or starting.
    started: usize,
    /// Spares waiting to be called.
    waiting: usize,
    /// Whether one spare is watching; the others wait to be called.
    watching: bool,
}

impl Threads {
    /// Takes the lowest free id, so the ids in use stay few and the arrays short.
    fn take_id(&mut self) -> Option<usize> {
        let id = self.taken.iter().position(|taken| !taken)?;
        self.taken[id] = true;
        self.started += 1;
        Some(id)
    }

    fn free_id(&mut self, id: usize) {
        if let Some(taken) = self.taken.get_mut(id) {
            if std::mem::replace(taken, false) {
                self.started -= 1;
            }
        }
    }

    fn ids_in_use(&self) -> usize {
        self.taken
            .iter()
            .rposition(|taken| *taken)
            .map_or(0, |id| id + 1)
    }
}

/// What a waiting spare does next.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Wake {
    /// Join the loop (or, when the server is finished, end).
    Join,
    /// Join the loop, and start a new spare with this id first.
    JoinAndStart(usize),
    /// End the thread: not needed for [`RETIRE_AFTER`]. Its id is free already.
    Retire,
}

impl Pool {
    /// A pool of `threads` workers, growing up to `max_threads` while handlers block, of which at most as
    /// many as the machine has cores run at once.
    pub(crate) fn new(threads: usize, max_threads: usize) -> Pool {
        let max = max_threads.max(threads).max(1);
        // A pool that may grow keeps a spare to watch for blocked workers.
        let base = if max > 1 { threads.max(2) } else { 1 };
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Pool {
            capacity: Capacity {
                base,
                max,
                runnable: cores.clamp(1, base),
            },
            in_loop: AtomicUsize::new(1),
            serving_since: (0..max).map(|_| AtomicU64::new(0)).collect(),
            thread_ids: (0..max).map(|_| AtomicI32::new(0)).collect(),
            epoch: Instant::now(),
            blocking_until: AtomicU64::new(0),
            last_events: AtomicU64::new(0),
            dozing: AtomicBool::new(false),
            waiting_for_events: AtomicUsize::new(0),
            called: AtomicBool::new(false),
            threads: Mutex::new(Threads {
                taken: vec![false; max],
                started: 0,
                waiting: 0,
                watching: false,
            }),
            spares: Condvar::new(),
            ended: Condvar::new(),
            ids_in_use: AtomicUsize::new(0),
        }
    }

    /// The ids of the threads to start with: worker 0 starts in the loop, the others as spares.
    pub(crate) fn start_base(&self) -> Vec<usize> {
        let mut threads = self.lock_threads();
        let ids = (0..self.capacity.base)
            .filter_map(|_| threads.take_id())
            .collect();
        self.ids_in_use
            .store(threads.ids_in_use(), Ordering::Relaxed);
        ids
    }

    /// Thread `id` ended (or never started): frees its id; wakes [`Pool::wait_ended`] after the last.
    pub(crate) fn end(&self, id: usize) {
        let mut threads = self.lock_threads();
        self.end_locked(&mut threads, id);
    }

    fn end_locked(&self, threads: &mut Threads, id: usize) {
        threads.free_id(id);
        self.ids_in_use
            .store(threads.ids_in_use(), Ordering::Relaxed);
        if threads.started == 0 {
            self.ended.notify_all();
        }
    }

    /// Waits up to `timeout` for every thread to end; returns whether they all have.
    pub(crate) fn wait_ended(&self, timeout: Duration) -> bool {
        let threads = self.lock_threads();
        let (threads, _) = self
            .ended
            .wait_timeout_while(threads, timeout, |threads| threads.started > 0)
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        threads.started == 0
    }

    /// Workers serving a connection now.
    pub(crate) fn busy(&self) -> usize {
        let in_use = self.ids_in_use.load(Ordering::Relaxed);
        self.serving_since[..in_use.min(self.serving_since.len())]
            .iter()
            .filter(|since| since.load(Ordering::Relaxed) != 0)
            .count()
    }

    /// Threads running or starting.
    pub(crate) fn started(&self) -> usize {
        self.lock_threads().started
    }

    fn lock_threads(&self) -> MutexGuard<'_, Threads> {
        // Every change to `Threads` is one step, so a poisoned lock still holds consistent counts.
        self.threads
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// `instant` on the pool's clock: microseconds since `epoch`, plus one (0 means "not serving").
    pub(crate) fn micros_at(&self, instant: Instant) -> u64 {
        instant.saturating_duration_since(self.epoch).as_micros() as u64 + 1
    }

    fn micros(&self) -> u64 {
        self.micros_at(Instant::now())
    }

    /// Called by worker `id` on its own thread before it works: its thread can then be told sleeping from
    /// preempted.
    pub(crate) fn register_worker(&self, id: usize) {
        if let Some(tid) = self.thread_ids.get(id) {
            tid.store(sys::thread_id(), Ordering::Relaxed);
        }
    }

    /// Worker `id` starts serving one connection at `now`.
    pub(crate) fn start_serving(&self, id: usize, now: u64) {
        if let Some(since) = self.serving_since.get(id) {
            since.store(now, Ordering::Relaxed);
        }
    }

    /// Worker `id` is done with its connection; calls a spare if every worker in the loop is blocked
    /// meanwhile.
    pub(crate) fn stop_serving(&self, id: usize, now: u64) {
        if let Some(since) = self.serving_since.get(id) {
            since.store(0, Ordering::Relaxed);
        }
        self.call_spare_if_needed(now);
    }

    /// Indices of the workers blocked at `now`.
    fn blocked_workers(&self, now: u64) -> impl Iterator<Item = usize> + '_ {
        let in_use = self.ids_in_use.load(Ordering::Relaxed);
        self.serving_since[..in_use.min(self.serving_since.len())]
            .iter()
            .map(|since| since.load(Ordering::Relaxed))
            .enumerate()
            .filter(move |&(_, since)| is_blocked(since, now))
            .map(|(worker, _)| worker)
    }

    /// The load at `now`, `in_loop` workers being in the loop.
    fn load(&self, now: u64, in_loop: usize, queue_stays_deep: bool) -> Load {
        Load {
            in_loop,
            blocked: self.blocked_workers(now).count(),
            blocking_lately: now < self.blocking_until.load(Ordering::Relaxed),
            queue_stays_deep,
        }
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

    fn needs_spare(&self, now: u64, queue_stays_deep: bool) -> bool {
        self.missing(now, queue_stays_deep) > 0
    }

    /// How many spares should join at `now`.
    fn missing(&self, now: u64, queue_stays_deep: bool) -> usize {
        let in_loop = self.in_loop.load(Ordering::Relaxed);
        self.capacity
            .missing(self.load(now, in_loop, queue_stays_deep))
    }

    /// Calls a spare when every worker in the loop is blocked: a few atomic loads, and a futex wake per
    /// call.
    pub(crate) fn call_spare_if_needed(&self, now: u64) {
        if self.needs_spare(now, false) && !self.called.swap(true, Ordering::Relaxed) {
            self.spares.notify_one();
        }
    }

    /// With nothing to do: leaves the loop (and returns `true`) when more workers are in it than wanted.
    pub(crate) fn steps_aside(&self) -> bool {
        let mut in_loop = self.in_loop.load(Ordering::Relaxed);
        while in_loop > 1 {
            if !self
                .capacity
                .steps_aside(self.load(self.micros(), in_loop, false))
            {
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

    /// Runs `wait` (a worker waiting for events), counted as such for [`Pool::should_hand_over_queue`].
    pub(crate) fn waiting_for_events<T>(&self, wait: impl FnOnce() -> T) -> T {
        self.waiting_for_events.fetch_add(1, Ordering::Relaxed);
        let result = wait();
        self.waiting_for_events.fetch_sub(1, Ordering::Relaxed);
        result
    }

    /// A worker about to serve a connection at `now`, with wake-ups left in the ready queue, should wake a
    /// worker waiting for events to take them: handlers blocked lately, so this one may block too, and the
    /// workers in `epoll_wait` would otherwise sleep until new events or their timeout (100 ms; seen under
    /// `bench/blocking.sh -s 100`: a wait timing out with a connection queued, its request 100 ms late).
    pub(crate) fn should_hand_over_queue(&self, now: u64) -> bool {
        now < self.blocking_until.load(Ordering::Relaxed)
            && self.waiting_for_events.load(Ordering::Relaxed) > 0
    }

    /// Events came at `now`: notes when, and wakes a dozing watcher (the server was idle and is active
    /// again).
    pub(crate) fn note_events(&self, now: u64) {
        self.last_events.store(now, Ordering::Relaxed);
        if self.dozing.load(Ordering::Relaxed) && self.dozing.swap(false, Ordering::Relaxed) {
            self.spares.notify_all();
        }
    }

    /// Waits as a spare until the loop needs one more worker (then returns to join it, and says whether to
    /// start a new spare first), the spare may retire, or `finished` says the server is done. `ready`: the
    /// queue whose depth calls spares.
    pub(crate) fn wait_as_spare(
        &self,
        id: usize,
        ready: &Ready,
        finished: impl Fn() -> bool,
    ) -> Wake {
        let mut threads = self.lock_threads();
        threads.waiting += 1;
        let idle_since = Instant::now();
        let mut was_deep = false;
        loop {
            if finished() {
                self.stop_waiting(&mut threads);
                return Wake::Join;
            }
            let now = self.micros();
            let deep = ready.len() >= DEEP_QUEUE;
            let missing = self.missing(now, deep && was_deep);
            if missing > 0 {
                self.in_loop.fetch_add(1, Ordering::Relaxed);
                self.stop_waiting(&mut threads);
                // The others missing are called now, not one per later call: when every worker in the loop
                // is blocked, only the watcher's next look would call one, and on a busy machine that look
                // comes tens of milliseconds late (`bench/blocking.sh -s 1000`).
                for _ in 1..missing.min(threads.waiting + 1) {
                    self.spares.notify_one();
                }
                if !self.capacity.grows(threads.started, threads.waiting) {
                    return Wake::Join;
                }
                let started = threads.take_id().map(Wake::JoinAndStart);
                self.ids_in_use
                    .store(threads.ids_in_use(), Ordering::Relaxed);
                return started.unwrap_or(Wake::Join);
            }
            if self.capacity.retires(threads.started, idle_since.elapsed()) {
                self.stop_waiting(&mut threads);
                self.end_locked(&mut threads, id);
                return Wake::Retire;
            }
            was_deep = deep;
            let watcher = !threads.watching;
            threads.watching = true;
            let nap = Nap::choose(watcher, now, self.last_events.load(Ordering::Relaxed));
            if nap == Nap::Doze {
                self.dozing.store(true, Ordering::Relaxed);
            }
            threads = self
                .spares
                .wait_timeout(threads, nap.timeout())
                .map_or_else(|poisoned| poisoned.into_inner().0, |(guard, _)| guard);
            if watcher {
                self.dozing.store(false, Ordering::Relaxed);
                // Reading the workers' states in /proc takes microseconds: not while spares wait for the lock
                // to join.
                drop(threads);
                self.remember_blocking(self.micros());
                threads = self.lock_threads();
                threads.watching = false;
            }
            // Called or not, a spare is awake and checks: a later need may call again.
            self.called.store(false, Ordering::Relaxed);
        }
    }

    /// A spare stops waiting (to join the loop, or to end). While nobody watches (this spare was the
    /// watcher), another waiting spare is woken to watch: the others wait [`IDLE_WAIT`] between looks, and
    /// with nobody watching, a loop whose every worker then blocks waits that long for a spare
    /// (`bench/blocking.sh -s 100`: `/plaintext` p99 52-57 ms, at most 100 ms, before this hand-over).
    fn stop_waiting(&self, threads: &mut Threads) {
        threads.waiting -= 1;
        if !threads.watching && threads.waiting > 0 {
            self.spares.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 4 threads on 2 cores, growing to 4 (as before the pool grew).
    const POOL: Capacity = Capacity {
        base: 4,
        max: 4,
        runnable: 2,
    };

    /// 4 threads on 2 cores, growing to 256.
    const ELASTIC: Capacity = Capacity {
        base: 4,
        max: 256,
        runnable: 2,
    };

    fn load(in_loop: usize, blocked: usize) -> Load {
        Load {
            in_loop,
            blocked,
            ..Load::default()
        }
    }

    #[test]
    fn one_worker_waits_for_events_while_nothing_blocks() {
        assert_eq!(POOL.wanted(load(1, 0)), 1);
        assert_eq!(POOL.missing(load(1, 0)), 0);
        assert!(!POOL.steps_aside(load(1, 0)), "the last worker stays");
    }

    #[test]
    fn a_spare_takes_the_place_of_a_blocked_worker() {
        assert!(POOL.missing(load(1, 1)) > 0);
        assert_eq!(POOL.missing(load(2, 1)), 0, "one free worker is enough");
        assert!(POOL.missing(load(2, 2)) > 0);
    }

    #[test]
    fn no_spare_joins_when_every_thread_is_in_the_loop() {
        assert_eq!(POOL.missing(load(4, 4)), 0);
        let one = Capacity {
            base: 1,
            max: 1,
            runnable: 1,
        };
        assert_eq!(one.missing(load(1, 1)), 0);
    }

    #[test]
    fn two_free_workers_wait_for_a_while_after_a_handler_blocked() {
        let lately = Load {
            blocking_lately: true,
            ..load(1, 0)
        };
        assert_eq!(POOL.wanted(lately), 2);
        assert!(POOL.missing(lately) > 0);
        assert!(!POOL.steps_aside(Load {
            in_loop: 2,
            ..lately
        }));
        assert!(
            POOL.steps_aside(load(2, 0)),
            "once forgotten, the second steps aside"
        );
    }

    #[test]
    fn more_free_workers_wait_the_more_handlers_block() {
        let blocking = |blocked| Load {
            in_loop: blocked,
            blocked,
            blocking_lately: true,
            ..Load::default()
        };
        assert_eq!(ELASTIC.wanted(blocking(1)), 1 + 2);
        assert_eq!(ELASTIC.wanted(blocking(15)), 15 + 2);
        assert_eq!(ELASTIC.wanted(blocking(160)), 160 + 2 + 10);
        assert!(
            ELASTIC.missing(Load {
                in_loop: 170,
                ..blocking(160)
            }) > 0
        );
    }

    #[test]
    fn every_spare_missing_is_counted_up_to_the_most_threads() {
        let blocking = |in_loop, blocked| Load {
            in_loop,
            blocked,
            blocking_lately: true,
            ..Load::default()
        };
        assert_eq!(ELASTIC.missing(blocking(160, 160)), 2 + 10);
        assert_eq!(ELASTIC.missing(blocking(165, 160)), 7);
        assert_eq!(ELASTIC.missing(blocking(180, 160)), 0, "more than wanted");
        assert_eq!(ELASTIC.missing(blocking(250, 250)), 6, "the most is 256");
        assert_eq!(POOL.missing(load(1, 1)), 1);
    }

    #[test]
    fn a_queue_that_stays_deep_calls_one_worker_per_core() {
        let deep = Load {
            queue_stays_deep: true,
            ..load(1, 0)
        };
        assert_eq!(POOL.wanted(deep), POOL.runnable);
        assert!(POOL.missing(deep) > 0);
        assert_eq!(POOL.missing(Load { in_loop: 2, ..deep }), 0);
    }

    #[test]
    fn a_worker_steps_aside_only_when_more_are_in_the_loop_than_wanted() {
        assert!(POOL.steps_aside(load(2, 0)));
        assert!(!POOL.steps_aside(load(2, 1)), "one blocked, one free");
        assert!(POOL.steps_aside(load(3, 1)));
    }

    #[test]
    fn a_worker_counts_as_blocked_after_a_millisecond_in_one_connection() {
        let limit = BLOCKED_AFTER.as_micros() as u64;
        assert!(!is_blocked(0, 10 * limit), "not serving");
        assert!(!is_blocked(100, 100 + limit));
        assert!(is_blocked(100, 101 + limit));
        assert!(!is_blocked(200, 100), "a clock read before the start");
    }

    #[test]
    fn the_watcher_watches_closely_only_while_events_come() {
        let active = ACTIVE_FOR.as_micros() as u64;
        assert_eq!(Nap::choose(true, 1_000, 900), Nap::Watch);
        assert_eq!(Nap::choose(true, 1_000 + active, 1_000), Nap::Doze);
        assert_eq!(Nap::choose(false, 1_000, 900), Nap::Wait);
        assert_eq!(Nap::Watch.timeout(), WATCH_EVERY);
        assert_eq!(Nap::Doze.timeout(), IDLE_WAIT);
    }

    #[test]
    fn the_pool_clock_reserves_zero_for_not_serving() {
        let pool = Pool::new(2, 2);
        assert_eq!(pool.micros_at(pool.epoch), 1);
    }

    #[test]
    fn a_spare_joins_however_many_workers_block_up_to_the_most_threads() {
        assert!(ELASTIC.missing(load(4, 4)) > 0, "beyond the base");
        assert!(ELASTIC.missing(load(100, 100)) > 0);
        assert_eq!(ELASTIC.missing(load(101, 100)), 0, "one free is enough");
        assert_eq!(ELASTIC.missing(load(256, 256)), 0, "none beyond the most");
    }

    #[test]
    fn a_new_spare_starts_when_the_last_one_joins_until_the_most_threads() {
        assert!(ELASTIC.grows(4, 0));
        assert!(!ELASTIC.grows(4, 1), "a spare still waits");
        assert!(ELASTIC.grows(255, 0));
        assert!(!ELASTIC.grows(256, 0), "at the most threads");
        assert!(
            !POOL.grows(4, 0),
            "a pool whose most is its base never grows"
        );
    }

    #[test]
    fn spares_beyond_the_base_retire_after_the_idle_period() {
        assert!(!ELASTIC.retires(40, RETIRE_AFTER - Duration::from_millis(1)));
        assert!(ELASTIC.retires(40, RETIRE_AFTER));
        assert!(ELASTIC.retires(5, RETIRE_AFTER * 2));
        assert!(!ELASTIC.retires(4, RETIRE_AFTER * 2), "the base stays");
    }

    #[test]
    fn the_loop_is_stalled_when_no_turn_ended_for_three_sweeps() {
        let limit = STALLED_AFTER.as_micros() as u64;
        assert!(!stalled(1_000, 1_000 + limit));
        assert!(stalled(1_000, 1_001 + limit));
        assert!(
            !stalled(5_000, 1_000),
            "a turn ended after the clock was read"
        );
    }

    #[test]
    fn thread_ids_are_reused_lowest_first() {
        let pool = Pool::new(2, 8);
        assert_eq!(pool.start_base(), [0, 1]);
        let mut threads = pool.lock_threads();
        assert_eq!(threads.take_id(), Some(2));
        assert_eq!(threads.take_id(), Some(3));
        threads.free_id(2);
        assert_eq!(threads.ids_in_use(), 4);
        assert_eq!(threads.take_id(), Some(2));
        threads.free_id(3);
        assert_eq!((threads.ids_in_use(), threads.started), (3, 3));
    }
}
