//! Unit-testing a plugin without the host: [`TestPlugin`] starts your plugin in-process through the same root
//! module, FFI types, capabilities and panic guard plugd uses, and routes and decodes each [`TestRequest`] with
//! plugd's own code ([`crate::routing`], [`crate::percent`]), so a test sees the answer plugd would give.
//!
//! ```
//! # mod plugin {
//! use plugin_api::{Request, Response};
//! pub struct Greeter;
//! impl Greeter {
//!     fn hi(&self, req: &Request<'_>) -> Response {
//!         Response::text(format!("hi {}", req.param("who").unwrap_or("?")))
//!     }
//!     fn everyone(&self, _req: &Request<'_>) -> Response {
//!         Response::text("hi all")
//!     }
//! }
//! plugin_api::export_plugin! {
//!     name: "greeter",
//!     version: "1.0.0",
//!     // Declared first, yet `/hi/all` goes to the more specific route, as in plugd.
//!     routes: [("GET", "/hi/{who}", Greeter::hi), ("GET", "/hi/all", Greeter::everyone)],
//!     init: |_config| Ok(Greeter),
//! }
//! # }
//! use plugin_api::testing::{TestPlugin, TestRequest};
//!
//! let greeter = TestPlugin::start(plugin::plugd_plugin).unwrap();
//! let response = greeter.call(TestRequest::get("/hi/J%C3%BCrgen"));
//! assert_eq!(response.body_str(), Some("hi Jürgen"));
//! assert_eq!(greeter.call(TestRequest::get("/hi/all")).body_str(), Some("hi all"));
//! assert_eq!(greeter.call(TestRequest::get("/hi/%+1")).status(), 400);
//! assert_eq!(greeter.call(TestRequest::post("/hi/x")).status(), 405);
//! assert_eq!(greeter.call(TestRequest::get("/nope")).status(), 404);
//! ```

use std::net::{Ipv4Addr, SocketAddr};

use crate::abi::PluginModRef;
use crate::host::{EditFields, FilterState, Instance};
use crate::percent::decode_params;
use crate::routing::{Lookup, Pattern, Table};
use crate::{Header, Param, Request, RequestParts, Response, Version};

/// A plugin started in-process from its root module, answering [`TestRequest`]s.
pub struct TestPlugin {
    /// The plugin's routes, compiled with plugd's router code; each leads to its manifest index.
    routes: Table<usize>,
    instance: Instance,
}

impl TestPlugin {
    /// Runs the plugin's `init` (with an empty configuration); `Err` is its message.
    ///
    /// `root` is the `plugd_plugin` function [`export_plugin!`](crate::export_plugin) defines in your crate.
    pub fn start(root: fn() -> PluginModRef) -> Result<TestPlugin, String> {
        TestPlugin::start_with_config(root, &[])
    }

    /// Runs the plugin's `init` with `config` as its key/value pairs, as plugd passes the plugin's table of
    /// its configuration file (`greeting = "Hi"` is `("greeting", "Hi")`; see [`Config`](crate::Config)).
    pub fn start_with_config(
        root: fn() -> PluginModRef,
        config: &[(&str, &str)],
    ) -> Result<TestPlugin, String> {
        let library = crate::host::Library::from_root(root());
        let mut routes = Table::new();
        for (index, (method, pattern)) in library.routes().enumerate() {
            let pattern = Pattern::parse(pattern)
                .map_err(|reason| format!("invalid route pattern `{pattern}`: {reason}"))?;
            if routes.conflict(method, &pattern).is_some() {
                return Err(format!(
                    "route `{method} {}` is declared twice",
                    pattern.as_str()
                ));
            }
            routes.insert(method, pattern, index);
        }
        Ok(TestPlugin {
            routes,
            instance: library.init(config)?,
        })
    }

    /// Routes `request` like plugd (the same matching and precedence code) and calls the route's function.
    /// No route for the path gives 404, no route for the method 405 with `Allow`, a path parameter that is not
    /// valid percent-encoded UTF-8 gives 400, and a panic 500.
    pub fn call(&self, request: TestRequest) -> Response {
        self.try_call(request).unwrap_or_else(|panic| {
            eprintln!("plugin panicked: {panic}");
            Response::text("Internal Server Error").with_status(500)
        })
    }

