//! What plugd counts about its requests, for the admin listener (`docs/ARCHITECTURE.md` §17): requests by
//! route, method and status class, a duration histogram per route, bytes in and out, each plugin version's
//! calls, panics and requests in flight, and the rare events (plugin loads, refusals, reloads, panics).
//!
//! Recording is off until [`enable`] (the admin listener turns it on): off, each hook on the request path
//! costs one relaxed load. On, it costs a clock reading and a few stores into the worker's own shard
//! ([`shards`]), never a shared lock or a contended atomic; readers add the shards up.
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

use std::time::Instant;

pub use events::{EVENTS, Event, Events};
pub use histogram::Histogram;
pub use plugin::{PluginCounters, PluginSnapshot};
pub use registry::{
    NO_ROUTE, RouteKey, SeriesId, enable, enabled, route_series, route_totals, unmatched_series,
};
pub use shards::{METHODS, SeriesTotals};

/// A request of `series` with method `method` answered `status`, having started at `started`.
#[inline]
pub fn record_request(series: SeriesId, method: &str, status: u16, started: Instant) {
    if !enabled() {
        return;
    }
    let micros = started.elapsed().as_micros() as u64;
    shards::finish(series.index(), shards::method_index(method), status, micros);
}

/// A request refused before its head was read, answered `status`; `first_line` is as much of its request
/// line as came (its first word counts as the method when it is one; else, or empty, as `other`).
pub fn record_refusal(first_line: &[u8], status: u16, started: Instant) {
    if !enabled() {
        return;
    }
    let method = first_line.split(|&b| b == b' ').next().unwrap_or_default();
    let method = std::str::from_utf8(method).unwrap_or_default();
    record_request(registry::refused_series(), method, status, started);
}

/// `n` bytes read from a client connection.
#[inline]
pub fn count_bytes_in(n: usize) {
    if enabled() {
        shards::bytes_in(n as u64);
    }
}

/// `n` bytes written to a client connection.
#[inline]
pub fn count_bytes_out(n: usize) {
    if enabled() {
        shards::bytes_out(n as u64);
    }
}

/// Bytes read from and written to client connections since startup.
pub fn bytes() -> (u64, u64) {
    shards::bytes()
}
