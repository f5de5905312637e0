//! Message body framing (RFC 9112 §6, §7): Content-Length and chunked transfer coding.
//!
//! [`decode_chunked`] is stateless: the connection calls it on the whole body received so far after every
//! read. A call on an incomplete body only walks the chunk lines (chunk data is skipped by its size, not
//! copied), and the data is copied to `out` once, when the body is complete. Every byte it accepts is
//! accounted for by the grammar, so no input makes part of the next request count as body, or the reverse.
//! Like the head parser, it accepts only CRLF line endings (a bare LF is [`BodyError::Malformed`]).

use super::syntax::{Line, find_line, is_tchar, parse_field_line};

/// Longest chunk line (size and extensions, CRLF excluded), in bytes. A size needs at most 16 hex digits;
/// the rest is for extensions, which plugd reads past but never uses: 1 KiB is generous for any real
/// client and bounds the work an attacker can make us do per chunk.
pub const MAX_CHUNK_LINE_BYTES: usize = 1024;

/// Largest trailer section in bytes (every field line with its CRLF, and the final CRLF). Trailers are
/// validated and dropped (RFC 9110 §6.5 lets a recipient discard them); 8 KiB, half the default header
/// section limit, covers checksums and signatures.
pub const MAX_TRAILER_BYTES: usize = 8 * 1024;

/// Most hex digits in a chunk size: 16 fill a u64, so more can only be leading zeros or an overflow.
const MAX_CHUNK_SIZE_DIGITS: usize = 16;

/// How a request's body is delimited (RFC 9112 §6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body.
    None,
    /// Exactly this many bytes follow the head.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// Why a body was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyError {
    /// The decoded body would exceed the configured maximum: 413.
    TooLarge,
    /// The chunked framing is broken (bad size, overflow, missing CRLF, oversized extension or trailers): 400,
    /// and the connection must close because the message boundary is lost (RFC 9112 §7.1).
    Malformed,
}

impl BodyError {
    /// The status this error is answered with. Both close the connection: the rest of the body is unread.
    pub fn status(self) -> u16 {
        match self {
            BodyError::TooLarge => 413,
            BodyError::Malformed => 400,
        }
    }

    /// A short human text for the error response body and the debug log.
    pub fn reason(self) -> &'static str {
        match self {
            BodyError::TooLarge => "request body too large",
            BodyError::Malformed => "malformed chunked body",
        }
    }
}

/// Appends `data` as one chunk (RFC 9112 §7.1): hex size, CRLF, data, CRLF. Empty data writes nothing,
/// since a zero-size chunk would end the body: use [`write_last_chunk`] for that.
pub fn write_chunk(out: &mut Vec<u8>, data: &[u8]) {
    if data.is_empty() {
        return;
    }
    out.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// Appends the last chunk and an empty trailer section: the end of a chunked body.
pub fn write_last_chunk(out: &mut Vec<u8>) {
    out.extend_from_slice(b"0\r\n\r\n");
}

/// Decodes a chunked body at the start of `buf`, appending the data to `out` (the caller clears it first).
///
/// `Ok(None)`: more bytes are needed (and `out` is left as it was). `Ok(Some(n))`: the body, trailers
/// included, ended after `n` bytes, and its data was appended to `out`.
/// Fails with [`BodyError::TooLarge`] as soon as the decoded size passes `max_body`, even before the end:
/// as soon as a chunk's size line arrives, before its data.
///
/// Each call walks every chunk line from the start again; for bodies cut into very many small chunks that
/// arrive over many reads, [`decode_chunked_resume`] does the same work once.
pub fn decode_chunked(
    buf: &[u8],
    max_body: u64,
    out: &mut Vec<u8>,
) -> Result<Option<usize>, BodyError> {
    let mut dry_run = ChunkedProgress::default();
    let Some(n) = scan_chunked(buf, max_body, &mut dry_run, |_| {})? else {
        return Ok(None);
    };
    out.reserve(usize::try_from(dry_run.decoded).unwrap_or(0));
    scan_chunked(buf, max_body, &mut ChunkedProgress::default(), |data| {
        out.extend_from_slice(data)
    })?;
    Ok(Some(n))
}

/// How far [`decode_chunked_resume`] got: the end of the last complete chunk, and the data size so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChunkedProgress {
    /// Bytes of the body (from its start) fully decoded: whole chunks only.
    consumed: usize,
    /// Data bytes appended to `out` so far.
    decoded: u64,
}

