//! One connection's life between wake-ups: read once, answer every complete request in the buffer
//! (pipelining: in order, in one write), then tell the worker whether to park it again, serve it again soon
//! or close it.
//!
//! Readiness is edge-triggered (`poller.rs`): an event comes only when new bytes (or room to write) arrive.
//! So a read that fills its whole chunk, or a file whose sending budget ran out, asks to be served again
//! ([`Next::Again`]): no event would come for the bytes still waiting. A short read emptied the socket.
//!
//! A connection owns no read buffer while idle: the worker lends its own, and only the bytes of a request
//! still arriving are kept here (5,000 idle connections in 2.2 MiB; `docs/ARCHITECTURE.md` §4.5).
//!
//! The state is explicit and private: [`Reading`] says where the request now arriving stands (none yet,
//! its head, its body) or that the connection is closing (and whether it lingers), [`PeerInput`] whether
//! the peer may still send, and the output queue what waits for room in the socket. The worker and the
//! connection table drive it through methods only (`serve`, `expire`, `note_hangup`,
//! `write_events_watched`).

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crate::access_log::{self, Request as Logged};
use crate::config::{Limits, Timeouts};
use crate::dispatch;
use crate::dispatch::AnsweredBy;
use crate::handler::{Body, Request, Response, StreamBody};
use crate::http::body::{BodyError, ChunkedProgress, decode_chunked_resume};
use crate::http::response::{self, CONTINUE, Delimit, Framing};
use crate::http::{BodyFraming, RequestHead, Version, parse_head};
use crate::metrics;
use crate::output::Output;
use crate::rate_limit::{self, ClientSlot, RateLimiter};
use crate::router::{LiveRouter, RouteMatch, Router};
use crate::streaming::{OutStream, Pump, Schedule};
use crate::sys;
use crate::upload::Upload;

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
/// How long a streamed response may wait for its producer's next piece (a quiet event stream): no thread
/// waits with it, so only a bound against a producer that never wakes it again.
const PRODUCER_WAIT: Duration = Duration::from_secs(24 * 3600);

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
    /// The worker's snapshot of `live`, taken before this connection was served.
    pub router: &'a Router,
    /// The per-client request limit, if one is set: checked before any filter or handler runs.
    pub rate_limit: Option<&'a RateLimiter>,
    /// The routes serving now: a request whose plugin version was retired meanwhile is routed again there.
    pub live: &'a LiveRouter,
    pub limits: &'a Limits,
    pub timeouts: &'a Timeouts,
    /// Set when the server starts draining: answer what is in flight, with `Connection: close`.
    /// Read live, since a handler may run across the moment shutdown begins.
    pub shutdown: &'a OnceLock<Instant>,
    pub date: &'a [u8],
    /// When the worker took the connection.
    pub now: Instant,
    /// How a streamed response's producer has this connection served again.
    pub schedule: &'a Arc<dyn Schedule>,
    /// This connection's token, for [`Context::schedule`].
    pub token: u64,
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
    out: Output,
    /// What this wake-up counted, recorded once its answers are written.
    counts: metrics::Batch,
}

/// The part of a chunked request body decoded so far.
#[derive(Default)]
struct ChunkedBody {
    progress: ChunkedProgress,
    data: Vec<u8>,
}

/// Where the connection stands in reading requests: one request at a time, then, once no further request
/// will be read, closing. Each state carries what only it needs, so a body cannot be arriving for a head
/// not yet read, nor a connection linger without closing.
enum Reading {
    /// Between requests: nothing of the next one has arrived.
    Idle,
    /// A request's head is arriving, since `started` (the header timeout counts from there).
    Head { started: Instant },
    /// Its head is complete and its body arriving.
    Body(BodyArriving),
    /// No further request will be read (after an error, `Connection: close` or during shutdown): the
    /// connection closes once its output is sent. `linger`: unread bytes may still come, so closing must
    /// linger, or they would turn our answer into a reset.
    Closing { linger: bool },
    /// Our write side is shut; we only read and discard until the peer closes or [`LINGER`] passes.
    Lingering,
}

/// A request whose head is in and whose body is not yet.
struct BodyArriving {
    /// The request's first byte: its answer's time in the access log counts from here.
    started: Instant,
    /// The end of the head: the body's rate counts from here.
    since: Instant,
    /// When the last body byte arrived: its inactivity timeout counts from here.
    last_read: Instant,
    /// Raw body bytes received so far.
    received: u64,
    /// `100 Continue` was sent.
    continue_sent: bool,
    /// A chunked body decoded as far as its complete chunks go, so each byte is decoded once however many
    /// reads the body takes.
    chunked: ChunkedBody,
}

/// Whether the peer may still send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PeerInput {
    Open,
    /// An event reported that the peer shut down its sending side: once a read leaves nothing behind, the
    /// input has ended (no further event will say so).
    HungUp,
    /// The peer's input has ended: every byte it sent was read.
    Ended,
}

/// A request's body as it is handed to the handler.
enum BodyRead<'b> {
    /// The whole body (borrowed from the connection's bytes, or decoded from chunks) and the bytes its
    /// framing took after the head.
    Complete(Cow<'b, [u8]>, usize),
    /// More bytes are needed; a chunked body's progress so far, to keep until they come.
    Partial(ChunkedBody),
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
    /// A streamed body, pulled from its producer as the socket takes it.
    Stream(Box<OutStream>),
}

