//! Example plugin `counter`: state shared by every worker, one function per route.
//!
//! * `GET /counter` answers how many times it has been requested, this request included, so the numbers go
//!   up by exactly one per request under any concurrency.
//! * `POST /counter?by=N` adds `N` (default 1) and answers the new count; a `by` that is not a non-negative
//!   integer is a 400.
//!
//! Configuration (`[plugins.counter]`): `start`, the count before the first request (default 0).

use std::sync::atomic::{AtomicU64, Ordering};

use plugin_api::{Config, Error, InitError, Request, Response};

/// Handlers are called concurrently through `&self`: the count is an atomic, not a `Cell` or a lock.
pub struct Counter {
    hits: AtomicU64,
}

impl Counter {
    fn new(config: &Config<'_>) -> Result<Counter, InitError> {
        Ok(Counter {
            hits: AtomicU64::new(config.parse_or("start", 0)?),
        })
    }

    fn count(&self, _req: &Request<'_>) -> Response {
        self.add(1)
    }

    fn add_by(&self, req: &Request<'_>) -> Result<Response, Error> {
        let by = match req.query_params()?.get("by") {
            Some(by) => by.parse().map_err(|_| {
                Error::bad_request(format!("by={by:?} is not a non-negative integer"))
            })?,
            None => 1,
        };
        Ok(self.add(by))
    }

    fn add(&self, by: u64) -> Response {
        // Relaxed suffices: each request needs a unique number, not ordering with other memory.
        let hits = self.hits.fetch_add(by, Ordering::Relaxed) + by;
        Response::text(hits.to_string()).with_header("Cache-Control", "no-store")
    }
}

plugin_api::export_plugin! {
    name: "counter",
    version: env!("CARGO_PKG_VERSION"),
    routes: [
        ("GET", "/counter", Counter::count),
        ("POST", "/counter", Counter::add_by),
    ],
    init: Counter::new,
}

#[cfg(test)]
mod tests {
    use std::thread;

    use plugin_api::testing::{TestPlugin, TestRequest};

    fn count(plugin: &TestPlugin) -> u64 {
        let response = plugin.call(TestRequest::get("/counter"));
        assert_eq!(response.status(), 200);
        response.body_str().unwrap().parse().unwrap()
    }

    #[test]
    fn counts_from_one() {
        let plugin = TestPlugin::start(super::plugd_plugin).unwrap();
        assert_eq!((count(&plugin), count(&plugin)), (1, 2));
    }

    #[test]
    fn counts_from_the_configured_start() {
        let plugin =
            TestPlugin::start_with_config(super::plugd_plugin, &[("start", "41")]).unwrap();
        assert_eq!(count(&plugin), 42);
        let refused = TestPlugin::start_with_config(super::plugd_plugin, &[("start", "-1")]);
        assert_eq!(
            refused.err().as_deref(),
            Some("plugin counter: config key `start`: expected a non-negative integer, got \"-1\"")
        );
    }

    #[test]
    fn post_adds_by_a_query_parameter() {
        let plugin = TestPlugin::start(super::plugd_plugin).unwrap();
        let added = plugin.call(TestRequest::post("/counter?by=5"));
        assert_eq!(added.body_str(), Some("5"));
        assert_eq!(
            plugin.call(TestRequest::post("/counter")).body_str(),
            Some("6")
        );
        let bad = plugin.call(TestRequest::post("/counter?by=-2"));
        assert_eq!(bad.status(), 400);
        assert_eq!(
            bad.body_str(),
            Some("by=\"-2\" is not a non-negative integer")
        );
        assert_eq!(
            plugin.call(TestRequest::post("/counter?by=%zz")).status(),
            400
        );
    }

    #[test]
    fn concurrent_requests_each_get_a_distinct_number() {
        let plugin = TestPlugin::start(super::plugd_plugin).unwrap();
        let mut seen: Vec<u64> = thread::scope(|s| {
            let workers: Vec<_> = (0..4)
                .map(|_| s.spawn(|| (0..250).map(|_| count(&plugin)).collect::<Vec<_>>()))
                .collect();
            workers
                .into_iter()
                .flat_map(|w| w.join().unwrap())
                .collect()
        });
        seen.sort_unstable();
        assert_eq!(seen, (1..=1000).collect::<Vec<_>>());
    }
}
