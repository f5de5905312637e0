//! Unit-testing a plugin without the host: [`TestPlugin`] starts your plugin in-process through the same root
//! module, FFI types and panic guard the host uses; [`TestRequest`] builds the request.
//!
//! ```
//! # mod plugin {
//! use plugin_api::{Handler, Request, Response};
//! pub struct Greeter;
//! impl Handler for Greeter {
//!     fn handle(&self, req: &Request<'_>) -> Response {
//!         Response::text(format!("hi {}", req.param("who").unwrap_or("?")))
//!     }
//! }
//! plugin_api::export_plugin! {
//!     name: "greeter",
//!     version: "1.0.0",
//!     routes: [("GET", "/hi/{who}")],
//!     init: |_config| Ok(Greeter),
//! }
//! # }
//! use plugin_api::testing::{TestPlugin, TestRequest};
//!
//! let greeter = TestPlugin::start(plugin::plugd_plugin).unwrap();
//! let response = greeter.call(TestRequest::get("/hi/J%C3%BCrgen"));
//! assert_eq!(response.body_str(), Some("hi Jürgen"));
//! assert_eq!(greeter.call(TestRequest::post("/hi/x")).status(), 405);
//! assert_eq!(greeter.call(TestRequest::get("/nope")).status(), 404);
//! ```

use std::net::{Ipv4Addr, SocketAddr};

use crate::abi::PluginModRef;
use crate::host::Instance;
use crate::{Header, Param, Request, RequestParts, Response, Version};

/// A plugin started in-process from its root module, answering [`TestRequest`]s.
pub struct TestPlugin {
    root: PluginModRef,
    instance: Instance,
}

impl TestPlugin {
    /// Runs the plugin's `init` (with an empty configuration); `Err` is its message.
    ///
    /// `root` is the `plugd_plugin` function [`export_plugin!`](crate::export_plugin) defines in your crate.
    pub fn start(root: fn() -> PluginModRef) -> Result<TestPlugin, String> {
        TestPlugin::start_with_config(root, &[])
    }

    /// Runs the plugin's `init` with `config` as its key/value pairs.
    pub fn start_with_config(
        root: fn() -> PluginModRef,
        config: &[(&str, &str)],
    ) -> Result<TestPlugin, String> {
        let root = root();
        let library = crate::host::Library::from_root(root);
        Ok(TestPlugin {
            root,
            instance: library.init(config)?,
        })
    }

    /// Routes `request` like the host would (matching the plugin's declared routes, decoding the captures) and
    /// calls the handler. No route for the path gives 404, no route for the method 405; a panic gives 500.
    pub fn call(&self, request: TestRequest) -> Response {
        self.try_call(request).unwrap_or_else(|panic| {
            eprintln!("plugin panicked: {panic}");
            Response::text("Internal Server Error").with_status(500)
        })
    }

    /// Like [`TestPlugin::call`], but returns the message of a panic instead of a 500, to assert on it.
    pub fn try_call(&self, request: TestRequest) -> Result<Response, String> {
        let (path, query) = match request.target.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (request.target.as_str(), None),
        };
        let mut path_matched = false;
        let mut captures = None;
        for route in self.root.manifest().routes.as_slice() {
            if let Some(found) = match_pattern(route.pattern(), path) {
                path_matched = true;
                let method_ok = route.method() == request.method
                    || (request.method == "HEAD" && route.method() == "GET");
                if method_ok {
                    captures = Some(found);
                    break;
                }
            }
        }
        let Some(captures) = captures else {
            let status = if path_matched { 405 } else { 404 };
            return Ok(Response::empty(status));
        };
        let decoded: Vec<(&str, String)> = match captures
            .into_iter()
            .map(|(name, raw)| decode(raw).map(|value| (name, value)))
            .collect::<Option<_>>()
        {
            Some(decoded) => decoded,
            None => return Ok(Response::text("bad path parameter").with_status(400)),
        };
        let params: Vec<Param<'_>> = decoded.iter().map(|(n, v)| Param::new(n, v)).collect();
        let headers: Vec<Header<'_>> = request
            .headers
            .iter()
            .map(|(n, v)| Header::new(n, v))
            .collect();
        let req = Request::new(RequestParts {
            method: &request.method,
            target: &request.target,
            path,
            query,
            version: request.version,
            headers: &headers,
            params: &params,
            body: &request.body,
            peer: request.peer,
        });
        self.instance.handle(&req)
    }

    /// Calls the plugin's shutdown hook; `Err` is the message of a panic in it.
    pub fn shutdown(&self) -> Result<(), String> {
        self.instance.shutdown()
    }
}

/// Matches `path` against a route pattern, returning the raw captures in pattern order.
fn match_pattern<'p, 'a>(pattern: &'p str, path: &'a str) -> Option<Vec<(&'p str, &'a str)>> {
    let mut captures = Vec::new();
    let mut rest = path.strip_prefix('/')?;
    let mut segments = pattern.strip_prefix('/')?.split('/').peekable();
    while let Some(segment) = segments.next() {
        if let Some(name) = segment.strip_prefix("{*").and_then(|s| s.strip_suffix('}')) {
            captures.push((name, rest));
            return Some(captures);
        }
        let (head, tail) = rest.split_once('/').unwrap_or((rest, ""));
        let last = segments.peek().is_none();
        if last && rest.contains('/') {
            return None;
        }
        match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            Some(name) if !head.is_empty() => captures.push((name, head)),
            Some(_) => return None,
            None if segment == head => {}
            None => return None,
        }
        rest = tail;
    }
    Some(captures)
}

/// Percent-decodes a captured segment into text (`None` if malformed or not UTF-8, as the host answers 400).
fn decode(raw: &str) -> Option<String> {
    let mut out = Vec::with_capacity(raw.len());
    let mut bytes = raw.bytes();
    while let Some(byte) = bytes.next() {
        if byte == b'%' {
            let hex = [bytes.next()?, bytes.next()?];
            let hex = std::str::from_utf8(&hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
        } else {
            out.push(byte);
        }
    }
    String::from_utf8(out).ok()
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
}

#[cfg(test)]
mod tests {
    use super::{decode, match_pattern};

    #[test]
    fn patterns_match_like_the_router() {
        assert_eq!(match_pattern("/", "/"), Some(vec![]));
        assert_eq!(match_pattern("/a/{x}", "/a/b"), Some(vec![("x", "b")]));
        assert_eq!(match_pattern("/a/{x}", "/a/"), None);
        assert_eq!(match_pattern("/a/{x}", "/a/b/c"), None);
        assert_eq!(match_pattern("/a", "/b"), None);
        assert_eq!(
            match_pattern("/f/{*rest}", "/f/x/y"),
            Some(vec![("rest", "x/y")])
        );
    }

    #[test]
    fn captures_are_decoded_once_and_must_be_utf8() {
        assert_eq!(decode("J%C3%BCrgen").as_deref(), Some("Jürgen"));
        assert_eq!(decode("%2541").as_deref(), Some("%41"));
        assert_eq!(decode("%zz"), None);
        assert_eq!(decode("%ff"), None);
    }
}
