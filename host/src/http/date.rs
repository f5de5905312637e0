//! The `Date` header value (RFC 9110 §6.6.1), formatted at most once per second.
