//! Percent-decoding (RFC 3986 §2.1).
//!
//! OWNER: parser helper.
