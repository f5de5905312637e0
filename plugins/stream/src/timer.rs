//! One thread that wakes every waiting event stream when its next event is due: 500 open streams cost one
//! thread here, and none in plugd.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::Instant;

use plugin_api::stream::Waker;

/// A stream's waker, due at `at`.
struct Alarm {
    at: Instant,
    waker: Waker,
}

impl PartialEq for Alarm {
    fn eq(&self, other: &Alarm) -> bool {
        self.at == other.at
    }
}

impl Eq for Alarm {}

impl PartialOrd for Alarm {
    fn partial_cmp(&self, other: &Alarm) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Alarm {
    /// Reversed: the heap's top is the earliest alarm.
    fn cmp(&self, other: &Alarm) -> Ordering {
        other.at.cmp(&self.at)
    }
}

#[derive(Default)]
struct Timer {
    alarms: Mutex<BinaryHeap<Alarm>>,
    changed: Condvar,
}

fn timer() -> &'static Timer {
    static TIMER: OnceLock<&'static Timer> = OnceLock::new();
    TIMER.get_or_init(|| {
        let timer: &'static Timer = Box::leak(Box::default());
        std::thread::Builder::new()
            .name("stream-timer".into())
            .spawn(move || timer.run())
            .expect("the timer thread starts");
        timer
    })
}

/// Wakes `waker` at `at` (a stream whose client left is woken too, and then simply forgotten).
pub fn wake_at(at: Instant, waker: Waker) {
    let timer = timer();
    let mut alarms = timer.alarms.lock().unwrap_or_else(|p| p.into_inner());
    let earliest = alarms.peek().is_none_or(|first| at < first.at);
    alarms.push(Alarm { at, waker });
    if earliest {
        timer.changed.notify_one();
    }
}

impl Timer {
    fn run(&self) {
        let mut alarms = self.alarms.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            let now = Instant::now();
            match alarms.peek() {
                None => alarms = self.changed.wait(alarms).unwrap_or_else(|p| p.into_inner()),
                Some(first) if first.at <= now => {
                    let due = alarms.pop().map(|alarm| alarm.waker);
                    drop(alarms);
                    if let Some(waker) = due {
                        waker.wake();
                    }
                    alarms = self.alarms.lock().unwrap_or_else(|p| p.into_inner());
                }
                Some(first) => {
                    let wait = first.at - now;
                    alarms = self
                        .changed
                        .wait_timeout(alarms, wait)
                        .unwrap_or_else(|p| p.into_inner())
                        .0;
                }
            }
        }
    }
}
