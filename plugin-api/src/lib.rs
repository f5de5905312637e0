//! # plugin-api: write route handlers for plugd
//!
//! A plugd plugin is a Rust library built as a `cdylib`. Drop the compiled `.so` into plugd's plugin folder,
//! start `plugd`, and your routes are served. This crate is the only dependency you need: you write one
//! function per route, declare them with [`export_plugin!`], and never write `unsafe`.
//!
//! ## 1. The crate
//!
//! ```toml
//! [package]
//! name = "greeter"
//! version = "0.1.0"
//! edition = "2021"
//!
//! [lib]
//! crate-type = ["cdylib", "rlib"]   # cdylib for plugd, rlib for your unit tests
//!
//! [dependencies]
//! plugin-api = { path = "../plugd/plugin-api" }   # or { git = "<plugd repository>" }
//!
//! [profile.dev]
//! panic = "unwind"                  # the default, and required: panics become 500s, never aborts
//! [profile.release]
//! panic = "unwind"
//! ```
//!
//! ## 2. Routes: one function each
//!
//! Each route is `(method, pattern, function)`. The function gets your plugin's state and the borrowed
//! [`Request`], and returns a [`Response`] (or a `Result`, see 5). A method of your state type is the usual
//! way. Functions are called concurrently from all of plugd's workers through `&self`, so shared state uses
//! atomics or locks:
//!
//! ```
//! use std::sync::atomic::{AtomicU64, Ordering};
//! use plugin_api::{Request, Response};
//!
//! #[derive(Default)]
//! pub struct Greeter {
//!     greeted: AtomicU64,
//! }
//!
//! impl Greeter {
//!     fn greet(&self, req: &Request<'_>) -> Response {
//!         // `{who}` comes from the route pattern, already percent-decoded.
//!         let who = req.param("who").unwrap_or_default();
//!         let n = self.greeted.fetch_add(1, Ordering::Relaxed) + 1;
//!         Response::text(format!("Hello, {who}! (greeting #{n})"))
//!     }
//!
//!     fn count(&self, _req: &Request<'_>) -> Response {
//!         Response::text(self.greeted.load(Ordering::Relaxed).to_string())
//!     }
//! }
//!
//! plugin_api::export_plugin! {
//!     name: "greeter",
//!     version: env!("CARGO_PKG_VERSION"),
//!     routes: [
//!         ("GET", "/greet/{who}", Greeter::greet),
//!         ("GET", "/greetings", Greeter::count),
//!     ],
//!     init: |_config| Ok(Greeter::default()),
//! }
//! # use plugin_api::testing::{TestPlugin, TestRequest};
//! # let p = TestPlugin::start(plugd_plugin).unwrap();
//! # assert_eq!(p.call(TestRequest::get("/greet/Ann")).body_str(), Some("Hello, Ann! (greeting #1)"));
//! # assert_eq!(p.call(TestRequest::get("/greetings")).body_str(), Some("1"));
//! ```
//!
//! Patterns use plugd's router syntax: exact segments, `{param}` for one segment, and a trailing `{*rest}` for
//! the remainder of the path. When several patterns match, the most specific wins whatever the declaration
//! order (`/items/new` beats `/items/{id}`; see [`routing`]). The method `"*"` accepts every method, for a
//! plugin that dispatches by itself (an adapter for another framework); on the same pattern, a route of the
//! request's own method wins over it. The operator can mount all of a plugin's routes under a prefix
//! (`mount = "/api"` in its configuration table): patterns stay as you wrote them.
//!
//! A `shutdown: State::flush` argument after `init` names a function plugd calls once when it shuts down,
//! after the last request. The older single-[`Handler`] form (`routes: [("GET", "/a"), ...]` and an `init`
//! returning a [`Handler`] whose `handle` sees every route) keeps working.
//!
//! ## 3. Configuration
//!
//! `init` receives the plugin's table of plugd's configuration file (`[plugins.greeter]`) as a [`Config`], and
//! may refuse to start: the error's message is the reason plugd logs when refusing the plugin. Typed getters
//! read strings, numbers, booleans, durations (`250ms`, `2s`, `1m`, `1h`; a plain number is seconds) and
//! lists; a nested table is a [`Config::section`]. Their errors name the plugin and the key:
//!
//! ```
//! use std::time::Duration;
//! use plugin_api::{Config, InitError, Request, Response};
//!
//! pub struct Shop {
//!     greeting: String,
//!     limit: u32,
//!     timeout: Duration,
//! }
//!
//! impl Shop {
//!     // [plugins.shop]
//!     // greeting = "Welcome"      # optional
//!     // limit = 20                # required
//!     // timeout = "250ms"         # optional, default 2s
//!     fn new(config: &Config<'_>) -> Result<Shop, InitError> {
//!         Ok(Shop {
//!             greeting: config.parse_or("greeting", "Hello".to_owned())?,
//!             limit: config.require("limit")?,
//!             timeout: config.parse_or("timeout", Duration::from_secs(2))?,
//!         })
//!     }
//!
//!     fn home(&self, _req: &Request<'_>) -> Response {
//!         Response::text(format!("{} (up to {} items, {:?})", self.greeting, self.limit, self.timeout))
//!     }
//! }
//!
//! plugin_api::export_plugin! {
//!     name: "shop",
//!     version: "0.1.0",
//!     routes: [("GET", "/shop", Shop::home)],
//!     init: Shop::new,
//! }
//! # use plugin_api::testing::{TestPlugin, TestRequest};
//! let shop = TestPlugin::start_with_config(plugd_plugin, &[("limit", "20"), ("timeout", "250ms")]).unwrap();
//! assert_eq!(shop.call(TestRequest::get("/shop")).body_str(), Some("Hello (up to 20 items, 250ms)"));
//! let refused = TestPlugin::start_with_config(plugd_plugin, &[("limit", "many")]).err().unwrap();
//! assert_eq!(refused, "plugin shop: config key `limit`: expected a non-negative integer, got \"many\"");
//! ```
//!
//! ## 4. Logging
//!
//! Use the `log` crate's macros (re-exported as [`plugin_api::log`](log), or add `log = "0.4"` yourself).
//! plugd installs its logger in your plugin when it loads it, so lines appear in plugd's log under your
//! plugin's name and obey `RUST_LOG` (`RUST_LOG=info,greeter=debug`). A level plugd does not log costs one
//! comparison inside the plugin (0.36 ns measured), never a call into plugd:
//!
//! ```
//! use plugin_api::{log, Request, Response};
//!
//! fn greet(_state: &(), req: &Request<'_>) -> Response {
//!     let who = req.param("who").unwrap_or_default();
//!     log::info!("greeted {who}"); // plugd's log: [... INFO  greeter] greeted Ann
//!     log::debug!("headers: {}", req.headers().count()); // only with RUST_LOG=greeter=debug
//!     Response::text(format!("Hello, {who}!"))
//! }
//!
//! plugin_api::export_plugin! {
//!     name: "greeter",
//!     version: "0.1.0",
//!     routes: [("GET", "/greet/{who}", greet)],
//!     init: |_config| Ok(()),
//! }
//! # use plugin_api::testing::{TestPlugin, TestRequest};
//! # let p = TestPlugin::start(plugd_plugin).unwrap();
//! # assert_eq!(p.call(TestRequest::get("/greet/Ann")).body_str(), Some("Hello, Ann!"));
//! ```
//!
//! ## 5. Errors with `?`
//!
//! A route function may return `Result<Response, E>` for any `E` that converts into [`Error`]: the SDK's own,
//! which carries a status (`Error::bad_request`, `Error::not_found`, ...), or any [`std::error::Error`], which
//! becomes a `500 Internal Server Error`. A 4xx answers with its message; a 5xx's message goes to plugd's log
//! only (with the plugin's name and the request), never to the client. [`Request::query_params`] and
//! [`Request::form`] decode queries and form bodies with plugd's own decoder and fail with a 400 (or 415):
//!
//! ```
//! use plugin_api::{Error, Request, Response};
//!
//! pub struct Notes;
//!
//! impl Notes {
//!     fn page(&self, req: &Request<'_>) -> Result<Response, Error> {
//!         let page: u32 = req
//!             .query_params()?
//!             .get("page")
//!             .unwrap_or("1")
//!             .parse()
//!             .map_err(|_| Error::bad_request("page is a number"))?;
//!         let text = std::fs::read_to_string(format!("/srv/notes/{page}.txt"))?; // io::Error -> 500
//!         Ok(Response::text(text))
//!     }
//!
//!     fn add(&self, req: &Request<'_>) -> Result<Response, Error> {
//!         let form = req.form()?; // 415 if not a form, 400 if malformed
//!         let title = form.get("title").ok_or_else(|| Error::bad_request("title is required"))?;
//!         Ok(Response::text(format!("added {title}")).with_status(201))
//!     }
//! }
//!
//! plugin_api::export_plugin! {
//!     name: "notes",
//!     version: "0.1.0",
//!     routes: [("GET", "/notes", Notes::page), ("POST", "/notes", Notes::add)],
//!     init: |_config| Ok(Notes),
//! }
//! # use plugin_api::testing::{TestPlugin, TestRequest};
//! # let p = TestPlugin::start(plugd_plugin).unwrap();
//! # assert_eq!(p.call(TestRequest::get("/notes?page=x")).body_str(), Some("page is a number"));
//! # assert_eq!(p.call(TestRequest::get("/notes?page=999999")).status(), 500);
//! # assert_eq!(p.call(TestRequest::post("/notes").form("title=Hi+there")).body_str(), Some("added Hi there"));
//! # assert_eq!(p.call(TestRequest::post("/notes").body("x")).status(), 415);
//! ```
//!
//! A panic does not take plugd down either: every call into your code runs under `catch_unwind` inside your
//! library; the client gets a bare 500 and plugd logs the panic message and location.
//!
//! ## 6. Requests and responses
//!
//! [`Request`] gives the method, the raw target, the path and query (still percent-encoded), the path
//! parameters by name (decoded), the version, the header fields (in order, repeated ones kept, looked up
//! case-insensitively), cookies, the body bytes and the peer address. Nothing is copied: it all borrows the
//! host's buffer for the duration of the call.
//!
//! [`Response`] has helpers for text, HTML, JSON you built and redirects; `&'static` bodies (such as
//! `include_str!` pages) are sent without copying. plugd adds `Date`, `Server`, `Content-Length` and
//! `Connection` itself and drops those names from plugin responses (with `Transfer-Encoding`).
//!
//! ```
//! use plugin_api::Response;
//! let created = Response::json(r#"{"id":7}"#).with_status(201).with_header("Location", "/items/7");
//! let after_form = Response::see_other("/thanks");
//! assert_eq!(after_form.header("location"), Some("/thanks"));
//! # let _ = created;
//! ```
//!
//! ## 7. Testing without plugd
//!
//! [`testing::TestPlugin`] starts your plugin in-process through the same root module and FFI types plugd
//! uses, with a configuration if you give one, and routes a [`testing::TestRequest`] with plugd's own
//! matching and decoding code ([`routing`], [`percent`]), so a unit test sees what plugd would answer:
//!
//! ```
//! # mod greeter {
//! # use plugin_api::{Request, Response};
//! # pub struct Greeter;
//! # impl Greeter {
//! #     fn greet(&self, req: &Request<'_>) -> Response {
//! #         Response::text(format!("Hello, {}!", req.param("who").unwrap_or_default()))
//! #     }
//! # }
//! # plugin_api::export_plugin! { name: "greeter", version: "0.1.0",
//! #     routes: [("GET", "/greet/{who}", Greeter::greet)], init: |_config| Ok(Greeter) }
//! # }
//! # use greeter::plugd_plugin;
//! use plugin_api::testing::{TestPlugin, TestRequest};
//!
//! // In your crate: #[cfg(test)] mod tests { ... #[test] fn greets() { ... } }
//! let plugin = TestPlugin::start(plugd_plugin).expect("init");
//! let response = plugin.call(TestRequest::get("/greet/J%C3%BCrgen"));
//! assert_eq!(response.status(), 200);
//! assert_eq!(response.body_str(), Some("Hello, Jürgen!"));
//! assert_eq!(plugin.call(TestRequest::get("/greet/%+1")).status(), 400); // as plugd answers
//! assert_eq!(plugin.call(TestRequest::post("/greet/Ann")).status(), 405);
//! ```
//!
//! ## 8. Build, check and serve
//!
//! ```sh
//! cargo build --release
//! plugd check target/release/libgreeter.so        # would plugd serve it? name, version, routes, init
//! cp target/release/libgreeter.so /path/to/plugd/plugins/   # install by copy-then-rename when plugd runs
//! plugd --plugin-dir /path/to/plugd/plugins
//! # plugin loaded: greeter 0.1.0 from plugins/libgreeter.so: GET /greet/{who}
//! curl localhost:8080/greet/Ann
//! ```
//!
//! ## 9. Streaming
//!
//! A route may return a [`stream::Streaming`] instead of a [`Response`]: plugd sends the head, then asks the
//! body's producer for more whenever the client can take it (chunked, or `Content-Length` with
//! `with_length`, or until close for HTTP/1.0). A route wrapped in [`stream::streamed_body`] reads its request
//! body as it arrives, with a limit of its own. The [`stream`] module says how waiting streams hold no thread,
//! what a client that leaves does to the producer, and how a failure cuts the response. The README's example:
//!
//! ```
//! use std::io::Read;
//! use std::time::{Duration, Instant};
//! use plugin_api::stream::{channel, streamed_body, BodyReader, Produced, Streaming, Waker};
//! use plugin_api::{Error, Request, Response};
//!
//! /// 10 MiB of zeros with Content-Length, 64 KiB per call, as fast as the client reads.
//! fn zeros(_: &(), _req: &Request<'_>) -> Streaming {
//!     let mut left = 10usize << 20;
//!     let body = move |buf: &mut [u8], _: &Waker| {
//!         if left == 0 { return Produced::Done; }
//!         let n = buf.len().min(left);
//!         buf[..n].fill(0);
//!         left -= n;
//!         Produced::Wrote(n)
//!     };
//!     Response::ok_with_type("application/octet-stream", "").stream(body).with_length(10 << 20)
//! }
//!
//! /// Server-sent events pushed from a thread of your own (send blocks while the client is behind).
//! fn ticks(_: &(), _req: &Request<'_>) -> Streaming {
//!     let (sender, body) = channel(16 * 1024);
//!     std::thread::spawn(move || {
//!         for n in 1..=3 {
//!             if sender.send(format!("data: {n}\n\n")).is_err() { return; } // the client left
//!             std::thread::sleep(Duration::from_millis(100));
//!         }
//!         sender.finish();
//!     });
//!     Response::ok_with_type("text/event-stream", "").stream(body)
//! }
//!
//! /// Counts an upload of up to 1 GiB, whatever --max-body-bytes says.
//! fn upload(_: &(), _req: &Request<'_>, body: &mut BodyReader<'_>) -> Result<Response, Error> {
//!     body.set_limit(1 << 30)?;
//!     let (mut buf, mut total) = (vec![0; 64 * 1024], 0);
//!     loop {
//!         match body.read(&mut buf)? { 0 => break, n => total += n }
//!     }
//!     Ok(Response::text(format!("{total} bytes")))
//! }
//!
//! plugin_api::export_plugin! {
//!     name: "streams", version: "0.1.0",
//!     routes: [("GET", "/zeros", zeros), ("GET", "/ticks", ticks), ("POST", "/upload", streamed_body(upload))],
//!     init: |_config| Ok(()),
//! }
//! # use plugin_api::testing::{TestPlugin, TestRequest};
//! # let plugin = TestPlugin::start(plugd_plugin).unwrap();
//! # assert_eq!(plugin.call(TestRequest::get("/zeros")).body().len(), 10 << 20);
//! # assert_eq!(plugin.call(TestRequest::get("/ticks")).body_str(), Some("data: 1\n\ndata: 2\n\ndata: 3\n\n"));
//! # assert_eq!(plugin.call(TestRequest::post("/upload").body([1u8; 5000])).body_str(), Some("5000 bytes"));
//! ```
//!
//! ## Compatibility policy
//!
//! plugd checks every plugin's ABI when loading it (abi_stable's layout and version checks) and refuses an
//! incompatible one with a one-line reason naming both plugin-api versions; it never crashes on one. The
//! rules below keep already-built plugins loading as plugd grows:
//!
//! * **Patch releases (0.1.x) keep the ABI.** abi_stable accepts a plugin built against any 0.1.x in a plugd
//!   built against any 0.1.y (for a `0.y` crate, only the minor number must match; both directions are tested
//!   here). Everything that crosses the boundary — the root module ([`abi::PluginMod`]), the handler object
//!   ([`abi::PluginObject`]), [`Request`], [`Response`] — is frozen for the whole 0.1 series: no field,
//!   variant or method is added, removed or changed. (Appending even an "optional" field to the root module
//!   does not work: abi_stable refuses plugins whose root module is smaller than the host's, "too many
//!   fields".)
//! * **New features arrive as capabilities.** A capability is a module looked up by versioned name through
//!   the root module's `capability` entry or the handler object's `capability` method, both present from
//!   0.1.0; the host checks its layout before use and resolves it once, at load. 0.1.1 added two:
//!   [`abi::LOG_V1`] (plugin logs into plugd's log) and [`abi::ROUTES_V1`] (a function per route); 0.1.2
//!   added [`abi::FILTER_V1`] (filter plugins around every request: [`filter`], [`export_filter!`]) and
//!   [`abi::STREAM_V1`] (streamed responses and request bodies, section 9); 0.1.3 added two:
//!   [`abi::FILE_V1`] (a file body plugd sends with `sendfile`: [`stream::Streaming::file`]) and
//!   [`abi::FILTER_V2`], which filters built against it offer instead of `filter.v1` (hooks that allocate
//!   nothing per request, fields the host adds by itself): plugd still runs filters built against 0.1.2,
//!   while a filter built against 0.1.3 is no filter in a plugd built against 0.1.2 (a chain naming it is
//!   refused there). A plugd
//!   that knows a capability asks for it and treats `None` as "not offered", falling back to 0.1.0's
//!   behaviour: plugins built against 0.1.0 load and serve unchanged in this plugd.
//! * **A plugin built against 0.1.1 in a plugd built against 0.1.0** loads and serves: that plugd never asks
//!   for the new capabilities and calls the plugin's single `handle` entry, which finds the route itself with
//!   the same precedence rules. What it lacks there is what that plugd lacks: no configuration (`init` gets an
//!   empty one: use defaults), log lines are dropped, no mount prefix, and a `"*"` route is registered as a
//!   method literally named `*`, which no request matches.
//! * **Breaking changes** (a changed [`Request`], [`Response`] or entry point) make a new minor release
//!   (0.2.0) while plugin-api is `0.y`, and a new major after 1.0. Plugins must then be rebuilt; plugd refuses
//!   the old ones with "this plugd expects plugin-api 0.2.0, the plugin was built against plugin-api 0.1.3".
//! * abi_stable stays behind this crate (its types appear only in `#[doc(hidden)]` or host-side items), so it
//!   can be replaced without changing plugin source code.

