//! The middleware chain: the filters the configuration names (`middleware = ["request-id", "bearer-auth"]`),
//! run around every answer, in order on the way in and in reverse on the way out (docs/ARCHITECTURE.md §15).
//!
//! The chain knows filters only through [`Filter`]: filter plugins implement it in `plugins/filter.rs`, so
//! this module, the router that holds the chain and `dispatch.rs` that runs it never see a plugin.
//!
//! Each filter's request hook runs before routing; one that answers ends the way in, and only the filters
//! whose request hooks ran see the response on the way out (an onion: a filter never sees a response to a
//! request it did not see). The FFI view of the request is built once per request, and only when a filter
//! applies to its path; a chain of no filters costs one length check.

use std::sync::Arc;

use plugin_api::host::FilterState;

use crate::handler::{Request, Response};

/// A filter around requests, as the chain calls it. Called concurrently from every worker.
pub trait Filter: Send + Sync {
    /// Whether [`Filter::on_request`] is called at all (asked once, when the chain is built): a filter
    /// that only edits responses lets every request through without a call.
    fn sees_requests(&self) -> bool;

    /// Whether [`Filter::on_response`] is called at all (asked once): a filter that only checks requests
    /// is passed on the way out without a call.
    fn sees_responses(&self) -> bool;

    /// Sees the request before routing: `None` lets it continue, `Some` answers it.
    fn on_request(
        &self,
        req: &plugin_api::Request<'_>,
        state: &mut FilterState,
    ) -> Option<Response>;

    /// Sees the response before its head is written, and may change its fields (or replace it with a 500,
    /// when the filter fails).
    fn on_response(
        &self,
        req: &plugin_api::Request<'_>,
        state: &mut FilterState,
        response: &mut Response,
    );
}

/// One filter of the chain: its name (the plugin's), the path prefixes it is limited to, the filter.
#[derive(Clone)]
pub struct ChainLink {
    name: Arc<str>,
    /// Empty: every path.
    prefixes: Vec<String>,
    filter: Arc<dyn Filter>,
    /// [`Filter::sees_requests`], asked once.
    sees_requests: bool,
    /// [`Filter::sees_responses`], asked once.
    sees_responses: bool,
}

impl ChainLink {
    /// The filter `filter` named `name`, applied to the paths under `prefixes` (all paths when empty).
    pub fn new(name: &str, prefixes: Vec<String>, filter: Arc<dyn Filter>) -> ChainLink {
        ChainLink {
            name: name.into(),
            prefixes,
            sees_requests: filter.sees_requests(),
            sees_responses: filter.sees_responses(),
            filter,
        }
    }

    /// The plugin name the configuration used.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the filter applies to `path`: a prefix matches itself and what lies beneath it, segment-wise
    /// (`/api` matches `/api` and `/api/items`, not `/apiary`).
    fn applies_to(&self, path: &str) -> bool {
        self.prefixes.is_empty()
            || self.prefixes.iter().any(|prefix| {
                path.strip_prefix(prefix.as_str()).is_some_and(|rest| {
                    rest.is_empty() || rest.starts_with('/') || prefix.ends_with('/')
                })
            })
    }
}

/// The filters around every answer, in configuration order. A clone shares the filters: a reload that
/// cannot build a new chain keeps serving the running one.
#[derive(Default, Clone)]
pub struct Chain {
    links: Vec<ChainLink>,
}

impl Chain {
    pub fn new(links: Vec<ChainLink>) -> Chain {
        Chain { links }
    }

    /// The filters' names, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.links.iter().map(ChainLink::name)
    }

    /// Runs `inner` (routing and the handler) inside the filters that apply to the request's path; returns
    /// the response and who produced it (`inner`'s owner, or the name of the filter that answered).
    #[inline]
    pub fn around<'c, By: From<&'c str>>(
        &'c self,
        req: &Request<'_>,
        inner: impl FnOnce(&Request<'_>) -> (Response, By),
    ) -> (Response, By) {
        if self.links.is_empty() {
            return inner(req);
        }
        let path = req.head.path;
        let mut applying = self.links.iter().filter(|link| link.applies_to(path));
        let Some(first) = applying.next() else {
            return inner(req);
        };
        req.with_plugin_view(&[], |view| {
            let mut answer = None;
            pass_through(first, &mut applying, view, req, inner, &mut answer);
            // `pass_through` always fills `answer` (it returns a reference into it).
            answer.unwrap_or_else(|| (Response::text(500, "Internal Server Error\n"), By::from("")))
        })
    }
}

