//! Per-worker counters, summed when read: the request path never shares a lock or a contended atomic.
//!
//! Each thread that records gets a [`Shard`] of its own (a thread-local handle to it), which only that
//! thread writes: a counter is bumped with a relaxed load and a relaxed store (plain `mov`s on x86, no
//! `lock` prefix), and a reader adds up every shard's values. Shards are cache-line aligned, and so is each
//! chunk of series cells, so two workers never write the same cache line.
//!
//! A series (one route, or one plugin version) is an index into every shard. Its cells live in chunks of
//! [`CHUNK`] series allocated by the shard's owner the first time it records one of them: a worker that
//! never serves a route never pays for its cells, and a chunk is never moved, so readers need no lock.
//!
//! A thread that ends gives its shard back to a free list (its counts stay in the sums), and the next new
//! thread takes it over: the elastic pool's retiring workers do not grow the list of shards.

use std::cell::OnceCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use super::histogram::{BUCKETS, Histogram, bucket_of};

/// Status classes counted apart: 1xx .. 5xx (a status outside 100..=599 counts as 5xx).
pub const CLASSES: usize = 5;
/// Request methods counted apart: RFC 9110's and PATCH, then one slot for any other.
pub const METHODS: [&str; 10] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "other",
];
/// Series per chunk of cells: about 9 KiB per worker that records one of them.
const CHUNK: usize = 16;
/// Chunks per shard, so at most `CHUNK * MAX_CHUNKS` series (4,096 routes and plugin versions).
const MAX_CHUNKS: usize = 256;
/// The most series recorded; a series beyond it is registered but counts nothing.
pub const MAX_SERIES: usize = CHUNK * MAX_CHUNKS;

/// The slot of `method` in [`METHODS`].
pub fn method_index(method: &str) -> usize {
    match method {
        "GET" => 0,
        "HEAD" => 1,
        "POST" => 2,
        "PUT" => 3,
        "DELETE" => 4,
        "CONNECT" => 5,
        "OPTIONS" => 6,
        "TRACE" => 7,
        "PATCH" => 8,
        _ => 9,
    }
}

/// The class slot of `status`: 0 for 1xx .. 4 for 5xx.
pub fn class_index(status: u16) -> usize {
    match status {
        100..=599 => usize::from(status / 100 - 1),
        _ => CLASSES - 1,
    }
}

/// A counter written by one thread only, read by any.
#[derive(Default)]
pub(super) struct Counter(AtomicU64);

impl Counter {
    /// Adds `n`. Only the shard's owner calls it, so load-then-store loses nothing and needs no atomic
    /// read-modify-write.
    fn add(&self, n: u64) {
        self.0.store(
            self.0.load(Ordering::Relaxed).wrapping_add(n),
            Ordering::Relaxed,
        );
    }

    fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    fn reset(&self) {
        self.0.store(0, Ordering::Relaxed);
    }
}

/// One series' counts in one shard.
#[derive(Default)]
struct Cells {
    /// Finished requests by method and status class.
    requests: [[Counter; CLASSES]; METHODS.len()],
    durations: [Counter; BUCKETS + 1],
    sum_micros: Counter,
}

#[repr(align(64))]
struct Chunk([Cells; CHUNK]);

/// One thread's counters.
#[repr(align(64))]
pub(super) struct Shard {
    bytes_in: Counter,
    bytes_out: Counter,
    chunks: [OnceLock<Box<Chunk>>; MAX_CHUNKS],
}

impl Shard {
    fn new() -> Shard {
        Shard {
            bytes_in: Counter::default(),
            bytes_out: Counter::default(),
            chunks: std::array::from_fn(|_| OnceLock::new()),
        }
    }

    /// The cells of `series`, allocated on first use (by the owner only).
    fn cells(&self, series: usize) -> Option<&Cells> {
        let chunk = self.chunks.get(series / CHUNK)?;
        let chunk =
            chunk.get_or_init(|| Box::new(Chunk(std::array::from_fn(|_| Cells::default()))));
        Some(&chunk.0[series % CHUNK])
    }

    /// `count` requests of `route`'s series (and of the plugin version's, `version`) with method slot
    /// `method` finished with `status`, each after `micros`. Only the shard's owner calls it.
    pub(super) fn finish(
        &self,
        (route, version): (usize, Option<usize>),
        (method, status): (usize, u16),
        (count, micros): (u64, u64),
    ) {
        let (class, bucket) = (class_index(status), bucket_of(micros));
        for series in std::iter::once(route).chain(version) {
            if let Some(cells) = self.cells(series) {
                cells.requests[method][class].add(count);
                cells.durations[bucket].add(count);
                cells.sum_micros.add(micros * count);
            }
        }
    }

    /// Bytes read from and written to client connections. Only the shard's owner calls it.
    pub(super) fn add_bytes(&self, read: u64, written: u64) {
        self.bytes_in.add(read);
        self.bytes_out.add(written);
    }

    /// The cells of `series` if this shard ever recorded one of its chunk.
    fn existing_cells(&self, series: usize) -> Option<&Cells> {
        Some(&self.chunks.get(series / CHUNK)?.get()?.0[series % CHUNK])
    }
}

/// Every shard ever handed out, and those whose thread ended.
struct Shards {
    all: Vec<Arc<Shard>>,
    free: Vec<Arc<Shard>>,
}

static SHARDS: Mutex<Shards> = Mutex::new(Shards {
    all: Vec::new(),
    free: Vec::new(),
});

