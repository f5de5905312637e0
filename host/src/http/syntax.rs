//! The HTTP syntax every part of the wire format shares (RFC 9110 §5.6, RFC 9112 §2, §5): byte classes as
//! tables, scanning by class, finding a line's end, tokens and field lines, and the request line's parts.
//! A leaf: the head parser, its fast path and the body decoder all build on it, and it on nothing of
//! theirs.

use super::headers::Header;
use crate::words;

/// The protocol version of a request; a later `HTTP/1.x` minor is answered as 1.1 (RFC 9110 §6.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    Http10,
    Http11,
}

/// `tchar` (RFC 9110 §5.6.2): the bytes of methods, field names and transfer-coding names.
pub(crate) const TCHAR: [bool; 256] = alphanumeric_and(b"!#$%&'*+-.^_`|~");
/// reg-name characters except `%` (RFC 3986 §3.2.2: unreserved and sub-delims).
pub(crate) const REG_NAME: [bool; 256] = alphanumeric_and(b"-._~!$&'()*+,;=");
/// Characters allowed inside an IP literal's brackets.
pub(crate) const IP_LITERAL: [bool; 256] = alphanumeric_and(b":.-_~!$&'()*+,;=");
/// Field-value bytes (RFC 9110 §5.5): SP, HTAB, visible ASCII and obs-text.
pub(crate) const FIELD_VALUE: [bool; 256] = field_value_bytes();
/// Optional whitespace (RFC 9110 §5.6.3).
pub(crate) const OWS: [bool; 256] = bytes(b" \t");

const fn bytes(members: &[u8]) -> [bool; 256] {
    let mut table = [false; 256];
    let mut i = 0;
    while i < members.len() {
        table[members[i] as usize] = true;
        i += 1;
    }
    table
}

const fn alphanumeric_and(extra: &[u8]) -> [bool; 256] {
    let mut table = bytes(extra);
    let mut b = 0;
    while b < 256 {
        table[b] |= (b as u8).is_ascii_alphanumeric();
        b += 1;
    }
    table
}

pub(crate) const fn visible_ascii_except(excluded: &[u8]) -> [bool; 256] {
    let excluded = bytes(excluded);
    let mut table = [false; 256];
    let mut b = 0x21;
    while b <= 0x7e {
        table[b] = !excluded[b];
        b += 1;
    }
    table
}

const fn field_value_bytes() -> [bool; 256] {
    let mut table = visible_ascii_except(b"");
    table[b' ' as usize] = true;
    table[b'\t' as usize] = true;
    let mut b = 0x80;
    while b < 256 {
        table[b] = true;
        b += 1;
    }
    table
}

/// The index of the first byte at or after `from` that is not in `class` (`bytes.len()` if there is none).
///
/// One byte at a time: the runs it skips in a request head (a method, a field name, a host) are short, and
/// [`all_in`]'s chunks cost more than they save on those.
pub(crate) fn skip(bytes: &[u8], from: usize, class: &[bool; 256]) -> usize {
    let mut i = from;
    while let Some(&b) = bytes.get(i) {
        if !class[usize::from(b)] {
            break;
        }
        i += 1;
    }
    i
}

/// Whether every byte of `bytes` is in `class` (true for no bytes).
pub(crate) fn all_in(bytes: &[u8], class: &[bool; 256]) -> bool {
    span(bytes, class) == bytes.len()
}

/// Bytes [`span`] checks at once: each chunk's lookups are combined without a branch per byte, which
/// halves the instructions of a byte-at-a-time loop on field names and values.
const CHUNK: usize = 8;

/// How many bytes at the start of `bytes` are in `class`: whole chunks while every byte is in it, then
/// one byte at a time from the first chunk that is not (or the short tail).
fn span(bytes: &[u8], class: &[bool; 256]) -> usize {
    let mut n = 0;
    for chunk in bytes.chunks_exact(CHUNK) {
        if !chunk
            .iter()
            .fold(true, |all, &b| all & class[usize::from(b)])
        {
            break;
        }
        n += CHUNK;
    }
    let rest = bytes.get(n..).unwrap_or_default();
    n + rest
        .iter()
        .position(|&b| !class[usize::from(b)])
        .unwrap_or(rest.len())
}

/// `bytes` as text, if they are all ASCII. `str::from_utf8` costs 5-7 instructions a byte on short input
/// (109 for `GET /plaintext`, 70 for `Host`); checking for ASCII takes about one a word.
pub(crate) fn ascii(bytes: &[u8]) -> Option<&str> {
    if !bytes.is_ascii() {
        return None;
    }
    // SAFETY: ASCII bytes are valid UTF-8.
    Some(unsafe { std::str::from_utf8_unchecked(bytes) })
}

