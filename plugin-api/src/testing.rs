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
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::abi::{BodyReadError, PluginModRef};
use crate::host::{
    Answer, BodySource, FieldTarget, FilterSetup, FilterState, Instance, Producer, Wake, Waker,
};
use crate::percent::decode_params;
use crate::routing::{Lookup, Pattern, Table};
use crate::stream::Produced;
use crate::{Header, Param, Request, RequestParts, Response, Version};

/// plugd's default `--max-body-bytes`: the limit of a streamed body its route did not raise.
const DEFAULT_BODY_LIMIT: u64 = 1024 * 1024;
/// The buffer plugd lends a streamed response's producer per call.
const PRODUCE_BUFFER: usize = 64 * 1024;
/// How long [`TestPlugin::call`] waits for a pending producer before giving up on it.
const PIECE_TIMEOUT: Duration = Duration::from_secs(10);

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
    /// valid percent-encoded UTF-8 gives 400, and a panic 500. A streamed response is read to its end into
    /// the returned response's body (use [`TestPlugin::stream`] for one that does not end).
    pub fn call(&self, request: TestRequest) -> Response {
        self.try_call(request).unwrap_or_else(|panic| {
            eprintln!("plugin panicked: {panic}");
            Response::text("Internal Server Error").with_status(500)
        })
    }

    /// Like [`TestPlugin::call`], but returns the message of a panic (or of a streamed body that failed)
    /// instead of a 500, to assert on it.
    pub fn try_call(&self, request: TestRequest) -> Result<Response, String> {
        let mut stream = self.stream(request)?;
        let body = stream.is_streamed().then(|| stream.collect()).transpose()?;
        let response = std::mem::replace(&mut stream.response, Response::empty(200));
        Ok(match body {
            Some(body) => response.with_body(body),
            None => response,
        })
    }

    /// Routes and calls like [`TestPlugin::call`], and hands back the response with its body still to be
    /// produced, piece by piece, as plugd would send it ([`TestStream::next_piece`]). Dropping the
    /// [`TestStream`] is what a client that disconnects does to the producer. A route whose body is
    /// [`streamed_body`](crate::stream::streamed_body) reads the request body in 16 KiB pieces, with plugd's
    /// default limit (1 MiB) unless it raises it; a failed read answers its status, as plugd does.
    ///
    /// ```
    /// # mod plugin {
    /// use plugin_api::stream::{Produced, Streaming};
    /// use plugin_api::{Request, Response};
    /// fn count(_state: &(), _req: &Request<'_>) -> Streaming {
    ///     let mut n = 0;
    ///     Response::ok_with_type("text/plain", "").stream(move |buf: &mut [u8], _: &_| {
    ///         n += 1;
    ///         buf[0] = b'0' + n % 10;
    ///         Produced::Wrote(1) // never ends
    ///     })
    /// }
    /// plugin_api::export_plugin! { name: "count", version: "0.1.0",
    ///     routes: [("GET", "/count", count)], init: |_config| Ok(()) }
    /// # }
    /// use std::time::Duration;
    /// use plugin_api::testing::{TestPlugin, TestRequest};
    ///
    /// let plugin = TestPlugin::start(plugin::plugd_plugin).unwrap();
    /// let mut stream = plugin.stream(TestRequest::get("/count")).unwrap();
    /// assert_eq!(stream.response().status(), 200);
    /// let wait = Duration::from_secs(1);
    /// assert_eq!(stream.next_piece(wait).unwrap().as_deref(), Some(&b"1"[..]));
    /// assert_eq!(stream.next_piece(wait).unwrap().as_deref(), Some(&b"2"[..]));
    /// drop(stream); // the client leaves: the producer is dropped
    /// ```
    pub fn stream(&self, request: TestRequest) -> Result<TestStream, String> {
        let (path, query) = match request.target.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (request.target.as_str(), None),
        };
        let (route, raw_params) = match self.routes.lookup(&request.method, path) {
            Lookup::Found { value, params, .. } => (*value, params),
            Lookup::MethodNotAllowed { allow } => {
                return Ok(TestStream::whole(
                    Response::empty(405).with_header("Allow", allow),
                ))
            }
            Lookup::NotFound => return Ok(TestStream::whole(Response::empty(404))),
        };
        let decoded = match decode_params(&raw_params) {
            Ok(decoded) => decoded,
            Err(bad) => {
                return Ok(TestStream::whole(
                    Response::text(format!("{bad}\n")).with_status(400),
                ))
            }
        };
        let params: Vec<Param<'_>> = decoded.iter().map(|(n, v)| Param::new(n, v)).collect();
        let headers: Vec<Header<'_>> = request
            .headers
            .iter()
            .map(|(n, v)| Header::new(n, v))
            .collect();
        let streamed = self.instance.body_streamed(route);
        let req = Request::new(RequestParts {
            method: &request.method,
            target: &request.target,
            path,
            query,
            version: request.version,
            headers: &headers,
            params: &params,
            body: if streamed { b"" } else { &request.body },
            peer: request.peer,
        });
        let mut source = PiecesOf::new(&request.body);
        let body: Option<&mut dyn BodySource> = if streamed { Some(&mut source) } else { None };
        let answer = self.instance.answer(route, &req, body)?;
        if let Some(failed) = source.failed {
            return Ok(TestStream::whole(
                Response::text(failed.reason()).with_status(failed.status()),
            ));
        }
        let head_only = request.method == "HEAD";
        Ok(TestStream::new(answer, head_only))
    }

    /// Calls the plugin's shutdown hook; `Err` is the message of a panic in it.
    pub fn shutdown(&self) -> Result<(), String> {
        self.instance.shutdown()
    }
}