pub mod abi;
mod config;
mod error;
mod export;
pub mod filter;
mod form;
mod guard;
pub mod host;
mod logging;
pub mod percent;
mod request;
mod response;
pub mod routing;
pub mod stream;
pub mod testing;

use std::fmt;

pub use config::{Config, ConfigError, FromConfig};
pub use error::{Error, IntoResponse};
pub use form::FormData;
/// The `log` crate this SDK forwards to plugd: `use plugin_api::log;` then `log::info!(...)` (or depend on
/// `log = "0.4"` yourself: cargo unifies the two).
pub use log;
pub use request::{Header, Param, Request, RequestParts, Version};
pub use response::{Body, Response};

/// A plugin's request handler: the one trait a plugin author implements.
///
/// Called concurrently from every plugd worker through `&self`: keep shared state in atomics or locks.
pub trait Handler: Send + Sync + 'static {
    /// Answers one request. A panic here becomes a `500` for that request only.
    fn handle(&self, req: &Request<'_>) -> Response;

    /// Called once when plugd shuts down (after the last request): flush or save what you hold.
    fn shutdown(&self) {}
}

/// Why a plugin's `init` refused to start; plugd logs the message and does not load the plugin.
///
/// Any error that implements `Display` converts into it, so `?` works in `init`.
#[derive(Debug)]
pub struct InitError(String);

