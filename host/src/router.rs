//! `(method, pattern)` -> handler. A [`Router`] is built, then shared read-only by every worker; a
//! [`LiveRouter`] holds the one currently serving and swaps in a new one when plugins change
//! (`docs/ARCHITECTURE.md` §7.1), without a shared lock on the request path.
//!
//! Pattern syntax, matching and precedence are `plugin_api::routing`'s, shared with the plugin authors' test
//! helper so that a plugin's unit tests route exactly as plugd does. In short: exact segments, `{name}` and a
//! trailing `{*name}`; the most specific pattern wins (exact beats `{param}` beats `{*rest}`, segment by
//! segment from the left); a route of method `*` accepts every method but loses to a route of the request's
//! own method on the same pattern; HEAD falls back to GET routes. This module adds what only the host needs:
//! who owns each route, method validation, and refusing a plugin's routes as a whole.
//!
//! The router also holds the middleware chain that runs around every answer (`middleware.rs`): routes and
//! the filters around them are what decides a request's answer, and are replaced together.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use plugin_api::routing::{ANY_METHOD, Lookup, Pattern, Table};

use crate::handler::Handler;
use crate::http::syntax::is_token;
use crate::metrics::{self, Counted};
use crate::middleware::Chain;

/// One registered route.
pub struct Route {
    pub method: String,
    pub pattern: String,
    /// Who registered it: a plugin's name, `static` or `builtin`; shown in logs and conflicts.
    pub owner: Arc<str>,
    pub handler: Arc<dyn Handler>,
    /// Where its requests are counted: its route series (the same for the same method and pattern,
    /// whoever registers it) and its plugin version's.
    pub counted: Counted,
}

/// Why routes were refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RouteError {
    /// The pattern is not `/`-separated exact segments, `{param}`s and an optional trailing `{*rest}`.
    InvalidPattern { pattern: String, reason: String },
    /// The method is neither an HTTP token (RFC 9110 §9.1), e.g. empty or with a space, nor `*`.
    InvalidMethod { method: String },
    /// A route (of this or another owner) already serves this method on an equivalent pattern: the same
    /// segments with parameter names ignored.
    Conflict {
        method: String,
        pattern: String,
        existing_owner: String,
        new_owner: String,
    },
}

impl fmt::Display for RouteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RouteError::InvalidPattern { pattern, reason } => {
                write!(f, "invalid route pattern `{pattern}`: {reason}")
            }
            RouteError::InvalidMethod { method } => {
                write!(f, "invalid route method `{method}`: not an HTTP token")
            }
            RouteError::Conflict {
                method,
                pattern,
                existing_owner,
                new_owner,
            } => write!(
                f,
                "route `{method} {pattern}` of `{new_owner}` conflicts with the equivalent route \
                 already registered by `{existing_owner}`"
            ),
        }
    }
}

impl std::error::Error for RouteError {}

/// The result of looking up a request.
pub enum RouteMatch<'r, 'p> {
    Found {
        route: &'r Route,
        params: Vec<(&'r str, &'p str)>,
    },
    /// The path matches routes, but none for this method; `allow` lists their methods (with HEAD when GET).
    MethodNotAllowed {
        allow: String,
    },
    NotFound,
}

/// A route checked but not yet registered.
struct NewRoute {
    method: String,
    pattern: Pattern,
    handler: Arc<dyn Handler>,
}

#[derive(Default)]
pub struct RouterBuilder {
    table: Table<Route>,
    middleware: Chain,
}

impl RouterBuilder {
    pub fn new() -> RouterBuilder {
        RouterBuilder::default()
    }

    /// Registers all `(method, pattern)` pairs for `owner`, all served by `handler`; see
    /// [`RouterBuilder::add_routes`].
    pub fn add_all(
        &mut self,
        routes: &[(&str, &str)],
        owner: &str,
        handler: Arc<dyn Handler>,
    ) -> Result<(), RouteError> {
        self.add_routes(
            routes
                .iter()
                .map(|&(method, pattern)| (method, pattern, Arc::clone(&handler))),
            owner,
        )
    }

