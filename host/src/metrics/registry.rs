//! Which series exist: a route's is named by its method and pattern and kept for good (a router rebuilt
//! by a reload finds the same counters again); a plugin version's is taken when its counters are made
//! and given back, zeroed, when they are dropped. Also whether requests are counted at all.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

use super::shards::{self, SeriesTotals};

/// Whether requests are counted.
static ENABLED: AtomicBool = AtomicBool::new(false);

/// Starts counting requests (the admin listener does, when configured).
pub fn enable() {
    ENABLED.store(true, Ordering::Relaxed);
}

/// Whether requests are counted: the hooks' one check when they are not.
#[inline]
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// One route's (or one plugin version's) counters: an index into every worker's shard.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SeriesId(u32);

impl SeriesId {
    pub(super) fn index(self) -> usize {
        self.0 as usize
    }
}

/// A route as its series is labelled: the method it was registered with and its pattern.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RouteKey {
    pub method: String,
    pub pattern: String,
}

/// The pattern label of requests no route matched (404, 405, 501): no pattern starts with `(`.
pub const NO_ROUTE: &str = "(none)";
/// The pattern label of requests refused before their head was read (400, 414, 431, 408, a connection over
/// the limit's 503).
pub const REFUSED: &str = "(refused)";

/// Series ids: routes keep theirs for good; a plugin version's is freed when its counters are dropped.
#[derive(Default)]
struct Registry {
    routes: HashMap<RouteKey, SeriesId>,
    /// Route series in the order they were registered.
    route_list: Vec<(RouteKey, SeriesId)>,
    next: u32,
    free: Vec<u32>,
}

static REGISTRY: Mutex<Option<Registry>> = Mutex::new(None);

fn registry() -> MutexGuard<'static, Option<Registry>> {
    REGISTRY
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn with_registry<T>(f: impl FnOnce(&mut Registry) -> T) -> T {
    f(registry().get_or_insert_with(Registry::default))
}

impl Registry {
    fn take_id(&mut self) -> SeriesId {
        if let Some(id) = self.free.pop() {
            return SeriesId(id);
        }
        let id = self.next;
        self.next += 1;
        if id as usize == shards::MAX_SERIES {
            log::warn!(
                "metrics: more than {} routes and plugin versions; the newer ones are not counted",
                shards::MAX_SERIES
            );
        }
        SeriesId(id)
    }
}

/// The series of the route `method pattern`: the same one each time the route is registered.
pub fn route_series(method: &str, pattern: &str) -> SeriesId {
    let key = RouteKey {
        method: method.to_owned(),
        pattern: pattern.to_owned(),
    };
    with_registry(|registry| {
        if let Some(id) = registry.routes.get(&key) {
            return *id;
        }
        let id = registry.take_id();
        registry.routes.insert(key.clone(), id);
        registry.route_list.push((key, id));
        id
    })
}

/// The series of requests no route matched.
pub fn unmatched_series() -> SeriesId {
    static UNMATCHED: std::sync::OnceLock<SeriesId> = std::sync::OnceLock::new();
    *UNMATCHED.get_or_init(|| route_series("*", NO_ROUTE))
}

/// The series of requests refused before their head was read.
pub fn refused_series() -> SeriesId {
    static REFUSED_SERIES: std::sync::OnceLock<SeriesId> = std::sync::OnceLock::new();
    *REFUSED_SERIES.get_or_init(|| route_series("*", REFUSED))
}

/// A fresh series for a plugin version's counters.
pub(super) fn take_series() -> SeriesId {
    with_registry(Registry::take_id)
}

/// Gives a plugin version's series back, zeroed.
pub(super) fn free_series(id: SeriesId) {
    shards::reset(id.index());
    with_registry(|registry| registry.free.push(id.0));
}

/// Every route's series with its totals, in registration order.
pub fn route_totals() -> Vec<(RouteKey, SeriesTotals)> {
    let routes = with_registry(|registry| registry.route_list.clone());
    let count = routes
        .iter()
        .map(|(_, id)| id.index() + 1)
        .max()
        .unwrap_or(0);
    let mut totals = shards::all_totals(count);
    let counted = totals.len();
    routes
        .into_iter()
        .filter(|(_, id)| id.index() < counted)
        .map(|(key, id)| (key, std::mem::take(&mut totals[id.index()])))
        .collect()
}
