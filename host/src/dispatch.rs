//! One complete request -> one response: the middleware chain around method check, route lookup, the handler
//! call, and the built-in answers (404, 405, 501, 500). A panicking handler becomes a 500 here and never
//! reaches the worker. A request the engine refuses after reading its head (413) is answered here too, so the
//! chain sees every answer that has a request (docs/ARCHITECTURE.md §15).

use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::handler::{Request, Response};
use crate::metrics::{self, SeriesId};
use crate::router::{RouteMatch, Router};

/// Methods defined by RFC 9110 §9 and RFC 5789 (PATCH); anything else is answered 501 (RFC 9110 §9.1).
const KNOWN_METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];

/// Who answered, for the access log.
pub const BUILTIN: &str = "builtin";

/// Who answered a request: its name for the access log, the series its metrics go to.
#[derive(Clone, Copy)]
pub struct AnsweredBy<'r> {
    pub name: &'r str,
    pub series: SeriesId,
}

impl AnsweredBy<'_> {
    /// A built-in answer: no route matched.
    fn builtin() -> AnsweredBy<'static> {
        AnsweredBy::from(BUILTIN)
    }
}

/// An answer from no route (a built-in one, or a filter's own): counted in the unmatched series.
impl<'r> From<&'r str> for AnsweredBy<'r> {
    fn from(name: &'r str) -> AnsweredBy<'r> {
        AnsweredBy {
            name,
            series: metrics::unmatched_series(),
        }
    }
}

/// Routes `req` and calls its handler, inside the middleware chain. Returns the response and who produced
/// it.
#[inline]
pub fn dispatch<'r>(router: &'r Router, req: &Request<'_>) -> (Response, AnsweredBy<'r>) {
    router.middleware().around(req, |req| route(router, req))
}

/// The built-in answer `status` (with `reason` as its text) to a request the engine refused after its head,
/// inside the middleware chain.
pub fn refused<'r>(
    router: &'r Router,
    req: &Request<'_>,
    status: u16,
    reason: &str,
) -> (Response, AnsweredBy<'r>) {
    router.middleware().around(req, |_| {
        (
            Response::text(status, format!("{reason}\n")),
            AnsweredBy::builtin(),
        )
    })
}

/// Routes `req` and calls its handler.
fn route<'r>(router: &'r Router, req: &Request<'_>) -> (Response, AnsweredBy<'r>) {
    let method = req.head.method;
    if !KNOWN_METHODS.contains(&method) {
        return (
            Response::text(501, "Not Implemented"),
            AnsweredBy::builtin(),
        );
    }
    match router.lookup(method, req.head.path) {
        RouteMatch::Found { route, params } => {
            let req = Request {
                params: &params,
                ..*req
            };
            let response = match catch_unwind(AssertUnwindSafe(|| route.handler.handle(&req))) {
                Ok(response) => response,
                Err(panic) => {
                    log::error!(
                        "handler of {} for {} {} panicked: {}",
                        route.owner,
                        route.method,
                        route.pattern,
                        panic_message(&panic)
                    );
                    Response::text(500, "Internal Server Error")
                }
            };
            let by = AnsweredBy {
                name: &route.owner,
                series: route.series,
            };
            (response, by)
        }
        RouteMatch::MethodNotAllowed { allow } => (
            Response::text(405, "Method Not Allowed").with_header("Allow", allow),
            AnsweredBy::builtin(),
        ),
        RouteMatch::NotFound => (Response::text(404, "Not Found"), AnsweredBy::builtin()),
    }
}
/// The text a panic was raised with, when it was a string.
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(not a string)")
}