    /// Registers `(method, pattern, handler)` routes for `owner`, or none of them if any is invalid or
    /// conflicts (with a route already registered, or with another route of this call).
    pub fn add_routes<'a>(
        &mut self,
        routes: impl IntoIterator<Item = (&'a str, &'a str, Arc<dyn Handler>)>,
        owner: &str,
    ) -> Result<(), RouteError> {
        let mut new: Vec<NewRoute> = Vec::new();
        for (method, pattern, handler) in routes {
            if method != ANY_METHOD && !is_token(method.as_bytes()) {
                return Err(RouteError::InvalidMethod {
                    method: method.to_string(),
                });
            }
            let compiled =
                Pattern::parse(pattern).map_err(|reason| RouteError::InvalidPattern {
                    pattern: pattern.to_string(),
                    reason,
                })?;
            let existing_owner = match self.table.conflict(method, &compiled) {
                Some(existing) => Some(existing.owner.to_string()),
                None => new
                    .iter()
                    .any(|n| n.method == method && n.pattern.is_equivalent(&compiled))
                    .then(|| owner.to_string()),
            };
            if let Some(existing_owner) = existing_owner {
                return Err(RouteError::Conflict {
                    method: method.to_string(),
                    pattern: pattern.to_string(),
                    existing_owner,
                    new_owner: owner.to_string(),
                });
            }
            new.push(NewRoute {
                method: method.to_string(),
                pattern: compiled,
                handler,
            });
        }
        let owner: Arc<str> = Arc::from(owner);
        for route in new {
            let value = Route {
                counted: Counted {
                    route: metrics::route_series(&route.method, route.pattern.as_str()),
                    version: route.handler.version_series(),
                },
                method: route.method.clone(),
                pattern: route.pattern.as_str().to_string(),
                owner: Arc::clone(&owner),
                handler: route.handler,
            };
            self.table.insert(&route.method, route.pattern, value);
        }
        Ok(())
    }

    /// The filters to run around every answer (none unless set).
    pub fn set_middleware(&mut self, chain: Chain) {
        self.middleware = chain;
    }

    pub fn build(self) -> Router {
        Router {
            table: self.table,
            middleware: self.middleware,
        }
    }
}

pub struct Router {
    table: Table<Route>,
    middleware: Chain,
}

impl Router {
    /// Finds the route for `method` and the (still percent-encoded) `path`. HEAD falls back to GET routes.
    /// See the module docs for precedence. Allocates only the params (and `allow` for a 405).
    pub fn lookup<'r, 'p>(&'r self, method: &str, path: &'p str) -> RouteMatch<'r, 'p> {
        match self.table.lookup(method, path) {
            Lookup::Found { value, params, .. } => RouteMatch::Found {
                route: value,
                params,
            },
            Lookup::MethodNotAllowed { allow } => RouteMatch::MethodNotAllowed { allow },
            Lookup::NotFound => RouteMatch::NotFound,
        }
    }

    /// The filters around every answer.
    pub fn middleware(&self) -> &Chain {
        &self.middleware
    }

    /// Every route, in registration order (for the admin view and logs).
    pub fn routes(&self) -> impl Iterator<Item = &Route> {
        self.table.values()
    }
}

/// The router currently serving, replaced as a whole when plugins are added, replaced or removed.
///
/// Readers never take its lock per request: each worker keeps a [`RouterCache`] and compares one
/// generation number (a read-only shared cache line) before each connection it serves; only after a swap
/// does it lock once to take the new snapshot. A snapshot stays valid for as long as anyone holds it, so a
/// request that started on the old routes finishes on them.
pub struct LiveRouter {
    current: Mutex<Arc<Router>>,
    /// Incremented after each swap, under the lock.
    generation: AtomicU64,
}

impl LiveRouter {
    pub fn new(router: Router) -> LiveRouter {
        LiveRouter {
            current: Mutex::new(Arc::new(router)),
            generation: AtomicU64::new(0),
        }
    }

    /// The router serving now (one lock: for the rare path, not per request).
    pub fn current(&self) -> Arc<Router> {
        Arc::clone(&self.lock())
    }

