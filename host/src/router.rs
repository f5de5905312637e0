//! `(method, pattern)` -> handler. Built once at startup, then shared read-only by every worker.
//!
//! Patterns are `/`-separated segments, each exact text, `{name}` (exactly one non-empty segment) or, last
//! only, `{*name}` (the rest of the path after that `/`, possibly empty, slashes included; so
//! `/static/{*p}` matches `/static/` and `/static/a/b` but not `/static`). Matching works on the raw
//! (percent-encoded) path and captures raw slices of it; callers decode.
//!
//! **Precedence.** Only routes of the request's method compete (then, for HEAD without a HEAD route, the
//! GET routes). Among those that match, the most specific wins, compared segment by segment from the left:
//! an exact segment beats `{param}`, which beats `{*rest}`. So with `GET /users/{id}` and
//! `POST /users/new`, `GET /users/new` is found with `id = "new"`. A path that only routes of other methods
//! match gives [`RouteMatch::MethodNotAllowed`]. Two routes of one method can never tie: equivalent
//! patterns are refused at registration as a [`RouteError::Conflict`].

use std::cmp::Ordering;
use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use crate::handler::Handler;
use crate::http::syntax::is_token;

/// One registered route.
pub struct Route {
    pub method: String,
    pub pattern: String,
    /// Who registered it: a plugin's name, `static` or `builtin`; shown in logs and conflicts.
    pub owner: Arc<str>,
    pub handler: Arc<dyn Handler>,
}

/// Why routes were refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RouteError {
    /// The pattern is not `/`-separated exact segments, `{param}`s and an optional trailing `{*rest}`.
    InvalidPattern { pattern: String, reason: String },
    /// The method is not an HTTP token (RFC 9110 §9.1), e.g. empty or with a space.
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

/// One segment of a compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    /// Matches exactly this text.
    Exact(String),
    /// `{name}`: one non-empty segment.
    Param(String),
    /// `{*name}`: the rest of the path, possibly empty.
    Rest(String),
}

impl Segment {
    /// Lower is more specific (see the module docs on precedence).
    fn rank(&self) -> u8 {
        match self {
            Segment::Exact(_) => 0,
            Segment::Param(_) => 1,
            Segment::Rest(_) => 2,
        }
    }

    /// What makes two patterns equivalent: parameter names do not count.
    fn shape(&self) -> (u8, &str) {
        match self {
            Segment::Exact(text) => (0, text),
            Segment::Param(_) | Segment::Rest(_) => (self.rank(), ""),
        }
    }
}

/// A route with its compiled pattern.
struct Entry {
    route: Route,
    segments: Vec<Segment>,
}

impl Entry {
    fn same_shape(&self, method: &str, segments: &[Segment]) -> bool {
        self.route.method == method
            && self
                .segments
                .iter()
                .map(Segment::shape)
                .eq(segments.iter().map(Segment::shape))
    }

    /// `Less` when `self` is more specific than `other` (both matching one path).
    fn specificity(&self, other: &Entry) -> Ordering {
        self.segments
            .iter()
            .map(Segment::rank)
            .cmp(other.segments.iter().map(Segment::rank))
    }

    /// Whether `path` matches; captures go to `params` when given (the only allocation of a lookup).
    fn matches<'r, 'p>(
        &'r self,
        path: &'p str,
        mut params: Option<&mut Vec<(&'r str, &'p str)>>,
    ) -> bool {
        // `None` once the last path segment has been consumed.
        let mut rest = match path.strip_prefix('/') {
            Some(rest) => Some(rest),
            None => return false,
        };
        for segment in &self.segments {
            let Some(remaining) = rest else {
                return false;
            };
            let (head, tail) = match remaining.split_once('/') {
                Some((head, tail)) => (head, Some(tail)),
                None => (remaining, None),
            };
            let captured = match segment {
                Segment::Exact(text) if head == text => None,
                Segment::Param(name) if !head.is_empty() => Some((name.as_str(), head)),
                Segment::Rest(name) => {
                    if let Some(params) = params {
                        params.push((name.as_str(), remaining));
                    }
                    return true;
                }
                _ => return false,
            };
            if let (Some(params), Some(capture)) = (params.as_deref_mut(), captured) {
                params.push(capture);
            }
            rest = tail;
        }
        rest.is_none()
    }
}

