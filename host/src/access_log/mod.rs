//! The access log: one line per answered request, formatted into the worker's own buffer and written in
//! batches, as nginx's `access_log ... buffer=64k flush=1s` does.
//!
//! Why batches: one `write()` per line cost 4-5 us of CPU per request (plaintext 20.3 against 16.0 us with
//! the log off; pipelined, 0.24x the requests per second). nginx's buffered log costs it under 1 us.
//!
//! - **Per-worker buffers.** Each worker thread formats into a buffer of its own ([`format`]), so no lock is
//!   shared between workers per request. The buffer sits behind a mutex only the worker takes per line
//!   (uncontended: two atomic instructions) and the flusher once a second.
//! - **Written when full**: a worker whose buffer reaches [`BUFFER_BYTES`] writes it itself, one batch of
//!   whole lines ([`sink`] says how batches never interleave).
//! - **At least every [`FLUSH_EVERY`]**, by a flusher thread. Not by the worker pool's own sweep: an idle
//!   worker is parked off the event loop, and one blocked in a handler runs no loop at all, so only a
//!   thread of its own reaches every buffer on time. It wakes once a second, whatever the load.
//! - **At shutdown**, after the workers finished ([`flush`]); and before a second SIGTERM ends the process
//!   at once. A handler that panics is answered with a 500 and logged like any other request; a panic
//!   inside the formatting itself leaves only whole lines behind (the half line is dropped).
//! - **Reopened** on SIGUSR1 ([`reopen`]): what is buffered goes to the old file, new lines to the new one.
//!
//! Requests the engine answers before it could read their head (400, 414, 431, 408, a connection over the
//! limit's 503) have their line too, as nginx logs them: the first line as it came ([`Request::Refused`]).
//!
//! Lines still buffered when the process is killed (SIGKILL, a crash) are lost, up to one second of them:
//! the price of batching, the same as nginx's.

mod format;
mod sink;

use std::cell::OnceCell;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

pub use format::{Entry, Format, Request};
pub use sink::Destination;

use format::LineCache;
use sink::Sink;

/// Bytes a worker buffers before writing them: nginx's `buffer=64k`, about 600 combined lines.
pub const BUFFER_BYTES: usize = 64 * 1024;
/// Room beyond [`BUFFER_BYTES`] for the line that crosses it, so the usual buffer never grows: a line
/// reserves its longest form (every value escaped), a few KiB for a browser's request.
const LINE_SLACK: usize = 16 * 1024;
/// Longest a line waits in a buffer before it is written: nginx's `flush=1s`.
pub const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// `--access-log` and `--access-log-format`.
#[derive(Clone, Debug)]
pub struct Settings {
    pub destination: Destination,
    pub format: Format,
}

/// The process's access log, set once at startup (like the `log` facade's logger); unset means off.
static LOG: OnceLock<AccessLog> = OnceLock::new();

struct AccessLog {
    format: Format,
    sink: Sink,
    /// Every worker's buffer, for the flusher. A buffer whose thread ended stays until it is flushed.
    buffers: Mutex<Vec<Arc<Mutex<Lines>>>>,
    /// The last write failed: warn once when writing starts to fail, not for every batch.
    failing: AtomicBool,
}

/// One worker's formatted lines not yet written, and its clock and cached values.
struct Lines {
    /// The lines in `..filled`; the rest is room a line is formatted into (initialized once, so a line is
    /// written with plain stores, never a capacity check per piece).
    bytes: Vec<u8>,
    filled: usize,
    cache: LineCache,
}

thread_local! {
    /// This thread's buffer, registered with the log by the first line it formats.
    static MINE: OnceCell<Arc<Mutex<Lines>>> = const { OnceCell::new() };
}

/// Whether lines are written (not `off`): callers skip gathering what only a line would show.
pub fn enabled() -> bool {
    LOG.get().is_some()
}

/// Opens the destination and starts the flusher; does nothing for `off`. Call once, before serving.
pub fn start(settings: &Settings) -> io::Result<()> {
    let Some(sink) = Sink::open(&settings.destination)? else {
        return Ok(());
    };
    let log = AccessLog {
        format: settings.format,
        sink,
        buffers: Mutex::new(Vec::new()),
        failing: AtomicBool::new(false),
    };
    if LOG.set(log).is_err() {
        return Err(io::Error::other("the access log was already started"));
    }
    std::thread::Builder::new()
        .name("plugd-access-log".into())
        .spawn(|| {
            loop {
                std::thread::sleep(FLUSH_EVERY);
                flush();
            }
        })?;
    Ok(())
}