impl<E: fmt::Display> From<E> for InitError {
    fn from(err: E) -> InitError {
        InitError(err.to_string())
    }
}

/// Declares this crate as a plugd plugin: its name, version, routes and how to build its state.
///
/// The function-per-route form: each route is `(method, pattern, function)` where the function is
/// `Fn(&State, &Request) -> R`, `R` being a [`Response`] or a `Result<Response, E>` with `E: Into<Error>`, and
/// `init` builds the `State`:
///
/// ```
/// # use plugin_api::{Config, Error, InitError, Request, Response};
/// pub struct Api { prefix: String }
///
/// impl Api {
///     fn new(config: &Config<'_>) -> Result<Api, InitError> {
///         let prefix: String = config.parse_or("prefix", "/api".to_owned())?;
///         if !prefix.starts_with('/') {
///             return Err(format!("prefix must start with '/', got {prefix:?}").into());
///         }
///         Ok(Api { prefix })
///     }
///     fn list(&self, _req: &Request<'_>) -> Response { Response::json("[]") }
///     fn create(&self, req: &Request<'_>) -> Result<Response, Error> {
///         let name = req.form()?.get("name").map(str::to_owned).ok_or_else(|| Error::bad_request("name?"))?;
///         Ok(Response::text(name).with_status(201))
///     }
///     fn item(&self, req: &Request<'_>) -> Response {
///         Response::text(format!("{}/items/{}", self.prefix, req.param("id").unwrap_or_default()))
///     }
/// }
///
/// /// A free function works too; its first argument is the state.
/// fn files(_api: &Api, req: &Request<'_>) -> Response {
///     Response::text(req.param("path").unwrap_or_default().to_owned())
/// }
///
/// plugin_api::export_plugin! {
///     name: "api",
///     version: "0.3.1",
///     routes: [
///         ("GET", "/api/items", Api::list),
///         ("POST", "/api/items", Api::create),
///         ("GET", "/api/items/{id}", Api::item),
///         ("GET", "/api/files/{*path}", files),
///         ("*", "/api/legacy/{*rest}", |_api: &Api, req: &Request<'_>| Response::text(req.method().to_owned())),
///     ],
///     // Any expression `FnOnce(&Config) -> Result<State, InitError>`.
///     init: Api::new,
///     // Optional: `Fn(&State)`, called once when plugd shuts down, after the last request.
///     shutdown: Api::flush,
/// }
/// # impl Api { fn flush(&self) {} }
/// ```
///
/// The single-[`Handler`] form takes `(method, pattern)` pairs and an `init` returning a [`Handler`], whose
/// `handle` answers every route (as in plugin-api 0.1.0):
///
/// ```
/// # use plugin_api::{Handler, Request, Response};
/// pub struct Everything;
/// impl Handler for Everything {
///     fn handle(&self, req: &Request<'_>) -> Response { Response::text(req.path().to_owned()) }
/// }
/// plugin_api::export_plugin! {
///     name: "everything",
///     version: "1.0.0",
///     routes: [("GET", "/a"), ("GET", "/b")],
///     init: |_config| Ok(Everything),
/// }
/// ```
///
/// Either form defines `pub fn plugd_plugin()` in your crate (the root module, which
/// [`testing::TestPlugin::start`] takes) and exports the library symbol plugd looks up. Call it once per
/// crate.
#[macro_export]
macro_rules! export_plugin {
    (
        name: $name:expr,
        version: $version:expr,
        routes: [$(($method:expr, $pattern:expr, $route:expr)),* $(,)?],
        init: $init:expr
        $(, shutdown: $shutdown:expr)? $(,)?
    ) => {
        /// This plugin's root module (generated by `plugin_api::export_plugin!`).
        pub fn plugd_plugin() -> $crate::abi::PluginModRef {
            static ROUTES: &[$crate::abi::Route] = &[$($crate::abi::Route::new($method, $pattern)),*];
            extern "C" fn init(
                config: $crate::__private::RSlice<'_, $crate::abi::ConfigEntry<'_>>,
            ) -> $crate::__private::RResult<$crate::abi::PluginInstance, $crate::__private::RString>
            {
                $crate::__private::init_routed($name, config, ROUTES, $init, |routes| {
                    let _ = &routes;
                    $(routes.add($route);)*
                    $(routes.on_shutdown($shutdown);)?
                })
            }
            $crate::__private::root_module($name, $version, ROUTES, init)
        }

        $crate::__root_module_loader_static!(plugd_plugin);
    };
    (
        name: $name:expr,
        version: $version:expr,
        routes: [$(($method:expr, $pattern:expr)),* $(,)?],
        init: $init:expr $(,)?
    ) => {
        /// This plugin's root module (generated by `plugin_api::export_plugin!`).
        pub fn plugd_plugin() -> $crate::abi::PluginModRef {
            extern "C" fn init(
                config: $crate::__private::RSlice<'_, $crate::abi::ConfigEntry<'_>>,
            ) -> $crate::__private::RResult<$crate::abi::PluginInstance, $crate::__private::RString>
            {
                $crate::__private::init($name, config, $init)
            }
            static ROUTES: &[$crate::abi::Route] = &[$($crate::abi::Route::new($method, $pattern)),*];
            $crate::__private::root_module($name, $version, ROUTES, init)
        }

        $crate::__root_module_loader_static!(plugd_plugin);
    };
}