/// Keeps the more specific of the best so far and `candidate`.
fn more_specific<'r>(best: Option<&'r Entry>, candidate: &'r Entry) -> Option<&'r Entry> {
    match best {
        Some(best) if best.specificity(candidate) != Ordering::Greater => Some(best),
        _ => Some(candidate),
    }
}

/// Compiles a pattern, or says what is wrong with it.
fn parse_pattern(pattern: &str) -> Result<Vec<Segment>, String> {
    let body = pattern
        .strip_prefix('/')
        .ok_or("a pattern must start with `/`")?;
    let parts: Vec<&str> = body.split('/').collect();
    let mut segments = Vec::with_capacity(parts.len());
    for (i, part) in parts.iter().enumerate() {
        let segment = match part.strip_prefix('{') {
            Some(inner) => {
                let inner = inner.strip_suffix('}').ok_or_else(|| {
                    format!("`{part}`: a `{{` must close with `}}` at the segment's end")
                })?;
                let (name, is_rest) = match inner.strip_prefix('*') {
                    Some(name) => (name, true),
                    None => (inner, false),
                };
                if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                {
                    return Err(format!(
                        "`{part}`: a parameter name is one or more of A-Z, a-z, 0-9, _"
                    ));
                }
                if segments
                    .iter()
                    .any(|s| matches!(s, Segment::Param(n) | Segment::Rest(n) if n == name))
                {
                    return Err(format!("parameter `{name}` appears twice"));
                }
                if is_rest && i + 1 != parts.len() {
                    return Err(format!("`{part}` must be the last segment"));
                }
                if is_rest {
                    Segment::Rest(name.to_string())
                } else {
                    Segment::Param(name.to_string())
                }
            }
            None => {
                if !part
                    .bytes()
                    .all(|b| (0x21..=0x7e).contains(&b) && !b"{}?#".contains(&b))
                {
                    return Err(format!(
                        "`{part}`: exact segments are visible ASCII without `{{`, `}}`, `?` or `#` \
                         (a parameter takes a whole segment)"
                    ));
                }
                Segment::Exact(part.to_string())
            }
        };
        segments.push(segment);
    }
    Ok(segments)
}

#[derive(Default)]
pub struct RouterBuilder {
    routes: Vec<Entry>,
}

impl RouterBuilder {
    pub fn new() -> RouterBuilder {
        RouterBuilder::default()
    }

    /// Registers all `(method, pattern)` pairs for `owner`, or none of them if any is invalid or conflicts
    /// (with a route already registered, or with another pair of this call).
    pub fn add_all(
        &mut self,
        routes: &[(&str, &str)],
        owner: &str,
        handler: Arc<dyn Handler>,
    ) -> Result<(), RouteError> {
        let owner: Arc<str> = Arc::from(owner);
        let mut new = Vec::with_capacity(routes.len());
        for &(method, pattern) in routes {
            if !is_token(method.as_bytes()) {
                return Err(RouteError::InvalidMethod {
                    method: method.to_string(),
                });
            }
            let segments = parse_pattern(pattern).map_err(|reason| RouteError::InvalidPattern {
                pattern: pattern.to_string(),
                reason,
            })?;
            if let Some(existing) = self
                .routes
                .iter()
                .chain(&new)
                .find(|e| e.same_shape(method, &segments))
            {
                return Err(RouteError::Conflict {
                    method: method.to_string(),
                    pattern: pattern.to_string(),
                    existing_owner: existing.route.owner.to_string(),
                    new_owner: owner.to_string(),
                });
            }
            new.push(Entry {
                route: Route {
                    method: method.to_string(),
                    pattern: pattern.to_string(),
                    owner: Arc::clone(&owner),
                    handler: Arc::clone(&handler),
                },
                segments,
            });
        }
        self.routes.append(&mut new);
        Ok(())
    }

