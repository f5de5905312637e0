//! Message body framing (RFC 9112 §6, §7): Content-Length and chunked transfer coding.
//!
//! OWNER: parser helper.

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

/// Decodes a chunked body at the start of `buf`, appending the data to `out` (the caller clears it first).
///
/// `Ok(None)`: more bytes are needed. `Ok(Some(n))`: the body, trailers included, ended after `n` bytes.
/// Fails with [`BodyError::TooLarge`] as soon as the decoded size passes `max_body`, even before the end.
pub fn decode_chunked(
    buf: &[u8],
    max_body: u64,
    out: &mut Vec<u8>,
) -> Result<Option<usize>, BodyError> {
    let _ = (buf, max_body, out);
    todo!("parser helper")
}