/// [`decode_chunked`] that picks up where the previous call on the same body stopped.
///
/// `buf` still starts at the body's first byte (with more bytes at its end than last time); `progress`
/// starts as `ChunkedProgress::default()` and is kept between calls, with `out`, which receives each
/// chunk's data as soon as the chunk is complete. Every byte is looked at a bounded number of times over
/// all calls. Results as for [`decode_chunked`].
pub fn decode_chunked_resume(
    buf: &[u8],
    max_body: u64,
    progress: &mut ChunkedProgress,
    out: &mut Vec<u8>,
) -> Result<Option<usize>, BodyError> {
    scan_chunked(buf, max_body, progress, |data| out.extend_from_slice(data))
}

/// Walks the chunked framing (RFC 9112 §7.1) from `progress`, handing each complete chunk's data to
/// `on_data` and moving `progress` past it. Returns where the whole body (trailers included) ends, or
/// `None` when incomplete.
fn scan_chunked(
    buf: &[u8],
    max_body: u64,
    progress: &mut ChunkedProgress,
    mut on_data: impl FnMut(&[u8]),
) -> Result<Option<usize>, BodyError> {
    loop {
        let pos = progress.consumed;
        let line_limit = pos.saturating_add(MAX_CHUNK_LINE_BYTES + 2);
        let (line, data_start) = match find_line(buf, pos, line_limit) {
            Line::Done { end, next } => (buf.get(pos..end).unwrap_or_default(), next),
            Line::Partial => return Ok(None),
            Line::Overlong | Line::BareLf => return Err(BodyError::Malformed),
        };
        let size = parse_chunk_line(line)?;
        if size == 0 {
            return scan_trailers(buf, data_start);
        }
        let decoded = progress
            .decoded
            .checked_add(size)
            .filter(|&t| t <= max_body)
            .ok_or(BodyError::TooLarge)?;
        let data_end = usize::try_from(size)
            .ok()
            .and_then(|size| data_start.checked_add(size))
            .ok_or(BodyError::TooLarge)?;
        // The chunk's data must be followed by CRLF (RFC 9112 §7.1): anything else means the size lied.
        match buf.get(data_end..) {
            Some([b'\r', b'\n', ..]) => {
                on_data(buf.get(data_start..data_end).unwrap_or_default());
                *progress = ChunkedProgress {
                    consumed: data_end + 2,
                    decoded,
                };
            }
            None | Some([] | [b'\r']) => return Ok(None),
            Some(_) => return Err(BodyError::Malformed),
        }
    }
}

/// A chunked body decoded as it arrives, for a body handed on piece by piece and never held whole
/// (a route that streams its request body). Unlike [`decode_chunked_resume`], a chunk's data is passed on
/// as soon as its bytes arrive, so a client's single huge chunk costs no more memory than small ones. The
/// grammar and its bounds are [`decode_chunked`]'s: chunk lines of at most [`MAX_CHUNK_LINE_BYTES`],
/// trailers of at most [`MAX_TRAILER_BYTES`], CRLF only.
#[derive(Debug)]
pub struct ChunkedStream {
    state: StreamState,
    /// Data bytes passed on so far.
    decoded: u64,
    max_body: u64,
    /// The chunk line, chunk-ending CRLF or trailer section read so far.
    pending: Vec<u8>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StreamState {
    SizeLine,
    /// Data bytes left in the current chunk.
    Data(u64),
    /// The CRLF after a chunk's data.
    DataEnd,
    Trailers,
    Done,
}

/// What one [`ChunkedStream::decode`] step took and found.
#[derive(Debug, PartialEq, Eq)]
pub struct Decoded {
    /// Input bytes consumed (framing and data).
    pub used: usize,
    /// Where the data this step found lies in the input (empty if none).
    pub data: std::ops::Range<usize>,
}

impl ChunkedStream {
    /// A decoder for a body of at most `max_body` data bytes.
    pub fn new(max_body: u64) -> ChunkedStream {
        ChunkedStream {
            state: StreamState::SizeLine,
            decoded: 0,
            max_body,
            pending: Vec::new(),
        }
    }