    /// Like [`TestPlugin::call`], but returns the message of a panic instead of a 500, to assert on it.
    pub fn try_call(&self, request: TestRequest) -> Result<Response, String> {
        let path = request
            .target
            .split_once('?')
            .map_or(request.target.as_str(), |(path, _)| path);
        let (route, raw_params) = match self.routes.lookup(&request.method, path) {
            Lookup::Found { value, params, .. } => (*value, params),
            Lookup::MethodNotAllowed { allow } => {
                return Ok(Response::empty(405).with_header("Allow", allow))
            }
            Lookup::NotFound => return Ok(Response::empty(404)),
        };
        let decoded = match decode_params(&raw_params) {
            Ok(decoded) => decoded,
            Err(bad) => return Ok(Response::text(format!("{bad}\n")).with_status(400)),
        };
        let params: Vec<Param<'_>> = decoded.iter().map(|(n, v)| Param::new(n, v)).collect();
        request.with_view(&params, |req| self.instance.handle_route(route, req))
    }

    /// Calls the plugin's shutdown hook; `Err` is the message of a panic in it.
    pub fn shutdown(&self) -> Result<(), String> {
        self.instance.shutdown()
    }
}

/// A filter plugin started in-process from its root module: its hooks run around a [`TestRequest`] and the
/// response a route would have given, as plugd runs them.
///
/// ```
/// # mod plugin {
/// use plugin_api::filter::{Filter, FilterContext, ResponseHead};
/// use plugin_api::{Request, Response};
/// pub struct Guard;
/// impl Filter for Guard {
///     fn on_request(&self, req: &Request<'_>, cx: &mut FilterContext<'_>) -> Option<Response> {
///         cx.set(req.header_str("X-Team").unwrap_or("none"));
///         req.path().starts_with("/admin").then(|| Response::text("no").with_status(403))
///     }
///     fn on_response(&self, _req: &Request<'_>, cx: &FilterContext<'_>, head: &mut ResponseHead<'_>) {
///         head.set_header("X-Team", cx.get());
///     }
/// }
/// plugin_api::export_filter! { name: "guard", version: "1.0.0", init: |_config| Ok(Guard) }
/// # }
/// use plugin_api::testing::{TestFilter, TestRequest};
/// use plugin_api::Response;
///
/// let guard = TestFilter::start(plugin::plugd_plugin).unwrap();
/// let refused = guard.call(TestRequest::get("/admin"), Response::text("secret"));
/// assert_eq!((refused.status(), refused.body_str()), (403, Some("no")));
/// let passed = guard.call(TestRequest::get("/").header("X-Team", "blue"), Response::text("home"));
/// assert_eq!((passed.body_str(), passed.header("x-team")), (Some("home"), Some("blue")));
/// ```
pub struct TestFilter {
    instance: Instance,
}

impl TestFilter {
    /// Runs the filter's `init` (with an empty configuration); `Err` is its message, or says that the
    /// plugin is no filter.
    pub fn start(root: fn() -> PluginModRef) -> Result<TestFilter, String> {
        TestFilter::start_with_config(root, &[])
    }

    /// Runs the filter's `init` with `config` as its key/value pairs (see [`TestPlugin::start_with_config`]).
    pub fn start_with_config(
        root: fn() -> PluginModRef,
        config: &[(&str, &str)],
    ) -> Result<TestFilter, String> {
        let library = crate::host::Library::from_root(root());
        let instance = library.init(config)?;
        if !instance.is_filter() {
            return Err(format!(
                "plugin {} is no filter (it does not offer {})",
                library.name(),
                crate::abi::FILTER_V1
            ));
        }
        Ok(TestFilter { instance })
    }

    /// Runs the request hook on `request`; unless it answers, `inner` is the answer (what the route would
    /// have given); then the response hook edits that answer's fields. A panic in a hook gives a 500, as in
    /// plugd.
    pub fn call(&self, request: TestRequest, inner: Response) -> Response {
        self.try_call(request, inner).unwrap_or_else(|panic| {
            eprintln!("filter panicked: {panic}");
            Response::text("Internal Server Error").with_status(500)
        })
    }

