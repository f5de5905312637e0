//! Reading HTTP/1.1 responses as a client must (RFC 9112 §6.3): one at a time from a byte stream, so keep-alive
//! and pipelining can be checked byte-exact, with HEAD, 1xx, 204 and 304 answers read without a body.

use std::collections::VecDeque;
use std::io::{self, ErrorKind, Read};

/// One parsed HTTP response.
#[derive(Clone, Debug)]
pub struct Response {
    /// `HTTP/1.1`.
    pub version: String,
    pub status: u16,
    pub reason: String,
    /// Fields in the order received, names as sent.
    pub headers: Vec<(String, String)>,
    /// The de-framed body (chunked decoded).
    pub body: Vec<u8>,
    /// The status line and header section exactly as received, up to and including the empty line.
    pub raw_head: String,
    /// Whether the body came chunked.
    pub chunked: bool,
}

impl Response {
    /// The status line without CRLF, e.g. `HTTP/1.1 200 OK`.
    pub fn status_line(&self) -> &str {
        self.raw_head.split("\r\n").next().unwrap_or("")
    }

    /// The first field named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of fields named `name`, in order.
    pub fn headers_named(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Whether `name`'s value, as a comma-separated list, contains `token` (case-insensitive).
    pub fn header_has_token(&self, name: &str, token: &str) -> bool {
        self.headers_named(name)
            .iter()
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }

    pub fn body_str(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Parses responses one at a time from a byte source, keeping leftover bytes between them, so keep-alive and
/// pipelining can be checked byte-exact.
pub struct ResponseReader<R> {
    src: R,
    /// Bytes received but not yet consumed by a parsed response.
    buf: VecDeque<u8>,
    /// Methods of the requests whose responses are still to come, so a HEAD response is read without a body.
    pending_methods: VecDeque<String>,
}

impl<R: Read> ResponseReader<R> {
    pub fn new(src: R) -> ResponseReader<R> {
        ResponseReader {
            src,
            buf: VecDeque::new(),
            pending_methods: VecDeque::new(),
        }
    }

    /// Records that the next unanswered request used `method` (only HEAD changes how a response is read).
    pub fn expect_method(&mut self, method: &str) {
        self.pending_methods.push_back(method.to_owned());
    }

    /// The byte source (for a socket: to write requests on it or change its timeouts).
    pub fn source(&mut self) -> &mut R {
        &mut self.src
    }

    /// Bytes received but not consumed by a parsed response, handed over and forgotten.
    pub fn take_buffered(&mut self) -> Vec<u8> {
        self.buf.drain(..).collect()
    }

    /// Records the methods of the request lines in `bytes`: a line `METHOD target HTTP/x` at the start or
    /// right after an empty line. Pipelined requests are recognised when each starts a write or follows a head.
    pub fn note_methods(&mut self, bytes: &[u8]) {
        let text = String::from_utf8_lossy(bytes);
        let mut at_start = true;
        for line in text.split("\r\n") {
            if at_start && line.contains(" HTTP/") {
                let method = line.split(' ').next().unwrap_or_default();
                self.pending_methods.push_back(method.to_owned());
            }
            at_start = line.is_empty();
        }
    }

    /// Reads one response (a 1xx interim response counts as one). Errors on a read timeout, on EOF before a
    /// complete response, or on a malformed response.
    pub fn read_response(&mut self) -> io::Result<Response> {
        let head_end = loop {
            if let Some(end) = find(self.buf.make_contiguous(), b"\r\n\r\n") {
                break end + 4;
            }
            if self.buf.len() > 1 << 20 {
                return Err(invalid("response head over 1 MiB"));
            }
            if self.fill()? == 0 {
                return Err(io::Error::new(
                    ErrorKind::UnexpectedEof,
                    format!(
                        "connection closed before a complete response head; got {:?}",
                        String::from_utf8_lossy(self.buf.make_contiguous())
                    ),
                ));
            }
        };
        let raw_head = String::from_utf8(self.buf.drain(..head_end).collect())
            .map_err(|_| invalid("response head is not UTF-8"))?;
        let mut lines = raw_head.split("\r\n");
        let status_line = lines.next().unwrap_or("");
        let mut parts = status_line.splitn(3, ' ');
        let version = parts.next().unwrap_or("").to_owned();
        let status: u16 = parts
            .next()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| invalid(&format!("bad status line {status_line:?}")))?;
        let reason = parts.next().unwrap_or("").to_owned();
        let mut headers = Vec::new();
        for line in lines.filter(|l| !l.is_empty()) {
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| invalid(&format!("bad header line {line:?}")))?;
            headers.push((name.to_owned(), value.trim().to_owned()));
        }
        let mut response = Response {
            version,
            status,
            reason,
            headers,
            body: Vec::new(),
            raw_head,
            chunked: false,
        };
        if (100..200).contains(&status) {
            return Ok(response);
        }
        let method = self.pending_methods.pop_front().unwrap_or_default();
        // RFC 9112 §6.3: responses to HEAD, and 204 and 304 responses, have no body whatever their fields say.
        if method == "HEAD" || status == 204 || status == 304 {
            return Ok(response);
        }
        if response.header_has_token("Transfer-Encoding", "chunked") {
            response.chunked = true;
            response.body = self.read_chunked()?;
        } else if let Some(len) = response.header("Content-Length") {
            let len: usize = len
                .parse()
                .map_err(|_| invalid(&format!("bad Content-Length {len:?}")))?;
            response.body = self.read_exact_body(len)?;
        } else {
            // Delimited by close (RFC 9112 §6.3 rule 8).
            while self.fill()? != 0 {}
            response.body = self.buf.drain(..).collect();
        }
        Ok(response)
    }

    /// Like [`ResponseReader::read_response`] but skips 1xx interim responses.
    pub fn read_final_response(&mut self) -> io::Result<Response> {
        loop {
            let response = self.read_response()?;
            if response.status >= 200 {
                return Ok(response);
            }
        }
    }

    /// Reads more bytes into the buffer; 0 at EOF. A reset counts as EOF.
    fn fill(&mut self) -> io::Result<usize> {
        let mut chunk = [0u8; 8192];
        loop {
            match self.src.read(&mut chunk) {
                Ok(n) => {
                    self.buf.extend(&chunk[..n]);
                    return Ok(n);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted
                    ) =>
                {
                    return Ok(0);
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn read_exact_body(&mut self, len: usize) -> io::Result<Vec<u8>> {
        while self.buf.len() < len {
            if self.fill()? == 0 {
                return Err(io::Error::new(
                    ErrorKind::UnexpectedEof,
                    format!("body cut short: {} of {len} bytes", self.buf.len()),
                ));
            }
        }
        Ok(self.buf.drain(..len).collect())
    }

    fn read_line(&mut self) -> io::Result<String> {
        loop {
            if let Some(end) = find(self.buf.make_contiguous(), b"\r\n") {
                let line: Vec<u8> = self.buf.drain(..end + 2).take(end).collect();
                return String::from_utf8(line).map_err(|_| invalid("chunk line is not UTF-8"));
            }
            if self.fill()? == 0 {
                return Err(io::Error::new(
                    ErrorKind::UnexpectedEof,
                    "EOF inside chunked body",
                ));
            }
        }
    }

    /// RFC 9112 §7.1: chunk-size [ext] CRLF data CRLF ... last-chunk trailer-section CRLF.
    fn read_chunked(&mut self) -> io::Result<Vec<u8>> {
        let mut body = Vec::new();
        loop {
            let line = self.read_line()?;
            let size = line.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(size, 16)
                .map_err(|_| invalid(&format!("bad chunk size line {line:?}")))?;
            if size == 0 {
                while !self.read_line()?.is_empty() {}
                return Ok(body);
            }
            body.extend(self.read_exact_body(size)?);
            if !self.read_line()?.is_empty() {
                return Err(invalid("chunk data not followed by CRLF"));
            }
        }
    }
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(ErrorKind::InvalidData, msg.to_owned())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Parses every response in `bytes` (as returned by [`send_raw`]); `methods` are the requests' methods in order
/// (only `HEAD` matters: its response has no body). Panics on a malformed or truncated response.
pub fn parse_responses(bytes: &[u8], methods: &[&str]) -> Vec<Response> {
    let mut reader = ResponseReader::new(bytes);
    for method in methods {
        reader.expect_method(method);
    }
    let mut out = Vec::new();
    while !(reader.buf.is_empty() && reader.src.is_empty()) {
        out.push(reader.read_response().unwrap_or_else(|e| {
            panic!(
                "malformed response #{} in {:?}: {e}",
                out.len() + 1,
                String::from_utf8_lossy(bytes)
            )
        }));
    }
    out
}

/// Parses the single response `bytes` must hold (panics if there are more or none).
pub fn parse_response(bytes: &[u8]) -> Response {
    let mut all = parse_responses(bytes, &[]);
    assert_eq!(
        all.len(),
        1,
        "expected exactly one response in {:?}",
        String::from_utf8_lossy(bytes)
    );
    all.remove(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_pipelined_responses_with_every_framing() {
        let bytes = b"HTTP/1.1 100 Continue\r\n\r\n\
HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello\
HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n\
HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nT: v\r\n\r\n\
HTTP/1.1 204 No Content\r\n\r\n\
HTTP/1.0 200 OK\r\nConnection: close\r\n\r\nuntil close";
        let all = parse_responses(bytes, &["POST", "HEAD", "GET", "GET", "GET"]);
        let summary: Vec<(u16, String)> = all.iter().map(|r| (r.status, r.body_str())).collect();
        assert_eq!(
            summary,
            [
                (100, String::new()),
                (200, "hello".into()),
                (200, String::new()),
                (200, "abcde".into()),
                (204, String::new()),
                (200, "until close".into()),
            ]
        );
        assert!(all[3].chunked);
        assert_eq!(all[1].status_line(), "HTTP/1.1 200 OK");
        assert_eq!(all[1].header("content-length"), Some("5"));
        assert_eq!(all[5].version, "HTTP/1.0");
    }

    #[test]
    #[should_panic(expected = "malformed response #1")]
    fn truncated_body_is_an_error() {
        parse_responses(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc", &[]);
    }

    #[test]
    fn send_methods_are_noted_per_request_line() {
        let mut reader = ResponseReader::new(&b""[..]);
        reader
            .note_methods(b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\nGET /x HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(reader.pending_methods, ["HEAD", "GET"]);
    }
}
