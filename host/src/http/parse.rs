//! Request line and header section (RFC 9112 §3, §5), parsed incrementally and without copying.
//!
//! [`parse_head`] is called on the connection's bytes each time more arrive; it either needs more bytes
//! (`Ok(None)`), refuses the head ([`ParseError`], which always closes the connection), or returns the head
//! and how many bytes it took. One call is linear in the input: each byte is looked at a bounded number of
//! times, and every wait for more bytes is capped by a limit (414/431), so no input makes it wait forever.
//!
//! Policies where RFC 9112 leaves a choice:
//! - **Line endings**: only CRLF ends a line. A bare LF (RFC 9112 §2.2 "MAY" accept) is refused with 400,
//!   like a bare CR: a front proxy that reads lines differently from us is how requests get smuggled.
//! - **Leading empty lines** (RFC 9112 §2.2): up to [`MAX_LEADING_EMPTY_LINES`] CRLFs before the request
//!   line are skipped; the bytes returned in `n` include them.
//! - **CONNECT** (authority-form, RFC 9112 §3.2.3): plugd is no proxy, so any CONNECT request is refused
//!   with 400 ([`ParseError::ConnectUnsupported`]).
//! - **Targets**: visible ASCII only (0x21-0x7E) and no `#` (a fragment is not part of any request-target
//!   form, RFC 9112 §3.2). Absolute-form accepts the `http` and `https` schemes only.
//! - **Field values**: SP, HTAB, visible ASCII and obs-text (0x80-0xFF); every other control character,
//!   not only NUL/CR/LF, is refused (RFC 9110 §5.5 allows either).

use std::fmt;

use super::body::BodyFraming;
use super::headers::{Header, Headers};
use super::scan;
use super::syntax::{
    self, FieldLineError, IP_LITERAL, Line, REG_NAME, RequestLine, Version, find_line, is_tchar,
    is_token, parse_field_line, trim_ows,
};

/// Empty lines (CRLF) skipped before a request line (RFC 9112 §2.2); more is no HTTP client, so 400.
/// Some old clients send one CRLF after a POST body; eight leaves room without letting a peer stream
/// empty lines forever under the header timeout's radar.
pub const MAX_LEADING_EMPTY_LINES: usize = 8;

/// Limits the head parser enforces; each overflow maps to its own status (see [`ParseError::status`]).
#[derive(Clone, Debug)]
pub struct HeadLimits {
    /// Longest request line in bytes, CRLF excluded; longer gives 414.
    pub max_request_line: usize,
    /// Largest header section in bytes (request line excluded); larger gives 431.
    ///
    /// Counted from the first field line through the CRLF of the empty line that ends the head.
    pub max_header_bytes: usize,
    /// Most header fields; more gives 431.
    pub max_headers: usize,
}

/// A parsed request head, borrowing from the bytes it was parsed from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestHead<'b> {
    pub method: &'b str,
    /// The request target exactly as sent.
    pub target: &'b str,
    /// The path part of the target, still percent-encoded (`*` for asterisk-form; `/` for an absolute-form
    /// target without a path).
    pub path: &'b str,
    /// The query, without the `?`.
    pub query: Option<&'b str>,
    pub version: Version,
    /// All fields in the order received; repeated fields are kept.
    pub headers: Headers<'b>,
    /// How the message body is delimited (RFC 9112 §6.3).
    pub body: BodyFraming,
    /// Whether the client allows the connection to persist after this exchange (RFC 9112 §9.3).
    pub keep_alive: bool,
    /// `Expect: 100-continue` was sent in an HTTP/1.1 request (RFC 9110 §10.1.1; ignored in HTTP/1.0).
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

    /// Every value of the field `name` (ASCII case-insensitive), in order: list-valued fields may be split
    /// over several lines (RFC 9110 §5.3).
    pub fn field_values<'h>(&'h self, name: &'h str) -> impl Iterator<Item = &'b [u8]> + 'h {
        self.headers
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    }

    /// Appends the head in wire form, as a client would send it (single spaces, `name: value`, CRLFs,
    /// `HTTP/1.0` or `HTTP/1.1`). Parsing the result gives this head again; tests and fuzz targets rely on it.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        let version = match self.version {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
        };
        for part in [self.method, " ", self.target, " ", version, "\r\n"] {
            out.extend_from_slice(part.as_bytes());
        }
        for h in self.headers.iter() {
            out.extend_from_slice(h.name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(h.value);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
    }
}

