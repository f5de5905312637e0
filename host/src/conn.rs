//! One connection's life between wake-ups: read once, answer every complete request in the buffer
//! (pipelining: in order, in one write), then tell the worker whether to park it again, serve it again soon
//! or close it.
//!
//! Readiness is edge-triggered (`poller.rs`): an event comes only when new bytes (or room to write) arrive.
//! So a read that fills its whole chunk, or a file whose sending budget ran out, asks to be served again
//! ([`Next::Again`]): no event would come for the bytes still waiting. A short read emptied the socket.
//!
//! A connection owns no read buffer while idle: the worker lends its own, and only the bytes of a request
//! still arriving are kept here (DESIGN.md: 5,000 idle connections in 2.2 MiB).

use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::config::{Limits, Timeouts};
use crate::dispatch;
use crate::handler::{Body, Request, Response};
use crate::http::body::{BodyError, ChunkedProgress, decode_chunked_resume};
use crate::http::response::{self, CONTINUE, Framing};
use crate::http::{BodyFraming, RequestHead, Version, parse_head};
use crate::router::Router;
use crate::sys;

/// Most bytes taken from the socket per wake-up: enough for a burst of pipelined requests.
const READ_CHUNK: usize = 64 * 1024;
/// Partial requests at least this large keep a buffer of their own between reads (a body arriving);
/// smaller ones are copied into the worker's buffer on each read.
const OWN_BUFFER_FROM: usize = 16 * 1024;
/// Pending response bytes after which pipelined requests wait until the client reads: bounds memory
/// per connection when a client pipelines without reading.
const OUTPUT_HIGH_WATER: usize = 256 * 1024;
/// Files up to this size are read into the output buffer, so head and body leave in one write (one TCP
/// segment) and the response needs no queue; larger ones are sent by `sendfile`, never read into memory.
/// static_1k (perf stat, wrk -c64): 22.7 us CPU/request with head + sendfile, 18.2-19.1 us inline.
const INLINE_FILE_MAX: u64 = 16 * 1024;
/// File bytes sent per wake-up before other connections get a turn.
const SENDFILE_BUDGET: u64 = 8 * 1024 * 1024;
/// How long a closing connection keeps reading (and discarding) so the client sees our final response
/// instead of a reset (nginx's `lingering_time` idea, shorter).
const LINGER: Duration = Duration::from_secs(2);

/// What the worker does with a connection after serving it.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// Wait for the next event: the socket was read until it had no more, or is full of our output.
    Park,
    /// Park it, but serve it again soon without an event: work is left that no event will announce (the
    /// last read filled its chunk and may have left bytes behind, or a file's sending budget was spent).
    Again,
    Close,
}

/// Everything a connection needs from the server while it is served.
pub struct Context<'a> {
    pub router: &'a Router,
    pub limits: &'a Limits,
    pub timeouts: &'a Timeouts,
    /// Set when the server starts draining: answer what is in flight, with `Connection: close`.
    /// Read live, since a handler may run across the moment shutdown begins.
    pub shutdown: &'a OnceLock<Instant>,
    pub date: &'a [u8],
    /// When the worker took the connection.
    pub now: Instant,
}

impl Context<'_> {
    fn shutting_down(&self) -> bool {
        self.shutdown.get().is_some()
    }
}

/// A worker's reusable buffers, lent to whichever connection it serves.
#[derive(Default)]
pub struct Scratch {
    read: Vec<u8>,
    out: Vec<u8>,
}

/// The part of a chunked request body decoded so far.
#[derive(Default)]
struct ChunkedBody {
    progress: ChunkedProgress,
    data: Vec<u8>,
}

/// Output the socket did not take yet.
enum Pending {
    Bytes {
        data: Vec<u8>,
        sent: usize,
    },
    File {
        file: File,
        offset: u64,
        remaining: u64,
    },
}

pub struct Conn {
    socket: TcpStream,
    peer: SocketAddr,
    /// Bytes of a request still arriving; empty (no allocation) between requests.
    input: Vec<u8>,
    output: VecDeque<Pending>,
    /// A chunked body still arriving, decoded as far as its complete chunks go, so each byte is decoded once
    /// however many reads the body takes.
    chunked: Option<ChunkedBody>,
    /// First byte of the request now arriving: the header timeout counts from here.
    request_started: Option<Instant>,
    /// End of the head whose body is still arriving: the body timeout counts from here.
    body_started: Option<Instant>,
    /// `100 Continue` already sent for the request now arriving.
    continue_sent: bool,
    /// No further request will be read: after an error, `Connection: close` or during shutdown.
    closing: bool,
    /// Unread bytes may still come: closing must linger so they do not turn into a reset.
    linger: bool,
    /// Our write side is shut; we only read and discard until the peer closes or `LINGER` passes.
    lingering: bool,
    /// The peer shut down its sending side.
    peer_done: bool,
    /// Work is left that no readiness event will announce: see [`Next::Again`].
    resume: bool,
    /// When this connection must next make progress; set by the owner before parking.
    deadline: Instant,
    /// The deadline passed while parked; the next owner must close it.
    expired: bool,
    /// The poller reports writability too: set once a write found the socket full.
    watching_writes: bool,
    /// An event reported that the peer shut down its sending side: once a read leaves nothing behind, the
    /// input has ended (no further event will say so).
    hung_up: bool,
}

