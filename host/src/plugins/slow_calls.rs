//! Slow handlers named while they still run: a plugin call still running after `--slow-handler` gets one
//! warning line with the plugin, the route asked for, the peer and the time so far. Detected by a watching
//! thread, so the line comes even when the handler never returns.
//!
//! A call costs its thread three stores and one compare-and-swap on a slot of its own, written by no other
//! thread while the call is fast: no lock, no system call, no wake-up. The call's details stay on the
//! calling thread's stack; the watcher reads them only for a call already slow, after claiming the slot
//! (the caller then waits, a few microseconds, before it returns from the call).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use crate::sys;

/// How often the watcher looks: a warning comes at most this late, and an idle server wakes it 4 times a
/// second.
const WATCH_EVERY: Duration = Duration::from_millis(250);

/// One plugin call, as the watcher reports it.
pub struct Call<'a> {
    pub plugin: &'a str,
    pub method: &'a str,
    pub path: &'a str,
    pub peer: SocketAddr,
    /// When the call started, on [`now`]'s clock.
    pub started: Duration,
    pub slow_after: Duration,
}

/// Marks a slot the watcher is reading: never the address of a [`Call`] (aligned to more than 1).
fn reading() -> *mut Call<'static> {
    std::ptr::without_provenance_mut(1)
}

/// One thread's current call.
#[derive(Default)]
struct Slot {
    /// The call running on the slot's thread (on that thread's stack), null between calls, or
    /// [`reading`] while the watcher reads it.
    call: AtomicPtr<Call<'static>>,
    /// When the call becomes slow, on [`clock`]; 0 between calls.
    slow_at: AtomicU64,
    /// The `slow_at` of the last call warned about: one warning per call.
    warned: AtomicU64,
}

/// Every thread's slot; a thread that ended leaves a dead `Weak`, pruned when the next thread registers.
static SLOTS: Mutex<Vec<Weak<Slot>>> = Mutex::new(Vec::new());

thread_local! {
    static MINE: Arc<Slot> = register();
}

fn register() -> Arc<Slot> {
    let slot = Arc::new(Slot::default());
    let mut slots = SLOTS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    slots.retain(|slot| slot.strong_count() > 0);
    slots.push(Arc::downgrade(&slot));
    slot
}

/// Now on the coarse monotonic clock, for a call's start: read on every plugin call, where the precise
/// clock cost 59 ns (4% of a pipelined request), and a kernel tick (1-4 ms) is nothing beside the
/// threshold of a slow call. Falls back to the precise clock (since the first read) where there is no
/// coarse one.
pub fn now() -> Duration {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    sys::coarse_monotonic().unwrap_or_else(|| EPOCH.get_or_init(Instant::now).elapsed())
}

/// `at` on [`now`]'s clock in microseconds, plus one (0 means "no call").
fn clock(at: Duration) -> u64 {
    at.as_micros() as u64 + 1
}

/// Watches `call` while the returned guard lives; starts the watcher with the first call.
pub fn watch<'a>(call: &'a Call<'a>) -> Watched<'a> {
    static WATCHER: OnceLock<()> = OnceLock::new();
    WATCHER.get_or_init(start_watcher);
    watch_in(MINE.with(Arc::clone), call)
}

/// Watches `call` in `slot`, the calling thread's.
fn watch_in<'a>(slot: Arc<Slot>, call: &'a Call<'a>) -> Watched<'a> {
    let address = std::ptr::from_ref(call).cast_mut().cast::<Call<'static>>();
    slot.call.store(address, Ordering::Release);
    slot.slow_at
        .store(clock(call.started + call.slow_after), Ordering::Relaxed);
    Watched {
        slot,
        address,
        _call: call,
    }
}

/// Ends the watch of one call when dropped.
pub struct Watched<'a> {
    slot: Arc<Slot>,
    address: *mut Call<'static>,
    _call: &'a Call<'a>,
}