/// Where the line starting at some offset ends, as found by [`find_line`].
pub(crate) enum Line {
    /// The line's content ends at `end` (its CR); the next line starts at `next`.
    Done { end: usize, next: usize },
    /// No line end yet, and the limit is not reached: more bytes are needed.
    Partial,
    /// The limit was reached without a line end.
    Overlong,
    /// The line ends with LF not preceded by CR.
    BareLf,
}

/// Finds the CRLF ending the line that starts at `start`, looking only below `limit` (exclusive), so the
/// CRLF must end by `limit`. Looks at each byte once.
pub(crate) fn find_line(buf: &[u8], start: usize, limit: usize) -> Line {
    let window_end = buf.len().min(limit);
    let window = buf.get(start..window_end).unwrap_or_default();
    match window.iter().position(|&b| b == b'\n') {
        Some(0) => Line::BareLf,
        Some(i) if window.get(i - 1) == Some(&b'\r') => Line::Done {
            end: start + i - 1,
            next: start + i + 1,
        },
        Some(_) => Line::BareLf,
        None if buf.len() >= limit => Line::Overlong,
        None => Line::Partial,
    }
}

/// `tchar` (RFC 9110 §5.6.2).
pub(crate) fn is_tchar(b: u8) -> bool {
    TCHAR[usize::from(b)]
}

/// A token: one or more tchars (RFC 9110 §5.6.2).
pub(crate) fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && all_in(s, &TCHAR)
}

/// Whether every byte of `value` may stand in a field value: field-vchar, obs-text, SP and HTAB
/// (RFC 9110 §5.5). Eight bytes at a time: only a word holding a control byte (HTAB, or a refused one) or
/// DEL is looked at byte by byte (a plugin's `text/plain; charset=utf-8`: 3 words and a byte).
pub(crate) fn is_field_value(value: &[u8]) -> bool {
    let (words, rest) = words::words(value);
    for word in words {
        if words::has_below(word, 0x20) || words::has_byte(word, 0x7f) {
            return all_in(value, &FIELD_VALUE);
        }
    }
    all_in(rest, &FIELD_VALUE)
}

/// Optional whitespace (SP / HTAB) trimmed from both ends (RFC 9110 §5.6.3).
pub(crate) fn trim_ows(s: &[u8]) -> &[u8] {
    let is_ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = s.iter().position(|b| !is_ows(b)).unwrap_or(s.len());
    let end = s.iter().rposition(|b| !is_ows(b)).map_or(start, |i| i + 1);
    s.get(start..end).unwrap_or_default()
}

/// Why a field line (of a header section or a chunked body's trailers) is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FieldLineError {
    /// The line starts with whitespace: obs-fold, or whitespace before the first field (RFC 9112 §5.2).
    ObsFold,
    /// The name is empty or not a token, whitespace precedes the colon, or the colon is missing (RFC 9112 §5.1).
    InvalidName,
    /// The value holds a control character other than HTAB (RFC 9110 §5.5).
    InvalidValue,
}

/// Parses one field line (RFC 9112 §5): `name ":" OWS value OWS`. Used for headers and chunked trailers.
pub(crate) fn parse_field_line(line: &[u8]) -> Result<Header<'_>, FieldLineError> {
    if let Some(b' ' | b'\t') = line.first() {
        return Err(FieldLineError::ObsFold);
    }
    let colon = line
        .iter()
        .position(|&b| b == b':')
        .ok_or(FieldLineError::InvalidName)?;
    let (name, rest) = line.split_at(colon);
    if !is_token(name) {
        return Err(FieldLineError::InvalidName);
    }
    let value = trim_ows(rest.get(1..).unwrap_or_default());
    if !is_field_value(value) {
        return Err(FieldLineError::InvalidValue);
    }
    Ok(Header {
        // A token is ASCII.
        name: ascii(name).unwrap_or_default(),
        value,
    })
}

/// Whether a handler's field may go on the wire: a token name and a value without CR, LF or NUL (RFC 9110
/// §5.1, §5.5); anything else would let a handler forge extra header lines or a second response.
#[inline] // Called per field of every plugin response, from another module (handler.rs).
pub(crate) fn is_valid_field(name: &str, value: &str) -> bool {
    is_token(name.as_bytes()) && is_field_value(value.as_bytes())
}

/// The parts of a request line, as both the one-pass scanner (`scan.rs`) and the line parser find them.
pub(crate) struct RequestLine<'b> {
    pub method: &'b str,
    pub target: &'b str,
    pub path: &'b str,
    pub query: Option<&'b str>,
    pub version: Version,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_values_are_checked_by_word_as_by_byte() {
        for len in 1..20 {
            for at in 0..len {
                for byte in 0..=255u8 {
                    let mut value = vec![b'a'; len];
                    value[at] = byte;
                    assert_eq!(
                        is_field_value(&value),
                        FIELD_VALUE[usize::from(byte)],
                        "{value:?}"
                    );
                }
            }
        }
    }
}
