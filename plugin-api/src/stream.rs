//! Streaming: response bodies produced piece by piece, and request bodies read as they arrive.
//!
//! A route streams its response by returning a [`Streaming`] ([`Response::stream`]) instead of a
//! [`Response`]: plugd sends the head, then asks the body's [`Produce`] for more whenever the client can take
//! it (`Transfer-Encoding: chunked`, or `Content-Length` when you give [`Streaming::with_length`]). A slow
//! client makes plugd ask less often, so a stream never holds more than one 64 KiB buffer in plugd. A producer
//! with nothing to send yet answers [`Produced::Pending`] and keeps the [`Waker`]; whoever has the next piece
//! (a timer, another thread) calls [`Waker::wake`], and plugd asks again. While it waits, a stream holds no
//! thread: 500 open event streams cost plugd no more threads than one.
//!
//! To push pieces from a thread of your own instead, [`channel`] gives a [`Sender`] whose `send` blocks
//! while the client is behind, and the body to answer with.
//!
//! A route reads its request body as it arrives by being declared with [`streamed_body`]: its function gets
//! a [`BodyReader`] (an [`std::io::Read`]) and is called as soon as the head is in, so an upload of any size
//! passes through a small buffer. Its limit is `--max-body-bytes` unless the route raises it with
//! [`BodyReader::set_limit`].
//!
//! When the client goes away, plugd drops the producer (your `Drop` runs), [`Waker::wake`] answers `false`,
//! and a [`Sender`] fails: stop producing. A producer that panics, or answers [`Produced::Failed`], cuts the
//! response: the client sees an incomplete body, never a complete-looking one.

use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::os::fd::IntoRawFd;
use std::os::unix::fs::FileExt;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use abi_stable::std_types::{ROption, RResult, RSliceMut};
use abi_stable::type_level::downcasting::{TD_CanDowncast, TD_Opaque};

use crate::abi::{self, BodyInput_TO, BodyReadError, StreamWaker};
use crate::guard::catch;
use crate::{Error, IntoResponse, Request, Response};

/// What one call of [`Produce::produce`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Produced {
    /// Wrote this many bytes at the start of the buffer (at least 1, at most its length).
    Wrote(usize),
    /// Nothing to send yet: keep the [`Waker`] and wake it when there is.
    Pending,
    /// The body is complete.
    Done,
    /// The body cannot be completed: the response is cut (the message goes to plugd's log).
    Failed(String),
}

/// The producer of a streamed response body.
///
/// plugd calls `produce` from one of its workers, one call at a time, whenever the client can take more:
/// write up to `buf.len()` bytes at its start and say how many. Do not block for long in it (a worker waits);
/// answer [`Produced::Pending`] instead and wake the [`Waker`] later. A closure
/// `FnMut(&mut [u8], &Waker) -> Produced` is a producer.
///
/// ```
/// use plugin_api::stream::{Produce, Produced, Waker};
///
/// /// `n` bytes of `x`.
/// struct Xs { left: u64 }
///
/// impl Produce for Xs {
///     fn produce(&mut self, buf: &mut [u8], _waker: &Waker) -> Produced {
///         if self.left == 0 {
///             return Produced::Done;
///         }
///         let n = buf.len().min(self.left as usize);
///         buf[..n].fill(b'x');
///         self.left -= n as u64;
///         Produced::Wrote(n)
///     }
/// }
/// ```
pub trait Produce: Send + 'static {
    /// Writes the next bytes of the body into `buf`.
    fn produce(&mut self, buf: &mut [u8], waker: &Waker) -> Produced;
}

impl<F> Produce for F
where
    F: FnMut(&mut [u8], &Waker) -> Produced + Send + 'static,
{
    fn produce(&mut self, buf: &mut [u8], waker: &Waker) -> Produced {
        self(buf, waker)
    }
}

/// Asks plugd to call a stream's producer again. Clone it, keep it, wake it from any thread.
#[derive(Clone)]
pub struct Waker(Option<StreamWaker>);

impl Waker {
    /// A waker from the host's.
    pub(crate) fn new(waker: StreamWaker) -> Waker {
        Waker(Some(waker))
    }

    /// A waker that wakes nothing (for producers driven without plugd, as in [`crate::testing`]'s fallback).
    pub fn noop() -> Waker {
        Waker(None)
    }

