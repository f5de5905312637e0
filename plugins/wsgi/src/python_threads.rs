//! Where Python runs: one queue of Python work (a request's call, each chunk of a streamed body, `close`),
//! served by whichever thread holds the GIL, which serves the requests queued meanwhile before it lets go
//! (flat combining), and a fixed set of Python threads that take over when the queue stalls
//! (docs/ARCHITECTURE.md §19.2).
//!
//! Why not let every worker take the GIL for its own request: then every request moves the GIL from one
//! thread to another, the GIL idle while the next thread wakes up, and pyo3 creates and destroys a Python
//! thread state per call on a thread that has none (an `mmap` and a `munmap` of its frame stack, with TLB
//! shoot-downs on every core). Measured on the bare application (wrk -c64, 2 cores): 20 `futex` calls,
//! one `mmap` and one `munmap` per request, 62% of plugd's CPU in the kernel. Here:
//! - a worker that finds nobody serving runs its request's Python itself, with no hand-off, then the
//!   requests queued meanwhile, for at most [`STALLED_AFTER`] (longer, plugd's pool counts it as blocked),
//!   and hands what is left to a Python thread;
//! - a worker that finds the queue served queues its work and sleeps until it is done;
//! - each thread keeps its Python thread state for life, made on its first use.
//!
//! A request whose Python code waits (I/O, `time.sleep`, a lock) releases the GIL but keeps its thread.
//! When the queue makes no progress for [`STALLED_AFTER`] while requests wait in it, and every serving
//! thread sleeps in the kernel (not merely preempted: only `/proc` tells the two apart) or has run one job
//! for [`LONG_JOB`], the watcher calls one more Python thread to serve it. So a waiting request delays the
//! others by about a millisecond, until every Python thread waits: then the rest queue until one returns,
//! as in a gunicorn `gthread` worker whose threads all wait. A thread that finishes a job while another
//! drains the queue stops serving, so the GIL stays with one thread.

use std::cell::{Cell, OnceCell};
use std::collections::VecDeque;
use std::marker::PhantomData;
use std::panic::{self, AssertUnwindSafe};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use plugin_api::log;
use pyo3::prelude::*;

/// How long the queue may make no progress, while requests wait in it, before one more Python thread is
/// called to serve it. A request of a plain application takes tens of microseconds of Python (Flask's a
/// few hundred), so a thread that took none from the queue for this long is waiting on something; short,
/// as every request queued behind it waits this long.
const STALLED_AFTER: Duration = Duration::from_millis(1);

/// A job that has run this long without waiting is CPU-bound: the queue is served beside it, the two
/// sharing the GIL in CPython's turns (`sys.getswitchinterval()`, 5 ms), as a gunicorn `gthread` worker's
/// threads would, instead of waiting for its end.
const LONG_JOB: Duration = Duration::from_millis(10);

/// How long the watcher keeps looking after it last saw a request queued, before it sleeps until the next
/// one: one wake-up per [`STALLED_AFTER`] while the server is busy, none while it is idle.
const WATCH_FOR: Duration = Duration::from_millis(100);

/// The stack of a Python thread: CPython's threads get the system's default (8 MiB on Linux) and deep
/// recursion in C code (a template engine, `json` on nested data) needs it. Only touched pages are resident.
const STACK_SIZE: usize = 8 * 1024 * 1024;

thread_local! {
    /// Whether this thread serves the queue now, holding the GIL (a job that queued a job would wait for
    /// itself: it runs it in place).
    static SERVING: Cell<bool> = const { Cell::new(false) };
    /// This thread's kernel id, for the watcher's look at its state.
    static TID: i32 = thread_id();
    /// This thread's Python thread state, made on its first use and kept until the thread ends.
    static THREAD_STATE: OnceCell<Option<ThreadState>> = const { OnceCell::new() };
}

/// The Python threads of one plugin instance. Dropping it lets them end once the queue is empty.
pub struct PythonThreads {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    /// Idle Python threads wait here for a call.
    calls: Condvar,
    /// The watcher waits here while nothing is queued.
    watch: Condvar,
}

