//! A bulkhead around each plugin: a cap on its requests in flight, so that one slow plugin cannot take every
//! worker and stall the other routes (Envoy's and Pingora's circuit breakers bound each upstream alike).
//!
//! Under the cap a request costs two atomic additions. Over it, the request waits a short, bounded time
//! ([`QUEUE_WAIT`]) for a place, then gets `503 Service Unavailable` with `Retry-After`, and the refusals are
//! counted and logged once a second at most. Only a few requests wait at once ([`Bulkhead::waiters`]): a
//! waiting request holds a worker too, and the cap is there to leave workers to the others.
//!
//! Every call that enters is watched for slowness (`slow_calls.rs`).
//!
//! Each version of a plugin has its own bulkhead, so its count of requests in flight is also what a
//! replaced or removed version drains on: once [`Bulkhead::retire`]d, no request enters it any more (one
//! that finds it retired is routed again, on the routes serving now), and its shutdown hook runs when
//! [`Bulkhead::in_flight`] reaches zero (`docs/ARCHITECTURE.md` §8.8).

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::handler::{Handler, Request, Response, Retired};
use crate::metrics::SeriesId;

use super::slow_calls::{self, Call};

/// How plugins are kept from stalling each other: each one's cap of requests in flight (unless its table sets
/// `max_in_flight`), and when a call counts as slow.
#[derive(Clone, Copy, Debug)]
pub struct Isolation {
    pub default_max_in_flight: NonZeroUsize,
    pub slow_handler: Duration,
}

impl From<&Config> for Isolation {
    fn from(config: &Config) -> Isolation {
        Isolation {
            default_max_in_flight: default_max_in_flight(config.max_threads),
            slow_handler: config.slow_handler,
        }
    }
}

/// How long a request over the cap waits for a place before its 503: far below any client's timeout, and
/// long enough to absorb a burst a little above the cap.
const QUEUE_WAIT: Duration = Duration::from_millis(50);
/// How often a waiting request looks for a place: a waiter costs at most 10 wake-ups, and no request under
/// the cap pays for waking waiters.
const QUEUE_POLL: Duration = Duration::from_millis(5);
/// Seconds a refused client is asked to wait (RFC 9110 §10.2.3): the cap frees in about the time of the
/// plugin's slow requests, which is what made it full.
const RETRY_AFTER_SECS: &str = "1";

/// The default cap of a plugin's requests in flight: three quarters of `--max-threads` (192 of 256), so a
/// plugin whose every request blocks still leaves a quarter of the workers, less its few waiters, to every
/// other route (static files included).
pub fn default_max_in_flight(max_threads: usize) -> NonZeroUsize {
    NonZeroUsize::new(max_threads * 3 / 4).unwrap_or(NonZeroUsize::MIN)
}

/// What a request finds when it arrives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Admission {
    /// A place is free: it enters.
    Enter,
    /// The cap is reached, and fewer than the most waiters wait: it waits for a place.
    Wait,
    /// The cap is reached and enough requests already wait: 503 at once.
    Refuse,
}

impl Admission {
    /// `in_flight` and `waiting`: requests inside the plugin and waiting for it, this one excluded.
    fn decide(in_flight: usize, waiting: usize, limit: usize, most_waiters: usize) -> Admission {
        if in_flight < limit {
            Admission::Enter
        } else if waiting < most_waiters {
            Admission::Wait
        } else {
            Admission::Refuse
        }
    }
}

/// How long a waiting request sleeps before it looks again, after `waited`; `None`: its wait is over.
fn next_poll(waited: Duration) -> Option<Duration> {
    QUEUE_WAIT
        .checked_sub(waited)
        .filter(|left| !left.is_zero())
        .map(|left| left.min(QUEUE_POLL))
}

/// One plugin's cap, shared by the handlers of all of its routes ([`Bulkheaded`]).
pub struct Bulkhead {
    plugin: Arc<str>,
    limit: usize,
    /// Requests inside the plugin's handler.
    in_flight: AtomicUsize,
    /// This version stopped serving: nothing enters any more.
    retired: AtomicBool,
    /// Requests waiting for a place.
    waiting: AtomicUsize,
    /// Refusals since the last log line about them.
    refused: AtomicU64,
    /// Refusals since startup.
    refused_total: AtomicU64,
    /// The second (since `epoch`) of the last log line about refusals, plus one (0: none yet).
    logged_second: AtomicU64,
    epoch: Instant,
    /// A call still running after this long is named in a warning.
    slow_after: Duration,
}