pub struct Conn {
    socket: TcpStream,
    peer: SocketAddr,
    /// Bytes of a request still arriving; empty (no allocation) between requests.
    input: Vec<u8>,
    reading: Reading,
    peer_input: PeerInput,
    /// Answers waiting for room in the socket, oldest first; empty (no allocation) while the socket takes
    /// every answer at once.
    output: VecDeque<Pending>,
    /// The poller reports writability too: set once a write found the socket full.
    watching_writes: bool,
    /// Work is left that no readiness event will announce: see [`Next::Again`].
    resume: bool,
    /// The output waits for a streamed response's producer, not for room in the socket.
    awaiting_producer: bool,
    /// Bytes a streamed request body read past its end: the start of the next request.
    carried: Vec<u8>,
    /// When this connection must next make progress; set when it is served, read by the deadline sweep.
    deadline: Instant,
    /// The deadline passed while parked; the next owner must close it.
    expired: bool,
    /// This connection's place in its client's count of open connections, when those are limited.
    _client_slot: Option<ClientSlot>,
}

impl Conn {
    pub fn new(socket: TcpStream, peer: SocketAddr, timeouts: &Timeouts) -> Conn {
        Conn {
            socket,
            peer,
            input: Vec::new(),
            reading: Reading::Idle,
            peer_input: PeerInput::Open,
            output: VecDeque::new(),
            watching_writes: false,
            resume: false,
            awaiting_producer: false,
            carried: Vec::new(),
            deadline: Instant::now() + timeouts.header,
            expired: false,
            _client_slot: None,
        }
    }

    /// Holds the connection's place in its client's count until it is dropped.
    pub fn hold(&mut self, slot: ClientSlot) {
        self._client_slot = Some(slot);
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
        if self.peer_input == PeerInput::Open {
            self.peer_input = PeerInput::HungUp;
        }
    }

