//! One complete request -> one response: the middleware chain around method check, route lookup, the handler
//! call, and the built-in answers (404, 405, 501, 500). A panicking handler becomes a 500 here and never
//! reaches the worker. A request the engine refuses after reading its head (413) is answered here too, so the
//! chain sees every answer that has a request (docs/ARCHITECTURE.md §15).

use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::handler::{Request, Response};
use crate::router::{RouteMatch, Router};

/// Methods defined by RFC 9110 §9 and RFC 5789 (PATCH); anything else is answered 501 (RFC 9110 §9.1).
const KNOWN_METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];

/// Who answered, for the access log.
pub const BUILTIN: &str = "builtin";

/// Routes `req` and calls its handler, inside the middleware chain. Returns the response and the name of
/// whoever produced it.
#[inline]
pub fn dispatch<'r>(router: &'r Router, req: &Request<'_>) -> (Response, &'r str) {
    router.middleware().around(req, |req| route(router, req))
}

/// The built-in answer `status` (with `reason` as its text) to a request the engine refused after its head,
/// inside the middleware chain.
pub fn refused<'r>(
    router: &'r Router,
    req: &Request<'_>,
    status: u16,
    reason: &str,
) -> (Response, &'r str) {
    router.middleware().around(req, |_| {
        (Response::text(status, format!("{reason}\n")), BUILTIN)
    })
}

/// Routes `req` and calls its handler.
fn route<'r>(router: &'r Router, req: &Request<'_>) -> (Response, &'r str) {
    let method = req.head.method;
    if !KNOWN_METHODS.contains(&method) {
        return (Response::text(501, "Not Implemented"), BUILTIN);
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
            (response, &route.owner)
        }
        RouteMatch::MethodNotAllowed { allow } => (
            Response::text(405, "Method Not Allowed").with_header("Allow", allow),
            BUILTIN,
        ),
        RouteMatch::NotFound => (Response::text(404, "Not Found"), BUILTIN),
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
