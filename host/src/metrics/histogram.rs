//! Request durations in fixed, log-spaced buckets: bucket `i` counts durations up to 2^i microseconds
//! (1 µs ... 8.4 s), the last one everything longer. Finding a bucket is one `leading_zeros`, so recording
//! costs no search, and every histogram of every worker has the same bounds, so they add up bucket by
//! bucket. A quantile read from them is exact to within a factor of two, which is what a dashboard's p99
//! needs (the requests are either microseconds or milliseconds, never "12% slower").

use std::time::Duration;

/// Finite buckets: upper bounds 2^0 .. 2^23 microseconds (8.39 s); [`BUCKETS`] itself is the `+Inf` bucket.
pub const BUCKETS: usize = 24;

/// The bucket a duration of `micros` microseconds falls in: the first whose bound is `>= micros`.
pub fn bucket_of(micros: u64) -> usize {
    if micros <= 1 {
        return 0;
    }
    ((u64::BITS - (micros - 1).leading_zeros()) as usize).min(BUCKETS)
}

/// The upper bound of finite bucket `i`, in microseconds.
pub fn upper_bound_micros(i: usize) -> u64 {
    1 << i
}

/// One histogram summed over every worker: counts per bucket (not cumulative) and the total time.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Histogram {
    pub counts: [u64; BUCKETS + 1],
    pub sum_micros: u64,
}

impl Histogram {
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    pub fn add(&mut self, other: &Histogram) {
        for (mine, theirs) in self.counts.iter_mut().zip(other.counts) {
            *mine += theirs;
        }
        self.sum_micros += other.sum_micros;
    }

    /// The duration below which a fraction `q` (0..=1) of the observations fall, interpolated linearly
    /// inside its bucket; `None` without observations. A quantile in the `+Inf` bucket reads as its lower
    /// bound (the longest finite one).
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let rank = (q.clamp(0.0, 1.0) * total as f64).max(1.0);
        let mut below = 0u64;
        for (i, &count) in self.counts.iter().enumerate() {
            if count == 0 || ((below + count) as f64) < rank {
                below += count;
                continue;
            }
            if i == BUCKETS {
                break;
            }
            let low = if i == 0 { 0 } else { upper_bound_micros(i - 1) } as f64;
            let high = upper_bound_micros(i) as f64;
            let within = (rank - below as f64) / count as f64;
            return Some(Duration::from_secs_f64((low + (high - low) * within) / 1e6));
        }
        Some(Duration::from_micros(upper_bound_micros(BUCKETS - 1)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_duration_lands_in_the_first_bucket_whose_bound_holds_it() {
        for (micros, bucket) in [
            (0, 0),
            (1, 0),
            (2, 1),
            (3, 2),
            (4, 2),
            (5, 3),
            (1024, 10),
            (1025, 11),
        ] {
            assert_eq!(bucket_of(micros), bucket, "{micros} µs");
        }
        assert_eq!(bucket_of(upper_bound_micros(BUCKETS - 1)), BUCKETS - 1);
        assert_eq!(bucket_of(upper_bound_micros(BUCKETS - 1) + 1), BUCKETS);
        assert_eq!(bucket_of(u64::MAX), BUCKETS);
    }

    #[test]
    fn quantiles_fall_within_the_bucket_of_the_ranked_observation() {
        let mut histogram = Histogram::default();
        assert_eq!(histogram.quantile(0.5), None);
        // 99 requests of 10 µs (bucket 8..16], one of 3 ms (bucket 2048..4096].
        histogram.counts[bucket_of(10)] = 99;
        histogram.counts[bucket_of(3000)] = 1;
        let p50 = histogram.quantile(0.5).unwrap();
        assert!(
            p50 > Duration::from_micros(8) && p50 <= Duration::from_micros(16),
            "{p50:?}"
        );
        let p99 = histogram.quantile(0.99).unwrap();
        assert!(p99 <= Duration::from_micros(16), "{p99:?}");
        let max = histogram.quantile(1.0).unwrap();
        assert!(
            max > Duration::from_micros(2048) && max <= Duration::from_micros(4096),
            "{max:?}"
        );
    }

    #[test]
    fn histograms_of_workers_add_up() {
        let mut a = Histogram::default();
        a.counts[3] = 2;
        a.sum_micros = 10;
        let mut b = Histogram::default();
        b.counts[3] = 1;
        b.counts[BUCKETS] = 1;
        b.sum_micros = 9_000_000;
        a.add(&b);
        assert_eq!(a.count(), 4);
        assert_eq!(a.counts[3], 3);
        assert_eq!(a.sum_micros, 9_000_010);
        assert_eq!(
            a.quantile(1.0),
            Some(Duration::from_micros(upper_bound_micros(BUCKETS - 1)))
        );
    }
}