/// Why a request head was refused. Every variant maps to one status in [`ParseError::status`].
///
/// **Every `ParseError` closes the connection** (the connection code does so for all of them): after a refused head
/// the end of the message (and so the start of the next one) is unknown or untrustworthy (RFC 9112 §6.3,
/// §11.2). Answer with `status()` and `Connection: close`, then shut down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseError {
    /// More than [`MAX_LEADING_EMPTY_LINES`] empty lines before the request line.
    TooManyEmptyLines,
    /// A line ended with LF alone (no CR before it); see the module docs for the bare LF policy.
    BareLf,
    /// The request line is not `method SP request-target SP HTTP-version` with single spaces.
    InvalidRequestLine,
    /// The method is not a token (RFC 9110 §9.1, §5.6.2).
    InvalidMethod,
    /// The target has a byte outside visible ASCII (or `#`), or fits no form allowed for the method.
    InvalidTarget,
    /// `CONNECT`: plugd is not a proxy and refuses authority-form targets.
    ConnectUnsupported,
    /// The version is not `HTTP/DIGIT.DIGIT` (RFC 9112 §2.3).
    InvalidVersion,
    /// A major version other than 1 (`HTTP/2.0`, `HTTP/0.9`): 505.
    UnsupportedVersion,
    /// The request line is longer than [`HeadLimits::max_request_line`]: 414.
    RequestLineTooLong,
    /// The header section is larger than [`HeadLimits::max_header_bytes`]: 431.
    HeaderSectionTooLarge,
    /// More than [`HeadLimits::max_headers`] field lines: 431.
    TooManyHeaders,
    /// A field line starts with whitespace: obs-fold, or whitespace before the first field (RFC 9112 §5.2, §2.2).
    ObsFold,
    /// A field name is empty or not a token, whitespace precedes the colon, or the colon is missing (RFC 9112 §5.1).
    InvalidHeaderName,
    /// A field value holds a control character other than HTAB (NUL, CR, ...) (RFC 9110 §5.5).
    InvalidHeaderValue,
    /// An HTTP/1.1 request without `Host` (RFC 9112 §3.2).
    MissingHost,
    /// More than one `Host` field line (RFC 9112 §3.2).
    DuplicateHost,
    /// A `Host` value (or an absolute-form authority) that is not `host[:port]` (RFC 9112 §3.2, RFC 3986 §3.2).
    InvalidHost,
    /// `Content-Length` is not a list of digits that fits in a u64 (RFC 9112 §6.3 item 5).
    InvalidContentLength,
    /// `Content-Length` values that differ (RFC 9110 §8.6).
    ConflictingContentLength,
    /// Both `Transfer-Encoding` and `Content-Length` (RFC 9112 §6.3 item 3, §11.2: smuggling).
    ContentLengthWithTransferEncoding,
    /// `Transfer-Encoding` in an HTTP/1.0 request: faulty framing (RFC 9112 §6.1).
    TransferEncodingInHttp10,
    /// `Transfer-Encoding` is malformed, or `chunked` is not the final coding or appears twice (RFC 9112 §6.3).
    InvalidTransferEncoding,
    /// A transfer coding other than `chunked`: 501 (RFC 9112 §6.1).
    UnsupportedTransferCoding,
    /// An `Expect` other than `100-continue`: 417 (RFC 9110 §10.1.1).
    UnsupportedExpectation,
}

impl ParseError {
    /// The status this error is answered with: the one place errors meet status codes.
    pub fn status(self) -> u16 {
        use ParseError::*;
        match self {
            RequestLineTooLong => 414,
            HeaderSectionTooLarge | TooManyHeaders => 431,
            UnsupportedTransferCoding => 501,
            UnsupportedVersion => 505,
            UnsupportedExpectation => 417,
            TooManyEmptyLines
            | BareLf
            | InvalidRequestLine
            | InvalidMethod
            | InvalidTarget
            | ConnectUnsupported
            | InvalidVersion
            | ObsFold
            | InvalidHeaderName
            | InvalidHeaderValue
            | MissingHost
            | DuplicateHost
            | InvalidHost
            | InvalidContentLength
            | ConflictingContentLength
            | ContentLengthWithTransferEncoding
            | TransferEncodingInHttp10
            | InvalidTransferEncoding => 400,
        }
    }

    /// A short human text for the error response body and the debug log.
    pub fn reason(self) -> &'static str {
        use ParseError::*;
        match self {
            TooManyEmptyLines => "too many empty lines before the request line",
            BareLf => "line ended with a bare LF; lines must end with CRLF",
            InvalidRequestLine => "malformed request line",
            InvalidMethod => "invalid method",
            InvalidTarget => "invalid request target",
            ConnectUnsupported => "CONNECT is not supported",
            InvalidVersion => "malformed HTTP version",
            UnsupportedVersion => "HTTP version not supported",
            RequestLineTooLong => "request line too long",
            HeaderSectionTooLarge => "header section too large",
            TooManyHeaders => "too many header fields",
            ObsFold => "header line starts with whitespace (obs-fold)",
            InvalidHeaderName => "invalid header field name",
            InvalidHeaderValue => "invalid character in header field value",
            MissingHost => "missing Host header",
            DuplicateHost => "more than one Host header",
            InvalidHost => "invalid Host",
            InvalidContentLength => "invalid Content-Length",
            ConflictingContentLength => "conflicting Content-Length values",
            ContentLengthWithTransferEncoding => "both Content-Length and Transfer-Encoding",
            TransferEncodingInHttp10 => "Transfer-Encoding in an HTTP/1.0 request",
            InvalidTransferEncoding => "invalid Transfer-Encoding (chunked must be final, once)",
            UnsupportedTransferCoding => "unsupported transfer coding",
            UnsupportedExpectation => "unsupported expectation",
        }
    }
}

