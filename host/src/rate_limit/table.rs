//! One token bucket per client address, in a table of fixed size: memory stays bounded however many
//! addresses come (a flood from a million addresses costs the table, nothing more).
//!
//! Each bucket is kept as GCRA's "theoretical arrival time" (`tat`), one number instead of a token count and a
//! timestamp: a request at `now` is allowed when `max(tat, now) + interval <= now + burst * interval`, and then
//! moves `tat` on by one interval. A bucket whose `tat` has passed is full again, exactly as if it had never
//! been used, so its slot can go to another address without changing anyone's limit.
//!
//! The table is set-associative: an address hashes (with a per-process random key, so no one can aim at a
//! set) to a set of [`WAYS`] slots under one lock. The hash is two folded 64x64->128-bit multiplies over the
//! address's halves mixed with the key (the construction of foldhash and wyhash), not SipHash: a few
//! nanoseconds instead of a few dozen, and without the key an attacker still cannot tell which addresses
//! share a set. A new address takes a free or idle slot of its set; when
//! every slot of the set is in use, it takes the one closest to being idle, whose owner then starts over with a
//! full bucket. So the limit holds exactly for up to `sets * WAYS` busy clients at once (65,536 by default),
//! and beyond that errs on the side of serving.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::Mutex;

/// Slots per set: enough that a few busy neighbours rarely evict each other, few enough to scan in one cache
/// line or two.
pub const WAYS: usize = 4;

/// One client's bucket.
#[derive(Clone, Copy, Default)]
struct Slot {
    /// The client's address as 128 bits (see `client::bits`), plus one so that 0 marks an empty slot.
    key: u128,
    /// Microseconds on the limiter's clock when the bucket is full again.
    tat: u64,
}

/// What the table says about one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Allowed; `remaining` more requests would be allowed right now, and the bucket is full again
    /// after `reset_micros`.
    Allowed { remaining: u32, reset_micros: u64 },
    /// Over the limit: the next request is allowed in `retry_micros`.
    Limited { retry_micros: u64 },
}

/// The buckets of every client being limited.
pub struct BucketTable {
    sets: Box<[Mutex<[Slot; WAYS]>]>,
    key: SetKey,
    /// Microseconds between two requests at the sustained rate.
    interval: u64,
    /// `burst * interval`: how far ahead of now a bucket's `tat` may run.
    tolerance: u64,
}

impl BucketTable {
    /// A table of `sets` sets (rounded up to a power of two) for `requests_per_second` sustained and
    /// `burst` at once.
    pub fn new(sets: usize, requests_per_second: f64, burst: u32) -> BucketTable {
        let interval = (1e6 / requests_per_second).round().max(1.0) as u64;
        BucketTable {
            sets: (0..sets.next_power_of_two())
                .map(|_| Mutex::new([Slot::default(); WAYS]))
                .collect(),
            key: SetKey::random(),
            interval,
            tolerance: interval.saturating_mul(u64::from(burst)),
        }
    }

    /// Takes one token from the bucket of `client` (an address as 128 bits) at `now` (microseconds on the
    /// limiter's clock).
    #[inline]
    pub fn take(&self, client: u128, now: u64) -> Verdict {
        let key = client.wrapping_add(1).max(1);
        let index = (self.key.hash(client) as usize) & (self.sets.len() - 1);
        let mut set = self.sets[index]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let slot = find_or_claim(&mut set, key, now);
        let tat = slot.tat.max(now) + self.interval;
        let ahead = tat - now;
        if ahead > self.tolerance {
            return Verdict::Limited {
                retry_micros: ahead - self.tolerance,
            };
        }
        slot.tat = tat;
        Verdict::Allowed {
            remaining: ((self.tolerance - ahead) / self.interval) as u32,
            reset_micros: ahead,
        }
    }
}

/// The per-process random key that spreads addresses over the sets.
struct SetKey([u64; 3]);

impl SetKey {
    /// A fresh key from the standard library's random hash keys (seeded from the OS per process).
    fn random() -> SetKey {
        let seed = RandomState::new();
        SetKey([0u64, 1, 2].map(|n| seed.hash_one(n)))
    }