fn shards() -> std::sync::MutexGuard<'static, Shards> {
    // Each change is one push or pop: a poisoned list is still whole.
    SHARDS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A thread's claim on its shard, given back when the thread ends.
struct Mine(Arc<Shard>);

impl Mine {
    fn claim() -> Mine {
        let mut shards = shards();
        if let Some(shard) = shards.free.pop() {
            return Mine(shard);
        }
        let shard = Arc::new(Shard::new());
        shards.all.push(Arc::clone(&shard));
        Mine(shard)
    }
}

impl Drop for Mine {
    fn drop(&mut self) {
        shards().free.push(Arc::clone(&self.0));
    }
}

thread_local! {
    static MINE: OnceCell<Mine> = const { OnceCell::new() };
}

/// Runs `record` on the calling thread's shard (nothing while the thread is being torn down).
pub(super) fn record(record: impl FnOnce(&Shard)) {
    let _ = MINE.try_with(|mine| record(&mine.get_or_init(Mine::claim).0));
}

/// A request of `series` finished with `status` after `micros`, recorded in the calling thread's shard.
pub(super) fn finish(series: (usize, Option<usize>), method: usize, status: u16, micros: u64) {
    record(|shard| shard.finish(series, (method, status), (1, micros)));
}

/// One series' counts summed over every shard.
#[derive(Clone, Debug, Default)]
pub struct SeriesTotals {
    /// Finished requests by method slot ([`METHODS`]) and status class.
    pub requests: [[u64; CLASSES]; METHODS.len()],
    pub durations: Histogram,
}

impl SeriesTotals {
    pub fn finished(&self) -> u64 {
        self.requests.iter().flatten().sum()
    }

    /// Finished requests of status class `class` (0 for 1xx .. 4 for 5xx), any method.
    pub fn of_class(&self, class: usize) -> u64 {
        self.requests.iter().map(|by_class| by_class[class]).sum()
    }

    fn add_cells(&mut self, cells: &Cells) {
        for (mine, theirs) in self
            .requests
            .iter_mut()
            .flatten()
            .zip(cells.requests.iter().flatten())
        {
            *mine += theirs.get();
        }
        for (mine, theirs) in self.durations.counts.iter_mut().zip(&cells.durations) {
            *mine += theirs.get();
        }
        self.durations.sum_micros += cells.sum_micros.get();
    }
}

/// `series`' counts summed over every shard.
pub(super) fn totals(series: usize) -> SeriesTotals {
    let mut totals = SeriesTotals::default();
    for shard in &shards().all {
        if let Some(cells) = shard.existing_cells(series) {
            totals.add_cells(cells);
        }
    }
    totals
}

/// Every series below `count` summed over every shard, in one pass over the shards.
pub(super) fn all_totals(count: usize) -> Vec<SeriesTotals> {
    let mut totals = vec![SeriesTotals::default(); count.min(MAX_SERIES)];
    for shard in &shards().all {
        for (series, total) in totals.iter_mut().enumerate() {
            if let Some(cells) = shard.existing_cells(series) {
                total.add_cells(cells);
            }
        }
    }
    totals
}

/// Bytes read from and written to client connections, summed over every shard.
pub(super) fn bytes() -> (u64, u64) {
    shards().all.iter().fold((0, 0), |(read, written), shard| {
        (read + shard.bytes_in.get(), written + shard.bytes_out.get())
    })
}

/// Zeroes `series` in every shard, for reuse by a new series. Its owner is gone: nobody records into it.
pub(super) fn reset(series: usize) {
    for shard in &shards().all {
        if let Some(cells) = shard.existing_cells(series) {
            cells.requests.iter().flatten().for_each(Counter::reset);
            cells.durations.iter().for_each(Counter::reset);
            cells.sum_micros.reset();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_methods_find_their_slots() {
        assert_eq!(class_index(200), 1);
        assert_eq!(class_index(404), 3);
        assert_eq!(class_index(599), 4);
        assert_eq!(class_index(0), 4);
        assert_eq!(METHODS[method_index("PATCH")], "PATCH");
        assert_eq!(METHODS[method_index("BREW")], "other");
    }

    #[test]
    fn counts_from_several_threads_add_up_and_survive_the_threads() {
        // Series numbers no other test in this process uses.
        let series = MAX_SERIES - 1;
        let threads: Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        finish((series, None), method_index("GET"), 200, 10);
                    }
                    finish((series, Some(series - 1)), method_index("POST"), 503, 5000);
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(
            totals(series - 1).finished(),
            4,
            "the second series counts alike"
        );
        let totals = totals(series);
        assert_eq!(totals.finished(), 4004);
        assert_eq!(totals.requests[0][1], 4000);
        assert_eq!(totals.of_class(4), 4);
        assert_eq!(totals.durations.count(), 4004);
        assert_eq!(totals.durations.sum_micros, 4000 * 10 + 4 * 5000);
        reset(series);
        assert_eq!(totals_of_reset(series), 0);
    }

    fn totals_of_reset(series: usize) -> u64 {
        let totals = totals(series);
        totals.finished() + totals.durations.count()
    }

    #[test]
    fn a_series_past_the_last_chunk_counts_nothing_and_harms_nothing() {
        finish((MAX_SERIES, Some(MAX_SERIES + 1)), 0, 200, 1);
        assert_eq!(totals(MAX_SERIES).finished(), 0);
    }
}
