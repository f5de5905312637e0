//! Route patterns and precedence: the one implementation plugd's router and [`crate::testing`] both use, so a
//! plugin's unit tests route a request exactly as plugd does.
//!
//! Patterns are `/`-separated segments, each exact text, `{name}` (exactly one non-empty segment) or, last
//! only, `{*name}` (the rest of the path after that `/`, possibly empty, slashes included; so
//! `/static/{*p}` matches `/static/` and `/static/a/b` but not `/static`). Matching works on the raw
//! (percent-encoded) path and captures raw slices of it; callers decode ([`crate::percent`]).
//!
//! **Methods.** A route's method is an HTTP method (`GET`) or [`ANY_METHOD`] (`*`), which matches every method.
//!
//! **Precedence.** Routes of the request's method and `*` routes compete; among those that match, the most
//! specific pattern wins, compared segment by segment from the left: an exact segment beats `{param}`, which
//! beats `{*rest}`. On the same pattern, the route of the request's own method beats the `*` route. So with
//! `GET /users/{id}` and `GET /users/new` (in either order), `GET /users/new` finds `/users/new`. A HEAD request
//! that no HEAD or `*` route matches is served by the GET routes. A path that only routes of other methods
//! match gives [`Lookup::MethodNotAllowed`]. Two routes of one method never tie: [`Table::conflict`] finds
//! an equivalent pattern before it is added.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// The method of a route that accepts every method (for plugins that dispatch themselves).
pub const ANY_METHOD: &str = "*";

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

/// A compiled route pattern such as `/users/{id}/files/{*path}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    text: String,
    segments: Vec<Segment>,
}