    /// Raises or lowers the most data bytes the body may have.
    pub fn set_max_body(&mut self, max_body: u64) {
        self.max_body = max_body;
    }

    /// Whether the body (trailers included) has ended.
    pub fn is_done(&self) -> bool {
        self.state == StreamState::Done
    }

    /// Reads framing from the start of `input` until it finds data (at most `max_data` bytes of it), the
    /// input runs out, or the body ends. Fails as [`decode_chunked`] does.
    pub fn decode(&mut self, input: &[u8], max_data: usize) -> Result<Decoded, BodyError> {
        let mut at = 0;
        loop {
            match self.state {
                StreamState::Done => {
                    return Ok(Decoded {
                        used: at,
                        data: at..at,
                    });
                }
                StreamState::Data(left) => {
                    let n = usize::try_from(left)
                        .unwrap_or(usize::MAX)
                        .min(input.len() - at)
                        .min(max_data);
                    self.state = match left - n as u64 {
                        0 => StreamState::DataEnd,
                        left => StreamState::Data(left),
                    };
                    return Ok(Decoded {
                        used: at + n,
                        data: at..at + n,
                    });
                }
                _ if at == input.len() => {
                    return Ok(Decoded {
                        used: at,
                        data: at..at,
                    });
                }
                StreamState::SizeLine => at += self.size_line(&input[at..])?,
                StreamState::DataEnd => at += self.data_end(&input[at..])?,
                StreamState::Trailers => at += self.trailers(&input[at..])?,
            }
        }
    }

    /// Takes bytes of the chunk line; at its end, moves to the chunk's data (or the trailers).
    fn size_line(&mut self, input: &[u8]) -> Result<usize, BodyError> {
        let (used, complete) = take_line(&mut self.pending, input, MAX_CHUNK_LINE_BYTES + 2)?;
        if complete {
            let size = parse_chunk_line(&self.pending[..self.pending.len() - 2])?;
            self.pending.clear();
            self.state = if size == 0 {
                StreamState::Trailers
            } else {
                self.decoded = self
                    .decoded
                    .checked_add(size)
                    .filter(|&total| total <= self.max_body)
                    .ok_or(BodyError::TooLarge)?;
                StreamState::Data(size)
            };
        }
        Ok(used)
    }

    /// Takes bytes of the CRLF that must end a chunk's data.
    fn data_end(&mut self, input: &[u8]) -> Result<usize, BodyError> {
        let n = (2 - self.pending.len()).min(input.len());
        self.pending.extend_from_slice(&input[..n]);
        if !b"\r\n".starts_with(&self.pending) {
            return Err(BodyError::Malformed);
        }
        if self.pending.len() == 2 {
            self.pending.clear();
            self.state = StreamState::SizeLine;
        }
        Ok(n)
    }

