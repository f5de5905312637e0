//! Rate limiting built into the host, checked before any plugin code runs (docs/ARCHITECTURE.md §16):
//! `[rate_limit] requests_per_second = R, burst = B` gives each client address a token bucket; a request
//! over it gets `429 Too Many Requests` with `Retry-After`, and no filter or handler sees it.
//!
//! - `table.rs`: the buckets, in a table of fixed size (bounded memory whatever the number of clients).
//! - `client.rs`: who the client is: the peer, or behind `trusted_proxies` the address they forwarded.
//! - `concurrent.rs`: open connections per client address (`--max-connections-per-client`).
//!
//! With `headers = true` every limited path's answer also carries the IETF draft's `RateLimit-Policy` and
//! `RateLimit` fields (draft-ietf-httpapi-ratelimit-headers-08): the quota and window, then what remains.

mod client;
mod concurrent;
mod table;

use std::time::Instant;

pub use client::{Cidr, TrustedProxies};
pub use concurrent::{ClientConnections, ClientSlot};
pub use table::{BucketTable, Verdict, WAYS};

use crate::handler::{Request, Response};

/// Who answered a request the limiter refused, for the access log.
pub const RATE_LIMITED: &str = "rate-limit";

/// Sets of [`WAYS`] buckets in the table: 65,536 clients limited exactly at once, in 2.25 MiB (32-byte slots,
/// a lock per set: 144 bytes a set), allocated once whatever the traffic.
pub const TABLE_SETS: usize = 16 * 1024;

/// The `[rate_limit]` settings.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Sustained requests per second per client.
    pub requests_per_second: f64,
    /// Requests a client may make at once after being idle.
    pub burst: u32,
    /// Path prefixes the limit applies to; empty: every path.
    pub paths: Vec<String>,
    /// Whether answers carry the draft `RateLimit` / `RateLimit-Policy` fields.
    pub draft_fields: bool,
}

/// The per-client request limit of one server.
pub struct RateLimiter {
    buckets: BucketTable,
    paths: Vec<String>,
    proxies: TrustedProxies,
    /// The `RateLimit-Policy` value, when the draft fields are on.
    policy: Option<String>,
    /// Zero on the limiter's microsecond clock.
    epoch: Instant,
}

impl RateLimiter {
    pub fn new(settings: &Settings, proxies: TrustedProxies) -> RateLimiter {
        let window = (f64::from(settings.burst) / settings.requests_per_second).ceil() as u64;
        RateLimiter {
            buckets: BucketTable::new(TABLE_SETS, settings.requests_per_second, settings.burst),
            paths: settings.paths.clone(),
            proxies,
            policy: settings
                .draft_fields
                .then(|| format!("\"default\";q={};w={}", settings.burst, window.max(1))),
            epoch: Instant::now(),
        }
    }

    /// Takes a token for `req` at `now` from its client's bucket; `None` when the limit does not apply to
    /// its path.
    #[inline]
    pub fn check(&self, req: &Request<'_>, now: Instant) -> Option<Verdict> {
        let path = req.head.path;
        if !self.paths.is_empty() && !self.paths.iter().any(|p| path.starts_with(p.as_str())) {
            return None;
        }
        let client = self.proxies.client(req.peer.ip(), req.head);
        let micros = now.saturating_duration_since(self.epoch).as_micros() as u64;
        Some(self.buckets.take(client::bits(client), micros))
    }

    /// The 429 for a client over its limit, who may retry in `retry_micros`.
    fn refusal(&self, retry_micros: u64) -> Response {
        let retry_after = retry_micros.div_ceil(1_000_000).max(1);
        let response = Response::text(429, "Too Many Requests\n")
            .with_header("Retry-After", retry_after.to_string());
        self.with_draft_fields(response, 0, retry_after)
    }

    /// `response` with the draft fields, when they are on.
    fn with_draft_fields(&self, response: Response, remaining: u32, reset_secs: u64) -> Response {
        match &self.policy {
            None => response,
            Some(policy) => response
                .with_header("RateLimit-Policy", policy.clone())
                .with_header(
                    "RateLimit",
                    format!("\"default\";r={remaining};t={reset_secs}"),
                ),
        }
    }
}

/// Answers `req` with `answer`, unless `limiter` finds its client over the limit: then with a 429, and
/// `answer` (every filter and handler) never runs.
pub fn admit<'a, By: From<&'a str>>(
    limiter: &RateLimiter,
    req: &Request<'_>,
    now: Instant,
    answer: impl FnOnce() -> (Response, By),
) -> (Response, By) {
    match limiter.check(req, now) {
        None => answer(),
        Some(Verdict::Limited { retry_micros }) => {
            (limiter.refusal(retry_micros), By::from(RATE_LIMITED))
        }
        Some(Verdict::Allowed {
            remaining,
            reset_micros,
        }) => {
            let (response, owner) = answer();
            let reset_secs = reset_micros.div_ceil(1_000_000);
            (
                limiter.with_draft_fields(response, remaining, reset_secs),
                owner,
            )
        }
    }
}