impl From<FieldLineError> for ParseError {
    fn from(err: FieldLineError) -> ParseError {
        match err {
            FieldLineError::ObsFold => ParseError::ObsFold,
            FieldLineError::InvalidName => ParseError::InvalidHeaderName,
            FieldLineError::InvalidValue => ParseError::InvalidHeaderValue,
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for ParseError {}

/// Parses one request head at the start of `buf`.
///
/// `Ok(None)`: the head is not complete yet. `Ok(Some((head, n)))`: the head took the first `n` bytes
/// (leading empty lines included). A limit is reported as soon as the bytes seen exceed it, without
/// waiting for the rest of the line or section.
pub fn parse_head<'b>(
    buf: &'b [u8],
    limits: &HeadLimits,
) -> Result<Option<(RequestHead<'b>, usize)>, ParseError> {
    // RFC 9112 §2.2: ignore (a bounded number of) empty lines before the request line.
    let mut start = 0;
    let mut empty_lines = 0;
    loop {
        match buf.get(start..) {
            Some([b'\r', b'\n', ..]) => {
                if empty_lines == MAX_LEADING_EMPTY_LINES {
                    return Err(ParseError::TooManyEmptyLines);
                }
                empty_lines += 1;
                start += 2;
            }
            Some([] | [b'\r']) => return Ok(None),
            _ => break,
        }
    }

    let rl_limit = start
        .saturating_add(limits.max_request_line)
        .saturating_add(2);
    let (line, mut pos) = match scan::request_line(buf, start, rl_limit) {
        Some(scanned) => scanned,
        None => match find_line(buf, start, rl_limit) {
            Line::Done { end, next } => (
                parse_request_line(buf.get(start..end).unwrap_or_default())?,
                next,
            ),
            Line::Partial => return partial_request_line(buf.get(start..).unwrap_or_default()),
            Line::Overlong => return Err(ParseError::RequestLineTooLong),
            Line::BareLf => return Err(ParseError::BareLf),
        },
    };

    let section_limit = pos.saturating_add(limits.max_header_bytes);
    let mut headers = Headers::new();
    let consumed = loop {
        if buf.get(pos..pos + 2) == Some(b"\r\n") && pos + 2 <= section_limit {
            break pos + 2;
        }
        let (field, next) = match scan::field_line(buf, pos, section_limit) {
            Some(scanned) => scanned,
            // A line the fast scan does not vouch for: read it the careful way.
            None => match find_line(buf, pos, section_limit) {
                Line::Done { end, next } => {
                    let line = buf.get(pos..end).unwrap_or_default();
                    if line.is_empty() {
                        break next;
                    }
                    // The field count is checked before the line itself, as for a scanned line.
                    if headers.len() >= limits.max_headers {
                        return Err(ParseError::TooManyHeaders);
                    }
                    (parse_field_line(line)?, next)
                }
                Line::Partial => return Ok(None),
                Line::Overlong => return Err(ParseError::HeaderSectionTooLarge),
                Line::BareLf => return Err(ParseError::BareLf),
            },
        };
        if headers.len() >= limits.max_headers {
            return Err(ParseError::TooManyHeaders);
        }
        headers.push(field);
        pos = next;
    };

    let fields = interpret_fields(&headers, line.version)?;
    let head = RequestHead {
        method: line.method,
        target: line.target,
        path: line.path,
        query: line.query,
        version: line.version,
        headers,
        body: fields.body,
        keep_alive: fields.keep_alive,
        expect_continue: fields.expect_continue,
    };
    Ok(Some((head, consumed)))
}

/// An incomplete request line: refused at once if its method so far is no token (a TLS handshake, binary
/// garbage), instead of waiting for the rest until the line limit or the header timeout.
fn partial_request_line<T>(seen: &[u8]) -> Result<Option<T>, ParseError> {
    let method_end = seen.iter().position(|&b| b == b' ').unwrap_or(seen.len());
    let method = seen.get(..method_end).unwrap_or_default();
    if method.iter().all(|&b| is_tchar(b)) {
        Ok(None)
    } else {
        Err(ParseError::InvalidMethod)
    }
}

/// Bytes already checked to be ASCII, as text.
fn ascii(s: &[u8]) -> &str {
    syntax::ascii(s).unwrap_or_default()
}

/// `method SP request-target SP HTTP-version` (RFC 9112 §3), CRLF already removed.
fn parse_request_line(line: &[u8]) -> Result<RequestLine<'_>, ParseError> {
    let mut parts = line.splitn(3, |&b| b == b' ');
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(ParseError::InvalidRequestLine);
    };
    if !is_token(method) {
        return Err(if method.is_empty() {
            ParseError::InvalidRequestLine
        } else {
            ParseError::InvalidMethod
        });
    }
    if target.is_empty() {
        return Err(ParseError::InvalidRequestLine);
    }
    let version = parse_version(version)?;
    if !target
        .iter()
        .all(|&b| (0x21..=0x7e).contains(&b) && b != b'#')
    {
        return Err(ParseError::InvalidTarget);
    }
    let (method, target) = (ascii(method), ascii(target));
    let (path, query) = split_target(method, target)?;
    Ok(RequestLine {
        method,
        target,
        path,
        query,
        version,
    })
}

/// `HTTP/DIGIT.DIGIT`, case-sensitive (RFC 9112 §2.3).
fn parse_version(v: &[u8]) -> Result<Version, ParseError> {
    match *v {
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            match (major, minor) {
                (b'1', b'0') => Ok(Version::Http10),
                (b'1', _) => Ok(Version::Http11),
                _ => Err(ParseError::UnsupportedVersion),
            }
        }
        _ => Err(ParseError::InvalidVersion),
    }
}

/// The path and query of a target in the form allowed for `method` (RFC 9112 §3.2).
fn split_target<'b>(
    method: &str,
    target: &'b str,
) -> Result<(&'b str, Option<&'b str>), ParseError> {
    if method == "CONNECT" {
        return Err(ParseError::ConnectUnsupported);
    }
    if target.starts_with('/') {
        return Ok(split_query(target));
    }
    if target == "*" {
        return if method == "OPTIONS" {
            Ok(("*", None))
        } else {
            Err(ParseError::InvalidTarget)
        };
    }
    // absolute-form (RFC 9112 §3.2.2): scheme "://" authority [path] ["?" query].
    let (scheme, rest) = target.split_once("://").ok_or(ParseError::InvalidTarget)?;
    if !(scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")) {
        return Err(ParseError::InvalidTarget);
    }
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path_and_query) = rest.split_at(authority_end);
    if authority.is_empty() || !is_valid_host(authority.as_bytes()) {
        return Err(ParseError::InvalidHost);
    }
    let (path, query) = split_query(path_and_query);
    Ok((if path.is_empty() { "/" } else { path }, query))
}

fn split_query(s: &str) -> (&str, Option<&str>) {
    match s.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (s, None),
    }
}

/// `uri-host [ ":" port ]` (RFC 9112 §3.2, RFC 3986 §3.2.2): an IP literal in brackets or a reg-name
/// (unreserved, sub-delims, pct-encoded), then an optional port of at most five digits. Userinfo (`@`) is
/// refused (RFC 9110 §4.2.4). An empty value is valid (RFC 9112 §3.2).
fn is_valid_host(v: &[u8]) -> bool {
    let (host_ok, port) = if let Some(rest) = v.strip_prefix(b"[") {
        let Some(close) = rest.iter().position(|&b| b == b']') else {
            return false;
        };
        let (literal, after) = rest.split_at(close);
        let ok = !literal.is_empty() && syntax::all_in(literal, &IP_LITERAL);
        (ok, after.get(1..).unwrap_or_default())
    } else {
        let Some(end) = reg_name_end(v) else {
            return false;
        };
        (true, v.get(end..).unwrap_or_default())
    };
    let port_ok = match port {
        [] => true,
        [b':', digits @ ..] => digits.len() <= 5 && digits.iter().all(u8::is_ascii_digit),
        _ => false,
    };
    host_ok && port_ok
}

