//! A streamed response body on its way out (docs/ARCHITECTURE.md §15): pulled from the plugin's producer
//! only when the socket has room, framed as chunks (or counted against its `Content-Length`, or sent until
//! the connection closes), and resumed when the producer's waker says it has more.
//!
//! The stream holds one window of [`WINDOW`] bytes while a piece is on its way, and nothing while it waits
//! for the producer: that window, plus the kernel's socket buffer, is all the memory a stream costs plugd
//! however slow its client. A stream waiting for its producer is parked like an idle connection: no thread
//! waits with it. The producer's waker schedules the connection through [`Schedule`], from any thread.

use std::io;
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use plugin_api::host::{Producer, Wake, Waker};
use plugin_api::stream::Produced;

use crate::http::response::Delimit;
use crate::sys;

/// Bytes the producer may write per call: the most a stream holds in plugd.
pub const WINDOW: usize = 64 * 1024;
/// Room before the window for a chunk's size line (`10000\r\n` at most).
const SIZE_LINE_ROOM: usize = 8;
/// The end of a chunked body: the last chunk and an empty trailer section.
const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// How the engine serves a connection again when a stream's producer wakes it, from any thread.
pub trait Schedule: Send + Sync {
    /// Serves the connection `token` soon (a stale token is ignored by whoever serves it).
    fn schedule(&self, token: u64);
}

/// What [`OutStream::pump`] left undone.
#[derive(Debug, PartialEq, Eq)]
pub enum Pump {
    /// The whole body is sent.
    Complete,
    /// The socket is full: wait for room.
    SocketFull,
    /// The producer has nothing yet: it wakes the connection when it has.
    WaitingForProducer,
    /// This turn's byte budget is spent: serve it again after the others.
    BudgetSpent,
}

/// The waker's target: the connection to schedule, until the stream is over.
struct StreamWake {
    schedule: Arc<dyn Schedule>,
    token: u64,
    over: AtomicBool,
}

impl Wake for StreamWake {
    fn wake(&self) -> bool {
        if self.over.load(Ordering::Acquire) {
            return false;
        }
        self.schedule.schedule(self.token);
        true
    }
}

/// A streamed response body being sent.
pub struct OutStream {
    producer: Producer,
    delimit: Delimit,
    /// Framed bytes on their way out: `buf[sent..end]` is still to be sent. Empty while waiting.
    buf: Vec<u8>,
    sent: usize,
    end: usize,
    /// The body's end is in `buf` (or needs nothing more): once it is sent, the stream is complete.
    ending: bool,
    target: Arc<StreamWake>,
    waker: Waker,
}

impl OutStream {
    /// A stream of `producer`'s body, delimited by `delimit`, for the connection `token`.
    pub fn new(
        producer: Producer,
        delimit: Delimit,
        schedule: &Arc<dyn Schedule>,
        token: u64,
    ) -> OutStream {
        let target = Arc::new(StreamWake {
            schedule: Arc::clone(schedule),
            token,
            over: AtomicBool::new(false),
        });
        let waker = Waker::new(Arc::clone(&target) as Arc<dyn Wake>);
        OutStream {
            producer,
            delimit,
            buf: Vec::new(),
            sent: 0,
            end: 0,
            ending: delimit == Delimit::Length(0),
            target,
            waker,
        }
    }

    /// Sends what is framed, then asks the producer for more, until the socket is full, the producer has
    /// nothing, the body is complete, or `budget` bytes were sent. An error (the socket failed, the
    /// producer failed or panicked, or ended off its declared length) means the response must be cut.
    pub fn pump(&mut self, socket: &TcpStream, budget: &mut u64) -> io::Result<Pump> {
        loop {
            if self.sent < self.end {
                let n = sys::send_available(socket, &self.buf[self.sent..self.end], false)?;
                self.sent += n;
                *budget = budget.saturating_sub(n as u64);
                if self.sent < self.end {
                    return Ok(Pump::SocketFull);
                }
            }
            if self.ending {
                self.buf = Vec::new();
                return Ok(Pump::Complete);
            }
            if *budget == 0 {
                return Ok(Pump::BudgetSpent);
            }
            if !self.produce()? {
                // Nothing is on its way: the window is given back while the stream waits.
                self.buf = Vec::new();
                return Ok(Pump::WaitingForProducer);
            }
        }
    }

    /// Asks the producer for the next piece and frames it; `false` if it has none yet.
    fn produce(&mut self) -> io::Result<bool> {
        let window = match self.delimit {
            Delimit::Length(left) => usize::try_from(left).unwrap_or(WINDOW).min(WINDOW),
            Delimit::Chunked | Delimit::Close => WINDOW,
        };
        self.buf
            .resize(SIZE_LINE_ROOM + WINDOW + 2 + LAST_CHUNK.len(), 0);
        let start = SIZE_LINE_ROOM;
        match self
            .producer
            .produce(&mut self.buf[start..start + window], &self.waker)
        {
            Produced::Wrote(n) => {
                self.frame(start, n);
                Ok(true)
            }
            Produced::Pending => Ok(false),
            Produced::Done => self.finish(start),
            Produced::Failed(why) => Err(io::Error::other(why)),
        }
    }

    /// Frames the `n` bytes just produced at `buf[start..]`.
    fn frame(&mut self, start: usize, n: usize) {
        (self.sent, self.end) = (start, start + n);
        match &mut self.delimit {
            Delimit::Chunked => {
                let size = format!("{n:x}\r\n");
                self.sent = start - size.len();
                self.buf[self.sent..start].copy_from_slice(size.as_bytes());
                self.buf[self.end..self.end + 2].copy_from_slice(b"\r\n");
                self.end += 2;
            }
            Delimit::Length(left) => {
                *left -= n as u64;
                self.ending = *left == 0;
            }
            Delimit::Close => {}
        }
    }

    /// The producer said the body is complete: end it as its framing says.
    fn finish(&mut self, start: usize) -> io::Result<bool> {
        match self.delimit {
            Delimit::Chunked => {
                self.buf[start..start + LAST_CHUNK.len()].copy_from_slice(LAST_CHUNK);
                (self.sent, self.end) = (start, start + LAST_CHUNK.len());
            }
            Delimit::Length(left) if left > 0 => {
                return Err(io::Error::other(format!(
                    "the body ended {left} bytes short of its declared length"
                )));
            }
            Delimit::Length(_) | Delimit::Close => (self.sent, self.end) = (0, 0),
        }
        self.ending = true;
        Ok(true)
    }
}

impl Drop for OutStream {
    /// The producer is dropped with the stream (the plugin sees the end); its waker answers `false` from now.
    fn drop(&mut self) {
        self.target.over.store(true, Ordering::Release);
    }
}