    /// Asks for another call of `produce`. `false`: the stream is over (the client left); stop producing.
    pub fn wake(&self) -> bool {
        self.0.as_ref().is_some_and(|waker| waker.wake())
    }
}

/// A streamed response: a [`Response`]'s status and header fields, and the producer of its body.
///
/// ```
/// use plugin_api::stream::{Produced, Streaming};
/// use plugin_api::Response;
///
/// let mut sent = false;
/// let hello: Streaming = Response::ok_with_type("text/plain", "").stream(move |buf: &mut [u8], _: &_| {
///     if std::mem::replace(&mut sent, true) {
///         return Produced::Done;
///     }
///     buf[..5].copy_from_slice(b"hello");
///     Produced::Wrote(5)
/// });
/// assert_eq!(hello.response().status(), 200);
/// ```
pub struct Streaming {
    response: Response,
    body: BodyKind,
    length: Option<u64>,
}

/// What produces a [`Streaming`]'s body.
enum BodyKind {
    Produced(Box<dyn Produce>),
    /// A file's bytes, which plugd sends without calling the plugin ([`FileBody`]).
    File(FileBody),
}

impl Streaming {
    /// `response`'s status and fields with the body `body` produces (the response's own body is ignored).
    pub fn new(response: Response, body: impl Produce) -> Streaming {
        Streaming {
            response,
            body: BodyKind::Produced(Box::new(body)),
            length: None,
        }
    }

    /// `response`'s status and fields with a file's bytes as the body, and their length as
    /// `Content-Length`: plugd sends them with `sendfile`, and they never pass through the plugin
    /// (plugd before plugin-api 0.1.3 calls the body's producer instead, which reads the file).
    pub fn file(response: Response, body: FileBody) -> Streaming {
        let length = body.left;
        Streaming {
            response,
            body: BodyKind::File(body),
            length: Some(length),
        }
    }

    /// Declares the body's exact length: plugd sends `Content-Length` instead of chunked framing (and
    /// HTTP/1.0 clients keep their connection). A body that ends shorter or runs longer is cut.
    pub fn with_length(mut self, length: u64) -> Streaming {
        self.length = Some(length);
        self
    }

    /// The status and header fields.
    pub fn response(&self) -> &Response {
        &self.response
    }

    /// The declared length, if any.
    pub fn length(&self) -> Option<u64> {
        self.length
    }

    /// The producer (to drive it by hand in a test; [`crate::testing`] does it for you).
    pub fn into_body(self) -> Box<dyn Produce> {
        match self.body {
            BodyKind::Produced(body) => body,
            BodyKind::File(file) => Box::new(file),
        }
    }
}

impl Response {
    /// This response's status and fields, with a body `body` produces piece by piece (see [`Streaming`]).
    pub fn stream(self, body: impl Produce) -> Streaming {
        Streaming::new(self, body)
    }
}

/// A response body that is `len` bytes of an open file from `offset` (see [`Streaming::file`]).
///
/// ```
/// # mod plugin {
/// use plugin_api::stream::{FileBody, Streaming};
/// use plugin_api::{Error, Request, Response};
/// fn manifest(_state: &(), _req: &Request<'_>) -> Result<Streaming, Error> {
///     let open = |path| std::fs::File::open(path).and_then(FileBody::rest_of);
///     let body = open(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
///         .map_err(|err| Error::internal(err.to_string()))?;
///     Ok(Streaming::file(Response::ok_with_type("text/plain", ""), body))
/// }
/// plugin_api::export_plugin! { name: "files", version: "0.1.0",
///     routes: [("GET", "/manifest", manifest)], init: |_config| Ok(()) }
/// # }
/// use plugin_api::testing::{TestPlugin, TestRequest};
///
/// let plugin = TestPlugin::start(plugin::plugd_plugin).unwrap();
/// let mut stream = plugin.stream(TestRequest::get("/manifest")).unwrap();
/// assert!(stream.is_file(), "plugd takes the file and sends it itself");
/// let manifest = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml")).unwrap();
/// assert_eq!(stream.length(), Some(manifest.len() as u64));
/// assert_eq!(stream.collect().unwrap(), manifest);
/// ```
#[derive(Debug)]
pub struct FileBody {
    file: File,
    offset: u64,
    /// Bytes left to send from `offset`.
    left: u64,
}

