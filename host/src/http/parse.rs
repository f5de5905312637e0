//! Request line and header section (RFC 9112 §3, §5), parsed incrementally and without copying.
//!
//! OWNER: parser helper. The types below are the contract the rest of the host builds on.

use super::body::BodyFraming;

/// Limits the head parser enforces; each overflow maps to its own status (see [`ParseError::status`]).
#[derive(Clone, Debug)]
pub struct HeadLimits {
    /// Longest request line in bytes, CRLF excluded; longer gives 414.
    pub max_request_line: usize,
    /// Largest header section in bytes (request line excluded); larger gives 431.
    pub max_header_bytes: usize,
    /// Most header fields; more gives 431.
    pub max_headers: usize,
}

/// The protocol version of a request; a later `HTTP/1.x` minor is answered as 1.1 (RFC 9110 §6.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    Http10,
    Http11,
}

/// One header field, borrowed from the connection's buffer. The value has its surrounding OWS trimmed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header<'b> {
    pub name: &'b str,
    pub value: &'b [u8],
}

/// A parsed request head, borrowing from the bytes it was parsed from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestHead<'b> {
    pub method: &'b str,
    /// The request target exactly as sent.
    pub target: &'b str,
    /// The path part of the target, still percent-encoded (`*` for asterisk-form).
    pub path: &'b str,
    /// The query, without the `?`.
    pub query: Option<&'b str>,
    pub version: Version,
    /// All fields in the order received; repeated fields are kept.
    pub headers: Vec<Header<'b>>,
    /// How the message body is delimited (RFC 9112 §6.3).
    pub body: BodyFraming,
    /// Whether the client allows the connection to persist after this exchange (RFC 9112 §9.3).
    pub keep_alive: bool,
    /// `Expect: 100-continue` was sent (RFC 9110 §10.1.1).
    pub expect_continue: bool,
}

impl<'b> RequestHead<'b> {
    /// The first field named `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&'b [u8]> {
        self.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    }
}

/// Why a request head was refused. Every variant maps to one status in [`ParseError::status`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseError {
    /// Placeholder until the parser lands.
    Invalid,
}

impl ParseError {
    /// The status this error is answered with.
    pub fn status(self) -> u16 {
        400
    }
}

/// Parses one request head at the start of `buf`.
///
/// `Ok(None)`: the head is not complete yet. `Ok(Some((head, n)))`: the head took the first `n` bytes.
pub fn parse_head<'b>(
    buf: &'b [u8],
    limits: &HeadLimits,
) -> Result<Option<(RequestHead<'b>, usize)>, ParseError> {
    let _ = (buf, limits);
    todo!("parser helper")
}
