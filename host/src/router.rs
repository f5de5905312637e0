//! `(method, pattern)` -> handler. Built once at startup, then shared read-only by every worker.
//!
//! OWNER: parser helper. The API below is the contract.

use std::sync::Arc;

use crate::handler::Handler;

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
    /// Another owner already serves this method on an equivalent pattern.
    Conflict {
        method: String,
        pattern: String,
        existing_owner: String,
        new_owner: String,
    },
}

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

#[derive(Default)]
pub struct RouterBuilder {
    routes: Vec<Route>,
}

impl RouterBuilder {
    pub fn new() -> RouterBuilder {
        RouterBuilder::default()
    }

    /// Registers all `(method, pattern)` pairs for `owner`, or none of them if any is invalid or conflicts.
    pub fn add_all(
        &mut self,
        routes: &[(&str, &str)],
        owner: &str,
        handler: Arc<dyn Handler>,
    ) -> Result<(), RouteError> {
        let _ = (routes, owner, handler, &mut self.routes);
        todo!("parser helper")
    }

    pub fn build(self) -> Router {
        Router {
            routes: self.routes,
        }
    }
}

pub struct Router {
    routes: Vec<Route>,
}

impl Router {
    /// Finds the route for `method` and the (still percent-encoded) `path`. HEAD falls back to GET routes.
    pub fn lookup<'r, 'p>(&'r self, method: &str, path: &'p str) -> RouteMatch<'r, 'p> {
        let _ = (method, path, &self.routes);
        todo!("parser helper")
    }
}
