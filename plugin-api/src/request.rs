//! The request a handler sees: borrowed views into the host's connection buffer, nothing copied.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use abi_stable::std_types::{ROption, RSlice, RStr};
use abi_stable::StableAbi;

use crate::{Error, FormData};

/// The media type of a form body (WHATWG URL Standard §5.1).
const FORM_MEDIA_TYPE: &str = "application/x-www-form-urlencoded";

/// The HTTP version of a request.
#[repr(u8)]
#[derive(StableAbi, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// `HTTP/1.0`
    Http10,
    /// `HTTP/1.1` (later 1.x minors are answered as 1.1)
    Http11,
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
        })
    }
}

/// One request header field as received. The value is bytes: HTTP allows obs-text in field values.
#[repr(C)]
#[derive(StableAbi, Clone, Copy, Debug)]
pub struct Header<'a> {
    name: RStr<'a>,
    value: RSlice<'a, u8>,
}

impl<'a> Header<'a> {
    /// A header field; `value` has its surrounding whitespace already trimmed.
    pub fn new(name: &'a str, value: &'a [u8]) -> Header<'a> {
        Header {
            name: name.into(),
            value: value.into(),
        }
    }

    /// The field name as the client spelled it.
    pub fn name(&self) -> &'a str {
        self.name.as_str()
    }

    /// The raw field value.
    pub fn value(&self) -> &'a [u8] {
        self.value.as_slice()
    }

    /// The field value if it is valid UTF-8.
    pub fn value_str(&self) -> Option<&'a str> {
        std::str::from_utf8(self.value()).ok()
    }
}

/// One captured path parameter, already percent-decoded by the host.
#[repr(C)]
#[derive(StableAbi, Clone, Copy, Debug)]
pub struct Param<'a> {
    name: RStr<'a>,
    value: RStr<'a>,
}

impl<'a> Param<'a> {
    /// A captured `{name}` (or `{*name}`) and its decoded value.
    pub fn new(name: &'a str, value: &'a str) -> Param<'a> {
        Param {
            name: name.into(),
            value: value.into(),
        }
    }
}

/// The client's socket address in a layout that does not depend on the standard library's.
#[repr(C)]
#[derive(StableAbi, Clone, Copy, Debug)]
struct PeerAddr {
    /// IPv4 addresses use the first 4 bytes.
    ip: [u8; 16],
    port: u16,
    is_v6: bool,
}

impl From<SocketAddr> for PeerAddr {
    fn from(addr: SocketAddr) -> PeerAddr {
        let mut ip = [0; 16];
        let is_v6 = match addr.ip() {
            IpAddr::V4(v4) => {
                ip[..4].copy_from_slice(&v4.octets());
                false
            }
            IpAddr::V6(v6) => {
                ip = v6.octets();
                true
            }
        };
        PeerAddr {
            ip,
            port: addr.port(),
            is_v6,
        }
    }
}

impl From<PeerAddr> for SocketAddr {
    fn from(peer: PeerAddr) -> SocketAddr {
        let ip = if peer.is_v6 {
            IpAddr::V6(Ipv6Addr::from(peer.ip))
        } else {
            let [a, b, c, d, ..] = peer.ip;
            IpAddr::V4(Ipv4Addr::new(a, b, c, d))
        };
        SocketAddr::new(ip, peer.port)
    }
}

/// The parts of a request, as plain Rust references; [`Request::new`] turns them into the FFI view.
///
/// Hosts (and [`crate::testing`]) fill this in; plugin authors only read [`Request`]s.
#[derive(Clone, Copy, Debug)]
pub struct RequestParts<'a> {
    pub method: &'a str,
    /// The request target exactly as sent, e.g. `/hello/J%C3%BCrgen?x=1`.
    pub target: &'a str,
    /// The path part of the target, still percent-encoded.
    pub path: &'a str,
    /// The query without the `?`, still percent-encoded.
    pub query: Option<&'a str>,
    pub version: Version,
    pub headers: &'a [Header<'a>],
    /// Captured path parameters, percent-decoded.
    pub params: &'a [Param<'a>],
    pub body: &'a [u8],
    pub peer: SocketAddr,
}

/// One HTTP request, as a plugin's [`Handler`](crate::Handler) sees it.
///
/// Everything borrows from the host's buffer for the duration of the call: copy what you keep.
#[repr(C)]
#[derive(StableAbi, Clone, Copy, Debug)]
pub struct Request<'a> {
    method: RStr<'a>,
    target: RStr<'a>,
    path: RStr<'a>,
    query: ROption<RStr<'a>>,
    version: Version,
    headers: RSlice<'a, Header<'a>>,
    params: RSlice<'a, Param<'a>>,
    body: RSlice<'a, u8>,
    peer: PeerAddr,
}

impl<'a> Request<'a> {
    /// Builds the FFI view of a request. No bytes are copied.
    pub fn new(parts: RequestParts<'a>) -> Request<'a> {
        Request {
            method: parts.method.into(),
            target: parts.target.into(),
            path: parts.path.into(),
            query: parts.query.map(RStr::from).into(),
            version: parts.version,
            headers: parts.headers.into(),
            params: parts.params.into(),
            body: parts.body.into(),
            peer: parts.peer.into(),
        }
    }

    /// The method, e.g. `GET` (case-sensitive, as sent).
    pub fn method(&self) -> &'a str {
        self.method.as_str()
    }