/// A place inside the plugin, given back when dropped (also when the handler panics).
struct Place<'a>(&'a AtomicUsize);

impl Drop for Place<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Release);
    }
}

impl Bulkhead {
    pub fn new(plugin: Arc<str>, limit: NonZeroUsize, slow_after: Duration) -> Bulkhead {
        Bulkhead {
            plugin,
            limit: limit.get(),
            in_flight: AtomicUsize::new(0),
            retired: AtomicBool::new(false),
            waiting: AtomicUsize::new(0),
            refused: AtomicU64::new(0),
            refused_total: AtomicU64::new(0),
            logged_second: AtomicU64::new(0),
            epoch: Instant::now(),
            slow_after,
        }
    }

    /// The most requests that wait for a place at once: an eighth of the cap (24 of the default 192), so
    /// that a full plugin holds at most 9/8 of its cap in workers.
    fn waiters(&self) -> usize {
        (self.limit / 8).max(1)
    }

    /// A place, at once or after a short wait; `Ok(None)`: refuse; `Err`: this version was retired.
    fn enter(&self) -> Result<Option<Place<'_>>, Retired> {
        if let Some(place) = self.try_enter()? {
            return Ok(Some(place));
        }
        let waiting = self.waiting.fetch_add(1, Ordering::Relaxed);
        let place = match Admission::decide(self.limit, waiting, self.limit, self.waiters()) {
            Admission::Wait => self.wait_for_place(),
            Admission::Enter | Admission::Refuse => Ok(None),
        };
        self.waiting.fetch_sub(1, Ordering::Relaxed);
        place
    }

    /// A place if one is free. The count goes up before `retired` is read, and [`Bulkhead::retire`] sets
    /// `retired` before the drain reads the count (both sequentially consistent): so either this request
    /// sees the retirement and backs out, or the drain sees it in flight and waits for it.
    fn try_enter(&self) -> Result<Option<Place<'_>>, Retired> {
        let before = self.in_flight.fetch_add(1, Ordering::SeqCst);
        let place = Place(&self.in_flight);
        if self.retired.load(Ordering::SeqCst) {
            return Err(Retired);
        }
        Ok((Admission::decide(before, 0, self.limit, 0) == Admission::Enter).then_some(place))
    }

    fn wait_for_place(&self) -> Result<Option<Place<'_>>, Retired> {
        let started = Instant::now();
        while let Some(nap) = next_poll(started.elapsed()) {
            std::thread::sleep(nap);
            if let Some(place) = self.try_enter()? {
                return Ok(Some(place));
            }
        }
        Ok(None)
    }

    /// Stops admitting requests to this version: those that arrive later are routed again.
    pub fn retire(&self) {
        self.retired.store(true, Ordering::SeqCst);
    }

    /// Requests inside this version's handlers now (after [`Bulkhead::retire`], it only goes down).
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// 503 with `Retry-After`; counted, and logged once a second at most.
    fn refuse(&self, peer: SocketAddr) -> Response {
        self.refused.fetch_add(1, Ordering::Relaxed);
        self.refused_total.fetch_add(1, Ordering::Relaxed);
        let second = self.epoch.elapsed().as_secs() + 1;
        if self.logged_second.swap(second, Ordering::Relaxed) != second {
            let count = self.refused.swap(0, Ordering::Relaxed);
            log::warn!(
                "plugin {}: refused {count} request(s) with 503 since the last such line, {} in all \
                 (max_in_flight = {} reached; latest from {peer})",
                self.plugin,
                self.refused_total.load(Ordering::Relaxed),
                self.limit
            );
        }
        Response::text(
            503,
            format!(
                "Service Unavailable: plugin {} is serving its limit of {} requests\n",
                self.plugin, self.limit
            ),
        )
        .with_header("Retry-After", RETRY_AFTER_SECS)
    }
}

/// One route of a plugin behind the plugin's [`Bulkhead`].
pub struct Bulkheaded {
    bulkhead: Arc<Bulkhead>,
    inner: Arc<dyn Handler>,
}