/// Where the reg-name (RFC 3986 §3.2.2) at the start of `v` ends: at its first byte that is neither a
/// reg-name character nor part of a percent-escape. `None` for a malformed escape.
fn reg_name_end(v: &[u8]) -> Option<usize> {
    let mut i = 0;
    loop {
        i = syntax::skip(v, i, &REG_NAME);
        match v.get(i..) {
            Some([b'%', h, l, ..]) if h.is_ascii_hexdigit() && l.is_ascii_hexdigit() => i += 3,
            Some([b'%', ..]) => return None,
            _ => return Some(i),
        }
    }
}

/// What the fields say about framing and the connection.
struct FieldSemantics {
    body: BodyFraming,
    keep_alive: bool,
    expect_continue: bool,
}

/// Transfer-Encoding codings seen so far, across all its field lines (RFC 9112 §6.1).
#[derive(Default)]
struct Codings {
    present: bool,
    chunked_seen: bool,
    chunked_last: bool,
    chunked_twice: bool,
    unknown: bool,
}

/// Elements of a comma-separated list field (RFC 9110 §5.6.1), OWS trimmed.
fn list_elements(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value.split(|&b| b == b',').map(trim_ows)
}

/// The fields the parser itself reads.
enum Interpreted {
    Host,
    ContentLength,
    TransferEncoding,
    Connection,
    Expect,
}

/// Which interpreted field `name` is (ASCII case-insensitive). The length picks the one candidate, so most
/// names (`User-Agent`, `Accept`, ...) cost one comparison of lengths, not five of names.
fn interpreted(name: &str) -> Option<Interpreted> {
    let (candidate, field) = match name.len() {
        4 => ("host", Interpreted::Host),
        6 => ("expect", Interpreted::Expect),
        10 => ("connection", Interpreted::Connection),
        14 => ("content-length", Interpreted::ContentLength),
        17 => ("transfer-encoding", Interpreted::TransferEncoding),
        _ => return None,
    };
    name.eq_ignore_ascii_case(candidate).then_some(field)
}