    /// The request target exactly as sent: path and query, still percent-encoded.
    pub fn target(&self) -> &'a str {
        self.target.as_str()
    }

    /// The path, still percent-encoded. Use [`Request::param`] for decoded captures.
    pub fn path(&self) -> &'a str {
        self.path.as_str()
    }

    /// The query string without the `?`, still percent-encoded; `None` when the target has no `?`.
    pub fn query(&self) -> Option<&'a str> {
        self.query.map(|q| q.as_str()).into_option()
    }

    /// The HTTP version.
    pub fn version(&self) -> Version {
        self.version
    }

    /// All header fields in the order received; repeated fields appear once per occurrence.
    pub fn headers(&self) -> impl Iterator<Item = Header<'a>> + 'a {
        self.headers.as_slice().iter().copied()
    }

    /// The first header field named `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        self.headers_named(name).next()
    }

    /// The first header field named `name` as text, if it is valid UTF-8.
    pub fn header_str(&self, name: &str) -> Option<&'a str> {
        self.header(name)
            .and_then(|value| std::str::from_utf8(value).ok())
    }

    /// Every value of the fields named `name` (ASCII case-insensitive), in order.
    pub fn headers_named<'n>(&self, name: &'n str) -> impl Iterator<Item = &'a [u8]> + 'n
    where
        'a: 'n,
    {
        self.headers
            .as_slice()
            .iter()
            .filter(move |h| h.name().eq_ignore_ascii_case(name))
            .map(|h| h.value())
    }

    /// The value captured for `{name}` or `{*name}` in the route pattern, percent-decoded.
    pub fn param(&self, name: &str) -> Option<&'a str> {
        self.params
            .as_slice()
            .iter()
            .find(|p| p.name.as_str() == name)
            .map(|p| p.value.as_str())
    }

    /// All captured parameters in pattern order, as `(name, decoded value)`.
    pub fn params(&self) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        self.params
            .as_slice()
            .iter()
            .map(|p| (p.name.as_str(), p.value.as_str()))
    }

    /// The complete request body (the host has already removed chunked framing).
    pub fn body(&self) -> &'a [u8] {
        self.body.as_slice()
    }

    /// The client's address.
    pub fn peer(&self) -> SocketAddr {
        self.peer.into()
    }

    /// The query's fields, decoded (see [`FormData`]); empty without a query. A malformed query is a 400.
    pub fn query_params(&self) -> Result<FormData<'a>, Error> {
        match self.query() {
            Some(query) => FormData::parse(query, "query"),
            None => Ok(FormData::default()),
        }
    }

    /// The body's fields, if it is `application/x-www-form-urlencoded` (an HTML form's POST): 415 for another
    /// `Content-Type`, 400 for a malformed body.
    pub fn form(&self) -> Result<FormData<'a>, Error> {
        let content_type = self.header_str("Content-Type").unwrap_or("");
        let media_type = content_type.split(';').next().unwrap_or("").trim();
        if !media_type.eq_ignore_ascii_case(FORM_MEDIA_TYPE) {
            return Err(Error::unsupported_media_type(format!(
                "expected a {FORM_MEDIA_TYPE} body, got Content-Type {content_type:?}"
            )));
        }
        let body = std::str::from_utf8(self.body())
            .map_err(|_| Error::bad_request("the form body is not UTF-8"))?;
        FormData::parse(body, "form body")
    }

    /// The value of the cookie `name` from the `Cookie` fields (RFC 6265 §5.4), as sent: cookie values are not
    /// percent-decoded.
    pub fn cookie(&self, name: &str) -> Option<&'a str> {
        self.headers_named("Cookie")
            .filter_map(|value| std::str::from_utf8(value).ok())
            .flat_map(|value| value.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.trim_matches('"'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_view_borrows_every_part_and_looks_headers_up_case_insensitively() {
        let headers = [
            Header::new("Accept", b"text/html"),
            Header::new("X-Tag", b"a"),
            Header::new("x-tag", b"b"),
        ];
        let params = [Param::new("name", "Jürgen")];
        let target = String::from("/hello/J%C3%BCrgen?x=1");
        let req = Request::new(RequestParts {
            method: "GET",
            target: &target,
            path: "/hello/J%C3%BCrgen",
            query: Some("x=1"),
            version: Version::Http10,
            headers: &headers,
            params: &params,
            body: b"",
            peer: "10.0.0.1:5".parse().unwrap(),
        });
        assert_eq!(
            (req.method(), req.path(), req.query()),
            ("GET", "/hello/J%C3%BCrgen", Some("x=1"))
        );
        assert_eq!(req.target(), "/hello/J%C3%BCrgen?x=1");
        assert_eq!(req.version().to_string(), "HTTP/1.0");
        assert_eq!(req.header_str("ACCEPT"), Some("text/html"));
        assert_eq!(req.headers_named("X-TAG").collect::<Vec<_>>(), [b"a", b"b"]);
        assert_eq!(
            req.headers().map(|h| h.name()).collect::<Vec<_>>(),
            ["Accept", "X-Tag", "x-tag"]
        );
        assert_eq!(req.param("name"), Some("Jürgen"));
        assert_eq!(req.param("other"), None);
        assert_eq!(req.peer().port(), 5);
        assert_eq!(
            req.target().as_ptr(),
            target.as_ptr(),
            "borrowed, not copied"
        );
    }

    #[test]
    fn peer_addresses_round_trip() {
        for addr in ["127.0.0.1:8080", "[::1]:443", "[2001:db8::7]:1"] {
            let addr: SocketAddr = addr.parse().unwrap();
            assert_eq!(SocketAddr::from(PeerAddr::from(addr)), addr);
        }
    }
}