impl Conn {
    pub fn new(socket: TcpStream, peer: SocketAddr, timeouts: &Timeouts) -> Conn {
        Conn {
            socket,
            peer,
            input: Vec::new(),
            chunked: None,
            output: VecDeque::new(),
            request_started: None,
            body_started: None,
            continue_sent: false,
            closing: false,
            linger: false,
            lingering: false,
            peer_done: false,
            resume: false,
            deadline: Instant::now() + timeouts.header,
            expired: false,
            watching_writes: false,
            hung_up: false,
        }
    }

    pub fn socket(&self) -> &TcpStream {
        &self.socket
    }

    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// Between requests with nothing to send: safe to close on shutdown.
    pub fn is_idle(&self) -> bool {
        self.input.is_empty() && self.output.is_empty()
    }

    /// Output waits for room in the socket, and the poller does not yet report writability: the owner must
    /// ask it to, then say so with [`Conn::write_events_watched`]. A connection never written full never
    /// costs that system call.
    pub fn needs_write_events(&self) -> bool {
        !self.output.is_empty() && !self.watching_writes
    }

    /// The poller now reports this connection's writability as well as its input.
    pub fn write_events_watched(&mut self) {
        self.watching_writes = true;
    }

    /// An event reported that the peer shut down its sending side.
    pub fn note_hangup(&mut self) {
        self.hung_up = true;
    }

    #[cfg(test)]
    pub(crate) fn hung_up(&self) -> bool {
        self.hung_up
    }

    /// Marks a parked connection expired when its deadline has passed at `now` (or, when `closing_idle`,
    /// when it is idle); returns whether it newly is, and so needs a wake-up to be closed by its next owner.
    pub fn expire(&mut self, now: Instant, closing_idle: bool) -> bool {
        if self.expired || !(self.deadline <= now || (closing_idle && self.is_idle())) {
            return false;
        }
        self.expired = true;
        true
    }

    /// Serves the connection after an event and says what to do with it next.
    pub fn serve(&mut self, scratch: &mut Scratch, cx: &Context<'_>) -> Next {
        let now = cx.now;
        if self.expired {
            return self.on_expired(cx);
        }
        match self.flush() {
            Ok(true) => {}
            Ok(false) => return self.park_for_write(now, cx),
            Err(_) => return Next::Close,
        }
        if self.lingering {
            return self.discard_input();
        }
        if !self.closing {
            if let Err(err) = self.read_and_answer(scratch, cx, now) {
                log::debug!("{}: connection error: {err}", self.peer);
                return Next::Close;
            }
        }
        self.next_step(now, cx)
    }

