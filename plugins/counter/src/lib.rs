//! Example plugin `counter`: state shared by every worker. `GET /counter` answers how many times it has been
//! requested, this request included, so the numbers go up by exactly one per request under any concurrency.

use std::sync::atomic::{AtomicU64, Ordering};

use plugin_api::{Handler, Request, Response};

/// Handlers are called concurrently through `&self`: the count is an atomic, not a `Cell` or a lock.
#[derive(Default)]
pub struct Counter {
    hits: AtomicU64,
}

impl Handler for Counter {
    fn handle(&self, _req: &Request<'_>) -> Response {
        // Relaxed suffices: each request needs a unique number, not ordering with other memory.
        let hits = self.hits.fetch_add(1, Ordering::Relaxed) + 1;
        Response::text(hits.to_string()).with_header("Cache-Control", "no-store")
    }
}

plugin_api::export_plugin! {
    name: "counter",
    version: env!("CARGO_PKG_VERSION"),
    routes: [("GET", "/counter")],
    init: |_config| Ok(Counter::default()),
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
