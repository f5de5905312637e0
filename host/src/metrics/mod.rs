//! What plugd counts about its requests, for the admin listener (`docs/ARCHITECTURE.md` §17): requests by
//! route, method and status class, a duration histogram per route, bytes in and out, each plugin version's
//! calls, panics and requests in flight, and the rare events (plugin loads, refusals, reloads, panics).
//!
//! Recording is off until [`enable`] (the admin listener turns it on): off, each hook on the request path
//! costs one relaxed load. On, the requests a worker answers in one wake-up are noted in its [`Batch`]
//! and recorded together when their answers are written: one clock reading (a request's start is the
//! connection's reading of the wake-up that brought its first byte) and one visit to the worker's own
//! shard ([`shards`]) per wake-up, never a shared lock or a contended atomic; readers add the shards up.
//! A plugin version's answers are recorded in the same visit, into its own series beside its route's
//! (`docs/ARCHITECTURE.md` §17.2).
//!
//! The registry is process-wide, like the `log` facade's logger: the hooks sit in the connection code and
//! the plugin wrappers, which would otherwise all need a handle passed down to them. A route keeps its
//! series across router rebuilds (it is named by method and pattern), so its counters only ever grow, as
//! Prometheus expects of a counter.

mod events;
mod histogram;
mod plugin;
pub mod prometheus;
mod registry;
mod shards;

use std::time::{Duration, Instant};

pub use events::{EVENTS, Event, Events};
pub use histogram::Histogram;
pub use plugin::{PluginCounters, PluginSnapshot};
pub use registry::{
    NO_ROUTE, RouteKey, SeriesId, enable, enabled, route_series, route_totals, unmatched_series,
};
pub use shards::{METHODS, SeriesTotals};

/// Who answered a request, as its counters see it: the series of the route (or of no route), and the
/// series of the plugin version whose handler answered, if one did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Counted {
    pub route: SeriesId,
    pub version: Option<SeriesId>,
}

/// A request refused before its head was read, answered `status`; `first_line` is as much of its request
/// line as came (its first word counts as the method when it is one; else, or empty, as `other`).
pub fn record_refusal(first_line: &[u8], status: u16, started: Instant) {
    if !enabled() {
        return;
    }
    let method = first_line.split(|&b| b == b' ').next().unwrap_or_default();
    let method = shards::method_index(std::str::from_utf8(method).unwrap_or_default());
    let series = (registry::refused_series().index(), None);
    shards::finish(series, method, status, whole_micros(started.elapsed()));
}

/// What one worker's wake-up counted, kept in plain fields until its answers are written, then recorded
/// with one clock reading and one visit to the worker's shard ([`Batch::publish`]). Pipelined requests
/// alike (same route, method, status and start) are noted as one with a count. A worker keeps one and
/// reuses it: noting a request allocates nothing once it has grown to a wake-up's requests.
#[derive(Default)]
pub struct Batch {
    answered: Vec<(Answered, u64)>,
    bytes_in: u64,
    bytes_out: u64,
}

/// Answered requests alike, as [`Batch`] keeps them.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Answered {
    by: Counted,
    method: u8,
    status: u16,
    started: Instant,
}

impl Batch {
    /// A request with method `method`, answered `status` by `by`, having started at `started`.
    #[inline]
    pub fn answered(&mut self, by: Counted, method: &str, status: u16, started: Instant) {
        if !enabled() {
            return;
        }
        let answered = Answered {
            by,
            method: shards::method_index(method) as u8,
            status,
            started,
        };
        match self.answered.last_mut() {
            Some((last, count)) if *last == answered => *count += 1,
            _ => self.answered.push((answered, 1)),
        }
    }

    /// `n` bytes read from a client connection.
    #[inline]
    pub fn read(&mut self, n: usize) {
        self.bytes_in += n as u64;
    }

    /// `n` bytes written to a client connection.
    #[inline]
    pub fn wrote(&mut self, n: usize) {
        self.bytes_out += n as u64;
    }

    /// Records what was noted since the last call: the requests' durations end now (their answers are
    /// being written).
    #[inline]
    pub fn publish(&mut self) {
        if !enabled() || (self.answered.is_empty() && (self.bytes_in | self.bytes_out) == 0) {
            return;
        }
        self.record();
    }

    fn record(&mut self) {
        let now = Instant::now();
        let (bytes_in, bytes_out) = (self.bytes_in, self.bytes_out);
        (self.bytes_in, self.bytes_out) = (0, 0);
        shards::record(|shard| {
            shard.add_bytes(bytes_in, bytes_out);
            for (answered, count) in self.answered.drain(..) {
                let micros = whole_micros(now.saturating_duration_since(answered.started));
                let series = (
                    answered.by.route.index(),
                    answered.by.version.map(SeriesId::index),
                );
                let method = answered.method.into();
                shard.finish(series, (method, answered.status), (count, micros));
            }
        });
    }
}

/// `elapsed` in whole microseconds, without `Duration::as_micros`'s 128-bit arithmetic.
fn whole_micros(elapsed: Duration) -> u64 {
    elapsed
        .as_secs()
        .saturating_mul(1_000_000)
        .saturating_add(u64::from(elapsed.subsec_micros()))
}

/// `n` bytes written to a client connection.
#[inline]
pub fn count_bytes_out(n: usize) {
    if enabled() {
        shards::record(|shard| shard.add_bytes(0, n as u64));
    }
}

/// Bytes read from and written to client connections since startup.
pub fn bytes() -> (u64, u64) {
    shards::bytes()
}