    /// Reads once, answers every complete request, and writes the answers.
    fn read_and_answer(
        &mut self,
        scratch: &mut Scratch,
        cx: &Context<'_>,
        now: Instant,
    ) -> io::Result<()> {
        // A small partial request is copied into the worker's buffer rather than read into a buffer of its
        // own: a slow client trickling its head then holds only the bytes it sent, not a read buffer.
        let borrowed = self.input.len() < OWN_BUFFER_FROM;
        let mut buf = if borrowed {
            let mut lent = std::mem::take(&mut scratch.read);
            lent.extend_from_slice(&self.input);
            lent
        } else {
            std::mem::take(&mut self.input)
        };
        let read = if self.peer_done {
            Ok(0)
        } else {
            sys::read_append(&self.socket, &mut buf, READ_CHUNK)
        };
        let mut consumed = 0;
        let outcome = match read {
            Ok(0) => {
                self.peer_done = true;
                self.answer_and_write(&buf, &mut consumed, scratch, cx, now)
            }
            Ok(n) => {
                // A short read emptied the socket, so new bytes bring a new event; a full one may not have.
                self.resume |= n == READ_CHUNK;
                let answered = self.answer_and_write(&buf, &mut consumed, scratch, cx, now);
                // After a hang-up, a short read took the last bytes: the requests in them are answered,
                // and the input has ended (no event will come to read the end of it).
                self.peer_done |= self.hung_up && n < READ_CHUNK;
                answered
            }
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                self.answer_and_write(&buf, &mut consumed, scratch, cx, now)
            }
            Err(err) => Err(err),
        };
        self.keep_unconsumed(buf, consumed, borrowed, scratch);
        outcome
    }

    /// Answers and writes in rounds. A round stops early when output backs up (a file body, or the
    /// high-water mark); when the socket took it all, the next round answers the requests still waiting in
    /// `buf`, which no new bytes would otherwise wake.
    fn answer_and_write(
        &mut self,
        buf: &[u8],
        consumed: &mut usize,
        scratch: &mut Scratch,
        cx: &Context<'_>,
        now: Instant,
    ) -> io::Result<()> {
        loop {
            let used = self.answer_all(&buf[*consumed..], scratch, cx, now);
            *consumed += used;
            self.write_out(scratch)?;
            if used == 0 || *consumed == buf.len() || self.closing || !self.output.is_empty() {
                return Ok(());
            }
        }
    }

    /// Answers complete requests at the start of `buf`; returns how many bytes they took.
    fn answer_all(
        &mut self,
        buf: &[u8],
        scratch: &mut Scratch,
        cx: &Context<'_>,
        now: Instant,
    ) -> usize {
        let mut at = 0;
        while at < buf.len()
            && !self.closing
            && self.output.is_empty()
            && scratch.out.len() < OUTPUT_HIGH_WATER
        {
            self.request_started.get_or_insert(now);
            match self.answer_one(&buf[at..], scratch, cx) {
                Some(used) => {
                    at += used;
                    self.request_started = None;
                    self.body_started = None;
                    self.continue_sent = false;
                }
                None => break,
            }
        }
        at
    }

    /// Answers the request at the start of `buf`, if it is complete (or refuses it if it is broken);
    /// returns the bytes it took. `None`: wait for more bytes.
    fn answer_one(&mut self, buf: &[u8], scratch: &mut Scratch, cx: &Context<'_>) -> Option<usize> {
        let (head, head_len) = match parse_head(buf, &cx.limits.head) {
            Ok(Some(parsed)) => parsed,
            Ok(None) => return None,
            Err(err) => {
                self.refuse(scratch, cx, err.status(), &err.to_string());
                return None;
            }
        };
        let rest = &buf[head_len..];
        let chunked_body: Vec<u8>;
        let (body, body_len) = match head.body {
            BodyFraming::None => (&[][..], 0),
            BodyFraming::Length(len) if len > cx.limits.max_body_bytes => {
                self.refuse(scratch, cx, 413, "request body too large");
                return None;
            }
            BodyFraming::Length(len) => match rest.get(..len as usize) {
                Some(body) => (body, body.len()),
                None => return self.await_body(&head, scratch),
            },
            BodyFraming::Chunked => {
                let mut chunked = self.chunked.take().unwrap_or_default();
                match decode_chunked_resume(
                    rest,
                    cx.limits.max_body_bytes,
                    &mut chunked.progress,
                    &mut chunked.data,
                ) {
                    Ok(Some(used)) => {
                        chunked_body = chunked.data;
                        (&chunked_body[..], used)
                    }
                    Ok(None) => {
                        self.chunked = Some(chunked);
                        return self.await_body(&head, scratch);
                    }
                    Err(BodyError::TooLarge) => {
                        self.refuse(scratch, cx, 413, "request body too large");
                        return None;
                    }
                    Err(BodyError::Malformed) => {
                        self.refuse(scratch, cx, 400, "malformed chunked body");
                        return None;
                    }
                }
            }
        };
        let started = self.request_started.unwrap_or_else(Instant::now);
        let request = Request {
            head: &head,
            params: &[],
            body,
            peer: self.peer,
        };
        let (response, handler) = dispatch::dispatch(cx.router, &request);
        let keep_alive = head.keep_alive && !cx.shutting_down() && !self.peer_done;
        let sent = self.queue_response(&mut scratch.out, response, &head, keep_alive, cx.date);
        access_log(self.peer, &head, sent, started, handler);
        if !keep_alive {
            self.closing = true;
        }
        Some(head_len + body_len)
    }

    /// The head is in, its body is not: say `100 Continue` if the client waits for it, start the body clock.
    fn await_body(&mut self, head: &RequestHead<'_>, scratch: &mut Scratch) -> Option<usize> {
        if head.expect_continue && head.version == Version::Http11 && !self.continue_sent {
            scratch.out.extend_from_slice(CONTINUE);
            self.continue_sent = true;
        }
        self.body_started.get_or_insert_with(Instant::now);
        None
    }

    /// Answers a request the host refuses before any handler sees it, and closes after it.
    fn refuse(&mut self, scratch: &mut Scratch, cx: &Context<'_>, status: u16, reason: &str) {
        log::debug!("{}: refused with {status}: {reason}", self.peer);
        if status >= 500 {
            log::warn!("{}: answered {status}: {reason}", self.peer);
        }
        response::write_error(&mut scratch.out, status, reason, cx.date);
        self.closing = true;
        self.linger = true;
    }

    /// Appends the response to `out` (or queues it, for file bodies); returns the body bytes it carries.
    fn queue_response(
        &mut self,
        out: &mut Vec<u8>,
        response: Response,
        head: &RequestHead<'_>,
        keep_alive: bool,
        date: &[u8],
    ) -> (u16, u64) {
        let Response {
            status,
            headers,
            body,
        } = response;
        let framing = Framing {
            body_len: body.len(),
            keep_alive,
            http10: head.version == Version::Http10,
        };
        let dropped = response::write_head(out, status, headers.iter(), framing, date);
        if dropped > 0 {
            log::debug!(
                "{}: dropped {dropped} host-owned or invalid header field(s) from the handler",
                self.peer
            );
        }
        if head.method == "HEAD" || response::status_forbids_body(status) {
            return (status, 0);
        }
        let len = body.len();
        match body {
            Body::Empty => {}
            Body::Bytes(bytes) => out.extend_from_slice(&bytes),
            Body::Static(bytes) => out.extend_from_slice(bytes),
            Body::Plugin(bytes) => out.extend_from_slice(bytes.as_bytes()),
            Body::File { file, offset, len }
                if len <= INLINE_FILE_MAX && read_into(out, &file, offset, len) => {}
            Body::File { file, offset, len } => {
                self.output.push_back(Pending::Bytes {
                    data: std::mem::take(out),
                    sent: 0,
                });
                self.output.push_back(Pending::File {
                    file,
                    offset,
                    remaining: len,
                });
            }
        }
        (status, len)
    }

    /// Keeps the bytes after `consumed` for the next wake-up, giving a lent buffer back to the worker.
    fn keep_unconsumed(
        &mut self,
        mut buf: Vec<u8>,
        consumed: usize,
        borrowed: bool,
        scratch: &mut Scratch,
    ) {
        let rest = buf.get(consumed..).unwrap_or_default();
        if borrowed {
            self.input = rest.to_vec();
            buf.clear();
            scratch.read = buf;
        } else if rest.len() < OWN_BUFFER_FROM {
            // Don't keep a large body's buffer for the few bytes pipelined after it.
            self.input = rest.to_vec();
        } else {
            buf.drain(..consumed);
            self.input = buf;
        }
    }

    /// Writes the responses of this wake-up: in one write when nothing was pending.
    fn write_out(&mut self, scratch: &mut Scratch) -> io::Result<()> {
        if self.output.is_empty() && !scratch.out.is_empty() {
            let sent = write_nonblocking(&self.socket, &scratch.out, false)?;
            if sent < scratch.out.len() {
                self.output.push_back(Pending::Bytes {
                    data: scratch.out[sent..].to_vec(),
                    sent: 0,
                });
            }
            scratch.out.clear();
        } else if !scratch.out.is_empty() {
            self.output.push_back(Pending::Bytes {
                data: std::mem::take(&mut scratch.out),
                sent: 0,
            });
        }
        self.flush().map(drop)
    }

    /// Sends pending output until it is all gone (`true`) or the socket is full or the budget spent (`false`).
    fn flush(&mut self) -> io::Result<bool> {
        if self.output.is_empty() {
            return Ok(true);
        }
        let mut budget = SENDFILE_BUDGET;
        loop {
            let more = matches!(self.output.get(1), Some(Pending::File { .. }));
            let Some(pending) = self.output.front_mut() else {
                break;
            };
            let done = match pending {
                Pending::Bytes { data, sent } => {
                    // A head followed by its file: MSG_MORE lets the kernel put both in one segment.
                    *sent += write_nonblocking(&self.socket, &data[*sent..], more)?;
                    *sent == data.len()
                }
                Pending::File {
                    file,
                    offset,
                    remaining,
                } => {
                    while *remaining > 0 && budget > 0 {
                        match sys::sendfile(&self.socket, file, *offset, (*remaining).min(budget)) {
                            Ok(0) => return Err(io::Error::from(io::ErrorKind::UnexpectedEof)),
                            Ok(n) => {
                                *offset += n;
                                *remaining -= n;
                                budget -= n;
                            }
                            Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
                            Err(err) => return Err(err),
                        }
                    }
                    // Stopped by the budget, not by a full socket: no event will say to go on.
                    self.resume |= *remaining > 0 && budget == 0;
                    *remaining == 0
                }
            };
            if !done {
                return Ok(false);
            }
            self.output.pop_front();
        }
        Ok(true)
    }

    /// Decides, after serving, how long the connection may wait and for what.
    fn next_step(&mut self, now: Instant, cx: &Context<'_>) -> Next {
        if !self.output.is_empty() {
            return self.park_for_write(now, cx);
        }
        if self.closing {
            return self.start_closing(now);
        }
        if self.peer_done {
            return Next::Close;
        }
        self.deadline = match (self.body_started, self.request_started) {
            (Some(body), _) => body + cx.timeouts.body,
            (None, Some(head)) if !self.input.is_empty() => head + cx.timeouts.header,
            _ if cx.shutting_down() => return Next::Close,
            _ => now + cx.timeouts.idle,
        };
        if self.input.is_empty() {
            self.request_started = None;
        }
        self.park()
    }

    /// A client that does not read its response is cut off after the idle timeout without progress.
    fn park_for_write(&mut self, now: Instant, cx: &Context<'_>) -> Next {
        self.deadline = now + cx.timeouts.idle;
        self.park()
    }

    fn park(&mut self) -> Next {
        if std::mem::take(&mut self.resume) {
            Next::Again
        } else {
            Next::Park
        }
    }

    /// Shuts our side; lingers when the client may still be sending, so it reads our answer, not a reset.
    fn start_closing(&mut self, now: Instant) -> Next {
        if !self.linger || self.peer_done {
            // close() sends the same FIN a shutdown would: one system call less per closed connection.
            return Next::Close;
        }
        let _ = self.socket.shutdown(Shutdown::Write);
        self.lingering = true;
        self.input = Vec::new();
        self.deadline = now + LINGER;
        self.park()
    }

    fn discard_input(&mut self) -> Next {
        let mut sink = [0u8; 4096];
        match io::Read::read(&mut &self.socket, &mut sink) {
            Ok(0) => Next::Close,
            Ok(n) if n == sink.len() => Next::Again,
            Ok(_) => Next::Park,
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => Next::Park,
            Err(_) => Next::Close,
        }
    }

    /// The deadline passed: a request half-received gets a 408, anything else is simply closed.
    fn on_expired(&mut self, cx: &Context<'_>) -> Next {
        if !self.input.is_empty() && !self.lingering && self.output.is_empty() {
            log::debug!("{}: request timed out", self.peer);
            let mut out = Vec::new();
            response::write_error(&mut out, 408, "request timeout", cx.date);
            let _ = write_nonblocking(&self.socket, &out, false);
        }
        Next::Close
    }
}

