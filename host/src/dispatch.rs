//! One complete request -> one response: the middleware chain around method check, route lookup, the handler
//! call, and the built-in answers (404, 405, 501, 500). A panicking handler becomes a 500 here and never
//! reaches the worker. A request the engine refuses after reading its head (413) is answered here too, so the
//! chain sees every answer that has a request (docs/ARCHITECTURE.md §15).

use std::borrow::Cow;
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::handler::{Request, Response, Retired};
use crate::metrics::{self, Counted};
use crate::router::{LiveRouter, RouteMatch, Router};

/// Methods defined by RFC 9110 §9 and RFC 5789 (PATCH); anything else is answered 501 (RFC 9110 §9.1).
const KNOWN_METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];

/// Who answered, for the access log.
pub const BUILTIN: &str = "builtin";

/// Most times a request is routed again because the plugin version that its route belonged to was retired
/// meanwhile: each retry takes the router serving now, which no longer holds that version, so a second
/// retry needs a second replacement within microseconds; a third try that still finds a retired version is
/// answered 503.
const MAX_ROUTINGS: usize = 3;

/// Who answered a request: its name for the access log, the series its metrics go to.
pub struct AnsweredBy<'r> {
    /// Borrowed from the worker's router; owned when the request was routed again on a newer one.
    pub name: Cow<'r, str>,
    pub counted: Counted,
}

impl AnsweredBy<'_> {
    /// A built-in answer: no route matched.
    fn builtin() -> AnsweredBy<'static> {
        AnsweredBy::from(BUILTIN)
    }

    /// The same, owning its name: the answer of a router newer than the worker's. That router, and with
    /// it the version's series, may be gone by the time the request is counted (a second replacement):
    /// the request is counted in its route's series only.
    fn into_owned(self) -> AnsweredBy<'static> {
        AnsweredBy {
            name: Cow::Owned(self.name.into_owned()),
            counted: Counted {
                version: None,
                ..self.counted
            },
        }
    }
}

/// An answer from no route (a built-in one, or a filter's own): counted in the unmatched series.
impl<'r> From<&'r str> for AnsweredBy<'r> {
    fn from(name: &'r str) -> AnsweredBy<'r> {
        AnsweredBy {
            name: Cow::Borrowed(name),
            counted: Counted {
                route: metrics::unmatched_series(),
                version: None,
            },
        }
    }
}

/// Routes `req` on `router` (the worker's snapshot of `live`) and calls its handler, inside the middleware
/// chain. Returns the response and who produced it.
#[inline]
pub fn dispatch<'r>(
    router: &'r Router,
    live: &LiveRouter,
    req: &Request<'_>,
) -> (Response, AnsweredBy<'r>) {
    router
        .middleware()
        .around(req, |req| route(router, live, req))
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

/// Routes `req` and calls its handler. A route whose plugin version was retired since the snapshot was taken
/// is routed again on the current router (`docs/ARCHITECTURE.md` §7.1).
#[inline]
fn route<'r>(
    router: &'r Router,
    live: &LiveRouter,
    req: &Request<'_>,
) -> (Response, AnsweredBy<'r>) {
    let method = req.head.method;
    if !KNOWN_METHODS.contains(&method) {
        return (
            Response::text(501, "Not Implemented"),
            AnsweredBy::builtin(),
        );
    }
    match route_and_call(router, req) {
        Ok(answered) => answered,
        Err(Retired) => route_again(live, req),
    }
}

/// Routes `req` again on the current router, whose plugin version was retired since the worker's snapshot
/// was taken: rare, so kept out of the way of the usual path.
#[cold]
#[inline(never)]
fn route_again(live: &LiveRouter, req: &Request<'_>) -> (Response, AnsweredBy<'static>) {
    for _ in 1..MAX_ROUTINGS {
        let current = live.current();
        if let Ok((response, by)) = route_and_call(&current, req) {
            return (response, by.into_owned());
        }
    }
    log::warn!(
        "{} {}: plugins were replaced {MAX_ROUTINGS} times while it was being routed",
        req.head.method,
        req.head.path
    );
    (
        Response::text(503, "Service Unavailable"),
        AnsweredBy::builtin(),
    )
}

/// One routing of `req` on `router` and its handler's answer; `Err`: the handler was retired.
#[inline(always)]
fn route_and_call<'r>(
    router: &'r Router,
    req: &Request<'_>,
) -> Result<(Response, AnsweredBy<'r>), Retired> {
    match router.lookup(req.head.method, req.head.path) {
        RouteMatch::Found { route, params } => {
            let req = Request {
                params: &params,
                ..*req
            };
            let response = match catch_unwind(AssertUnwindSafe(|| route.handler.try_handle(&req))) {
                Ok(answer) => answer?,
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
                name: Cow::Borrowed(&route.owner),
                counted: route.counted,
            };
            Ok((response, by))
        }
        RouteMatch::MethodNotAllowed { allow } => Ok((
            Response::text(405, "Method Not Allowed").with_header("Allow", allow),
            AnsweredBy::builtin(),
        )),
        RouteMatch::NotFound => Ok((Response::text(404, "Not Found"), AnsweredBy::builtin())),
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