/// Reads Host, Content-Length, Transfer-Encoding, Connection and Expect; one pass over the fields.
fn interpret_fields(
    headers: &[Header<'_>],
    version: Version,
) -> Result<FieldSemantics, ParseError> {
    let mut hosts = 0;
    let mut content_length: Option<u64> = None;
    let mut codings = Codings::default();
    let (mut close, mut keep_alive_token, mut expect_continue) = (false, false, false);

    for h in headers {
        match interpreted(h.name) {
            Some(Interpreted::Host) => {
                hosts += 1;
                if hosts > 1 {
                    return Err(ParseError::DuplicateHost);
                }
                if !is_valid_host(h.value) {
                    return Err(ParseError::InvalidHost);
                }
            }
            Some(Interpreted::ContentLength) => {
                // RFC 9112 §6.3 item 5 / RFC 9110 §8.6: a list of identical values is one value.
                for element in list_elements(h.value) {
                    let n = parse_content_length(element)?;
                    if content_length.is_some_and(|prev| prev != n) {
                        return Err(ParseError::ConflictingContentLength);
                    }
                    content_length = Some(n);
                }
            }
            Some(Interpreted::TransferEncoding) => {
                codings.present = true;
                for element in list_elements(h.value) {
                    add_coding(&mut codings, element)?;
                }
            }
            Some(Interpreted::Connection) => {
                for token in list_elements(h.value) {
                    close |= token.eq_ignore_ascii_case(b"close");
                    keep_alive_token |= token.eq_ignore_ascii_case(b"keep-alive");
                }
            }
            Some(Interpreted::Expect) => {
                for expectation in list_elements(h.value).filter(|e| !e.is_empty()) {
                    if !expectation.eq_ignore_ascii_case(b"100-continue") {
                        return Err(ParseError::UnsupportedExpectation);
                    }
                    expect_continue = true;
                }
            }
            None => {}
        }
    }

    if version == Version::Http11 && hosts == 0 {
        return Err(ParseError::MissingHost);
    }
    let body = if codings.present {
        // RFC 9112 §6.1: HTTP/1.0 has no Transfer-Encoding; treat the framing as faulty.
        if version == Version::Http10 {
            return Err(ParseError::TransferEncodingInHttp10);
        }
        // RFC 9112 §6.3 item 3 and §11.2: both framings at once is the classic smuggling vector.
        if content_length.is_some() {
            return Err(ParseError::ContentLengthWithTransferEncoding);
        }
        // RFC 9112 §6.3 item 4: chunked must be the final coding, and applied once (§7).
        if codings.chunked_seen && (!codings.chunked_last || codings.chunked_twice) {
            return Err(ParseError::InvalidTransferEncoding);
        }
        // RFC 9112 §6.1: a coding we do not understand is 501.
        if codings.unknown {
            return Err(ParseError::UnsupportedTransferCoding);
        }
        BodyFraming::Chunked
    } else {
        match content_length {
            Some(n) => BodyFraming::Length(n),
            None => BodyFraming::None,
        }
    };

    let keep_alive = match version {
        Version::Http11 => !close,
        Version::Http10 => keep_alive_token && !close,
    };
    Ok(FieldSemantics {
        body,
        keep_alive,
        // RFC 9110 §10.1.1: a 100-continue expectation in an HTTP/1.0 request is ignored.
        expect_continue: expect_continue && version == Version::Http11,
    })
}

/// One Content-Length element: 1*DIGIT, overflow-checked (no sign, no inner spaces).
fn parse_content_length(digits: &[u8]) -> Result<u64, ParseError> {
    if digits.is_empty() {
        return Err(ParseError::InvalidContentLength);
    }
    digits.iter().try_fold(0u64, |acc, &d| {
        if !d.is_ascii_digit() {
            return Err(ParseError::InvalidContentLength);
        }
        acc.checked_mul(10)
            .and_then(|acc| acc.checked_add(u64::from(d - b'0')))
            .ok_or(ParseError::InvalidContentLength)
    })
}

/// Records one transfer-coding element: `token *( OWS ";" OWS parameter )` (RFC 9112 §6.1, RFC 9110 §10.1.4).
fn add_coding(codings: &mut Codings, element: &[u8]) -> Result<(), ParseError> {
    let mut parts = element.split(|&b| b == b';');
    let name = trim_ows(parts.next().unwrap_or_default());
    let has_params = element.contains(&b';');
    if !is_token(name) {
        return Err(ParseError::InvalidTransferEncoding);
    }
    if name.eq_ignore_ascii_case(b"chunked") {
        // chunked takes no parameters (RFC 9112 §7).
        if has_params {
            return Err(ParseError::InvalidTransferEncoding);
        }
        codings.chunked_twice |= codings.chunked_seen;
        codings.chunked_seen = true;
        codings.chunked_last = true;
    } else {
        codings.unknown = true;
        codings.chunked_last = false;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ParseError::*;
    use proptest::prelude::*;

    fn limits() -> HeadLimits {
        HeadLimits {
            max_request_line: 8 * 1024,
            max_header_bytes: 16 * 1024,
            max_headers: 100,
        }
    }

    fn parse(buf: &[u8]) -> Result<Option<(RequestHead<'_>, usize)>, ParseError> {
        parse_head(buf, &limits())
    }

    /// A valid head, the bytes that may follow it (a body, the next request), and what it must parse to.
    struct Valid {
        head: Vec<u8>,
        after: &'static [u8],
        method: &'static str,
        path: &'static str,
        query: Option<&'static str>,
        version: Version,
        body: BodyFraming,
        keep_alive: bool,
        expect_continue: bool,
        headers: usize,
    }

    fn valid(head: impl Into<Vec<u8>>) -> Valid {
        Valid {
            head: head.into(),
            after: b"",
            method: "GET",
            path: "/",
            query: None,
            version: Version::Http11,
            body: BodyFraming::None,
            keep_alive: true,
            expect_continue: false,
            headers: 1,
        }
    }

    fn valid_cases() -> Vec<Valid> {
        let many: String = (0..99)
            .map(|i| format!("X-Field-{i}: value {i}\r\n"))
            .collect();
        vec![
            valid("GET / HTTP/1.1\r\nHost: a\r\n\r\n"),
            Valid {
                after: b"hello",
                method: "POST",
                path: "/submit",
                query: Some("x=1&y"),
                body: BodyFraming::Length(5),
                headers: 2,
                ..valid(
                    "POST /submit?x=1&y HTTP/1.1\r\nHost: example.com:8080\r\nContent-Length: 5\r\n\r\n",
                )
            },
            Valid {
                after: b"5\r\nhello\r\n0\r\n\r\n",
                method: "POST",
                path: "/up",
                body: BodyFraming::Chunked,
                headers: 2,
                ..valid("POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n\r\n")
            },
            Valid {
                path: "/a/b",
                query: Some("q=1"),
                ..valid("GET http://example.com:80/a/b?q=1 HTTP/1.1\r\nHost: example.com\r\n\r\n")
            },
            Valid {
                query: Some("x"),
                ..valid("GET HTTPS://example.com?x HTTP/1.1\r\nHost: example.com\r\n\r\n")
            },
            Valid {
                method: "OPTIONS",
                path: "*",
                ..valid("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n")
            },
            Valid {
                path: "/old",
                version: Version::Http10,
                keep_alive: false,
                headers: 0,
                ..valid("GET /old HTTP/1.0\r\n\r\n")
            },
            Valid {
                version: Version::Http10,
                after: b"GET / HTTP/1.0\r\n\r\n",
                ..valid("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")
            },
            Valid {
                version: Version::Http10,
                keep_alive: false,
                headers: 2,
                ..valid(
                    "GET / HTTP/1.0\r\nConnection: keep-alive, close\r\nExpect: 100-continue\r\n\r\n",
                )
            },
            Valid {
                keep_alive: false,
                headers: 2,
                ..valid("GET / HTTP/1.1\r\nHost: h\r\nConnection: upgrade, CLOSE\r\n\r\n")
            },
            Valid {
                headers: 100,
                ..valid(format!("GET / HTTP/1.1\r\n{many}Host: h\r\n\r\n"))
            },
            Valid {
                headers: 3,
                ..valid(
                    &b"GET / HTTP/1.1\r\nHost: h\r\nX-Name: caf\xc3\xa9 \xff\r\nX-Empty:\r\n\r\n"[..],
                )
            },
            valid("\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n"),
            valid("GET / HTTP/1.7\r\nHost: h\r\n\r\n"),
            Valid {
                method: "PUT",
                path: "/x",
                body: BodyFraming::Length(0),
                expect_continue: true,
                headers: 3,
                ..valid(
                    "PUT /x HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\nContent-Length: 0\r\n\r\n",
                )
            },
            Valid {
                method: "POST",
                body: BodyFraming::Length(5),
                headers: 3,
                ..valid(
                    "POST / HTTP/1.1\r\nContent-Length: 5, 5\r\nHost: [::1]:8080\r\ncontent-length:5\r\n\r\n",
                )
            },
            Valid {
                method: "M-SEARCH",
                path: "/%7E/a%20b",
                query: Some(""),
                ..valid("M-SEARCH /%7E/a%20b? HTTP/1.1\r\nHost: \t \r\n\r\n")
            },
        ]
    }

    #[test]
    fn valid_heads_parse_whole_and_need_more_at_every_split() {
        for case in valid_cases() {
            let mut buf = case.head.clone();
            buf.extend_from_slice(case.after);
            let shown = String::from_utf8_lossy(&case.head);
            let (head, n) = parse(&buf)
                .unwrap_or_else(|e| panic!("{shown:?}: {e:?}"))
                .unwrap_or_else(|| panic!("{shown:?}: incomplete"));
            assert_eq!(n, case.head.len(), "{shown:?}");
            assert_eq!(head.method, case.method, "{shown:?}");
            assert_eq!(head.path, case.path, "{shown:?}");
            assert_eq!(head.query, case.query, "{shown:?}");
            assert_eq!(head.version, case.version, "{shown:?}");
            assert_eq!(head.body, case.body, "{shown:?}");
            assert_eq!(head.keep_alive, case.keep_alive, "{shown:?}");
            assert_eq!(head.expect_continue, case.expect_continue, "{shown:?}");
            assert_eq!(head.headers.len(), case.headers, "{shown:?}");
            for k in 0..n {
                assert_eq!(parse(&buf[..k]), Ok(None), "{shown:?} cut at {k}");
            }
            assert_eq!(parse(&buf[..n]), Ok(Some((head, n))), "{shown:?}");
        }
    }

    #[test]
    fn fields_are_trimmed_and_borrowed() {
        let buf = b"GET /p?q HTTP/1.1\r\nHost:  example.com \t\r\nX-A: 1 2\r\nx-a:\t3\r\n\r\n";
        let (head, _) = parse(buf).unwrap().unwrap();
        assert_eq!(head.target, "/p?q");
        assert_eq!(head.header("HOST"), Some(&b"example.com"[..]));
        assert_eq!(head.header("x-a"), Some(&b"1 2"[..]));
        assert_eq!(
            head.headers[2],
            Header {
                name: "x-a",
                value: b"3"
            }
        );
        assert!(std::ptr::eq(head.method.as_ptr(), buf.as_ptr()));
    }

    fn invalid_cases() -> Vec<(&'static [u8], ParseError)> {
        vec![
            // Smuggling classics (RFC 9112 §6.3, §11.2).
            (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", ContentLengthWithTransferEncoding),
            (b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n", ContentLengthWithTransferEncoding),
            (b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, identity\r\n\r\n", InvalidTransferEncoding),
            (b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n", InvalidTransferEncoding),
            (b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", InvalidTransferEncoding),
            (b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked;x=1\r\n\r\n", InvalidTransferEncoding),
            (b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: \"chunked\"\r\n\r\n", InvalidTransferEncoding),
            (b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked,\r\n\r\n", InvalidTransferEncoding),
            (b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\r\n\r\n", InvalidTransferEncoding),
            (b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: xchunked\r\n\r\n", UnsupportedTransferCoding),
            (b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", UnsupportedTransferCoding),
            (b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: identity\r\n\r\n", UnsupportedTransferCoding),
            (b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\x0bchunked\r\n\r\n", InvalidHeaderValue),
            (b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\x0c\r\n\r\n", InvalidHeaderValue),
            (b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding : chunked\r\n\r\n", InvalidHeaderName),
            (b"POST / HTTP/1.1\r\nHost: h\r\n Transfer-Encoding: chunked\r\n\r\n", ObsFold),
            (b"POST / HTTP/1.1\r\n Transfer-Encoding: chunked\r\nHost: h\r\n\r\n", ObsFold),
            (b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\r\n chunked\r\n\r\n", ObsFold),
            (b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", TransferEncodingInHttp10),
            (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +5\r\n\r\n", InvalidContentLength),
            (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", InvalidContentLength),
            (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5 5\r\n\r\n", InvalidContentLength),
            (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0x5\r\n\r\n", InvalidContentLength),
            (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length:\r\n\r\n", InvalidContentLength),
            (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5,\r\n\r\n", InvalidContentLength),
            (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 18446744073709551616\r\n\r\n", InvalidContentLength),
            (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 6\r\n\r\n", ConflictingContentLength),
            (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", ConflictingContentLength),
            // Field lines.
            (b"GET / HTTP/1.1\r\nHost : h\r\n\r\n", InvalidHeaderName),
            (b"GET / HTTP/1.1\r\nHost: h\r\nX-A\r\n\r\n", InvalidHeaderName),
            (b"GET / HTTP/1.1\r\nHost: h\r\n: v\r\n\r\n", InvalidHeaderName),
            (b"GET / HTTP/1.1\r\nHost: h\r\nX(A): v\r\n\r\n", InvalidHeaderName),
            (b"GET / HTTP/1.1\r\nHost: h\r\nX-A: a\0b\r\n\r\n", InvalidHeaderValue),
            (b"GET / HTTP/1.1\r\nHost: h\r\nX-A: a\rb\r\n\r\n", InvalidHeaderValue),
            (b"GET / HTTP/1.1\r\nHost: h\r\nX-A: a\x7f\r\n\r\n", InvalidHeaderValue),
            (b"GET / HTTP/1.1\r\nHost: h\r\nX-A: a\r\r\n\r\n", InvalidHeaderValue),
            (b"GET / HTTP/1.1\nHost: h\r\n\r\n", BareLf),
            (b"GET / HTTP/1.1\r\nHost: h\n\r\n", BareLf),
            (b"GET / HTTP/1.1\r\nHost: h\r\n\n", BareLf),
            (b"\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", BareLf),
            // Host (RFC 9112 §3.2).
            (b"GET / HTTP/1.1\r\n\r\n", MissingHost),
            (b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", DuplicateHost),
            (b"GET / HTTP/1.0\r\nHost: a\r\nhost: b\r\n\r\n", DuplicateHost),
            (b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", InvalidHost),
            (b"GET / HTTP/1.1\r\nHost: user@a\r\n\r\n", InvalidHost),
            (b"GET / HTTP/1.1\r\nHost: a:http\r\n\r\n", InvalidHost),
            (b"GET / HTTP/1.1\r\nHost: a:123456\r\n\r\n", InvalidHost),
            (b"GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", InvalidHost),
            (b"GET / HTTP/1.1\r\nHost: a%zz\r\n\r\n", InvalidHost),
            (b"GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n", InvalidHost),
            (b"GET http://u@a/x HTTP/1.1\r\nHost: a\r\n\r\n", InvalidHost),
            // Request line (RFC 9112 §3).
            (b"GET  / HTTP/1.1\r\nHost: h\r\n\r\n", InvalidRequestLine),
            (b"GET / HTTP/1.1 \r\nHost: h\r\n\r\n", InvalidVersion),
            (b"GET /\r\nHost: h\r\n\r\n", InvalidRequestLine),
            (b" / HTTP/1.1\r\nHost: h\r\n\r\n", InvalidRequestLine),
            (b"\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", TooManyEmptyLines),
            (b"G@T / HTTP/1.1\r\nHost: h\r\n\r\n", InvalidMethod),
            (b"GET\t/ HTTP/1.1\r\nHost: h\r\n\r\n", InvalidRequestLine),
            (b"GET /\r HTTP/1.1\r\nHost: h\r\n\r\n", InvalidTarget),
            (b"GET /a\tb HTTP/1.1\r\nHost: h\r\n\r\n", InvalidTarget),
            (b"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n", InvalidTarget),
            (b"GET /a\0 HTTP/1.1\r\nHost: h\r\n\r\n", InvalidTarget),
            (b"GET /a#frag HTTP/1.1\r\nHost: h\r\n\r\n", InvalidTarget),
            (b"GET * HTTP/1.1\r\nHost: h\r\n\r\n", InvalidTarget),
            (b"GET foo HTTP/1.1\r\nHost: h\r\n\r\n", InvalidTarget),
            (b"GET ftp://h/ HTTP/1.1\r\nHost: h\r\n\r\n", InvalidTarget),
            (b"CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n", ConnectUnsupported),
            (b"GET / HTTP/2.0\r\nHost: h\r\n\r\n", UnsupportedVersion),
            (b"GET / HTTP/0.9\r\nHost: h\r\n\r\n", UnsupportedVersion),
            (b"GET / HTTP/3.0\r\nHost: h\r\n\r\n", UnsupportedVersion),
            (b"GET / HTTP/1.10\r\nHost: h\r\n\r\n", InvalidVersion),
            (b"GET / http/1.1\r\nHost: h\r\n\r\n", InvalidVersion),
            (b"GET / HTTP/1\r\nHost: h\r\n\r\n", InvalidVersion),
            (b"GET / HTTP/1.x\r\nHost: h\r\n\r\n", InvalidVersion),
            (b"GET / HTTP/2\r\nHost: h\r\n\r\n", InvalidVersion),
            // Expect (RFC 9110 §10.1.1).
            (b"PUT / HTTP/1.1\r\nHost: h\r\nExpect: 200-ok\r\n\r\n", UnsupportedExpectation),
            (b"PUT / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue, x\r\n\r\n", UnsupportedExpectation),
        ]
    }

    #[test]
    fn invalid_heads_are_refused_with_their_status() {
        for (raw, expected) in invalid_cases() {
            let shown = String::from_utf8_lossy(raw);
            assert_eq!(parse(raw).map(|_| ()), Err(expected), "{shown:?}");
        }
        let statuses: Vec<u16> = invalid_cases().iter().map(|(_, e)| e.status()).collect();
        for status in [400, 417, 501, 505] {
            assert!(statuses.contains(&status), "no case for {status}");
        }
    }

    #[test]
    fn statuses_and_reasons() {
        assert_eq!(RequestLineTooLong.status(), 414);
        assert_eq!(HeaderSectionTooLarge.status(), 431);
        assert_eq!(TooManyHeaders.status(), 431);
        assert_eq!(UnsupportedTransferCoding.status(), 501);
        assert_eq!(UnsupportedVersion.status(), 505);
        assert_eq!(UnsupportedExpectation.status(), 417);
        assert_eq!(ContentLengthWithTransferEncoding.status(), 400);
        assert_eq!(MissingHost.to_string(), "missing Host header");
    }

    fn small_limits() -> HeadLimits {
        HeadLimits {
            max_request_line: 32,
            max_header_bytes: 64,
            max_headers: 3,
        }
    }

    #[test]
    fn garbage_is_refused_before_a_line_end() {
        assert_eq!(parse(b"\x16\x03\x01\x02\x00\x01"), Err(InvalidMethod));
        assert_eq!(parse(b"\rGET"), Err(InvalidMethod));
        assert_eq!(parse(b"GE(T / HT"), Err(InvalidMethod));
        assert_eq!(parse(b"GET /\x01 HT"), Ok(None));
    }

    #[test]
    fn request_line_limit_is_exact_and_detected_early() {
        let l = small_limits();
        // 32 bytes exactly: accepted.
        let line = format!("GET /{} HTTP/1.1", "a".repeat(32 - 14));
        assert_eq!(line.len(), 32);
        let ok = format!("{line}\r\nHost: h\r\n\r\n");
        assert!(parse_head(ok.as_bytes(), &l).unwrap().is_some());
        // 33 bytes: refused, whole or as soon as 34 bytes are in without a line end.
        let long = format!("GET /{} HTTP/1.1\r\nHost: h\r\n\r\n", "a".repeat(33 - 14));
        assert_eq!(parse_head(long.as_bytes(), &l), Err(RequestLineTooLong));
        let endless = format!("GET /{}", "a".repeat(100));
        assert_eq!(
            parse_head(&endless.as_bytes()[..34], &l),
            Err(RequestLineTooLong)
        );
        assert_eq!(parse_head(&endless.as_bytes()[..33], &l), Ok(None));
    }

    #[test]
    fn header_section_limits_are_exact_and_detected_early() {
        let l = small_limits();
        // The section is 64 bytes with its final CRLF: accepted.
        // "Host: h\r\n" + "X: " + fill + "\r\n" + "\r\n"
        let fill = "x".repeat(64 - 9 - 3 - 2 - 2);
        let ok = format!("GET / HTTP/1.1\r\nHost: h\r\nX: {fill}\r\n\r\n");
        assert!(parse_head(ok.as_bytes(), &l).unwrap().is_some());
        let over = format!("GET / HTTP/1.1\r\nHost: h\r\nX: {fill}x\r\n\r\n");
        assert_eq!(parse_head(over.as_bytes(), &l), Err(HeaderSectionTooLarge));
        // A field line that never ends: refused once the limit is passed, not later.
        let endless = format!("GET / HTTP/1.1\r\nX: {}", "y".repeat(200));
        assert_eq!(
            parse_head(&endless.as_bytes()[..16 + 64], &l),
            Err(HeaderSectionTooLarge)
        );
        assert_eq!(parse_head(&endless.as_bytes()[..16 + 63], &l), Ok(None));
        let four = "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
        assert_eq!(parse_head(four.as_bytes(), &l), Err(TooManyHeaders));
        let three = "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\n\r\n";
        assert!(parse_head(three.as_bytes(), &l).unwrap().is_some());
    }

    #[test]
    fn big_inputs_parse_in_linear_time() {
        // Hundreds of KiB of header bytes: finishes instantly if each byte is looked at O(1) times.
        let l = HeadLimits {
            max_request_line: 1 << 20,
            max_header_bytes: 1 << 20,
            max_headers: 10_000,
        };
        let mut buf = format!("GET /{} HTTP/1.1\r\nHost: h\r\n", "a".repeat(200_000)).into_bytes();
        for i in 0..9_000 {
            buf.extend_from_slice(format!("X-{i}: {}\r\n", "v".repeat(80)).as_bytes());
        }
        let start = std::time::Instant::now();
        assert_eq!(parse_head(&buf, &l), Ok(None));
        buf.extend_from_slice(b"\r\n");
        assert_eq!(
            parse_head(&buf, &l).unwrap().unwrap().0.headers.len(),
            9_001
        );
        assert!(start.elapsed() < std::time::Duration::from_secs(2));
    }

    fn serialize(head: &RequestHead<'_>) -> Vec<u8> {
        let mut out = Vec::new();
        head.write_to(&mut out);
        out
    }

    prop_compose! {
        fn generated_head()(
            method in "[A-Z][A-Z_-]{0,9}",
            path in "/[A-Za-z0-9._~%/!$&'()*+,;=:@-]{0,30}",
            query in proptest::option::of("[A-Za-z0-9=&/?%-]{0,20}"),
            http10 in any::<bool>(),
            fields in proptest::collection::vec(
                ("X-[A-Za-z0-9-]{1,15}", proptest::collection::vec(
                    prop_oneof![Just(b' '), Just(b'\t'), 0x21u8..0x7f, 0x80u8..=0xff], 0..30)),
                0..20),
            host in "[a-z0-9.-]{0,20}(:[0-9]{1,5})?",
        ) -> (String, String, bool, Vec<(String, Vec<u8>)>) {
            let target = match query {
                Some(q) => format!("{path}?{q}"),
                None => path,
            };
            let mut fields: Vec<(String, Vec<u8>)> = fields
                .into_iter()
                .map(|(n, v)| (n, trim_ows(&v).to_vec()))
                .collect();
            fields.insert(0, ("Host".to_string(), host.into_bytes()));
            (method, target, http10, fields)
        }
    }

    proptest! {
        #[test]
        fn generated_heads_round_trip((method, target, http10, fields) in generated_head()) {
            let version = if http10 { "HTTP/1.0" } else { "HTTP/1.1" };
            let mut raw = format!("{method} {target} {version}\r\n").into_bytes();
            for (name, value) in &fields {
                raw.extend_from_slice(format!("{name}:\t ").as_bytes());
                raw.extend_from_slice(value);
                raw.extend_from_slice(b" \r\n");
            }
            raw.extend_from_slice(b"\r\n");
            let (head, n) = parse(&raw).unwrap().unwrap();
            prop_assert_eq!(n, raw.len());
            prop_assert_eq!(head.method, method.as_str());
            prop_assert_eq!(head.target, target.as_str());
            let (path, query) = split_query(&target);
            prop_assert_eq!(head.path, path);
            prop_assert_eq!(head.query, query);
            prop_assert_eq!(head.version == Version::Http10, http10);
            let got: Vec<(&str, &[u8])> = head.headers.iter().map(|h| (h.name, h.value)).collect();
            let want: Vec<(&str, &[u8])> = fields.iter().map(|(n, v)| (n.as_str(), v.as_slice())).collect();
            prop_assert_eq!(got, want);
            // Written back out, it parses to the same head.
            let again = serialize(&head);
            prop_assert_eq!(parse(&again).unwrap().unwrap().0, head);
        }

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = parse(&bytes);
            let _ = parse_head(&bytes, &small_limits());
        }

        #[test]
        fn mutated_valid_heads_never_panic(
            case in 0usize..17, at in any::<prop::sample::Index>(), byte in any::<u8>(), cut in any::<prop::sample::Index>(),
        ) {
            let cases = valid_cases();
            let mut raw = cases[case % cases.len()].head.clone();
            let i = at.index(raw.len());
            raw[i] = byte;
            raw.truncate(cut.index(raw.len() + 1));
            if let Ok(Some((head, n))) = parse(&raw) {
                prop_assert!(n <= raw.len());
                let again = serialize(&head);
                prop_assert_eq!(parse(&again).unwrap().unwrap().0, head);
            }
        }
    }
}