impl Pattern {
    /// Compiles `text`, or says what is wrong with it.
    pub fn parse(text: &str) -> Result<Pattern, String> {
        let body = text
            .strip_prefix('/')
            .ok_or("a pattern must start with `/`")?;
        let parts: Vec<&str> = body.split('/').collect();
        let mut segments = Vec::with_capacity(parts.len());
        for (i, part) in parts.iter().enumerate() {
            let last = i + 1 == parts.len();
            let segment = match part.strip_prefix('{') {
                Some(inner) => parse_capture(part, inner, last, &segments)?,
                None => parse_exact(part)?,
            };
            segments.push(segment);
        }
        Ok(Pattern {
            text: text.to_owned(),
            segments,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the pattern has no parameters (a path matches it only by being equal to it).
    pub fn is_exact(&self) -> bool {
        self.segments.iter().all(|s| matches!(s, Segment::Exact(_)))
    }

    /// Whether both match the same paths: the same segments, parameter names ignored.
    pub fn is_equivalent(&self, other: &Pattern) -> bool {
        self.segments
            .iter()
            .map(Segment::shape)
            .eq(other.segments.iter().map(Segment::shape))
    }

    /// The raw captures of `path` in pattern order, if it matches.
    pub fn captures<'s, 'p>(&'s self, path: &'p str) -> Option<Vec<(&'s str, &'p str)>> {
        let mut params = Vec::new();
        self.matches(path, Some(&mut params)).then_some(params)
    }

    /// `Less` when `self` is more specific than `other` (both matching one path).
    fn specificity(&self, other: &Pattern) -> Ordering {
        self.segments
            .iter()
            .map(Segment::rank)
            .cmp(other.segments.iter().map(Segment::rank))
    }

    /// Whether `path` matches; captures go to `params` when given (the only allocation of a lookup).
    fn matches<'s, 'p>(
        &'s self,
        path: &'p str,
        mut params: Option<&mut Vec<(&'s str, &'p str)>>,
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

/// `{name}` or `{*name}`; `inner` is `part` after its `{`.
fn parse_capture(
    part: &str,
    inner: &str,
    last: bool,
    before: &[Segment],
) -> Result<Segment, String> {
    let inner = inner
        .strip_suffix('}')
        .ok_or_else(|| format!("`{part}`: a `{{` must close with `}}` at the segment's end"))?;
    let (name, is_rest) = match inner.strip_prefix('*') {
        Some(name) => (name, true),
        None => (inner, false),
    };
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(format!(
            "`{part}`: a parameter name is one or more of A-Z, a-z, 0-9, _"
        ));
    }
    if before
        .iter()
        .any(|s| matches!(s, Segment::Param(n) | Segment::Rest(n) if n == name))
    {
        return Err(format!("parameter `{name}` appears twice"));
    }
    match (is_rest, last) {
        (true, false) => Err(format!("`{part}` must be the last segment")),
        (true, true) => Ok(Segment::Rest(name.to_owned())),
        (false, _) => Ok(Segment::Param(name.to_owned())),
    }
}

fn parse_exact(part: &str) -> Result<Segment, String> {
    if !part
        .bytes()
        .all(|b| (0x21..=0x7e).contains(&b) && !b"{}?#".contains(&b))
    {
        return Err(format!(
            "`{part}`: exact segments are visible ASCII without `{{`, `}}`, `?` or `#` \
             (a parameter takes a whole segment)"
        ));
    }
    Ok(Segment::Exact(part.to_owned()))
}

/// One route of a [`Table`].
#[derive(Debug)]
struct Entry<T> {
    method: String,
    pattern: Pattern,
    value: T,
}

impl<T> Entry<T> {
    fn is_any_method(&self) -> bool {
        self.method == ANY_METHOD
    }
}

/// Keeps the better of the best so far and `candidate`: the more specific pattern, then a route of the
/// request's own method over a `*` route.
fn better<'t, T>(best: Option<&'t Entry<T>>, candidate: &'t Entry<T>) -> Option<&'t Entry<T>> {
    let Some(best) = best else {
        return Some(candidate);
    };
    let order = best
        .pattern
        .specificity(&candidate.pattern)
        .then_with(|| best.is_any_method().cmp(&candidate.is_any_method()));
    Some(if order == Ordering::Greater {
        candidate
    } else {
        best
    })
}

/// The result of looking up a request.
#[derive(Debug)]
pub enum Lookup<'t, 'p, T> {
    /// The route that serves the request, with its raw captures in pattern order.
    Found {
        method: &'t str,
        pattern: &'t Pattern,
        value: &'t T,
        params: Vec<(&'t str, &'p str)>,
    },
    /// The path matches routes, but none for this method; `allow` lists their methods (with HEAD when GET),
    /// sorted, for the `Allow` field of a 405 (RFC 9110 §15.5.6).
    MethodNotAllowed {
        allow: String,
    },
    NotFound,
}

/// Routes and what each leads to (`T`: plugd's handler, or a plugin's route index in [`crate::testing`]).
#[derive(Debug)]
pub struct Table<T> {
    entries: Vec<Entry<T>>,
    /// Parameterless patterns by their text, each with the indices of its routes (one per method).
    exact: ExactRoutes,
}

/// See [`Table::exact`].
type ExactRoutes = HashMap<String, Vec<usize>, BuildHasherDefault<PathHasher>>;

impl<T> Default for Table<T> {
    fn default() -> Self {
        Table {
            entries: Vec::new(),
            exact: ExactRoutes::default(),
        }
    }
}

impl<T> Table<T> {
    /// An empty table.
    pub fn new() -> Table<T> {
        Table::default()
    }

    /// The value of a route of `method` whose pattern is equivalent to `pattern`, if there is one: adding
    /// another would make two routes tie.
    pub fn conflict(&self, method: &str, pattern: &Pattern) -> Option<&T> {
        self.entries
            .iter()
            .find(|e| e.method == method && e.pattern.is_equivalent(pattern))
            .map(|e| &e.value)
    }

    /// Adds a route. The caller checks [`Table::conflict`] first (an equivalent route of the same method would
    /// never be found).
    pub fn insert(&mut self, method: &str, pattern: Pattern, value: T) {
        if pattern.is_exact() {
            self.exact
                .entry(pattern.text.clone())
                .or_default()
                .push(self.entries.len());
        }
        self.entries.push(Entry {
            method: method.to_owned(),
            pattern,
            value,
        });
    }

    /// Every route's value, in insertion order.
    pub fn values(&self) -> impl Iterator<Item = &T> {
        self.entries.iter().map(|e| &e.value)
    }

    /// Finds the route for `method` and the (still percent-encoded) `path`; see the module docs for
    /// precedence. Allocates only the params (and `allow` for a 405).
    pub fn lookup<'t, 'p>(&'t self, method: &str, path: &'p str) -> Lookup<'t, 'p, T> {
        // A route whose pattern is the path itself is as specific as a match gets: no other route needs a
        // look. (11 routes: 919 instructions for `GET /plaintext` by walking them all, 170 through the map.)
        if let Some(entry) = self.exact_route(method, path) {
            return found(entry, Vec::new());
        }
        let mut best = None;
        let mut best_get = None;
        let mut other_methods = false;
        for entry in self
            .entries
            .iter()
            .filter(|e| e.pattern.matches(path, None))
        {
            if entry.method == method || entry.is_any_method() {
                best = better(best, entry);
            } else if method == "HEAD" && entry.method == "GET" {
                best_get = better(best_get, entry);
            } else {
                other_methods = true;
            }
        }
        if let Some(entry) = best.or(best_get) {
            let mut params = Vec::new();
            entry.pattern.matches(path, Some(&mut params));
            return found(entry, params);
        }
        if other_methods {
            return Lookup::MethodNotAllowed {
                allow: self.allow(path),
            };
        }
        Lookup::NotFound
    }

    /// The route of `method` (else of `*`) whose pattern, free of parameters, equals `path`.
    fn exact_route(&self, method: &str, path: &str) -> Option<&Entry<T>> {
        let routes = self.exact.get(path)?;
        let of = |wanted: &str| {
            routes
                .iter()
                .filter_map(|&i| self.entries.get(i))
                .find(|entry| entry.method == wanted)
        };
        of(method).or_else(|| of(ANY_METHOD))
    }

    /// The methods of every route matching `path`, sorted, deduplicated, HEAD added when GET is there.
    fn allow(&self, path: &str) -> String {
        let mut methods: Vec<&str> = self
            .entries
            .iter()
            .filter(|e| e.pattern.matches(path, None))
            .map(|e| e.method.as_str())
            .collect();
        if methods.contains(&"GET") {
            methods.push("HEAD");
        }
        methods.sort_unstable();
        methods.dedup();
        methods.join(", ")
    }
}

fn found<'t, 'p, T>(entry: &'t Entry<T>, params: Vec<(&'t str, &'p str)>) -> Lookup<'t, 'p, T> {
    Lookup::Found {
        method: &entry.method,
        pattern: &entry.pattern,
        value: &entry.value,
        params,
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

    fn table(routes: &[(&str, &str)]) -> Table<usize> {
        let mut table = Table::new();
        for (i, &(method, pattern)) in routes.iter().enumerate() {
            let pattern = Pattern::parse(pattern).unwrap();
            assert!(table.conflict(method, &pattern).is_none());
            table.insert(method, pattern, i);
        }
        table
    }

    fn found(t: &Table<usize>, method: &str, path: &str) -> String {
        match t.lookup(method, path) {
            Lookup::Found {
                method,
                pattern,
                params,
                ..
            } => {
                let params: Vec<String> = params.iter().map(|(n, v)| format!("{n}={v}")).collect();
                format!("{method} {} {}", pattern.as_str(), params.join(" "))
                    .trim_end()
                    .to_owned()
            }
            Lookup::MethodNotAllowed { allow } => format!("405 {allow}"),
            Lookup::NotFound => "404".to_owned(),
        }
    }

    #[test]
    fn declaration_order_does_not_matter() {
        for routes in [
            [("GET", "/items/{id}"), ("GET", "/items/new")],
            [("GET", "/items/new"), ("GET", "/items/{id}")],
        ] {
            let t = table(&routes);
            assert_eq!(found(&t, "GET", "/items/new"), "GET /items/new");
            assert_eq!(found(&t, "GET", "/items/7"), "GET /items/{id} id=7");
        }
    }

    #[test]
    fn any_method_routes_match_every_method_and_lose_to_the_exact_method() {
        let t = table(&[
            ("*", "/app/{*rest}"),
            ("GET", "/app/{*rest}"),
            ("*", "/hook"),
            ("POST", "/form"),
        ]);
        assert_eq!(found(&t, "GET", "/app/x"), "GET /app/{*rest} rest=x");
        assert_eq!(found(&t, "DELETE", "/app/x"), "* /app/{*rest} rest=x");
        assert_eq!(found(&t, "HEAD", "/app/x"), "* /app/{*rest} rest=x");
        assert_eq!(found(&t, "PATCH", "/hook"), "* /hook");
        assert_eq!(found(&t, "GET", "/form"), "405 POST");
        assert!(table(&[("*", "/a/{x}")])
            .conflict("*", &Pattern::parse("/a/{y}").unwrap())
            .is_some());
        assert!(table(&[("*", "/a/{x}")])
            .conflict("GET", &Pattern::parse("/a/{y}").unwrap())
            .is_none());
    }

    #[test]
    fn a_more_specific_pattern_beats_a_route_of_the_exact_method() {
        let t = table(&[("GET", "/a/{x}"), ("*", "/a/b")]);
        assert_eq!(found(&t, "GET", "/a/b"), "* /a/b");
        assert_eq!(found(&t, "GET", "/a/c"), "GET /a/{x} x=c");
    }
}