    pub fn build(self) -> Router {
        let mut exact = ExactRoutes::default();
        for (i, entry) in self.routes.iter().enumerate() {
            if entry
                .segments
                .iter()
                .all(|s| matches!(s, Segment::Exact(_)))
            {
                exact
                    .entry(entry.route.pattern.clone())
                    .or_default()
                    .push(i);
            }
        }
        Router {
            routes: self.routes,
            exact,
        }
    }
}

/// Patterns without parameters, by their text (which a path matches only by being equal to it), each
/// with the indices of its routes (one per method).
type ExactRoutes = HashMap<String, Vec<usize>, BuildHasherDefault<PathHasher>>;

pub struct Router {
    routes: Vec<Entry>,
    exact: ExactRoutes,
}

impl Router {
    /// Finds the route for `method` and the (still percent-encoded) `path`. HEAD falls back to GET routes.
    /// See the module docs for precedence. Allocates only the params (and `allow` for a 405).
    pub fn lookup<'r, 'p>(&'r self, method: &str, path: &'p str) -> RouteMatch<'r, 'p> {
        // A route of this method whose pattern is the path itself is as specific as a match gets: no other
        // route needs a look. (11 routes: 919 instructions for `GET /plaintext` by walking them all, 170
        // through the map.)
        if let Some(entry) = self.exact_route(method, path) {
            return RouteMatch::Found {
                route: &entry.route,
                params: Vec::new(),
            };
        }
        let mut best = None;
        let mut best_get = None;
        let mut other_methods = false;
        for entry in self.routes.iter().filter(|e| e.matches(path, None)) {
            if entry.route.method == method {
                best = more_specific(best, entry);
            } else if method == "HEAD" && entry.route.method == "GET" {
                best_get = more_specific(best_get, entry);
            } else {
                other_methods = true;
            }
        }
        if let Some(entry) = best.or(best_get) {
            let mut params = Vec::new();
            entry.matches(path, Some(&mut params));
            return RouteMatch::Found {
                route: &entry.route,
                params,
            };
        }
        if other_methods {
            return RouteMatch::MethodNotAllowed {
                allow: self.allow(path),
            };
        }
        RouteMatch::NotFound
    }

    /// The route of `method` whose pattern, free of parameters, equals `path`.
    fn exact_route(&self, method: &str, path: &str) -> Option<&Entry> {
        self.exact
            .get(path)?
            .iter()
            .filter_map(|&i| self.routes.get(i))
            .find(|entry| entry.route.method == method)
    }

    /// The methods of every route matching `path`, sorted, deduplicated, HEAD added when GET is there.
    fn allow(&self, path: &str) -> String {
        let mut methods: Vec<&str> = self
            .routes
            .iter()
            .filter(|e| e.matches(path, None))
            .map(|e| e.route.method.as_str())
            .collect();
        if methods.contains(&"GET") {
            methods.push("HEAD");
        }
        methods.sort_unstable();
        methods.dedup();
        methods.join(", ")
    }

    /// Every route, in registration order (for the admin view and logs).
    pub fn routes(&self) -> impl Iterator<Item = &Route> {
        self.routes.iter().map(|e| &e.route)
    }
}

/// FxHash, rustc's own hasher: a rotate, a xor and a multiply per eight bytes, where the standard SipHash
/// takes several times that for a short path. Keyed flooding cannot hurt here: the table is built once from
/// route patterns and only ever looked up, so a client's path never becomes a key.
#[derive(Default)]
struct PathHasher(u64);

impl PathHasher {
    const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(Self::SEED);
    }
}

impl Hasher for PathHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for word in &mut words {
            let mut buf = [0; 8];
            buf.copy_from_slice(word);
            self.add(u64::from_le_bytes(buf));
        }
        for &byte in words.remainder() {
            self.add(u64::from(byte));
        }
    }

    fn finish(&self) -> u64 {
        self.0
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
}
