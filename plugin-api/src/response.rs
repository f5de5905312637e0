//! The response a handler returns. The host adds `Date`, `Server`, `Content-Length` and `Connection`.

use std::borrow::Cow;

use abi_stable::std_types::{RCowStr, RSlice, RVec};
use abi_stable::StableAbi;

/// A response body. `&'static` data is passed without copying: a plugin library is never unloaded.
#[repr(u8)]
#[derive(StableAbi, Debug)]
pub enum Body {
    /// No body (`Content-Length: 0`).
    Empty,
    /// Bytes compiled into the plugin, e.g. an `include_str!` page.
    Static(RSlice<'static, u8>),
    /// Bytes built for this response.
    Owned(RVec<u8>),
}

impl Body {
    /// The body's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Body::Empty => &[],
            Body::Static(bytes) => bytes.as_slice(),
            Body::Owned(bytes) => bytes.as_slice(),
        }
    }
}

impl From<&'static str> for Body {
    fn from(text: &'static str) -> Body {
        Body::Static(text.as_bytes().into())
    }
}

impl From<&'static [u8]> for Body {
    fn from(bytes: &'static [u8]) -> Body {
        Body::Static(bytes.into())
    }
}

impl From<String> for Body {
    fn from(text: String) -> Body {
        Body::Owned(text.into_bytes().into())
    }
}

impl From<Vec<u8>> for Body {
    fn from(bytes: Vec<u8>) -> Body {
        Body::Owned(bytes.into())
    }
}

impl From<Cow<'static, str>> for Body {
    fn from(text: Cow<'static, str>) -> Body {
        match text {
            Cow::Borrowed(text) => text.into(),
            Cow::Owned(text) => text.into(),
        }
    }
}

/// One response header field. Names and values are `Cow`s so constant headers cost no allocation.
#[repr(C)]
#[derive(StableAbi, Debug)]
struct ResponseHeader {
    name: RCowStr<'static>,
    value: RCowStr<'static>,
}

/// Header fields a response is given room for when it gets its first one.
const FEW_HEADERS: usize = 4;

/// An HTTP response: status, header fields and a body.
///
/// ```
/// use plugin_api::Response;
///
/// let page = Response::html("<h1>Hi</h1>");
/// assert_eq!(page.status(), 200);
/// assert_eq!(page.header("content-type"), Some("text/html; charset=utf-8"));
///
/// let gone = Response::text("moved").with_status(410).with_header("Cache-Control", "no-store");
/// assert_eq!((gone.status(), gone.body()), (410, &b"moved"[..]));
/// ```
#[repr(C)]
#[derive(StableAbi, Debug)]
pub struct Response {
    status: u16,
    headers: RVec<ResponseHeader>,
    body: Body,
}

impl Response {
    /// A response with `status`, no header fields and no body.
    pub fn empty(status: u16) -> Response {
        Response {
            status,
            headers: RVec::new(),
            body: Body::Empty,
        }
    }

    /// `200 OK` with `body` as `text/plain; charset=utf-8`.
    pub fn text(body: impl Into<Body>) -> Response {
        Response::ok_with_type("text/plain; charset=utf-8", body)
    }

    /// `200 OK` with `body` as `text/html; charset=utf-8`.
    pub fn html(body: impl Into<Body>) -> Response {
        Response::ok_with_type("text/html; charset=utf-8", body)
    }

    /// `200 OK` with `body`, a JSON document the plugin built, as `application/json`.
    pub fn json(body: impl Into<Body>) -> Response {
        Response::ok_with_type("application/json", body)
    }

    /// `200 OK` with `body` and the given `Content-Type`.
    pub fn ok_with_type(
        content_type: impl Into<Cow<'static, str>>,
        body: impl Into<Body>,
    ) -> Response {
        Response::empty(200)
            .with_header("Content-Type", content_type)
            .with_body(body)
    }

    /// `303 See Other` to `location`: the client follows with a GET (the usual answer to a form POST).
    pub fn see_other(location: impl Into<Cow<'static, str>>) -> Response {
        Response::redirect(303, location)
    }

    /// A redirect with `status` (301, 302, 303, 307 or 308) to `location`, with an empty body.
    pub fn redirect(status: u16, location: impl Into<Cow<'static, str>>) -> Response {
        Response::empty(status).with_header("Location", location)
    }

    /// This response with its status replaced.
    pub fn with_status(mut self, status: u16) -> Response {
        self.status = status;
        self
    }

    /// This response with one more header field (repeated names are kept, in order).
    ///
    /// `Date`, `Server`, `Content-Length`, `Transfer-Encoding` and `Connection` belong to the host, which drops
    /// them from plugin responses.
    pub fn with_header(
        mut self,
        name: impl Into<Cow<'static, str>>,
        value: impl Into<Cow<'static, str>>,
    ) -> Response {
        if self.headers.capacity() == 0 {
            // One allocation sized for the usual few fields, instead of growing through the vtable.
            self.headers = RVec::with_capacity(FEW_HEADERS);
        }
        self.headers.push(ResponseHeader {
            name: name.into().into(),
            value: value.into().into(),
        });
        self
    }

    /// This response with its body replaced.
    pub fn with_body(mut self, body: impl Into<Body>) -> Response {
        self.body = body.into();
        self
    }

    /// The status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The header fields in order, as `(name, value)`.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> {
        self.headers
            .iter()
            .map(|h| (h.name.as_str(), h.value.as_str()))
    }

    /// The first header field named `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// The body's bytes.
    pub fn body(&self) -> &[u8] {
        self.body.as_bytes()
    }

    /// The body as text, if it is valid UTF-8 (handy in tests).
    pub fn body_str(&self) -> Option<&str> {
        std::str::from_utf8(self.body()).ok()
    }

    /// Splits the response into its status, header fields and body (for hosts). Nothing is copied: the
    /// fields stay where the plugin put them.
    pub fn into_parts(self) -> (u16, ResponseHeaders, Body) {
        (self.status, ResponseHeaders(self.headers), self.body)
    }
}

/// A response's header fields as a host receives them, still in the memory of the plugin that built them
/// (dropping them frees it there).
#[derive(Debug)]
pub struct ResponseHeaders(RVec<ResponseHeader>);

impl ResponseHeaders {
    /// The fields in order, as `(name, value)`.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|h| (h.name.as_str(), h.value.as_str()))
    }

    /// How many fields there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}
