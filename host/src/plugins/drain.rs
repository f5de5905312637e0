//! Retiring a plugin version: no request enters it any more (its bulkhead says so, and dispatch routes
//! such a request again on the routes serving now), the requests already inside finish, then its shutdown
//! hook runs; each wait is bounded by `--shutdown-timeout`, so a plugin whose requests or shutdown hook
//! never end costs a parked thread, never a worker or another plugin (`docs/ARCHITECTURE.md` §8.8).
//!
//! The library stays mapped: a retired version's code may still be on a worker's stack for a moment, and
//! abi_stable never unloads (`docs/ARCHITECTURE.md` §8.6).

use std::sync::{Arc, Mutex, MutexGuard, mpsc};
use std::time::{Duration, Instant};

use super::load::LoadedPlugin;

/// How often a draining version's requests in flight are counted: its shutdown hook runs within this long
/// of its last request.
const DRAIN_POLL: Duration = Duration::from_millis(5);

/// The versions retired whose shutdown hook has not returned yet (for the admin view: draining).
#[derive(Default)]
pub struct Draining {
    versions: Mutex<Vec<Arc<LoadedPlugin>>>,
}

impl Draining {
    /// Retires `plugin` (its routes are already gone from the router serving) and, on a thread of its
    /// own, waits for its requests in flight, then runs its shutdown hook.
    pub fn retire(self: &Arc<Self>, plugin: LoadedPlugin, timeout: Duration) {
        plugin.bulkhead().retire();
        let plugin = Arc::new(plugin);
        self.lock().push(Arc::clone(&plugin));
        let draining = Arc::clone(self);
        let drained = std::thread::Builder::new()
            .name(format!("plugd-drain-{}", plugin.name()))
            .spawn(move || {
                drain(&plugin, timeout);
                draining.lock().retain(|other| !Arc::ptr_eq(other, &plugin));
            });
        if let Err(err) = drained {
            log::warn!(
                "cannot start a thread to drain a retired plugin ({err}): its shutdown hook does not run"
            );
        }
    }

    /// The versions still draining, oldest first.
    pub fn versions(&self) -> Vec<Arc<LoadedPlugin>> {
        self.lock().clone()
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Arc<LoadedPlugin>>> {
        // A list of `Arc`s: a panic cannot leave it half-written.
        self.versions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn drain(plugin: &LoadedPlugin, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while plugin.bulkhead().in_flight() > 0 && Instant::now() < deadline {
        std::thread::sleep(DRAIN_POLL);
    }
    let left = plugin.bulkhead().in_flight();
    if left > 0 {
        log::warn!(
            "plugin {} {} from {}: {left} request(s) still running {timeout:?} after it was retired; \
             running its shutdown hook anyway",
            plugin.name(),
            plugin.version(),
            plugin.path().display()
        );
    }
    shutdown_hook(plugin, timeout);
}

/// Runs `plugin`'s shutdown hook (once: a second call does nothing) and waits for it at most `timeout`; a
/// hook still running then is logged and left to its thread. A panic in it is caught and logged.
pub fn shutdown_hook(plugin: &LoadedPlugin, timeout: Duration) {
    let handler = std::sync::Arc::clone(plugin.handler());
    let (done, finished) = mpsc::channel();
    let started = std::thread::Builder::new()
        .name(format!("plugd-shutdown-{}", plugin.name()))
        .spawn(move || {
            handler.shutdown();
            let _ = done.send(());
        });
    if let Err(err) = started {
        log::warn!("cannot start a thread for a shutdown hook ({err}): running it here");
        plugin.handler().shutdown();
        return;
    }
    if finished.recv_timeout(timeout).is_err() {
        log::warn!(
            "plugin {} {} from {}: its shutdown hook is still running after {timeout:?}; left running",
            plugin.name(),
            plugin.version(),
            plugin.path().display()
        );
    }
}
