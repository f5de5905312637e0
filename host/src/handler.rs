//! What every route handler sees and returns: the host's in-process interface. Plugins, static files and
//! built-in routes all implement [`Handler`]; the connection code knows nothing else about them.

use std::borrow::Cow;
use std::cell::{RefCell, RefMut};
use std::fs::File;
use std::net::SocketAddr;

use plugin_api::host::{BodySource, Producer, ResponseHeaders};

use crate::http::appended::{AppendedFields, Lines};
use crate::http::headers::INLINE_HEADERS;
use crate::http::response::is_host_owned;
use crate::http::syntax::is_valid_field;
use crate::http::{RequestHead, Version};
use crate::metrics::SeriesId;

/// One request as a handler sees it: borrowed views into the connection's buffer.
pub struct Request<'a> {
    pub head: &'a RequestHead<'a>,
    /// The route's `{param}` / `{*rest}` captures, in pattern order, still percent-encoded.
    pub params: &'a [(&'a str, &'a str)],
    /// The complete, de-framed body (empty when the route reads it as it arrives, from `upload`).
    pub body: &'a [u8],
    pub peer: SocketAddr,
    /// The body still arriving, for a handler whose [`Handler::streams_body`] is true.
    pub upload: Option<&'a dyn Upload>,
}

/// A request body still arriving, lent to the handler through a shared reference (a trait object, so
/// [`Request`] stays covariant in its lifetime).
pub trait Upload {
    /// The body, to read from.
    fn source(&self) -> RefMut<'_, dyn BodySource + '_>;
}

impl<S: BodySource> Upload for RefCell<S> {
    fn source(&self) -> RefMut<'_, dyn BodySource + '_> {
        RefMut::map(self.borrow_mut(), |source| source as &mut dyn BodySource)
    }
}

impl Request<'_> {
    /// The raw (percent-encoded) value captured for `{name}`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
    }

    /// Calls `f` with the plugin ABI's view of this request (no bytes copied), with the decoded route
    /// parameters `params`: what plugin routes and filters are handed.
    #[inline]
    pub fn with_plugin_view<R>(
        &self,
        params: &[plugin_api::Param<'_>],
        f: impl FnOnce(&plugin_api::Request<'_>) -> R,
    ) -> R {
        // As many fields as the parser keeps in place are converted on the stack, not into a fresh allocation.
        let mut inline = [plugin_api::Header::new("", b""); INLINE_HEADERS];
        let spilled: Vec<plugin_api::Header<'_>>;
        let fields = self
            .head
            .headers
            .iter()
            .map(|h| plugin_api::Header::new(h.name, h.value));
        let headers: &[plugin_api::Header<'_>] = if self.head.headers.len() <= INLINE_HEADERS {
            for (slot, field) in inline.iter_mut().zip(fields) {
                *slot = field;
            }
            &inline[..self.head.headers.len()]
        } else {
            spilled = fields.collect();
            &spilled
        };
        f(&plugin_api::Request::new(plugin_api::RequestParts {
            method: self.head.method,
            target: self.head.target,
            path: self.head.path,
            query: self.head.query,
            version: match self.head.version {
                Version::Http10 => plugin_api::Version::Http10,
                Version::Http11 => plugin_api::Version::Http11,
            },
            headers,
            params,
            body: self.body,
            peer: self.peer,
        }))
    }
}

/// A response before the host frames it: the host adds `Date`, `Server`, `Content-Length` and `Connection`.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Fields,
    pub body: Body,
}

/// One header field. Names and most values are `&'static`, so building one usually allocates nothing.
pub type Field = (Cow<'static, str>, Cow<'static, str>);

/// A response's header fields, in order, every one valid on the wire (a token name, a value without CR, LF
/// or NUL: RFC 9110 §5.1, §5.5). An invalid field is dropped when it is added, so no handler can split a
/// response or forge a header line, and writing the head needs no second look.
#[derive(Debug, Default)]
pub struct Fields {
    /// The handler's fields.
    base: Repr,
    /// Fields added after the handler's were left in a plugin or after [`Fields::append`]: they come after
    /// `base`, copied once into a recycled buffer.
    appended: AppendedFields,
}