/// A request body handed to a [`streamed_body`](crate::stream::streamed_body) route in pieces, as plugd
/// hands it over while it arrives.
struct PiecesOf<'b> {
    body: &'b [u8],
    at: usize,
    limit: u64,
    failed: Option<BodyReadError>,
}

impl<'b> PiecesOf<'b> {
    /// Bytes handed over per read at most, as a socket would deliver them.
    const PIECE: usize = 16 * 1024;

    fn new(body: &'b [u8]) -> PiecesOf<'b> {
        PiecesOf {
            body,
            at: 0,
            limit: DEFAULT_BODY_LIMIT,
            failed: None,
        }
    }

    fn fail<T>(&mut self, err: BodyReadError) -> Result<T, BodyReadError> {
        self.failed = Some(err);
        Err(err)
    }
}

impl BodySource for PiecesOf<'_> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, BodyReadError> {
        if self.body.len() as u64 > self.limit {
            return self.fail(BodyReadError::TooLarge);
        }
        let n = buf.len().min(Self::PIECE).min(self.body.len() - self.at);
        buf[..n].copy_from_slice(&self.body[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }

    fn set_limit(&mut self, limit: u64) -> Result<(), BodyReadError> {
        self.limit = limit;
        if self.body.len() as u64 > limit {
            return self.fail(BodyReadError::TooLarge);
        }
        Ok(())
    }

    fn length(&self) -> Option<u64> {
        Some(self.body.len() as u64)
    }
}

/// A response whose body is produced piece by piece, as [`TestPlugin::stream`] hands it back.
pub struct TestStream {
    response: Response,
    producer: Option<Producer>,
    /// Whether plugd would send the body as a file (`sendfile`); its bytes are read here.
    file: bool,
    length: Option<u64>,
    signal: Arc<Signal>,
    waker: Waker,
}

/// Wake-ups of a [`TestStream`]'s producer.
#[derive(Default)]
struct Signal {
    /// (woken since the producer last answered `Pending`, the stream is over)
    state: Mutex<(bool, bool)>,
    woken: Condvar,
}

impl Wake for Signal {
    fn wake(&self) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.0 = true;
        self.woken.notify_all();
        !state.1
    }
}

impl TestStream {
    fn new(answer: Answer, head_only: bool) -> TestStream {
        let signal = Arc::new(Signal::default());
        let waker = Waker::new(Arc::clone(&signal) as Arc<dyn Wake>);
        // A file plugd would send with sendfile is read through the same producer an older plugd calls.
        let file = answer.file.map(Producer::reading);
        TestStream {
            response: answer.response,
            file: file.is_some(),
            producer: answer.body.or(file).filter(|_| !head_only),
            length: answer.length,
            signal,
            waker,
        }
    }

    fn whole(response: Response) -> TestStream {
        TestStream::new(
            Answer {
                response,
                body: None,
                length: None,
                file: None,
            },
            false,
        )
    }

    /// The response's status and fields (its body, for a response that does not stream).
    pub fn response(&self) -> &Response {
        &self.response
    }