/// The response field whose value a line records as the request's id.
pub const REQUEST_ID_FIELD: &str = "X-Request-Id";

/// Logs one answered request: `request` as it was read (or refused), `status` and `body_bytes` of the
/// response, `started` at the request's first byte, `handler` who answered, the response's `request_id`
/// ([`REQUEST_ID_FIELD`]) if it has one. The line's time is now.
pub fn record(
    peer: SocketAddr,
    request: Request<'_>,
    (status, body_bytes): (u16, u64),
    started: Instant,
    (handler, request_id): (&str, Option<&str>),
) {
    let Some(log) = LOG.get() else {
        return;
    };
    // Fails only while this thread is being torn down, when it serves no request.
    let _ = MINE.try_with(|mine| {
        let mut lines = lock(mine.get_or_init(|| log.register()));
        let Lines {
            bytes,
            filled,
            cache,
        } = &mut *lines;
        let entry = Entry {
            peer: peer.ip(),
            request,
            status,
            body_bytes,
            duration: cache.since(started),
            handler,
            request_id,
        };
        *filled = log.format.write_at(bytes, *filled, &entry, cache);
        if *filled >= BUFFER_BYTES {
            log.write_out(bytes, filled);
        }
    });
}

/// Writes every buffered line now: at shutdown, and by the flusher every [`FLUSH_EVERY`].
pub fn flush() {
    if let Some(log) = LOG.get() {
        log.flush_all();
    }
}

/// Reopens the log file by its path (SIGUSR1, after logrotate renamed it): lines buffered so far go to the
/// old file, later ones to the new. Stderr is not reopened.
pub fn reopen() {
    let Some(log) = LOG.get() else {
        return;
    };
    log.flush_all();
    match log.sink.reopen() {
        Ok(Some(path)) => log::info!("access log reopened: {}", path.display()),
        Ok(None) => {}
        Err(err) => {
            log::error!("cannot reopen the access log, still writing to the old file: {err}")
        }
    }
}

impl AccessLog {
    /// A new buffer for the calling worker, known to the flusher.
    fn register(&self) -> Arc<Mutex<Lines>> {
        let lines = Arc::new(Mutex::new(Lines {
            bytes: vec![0; BUFFER_BYTES + LINE_SLACK],
            filled: 0,
            cache: LineCache::new(),
        }));
        self.buffers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(Arc::clone(&lines));
        lines
    }

    fn flush_all(&self) {
        let mut buffers = self
            .buffers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for lines in buffers.iter() {
            let mut lines = lock(lines);
            if lines.filled > 0 {
                let Lines { bytes, filled, .. } = &mut *lines;
                self.write_out(bytes, filled);
            }
        }
        // Buffers of threads that ended are empty now, and nobody will fill them again.
        buffers.retain(|lines| Arc::strong_count(lines) > 1);
    }

    /// Writes the `filled` bytes of `bytes` as one batch and empties it. A batch that cannot be written is
    /// dropped (memory stays bounded when the disk is full); the first failure is reported, and so is the
    /// recovery.
    fn write_out(&self, bytes: &mut Vec<u8>, filled: &mut usize) {
        let written = self.sink.write(bytes.get(..*filled).unwrap_or_default());
        *filled = 0;
        if bytes.len() > 2 * BUFFER_BYTES {
            // One huge line grew it; give the memory back.
            bytes.truncate(BUFFER_BYTES + LINE_SLACK);
            bytes.shrink_to_fit();
        }
        match written {
            Ok(()) if self.failing.swap(false, Ordering::Relaxed) => {
                log::warn!("access log: writing again");
            }
            Ok(()) => {}
            Err(err) if !self.failing.swap(true, Ordering::Relaxed) => {
                log::error!(
                    "access log: cannot write, lines are dropped until it works again: {err}"
                );
            }
            Err(_) => {}
        }
    }
}

/// Locks a worker's buffer. After a panic while a line was being formatted, the half line is dropped and
/// the whole lines before it kept.
fn lock(lines: &Mutex<Lines>) -> MutexGuard<'_, Lines> {
    lines.lock().unwrap_or_else(|poisoned| {
        lines.clear_poison();
        let mut lines = poisoned.into_inner();
        let filled = lines.bytes.get(..lines.filled).unwrap_or_default();
        lines.filled = filled
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |newline| newline + 1);
        lines
    })
}