/// The handler's fields, from whichever side set them. With [`Then`], what [`Fields::iter`] returns: the
/// response writer steps through it on every request, and `Iterator::chain` over `Option`s was a call per
/// field once the compiler stopped inlining it (85 instructions per plaintext request, callgrind).
enum Base<H, P> {
    Host(H),
    Plugin(P),
}

impl<H: Iterator, P: Iterator<Item = H::Item>> Iterator for Base<H, P> {
    type Item = H::Item;

    #[inline(always)]
    fn next(&mut self) -> Option<H::Item> {
        match self {
            Base::Host(fields) => fields.next(),
            Base::Plugin(fields) => fields.next(),
        }
    }
}

/// `first`'s items, then `then`'s: `Iterator::chain` with a `next` always inlined (both sides keep
/// answering `None` once done, so nothing needs fusing).
struct Then<F, T> {
    first: F,
    then: T,
}

impl<F: Iterator, T: Iterator<Item = F::Item>> Iterator for Then<F, T> {
    type Item = F::Item;

    #[inline(always)]
    fn next(&mut self) -> Option<F::Item> {
        match self.first.next() {
            Some(field) => Some(field),
            None => self.then.next(),
        }
    }
}

#[derive(Debug)]
enum Repr {
    /// Fields a host handler set.
    Host(Vec<Field>),
    /// A plugin's fields, checked and left in the plugin's memory: written out from there, never copied.
    Plugin(ResponseHeaders),
}

impl Default for Repr {
    fn default() -> Self {
        Repr::Host(Vec::new())
    }
}

impl Fields {
    /// A plugin's fields as they are, or the first invalid one as `(name, value)`.
    pub fn from_plugin(headers: ResponseHeaders) -> Result<Fields, (String, String)> {
        let invalid = headers
            .iter()
            .find(|(name, value)| !is_valid_field(name, value))
            .map(|(name, value)| (name.to_owned(), value.to_owned()));
        match invalid {
            Some(field) => Err(field),
            None => Ok(Fields {
                base: Repr::Plugin(headers),
                appended: AppendedFields::default(),
            }),
        }
    }

    /// Appends a field; an invalid one is dropped (and logged at debug level).
    pub fn push(&mut self, field: Field) {
        if !admissible(&field) {
            return;
        }
        match &mut self.base {
            Repr::Host(fields) if self.appended.is_empty() => fields.push(field),
            _ if is_host_owned(&field.0) => {}
            _ => self.appended.push(&field.0, &field.1),
        }
    }

    /// Appends a copy of `name: value` (a filter's edit); an invalid field is dropped (and logged at debug
    /// level). Allocates nothing once the worker has answered a request with appended fields.
    pub fn append(&mut self, name: &str, value: &str) {
        if is_valid_field(name, value) && !is_host_owned(name) {
            self.appended.push(name, value);
        } else {
            log::debug!("dropped the invalid header field {name:?}: {value:?} from a filter");
        }
    }

    /// [`Fields::append`] for a field the caller has already checked with [`is_valid_field`] and
    /// [`is_host_owned`] (a filter's fixed fields, checked once when the chain is built).
    pub fn append_checked(&mut self, name: &str, value: &str) {
        debug_assert!(
            is_valid_field(name, value) && !is_host_owned(name),
            "{name:?}: {value:?}"
        );
        self.appended.push(name, value);
    }

    /// Appends prepared lines, checked as for [`Fields::append_checked`], with one copy.
    pub fn append_lines(&mut self, lines: &Lines) {
        self.appended.push_lines(lines);
    }

