//! The [`STREAM_V1`] capability's types: responses produced piece by piece, and request bodies read as they
//! arrive (docs/ARCHITECTURE.md §18).
//!
//! The host drives a response body by pulling: when the client's socket has room it calls the plugin's
//! [`BodyProducer`] with a window of its own buffer to fill. A producer with nothing to send yet answers
//! [`Produced::Pending`] and keeps the [`StreamWaker`] it was given; any thread may later `wake` it, and the
//! host then calls it again. A stream that waits holds no thread, on either side.

// `#[sabi_trait]` (abi_stable 0.11) generates impls inside a `const` block, which this newer lint flags.
#![allow(non_local_definitions)]

use abi_stable::sabi_types::RMut;
use abi_stable::std_types::{RArc, RBox, ROption, RResult, RSliceMut};
use abi_stable::{sabi_trait, StableAbi};

use super::PanicMessage;
use crate::{Request, Response};

/// The per-instance capability that answers with streamed responses and reads streamed request bodies: a
/// [`StreamModule`] (plugin-api 0.1.2).
pub const STREAM_V1: &str = "stream.v1";

/// [`STREAM_V1`]: the first field of the plugin's handler object, valid as long as that object. A host that
/// finds it calls `handle_route` here instead of [`super::RoutesModule`]'s.
#[repr(C)]
#[derive(StableAbi)]
pub struct StreamModule {
    /// Whether the route at index `route` reads its body as it arrives: the host then calls it as soon as
    /// the head is in, with a [`BodyInput`].
    pub body_streamed: extern "C" fn(module: &StreamModule, route: usize) -> bool,
    /// Answers `req` with the route at index `route`. `body` is the request body to read (only for a route
    /// whose body is streamed; `RNone` otherwise, the body being in `req`). `RErr` carries the message of a
    /// caught panic.
    pub handle_route: for<'a> extern "C" fn(
        module: &StreamModule,
        route: usize,
        req: &'a Request<'a>,
        body: ROption<BodyInput_TO<'a, RMut<'a, ()>>>,
    ) -> RResult<Reply, PanicMessage>,
}

/// The per-instance capability through which the host asks whether a streamed body is a file's bytes, to
/// send it with `sendfile` instead of calling its producer: a [`FileModule`] (plugin-api 0.1.3).
pub const FILE_V1: &str = "file.v1";

/// [`FILE_V1`]: a plain function, valid for the life of the process.
#[repr(C)]
#[derive(StableAbi)]
pub struct FileModule {
    /// When `body` (a producer of this plugin's) is a file's bytes, takes the file out of it: the host owns
    /// the descriptor from then on, sends the span itself, and drops `body` without calling it. `RNone`:
    /// `body` is no file; call it as usual.
    pub take_file: extern "C" fn(body: &mut Producer) -> ROption<FileSpan>,
}

/// `len` bytes of an open regular file from `offset`: what [`FileModule::take_file`] hands over.
#[repr(C)]
#[derive(StableAbi, Clone, Copy, Debug)]
pub struct FileSpan {
    /// The file's descriptor, now the host's to close.
    pub fd: i32,
    pub offset: u64,
    pub len: u64,
}

/// A route's answer through [`STREAM_V1`]: a response, and when `body` is set, the producer of its body
/// (the response's own body is then ignored).
#[repr(C)]
#[derive(StableAbi)]
pub struct Reply {
    pub response: Response,
    pub body: ROption<Producer>,
    /// The streamed body's exact length, when the plugin knows it (sent as `Content-Length`).
    pub length: ROption<u64>,
}

/// A streamed response body as the host holds it. Dropping it tells the plugin the stream is over.
pub type Producer = BodyProducer_TO<'static, RBox<()>>;

/// A plugin's producer of one response body.
#[sabi_trait]
pub trait BodyProducer: Send {
    /// Writes the next bytes of the body at the start of `buf`. Called by the host, on one thread at a time,
    /// whenever the client can take more, and again after `waker` was woken.
    #[sabi(last_prefix_field)]
    fn produce(&mut self, buf: RSliceMut<'_, u8>, waker: &StreamWaker) -> Produced;
}

/// What one call of [`BodyProducer::produce`] did.
#[repr(u8)]
#[derive(StableAbi, Debug)]
pub enum Produced {
    /// Wrote this many bytes (at least 1, at most the buffer's length) at the start of the buffer.
    Wrote(usize),
    /// Nothing to send now: the producer wakes its waker when it has.
    Pending,
    /// The body is complete.
    Done,
    /// The body cannot be completed (the message says why): the host cuts the response, so the client sees
    /// an incomplete body.
    Failed(PanicMessage),
}

/// How a plugin asks the host to call its producer again. Cheap to clone; valid after the stream ended.
pub type StreamWaker = Wake_TO<'static, RArc<()>>;

/// The host's side of a [`StreamWaker`].
#[sabi_trait]
pub trait Wake: Send + Sync + Clone {
    /// Asks for another call of `produce`, from any thread. `false`: the stream is over (the client left or
    /// the response ended); the producer will not be called again.
    #[sabi(last_prefix_field)]
    fn wake(&self) -> bool;
}

/// A request body the plugin reads as it arrives, from the host's connection.
#[sabi_trait]
pub trait BodyInput {
    /// Reads the next bytes of the body into `buf` (de-framed); `ROk(0)` is the end of the body. Blocks until
    /// bytes arrive, the body ends, or it fails.
    fn read(&mut self, buf: RSliceMut<'_, u8>) -> RResult<usize, BodyReadError>;

    /// Raises (or lowers) the most bytes this body may have, before reading it; a `Content-Length` above it
    /// fails at once.
    fn set_limit(&mut self, limit: u64) -> RResult<(), BodyReadError>;

    /// The body's length when the client sent `Content-Length`.
    #[sabi(last_prefix_field)]
    fn length(&self) -> ROption<u64>;
}

/// Why a streamed request body could not be read; the host answers with the matching status whatever the
/// route returns, and closes the connection.
#[repr(u8)]
#[derive(StableAbi, Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyReadError {
    /// Longer than the route's limit: `413`.
    TooLarge,
    /// The client stalled, or sent too slowly: `408`.
    TimedOut,
    /// Broken chunked framing: `400`.
    Malformed,
    /// The client closed the connection before the end of the body.
    Closed,
}

impl BodyReadError {
    /// The status the host answers with.
    pub fn status(self) -> u16 {
        match self {
            BodyReadError::TooLarge => 413,
            BodyReadError::TimedOut => 408,
            BodyReadError::Malformed | BodyReadError::Closed => 400,
        }
    }

    /// A short reason, for the answer and the log.
    pub fn reason(self) -> &'static str {
        match self {
            BodyReadError::TooLarge => "request body too large",
            BodyReadError::TimedOut => "request body timed out",
            BodyReadError::Malformed => "malformed request body",
            BodyReadError::Closed => "the client closed the connection during the body",
        }
    }
}