    /// Serves `router` from now on; connections pick it up before their next request.
    pub fn swap(&self, router: Router) {
        let mut current = self.lock();
        *current = Arc::new(router);
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// A worker's cache of the current router.
    pub fn cache(&self) -> RouterCache {
        let current = self.lock();
        RouterCache {
            generation: self.generation.load(Ordering::Acquire),
            router: Arc::clone(&current),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Arc<Router>> {
        // The guarded value is a plain `Arc` swap: a panic cannot leave it half-written.
        self.current
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// One worker's snapshot of a [`LiveRouter`], refreshed when its generation moved.
pub struct RouterCache {
    generation: u64,
    router: Arc<Router>,
}

impl RouterCache {
    /// The router to serve the next connection with: the cached one unless a swap happened since.
    pub fn refresh(&mut self, live: &LiveRouter) -> &Router {
        if live.generation.load(Ordering::Acquire) != self.generation {
            *self = live.cache();
        }
        &self.router
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handler::{Request, Response};

    struct Nop;
    impl Handler for Nop {
        fn handle(&self, _: &Request<'_>) -> Response {
            Response::text(200, "")
        }
    }

    fn router(routes: &[(&str, &str)]) -> Router {
        let mut b = RouterBuilder::new();
        for &(method, pattern) in routes {
            b.add_all(&[(method, pattern)], pattern, Arc::new(Nop))
                .unwrap();
        }
        b.build()
    }

    /// `pattern` of the route found, with its params, or "404" / "405 <allow>".
    fn found(r: &Router, method: &str, path: &str) -> String {
        match r.lookup(method, path) {
            RouteMatch::Found { route, params } => {
                let params: Vec<String> = params.iter().map(|(n, v)| format!("{n}={v}")).collect();
                format!("{} {} {}", route.method, route.pattern, params.join(" "))
                    .trim_end()
                    .to_string()
            }
            RouteMatch::MethodNotAllowed { allow } => format!("405 {allow}"),
            RouteMatch::NotFound => "404".to_string(),
        }
    }

    /// Checks `(method, path, what found() must say)` rows.
    fn expect(r: &Router, rows: &[(&str, &str, &str)]) {
        for &(method, path, want) in rows {
            assert_eq!(found(r, method, path), want, "{method} {path}");
        }
    }

    #[test]
    fn exact_beats_param_beats_rest_segment_by_segment() {
        let r = router(&[
            ("GET", "/{*all}"),
            ("GET", "/users/{*rest}"),
            ("GET", "/users/{id}"),
            ("GET", "/users/new"),
            ("GET", "/a/{x}/c"),
            ("GET", "/{y}/b/{z}"),
        ]);
        expect(
            &r,
            &[
                ("GET", "/users/new", "GET /users/new"),
                ("GET", "/users/42", "GET /users/{id} id=42"),
            ],
        );
        assert_eq!(
            found(&r, "GET", "/users/42/x"),
            "GET /users/{*rest} rest=42/x"
        );
        expect(
            &r,
            &[
                ("GET", "/users/", "GET /users/{*rest} rest="),
                ("GET", "/users", "GET /{*all} all=users"),
            ],
        );
        // The first segment decides: exact `a` beats `{y}` though `{y}/b/{z}` has an exact second one.
        expect(
            &r,
            &[
                ("GET", "/a/b/c", "GET /a/{x}/c x=b"),
                ("GET", "/q/b/c", "GET /{y}/b/{z} y=q z=c"),
                ("GET", "/", "GET /{*all} all="),
            ],
        );
    }

    #[test]
    fn params_are_raw_slices_in_pattern_order() {
        let r = router(&[
            ("GET", "/u/{user}/posts/{post}"),
            ("GET", "/static/{*path}"),
        ]);
        assert_eq!(
            found(&r, "GET", "/u/j%20d/posts/%2F1"),
            "GET /u/{user}/posts/{post} user=j%20d post=%2F1"
        );
        expect(
            &r,
            &[
                ("GET", "/u//posts/1", "404"),
                ("GET", "/u/a/posts/1/", "404"),
            ],
        );
        assert_eq!(
            found(&r, "GET", "/static/css/a.css"),
            "GET /static/{*path} path=css/a.css"
        );
        assert_eq!(
            found(&r, "GET", "/static//x"),
            "GET /static/{*path} path=/x"
        );
        assert_eq!(found(&r, "GET", "/static"), "404");
        let path = String::from("/u/me/posts/7");
        if let RouteMatch::Found { params, .. } = r.lookup("GET", &path) {
            assert!(std::ptr::eq(params[0].1.as_ptr(), path[3..].as_ptr()));
        } else {
            panic!("not found");
        }
    }

    #[test]
    fn exact_paths_and_trailing_slashes() {
        let r = router(&[("GET", "/"), ("GET", "/a"), ("GET", "/a/")]);
        expect(
            &r,
            &[
                ("GET", "/", "GET /"),
                ("GET", "/a", "GET /a"),
                ("GET", "/a/", "GET /a/"),
                ("GET", "/A", "404"),
                ("GET", "/a/b", "404"),
                ("OPTIONS", "*", "404"),
                ("GET", "", "404"),
            ],
        );
    }

    #[test]
    fn wrong_method_gives_405_with_sorted_allow() {
        let r = router(&[
            ("POST", "/x"),
            ("DELETE", "/x"),
            ("GET", "/x/{id}"),
            ("PUT", "/{*any}"),
            ("GET", "/page"),
            ("HEAD", "/page"),
        ]);
        expect(
            &r,
            &[
                ("PATCH", "/x", "405 DELETE, POST, PUT"),
                ("POST", "/page", "405 GET, HEAD, PUT"),
                ("POST", "/x/1", "405 GET, HEAD, PUT"),
                ("BREW", "/x/1", "405 GET, HEAD, PUT"),
                // Another method's more specific route does not shadow a matching route of this method.
                ("PUT", "/x", "PUT /{*any} any=x"),
                ("get", "/page", "405 GET, HEAD, PUT"),
            ],
        );
        let empty = router(&[]);
        assert_eq!(found(&empty, "GET", "/"), "404");
    }

    #[test]
    fn head_uses_a_head_route_else_get() {
        let r = router(&[
            ("GET", "/page"),
            ("HEAD", "/special"),
            ("GET", "/special"),
            ("POST", "/form"),
            ("GET", "/items/{id}"),
            ("HEAD", "/items/{*rest}"),
            ("GET", "/docs/intro"),
            ("HEAD", "/docs/{*page}"),
        ]);
        expect(
            &r,
            &[
                ("HEAD", "/page", "GET /page"),
                ("HEAD", "/special", "HEAD /special"),
                ("HEAD", "/form", "405 POST"),
                ("HEAD", "/items/3", "HEAD /items/{*rest} rest=3"),
                // A HEAD route, even a pattern, comes before the GET route whose pattern is the path.
                ("HEAD", "/docs/intro", "HEAD /docs/{*page} page=intro"),
                ("GET", "/docs/intro", "GET /docs/intro"),
                ("HEAD", "/nothing", "404"),
            ],
        );
    }

    #[test]
    fn any_method_routes_take_every_method_but_the_exact_one() {
        let r = router(&[("*", "/app/{*rest}"), ("GET", "/app/status")]);
        expect(
            &r,
            &[
                ("DELETE", "/app/x/y", "* /app/{*rest} rest=x/y"),
                ("GET", "/app/status", "GET /app/status"),
                ("POST", "/app/status", "* /app/{*rest} rest=status"),
                ("GET", "/other", "404"),
            ],
        );
        let mut b = RouterBuilder::new();
        b.add_all(&[("*", "/x/{a}")], "first", Arc::new(Nop))
            .unwrap();
        assert!(matches!(
            b.add_all(&[("*", "/x/{b}")], "second", Arc::new(Nop)),
            Err(RouteError::Conflict { existing_owner, .. }) if existing_owner == "first"
        ));
    }

    #[test]
    fn equivalent_patterns_conflict_naming_both_owners() {
        let mut b = RouterBuilder::new();
        b.add_all(
            &[("GET", "/a/{id}"), ("GET", "/files/{*p}")],
            "alpha",
            Arc::new(Nop),
        )
        .unwrap();
        let err = b
            .add_all(&[("GET", "/a/{name}")], "beta", Arc::new(Nop))
            .unwrap_err();
        assert_eq!(
            err,
            RouteError::Conflict {
                method: "GET".into(),
                pattern: "/a/{name}".into(),
                existing_owner: "alpha".into(),
                new_owner: "beta".into(),
            }
        );
        let text = err.to_string();
        assert!(
            text.contains("`alpha`") && text.contains("`beta`") && !text.contains('\n'),
            "{text}"
        );
        // The same owner twice, and a conflict inside one call.
        assert!(matches!(
            b.add_all(&[("GET", "/files/{*q}")], "alpha", Arc::new(Nop)),
            Err(RouteError::Conflict { .. })
        ));
        assert!(matches!(
            b.add_all(&[("PUT", "/n/{a}"), ("PUT", "/n/{b}")], "gamma", Arc::new(Nop)),
            Err(RouteError::Conflict { existing_owner, .. }) if existing_owner == "gamma"
        ));
        // Other methods, other shapes: no conflict.
        b.add_all(
            &[
                ("POST", "/a/{id}"),
                ("HEAD", "/a/{id}"),
                ("GET", "/a/b"),
                ("GET", "/a/{x}/y"),
                ("GET", "/files/{x}"),
            ],
            "delta",
            Arc::new(Nop),
        )
        .unwrap();
        assert_eq!(b.build().routes().count(), 7);
    }

    #[test]
    fn a_failed_add_all_registers_nothing() {
        let mut b = RouterBuilder::new();
        b.add_all(&[("GET", "/taken")], "first", Arc::new(Nop))
            .unwrap();
        assert!(
            b.add_all(
                &[("GET", "/ok"), ("POST", "/ok"), ("GET", "/taken")],
                "second",
                Arc::new(Nop)
            )
            .is_err()
        );
        assert!(
            b.add_all(&[("GET", "/ok2"), ("GET", "/bad{")], "third", Arc::new(Nop))
                .is_err()
        );
        let r = b.build();
        expect(
            &r,
            &[
                ("GET", "/ok", "404"),
                ("POST", "/ok", "404"),
                ("GET", "/ok2", "404"),
                ("GET", "/taken", "GET /taken"),
            ],
        );
        let owners: Vec<&str> = r.routes().map(|route| &*route.owner).collect();
        assert_eq!(owners, ["first"]);
    }

    #[test]
    fn invalid_patterns_and_methods_are_refused() {
        for pattern in [
            "",
            "a",
            "a/b",
            "/{",
            "/{}",
            "/{a",
            "/a}",
            "/x{a}",
            "/{a}x",
            "/{*r}/x",
            "/{a}/{a}",
            "/{a}/{*a}",
            "/{a b}",
            "/{*}",
            "/{a-b}",
            "/a b",
            "/a?b",
            "/a#b",
            "/{{a}}",
            "/caf\u{e9}",
        ] {
            let mut b = RouterBuilder::new();
            let err = b
                .add_all(&[("GET", pattern)], "p", Arc::new(Nop))
                .unwrap_err();
            assert!(
                matches!(&err, RouteError::InvalidPattern { pattern: p, .. } if p == pattern),
                "{pattern:?}: {err:?}"
            );
            assert!(
                err.to_string().starts_with("invalid route pattern"),
                "{err}"
            );
        }
        for method in ["", "G T", "GET\n"] {
            let err = RouterBuilder::new()
                .add_all(&[(method, "/")], "p", Arc::new(Nop))
                .unwrap_err();
            assert_eq!(
                err,
                RouteError::InvalidMethod {
                    method: method.into()
                }
            );
        }
        let mut b = RouterBuilder::new();
        b.add_all(
            &[
                ("GET", "/{*rest}"),
                ("GET", "/a//b/"),
                ("GET", "/{a_1}/{B2}"),
            ],
            "p",
            Arc::new(Nop),
        )
        .unwrap();
    }

    #[test]
    fn a_cache_keeps_its_snapshot_until_a_swap_then_takes_the_new_one() {
        let live = LiveRouter::new(router(&[("GET", "/old")]));
        let mut cache = live.cache();
        let held = live.current();
        expect(cache.refresh(&live), &[("GET", "/old", "GET /old")]);
        live.swap(router(&[("GET", "/new")]));
        expect(
            &held,
            &[("GET", "/old", "GET /old"), ("GET", "/new", "404")],
        );
        expect(
            cache.refresh(&live),
            &[("GET", "/new", "GET /new"), ("GET", "/old", "404")],
        );
    }
}
