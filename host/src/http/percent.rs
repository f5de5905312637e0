//! Percent-decoding (RFC 3986 §2.1), done exactly once, by whoever interprets a path. The decoder is
//! plugin-api's, so plugd and a plugin's unit tests (`plugin_api::testing`) refuse exactly the same input.

pub use plugin_api::percent::decode;