/// Runs `link`'s request hook (if it has one), then (unless it answered) the rest of the chain and `inner`,
/// then `link`'s response side; returns the answer, which lives in `answer`. One stack frame per filter
/// holds its context between its two hooks, so a request through the chain allocates nothing of the
/// chain's own; the response is put in `answer` once and edited there by every frame on the way out, not
/// moved up through each (about 120 instructions per filter, measured).
fn pass_through<'c, 'a, By: From<&'c str>>(
    link: &'c ChainLink,
    rest: &mut impl Iterator<Item = &'c ChainLink>,
    view: &plugin_api::Request<'_>,
    req: &Request<'_>,
    inner: impl FnOnce(&Request<'_>) -> (Response, By),
    answer: &'a mut Option<(Response, By)>,
) -> &'a mut (Response, By) {
    let mut state = FilterState::default();
    let early = match link.sees_requests {
        true => link.filter.on_request(view, &mut state),
        false => None,
    };
    let answered = match early {
        Some(early) => answer.insert((early, By::from(&*link.name))),
        None => match rest.next() {
            Some(next) => pass_through(next, rest, view, req, inner, answer),
            None => answer.insert(inner(req)),
        },
    };
    if link.sees_responses {
        link.filter.on_response(view, &mut state, &mut answered.0);
    }
    answered
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::http::parse_head;

    /// Records the hooks it sees in a shared journal; answers paths under `/NAME-answers`.
    struct Recorder {
        name: &'static str,
        journal: Arc<Mutex<Vec<String>>>,
    }

    impl Filter for Recorder {
        fn sees_requests(&self) -> bool {
            true
        }

        fn sees_responses(&self) -> bool {
            true
        }

        fn on_request(
            &self,
            req: &plugin_api::Request<'_>,
            _state: &mut FilterState,
        ) -> Option<Response> {
            self.journal
                .lock()
                .unwrap()
                .push(format!("{} in", self.name));
            (req.path() == format!("/{}-answers", self.name))
                .then(|| Response::text(403, format!("{} says no", self.name)))
        }

        fn on_response(
            &self,
            _req: &plugin_api::Request<'_>,
            _state: &mut FilterState,
            response: &mut Response,
        ) {
            self.journal
                .lock()
                .unwrap()
                .push(format!("{} out {}", self.name, response.status));
        }
    }

    fn chain(journal: &Arc<Mutex<Vec<String>>>, links: &[(&'static str, &[&str])]) -> Chain {
        Chain::new(
            links
                .iter()
                .map(|(name, prefixes)| {
                    let recorder = Recorder {
                        name,
                        journal: Arc::clone(journal),
                    };
                    let prefixes = prefixes.iter().map(|p| p.to_string()).collect();
                    ChainLink::new(name, prefixes, Arc::new(recorder))
                })
                .collect(),
        )
    }

    /// The journal of one request for `path` through `chain`, and who answered.
    fn run(chain: &Chain, journal: &Arc<Mutex<Vec<String>>>, path: &str) -> (Vec<String>, String) {
        journal.lock().unwrap().clear();
        let raw = format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");
        let (head, _) = parse_head(
            raw.as_bytes(),
            &crate::config::Config::for_tests().limits.head,
        )
        .unwrap()
        .unwrap();
        let req = Request {
            head: &head,
            params: &[],
            body: b"",
            peer: "127.0.0.1:1".parse().unwrap(),
            upload: None,
        };
        let (response, owner) = chain.around(&req, |_| {
            journal.lock().unwrap().push("route".into());
            (Response::text(200, "ok"), "route")
        });
        let mut seen = journal.lock().unwrap().clone();
        seen.push(response.status.to_string());
        (seen, owner.to_owned())
    }

    #[test]
    fn filters_run_in_order_on_the_way_in_and_in_reverse_on_the_way_out() {
        let journal = Arc::default();
        let chain = chain(&journal, &[("a", &[]), ("b", &[])]);
        let (seen, owner) = run(&chain, &journal, "/x");
        assert_eq!(
            seen,
            ["a in", "b in", "route", "b out 200", "a out 200", "200"]
        );
        assert_eq!(owner, "route");
    }

    #[test]
    fn an_answer_on_the_way_in_skips_the_route_and_the_later_filters() {
        let journal = Arc::default();
        let chain = chain(&journal, &[("a", &[]), ("b", &[]), ("c", &[])]);
        let (seen, owner) = run(&chain, &journal, "/b-answers");
        assert_eq!(seen, ["a in", "b in", "b out 403", "a out 403", "403"]);
        assert_eq!(owner, "b");
    }

    #[test]
    fn a_filter_limited_to_prefixes_sees_only_their_paths() {
        let journal = Arc::default();
        let chain = chain(&journal, &[("a", &["/api"]), ("b", &[])]);
        assert_eq!(
            run(&chain, &journal, "/apiary").0,
            ["b in", "route", "b out 200", "200"]
        );
        for path in ["/api", "/api/items"] {
            assert_eq!(run(&chain, &journal, path).0[0], "a in", "{path}");
        }
        let only_api = super::Chain::new(Vec::new());
        assert_eq!(run(&only_api, &journal, "/x").0, ["route", "200"]);
    }
}
