//! What every route handler sees and returns: the host's in-process interface. Plugins, static files and
//! built-in routes all implement [`Handler`]; the connection code knows nothing else about them.

use std::borrow::Cow;
use std::fs::File;
use std::net::SocketAddr;

use plugin_api::host::ResponseHeaders;

use crate::http::RequestHead;
use crate::http::syntax::is_valid_field;

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
    pub headers: Fields,
    pub body: Body,
}

/// One header field. Names and most values are `&'static`, so building one usually allocates nothing.
pub type Field = (Cow<'static, str>, Cow<'static, str>);

/// A response's header fields, in order, every one valid on the wire (a token name, a value without CR, LF
/// or NUL: RFC 9110 §5.1, §5.5). An invalid field is dropped when it is added, so no handler can split a
/// response or forge a header line, and writing the head needs no second look.
#[derive(Debug, Default)]
pub struct Fields(Repr);

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
            None => Ok(Fields(Repr::Plugin(headers))),
        }
    }

    /// Appends a field; an invalid one is dropped (and logged at debug level).
    pub fn push(&mut self, field: Field) {
        if !admissible(&field) {
            return;
        }
        match &mut self.0 {
            Repr::Host(fields) => fields.push(field),
            Repr::Plugin(headers) => {
                let mut fields: Vec<Field> = headers
                    .iter()
                    .map(|(n, v)| (n.to_owned().into(), v.to_owned().into()))
                    .collect();
                fields.push(field);
                self.0 = Repr::Host(fields);
            }
        }
    }

    /// The fields in order, as `(name, value)`.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        let (host, plugin) = match &self.0 {
            Repr::Host(fields) => (Some(fields.iter().map(|(n, v)| (&**n, &**v))), None),
            Repr::Plugin(headers) => (None, Some(headers.iter())),
        };
        host.into_iter()
            .flatten()
            .chain(plugin.into_iter().flatten())
    }

    pub fn len(&self) -> usize {
        match &self.0 {
            Repr::Host(fields) => fields.len(),
            Repr::Plugin(headers) => headers.len(),
        }
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
        Fields(Repr::Host(fields))
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

/// A response body. Its length is always known up front.
#[derive(Debug)]
pub enum Body {
    Empty,
    Bytes(Vec<u8>),
    Static(&'static [u8]),
    /// Bytes a plugin built, left in its memory (and freed there when dropped): copied once, into the
    /// response, where converting them to a `Vec` would copy them twice (4 KiB echoed: 2 copies, not 3).
    Plugin(plugin_api::Body),
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
            Body::Plugin(b) => b.as_bytes().len() as u64,
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

    /// Answers `req`, unless this handler was retired (its plugin replaced or removed) after the router
    /// that found it was taken: then the request must be routed again on the current router. Only handlers
    /// that can be retired override it; dispatch calls this one (`docs/ARCHITECTURE.md` §7.1).
    fn try_handle(&self, req: &Request<'_>) -> Result<Response, Retired> {
        Ok(self.handle(req))
    }
}

/// A handler's version stopped serving between the route lookup and the call; nothing of it ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retired;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::response::{Framing, write_head};

    #[test]
    fn fields_that_would_forge_a_header_line_never_reach_the_wire() {
        let mut fields = Fields::from(vec![
            ("X-Evil".into(), "a\r\nSet-Cookie: x=1".into()),
            ("Bad Name".into(), "v".into()),
        ]);
        fields.push(("X-Nul".into(), "a\0b".into()));
        fields.push(("X-Ok".into(), "fine".into()));
        assert_eq!(fields.len(), 1);
        let framing = Framing {
            body_len: 0,
            keep_alive: true,
            http10: false,
        };
        let mut out = Vec::new();
        write_head(
            &mut out,
            200,
            fields.iter(),
            framing,
            b"Thu, 26 Nov 2026 20:00:00 GMT",
        );
        let text = String::from_utf8(out).unwrap();
        assert!(
            !text.contains("Set-Cookie") && !text.contains("Bad Name") && !text.contains("X-Nul")
        );
        assert!(text.contains("X-Ok: fine\r\n"));
    }
}