    /// Whether the body is produced piece by piece.
    pub fn is_streamed(&self) -> bool {
        self.producer.is_some()
    }

    /// Whether the body is a file, which plugd sends itself (`sendfile`): see
    /// [`Streaming::file`](crate::stream::Streaming::file).
    pub fn is_file(&self) -> bool {
        self.file
    }

    /// The streamed body's declared length (`Content-Length`), if the route gave one.
    pub fn length(&self) -> Option<u64> {
        self.length
    }

    /// The next piece of a streamed body: `Ok(None)` at its end (at once for a response that does not
    /// stream), `Err` when the producer failed or panicked (plugd would cut the response there), or stayed
    /// pending for `timeout`.
    pub fn next_piece(&mut self, timeout: Duration) -> Result<Option<Vec<u8>>, String> {
        let deadline = Instant::now() + timeout;
        let mut buf = vec![0u8; PRODUCE_BUFFER];
        loop {
            let Some(producer) = self.producer.as_mut() else {
                return Ok(None);
            };
            self.signal
                .state
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .0 = false;
            match producer.produce(&mut buf, &self.waker) {
                Produced::Wrote(n) => return Ok(Some(buf[..n].to_vec())),
                Produced::Done => {
                    self.producer = None;
                    return Ok(None);
                }
                Produced::Failed(why) => {
                    self.producer = None;
                    return Err(why);
                }
                Produced::Pending => self.wait_for_wake(deadline)?,
            }
        }
    }

    fn wait_for_wake(&self, deadline: Instant) -> Result<(), String> {
        let mut state = self.signal.state.lock().unwrap_or_else(|p| p.into_inner());
        while !state.0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err("the producer stayed pending".to_owned());
            }
            state = self
                .signal
                .woken
                .wait_timeout(state, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        Ok(())
    }

    /// The rest of the body (the whole body for a response that does not stream), each piece waited for
    /// up to 10 s. A declared length the body does not match is an error, as plugd would cut it.
    pub fn collect(&mut self) -> Result<Vec<u8>, String> {
        if self.producer.is_none() {
            return Ok(self.response.body().to_vec());
        }
        let mut body = Vec::new();
        while let Some(piece) = self.next_piece(PIECE_TIMEOUT)? {
            body.extend_from_slice(&piece);
        }
        match self.length {
            Some(length) if length != body.len() as u64 => Err(format!(
                "the body has {} bytes, its declared length is {length}",
                body.len()
            )),
            _ => Ok(body),
        }
    }
}

impl Drop for TestStream {
    fn drop(&mut self) {
        self.signal
            .state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .1 = true;
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
    /// The hooks to call and the fixed fields, asked once as plugd asks.
    setup: FilterSetup,
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
        TestFilter::of(library.name(), library.init(config)?)
    }

    /// The filter `instance` (of plugin `name`), with its setup asked once.
    pub(crate) fn of(name: &str, instance: Instance) -> Result<TestFilter, String> {
        if !instance.is_filter() {
            return Err(format!(
                "plugin {name} is no filter (it offers neither {} nor {})",
                crate::abi::FILTER_V2,
                crate::abi::FILTER_V1
            ));
        }
        let setup = instance.filter_setup()?;
        Ok(TestFilter { instance, setup })
    }

    /// Runs the request hook on `request`; unless it answers, `inner` is the answer (what the route would
    /// have given); then the fixed fields and the response hook edit that answer's fields. Hooks the filter
    /// did not ask for are skipped, as in plugd. A panic in a hook gives a 500, as in plugd.
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
            let answer = match self.setup.request {
                true => self.instance.filter_request(req, &mut state)?,
                false => None,
            };
            let (status, fields, body) = answer.unwrap_or(inner).into_parts();
            let mut fields = OwnedFields(
                fields
                    .iter()
                    .map(|(n, v)| (n.to_owned(), v.to_owned()))
                    .collect(),
            );
            self.setup.fixed.apply(req, &mut fields);
            if self.setup.response {
                self.instance
                    .filter_response(req, &mut state, status, &mut fields)?;
            }
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

impl FieldTarget for OwnedFields {
    fn field(&self, index: usize) -> Option<(&str, &[u8])> {
        self.0
            .get(index)
            .map(|(name, value)| (name.as_str(), value.as_bytes()))
    }

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
