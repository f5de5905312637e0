//! Events too rare to shard (plugin loads, refusals, reloads, panics): plain shared atomics, counted
//! whether or not requests are.

use std::sync::atomic::{AtomicU64, Ordering};

/// A count of something too rare to shard (a plain shared atomic).
pub struct Event(AtomicU64);

impl Event {
    const fn new() -> Event {
        Event(AtomicU64::new(0))
    }

    /// It happened once more.
    pub fn count(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// The rare events counted whether or not requests are.
pub struct Events {
    /// Plugin files loaded and serving (at startup and by reloads).
    pub plugin_loads: Event,
    /// Plugin files refused (garbage, incompatible, `init` failed, route clash, unsafe permissions).
    pub plugin_refusals: Event,
    /// Reloads done (SIGHUP, `POST /reload`, a change in the plugin folder): counted by the catalog
    /// that does them.
    pub plugin_reloads: Event,
    /// Plugin calls that panicked (the plugin caught it; the client got a 500).
    pub plugin_panics: Event,
}

/// The process's event counters.
pub static EVENTS: Events = Events {
    plugin_loads: Event::new(),
    plugin_refusals: Event::new(),
    plugin_reloads: Event::new(),
    plugin_panics: Event::new(),
};