    /// Takes bytes of the trailer section, up to its end (and not beyond: what follows is the next request).
    fn trailers(&mut self, input: &[u8]) -> Result<usize, BodyError> {
        let before = self.pending.len();
        let room = (MAX_TRAILER_BYTES + 2).saturating_sub(before).max(1);
        self.pending
            .extend_from_slice(&input[..input.len().min(room)]);
        match scan_trailers(&self.pending, 0)? {
            Some(end) => {
                self.pending = Vec::new();
                self.state = StreamState::Done;
                Ok(end - before)
            }
            None => Ok(self.pending.len() - before),
        }
    }
}

/// Appends bytes of `input` to `line` up to and including a CRLF; returns how many it took and whether the
/// line is complete. A bare LF, or a line longer than `max` with its CRLF, is malformed.
fn take_line(line: &mut Vec<u8>, input: &[u8], max: usize) -> Result<(usize, bool), BodyError> {
    for (i, &byte) in input.iter().enumerate() {
        if byte == b'\n' && line.last() != Some(&b'\r') {
            return Err(BodyError::Malformed);
        }
        if line.last() == Some(&b'\r') && byte != b'\n' {
            return Err(BodyError::Malformed);
        }
        line.push(byte);
        if line.len() > max {
            return Err(BodyError::Malformed);
        }
        if byte == b'\n' {
            return Ok((i + 1, true));
        }
    }
    Ok((input.len(), false))
}

/// `chunk-size [ chunk-ext ]`: the size in hex (at most 16 digits, no `0x`), then extensions.
fn parse_chunk_line(line: &[u8]) -> Result<u64, BodyError> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 || digits > MAX_CHUNK_SIZE_DIGITS {
        return Err(BodyError::Malformed);
    }
    let (hex, extensions) = line.split_at(digits);
    let size = hex.iter().try_fold(0u64, |acc, &d| {
        let digit = char::from(d).to_digit(16).ok_or(BodyError::Malformed)?;
        acc.checked_mul(16)
            .and_then(|acc| acc.checked_add(u64::from(digit)))
            .ok_or(BodyError::Malformed)
    })?;
    check_extensions(extensions)?;
    Ok(size)
}

/// `*( BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ] )` (RFC 9112 §7.1.1). Read, not kept.
fn check_extensions(mut s: &[u8]) -> Result<(), BodyError> {
    while !s.is_empty() {
        let after_semicolon = skip_bws(s).strip_prefix(b";").ok_or(BodyError::Malformed)?;
        let (name, rest) = take_token(skip_bws(after_semicolon));
        if name.is_empty() {
            return Err(BodyError::Malformed);
        }
        s = rest;
        if let Some(value) = skip_bws(s).strip_prefix(b"=") {
            let value = skip_bws(value);
            s = if value.first() == Some(&b'"') {
                skip_quoted_string(value)?
            } else {
                let (token, rest) = take_token(value);
                if token.is_empty() {
                    return Err(BodyError::Malformed);
                }
                rest
            };
        }
    }
    Ok(())
}

fn skip_bws(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|&&b| b == b' ' || b == b'\t').count();
    s.get(n..).unwrap_or_default()
}

/// The leading token of `s` (possibly empty) and what follows it.
fn take_token(s: &[u8]) -> (&[u8], &[u8]) {
    let n = s.iter().take_while(|&&b| is_tchar(b)).count();
    s.split_at(n)
}

/// Skips a quoted-string (RFC 9110 §5.6.4) at the start of `s`, returning what follows it.
fn skip_quoted_string(s: &[u8]) -> Result<&[u8], BodyError> {
    let mut i = 1;
    loop {
        match s.get(i) {
            Some(b'"') => return Ok(s.get(i + 1..).unwrap_or_default()),
            Some(b'\\') => match s.get(i + 1) {
                Some(&b) if b == b'\t' || b >= 0x20 && b != 0x7f => i += 2,
                _ => return Err(BodyError::Malformed),
            },
            Some(&b) if b == b'\t' || b >= 0x20 && b != 0x7f => i += 1,
            _ => return Err(BodyError::Malformed),
        }
    }
}

