//! HTTP/1.1 wire format, kept free of sockets so every rule can be unit-tested and fuzzed:
//! request heads ([`parse`], with its one-pass fast path in [`scan`] and the field list in [`headers`]),
//! message body framing ([`body`]), response heads ([`response`]) and the fields filters append to them
//! ([`appended`]), the cached `Date` value ([`date`]) and
//! percent-decoding ([`percent`]); [`syntax`] is the leaf they share (byte classes, line ends, tokens,
//! field lines).

pub(crate) mod appended;
pub mod body;
pub(crate) mod date;
pub(crate) mod headers;
pub(crate) mod parse;
pub mod percent;
pub(crate) mod response;
mod scan;
pub(crate) mod syntax;

pub use body::BodyFraming;
pub use headers::{Header, Headers};
pub use parse::{HeadLimits, ParseError, RequestHead, parse_head};
pub use syntax::Version;