    /// The 64-bit hash of an address: each half folded with its key word, then the two mixed again.
    #[inline]
    fn hash(&self, client: u128) -> u64 {
        let [k0, k1, k2] = self.0;
        let (high, low) = ((client >> 64) as u64, client as u64);
        folded_multiply(
            folded_multiply(low ^ k0, high ^ k1) ^ k2,
            0x9e37_79b9_7f4a_7c15,
        )
    }
}

/// The 128-bit product of `a` and `b`, its two halves xored: every input bit reaches every output bit.
#[inline]
fn folded_multiply(a: u64, b: u64) -> u64 {
    let product = u128::from(a) * u128::from(b);
    (product as u64) ^ ((product >> 64) as u64)
}

/// The slot of `key` in `set`; else a free or idle one (its bucket full again at `now`); else the one
/// closest to idle. A claimed slot starts with a full bucket.
fn find_or_claim(set: &mut [Slot; WAYS], key: u128, now: u64) -> &mut Slot {
    let mut chosen = 0;
    for (i, slot) in set.iter().enumerate() {
        if slot.key == key {
            return &mut set[i];
        }
        if slot.tat < set[chosen].tat {
            chosen = i;
        }
    }
    let slot = &mut set[chosen];
    *slot = Slot { key, tat: now };
    slot
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: u64 = 1_000_000;

    fn allowed(verdict: Verdict) -> bool {
        matches!(verdict, Verdict::Allowed { .. })
    }

    #[test]
    fn a_burst_is_allowed_then_the_sustained_rate() {
        let table = BucketTable::new(16, 5.0, 10);
        let at_once: Vec<bool> = (0..12).map(|_| allowed(table.take(7, SECOND))).collect();
        assert_eq!(at_once.iter().filter(|a| **a).count(), 10);
        assert!(at_once[..10].iter().all(|a| *a));
        match table.take(7, SECOND) {
            Verdict::Limited { retry_micros } => assert_eq!(retry_micros, SECOND / 5),
            other => panic!("{other:?}"),
        }
        // 5 per second: one more every 200 ms, and after 2 s the whole burst again.
        assert!(allowed(table.take(7, SECOND + SECOND / 5)));
        assert!(!allowed(table.take(7, SECOND + SECOND / 5)));
        let later: Vec<bool> = (0..11)
            .map(|_| allowed(table.take(7, 4 * SECOND)))
            .collect();
        assert_eq!(later.iter().filter(|a| **a).count(), 10);
    }

    #[test]
    fn remaining_counts_down_and_clients_are_apart() {
        let table = BucketTable::new(16, 1.0, 3);
        let remaining: Vec<u32> = (0..3)
            .map(|_| match table.take(1, SECOND) {
                Verdict::Allowed { remaining, .. } => remaining,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(remaining, [2, 1, 0]);
        assert!(!allowed(table.take(1, SECOND)));
        assert!(
            allowed(table.take(2, SECOND)),
            "another client has its own bucket"
        );
        assert!(
            allowed(table.take(0, SECOND)),
            "address 0 is a client like any other"
        );
    }

    #[test]
    fn a_full_set_gives_up_its_idlest_slot_and_memory_stays_fixed() {
        // One set: WAYS busy clients fill it; the next takes the slot closest to idle.
        let table = BucketTable::new(1, 1.0, 2);
        for client in 0..WAYS as u128 {
            for _ in 0..=client.min(1) {
                assert!(allowed(table.take(client, SECOND)));
            }
        }
        assert!(allowed(table.take(99, SECOND)));
        // Client 0 (one request, the idlest) lost its slot: it starts over with a full bucket.
        assert!(allowed(table.take(0, SECOND)));
        assert!(allowed(table.take(0, SECOND)));
        assert!(!allowed(table.take(0, SECOND)));
        for client in 1_000..101_000u128 {
            table.take(client, SECOND);
        }
        assert_eq!(table.sets.len(), 1);
    }
}
