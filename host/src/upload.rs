//! A request body read as it arrives, for a route that streams its body (docs/ARCHITECTURE.md §15.3): the
//! handler pulls de-framed bytes through [`BodySource`], and the worker running it reads the socket only as
//! fast as the handler asks, so an upload of any size passes through one 64 KiB buffer.
//!
//! Reading blocks the worker (the handler is plain blocking code, like any handler), within the body's
//! timeouts: [`BodyTimeouts`] cuts a body that stalls for the inactivity timeout, or whose average rate
//! falls below the minimum once its grace period is over.

use std::io;
use std::net::TcpStream;
use std::time::Instant;

use plugin_api::host::{BodyReadError, BodySource};

use crate::config::BodyTimeouts;
use crate::http::body::{BodyError, ChunkedStream};
use crate::http::response::CONTINUE;
use crate::sys;

/// Bytes read from the socket per read.
const READ_CHUNK: usize = 64 * 1024;

/// How the body is delimited, and how much of it is left.
enum Framing {
    Length { left: u64 },
    Chunked(ChunkedStream),
}

/// One streamed request body, read from `socket` after the bytes already in the connection's buffer.
pub struct Upload<'a> {
    socket: &'a TcpStream,
    framing: Framing,
    /// The body's `Content-Length`, if it has one.
    length: Option<u64>,
    limit: u64,
    /// Bytes that followed the head in the connection's buffer, then `own`'s.
    early: &'a [u8],
    early_used: usize,
    own: Vec<u8>,
    own_used: usize,
    timeouts: BodyTimeouts,
    /// The end of the head: the rate counts from here.
    since: Instant,
    last_read: Instant,
    /// Raw body bytes read from the socket.
    received: u64,
    /// `100 Continue` is owed before the first read from the socket.
    owe_continue: bool,
    failed: Option<BodyReadError>,
    ended: bool,
}

impl<'a> Upload<'a> {
    /// A body of `length` bytes (chunked if `None`), whose first bytes are `early`; `limit` until the
    /// handler sets its own. `expect_continue`: the client waits for `100 Continue` before sending it.
    pub fn new(
        socket: &'a TcpStream,
        length: Option<u64>,
        early: &'a [u8],
        limit: u64,
        timeouts: BodyTimeouts,
        expect_continue: bool,
    ) -> Upload<'a> {
        let now = Instant::now();
        Upload {
            socket,
            framing: match length {
                Some(left) => Framing::Length { left },
                None => Framing::Chunked(ChunkedStream::new(limit)),
            },
            length,
            limit,
            early,
            early_used: 0,
            own: Vec::new(),
            own_used: 0,
            timeouts,
            since: now,
            last_read: now,
            received: 0,
            owe_continue: expect_continue,
            failed: None,
            ended: length == Some(0),
        }
    }

    /// Why reading the body failed, if it did: the answer must be this status, and the connection closed.
    pub fn failed(&self) -> Option<BodyReadError> {
        self.failed
    }

    /// Whether the handler read the whole body: if not, the connection cannot carry another request.
    pub fn ended(&self) -> bool {
        self.ended
    }

    /// How many of the connection's buffered bytes the body took, and the bytes read from the socket past
    /// its end (the start of the next request), if the body needed the socket at all.
    pub fn finish(self) -> (usize, Option<Vec<u8>>) {
        if self.own.is_empty() && self.received == 0 {
            return (self.early_used, None);
        }
        let mut rest = self.own;
        rest.drain(..self.own_used);
        (self.early.len(), Some(rest))
    }

    fn fail<T>(&mut self, err: BodyReadError) -> Result<T, BodyReadError> {
        self.failed = Some(err);
        Err(err)
    }

    /// Marks `n` raw bytes as de-framed.
    fn consume(&mut self, n: usize) {
        if self.early_used < self.early.len() {
            self.early_used += n;
        } else {
            self.own_used += n;
        }
    }

    /// De-frames what was read into `buf`: `Some(n)` with data (or 0 at the end), `None` if it needs more.
    fn take(&mut self, buf: &mut [u8]) -> Result<Option<usize>, BodyError> {
        let early: &[u8] = self.early;
        let unread = if self.early_used < early.len() {
            &early[self.early_used..]
        } else {
            &self.own[self.own_used..]
        };
        match &mut self.framing {
            Framing::Length { left } => {
                let n = unread.len().min(buf.len()).min(*left as usize);
                if n == 0 {
                    return Ok(None);
                }
                buf[..n].copy_from_slice(&unread[..n]);
                *left -= n as u64;
                self.ended = *left == 0;
                self.consume(n);
                Ok(Some(n))
            }
            Framing::Chunked(chunked) => {
                let step = chunked.decode(unread, buf.len())?;
                let n = step.data.len();
                buf[..n].copy_from_slice(&unread[step.data]);
                self.ended = chunked.is_done();
                self.consume(step.used);
                Ok((n > 0 || self.ended).then_some(n))
            }
        }
    }

    /// Reads more of the body from the socket into `own`, waiting within the body's timeouts.
    fn fill(&mut self) -> Result<(), BodyReadError> {
        if std::mem::take(&mut self.owe_continue) {
            // Nothing else is on its way to the client: the connection wrote its earlier answers first.
            let _ = sys::send_available(self.socket, CONTINUE, false);
        }
        let want = match self.framing {
            // Never past the body: what follows belongs to the next request.
            Framing::Length { left } => usize::try_from(left).unwrap_or(READ_CHUNK).min(READ_CHUNK),
            Framing::Chunked(_) => READ_CHUNK,
        };
        self.own.clear();
        self.own_used = 0;
        loop {
            match sys::read_append(self.socket, &mut self.own, want) {
                Ok(0) => return self.fail(BodyReadError::Closed),
                Ok(n) => {
                    self.received += n as u64;
                    self.last_read = Instant::now();
                    return Ok(());
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => self.wait()?,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return self.fail(BodyReadError::Closed),
            }
        }
    }

    /// Waits for the socket to become readable until the body's deadline.
    fn wait(&mut self) -> Result<(), BodyReadError> {
        let deadline = self
            .timeouts
            .deadline(self.since, self.last_read, self.received);
        let left = deadline.saturating_duration_since(Instant::now());
        match sys::wait_readable(self.socket, left) {
            Ok(true) => Ok(()),
            Ok(false) if Instant::now() < deadline => Ok(()),
            Ok(false) => self.fail(BodyReadError::TimedOut),
            Err(_) => self.fail(BodyReadError::Closed),
        }
    }
}

impl BodySource for Upload<'_> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, BodyReadError> {
        if let Some(err) = self.failed {
            return Err(err);
        }
        if self.length.is_some_and(|length| length > self.limit) {
            return self.fail(BodyReadError::TooLarge);
        }
        if self.ended || buf.is_empty() {
            return Ok(0);
        }
        loop {
            match self.take(buf) {
                Ok(Some(n)) => return Ok(n),
                Ok(None) => self.fill()?,
                Err(BodyError::TooLarge) => return self.fail(BodyReadError::TooLarge),
                Err(BodyError::Malformed) => return self.fail(BodyReadError::Malformed),
            }
        }
    }

    fn set_limit(&mut self, limit: u64) -> Result<(), BodyReadError> {
        self.limit = limit;
        if let Framing::Chunked(chunked) = &mut self.framing {
            chunked.set_max_body(limit);
        }
        if self.length.is_some_and(|length| length > limit) {
            return self.fail(BodyReadError::TooLarge);
        }
        Ok(())
    }

    fn length(&self) -> Option<u64> {
        self.length
    }
}
