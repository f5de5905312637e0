//! One plugin version's counters: its calls, their statuses and durations, its panics and the calls in
//! flight. The plugin wrappers record into them (`plugins/bulkhead.rs`, `plugins/adapter.rs`); the admin
//! listener reads them through the plugin catalog. Each loaded version has its own, so a version being
//! replaced shows its own requests draining while the new one serves.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::events::EVENTS;
use super::registry::{SeriesId, enabled, free_series, take_series};
use super::shards;

/// A plugin version's counters. Its series is given back (zeroed) when the last handle is dropped.
pub struct PluginCounters {
    series: SeriesId,
    /// Panics are rare: a shared counter is cheap enough.
    panics: AtomicU64,
}

/// A plugin version's counters at one moment.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PluginSnapshot {
    /// Calls answered (any status).
    pub requests: u64,
    /// Calls answered with a 5xx (a panic is a 500 too).
    pub errors_5xx: u64,
    pub panics: u64,
    /// Calls started and not yet answered.
    pub in_flight: u64,
    pub p50: Option<Duration>,
    pub p99: Option<Duration>,
}

impl Default for PluginCounters {
    fn default() -> Self {
        PluginCounters::new()
    }
}

impl PluginCounters {
    pub fn new() -> PluginCounters {
        PluginCounters {
            series: take_series(),
            panics: AtomicU64::new(0),
        }
    }

    /// A call starts; returns when, for [`PluginCounters::finished`] (`None` while counting is off).
    #[inline]
    pub fn started(&self) -> Option<Instant> {
        if !enabled() {
            return None;
        }
        shards::start(self.series.index());
        Some(Instant::now())
    }

    /// The call [`PluginCounters::started`] at `started` answered `status`.
    #[inline]
    pub fn finished(&self, started: Option<Instant>, method: &str, status: u16) {
        if let Some(started) = started {
            let micros = started.elapsed().as_micros() as u64;
            shards::finish(
                self.series.index(),
                shards::method_index(method),
                status,
                micros,
            );
        }
    }

    /// A call panicked (counted whether or not requests are).
    pub fn panicked(&self) {
        self.panics.fetch_add(1, Ordering::Relaxed);
        EVENTS.plugin_panics.count();
    }

    pub fn snapshot(&self) -> PluginSnapshot {
        let totals = shards::totals(self.series.index());
        let requests = totals.finished();
        PluginSnapshot {
            requests,
            errors_5xx: totals.of_class(4),
            panics: self.panics.load(Ordering::Relaxed),
            // Read shard by shard while calls go on: a call may be seen finished but not started.
            in_flight: totals.started.saturating_sub(requests),
            p50: totals.durations.quantile(0.5),
            p99: totals.durations.quantile(0.99),
        }
    }
}

impl Drop for PluginCounters {
    fn drop(&mut self) {
        free_series(self.series);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_counts_its_calls_statuses_and_calls_in_flight() {
        super::super::registry::enable();
        let counters = PluginCounters::new();
        let first = counters.started();
        let second = counters.started();
        counters.finished(first, "GET", 200);
        assert_eq!(counters.snapshot().in_flight, 1);
        counters.panicked();
        counters.finished(second, "GET", 500);
        let snapshot = counters.snapshot();
        assert_eq!(snapshot.requests, 2);
        assert_eq!(snapshot.errors_5xx, 1);
        assert_eq!(snapshot.panics, 1);
        assert_eq!(snapshot.in_flight, 0);
        assert!(snapshot.p50.is_some() && snapshot.p99 >= snapshot.p50);
    }

    #[test]
    fn a_new_version_starts_from_zero_even_on_a_reused_series() {
        super::super::registry::enable();
        let old = PluginCounters::new();
        let started = old.started();
        old.finished(started, "GET", 200);
        drop(old);
        let new = PluginCounters::new();
        assert_eq!(new.snapshot(), PluginSnapshot::default());
    }
}