#[derive(Default)]
struct State {
    queue: VecDeque<JobRef>,
    /// The threads serving the queue (holding the GIL, waiting for it, or running a job).
    servers: Vec<Server>,
    /// The most threads that serve at once: the number of Python threads (a worker serving in place of
    /// one counts as one).
    most_servers: usize,
    /// Python threads waiting for a call.
    idle: usize,
    /// Calls made and not yet taken by an idle Python thread.
    calls: usize,
    /// Jobs taken from the queue so far: the watcher's measure of progress.
    taken: u64,
    /// Whether the watcher is looking (else it sleeps until a request is queued behind a serving thread).
    watching: bool,
    closing: bool,
}

/// A thread serving the queue, as the others see it.
struct Server {
    /// Its kernel id, to read its state in `/proc`.
    tid: i32,
    /// When the job it runs started (`None` between jobs).
    job_since: Option<Instant>,
}

impl PythonThreads {
    /// Starts `count` Python threads (at least one) and their watcher. The interpreter must be started.
    pub fn start(count: usize) -> Result<PythonThreads, String> {
        let count = count.max(1);
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                most_servers: count,
                ..State::default()
            }),
            calls: Condvar::new(),
            watch: Condvar::new(),
        });
        for n in 0..count {
            let serving = Arc::clone(&shared);
            thread::Builder::new()
                .name(format!("wsgi-python-{n}"))
                .stack_size(STACK_SIZE)
                .spawn(move || serving.serve_when_called())
                .map_err(|err| format!("cannot start a Python thread: {err}"))?;
        }
        let watching = Arc::clone(&shared);
        thread::Builder::new()
            .name("wsgi-watch".to_owned())
            .spawn(move || watching.watch())
            .map_err(|err| format!("cannot start the Python threads' watcher: {err}"))?;
        Ok(PythonThreads { shared })
    }

    /// Runs `work` with the GIL and returns what it returned: here when nobody serves the queue (then
    /// also the work queued meanwhile), else on the thread serving it while this one sleeps. A panic in
    /// `work` continues on the calling thread.
    pub fn run<R: Send>(&self, work: impl FnOnce(Python<'_>) -> R + Send) -> R {
        if SERVING.get() {
            return Python::with_gil(work);
        }
        let mut work = Some(work);
        let mut outcome = None;
        {
            let mut call = |py: Python<'_>| {
                if let Some(work) = work.take() {
                    outcome = Some(panic::catch_unwind(AssertUnwindSafe(|| work(py))));
                }
            };
            let job = Job {
                call: NonNull::from(&mut call as &mut (dyn FnMut(Python<'_>) + Send)),
                done: AtomicBool::new(false),
                waiter: thread::current(),
            };
            if self.shared.queue_or_serve(&job) {
                self.shared.serve_here(JobRef::new(&job));
            }
            while !job.done.load(Ordering::Acquire) {
                thread::park();
            }
        }
        match outcome {
            Some(Ok(result)) => result,
            Some(Err(panic)) => panic::resume_unwind(panic),
            None => unreachable!("a job is marked done only after it ran"),
        }
    }
}

impl Drop for PythonThreads {
    fn drop(&mut self) {
        self.shared.lock().closing = true;
        self.shared.calls.notify_all();
        self.shared.watch.notify_all();
    }
}

impl State {
    /// Whether a serving thread other than `me` drains the queue: between two jobs, or in one that
    /// started less than [`STALLED_AFTER`] ago.
    fn another_drains(&self, me: i32, now: Instant) -> bool {
        self.servers.iter().any(|server| {
            server.tid != me
                && server
                    .job_since
                    .is_none_or(|since| now.duration_since(since) < STALLED_AFTER)
        })
    }

    /// Whether no serving thread will take the next job soon: each sleeps in the kernel (in a job that
    /// waits, or for the GIL) or has run one job for [`LONG_JOB`]. A thread merely preempted counts as
    /// taking it soon.
    fn none_takes_soon(&self, now: Instant) -> bool {
        self.servers.iter().all(|server| {
            server
                .job_since
                .is_some_and(|since| now.duration_since(since) >= LONG_JOB)
                || is_sleeping(server.tid)
        })
    }

    /// Calls one more Python thread to serve, if fewer than the most serve and one is idle.
    fn call_another_server(&mut self, calls: &Condvar) -> bool {
        if self.servers.len() + self.calls >= self.most_servers {
            return false;
        }
        self.hand_over(calls)
    }

    /// Calls an idle Python thread to serve in place of the thread leaving, if one is idle.
    fn hand_over(&mut self, calls: &Condvar) -> bool {
        if self.idle <= self.calls {
            return false;
        }
        self.calls += 1;
        calls.notify_one();
        true
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Only this module's code runs under the lock, and none of it panics halfway through a change.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues `job` when the queue is served (`false`: wait for it), else makes the calling thread its
    /// server and takes it (`true`: run it with [`Shared::serve_here`]). A queued job must stay where it is
    /// until it is marked done.
    fn queue_or_serve(&self, job: &Job<'_>) -> bool {
        let mut state = self.lock();
        if state.servers.is_empty() && state.calls == 0 {
            state.servers.push(Server {
                tid: TID.with(|tid| *tid),
                job_since: Some(Instant::now()),
            });
            state.taken += 1;
            return true;
        }
        state.queue.push_back(JobRef::new(job));
        if !state.watching {
            state.watching = true;
            drop(state);
            self.watch.notify_one();
        }
        false
    }

    /// Runs `own` (taken by [`Shared::queue_or_serve`]) on this worker, then the jobs queued meanwhile for
    /// at most [`STALLED_AFTER`], then hands the queue to a Python thread.
    fn serve_here(&self, own: JobRef) {
        let until = Instant::now() + STALLED_AFTER;
        self.serve(Some(own), Some(until));
    }

    /// A Python thread's life: serve the queue whenever called.
    fn serve_when_called(&self) {
        while self.wait_for_call() {
            self.serve(None, None);
        }
    }

    /// Serves the queue with the GIL, starting with `first`, until it is empty, another thread drains it,
    /// or `until` (then a Python thread is called for the rest).
    fn serve(&self, first: Option<JobRef>, until: Option<Instant>) {
        THREAD_STATE.with(|kept| {
            kept.get_or_init(ThreadState::keep);
        });
        let me = TID.with(|tid| *tid);
        SERVING.set(true);
        Python::with_gil(|py| {
            let mut next = first.or_else(|| self.next_job(me, until));
            while let Some(job) = next {
                // SAFETY: the job's submitter sleeps until `run` marks it done, so it is still there.
                unsafe { job.run(py) };
                next = self.next_job(me, until);
            }
        });
        SERVING.set(false);
    }

    /// Waits until this Python thread is called to serve the queue; `false` when the plugin is going away.
    fn wait_for_call(&self) -> bool {
        let mut state = self.lock();
        state.idle += 1;
        while state.calls == 0 && !state.closing {
            state = self
                .calls
                .wait(state)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
        state.idle -= 1;
        if state.calls == 0 {
            return false;
        }
        state.calls -= 1;
        state.servers.push(Server {
            tid: TID.with(|tid| *tid),
            job_since: None,
        });
        true
    }

    /// The next job for thread `me`, which has just finished one (or was called). `None` when the queue is
    /// empty, or another thread drains it (a thread called while this one waited is back: the GIL is not
    /// handed back and forth between two), or `until` has passed and a Python thread takes over: thread
    /// `me` then stops serving.
    fn next_job(&self, me: i32, until: Option<Instant>) -> Option<JobRef> {
        let mut state = self.lock();
        let now = Instant::now();
        let leave = state.queue.is_empty()
            || state.another_drains(me, now)
            || until.is_some_and(|until| now >= until) && state.hand_over(&self.calls);
        let job = if leave { None } else { state.queue.pop_front() };
        state.taken += u64::from(job.is_some());
        match state.servers.iter().position(|server| server.tid == me) {
            Some(at) if job.is_none() => {
                state.servers.swap_remove(at);
            }
            Some(at) => state.servers[at].job_since = Some(now),
            None => {}
        }
        job
    }

    /// The watcher: while requests wait in the queue, calls one more Python thread each time the queue
    /// took nothing for [`STALLED_AFTER`] and no serving thread will take a job soon.
    fn watch(&self) {
        let mut state = self.lock();
        let mut seen = state.taken;
        let mut last_queued = Instant::now();
        while !state.closing {
            if !state.watching {
                state = self
                    .watch
                    .wait(state)
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                seen = state.taken;
                last_queued = Instant::now();
                continue;
            }
            state = self
                .watch
                .wait_timeout(state, STALLED_AFTER)
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .0;
            if state.queue.is_empty() {
                state.watching = last_queued.elapsed() < WATCH_FOR;
            } else {
                last_queued = Instant::now();
                if state.taken == seen && state.none_takes_soon(Instant::now()) {
                    state.call_another_server(&self.calls);
                }
            }
            seen = state.taken;
        }
    }
}

/// The calling thread's kernel id.
fn thread_id() -> i32 {
    // SAFETY: gettid takes no arguments and cannot fail.
    unsafe { libc::gettid() }
}

/// Whether thread `tid` of this process sleeps in the kernel (state S or D: waiting for I/O, a lock, the
/// GIL, a timer), as opposed to running or waiting for a CPU.
fn is_sleeping(tid: i32) -> bool {
    let Ok(stat) = std::fs::read(format!("/proc/self/task/{tid}/stat")) else {
        return false;
    };
    // "TID (COMM) STATE ...": the state follows the last ')'.
    stat.iter()
        .rposition(|&b| b == b')')
        .and_then(|at| stat.get(at + 2))
        .is_some_and(|state| matches!(state, b'S' | b'D'))
}

/// One queued piece of Python work, on its submitter's stack.
struct Job<'a> {
    /// The work, borrowed mutably: only the Python thread running the job touches it.
    call: NonNull<dyn FnMut(Python<'_>) + Send + 'a>,
    done: AtomicBool,
    /// The submitter, asleep until `done`.
    waiter: Thread,
}

/// A queued [`Job`], its lifetime erased: the submitter keeps it in place until it is done.
struct JobRef(NonNull<Job<'static>>);

// SAFETY: a job is run by one Python thread while its submitter sleeps; its closure is `Send`.
unsafe impl Send for JobRef {}

impl JobRef {
    fn new(job: &Job<'_>) -> JobRef {
        JobRef(NonNull::from(job).cast())
    }

    /// Runs the job and wakes its submitter.
    ///
    /// SAFETY: the job must still be in place (its submitter has not seen it done), and run only once.
    unsafe fn run(self, py: Python<'_>) {
        // SAFETY: per the contract, the job is alive until `done` is set; its submitter only reads `done`.
        let job = unsafe { self.0.as_ref() };
        // SAFETY: `call` was borrowed mutably for the job, and nothing else uses it until `done` is set.
        unsafe { (*job.call.as_ptr())(py) };
        // The submitter may return (and its stack frame end) as soon as `done` is set: wake it through a
        // handle of our own.
        let waiter = job.waiter.clone();
        job.done.store(true, Ordering::Release);
        waiter.unpark();
    }
}

/// This thread's Python thread state, kept for the thread's life (pyo3 would otherwise create and destroy
/// one on each `with_gil`), without the GIL between uses.
struct ThreadState {
    gil_state: pyo3::ffi::PyGILState_STATE,
    saved: NonNull<pyo3::ffi::PyThreadState>,
    _not_send: PhantomData<*mut ()>,
}

impl ThreadState {
    fn keep() -> Option<ThreadState> {
        // SAFETY: the interpreter is initialised (the plugin started it before any Python thread);
        // PyGILState_Ensure creates this thread's state and takes the GIL, PyEval_SaveThread releases the GIL
        // and keeps the state, whose count stays above zero so that later `with_gil`s reuse it.
        unsafe {
            let gil_state = pyo3::ffi::PyGILState_Ensure();
            let saved = NonNull::new(pyo3::ffi::PyEval_SaveThread());
            if saved.is_none() {
                log::error!("a Python thread has no thread state; Python runs without a kept one");
            }
            saved.map(|saved| ThreadState {
                gil_state,
                saved,
                _not_send: PhantomData,
            })
        }
    }
}

impl Drop for ThreadState {
    fn drop(&mut self) {
        // SAFETY: the reverse of `keep`, on the same thread: take the GIL back with the kept state, then let
        // the last PyGILState_Release delete it.
        unsafe {
            pyo3::ffi::PyEval_RestoreThread(self.saved.as_ptr());
            pyo3::ffi::PyGILState_Release(self.gil_state);
        }
    }
}