/// Reads `len` bytes of `file` from `offset` onto the end of `out`; `false` (and `out` unchanged) if the
/// file no longer has them.
fn read_into(out: &mut Vec<u8>, file: &File, offset: u64, len: u64) -> bool {
    let start = out.len();
    out.resize(start + len as usize, 0);
    let read = std::os::unix::fs::FileExt::read_exact_at(file, &mut out[start..], offset);
    if read.is_err() {
        out.truncate(start);
    }
    read.is_ok()
}

/// Writes as much of `data` as the socket takes now; `more`: the rest of the response follows at once.
fn write_nonblocking(socket: &TcpStream, data: &[u8], more: bool) -> io::Result<usize> {
    let mut sent = 0;
    while sent < data.len() {
        match sys::send(socket, &data[sent..], more) {
            Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero)),
            Ok(n) => sent += n,
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(sent)
}

/// One line per answered request, target `access`: peer, request line, status, body bytes, time, handler.
fn access_log(
    peer: SocketAddr,
    head: &RequestHead<'_>,
    (status, bytes): (u16, u64),
    started: Instant,
    handler: &str,
) {
    if log::log_enabled!(target: "access", log::Level::Info) {
        let micros = started.elapsed().as_micros();
        let version = if head.version == Version::Http10 {
            "1.0"
        } else {
            "1.1"
        };
        log::info!(
            target: "access",
            "{peer} \"{} {} HTTP/{version}\" {status} {bytes} {micros}us {handler}",
            head.method,
            head.target.escape_debug(),
        );
    }
    if status >= 500 {
        log::warn!(
            "{peer}: {} {} answered {status} by {handler}",
            head.method,
            head.target.escape_debug()
        );
    }
}