/// The trailer section after the last chunk: field lines, then an empty line (RFC 9112 §7.1.2), at most
/// [`MAX_TRAILER_BYTES`]. Returns where the body ends.
fn scan_trailers(buf: &[u8], start: usize) -> Result<Option<usize>, BodyError> {
    let limit = start.saturating_add(MAX_TRAILER_BYTES);
    let mut pos = start;
    loop {
        match find_line(buf, pos, limit) {
            Line::Done { end, next } => {
                let line = buf.get(pos..end).unwrap_or_default();
                if line.is_empty() {
                    return Ok(Some(next));
                }
                parse_field_line(line).map_err(|_| BodyError::Malformed)?;
                pos = next;
            }
            Line::Partial => return Ok(None),
            Line::Overlong | Line::BareLf => return Err(BodyError::Malformed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MAX: u64 = 1 << 20;

    fn decode(buf: &[u8]) -> Result<Option<(usize, Vec<u8>)>, BodyError> {
        let mut out = Vec::new();
        Ok(decode_chunked(buf, MAX, &mut out)?.map(|n| (n, out)))
    }

    /// Chunked-encodes `data` in pieces of the given sizes (the last piece takes the rest).
    fn encode_chunked(data: &[u8], sizes: &[usize]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut rest = data;
        for &size in sizes.iter().chain(std::iter::once(&usize::MAX)) {
            if rest.is_empty() {
                break;
            }
            let (chunk, tail) = rest.split_at(size.clamp(1, rest.len()));
            write_chunk(&mut out, chunk);
            rest = tail;
        }
        write_last_chunk(&mut out);
        out
    }

    /// Decodes `buf` through a [`ChunkedStream`] fed in pieces of `piece` bytes, taking at most `window`
    /// data bytes per step; returns the data and the bytes the body took.
    fn decode_streamed(
        buf: &[u8],
        piece: usize,
        window: usize,
    ) -> Result<(usize, Vec<u8>), BodyError> {
        let mut stream = ChunkedStream::new(MAX);
        let mut data = Vec::new();
        let mut used = 0;
        while !stream.is_done() {
            let end = (used + piece).min(buf.len());
            if used == end {
                return Err(BodyError::Malformed); // incomplete: no more input
            }
            let step = stream.decode(&buf[used..end], window)?;
            data.extend_from_slice(&buf[used..end][step.data]);
            used += step.used;
        }
        Ok((used, data))
    }

    #[test]
    fn the_streamed_decoder_agrees_with_the_whole_one_in_any_pieces() {
        for (body, data) in valid_bodies() {
            let mut with_next = body.to_vec();
            with_next.extend_from_slice(b"GET / HTTP/1.1\r\n");
            for piece in [1, 2, 3, 7, 64] {
                for window in [1, 5, 4096] {
                    let (used, got) = decode_streamed(&with_next, piece, window).unwrap();
                    assert_eq!((used, &got[..]), (body.len(), data), "{body:?} in {piece}s");
                }
            }
        }
    }

    #[test]
    fn the_streamed_decoder_refuses_what_the_whole_one_refuses() {
        for bad in [
            &b"zz\r\n"[..],
            b"5\nhello",
            b"5\r\nhelloXX",
            b"1\r\na\r\n0\r\nbad trailer\r\n\r\n",
        ] {
            assert_eq!(
                decode_streamed(bad, 3, 16),
                Err(BodyError::Malformed),
                "{bad:?}"
            );
        }
        let mut big = ChunkedStream::new(4);
        assert_eq!(big.decode(b"5\r\n", 16), Err(BodyError::TooLarge));
        let long_line = [b'1'; MAX_CHUNK_LINE_BYTES + 8];
        assert_eq!(
            decode_streamed(&long_line, 64, 16),
            Err(BodyError::Malformed)
        );
    }

    #[test]
    fn a_huge_chunk_is_passed_on_as_it_arrives() {
        let mut stream = ChunkedStream::new(u64::MAX);
        let head = b"ffffffff\r\n";
        assert_eq!(
            stream.decode(head, 1024).unwrap(),
            Decoded {
                used: head.len(),
                data: head.len()..head.len()
            }
        );
        let step = stream.decode(&[7; 10_000], 1024).unwrap();
        assert_eq!(
            step,
            Decoded {
                used: 1024,
                data: 0..1024
            }
        );
    }

    fn valid_bodies() -> Vec<(&'static [u8], &'static [u8])> {
        vec![
            (b"0\r\n\r\n", b""),
            (b"5\r\nhello\r\n0\r\n\r\n", b"hello"),
            (b"5\r\nhello\r\n7\r\n, world\r\n0\r\n\r\n", b"hello, world"),
            (b"A\r\n0123456789\r\n00000\r\n\r\n", b"0123456789"),
            (b"a;name\r\n0123456789\r\n0;last\r\n\r\n", b"0123456789"),
            (
                b"3 ; a=b ;c\t=\t\"q \\\"x\\\" \xff\"\r\nabc\r\n0\r\n\r\n",
                b"abc",
            ),
            (
                b"3;tok=v-1\r\n\r\n\n\r\n0\r\nChecksum: abc\r\nX-Other:\t1 2 \r\n\r\n",
                b"\r\n\n",
            ),
            (b"0000000000000003\r\nxyz\r\n0\r\nT: \x80\r\n\r\n", b"xyz"),
        ]
    }

    #[test]
    fn valid_bodies_decode_whole_and_need_more_at_every_split() {
        for (raw, data) in valid_bodies() {
            let shown = String::from_utf8_lossy(raw);
            let mut buf = raw.to_vec();
            buf.extend_from_slice(b"GET /next HTTP/1.1\r\n");
            assert_eq!(
                decode(&buf),
                Ok(Some((raw.len(), data.to_vec()))),
                "{shown:?}"
            );
            for k in 0..raw.len() {
                let mut out = b"kept".to_vec();
                assert_eq!(
                    decode_chunked(&buf[..k], MAX, &mut out),
                    Ok(None),
                    "{shown:?} cut at {k}"
                );
                assert_eq!(out, b"kept", "{shown:?}: out touched while incomplete");
            }
        }
    }

    #[test]
    fn resumed_decoding_matches_whole_decoding_at_every_read_size() {
        for (raw, data) in valid_bodies() {
            for step in 1..=raw.len() {
                let (mut progress, mut out) = (ChunkedProgress::default(), Vec::new());
                let mut result = Ok(None);
                for end in (step..raw.len()).step_by(step).chain([raw.len()]) {
                    result = decode_chunked_resume(&raw[..end], MAX, &mut progress, &mut out);
                    if end < raw.len() {
                        assert_eq!(result, Ok(None), "{raw:?} read {end}");
                    }
                }
                assert_eq!(result, Ok(Some(raw.len())), "{raw:?} in reads of {step}");
                assert_eq!(out, data, "{raw:?} in reads of {step}");
            }
        }
        let (mut progress, mut out) = (ChunkedProgress::default(), Vec::new());
        let over = decode_chunked_resume(b"3\r\nabc\r\n3\r\n", 5, &mut progress, &mut out);
        assert_eq!(over, Err(BodyError::TooLarge));
    }

    #[test]
    fn malformed_bodies_are_refused() {
        let cases: &[&[u8]] = &[
            b"FFFFFFFFFFFFFFFFF\r\n",               // 17 digits
            b"00000000000000001\r\nx\r\n0\r\n\r\n", // 17 digits even if small
            b"0x5\r\nhello\r\n0\r\n\r\n",
            b"-5\r\nhello\r\n0\r\n\r\n",
            b"+5\r\nhello\r\n0\r\n\r\n",
            b"\r\nhello\r\n0\r\n\r\n",
            b" 5\r\nhello\r\n0\r\n\r\n",
            b"5 \r\nhello\r\n0\r\n\r\n",
            b"5;\r\nhello\r\n0\r\n\r\n",
            b"5;a=\r\nhello\r\n0\r\n\r\n",
            b"5;a=\"x\r\nhello\r\n0\r\n\r\n",
            b"5;a=b c\r\nhello\r\n0\r\n\r\n",
            b"5\nhello\r\n0\r\n\r\n",
            b"5\rhello\r\n0\r\n\r\n",
            b"5\r\nhelloXX0\r\n\r\n",
            b"5\r\nhello\n0\r\n\r\n",
            b"5\r\nhello\r\r\n0\r\n\r\n",
            b"3\r\nhello\r\n0\r\n\r\n",
            b"5\r\nhello\r\n0\r\nBad Name: x\r\n\r\n",
            b"5\r\nhello\r\n0\r\n folded: x\r\n\r\n",
            b"5\r\nhello\r\n0\r\nX: a\0b\r\n\r\n",
            b"5\r\nhello\r\n0\r\n\n",
            b"5\r\nhello\r\n0\r\nGET / HTTP/1.1\r\n\r\n",
        ];
        for raw in cases {
            assert_eq!(
                decode(raw),
                Err(BodyError::Malformed),
                "{:?}",
                String::from_utf8_lossy(raw)
            );
        }
    }

    #[test]
    fn chunk_lines_and_trailers_are_bounded() {
        let ext = format!("1;x={}\r\n", "v".repeat(MAX_CHUNK_LINE_BYTES));
        assert_eq!(decode(ext.as_bytes()), Err(BodyError::Malformed));
        // Refused before its end arrives.
        assert_eq!(
            decode(&ext.as_bytes()[..MAX_CHUNK_LINE_BYTES + 2]),
            Err(BodyError::Malformed)
        );
        let fits = format!(
            "1;x={}\r\nz\r\n0\r\n\r\n",
            "v".repeat(MAX_CHUNK_LINE_BYTES - 4)
        );
        assert_eq!(
            decode(fits.as_bytes()),
            Ok(Some((fits.len(), b"z".to_vec())))
        );
        let trailer = format!("0\r\nX: {}\r\n\r\n", "t".repeat(MAX_TRAILER_BYTES));
        assert_eq!(decode(trailer.as_bytes()), Err(BodyError::Malformed));
        assert_eq!(
            decode(&trailer.as_bytes()[..3 + MAX_TRAILER_BYTES]),
            Err(BodyError::Malformed)
        );
    }

    #[test]
    fn too_large_is_reported_as_soon_as_the_size_is_known() {
        let mut out = Vec::new();
        assert_eq!(
            decode_chunked(b"5\r\nhello\r\n0\r\n\r\n", 5, &mut out),
            Ok(Some(15))
        );
        assert_eq!(
            decode_chunked(b"5\r\nhello\r\n1\r\n", 5, &mut out),
            Err(BodyError::TooLarge)
        );
        assert_eq!(
            decode_chunked(b"6\r\n", 5, &mut out),
            Err(BodyError::TooLarge)
        );
        assert_eq!(
            decode_chunked(b"ffffffffffffffff\r\n", u64::MAX - 1, &mut out),
            Err(BodyError::TooLarge)
        );
        assert_eq!(
            decode_chunked(b"1\r\nx\r\nffffffffffffffff\r\n", u64::MAX, &mut out),
            Err(BodyError::TooLarge)
        );
        assert_eq!(BodyError::TooLarge.status(), 413);
        assert_eq!(BodyError::Malformed.status(), 400);
    }

    proptest! {
        #[test]
        fn decode_inverts_encode(
            data in proptest::collection::vec(any::<u8>(), 0..2000),
            sizes in proptest::collection::vec(1usize..300, 0..20),
            cut in any::<prop::sample::Index>(),
        ) {
            let encoded = encode_chunked(&data, &sizes);
            let mut buf = encoded.clone();
            buf.extend_from_slice(b"5\r\nnext!");
            prop_assert_eq!(decode(&buf), Ok(Some((encoded.len(), data))));
            let k = cut.index(encoded.len());
            prop_assert_eq!(decode(&encoded[..k]), Ok(None));
        }

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let mut out = Vec::new();
            if let Ok(Some(n)) = decode_chunked(&bytes, 64, &mut out) {
                prop_assert!(n <= bytes.len());
                prop_assert!(out.len() <= 64);
            }
        }
    }
}
