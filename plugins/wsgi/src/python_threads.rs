//! The threads Python runs on: a fixed set started with the plugin, each with its own Python thread state
//! for life, fed by one queue. plugd's workers never run Python themselves: they queue the Python part of a
//! request (and of each chunk of a streamed body) and sleep until a Python thread has done it
//! (docs/ARCHITECTURE.md §19.2).
//!
//! Why not let every worker take the GIL for its own request: then every request moves the GIL from one
//! thread to another, and the GIL sits idle while the next thread wakes up; pyo3 also creates and destroys
//! a Python thread state per call on a thread that has none (an `mmap` and a `munmap` of its frame stack,
//! with TLB shoot-downs on every core). Measured on the bare application (wrk -c64, 2 cores): 20 `futex`
//! calls, one `mmap` and one `munmap` per request, 62% of plugd's CPU in the kernel, and at times a third
//! of one core busy. Here a Python thread that holds the GIL serves the queue until it is empty, so the GIL
//! stays on one thread across requests, and thread states are made once per Python thread.
//!
//! A request whose Python code waits (I/O, `time.sleep`, a lock) releases the GIL but keeps its Python
//! thread. When the queue makes no progress for [`STALLED_AFTER`] while requests wait in it, and every
//! serving thread sleeps in the kernel (not merely preempted: only `/proc` tells the two apart) or has
//! run one job for [`LONG_JOB`], the watcher calls one more Python thread to serve it. So a waiting
//! request delays the others by about a millisecond, until every Python thread waits: then the rest queue
//! until one returns, as in a gunicorn `gthread` worker whose threads all wait. A thread that finishes a
//! job while another drains the queue stops serving, so the GIL stays with one thread.

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
    /// Whether this thread is one of the Python threads (a job that queues a job would wait for itself).
    static ON_PYTHON_THREAD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
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
    /// One per Python thread, by its index.
    threads: Vec<PythonThread>,
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

/// What the others know of one Python thread.
#[derive(Clone, Copy, Default)]
struct PythonThread {
    /// Its kernel thread id, to read its state in `/proc` (0 until it started).
    tid: i32,
    /// Whether it serves the queue (holds the GIL, waits for it, or runs a job).
    serving: bool,
    /// When the job it runs started.
    job_since: Option<Instant>,
}

impl PythonThreads {
    /// Starts `count` Python threads (at least one) and their watcher. The interpreter must be started.
    pub fn start(count: usize) -> Result<PythonThreads, String> {
        let count = count.max(1);
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                threads: vec![PythonThread::default(); count],
                ..State::default()
            }),
            calls: Condvar::new(),
            watch: Condvar::new(),
        });
        for me in 0..count {
            let serving = Arc::clone(&shared);
            thread::Builder::new()
                .name(format!("wsgi-python-{me}"))
                .stack_size(STACK_SIZE)
                .spawn(move || serving.serve(me))
                .map_err(|err| format!("cannot start a Python thread: {err}"))?;
        }
        let watching = Arc::clone(&shared);
        thread::Builder::new()
            .name("wsgi-watch".to_owned())
            .spawn(move || watching.watch())
            .map_err(|err| format!("cannot start the Python threads' watcher: {err}"))?;
        Ok(PythonThreads { shared })
    }

    /// Runs `work` with the GIL on a Python thread and returns what it returned; the calling thread sleeps
    /// meanwhile. A panic in `work` continues on the calling thread. On a Python thread, runs it right away.
    pub fn run<R: Send>(&self, work: impl FnOnce(Python<'_>) -> R + Send) -> R {
        if ON_PYTHON_THREAD.get() {
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
            self.shared.submit(&job);
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
    fn serving(&self) -> usize {
        self.threads.iter().filter(|t| t.serving).count()
    }

    /// Whether a serving thread other than `me` is draining the queue: between two jobs, or in one that
    /// started less than [`STALLED_AFTER`] ago.
    fn another_drains(&self, me: usize, now: Instant) -> bool {
        self.threads.iter().enumerate().any(|(i, t)| {
            i != me
                && t.serving
                && t.job_since
                    .is_none_or(|since| now.duration_since(since) < STALLED_AFTER)
        })
    }

    /// Whether no serving thread will take the next job soon: each sleeps in the kernel (in a job that
    /// waits, or for the GIL) or has run one job for [`LONG_JOB`]. A thread merely preempted counts as
    /// taking it soon.
    fn none_takes_soon(&self, now: Instant) -> bool {
        self.threads.iter().filter(|t| t.serving).all(|t| {
            t.job_since
                .is_some_and(|since| now.duration_since(since) >= LONG_JOB)
                || is_sleeping(t.tid)
        })
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Only this module's code runs under the lock, and none of it panics halfway through a change.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues `job`, calling a Python thread if none serves the queue. `job` must stay where it is until
    /// it is marked done.
    fn submit(&self, job: &Job<'_>) {
        let mut state = self.lock();
        state.queue.push_back(JobRef::new(job));
        if state.calls == 0 && state.serving() == 0 {
            state.calls += 1;
            drop(state);
            self.calls.notify_one();
        } else if !state.watching {
            state.watching = true;
            drop(state);
            self.watch.notify_one();
        }
    }

    /// The life of Python thread `me`: keep a thread state, then serve the queue whenever called.
    fn serve(&self, me: usize) {
        ON_PYTHON_THREAD.set(true);
        self.lock().threads[me].tid = thread_id();
        let _thread_state = ThreadState::keep();
        while self.wait_for_call(me) {
            Python::with_gil(|py| {
                while let Some(job) = self.next_job(me) {
                    // SAFETY: the job's submitter sleeps until `run` marks it done, so it is still there.
                    unsafe { job.run(py) };
                }
            });
        }
    }

    /// Waits until thread `me` is called to serve the queue; `false` when the plugin is going away.
    fn wait_for_call(&self, me: usize) -> bool {
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
        state.threads[me].serving = true;
        true
    }

    /// The next job for thread `me`, which has just finished one (or was called). `None` when the queue is
    /// empty or another thread drains it (a thread called while this one waited is back): thread `me`
    /// then stops serving, so the GIL is not handed back and forth between two of them.
    fn next_job(&self, me: usize) -> Option<JobRef> {
        let mut state = self.lock();
        let now = Instant::now();
        let job = match state.another_drains(me, now) {
            true => None,
            false => state.queue.pop_front(),
        };
        let thread = &mut state.threads[me];
        thread.job_since = job.as_ref().map(|_| now);
        thread.serving = job.is_some();
        state.taken += u64::from(job.is_some());
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
                let stalled = state.taken == seen && state.idle > state.calls;
                if stalled && state.none_takes_soon(Instant::now()) {
                    state.calls += 1;
                    self.calls.notify_one();
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
