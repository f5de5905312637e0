//! One plugin version's counters: the requests its handler answered, their statuses and durations, and its
//! panics. A request is recorded once, when it is answered, into its route's series and its version's
//! ([`super::Batch`]): the version's latency is the latency of the requests it answered, from
//! their first byte, and costs no clock reading of its own. The admin listener reads them through the
//! plugin catalog (which adds the calls in flight, from the version's bulkhead). Each loaded version has
//! its own, so a version being replaced shows its own requests while the new one serves.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::events::EVENTS;
use super::registry::{SeriesId, free_series, take_series};
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

    /// The series its answers are recorded in, beside their route's.
    pub fn series(&self) -> SeriesId {
        self.series
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
    use std::time::Instant;

    use super::*;
    use crate::metrics::{Batch, Counted, unmatched_series};

    /// A request answered `status` by `counters`' version.
    fn answered(counters: &PluginCounters, status: u16) {
        let by = Counted {
            route: unmatched_series(),
            version: Some(counters.series()),
        };
        let mut batch = Batch::default();
        batch.answered(by, "GET", status, Instant::now());
        batch.publish();
    }

    #[test]
    fn a_version_counts_its_answers_statuses_and_panics() {
        super::super::registry::enable();
        let counters = PluginCounters::new();
        answered(&counters, 200);
        counters.panicked();
        answered(&counters, 500);
        let snapshot = counters.snapshot();
        assert_eq!(snapshot.requests, 2);
        assert_eq!(snapshot.errors_5xx, 1);
        assert_eq!(snapshot.panics, 1);
        assert!(snapshot.p50.is_some() && snapshot.p99 >= snapshot.p50);
    }

    #[test]
    fn a_new_version_starts_from_zero_even_on_a_reused_series() {
        super::super::registry::enable();
        let old = PluginCounters::new();
        answered(&old, 200);
        drop(old);
        let new = PluginCounters::new();
        assert_eq!(new.snapshot(), PluginSnapshot::default());
    }
}