impl Drop for Watched<'_> {
    fn drop(&mut self) {
        self.slot.slow_at.store(0, Ordering::Relaxed);
        // The watcher may hold the slot for a moment (a slow call only): the call must outlive its read.
        while self
            .slot
            .call
            .compare_exchange(
                self.address,
                std::ptr::null_mut(),
                Ordering::AcqRel,
                Ordering::Relaxed,
            )
            .is_err()
        {
            std::thread::yield_now();
        }
    }
}

fn start_watcher() {
    let started = std::thread::Builder::new()
        .name("plugd-slow-calls".into())
        .spawn(|| {
            loop {
                std::thread::sleep(WATCH_EVERY);
                warn_about_slow_calls(now());
            }
        });
    if let Err(err) = started {
        log::error!("cannot start the slow-handler watcher: {err}");
    }
}

fn warn_about_slow_calls(now: Duration) {
    let slots: Vec<Arc<Slot>> = SLOTS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .iter()
        .filter_map(Weak::upgrade)
        .collect();
    for slot in slots {
        if let Some(line) = slow_call_line(&slot, now) {
            log::warn!("{line}");
        }
    }
}

/// The warning for the slot's call if it is slow at `now` and not warned about yet.
fn slow_call_line(slot: &Slot, now: Duration) -> Option<String> {
    let slow_at = slot.slow_at.load(Ordering::Relaxed);
    if !is_newly_slow(slow_at, slot.warned.load(Ordering::Relaxed), clock(now)) {
        return None;
    }
    let address = slot.call.load(Ordering::Acquire);
    if address.is_null() || address == reading() {
        return None;
    }
    slot.call
        .compare_exchange(address, reading(), Ordering::Acquire, Ordering::Relaxed)
        .ok()?;
    // SAFETY: `address` is the call the slot's thread is running: it stored it before the call and takes it
    // back, with a compare-and-swap that fails while the slot holds `reading()`, before the call (on its
    // stack) ends. So the call lives until the store below gives the slot back.
    let call = unsafe { &*address };
    let elapsed = now.saturating_sub(call.started);
    let line = (elapsed >= call.slow_after).then(|| {
        format!(
            "slow handler: plugin {}, route {} {}, peer {}: still running after {:.2} s",
            call.plugin,
            call.method,
            call.path,
            call.peer,
            elapsed.as_secs_f64()
        )
    });
    slot.call.store(address, Ordering::Release);
    if line.is_some() {
        slot.warned.store(slow_at, Ordering::Relaxed);
    }
    line
}

/// A call that becomes slow at `slow_at` (0: no call) is slow at `now` and was not warned about yet.
fn is_newly_slow(slow_at: u64, warned: u64, now: u64) -> bool {
    slow_at != 0 && now >= slow_at && warned != slow_at
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_is_warned_about_once_after_its_threshold() {
        assert!(!is_newly_slow(0, 0, 100), "no call");
        assert!(!is_newly_slow(50, 0, 49), "not slow yet");
        assert!(is_newly_slow(50, 0, 50));
        assert!(!is_newly_slow(50, 50, 80), "warned already");
        assert!(is_newly_slow(90, 50, 95), "the next call");
    }

    #[test]
    fn a_slow_call_is_named_once_with_plugin_route_and_peer() {
        let started = now();
        let call = Call {
            plugin: "sleepy",
            method: "GET",
            path: "/sleep",
            peer: "192.0.2.7:4242".parse().unwrap(),
            started,
            slow_after: Duration::from_millis(10),
        };
        // A slot of its own, which the process's watcher does not see.
        let watched = watch_in(Arc::new(Slot::default()), &call);
        let later = started + Duration::from_millis(20);
        let slot = &watched.slot;
        assert_eq!(slow_call_line(slot, started), None, "not slow yet");
        let line = slow_call_line(slot, later).expect("slow");
        assert!(
            line.contains("plugin sleepy, route GET /sleep, peer 192.0.2.7:4242"),
            "{line}"
        );
        assert_eq!(slow_call_line(slot, later), None, "once");
        let slot = Arc::clone(slot);
        drop(watched);
        assert!(slot.call.load(Ordering::Relaxed).is_null());
    }
}