    /// Removes every field named `name` (ASCII case-insensitive). A plugin's fields are copied out of the
    /// plugin only when one of them goes. Inlined: a filter's `Set` searches for its name on every
    /// response, and mostly finds none.
    #[inline]
    pub fn remove(&mut self, name: &str) {
        self.appended.remove(name);
        if self.base().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
            self.remove_from_base(name);
        }
    }

    /// Removes the handler's fields named `name`, copying a plugin's out of the plugin. Cold: kept out of
    /// [`Fields::remove`], which then saves and restores fewer registers on every call.
    #[cold]
    fn remove_from_base(&mut self, name: &str) {
        let fields = match std::mem::take(&mut self.base) {
            Repr::Host(fields) => fields,
            Repr::Plugin(headers) => headers
                .iter()
                .map(|(n, v)| (n.to_owned().into(), v.to_owned().into()))
                .collect(),
        };
        self.base = Repr::Host(
            fields
                .into_iter()
                .filter(|(n, _)| !n.eq_ignore_ascii_case(name))
                .collect(),
        );
    }

    /// The first field named `name` (ASCII case-insensitive).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// The fields in order, as `(name, value)`.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        Then {
            first: self.base(),
            then: self.appended.iter(),
        }
    }

    /// The fields as the head writer takes them: the handler's, then the appended ones as head lines
    /// (which hold no field the host owns: [`Fields::append`] refuses those).
    pub fn head_parts(&self) -> (impl Iterator<Item = (&str, &str)>, &[u8]) {
        (self.base(), self.appended.wire())
    }

    /// The handler's fields, in order.
    #[inline(always)]
    fn base(&self) -> impl Iterator<Item = (&str, &str)> {
        match &self.base {
            Repr::Host(fields) => Base::Host(fields.iter().map(|(n, v)| (&**n, &**v))),
            Repr::Plugin(headers) => Base::Plugin(headers.iter()),
        }
    }

    pub fn len(&self) -> usize {
        let base = match &self.base {
            Repr::Host(fields) => fields.len(),
            Repr::Plugin(headers) => headers.len(),
        };
        base + self.appended.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Extend<Field> for Fields {
    fn extend<I: IntoIterator<Item = Field>>(&mut self, fields: I) {
        for field in fields {
            self.push(field);
        }
    }
}

impl From<Vec<Field>> for Fields {
    fn from(mut fields: Vec<Field>) -> Fields {
        fields.retain(admissible);
        Fields {
            base: Repr::Host(fields),
            appended: AppendedFields::default(),
        }
    }
}

/// Whether a handler's field may go on the wire; the ones that may not are logged.
fn admissible((name, value): &Field) -> bool {
    let valid = is_valid_field(name, value);
    if !valid {
        log::debug!("dropped the invalid header field {name:?}: {value:?} from a handler");
    }
    valid
}

/// A response body. Its length is known up front, except for a stream's.
#[derive(Debug)]
pub enum Body {
    Empty,
    Bytes(Vec<u8>),
    Static(&'static [u8]),
    /// Bytes a plugin built, left in its memory (and freed there when dropped): a large body is sent from
    /// there (`output.rs`), where converting it to a `Vec` would copy it.
    Plugin(plugin_api::Body),
    /// `len` bytes of `file` from `offset`, streamed (sendfile), never read whole into memory.
    File {
        file: File,
        offset: u64,
        len: u64,
    },
    /// Produced piece by piece by a plugin, sent as the client takes it (docs/ARCHITECTURE.md §18).
    Stream(StreamBody),
}

/// A plugin's streamed body: its producer, and its exact length when the plugin declared one.
#[derive(Debug)]
pub struct StreamBody {
    pub producer: Producer,
    pub length: Option<u64>,
}

impl Body {
    /// The body's length; for a stream, its declared length (0 if it has none: the length is unknown).
    pub fn len(&self) -> u64 {
        match self {
            Body::Empty => 0,
            Body::Bytes(b) => b.len() as u64,
            Body::Static(b) => b.len() as u64,
            Body::Plugin(b) => b.as_bytes().len() as u64,
            Body::File { len, .. } => *len,
            Body::Stream(stream) => stream.length.unwrap_or(0),
        }
    }

    /// Whether only closing the connection can end this body for an HTTP/1.0 client (`http10`): a stream
    /// of unknown length, which such a client cannot read chunked.
    pub fn ends_by_closing(&self, http10: bool) -> bool {
        http10 && matches!(self, Body::Stream(StreamBody { length: None, .. }))
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Response {
    pub fn new(status: u16, body: Body) -> Response {
        Response {
            status,
            headers: Fields::default(),
            body,
        }
    }

    /// A `text/plain; charset=utf-8` response.
    pub fn text(status: u16, text: impl Into<String>) -> Response {
        Response::new(status, Body::Bytes(text.into().into_bytes()))
            .with_header("Content-Type", "text/plain; charset=utf-8")
    }

    pub fn with_header(
        mut self,
        name: impl Into<Cow<'static, str>>,
        value: impl Into<Cow<'static, str>>,
    ) -> Response {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// A route handler. Called concurrently from every worker through `&self`; a panic becomes a 500.
pub trait Handler: Send + Sync {
    fn handle(&self, req: &Request<'_>) -> Response;

    /// Whether this handler reads its request body as it arrives (through [`Request::upload`]): it is then
    /// called as soon as the head is in, and no `--max-body-bytes` buffer is filled first.
    fn streams_body(&self) -> bool {
        false
    }

    /// Answers `req`, unless this handler was retired (its plugin replaced or removed) after the router
    /// that found it was taken: then the request must be routed again on the current router. Only handlers
    /// that can be retired override it; dispatch calls this one (`docs/ARCHITECTURE.md` §7.1).
    fn try_handle(&self, req: &Request<'_>) -> Result<Response, Retired> {
        Ok(self.handle(req))
    }

    /// The series of the plugin version this handler runs, where its answers are counted besides its
    /// route's (asked once, when the route is registered); `None` for the host's own handlers.
    fn version_series(&self) -> Option<SeriesId> {
        None
    }
}

/// A handler's version stopped serving between the route lookup and the call; nothing of it ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retired;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::response::{Framing, write_head_with_lines};

    const DATE: &[u8] = b"Thu, 26 Nov 2026 20:00:00 GMT";

    /// The head of a 200 with `fields` and a body of `body_len` bytes, on a kept-alive HTTP/1.1 connection.
    fn head_of(fields: &Fields, body_len: u64) -> String {
        let framing = Framing {
            body_len,
            keep_alive: true,
            http10: false,
        };
        let mut out = Vec::new();
        write_head_with_lines(&mut out, 200, fields.head_parts(), framing, DATE);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn fields_that_would_forge_a_header_line_never_reach_the_wire() {
        let mut fields = Fields::from(vec![
            ("X-Evil".into(), "a\r\nSet-Cookie: x=1".into()),
            ("Bad Name".into(), "v".into()),
        ]);
        fields.push(("X-Nul".into(), "a\0b".into()));
        fields.push(("X-Ok".into(), "fine".into()));
        assert_eq!(fields.len(), 1);
        let text = head_of(&fields, 0);
        assert!(
            !text.contains("Set-Cookie") && !text.contains("Bad Name") && !text.contains("X-Nul")
        );
        assert!(text.contains("X-Ok: fine\r\n"));
    }

    /// Appended fields go into the head as whole lines, unfiltered: the host's own fields are refused when
    /// they are appended, so the framing stays the host's.
    #[test]
    fn appended_fields_are_written_whole_and_never_take_the_framing() {
        let mut fields = Fields::from(vec![("Content-Type".into(), "text/plain".into())]);
        fields.append("Content-Length", "1");
        fields.append("x-request-id", "7");
        fields.append("Connection", "close");
        fields.remove("Content-Type");
        fields.push(("Transfer-Encoding".into(), "chunked".into()));
        let text = head_of(&fields, 2);
        assert!(
            text.ends_with("Server: plugd\r\nx-request-id: 7\r\nContent-Length: 2\r\n\r\n"),
            "{text}"
        );
    }
}