impl FileBody {
    /// `len` bytes of `file` from `offset`. `file` should be a regular file (plugd cuts the response
    /// when it ends before `len`).
    pub fn new(file: File, offset: u64, len: u64) -> FileBody {
        FileBody {
            file,
            offset,
            left: len,
        }
    }

    /// The rest of `file`, from its current position to its end.
    pub fn rest_of(mut file: File) -> io::Result<FileBody> {
        let offset = io::Seek::stream_position(&mut file)?;
        let len = file.metadata()?.len().saturating_sub(offset);
        Ok(FileBody::new(file, offset, len))
    }

    /// The file as its descriptor and span, handed to the host.
    fn into_span(self) -> abi::FileSpan {
        abi::FileSpan {
            fd: self.file.into_raw_fd(),
            offset: self.offset,
            len: self.left,
        }
    }
}

/// Reads the file: only a host without [`abi::FILE_V1`] calls it.
impl Produce for FileBody {
    fn produce(&mut self, buf: &mut [u8], _waker: &Waker) -> Produced {
        if self.left == 0 {
            return Produced::Done;
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        match self.file.read_at(&mut buf[..want], self.offset) {
            Ok(0) => Produced::Failed(format!("the file ended {} bytes early", self.left)),
            Ok(n) => {
                self.offset += n as u64;
                self.left -= n as u64;
                Produced::Wrote(n)
            }
            Err(err) => Produced::Failed(format!("reading the file: {err}")),
        }
    }
}

/// What a route function returns, as the SDK carries it: a whole response or a streamed one.
pub enum Reply {
    Whole(Response),
    Streamed(Streaming),
}

/// What a route function may return: anything [`IntoResponse`] accepts, a [`Streaming`], a [`Reply`], or
/// `Result<Streaming, E>` / `Result<Reply, E>` with `E: Into<Error>`.
pub trait IntoReply {
    /// The reply, or the error to answer with.
    fn into_reply(self) -> Result<Reply, Error>;
}

impl<T: IntoResponse> IntoReply for T {
    fn into_reply(self) -> Result<Reply, Error> {
        self.into_response().map(Reply::Whole)
    }
}

impl IntoReply for Streaming {
    fn into_reply(self) -> Result<Reply, Error> {
        Ok(Reply::Streamed(self))
    }
}

impl<E: Into<Error>> IntoReply for Result<Streaming, E> {
    fn into_reply(self) -> Result<Reply, Error> {
        self.map(Reply::Streamed).map_err(Into::into)
    }
}

/// For a route that decides per request whether to stream (an adapter such as the WSGI plugin).
impl IntoReply for Reply {
    fn into_reply(self) -> Result<Reply, Error> {
        Ok(self)
    }
}

impl<E: Into<Error>> IntoReply for Result<Reply, E> {
    fn into_reply(self) -> Result<Reply, Error> {
        self.map_err(Into::into)
    }
}

/// Pieces pushed from any thread, as a response body: see [`channel`].
pub struct Sender {
    shared: Arc<Channel>,
    finished: bool,
}

/// Why [`Sender::send`] failed: the client went away (the body is no longer wanted).
#[derive(Debug, PartialEq, Eq)]
pub struct Closed;

/// Why [`Sender::try_send`] refused a piece.
#[derive(Debug, PartialEq, Eq)]
pub enum TrySendError {
    /// The client is behind by the channel's capacity: try later.
    Full,
    /// The client went away.
    Closed,
}

struct Channel {
    state: Mutex<ChannelState>,
    /// Signalled when the body took bytes out, or the stream ended.
    room: Condvar,
    capacity: usize,
}

#[derive(Default)]
struct ChannelState {
    pieces: VecDeque<Vec<u8>>,
    /// Bytes in `pieces` not yet taken.
    queued: usize,
    /// Bytes of the first piece already taken.
    taken: usize,
    /// The sender finished (`Some(true)`) or was dropped without finishing (`Some(false)`).
    ended: Option<bool>,
    /// The body was dropped: plugd has let the stream go.
    closed: bool,
    waker: Option<Waker>,
}

/// A bounded channel whose receiving end is a response body: `send` from any thread, answer with
/// `Response::stream(body)`. `send` blocks while `capacity` bytes wait for the client (a piece larger than
/// `capacity` waits for the channel to empty first), so memory stays bounded however slow the client.
/// [`Sender::finish`] completes the body; a sender dropped without it (a thread that panicked) cuts it.
///
/// ```
/// use plugin_api::stream::channel;
/// use plugin_api::Response;
///
/// fn report(_state: &(), _req: &plugin_api::Request<'_>) -> plugin_api::stream::Streaming {
///     let (sender, body) = channel(64 * 1024);
///     std::thread::spawn(move || {
///         for row in 0..1000 {
///             if sender.send(format!("row {row}\n")).is_err() {
///                 return; // the client left
///             }
///         }
///         sender.finish();
///     });
///     Response::ok_with_type("text/plain", "").stream(body)
/// }
/// ```
pub fn channel(capacity: usize) -> (Sender, ChannelBody) {
    let shared = Arc::new(Channel {
        state: Mutex::new(ChannelState::default()),
        room: Condvar::new(),
        capacity: capacity.max(1),
    });
    (
        Sender {
            shared: Arc::clone(&shared),
            finished: false,
        },
        ChannelBody(shared),
    )
}

impl Channel {
    fn lock(&self) -> MutexGuard<'_, ChannelState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Ends the stream from the sender's side and wakes the body.
    fn end(&self, finished: bool) {
        let waker = {
            let mut state = self.lock();
            state.ended = Some(finished);
            state.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl Sender {
    /// Queues `piece`, waiting while the channel is full. `Err(Closed)`: the client went away.
    pub fn send(&self, piece: impl Into<Vec<u8>>) -> Result<(), Closed> {
        let piece = piece.into();
        let mut state = self.shared.lock();
        while !state.closed && state.queued > 0 && state.queued + piece.len() > self.shared.capacity
        {
            state = self
                .shared
                .room
                .wait(state)
                .unwrap_or_else(|p| p.into_inner());
        }
        self.push(state, piece).map_err(|_| Closed)
    }

    /// Queues `piece` if the channel has room now.
    pub fn try_send(&self, piece: impl Into<Vec<u8>>) -> Result<(), TrySendError> {
        let piece = piece.into();
        let state = self.shared.lock();
        if !state.closed && state.queued > 0 && state.queued + piece.len() > self.shared.capacity {
            return Err(TrySendError::Full);
        }
        self.push(state, piece)
    }

    /// Whether the client went away.
    pub fn is_closed(&self) -> bool {
        self.shared.lock().closed
    }

    fn push(
        &self,
        mut state: MutexGuard<'_, ChannelState>,
        piece: Vec<u8>,
    ) -> Result<(), TrySendError> {
        if state.closed {
            return Err(TrySendError::Closed);
        }
        if piece.is_empty() {
            return Ok(());
        }
        state.queued += piece.len();
        state.pieces.push_back(piece);
        let waker = state.waker.take();
        drop(state);
        if let Some(waker) = waker {
            waker.wake();
        }
        Ok(())
    }

    /// Completes the body: the client gets what was sent, then the end of the response.
    pub fn finish(mut self) {
        self.finished = true;
        self.shared.end(true);
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        if !self.finished {
            self.shared.end(false);
        }
    }
}

/// The body end of a [`channel`]: answer with `Response::stream(body)`.
pub struct ChannelBody(Arc<Channel>);

impl Produce for ChannelBody {
    fn produce(&mut self, buf: &mut [u8], waker: &Waker) -> Produced {
        let mut state = self.0.lock();
        let mut written = 0;
        while written < buf.len() {
            let taken = state.taken;
            let Some(piece) = state.pieces.front() else {
                break;
            };
            let n = (piece.len() - taken).min(buf.len() - written);
            buf[written..written + n].copy_from_slice(&piece[taken..taken + n]);
            written += n;
            if taken + n == piece.len() {
                state.pieces.pop_front();
                state.taken = 0;
            } else {
                state.taken += n;
            }
            state.queued -= n;
        }
        if written > 0 {
            drop(state);
            self.0.room.notify_all();
            return Produced::Wrote(written);
        }
        match state.ended {
            Some(true) => Produced::Done,
            Some(false) => {
                Produced::Failed("the stream's sender was dropped without finish()".into())
            }
            None => {
                state.waker = Some(waker.clone());
                Produced::Pending
            }
        }
    }
}

impl Drop for ChannelBody {
    fn drop(&mut self) {
        self.0.lock().closed = true;
        self.0.room.notify_all();
    }
}

/// Declares a route that reads its request body as it arrives: `("POST", "/upload", streamed_body(State::upload))`
/// in [`export_plugin!`](crate::export_plugin). The function gets the body as a [`BodyReader`]:
///
/// ```
/// use std::io::Read;
/// use plugin_api::stream::{streamed_body, BodyReader};
/// use plugin_api::{Error, Request, Response};
///
/// fn upload(_state: &(), _req: &Request<'_>, body: &mut BodyReader<'_>) -> Result<Response, Error> {
///     body.set_limit(1 << 30)?; // up to 1 GiB, whatever --max-body-bytes says
///     let mut buf = [0u8; 64 * 1024];
///     let mut total = 0u64;
///     loop {
///         let n = body.read(&mut buf)?;
///         if n == 0 {
///             break;
///         }
///         total += n as u64;
///     }
///     Ok(Response::text(format!("{total} bytes\n")))
/// }
///
/// plugin_api::export_plugin! {
///     name: "uploads",
///     version: "0.1.0",
///     routes: [("POST", "/upload", streamed_body(upload))],
///     init: |_config| Ok(()),
/// }
/// # use plugin_api::testing::{TestPlugin, TestRequest};
/// let plugin = TestPlugin::start(plugd_plugin).unwrap();
/// let answer = plugin.call(TestRequest::post("/upload").body(vec![7u8; 100_000]));
/// assert_eq!(answer.body_str(), Some("100000 bytes\n"));
/// ```
pub fn streamed_body<F>(route: F) -> StreamedBody<F> {
    StreamedBody(route)
}

/// A route function that reads its body as it arrives: see [`streamed_body`].
pub struct StreamedBody<F>(pub(crate) F);

/// A request body read as it arrives (a route declared with [`streamed_body`]).
///
/// Reading fails when the client stalls, sends too slowly, breaks the chunked framing, goes away, or sends
/// more than the limit; plugd then answers with the matching status (408, 400, 413) whatever the route
/// returns, and closes the connection. A route that returns before reading everything leaves plugd to
/// discard the rest (up to a bound) or close the connection.
pub struct BodyReader<'a> {
    source: Source<'a>,
}

enum Source<'a> {
    /// The host's connection, through [`abi::STREAM_V1`].
    Host(BodyInput_TO<'a, abi_stable::sabi_types::RMut<'a, ()>>),
    /// The whole body, already read (a plugd without streamed bodies).
    Whole(&'a [u8]),
}

impl<'a> BodyReader<'a> {
    pub(crate) fn from_host(input: BodyInput_TO<'a, abi_stable::sabi_types::RMut<'a, ()>>) -> Self {
        BodyReader {
            source: Source::Host(input),
        }
    }

    pub(crate) fn from_whole(body: &'a [u8]) -> Self {
        BodyReader {
            source: Source::Whole(body),
        }
    }

    /// Sets the most bytes this body may have (before reading it; plugd's default is `--max-body-bytes`). A
    /// `Content-Length` above it fails at once with 413.
    pub fn set_limit(&mut self, limit: u64) -> Result<(), Error> {
        match &mut self.source {
            Source::Host(input) => input.set_limit(limit).into_result().map_err(read_error),
            Source::Whole(body) if body.len() as u64 > limit => {
                Err(read_error(BodyReadError::TooLarge))
            }
            Source::Whole(_) => Ok(()),
        }
    }

    /// The body's length, when the client sent `Content-Length`.
    pub fn length(&self) -> Option<u64> {
        match &self.source {
            Source::Host(input) => input.length().into_option(),
            Source::Whole(body) => Some(body.len() as u64),
        }
    }
}

impl io::Read for BodyReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.source {
            Source::Host(input) => match input.read(RSliceMut::from_mut_slice(buf)) {
                RResult::ROk(n) => Ok(n),
                RResult::RErr(err) => Err(io::Error::other(read_error(err).message().to_owned())),
            },
            Source::Whole(body) => io::Read::read(body, buf),
        }
    }
}

/// The SDK error for a failed body read (plugd answers the same status whatever the route returns).
fn read_error(err: BodyReadError) -> Error {
    Error::new(err.status(), err.reason())
}

/// A [`Produce`] as the host calls it: every call guarded, a panic reported as a failure.
pub(crate) struct Guarded(pub(crate) Box<dyn Produce>);

impl abi::BodyProducer for Guarded {
    fn produce(&mut self, buf: RSliceMut<'_, u8>, waker: &StreamWaker) -> abi::Produced {
        Guarded::produce_with(self.0.as_mut(), buf, waker)
    }
}

impl Guarded {
    /// Calls `body`, guarded, and checks its answer.
    fn produce_with(
        body: &mut dyn Produce,
        mut buf: RSliceMut<'_, u8>,
        waker: &StreamWaker,
    ) -> abi::Produced {
        let buf = buf.as_mut_slice();
        let len = buf.len();
        let waker = Waker::new(waker.clone());
        match catch(|| body.produce(buf, &waker)) {
            Ok(Produced::Wrote(n)) if n > 0 && n <= len => abi::Produced::Wrote(n),
            Ok(Produced::Wrote(n)) => abi::Produced::Failed(
                format!("produce wrote {n} bytes into a {len}-byte buffer").into(),
            ),
            Ok(Produced::Pending) => abi::Produced::Pending,
            Ok(Produced::Done) => abi::Produced::Done,
            Ok(Produced::Failed(why)) => abi::Produced::Failed(why.into()),
            Err(panic) => abi::Produced::Failed(format!("produce panicked: {panic}").into()),
        }
    }
}

/// A streamed reply in its FFI form.
pub(crate) fn into_abi(reply: Reply) -> abi::Reply {
    match reply {
        Reply::Whole(response) => abi::Reply {
            response,
            body: ROption::RNone,
            length: ROption::RNone,
        },
        Reply::Streamed(Streaming {
            response,
            body,
            length,
        }) => abi::Reply {
            response,
            body: ROption::RSome(match body {
                BodyKind::Produced(body) => {
                    abi::BodyProducer_TO::from_value(Guarded(body), TD_Opaque)
                }
                BodyKind::File(file) => file_producer(file),
            }),
            length: length.into(),
        },
    }
}

/// `file` as a producer the host holds; downcastable, so that [`take_file`] finds the file in it again.
pub(crate) fn file_producer(file: FileBody) -> abi::Producer {
    abi::BodyProducer_TO::from_value(FileProducer(Some(file)), TD_CanDowncast)
}

/// A [`FileBody`] as the host holds it: taken out by a host with [`abi::FILE_V1`], produced otherwise.
struct FileProducer(Option<FileBody>);

impl abi::BodyProducer for FileProducer {
    fn produce(&mut self, buf: RSliceMut<'_, u8>, waker: &StreamWaker) -> abi::Produced {
        match &mut self.0 {
            Some(file) => Guarded::produce_with(file, buf, waker),
            None => abi::Produced::Failed("the file was handed to the host".into()),
        }
    }
}

/// [`abi::FileModule::take_file`]: the file of a [`FileProducer`] of this library, if `body` is one.
pub(crate) extern "C" fn take_file(body: &mut abi::Producer) -> ROption<abi::FileSpan> {
    match body.obj.downcast_as_mut::<FileProducer>() {
        Ok(FileProducer(file)) => file.take().map(FileBody::into_span).into(),
        Err(_) => ROption::RNone,
    }
}

/// The [`abi::FileModule`] every plugin built with this SDK offers.
pub(crate) static FILE_MODULE: abi::FileModule = abi::FileModule { take_file };

/// The route wrapper's view of [`streamed_body`] routes, for [`crate::export`].
pub(crate) fn body_for<'a>(
    input: Option<BodyInput_TO<'a, abi_stable::sabi_types::RMut<'a, ()>>>,
    req: &'a Request<'a>,
) -> BodyReader<'a> {
    match input {
        Some(input) => BodyReader::from_host(input),
        None => BodyReader::from_whole(req.body()),
    }
}
