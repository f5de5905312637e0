//! Example filter `request-id`: every response carries an `X-Request-Id`, the same one plugd's access log
//! records for the request, so a line in a client's report, a proxy's log and plugd's log can be matched.
//!
//! A request that brings a well-formed `X-Request-Id` (from a proxy in front, or a client tracing its own
//! calls) keeps it; any other gets a fresh one: 32 hex digits, a random per-process prefix and a counter, so
//! no two requests of one run share an id and runs are told apart. No configuration.
//!
//! It needs only the response hook (which sees the request too): plugd never calls it on the way in, and
//! the id goes from a stack buffer straight into the response head plugd is building.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};

use plugin_api::filter::{Filter, FilterContext, Hooks, ResponseHead};
use plugin_api::Request;

/// The field the id travels in (plugd's access log reads the response's).
const FIELD: &str = "X-Request-Id";
/// Longest incoming id kept: longer ones are replaced (they would bloat every log line).
const MAX_INCOMING: usize = 128;

/// Hands out ids.
pub struct RequestId {
    /// A random per-process number as 16 hex digits, written once: ids of two runs differ.
    prefix: [u8; 16],
    /// Requests given an id so far.
    counter: AtomicU64,
}

impl RequestId {
    fn new() -> RequestId {
        RequestId {
            prefix: hex(RandomState::new().hash_one(std::process::id())),
            counter: AtomicU64::new(0),
        }
    }

    /// A fresh id: the prefix and the counter as 32 lowercase hex digits.
    fn fresh(&self) -> [u8; 32] {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let mut id = [0u8; 32];
        id[..16].copy_from_slice(&self.prefix);
        id[16..].copy_from_slice(&hex(n));
        id
    }
}

/// `value` as 16 lowercase hex digits, most significant first: each half's nibbles spread into the bytes of
/// a word, then made digits all at once (a byte-at-a-time loop cost about 150 instructions per id).
fn hex(value: u64) -> [u8; 16] {
    let mut digits = [0u8; 16];
    digits[..8].copy_from_slice(&hex_word((value >> 32) as u32).to_be_bytes());
    digits[8..].copy_from_slice(&hex_word(value as u32).to_be_bytes());
    digits
}

/// The 8 nibbles of `value`, the least significant in the lowest byte, each turned into its ASCII digit.
fn hex_word(value: u32) -> u64 {
    const EACH: u64 = u64::from_ne_bytes([1; 8]);
    let mut v = u64::from(value);
    v = (v | v << 16) & 0x0000_ffff_0000_ffff;
    v = (v | v << 8) & 0x00ff_00ff_00ff_00ff;
    v = (v | v << 4) & (EACH * 0x0f);
    // A nibble of 10 or more carries into bit 4 when 6 is added: those get `'a' - '0' - 10` more.
    let letters = ((v + EACH * 6) >> 4) & EACH;
    v + EACH * u64::from(b'0') + letters * u64::from(b'a' - b'0' - 10)
}

/// An incoming id worth keeping: 1 to 128 characters from `A-Z a-z 0-9 - _ . :` (what UUIDs, ULIDs and
/// the ids of common proxies use), nothing that could break a log line or a header.
fn well_formed(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_INCOMING
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

impl Filter for RequestId {
    fn hooks(&self) -> Hooks {
        Hooks::RESPONSE
    }

    fn on_response(&self, req: &Request<'_>, _cx: &FilterContext<'_>, head: &mut ResponseHead<'_>) {
        match req.header_str(FIELD).filter(|id| well_formed(id)) {
            Some(incoming) => head.set_header(FIELD, incoming),
            None => {
                let id = self.fresh();
                // Hex digits are ASCII.
                head.set_header(FIELD, std::str::from_utf8(&id).unwrap_or_default());
            }
        }
    }
}

plugin_api::export_filter! {
    name: "request-id",
    version: env!("CARGO_PKG_VERSION"),
    init: |_config| Ok(RequestId::new()),
}

#[cfg(test)]
mod tests {
    use plugin_api::testing::{TestFilter, TestRequest};
    use plugin_api::Response;

    fn id_of(filter: &TestFilter, request: TestRequest) -> String {
        let response = filter.call(request, Response::text("ok"));
        response.header("x-request-id").unwrap().to_owned()
    }

    #[test]
    fn every_request_gets_a_distinct_well_formed_id() {
        let filter = TestFilter::start(super::plugd_plugin).unwrap();
        let ids: Vec<String> = (0..100)
            .map(|_| id_of(&filter, TestRequest::get("/")))
            .collect();
        for id in &ids {
            assert_eq!(id.len(), 32);
            assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
        }
        let mut unique = ids.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), ids.len());
    }

    #[test]
    fn hex_digits_match_the_formatter() {
        for value in [
            0,
            1,
            0xf,
            0x10,
            0x9a,
            0xdead_beef,
            u64::MAX,
            0x0123_4567_89ab_cdef,
        ] {
            let digits = super::hex(value);
            assert_eq!(
                std::str::from_utf8(&digits).unwrap(),
                format!("{value:016x}")
            );
        }
    }

    #[test]
    fn a_well_formed_incoming_id_is_kept_and_a_bad_one_replaced() {
        let filter = TestFilter::start(super::plugd_plugin).unwrap();
        let kept = TestRequest::get("/").header("X-Request-Id", "trace-7f3a:01");
        assert_eq!(id_of(&filter, kept), "trace-7f3a:01");
        for bad in ["", "a b", "x\"y", &"z".repeat(129)] {
            let replaced = id_of(&filter, TestRequest::get("/").header("X-Request-Id", bad));
            assert_eq!(replaced.len(), 32, "{bad:?}");
        }
    }

    #[test]
    fn the_handlers_own_id_field_is_replaced_not_doubled() {
        let filter = TestFilter::start(super::plugd_plugin).unwrap();
        let inner = Response::text("ok").with_header("X-Request-Id", "from-handler");
        let response = filter.call(TestRequest::get("/"), inner);
        let ids: Vec<_> = response
            .headers()
            .filter(|(n, _)| n.eq_ignore_ascii_case("x-request-id"))
            .collect();
        assert_eq!(ids.len(), 1);
        assert_ne!(ids[0].1, "from-handler");
    }
}