    /// Like [`TestFilter::call`], but returns the message of a panic instead of a 500, to assert on it.
    pub fn try_call(&self, request: TestRequest, inner: Response) -> Result<Response, String> {
        request.with_view(&[], |req| {
            let mut state = FilterState::default();
            let response = self
                .instance
                .filter_request(req, &mut state)?
                .unwrap_or(inner);
            let (status, fields, body) = response.into_parts();
            let mut fields = OwnedFields(
                fields
                    .iter()
                    .map(|(n, v)| (n.to_owned(), v.to_owned()))
                    .collect(),
            );
            let view: Vec<Header<'_>> = fields
                .0
                .iter()
                .map(|(n, v)| Header::new(n, v.as_bytes()))
                .collect();
            let edits = self
                .instance
                .filter_response(req, &mut state, status, &view)?;
            edits.apply_to(&mut fields);
            let edited = fields
                .0
                .into_iter()
                .fold(Response::empty(status), |r, (n, v)| r.with_header(n, v));
            Ok(edited.with_body(body))
        })
    }
}

/// A response's fields while a [`TestFilter`]'s edits apply.
struct OwnedFields(Vec<(String, String)>);

impl EditFields for OwnedFields {
    fn remove_fields(&mut self, name: &str) {
        self.0.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }

    fn append_field(&mut self, name: &str, value: &str) {
        self.0.push((name.to_owned(), value.to_owned()));
    }
}

/// A request for [`TestPlugin::call`]: method, target, header fields, body and peer, with sensible defaults
/// (HTTP/1.1, no fields, empty body, peer `127.0.0.1:40000`).
#[derive(Clone, Debug)]
pub struct TestRequest {
    method: String,
    target: String,
    version: Version,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
    peer: SocketAddr,
}

impl TestRequest {
    /// A request with any method; `target` is a path with an optional `?query`, percent-encoded as on the wire.
    pub fn new(method: &str, target: &str) -> TestRequest {
        TestRequest {
            method: method.to_owned(),
            target: target.to_owned(),
            version: Version::Http11,
            headers: Vec::new(),
            body: Vec::new(),
            peer: SocketAddr::from((Ipv4Addr::LOCALHOST, 40000)),
        }
    }

    /// A `GET` request.
    pub fn get(target: &str) -> TestRequest {
        TestRequest::new("GET", target)
    }

    /// A `POST` request (add a body with [`TestRequest::body`] or [`TestRequest::form`]).
    pub fn post(target: &str) -> TestRequest {
        TestRequest::new("POST", target)
    }

    /// Adds a header field (repeated names are kept, in order).
    pub fn header(mut self, name: &str, value: impl AsRef<[u8]>) -> TestRequest {
        self.headers
            .push((name.to_owned(), value.as_ref().to_vec()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl AsRef<[u8]>) -> TestRequest {
        self.body = body.as_ref().to_vec();
        self
    }

    /// Sets an `application/x-www-form-urlencoded` body, e.g. `"name=test&lang=en"`.
    pub fn form(self, encoded: &str) -> TestRequest {
        self.header("Content-Type", "application/x-www-form-urlencoded")
            .body(encoded)
    }

    /// Sets the HTTP version.
    pub fn version(mut self, version: Version) -> TestRequest {
        self.version = version;
        self
    }

    /// Sets the client address.
    pub fn peer(mut self, peer: SocketAddr) -> TestRequest {
        self.peer = peer;
        self
    }

    /// Calls `f` with the FFI view of this request and the route parameters `params`.
    fn with_view<R>(&self, params: &[Param<'_>], f: impl FnOnce(&Request<'_>) -> R) -> R {
        let (path, query) = match self.target.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (self.target.as_str(), None),
        };
        let headers: Vec<Header<'_>> = self
            .headers
            .iter()
            .map(|(n, v)| Header::new(n, v))
            .collect();
        f(&Request::new(RequestParts {
            method: &self.method,
            target: &self.target,
            path,
            query,
            version: self.version,
            headers: &headers,
            params,
            body: &self.body,
            peer: self.peer,
        }))
    }
}