/// Declares this crate as a plugd filter plugin: its name, version and how to build its [`filter::Filter`].
///
/// A filter serves no routes of its own; plugd runs it around the requests of every route when its name is in
/// the configuration's `middleware` list. `init` gets the plugin's `[plugins.NAME]` table as a [`Config`] like
/// any plugin's, and may refuse it:
///
/// ```
/// use plugin_api::filter::{Filter, FilterContext, ResponseHead};
/// use plugin_api::{Config, InitError, Request, Response};
///
/// /// Sends clients of the old host name to the new one, and says which worker of a fleet answered.
/// pub struct Moved {
///     new_host: String,
/// }
///
/// impl Moved {
///     fn new(config: &Config<'_>) -> Result<Moved, InitError> {
///         Ok(Moved { new_host: config.require("new_host")? })
///     }
/// }
///
/// impl Filter for Moved {
///     fn on_request(&self, req: &Request<'_>, cx: &mut FilterContext<'_>) -> Option<Response> {
///         if req.header_str("Host") == Some("old.example") {
///             return Some(Response::redirect(308, format!("https://{}{}", self.new_host, req.target())));
///         }
///         cx.set(req.path()); // kept for the response hook
///         None
///     }
///
///     fn on_response(&self, _req: &Request<'_>, cx: &FilterContext<'_>, head: &mut ResponseHead<'_>) {
///         head.set_header("X-Served-Path", cx.get());
///     }
/// }
///
/// plugin_api::export_filter! {
///     name: "moved",
///     version: "0.1.0",
///     init: Moved::new,
/// }
/// # use plugin_api::testing::{TestFilter, TestRequest};
/// let moved = TestFilter::start_with_config(plugd_plugin, &[("new_host", "new.example")]).unwrap();
/// let redirected = moved.call(TestRequest::get("/a?b").header("Host", "old.example"), Response::text("page"));
/// assert_eq!((redirected.status(), redirected.header("location")), (308, Some("https://new.example/a?b")));
/// let served = moved.call(TestRequest::get("/a").header("Host", "new.example"), Response::text("page"));
/// assert_eq!((served.body_str(), served.header("x-served-path")), (Some("page"), Some("/a")));
/// ```
///
/// It defines `pub fn plugd_plugin()` (the root module, which [`testing::TestFilter::start`] takes) and
/// exports the library symbol plugd looks up. Call it once per crate, instead of [`export_plugin!`].
#[macro_export]
macro_rules! export_filter {
    (
        name: $name:expr,
        version: $version:expr,
        init: $init:expr $(,)?
    ) => {
        /// This filter's root module (generated by `plugin_api::export_filter!`).
        pub fn plugd_plugin() -> $crate::abi::PluginModRef {
            extern "C" fn init(
                config: $crate::__private::RSlice<'_, $crate::abi::ConfigEntry<'_>>,
            ) -> $crate::__private::RResult<$crate::abi::PluginInstance, $crate::__private::RString>
            {
                $crate::__private::init_filter($name, config, $init)
            }
            $crate::__private::root_module($name, $version, &[], init)
        }

        $crate::__root_module_loader_static!(plugd_plugin);
    };
}

/// What [`export_plugin!`] expands to. Not a stable API: use the macro.
#[doc(hidden)]
pub mod __private {
    pub use crate::export::{
        init, init_filter, init_routed, root_module, IntoRoute, ReadsBody, RouteFns, WholeBody,
    };
    pub use abi_stable;
    pub use abi_stable::library::{
        __call_root_module_loader as call_root_module_loader, CheckTypeLayout, LibHeader,
        RootModuleResult,
    };
    pub use abi_stable::std_types::{RResult, RSlice, RString};
}