    /// Whether an event reported that the peer shut down its sending side.
    #[cfg(test)]
    pub(crate) fn hung_up(&self) -> bool {
        self.peer_input != PeerInput::Open
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

    fn is_closing(&self) -> bool {
        matches!(self.reading, Reading::Closing { .. } | Reading::Lingering)
    }

    fn input_ended(&self) -> bool {
        self.peer_input == PeerInput::Ended
    }

    /// Serves the connection after an event and says what to do with it next.
    pub fn serve(&mut self, scratch: &mut Scratch, cx: &Context<'_>) -> Next {
        let now = cx.now;
        if self.expired {
            return self.on_expired(cx);
        }
        match self.flush() {
            Ok(true) => {}
            // A client that hangs up during a stream has left: stop its producer now.
            Ok(false) if self.streaming() && self.peer_input != PeerInput::Open => {
                return Next::Close;
            }
            Ok(false) => return self.park_for_write(now, cx),
            Err(_) => return Next::Close,
        }
        match self.reading {
            Reading::Lingering => return self.discard_input(),
            Reading::Closing { .. } => {}
            Reading::Idle | Reading::Head { .. } | Reading::Body(_) => {
                if let Err(err) = self.read_and_answer(scratch, cx, now) {
                    log::debug!("{}: connection error: {err}", self.peer);
                    return Next::Close;
                }
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
        let read = if self.input_ended() {
            Ok(0)
        } else {
            sys::read_append(&self.socket, &mut buf, READ_CHUNK)
        };
        let mut consumed = 0;
        let outcome = match read {
            Ok(0) => {
                self.peer_input = PeerInput::Ended;
                self.answer_and_write(&buf, &mut consumed, scratch, cx, now)
            }
            Ok(n) => {
                scratch.counts.read(n);
                // A short read emptied the socket, so new bytes bring a new event; a full one may not have.
                self.resume |= n == READ_CHUNK;
                let answered = self.answer_and_write(&buf, &mut consumed, scratch, cx, now);
                // After a hang-up, a short read took the last bytes: the requests in them are answered,
                // and the input has ended (no event will come to read the end of it).
                if self.peer_input == PeerInput::HungUp && n < READ_CHUNK {
                    self.peer_input = PeerInput::Ended;
                }
                answered
            }
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                self.answer_and_write(&buf, &mut consumed, scratch, cx, now)
            }
            Err(err) => Err(err),
        };
        self.keep_unconsumed(buf, consumed, borrowed, scratch);
        if !self.carried.is_empty() {
            // Read past a streamed body's end: answered next turn, with no event to announce it.
            self.input.append(&mut self.carried);
            self.resume = true;
        }
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
            if used == 0 || *consumed == buf.len() || self.is_closing() || !self.output.is_empty() {
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
            && !self.is_closing()
            && self.output.is_empty()
            && scratch.out.len() < OUTPUT_HIGH_WATER
        {
            let started = match self.reading {
                Reading::Head { started } | Reading::Body(BodyArriving { started, .. }) => started,
                _ => {
                    self.reading = Reading::Head { started: now };
                    now
                }
            };
            match self.answer_one(&buf[at..], started, scratch, cx) {
                Some(used) => at += used,
                None => break,
            }
        }
        at
    }

    /// Answers the request at the start of `buf`, which began arriving at `started`, if it is complete (or
    /// refuses it if it is broken); returns the bytes it took. `None`: wait for more bytes.
    fn answer_one(
        &mut self,
        buf: &[u8],
        started: Instant,
        scratch: &mut Scratch,
        cx: &Context<'_>,
    ) -> Option<usize> {
        let (head, head_len) = match parse_head(buf, &cx.limits.head) {
            Ok(Some(parsed)) => parsed,
            Ok(None) => return None,
            Err(err) => {
                let sent = self.refuse(scratch, cx, err.status(), err.reason());
                log_refusal(self.peer, buf, (err.status(), sent), started);
                return None;
            }
        };
        if head.body != BodyFraming::None && streams_body(cx.router, &head) {
            return self.answer_streamed_body(&head, buf, head_len, started, scratch, cx);
        }
        let (body, body_len) =
            match self.read_body(&head, &buf[head_len..], cx.limits.max_body_bytes) {
                Ok(BodyRead::Complete(body, len)) => (body, len),
                Ok(BodyRead::Partial(chunked)) => {
                    let received = (buf.len() - head_len) as u64;
                    self.await_body(&head, started, chunked, received, scratch);
                    return None;
                }
                Err(err) => {
                    self.refuse_after_head(&head, started, scratch, cx, err);
                    return None;
                }
            };
        let request = Request {
            head: &head,
            params: &[],
            body: &body,
            peer: self.peer,
            upload: None,
        };
        let answer = answer(cx, &request, started, &mut scratch.counts);
        self.send_answer(scratch, cx, &head, answer, started, true);
        Some(head_len + body_len)
    }

    /// Queues the answer to `head` and decides whether the connection carries another request.
    /// `body_read`: the request's body was read to its end (else unread bytes may follow: linger).
    fn send_answer(
        &mut self,
        scratch: &mut Scratch,
        cx: &Context<'_>,
        head: &RequestHead<'_>,
        (response, by): (Response, AnsweredBy<'_>),
        started: Instant,
        body_read: bool,
    ) {
        let http10 = head.version == Version::Http10;
        let keep_alive = body_read
            && head.keep_alive
            && !cx.shutting_down()
            && !self.input_ended()
            && !response.body.ends_by_closing(http10);
        let request_id = request_id(&response);
        let sent = self.queue_response(&mut scratch.out, response, head, keep_alive, cx);
        access_log(
            self.peer,
            head,
            sent,
            started,
            (&by.name, request_id.as_deref()),
        );
        self.reading = if keep_alive {
            Reading::Idle
        } else {
            Reading::Closing { linger: !body_read }
        };
    }

    /// Answers a request whose route reads its body as it arrives: the handler runs now and reads the body
    /// (the bytes after the head in `buf`, then the socket) while this worker waits with it. Returns the
    /// bytes of `buf` it took; bytes read from the socket past the body are carried to the next turn.
    fn answer_streamed_body(
        &mut self,
        head: &RequestHead<'_>,
        buf: &[u8],
        head_len: usize,
        started: Instant,
        scratch: &mut Scratch,
        cx: &Context<'_>,
    ) -> Option<usize> {
        // Earlier answers go out first: the handler may take long, and `100 Continue` must follow them.
        if self.write_out(scratch).is_err() {
            self.reading = Reading::Closing { linger: false };
            return None;
        }
        if !self.output.is_empty() {
            return None;
        }
        let length = match head.body {
            BodyFraming::Length(len) => Some(len),
            BodyFraming::Chunked | BodyFraming::None => None,
        };
        let expect_continue = head.expect_continue && head.version == Version::Http11;
        let upload = RefCell::new(Upload::new(
            &self.socket,
            length,
            &buf[head_len..],
            cx.limits.max_body_bytes,
            cx.timeouts.body,
            expect_continue,
        ));
        let request = Request {
            head,
            params: &[],
            body: &[],
            peer: self.peer,
            upload: Some(&upload),
        };
        let answer = answer(cx, &request, started, &mut scratch.counts);
        let upload = upload.into_inner();
        if let Some(failed) = upload.failed() {
            access_log(
                self.peer,
                head,
                (failed.status(), 0),
                started,
                (&answer.1.name, None),
            );
            self.refuse(scratch, cx, failed.status(), failed.reason());
            return Some(buf.len());
        }
        let body_read = upload.ended();
        let (used, carried) = upload.finish();
        self.send_answer(scratch, cx, head, answer, started, body_read);
        self.carried = carried.unwrap_or_default();
        Some(head_len + used)
    }

    /// The body of the request `head` (RFC 9112 §6.3), from `rest`, the bytes after the head: complete, or
    /// still arriving. A chunked body resumes from the progress kept while it arrives.
    fn read_body<'b>(
        &mut self,
        head: &RequestHead<'_>,
        rest: &'b [u8],
        max: u64,
    ) -> Result<BodyRead<'b>, BodyError> {
        match head.body {
            BodyFraming::None => Ok(BodyRead::Complete(Cow::Borrowed(&[]), 0)),
            BodyFraming::Length(len) if len > max => Err(BodyError::TooLarge),
            BodyFraming::Length(len) => Ok(match rest.get(..len as usize) {
                Some(body) => BodyRead::Complete(Cow::Borrowed(body), body.len()),
                None => BodyRead::Partial(ChunkedBody::default()),
            }),
            BodyFraming::Chunked => {
                let mut chunked = match &mut self.reading {
                    Reading::Body(arriving) => std::mem::take(&mut arriving.chunked),
                    _ => ChunkedBody::default(),
                };
                let decoded =
                    decode_chunked_resume(rest, max, &mut chunked.progress, &mut chunked.data)?;
                Ok(match decoded {
                    Some(used) => BodyRead::Complete(Cow::Owned(chunked.data), used),
                    None => BodyRead::Partial(chunked),
                })
            }
        }
    }

    /// The head is in, its body is not: start the body clock (once), say `100 Continue` if the client
    /// waits for it, and keep a chunked body's progress.
    fn await_body(
        &mut self,
        head: &RequestHead<'_>,
        started: Instant,
        chunked: ChunkedBody,
        received: u64,
        scratch: &mut Scratch,
    ) {
        let now = Instant::now();
        let (since, mut continue_sent, last_read) = match &self.reading {
            Reading::Body(arriving) if arriving.received == received => {
                (arriving.since, arriving.continue_sent, arriving.last_read)
            }
            Reading::Body(arriving) => (arriving.since, arriving.continue_sent, now),
            _ => (now, false, now),
        };
        if head.expect_continue && head.version == Version::Http11 && !continue_sent {
            scratch.out.bytes().extend_from_slice(CONTINUE);
            continue_sent = true;
        }
        self.reading = Reading::Body(BodyArriving {
            started,
            since,
            last_read,
            received,
            continue_sent,
            chunked,
        });
    }

    /// Answers a request whose body the host refuses (413 and the framing errors), through the middleware
    /// chain like any answer to a request with a head, and closes after it.
    fn refuse_after_head(
        &mut self,
        head: &RequestHead<'_>,
        started: Instant,
        scratch: &mut Scratch,
        cx: &Context<'_>,
        err: BodyError,
    ) {
        log::debug!(
            "{}: refused with {}: {}",
            self.peer,
            err.status(),
            err.reason()
        );
        let request = Request {
            head,
            params: &[],
            body: &[],
            peer: self.peer,
            upload: None,
        };
        let (response, by) = dispatch::refused(cx.router, &request, err.status(), err.reason());
        scratch
            .counts
            .answered(by.counted, head.method, response.status, started);
        // The body was not read: the answer closes the connection, which lingers for the unread bytes.
        self.send_answer(scratch, cx, head, (response, by), started, false);
    }

    /// Answers a request the host refuses before any handler sees it, and closes after it; returns the
    /// answer's body bytes.
    fn refuse(
        &mut self,
        scratch: &mut Scratch,
        cx: &Context<'_>,
        status: u16,
        reason: &str,
    ) -> u64 {
        log::debug!("{}: refused with {status}: {reason}", self.peer);
        if status >= 500 {
            log::warn!("{}: answered {status}: {reason}", self.peer);
        }
        self.reading = Reading::Closing { linger: true };
        response::write_error(scratch.out.bytes(), status, reason, cx.date)
    }

    /// Over a connection limit, before reading anything: a fast 503 instead of unbounded memory, its
    /// access-log line, then close.
    pub fn refuse_overloaded(&self, reason: &str) {
        let mut out = Vec::new();
        let sent = response::write_error(&mut out, 503, reason, &crate::http::date::now());
        log_refusal(self.peer, &[], (503, sent), Instant::now());
        let _ = send_counted(&self.socket, &out, false);
        let _ = self.socket.shutdown(Shutdown::Write);
    }

    /// Appends the response to `out` (or queues it, for file and streamed bodies); returns the body bytes
    /// it carries (a stream's declared length, or 0).
    fn queue_response(
        &mut self,
        out: &mut Output,
        response: Response,
        head: &RequestHead<'_>,
        keep_alive: bool,
        cx: &Context<'_>,
    ) -> (u16, u64) {
        let date = cx.date;
        let Response {
            status,
            headers,
            body,
        } = response;
        if let Body::Stream(stream) = body {
            return self.queue_stream(
                out,
                (status, headers.head_parts()),
                stream,
                head,
                keep_alive,
                cx,
            );
        }
        let framing = Framing {
            body_len: body.len(),
            keep_alive,
            http10: head.version == Version::Http10,
        };
        let dropped = response::write_head_with_lines(
            out.bytes(),
            status,
            headers.head_parts(),
            framing,
            date,
        );
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
        match out.push_body(body) {
            None => {}
            Some(Body::File { file, offset, len })
                if len <= INLINE_FILE_MAX && read_into(out.bytes(), &file, offset, len) => {}
            Some(Body::File { file, offset, len }) => {
                self.output.push_back(Pending::Bytes {
                    data: out.take_rest(0),
                    sent: 0,
                });
                self.output.push_back(Pending::File {
                    file,
                    offset,
                    remaining: len,
                });
            }
            // A stream: taken apart above.
            Some(_) => {}
        }
        (status, len)
    }

    /// Appends a streamed response's head to `out` and queues its body behind it: chunked for HTTP/1.1,
    /// until the connection closes for HTTP/1.0, or by `Content-Length` when the plugin declared it. A HEAD
    /// request, or a status without a body, gets the head only (the producer is dropped, never called).
    fn queue_stream<'f>(
        &mut self,
        out: &mut Output,
        (status, fields): (u16, (impl Iterator<Item = (&'f str, &'f str)>, &'f [u8])),
        stream: StreamBody,
        head: &RequestHead<'_>,
        keep_alive: bool,
        cx: &Context<'_>,
    ) -> (u16, u64) {
        let http10 = head.version == Version::Http10;
        let delimit = match (stream.length, http10) {
            (Some(len), _) => Delimit::Length(len),
            (None, false) => Delimit::Chunked,
            (None, true) => Delimit::Close,
        };
        let framing = (delimit, keep_alive, http10);
        response::write_stream_head(out.bytes(), status, fields, framing, cx.date);
        if head.method == "HEAD" || response::status_forbids_body(status) {
            return (status, 0);
        }
        self.output.push_back(Pending::Bytes {
            data: out.take_rest(0),
            sent: 0,
        });
        let body = OutStream::new(stream.producer, delimit, cx.schedule, cx.token);
        self.output.push_back(Pending::Stream(Box::new(body)));
        (status, stream.length.unwrap_or(0))
    }

    /// Whether a streamed response is on its way out.
    fn streaming(&self) -> bool {
        self.output.iter().any(|p| matches!(p, Pending::Stream(_)))
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

    /// Writes the responses of this wake-up (see [`Conn::send_or_queue`]), then records what it counted.
    fn write_out(&mut self, scratch: &mut Scratch) -> io::Result<()> {
        let written = self.send_or_queue(scratch);
        scratch.counts.publish();
        written
    }

    /// Sends the responses of this wake-up: in one write when nothing was pending, else behind what is.
    /// Only what the socket does not take is copied, to wait in the queue. The worker's buffer is left
    /// empty, even after an error: the next connection it serves must not send this one's bytes.
    fn send_or_queue(&mut self, scratch: &mut Scratch) -> io::Result<()> {
        if !scratch.out.is_empty() {
            let sent = if self.output.is_empty() {
                scratch.out.write_to(&self.socket)
            } else {
                Ok(0)
            };
            let sent = sent.inspect_err(|_| scratch.out.clear())?;
            scratch.counts.wrote(sent);
            if sent < scratch.out.len() {
                self.output.push_back(Pending::Bytes {
                    data: scratch.out.take_rest(sent),
                    sent: 0,
                });
            }
            scratch.out.clear();
        }
        self.flush().map(drop)
    }

    /// Sends pending output until it is all gone (`true`) or the socket is full or the budget spent (`false`).
    fn flush(&mut self) -> io::Result<bool> {
        if self.output.is_empty() {
            return Ok(true);
        }
        let mut budget = SENDFILE_BUDGET;
        self.awaiting_producer = false;
        loop {
            let more = matches!(self.output.get(1), Some(Pending::File { .. }));
            let Some(pending) = self.output.front_mut() else {
                break;
            };
            let done = match pending {
                Pending::Bytes { data, sent } => {
                    // A head followed by its file: MSG_MORE lets the kernel put both in one segment.
                    *sent += send_counted(&self.socket, &data[*sent..], more)?;
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
                                metrics::count_bytes_out(n as usize);
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
                Pending::Stream(stream) => match stream.pump(&self.socket, &mut budget) {
                    Ok(Pump::Complete) => true,
                    Ok(Pump::SocketFull) => false,
                    Ok(Pump::WaitingForProducer) => {
                        self.awaiting_producer = true;
                        false
                    }
                    Ok(Pump::BudgetSpent) => {
                        self.resume = true;
                        false
                    }
                    Err(err) => {
                        // Cut: the client sees an incomplete body (no last chunk, or short of its length).
                        if err.raw_os_error().is_none() {
                            log::warn!("{}: streamed response cut: {err}", self.peer);
                        }
                        return Err(err);
                    }
                },
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
        if let Reading::Closing { linger } = self.reading {
            return self.start_closing(linger, now);
        }
        if self.input_ended() {
            return Next::Close;
        }
        self.deadline = match &self.reading {
            Reading::Body(arriving) => {
                cx.timeouts
                    .body
                    .deadline(arriving.since, arriving.last_read, arriving.received)
            }
            Reading::Head { started } if !self.input.is_empty() => *started + cx.timeouts.header,
            _ if cx.shutting_down() => return Next::Close,
            _ => now + cx.timeouts.idle,
        };
        if self.input.is_empty() {
            self.reading = Reading::Idle;
        }
        self.park()
    }

    /// A client that does not read its response is cut off after the send timeout without progress; a
    /// stream waiting for its producer waits as long as the producer needs.
    fn park_for_write(&mut self, now: Instant, cx: &Context<'_>) -> Next {
        self.deadline = now
            + if self.awaiting_producer {
                PRODUCER_WAIT
            } else {
                cx.timeouts.send
            };
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
    fn start_closing(&mut self, linger: bool, now: Instant) -> Next {
        if !linger || self.input_ended() {
            // close() sends the same FIN a shutdown would: one system call less per closed connection.
            return Next::Close;
        }
        let _ = self.socket.shutdown(Shutdown::Write);
        self.reading = Reading::Lingering;
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

    /// The deadline passed: a request half-received gets a 408 (and its access-log line), anything else is
    /// simply closed.
    fn on_expired(&mut self, cx: &Context<'_>) -> Next {
        let started = match self.reading {
            Reading::Head { started } | Reading::Body(BodyArriving { started, .. }) => started,
            _ => return Next::Close,
        };
        if !self.input.is_empty() && self.output.is_empty() {
            log::debug!("{}: request timed out", self.peer);
            let mut out = Vec::new();
            let sent = response::write_error(&mut out, 408, "request timeout", cx.date);
            log_refusal(self.peer, &self.input, (408, sent), started);
            let _ = send_counted(&self.socket, &out, false);
        }
        Next::Close
    }
}

/// Whether the route `head` goes to reads its body as it arrives.
fn streams_body(router: &Router, head: &RequestHead<'_>) -> bool {
    matches!(router.lookup(head.method, head.path),
        RouteMatch::Found { route, .. } if route.handler.streams_body())
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

/// The answer to `request`: the rate limit's, or the middleware chain's around the route's handler; noted
/// in `counts`. Without a rate limit, no more than a branch on the way to the chain. Inlined, so the
/// answer is built where it is used rather than copied out of one more frame.
#[inline(always)]
fn answer<'r>(
    cx: &Context<'r>,
    request: &Request<'_>,
    started: Instant,
    counts: &mut metrics::Batch,
) -> (Response, AnsweredBy<'r>) {
    let (response, by) = match cx.rate_limit {
        None => dispatch::dispatch(cx.router, cx.live, request),
        Some(limiter) => rate_limit::admit(limiter, request, cx.now, || {
            dispatch::dispatch(cx.router, cx.live, request)
        }),
    };
    counts.answered(by.counted, request.head.method, response.status, started);
    (response, by)
}

/// [`sys::send_available`], with the bytes sent counted in the metrics.
fn send_counted(socket: &TcpStream, data: &[u8], more: bool) -> io::Result<usize> {
    let sent = sys::send_available(socket, data, more)?;
    metrics::count_bytes_out(sent);
    Ok(sent)
}

/// The response's request id for the access log, kept before the response is written: a copy only when a
/// filter set one and the access log is on.
fn request_id(response: &Response) -> Option<String> {
    if !access_log::enabled() {
        return None;
    }
    response
        .headers
        .get(access_log::REQUEST_ID_FIELD)
        .map(str::to_owned)
}

/// One access-log line per answered request, and a warning for every 5xx.
#[inline]
fn access_log(
    peer: SocketAddr,
    head: &RequestHead<'_>,
    (status, bytes): (u16, u64),
    started: Instant,
    (handler, request_id): (&str, Option<&str>),
) {
    let request = Logged::Parsed(head);
    access_log::record(
        peer,
        request,
        (status, bytes),
        started,
        (handler, request_id),
    );
    // A 503 answers overload, and whoever refuses logs it at most once a second (the plugin bulkheads): a
    // line per refusal would itself load the overloaded server (6,900 lines a second with 1,000 clients).
    if status >= 500 && status != 503 {
        log::warn!(
            "{peer}: {} {} answered {status} by {handler}",
            head.method,
            head.target.escape_debug()
        );
    }
}

/// Most bytes of a refused request's first line its access-log line shows: a line per refusal stays
/// bounded however long the line sent (nginx, too, shows a refused request line cut short).
const REFUSED_LINE_MAX: usize = 2048;

/// A request answered before its head could be read (`received`: its bytes so far; 400, 414, 431, 408, or a
/// connection over the limit): its access-log line, with the first line as it came, and its count in the
/// metrics.
fn log_refusal(peer: SocketAddr, received: &[u8], (status, bytes): (u16, u64), started: Instant) {
    let line = first_line(received);
    let logged = Logged::Refused(line);
    access_log::record(
        peer,
        logged,
        (status, bytes),
        started,
        (dispatch::BUILTIN, None),
    );
    metrics::record_refusal(line, status, started);
}

/// The first line of `received` (leading empty lines skipped, as the parser skips them; RFC 9112 §2.2), as
/// far as it came, at most [`REFUSED_LINE_MAX`] bytes.
fn first_line(received: &[u8]) -> &[u8] {
    let start = received
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(received.len());
    let line = &received[start..];
    let line = &line[..line.len().min(REFUSED_LINE_MAX)];
    let end = line
        .iter()
        .position(|&b| b == b'\r' || b == b'\n')
        .unwrap_or(line.len());
    &line[..end]
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::os::fd::OwnedFd;
    use std::os::unix::net::UnixStream;
    use std::sync::Arc;

    use super::*;
    use crate::config::Config;
    use crate::handler::Handler;
    use crate::router::{LiveRouter, RouterBuilder};

    /// Answers with the request's body; `GET /big` with 4 MiB, more than a socket buffer holds.
    struct Echo;

    impl Handler for Echo {
        fn handle(&self, req: &Request<'_>) -> Response {
            let body = if req.head.path == "/big" {
                vec![b'x'; 4 << 20]
            } else {
                req.body.to_vec()
            };
            Response::new(200, Body::Bytes(body))
        }
    }

    /// Streams in these tests are never woken from outside.
    struct NoSchedule;

    impl Schedule for NoSchedule {
        fn schedule(&self, _token: u64) {}
    }

    /// A connection whose client end the test holds. A Unix socket pair stands in for TCP: every call the
    /// connection makes (recv, send, sendfile, shutdown) works on it alike, and no network is involved.
    struct Pair {
        conn: Conn,
        client: UnixStream,
        routes: LiveRouter,
        config: Config,
        shutdown: OnceLock<Instant>,
        scratch: Scratch,
        schedule: Arc<dyn Schedule>,
    }

    impl Pair {
        fn new() -> Pair {
            let (server, client) = UnixStream::pair().unwrap();
            server.set_nonblocking(true).unwrap();
            client.set_nonblocking(true).unwrap();
            let config = Config::for_tests();
            let socket = TcpStream::from(OwnedFd::from(server));
            let conn = Conn::new(socket, "192.0.2.1:4000".parse().unwrap(), &config.timeouts);
            let mut routes = RouterBuilder::new();
            routes
                .add_all(
                    &[("GET", "/"), ("GET", "/big"), ("POST", "/")],
                    "echo",
                    Arc::new(Echo),
                )
                .unwrap();
            Pair {
                conn,
                client,
                routes: LiveRouter::new(routes.build()),
                config,
                shutdown: OnceLock::new(),
                scratch: Scratch::default(),
                schedule: Arc::new(NoSchedule),
            }
        }

        /// The client sends `bytes`, then the connection is served as if taken at `now`.
        fn send_and_serve(&mut self, bytes: &[u8], now: Instant) -> Next {
            self.client.write_all(bytes).unwrap();
            self.serve(now)
        }

        fn serve(&mut self, now: Instant) -> Next {
            let date = *b"Thu, 26 Nov 2026 20:00:00 GMT";
            let router = self.routes.current();
            let cx = Context {
                router: &router,
                live: &self.routes,
                rate_limit: None,
                limits: &self.config.limits,
                timeouts: &self.config.timeouts,
                shutdown: &self.shutdown,
                date: &date,
                now,
                schedule: &self.schedule,
                token: 1,
            };
            self.conn.serve(&mut self.scratch, &cx)
        }

        /// What the server sent since the last call, and whether it shut its sending side after it.
        fn received(&mut self) -> (String, bool) {
            let mut out = Vec::new();
            let mut chunk = [0u8; 64 * 1024];
            loop {
                match self.client.read(&mut chunk) {
                    Ok(0) => return (String::from_utf8(out).unwrap(), true),
                    Ok(n) => out.extend_from_slice(&chunk[..n]),
                    Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                        return (String::from_utf8(out).unwrap(), false);
                    }
                    Err(err) => panic!("{err}"),
                }
            }
        }

        fn text(&mut self) -> String {
            self.received().0
        }
    }

    const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n";

    #[test]
    fn an_answered_request_leaves_the_connection_idle_on_the_idle_timeout() {
        let mut pair = Pair::new();
        let now = Instant::now();
        assert_eq!(pair.send_and_serve(GET, now), Next::Park);
        assert!(pair.text().starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(matches!(pair.conn.reading, Reading::Idle));
        assert!(pair.conn.is_idle());
        assert_eq!(pair.conn.deadline, now + pair.config.timeouts.idle);
    }

    #[test]
    fn a_head_in_pieces_keeps_its_first_byte_for_the_header_timeout() {
        let mut pair = Pair::new();
        let first = Instant::now();
        assert_eq!(pair.send_and_serve(&GET[..20], first), Next::Park);
        assert!(matches!(pair.conn.reading, Reading::Head { started } if started == first));
        assert_eq!(pair.conn.deadline, first + pair.config.timeouts.header);
        assert_eq!(pair.text(), "");
        let later = first + Duration::from_secs(1);
        assert_eq!(pair.send_and_serve(&GET[20..21], later), Next::Park);
        assert_eq!(
            pair.conn.deadline,
            first + pair.config.timeouts.header,
            "more bytes of the same head do not move its deadline"
        );
        pair.send_and_serve(&GET[21..], later);
        assert!(pair.text().starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(matches!(pair.conn.reading, Reading::Idle));
    }

    #[test]
    fn a_body_in_pieces_runs_on_the_body_clock_and_gets_one_100_continue() {
        let mut pair = Pair::new();
        let head =
            b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\n";
        let now = Instant::now();
        pair.send_and_serve(head, now);
        assert_eq!(pair.text(), "HTTP/1.1 100 Continue\r\n\r\n");
        let Reading::Body(arriving) = &pair.conn.reading else {
            panic!("the body is arriving");
        };
        assert_eq!(arriving.started, now);
        assert_eq!(
            pair.conn.deadline,
            arriving.since + pair.config.timeouts.body.inactivity,
            "nothing of the body yet: its grace period"
        );
        pair.send_and_serve(b"01234", now);
        assert_eq!(pair.text(), "", "100 Continue is sent once");
        pair.send_and_serve(b"56789", now);
        let text = pair.text();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n") && text.ends_with("\r\n\r\n0123456789"));
        assert!(matches!(pair.conn.reading, Reading::Idle));
    }

    #[test]
    fn a_chunked_body_over_several_reads_is_decoded_whole() {
        let mut pair = Pair::new();
        let now = Instant::now();
        pair.send_and_serve(
            b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
            now,
        );
        let Reading::Body(arriving) = &pair.conn.reading else {
            panic!("the body is arriving");
        };
        assert_eq!(
            arriving.chunked.data, b"hello",
            "complete chunks are decoded at once"
        );
        pair.send_and_serve(b"6\r\n world\r\n0\r\n\r\n", now);
        assert!(pair.text().ends_with("\r\n\r\nhello world"));
        assert!(matches!(pair.conn.reading, Reading::Idle));
    }

    #[test]
    fn pipelined_requests_are_answered_in_order_in_one_turn() {
        let mut pair = Pair::new();
        let two = [
            GET,
            b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhi",
        ]
        .concat();
        pair.send_and_serve(&two, Instant::now());
        let text = pair.text();
        assert_eq!(text.matches("HTTP/1.1 200 OK").count(), 2);
        assert!(text.ends_with("\r\n\r\nhi"));
    }

    #[test]
    fn a_refused_head_is_answered_then_the_connection_lingers_until_the_peer_closes() {
        let mut pair = Pair::new();
        let now = Instant::now();
        assert_eq!(
            pair.send_and_serve(b"GET / HTTP/1.1\r\n\r\n", now),
            Next::Park
        );
        let (text, shut) = pair.received();
        assert!(text.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{text}");
        assert!(text.contains("Connection: close\r\n") && text.ends_with("missing Host header\n"));
        assert!(shut, "our sending side is shut");
        assert!(matches!(pair.conn.reading, Reading::Lingering));
        assert_eq!(pair.conn.deadline, now + LINGER);
        assert_eq!(
            pair.send_and_serve(b"more bytes", now),
            Next::Park,
            "discarded"
        );
        pair.client.shutdown(Shutdown::Write).unwrap();
        assert_eq!(pair.serve(now), Next::Close);
    }

    #[test]
    fn body_errors_are_answered_with_their_own_status() {
        let cases: [(&[u8], BodyError); 2] = [
            (
                b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999\r\n\r\n",
                BodyError::TooLarge,
            ),
            (
                b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                BodyError::Malformed,
            ),
        ];
        for (request, error) in cases {
            let mut pair = Pair::new();
            pair.send_and_serve(request, Instant::now());
            let text = pair.text();
            let status_line = format!("HTTP/1.1 {} ", error.status());
            assert!(text.starts_with(&status_line), "{text}");
            assert!(text.ends_with(&format!("{}\n", error.reason())), "{text}");
        }
    }

    #[test]
    fn connection_close_closes_after_the_answer() {
        let mut pair = Pair::new();
        let next = pair.send_and_serve(
            b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
            Instant::now(),
        );
        assert_eq!(next, Next::Close);
        assert!(pair.text().contains("Connection: close\r\n"));
    }

    #[test]
    fn during_shutdown_the_answer_closes_the_connection() {
        let mut pair = Pair::new();
        pair.shutdown.set(Instant::now()).unwrap();
        assert_eq!(pair.send_and_serve(GET, Instant::now()), Next::Close);
        assert!(pair.text().contains("Connection: close\r\n"));
    }

    #[test]
    fn after_a_hang_up_the_last_request_is_answered_and_the_connection_closes() {
        let mut pair = Pair::new();
        pair.client.write_all(GET).unwrap();
        pair.client.shutdown(Shutdown::Write).unwrap();
        pair.conn.note_hangup();
        assert_eq!(pair.serve(Instant::now()), Next::Close);
        assert!(pair.text().starts_with("HTTP/1.1 200 OK\r\n"));
    }

    #[test]
    fn a_deadline_expires_once_and_a_half_request_then_gets_408() {
        let mut pair = Pair::new();
        let now = Instant::now();
        pair.send_and_serve(&GET[..10], now);
        let deadline = now + pair.config.timeouts.header;
        assert!(!pair.conn.expire(deadline - Duration::from_millis(1), false));
        assert!(pair.conn.expire(deadline, false));
        assert!(!pair.conn.expire(deadline, false), "one wake-up is enough");
        assert_eq!(pair.serve(deadline), Next::Close);
        assert!(pair.text().starts_with("HTTP/1.1 408 Request Timeout\r\n"));
    }

    #[test]
    fn shutdown_expires_idle_connections_only() {
        let mut pair = Pair::new();
        let now = Instant::now();
        pair.send_and_serve(&GET[..10], now);
        assert!(!pair.conn.expire(now, true), "a request is arriving");
        pair.send_and_serve(&GET[10..], now);
        assert!(pair.conn.expire(now, true));
        assert_eq!(pair.serve(now), Next::Close);
    }

    #[test]
    fn a_failed_write_leaves_nothing_for_the_next_connection_of_the_worker() {
        let mut gone = Pair::new();
        gone.client.write_all(GET).unwrap();
        // The client leaves before its answer: writing it fails (EPIPE).
        gone.client.shutdown(Shutdown::Both).unwrap();
        assert_eq!(gone.serve(Instant::now()), Next::Close);
        let mut next = Pair::new();
        next.scratch = std::mem::take(&mut gone.scratch);
        next.send_and_serve(GET, Instant::now());
        let text = next.text();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        assert_eq!(text.matches("HTTP/1.1").count(), 1, "{text}");
    }

    #[test]
    fn output_the_socket_cannot_take_waits_for_write_events() {
        let mut pair = Pair::new();
        let now = Instant::now();
        assert_eq!(
            pair.send_and_serve(b"GET /big HTTP/1.1\r\nHost: h\r\n\r\n", now),
            Next::Park
        );
        assert!(pair.conn.needs_write_events());
        pair.conn.write_events_watched();
        assert!(!pair.conn.needs_write_events(), "asked once");
        assert_eq!(pair.conn.deadline, now + pair.config.timeouts.send);
        let mut total = pair.text().len();
        for _ in 0..10_000 {
            if pair.conn.output.is_empty() {
                break;
            }
            pair.serve(now);
            total += pair.text().len();
        }
        assert!(total > 4 << 20);
        assert!(matches!(pair.conn.reading, Reading::Idle));
    }
}
