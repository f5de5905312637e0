//! What every route handler sees and returns: the host's in-process interface. Plugins, static files and
//! built-in routes all implement [`Handler`]; the connection code knows nothing else about them.

use std::fs::File;
use std::net::SocketAddr;

use crate::http::RequestHead;

/// One request as a handler sees it: borrowed views into the connection's buffer.
pub struct Request<'a> {
    pub head: &'a RequestHead<'a>,
    /// The route's `{param}` / `{*rest}` captures, in pattern order, still percent-encoded.
    pub params: &'a [(&'a str, &'a str)],
    /// The complete, de-framed body.
    pub body: &'a [u8],
    pub peer: SocketAddr,
}

impl Request<'_> {
    /// The raw (percent-encoded) value captured for `{name}`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
    }
}

/// A response before the host frames it: the host adds `Date`, `Server`, `Content-Length` and `Connection`.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Body,
}

/// A response body. Its length is always known up front.
#[derive(Debug)]
pub enum Body {
    Empty,
    Bytes(Vec<u8>),
    Static(&'static [u8]),
    /// `len` bytes of `file` from `offset`, streamed (sendfile), never read whole into memory.
    File {
        file: File,
        offset: u64,
        len: u64,
    },
}

impl Body {
    pub fn len(&self) -> u64 {
        match self {
            Body::Empty => 0,
            Body::Bytes(b) => b.len() as u64,
            Body::Static(b) => b.len() as u64,
            Body::File { len, .. } => *len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Response {
    pub fn new(status: u16, body: Body) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body,
        }
    }

    /// A `text/plain; charset=utf-8` response.
    pub fn text(status: u16, text: impl Into<String>) -> Response {
        Response::new(status, Body::Bytes(text.into().into_bytes()))
            .with_header("Content-Type", "text/plain; charset=utf-8")
    }

    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Response {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// A route handler. Called concurrently from every worker through `&self`; a panic becomes a 500.
pub trait Handler: Send + Sync {
    fn handle(&self, req: &Request<'_>) -> Response;
}
