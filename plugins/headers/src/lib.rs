//! Example filter `headers`: response fields for every answer (security headers, cache policy), as nginx's
//! `add_header ... always`, and CORS for configured origins, including the preflight `OPTIONS` a browser
//! sends before a cross-origin request (Fetch Standard §3.2).
//!
//! Configuration (`[plugins.headers]`):
//! - `[plugins.headers.set]`: one field per key, set on every response (replacing the handler's field of that
//!   name), e.g. `X-Frame-Options = "DENY"`;
//! - `cors_origins`: origins allowed to read responses cross-origin (`"https://app.example"`, or `"*"` for
//!   any); none by default (no CORS fields at all);
//! - `cors_methods` (default `GET, HEAD, POST`), `cors_headers` (default `Content-Type, Authorization`) and
//!   `cors_max_age` (seconds a browser may cache a preflight's answer, default 600): the preflight's answer.
//!
//! Everything but the preflight is registered once as plugd's fixed fields (the configured fields, and for
//! each allowed origin the CORS fields of requests from it): plugd adds them itself, and calls this filter
//! per request only when CORS is configured (to answer preflights), and per response only for `"*"`, whose
//! `Access-Control-Allow-Origin` echoes each request's origin.

use plugin_api::filter::{Filter, FilterContext, FixedFields, Hooks, ResponseHead};
use plugin_api::{Config, InitError, Request, Response};

/// The fields and the CORS policy.
pub struct Headers {
    /// Set on every response, in configuration order.
    set: Vec<(String, String)>,
    cors: Cors,
}

/// Who may read responses cross-origin, and what a preflight answers.
struct Cors {
    origins: Vec<String>,
    methods: String,
    headers: String,
    max_age: String,
}

/// The origin `"*"`: any origin may read responses, and is named back in each.
const ANY_ORIGIN: &str = "*";

impl Cors {
    /// The value of `Access-Control-Allow-Origin` for a request from `origin`, if it is allowed.
    fn allow<'o>(&self, origin: &'o str) -> Option<&'o str> {
        self.origins
            .iter()
            .any(|allowed| allowed == ANY_ORIGIN || allowed == origin)
            .then_some(origin)
    }

    /// Whether any origin is allowed: the allowed origin is then each request's own.
    fn any_origin(&self) -> bool {
        self.origins.iter().any(|allowed| allowed == ANY_ORIGIN)
    }
}

impl Headers {
    fn new(config: &Config<'_>) -> Result<Headers, InitError> {
        let set = config
            .section("set")
            .iter()
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .collect();
        Ok(Headers {
            set,
            cors: Cors {
                origins: config.list("cors_origins")?,
                methods: config.parse_or("cors_methods", "GET, HEAD, POST".to_owned())?,
                headers: config
                    .parse_or("cors_headers", "Content-Type, Authorization".to_owned())?,
                max_age: config.parse_or::<u32>("cors_max_age", 600)?.to_string(),
            },
        })
    }
}

impl Filter for Headers {
    fn hooks(&self) -> Hooks {
        match (self.cors.origins.is_empty(), self.cors.any_origin()) {
            (true, _) => Hooks::NONE,
            (false, false) => Hooks::REQUEST,
            (false, true) => Hooks::BOTH,
        }
    }

    fn fixed_fields(&self, fields: &mut FixedFields) {
        for (name, value) in &self.set {
            fields.set(name, value);
        }
        if self.cors.any_origin() {
            return;
        }
        for origin in &self.cors.origins {
            fields
                .when_request_has("Origin", origin)
                .set("Access-Control-Allow-Origin", origin)
                .append("Vary", "Origin");
        }
    }

    fn on_request(&self, req: &Request<'_>, context: &mut FilterContext<'_>) -> Option<Response> {
        let origin = req
            .header_str("Origin")
            .and_then(|origin| self.cors.allow(origin))?;
        if self.cors.any_origin() {
            context.set(origin);
        }
        let preflight =
            req.method() == "OPTIONS" && req.header("Access-Control-Request-Method").is_some();
        preflight.then(|| {
            Response::empty(204)
                .with_header("Access-Control-Allow-Methods", self.cors.methods.clone())
                .with_header("Access-Control-Allow-Headers", self.cors.headers.clone())
                .with_header("Access-Control-Max-Age", self.cors.max_age.clone())
        })
    }

    /// Only with `"*"`: name the request's own origin.
    fn on_response(
        &self,
        _req: &Request<'_>,
        context: &FilterContext<'_>,
        head: &mut ResponseHead<'_>,
    ) {
        if !context.get().is_empty() {
            head.set_header("Access-Control-Allow-Origin", context.get());
            head.append_header("Vary", "Origin");
        }
    }
}

plugin_api::export_filter! {
    name: "headers",
    version: env!("CARGO_PKG_VERSION"),
    init: Headers::new,
}

#[cfg(test)]
mod tests {
    use plugin_api::testing::{TestFilter, TestRequest};
    use plugin_api::Response;

    fn filter() -> TestFilter {
        TestFilter::start_with_config(
            super::plugd_plugin,
            &[
                ("set.X-Frame-Options", "DENY"),
                ("set.Cache-Control", "no-store"),
                ("cors_origins", "https://app.example"),
            ],
        )
        .unwrap()
    }

    #[test]
    fn configured_fields_replace_the_handlers() {
        let inner = Response::text("x").with_header("Cache-Control", "max-age=60");
        let response = filter().call(TestRequest::get("/"), inner);
        assert_eq!(response.header("x-frame-options"), Some("DENY"));
        let cache: Vec<_> = response
            .headers()
            .filter(|(n, _)| *n == "Cache-Control")
            .collect();
        assert_eq!(cache, [("Cache-Control", "no-store")]);
        assert_eq!(
            response.header("access-control-allow-origin"),
            None,
            "no Origin sent"
        );
    }

    #[test]
    fn a_preflight_from_an_allowed_origin_is_answered_here() {
        let preflight = TestRequest::new("OPTIONS", "/api/items")
            .header("Origin", "https://app.example")
            .header("Access-Control-Request-Method", "POST");
        let response = filter().call(preflight, Response::text("route").with_status(405));
        assert_eq!(response.status(), 204);
        assert_eq!(
            response.header("access-control-allow-origin"),
            Some("https://app.example")
        );
        assert_eq!(
            response.header("access-control-allow-methods"),
            Some("GET, HEAD, POST")
        );
        assert_eq!(response.header("access-control-max-age"), Some("600"));
        assert_eq!(response.header("vary"), Some("Origin"));
    }

    #[test]
    fn other_origins_get_no_cors_fields() {
        let preflight = TestRequest::new("OPTIONS", "/")
            .header("Origin", "https://evil.example")
            .header("Access-Control-Request-Method", "POST");
        let response = filter().call(preflight, Response::empty(405));
        assert_eq!(response.status(), 405, "left to the route");
        assert_eq!(response.header("access-control-allow-origin"), None);
        let simple = TestRequest::get("/").header("Origin", "https://app.example");
        let response = filter().call(simple, Response::text("x"));
        assert_eq!(
            response.header("access-control-allow-origin"),
            Some("https://app.example")
        );
    }
}