impl Bulkheaded {
    pub fn new(bulkhead: Arc<Bulkhead>, inner: Arc<dyn Handler>) -> Bulkheaded {
        Bulkheaded { bulkhead, inner }
    }
}

impl Handler for Bulkheaded {
    /// Dispatch calls [`Handler::try_handle`]; called directly, a retired version answers 503.
    fn handle(&self, req: &Request<'_>) -> Response {
        self.try_handle(req)
            .unwrap_or_else(|Retired| Response::text(503, "Service Unavailable: plugin replaced\n"))
    }

    fn try_handle(&self, req: &Request<'_>) -> Result<Response, Retired> {
        let bulkhead = &*self.bulkhead;
        let Some(_place) = bulkhead.enter()? else {
            return Ok(bulkhead.refuse(req.peer));
        };
        let call = Call {
            plugin: &bulkhead.plugin,
            method: req.head.method,
            path: req.head.path,
            peer: req.peer,
            started: slow_calls::now(),
            slow_after: bulkhead.slow_after,
        };
        let _watched = slow_calls::watch(&call);
        Ok(self.inner.handle(req))
    }

    /// The wrapped route's own answer: a route that reads its body as it arrives still does behind its
    /// plugin's bulkhead.
    fn streams_body(&self) -> bool {
        self.inner.streams_body()
    }

    fn version_series(&self) -> Option<SeriesId> {
        self.inner.version_series()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_enter_under_the_cap_wait_a_little_over_it_then_are_refused() {
        assert_eq!(Admission::decide(0, 0, 4, 1), Admission::Enter);
        assert_eq!(Admission::decide(3, 5, 4, 1), Admission::Enter);
        assert_eq!(Admission::decide(4, 0, 4, 1), Admission::Wait);
        assert_eq!(Admission::decide(4, 1, 4, 1), Admission::Refuse);
        assert_eq!(Admission::decide(9, 0, 4, 0), Admission::Refuse);
    }

    #[test]
    fn a_wait_is_bounded_and_polls_in_short_steps() {
        assert_eq!(next_poll(Duration::ZERO), Some(QUEUE_POLL));
        assert_eq!(
            next_poll(QUEUE_WAIT - Duration::from_millis(2)),
            Some(Duration::from_millis(2))
        );
        assert_eq!(next_poll(QUEUE_WAIT), None);
        assert_eq!(next_poll(QUEUE_WAIT * 2), None);
        let polls = std::iter::successors(Some(Duration::ZERO), |waited| {
            next_poll(*waited).map(|nap| *waited + nap)
        })
        .count();
        assert_eq!(
            polls as u128,
            1 + QUEUE_WAIT.as_millis() / QUEUE_POLL.as_millis()
        );
    }

    #[test]
    fn the_default_cap_leaves_a_quarter_of_the_workers() {
        assert_eq!(default_max_in_flight(256).get(), 192);
        assert_eq!(default_max_in_flight(1).get(), 1);
    }

    #[test]
    fn a_refusal_is_a_503_with_retry_after_and_gives_the_place_back() {
        let bulkhead = Bulkhead::new("p".into(), NonZeroUsize::MIN, Duration::from_secs(1));
        let held = bulkhead.enter().unwrap().expect("the first request enters");
        assert!(
            bulkhead.enter().unwrap().is_none(),
            "the second waits, then is refused"
        );
        let refusal = bulkhead.refuse("192.0.2.1:9".parse().unwrap());
        assert_eq!(refusal.status, 503);
        assert!(
            refusal
                .headers
                .iter()
                .any(|(n, v)| n == "Retry-After" && v == "1")
        );
        drop(held);
        assert!(
            bulkhead.enter().unwrap().is_some(),
            "a place freed is a place taken"
        );
        assert_eq!(bulkhead.in_flight.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_retired_version_admits_nothing_and_drains_to_zero() {
        let bulkhead = Bulkhead::new("p".into(), NonZeroUsize::MIN, Duration::from_secs(1));
        let held = bulkhead.enter().unwrap().expect("enters");
        bulkhead.retire();
        assert_eq!(bulkhead.in_flight(), 1, "the request inside is counted");
        assert_eq!(bulkhead.enter().err(), Some(Retired));
        assert_eq!(
            bulkhead.in_flight(),
            1,
            "a refused entry gives its count back"
        );
        drop(held);
        assert_eq!(bulkhead.in_flight(), 0);
    }
}
