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
    /// Random per process: ids of two runs differ.
    prefix: u64,
    /// Requests given an id so far.
    counter: AtomicU64,
}

impl RequestId {
    fn new() -> RequestId {
        RequestId {
            prefix: RandomState::new().hash_one(std::process::id()),
            counter: AtomicU64::new(0),
        }
    }

    /// A fresh id: the prefix and the counter as 32 lowercase hex digits.
    fn fresh(&self) -> [u8; 32] {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let mut id = [0u8; 32];
        write_hex(&mut id[..16], self.prefix);
        write_hex(&mut id[16..], n);
        id
    }
}

fn write_hex(out: &mut [u8], value: u64) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (i, slot) in out.iter_mut().enumerate() {
        *slot = DIGITS[(value >> (60 - 4 * i)) as usize & 0xf];
    }
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
