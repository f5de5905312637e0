//! # plugin-api: write a route handler for plugd
//!
//! A plugd plugin is a Rust library built as a `cdylib`. Drop the compiled `.so` into plugd's plugin folder,
//! start `plugd`, and your routes are served. This crate is the only dependency you need: you implement a
//! plain [`Handler`], declare your plugin with [`export_plugin!`], and never write `unsafe`.
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
//! ## 2. The handler
//!
//! A handler gets a borrowed [`Request`] and returns a [`Response`]. It is called concurrently from all of
//! plugd's workers through `&self`, so shared state uses atomics or locks:
//!
//! ```
//! use std::sync::atomic::{AtomicU64, Ordering};
//! use plugin_api::{Handler, Request, Response};
//!
//! #[derive(Default)]
//! pub struct Greeter {
//!     greeted: AtomicU64,
//! }
//!
//! impl Handler for Greeter {
//!     fn handle(&self, req: &Request<'_>) -> Response {
//!         // `{who}` comes from the route pattern below, already percent-decoded.
//!         let who = req.param("who").unwrap_or("stranger");
//!         let n = self.greeted.fetch_add(1, Ordering::Relaxed) + 1;
//!         Response::text(format!("Hello, {who}! (greeting #{n})"))
//!     }
//! }
//!
//! plugin_api::export_plugin! {
//!     name: "greeter",
//!     version: env!("CARGO_PKG_VERSION"),
//!     routes: [("GET", "/greet/{who}")],
//!     init: |_config| Ok(Greeter::default()),
//! }
//! # use plugin_api::testing::{TestPlugin, TestRequest};
//! # let p = TestPlugin::start(plugd_plugin).unwrap();
//! # assert_eq!(p.call(TestRequest::get("/greet/Ann")).body_str(), Some("Hello, Ann! (greeting #1)"));
//! ```
//!
//! Routes use plugd's router syntax: exact segments, `{param}` for one segment, and a trailing `{*rest}` for
//! the remainder of the path. A plugin with several routes tells them apart by [`Request::method`],
//! [`Request::path`] or the parameters present. `init` builds your state; it gets the plugin's
//! [`Config`] (key/value pairs; empty for now) and may refuse to start with an error message, which plugd
//! logs and which keeps the plugin from loading. Anything implementing `Display` converts into an
//! [`InitError`] with `?`.
//!
//! ## 3. Requests and responses
//!
//! [`Request`] gives the method, the raw target, the path and query (still percent-encoded), the path
//! parameters by name (decoded), the version, the header fields (in order, repeated ones kept, looked up
//! case-insensitively), the body bytes and the peer address. Nothing is copied: it all borrows the host's
//! buffer for the duration of the call.
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
//! ## 4. Panics
//!
//! A panic in your handler does not take plugd down: every call into your code runs under `catch_unwind`
//! inside your library. The client gets a bare `500 Internal Server Error` (the message is never sent) and
//! plugd logs the panic message and location with your plugin's name and the request.
//!
//! ## 5. Testing without plugd
//!
//! [`testing::TestPlugin`] starts your plugin in-process through the same root module and FFI types plugd
//! uses, routes a [`testing::TestRequest`] like plugd would, and returns the [`Response`]:
//!
//! ```
//! # mod greeter {
//! # use plugin_api::{Handler, Request, Response};
//! # pub struct Greeter;
//! # impl Handler for Greeter {
//! #     fn handle(&self, req: &Request<'_>) -> Response {
//! #         Response::text(format!("Hello, {}!", req.param("who").unwrap_or("stranger")))
//! #     }
//! # }
//! # plugin_api::export_plugin! { name: "greeter", version: "0.1.0",
//! #     routes: [("GET", "/greet/{who}")], init: |_config| Ok(Greeter) }
//! # }
//! # use greeter::plugd_plugin;
//! use plugin_api::testing::{TestPlugin, TestRequest};
//!
//! // In your crate: #[cfg(test)] mod tests { ... #[test] fn greets() { ... } }
//! let plugin = TestPlugin::start(plugd_plugin).expect("init");
//! let response = plugin.call(TestRequest::get("/greet/Ann"));
//! assert_eq!(response.status(), 200);
//! assert_eq!(response.body_str(), Some("Hello, Ann!"));
//! ```
//!
//! ## 6. Build and serve
//!
//! ```sh
//! cargo build --release
//! cp target/release/libgreeter.so /path/to/plugd/plugins/   # install by copy-then-rename when plugd runs
//! plugd --plugin-dir /path/to/plugd/plugins
//! # plugin loaded: greeter 0.1.0 from plugins/libgreeter.so: GET /greet/{who}
//! curl localhost:8080/greet/Ann
//! ```
//!
//! ## Compatibility policy
//!
//! plugd checks every plugin's ABI when loading it (abi_stable's layout and version checks) and refuses an
//! incompatible one with a one-line reason naming both plugin-api versions; it never crashes on one. The
//! rules below keep already-built plugins loading as plugd grows:
//!
//! * **Patch releases (0.1.x) keep the ABI.** abi_stable accepts a plugin built against any 0.1.x in a plugd
//!   built against any 0.1.y (for a `0.y` crate, only the minor number must match). Everything that crosses
//!   the boundary — the root module ([`abi::PluginMod`]), the handler object ([`abi::PluginObject`]),
//!   [`Request`], [`Response`] — is frozen for the whole 0.1 series: no field, variant or method is added,
//!   removed or changed. (Appending even an "optional" field to the root module does not work: abi_stable
//!   refuses plugins whose root module is smaller than the host's, "too many fields". That was verified
//!   here.)
//! * **New features arrive as capabilities.** Streaming bodies, middleware hooks, hot-reload hooks and the
//!   like become new [`abi::Capability`] types, looked up by versioned name (`"streaming.v1"`) through the
//!   root module's `capability` entry or the handler object's `capability` method, both present from 0.1.0.
//!   A plugd that knows a capability asks for it and treats `None` as "not offered" (falling back to
//!   today's behaviour); a plugin built before the capability existed answers `None`. Each capability's
//!   layout is checked by the host before use. Author-side conveniences (new helpers, `From` impls, optional
//!   `export_plugin!` arguments) also ship in patch releases.
//! * **Breaking changes** (a changed [`Request`], [`Response`] or entry point) make a new minor release
//!   (0.2.0) while plugin-api is `0.y`, and a new major after 1.0. Plugins must then be rebuilt; plugd refuses
//!   the old ones with "plugd expects plugin-api 0.2.0, the plugin was built against plugin-api 0.1.3".
//! * abi_stable stays behind this crate (its types appear only in `#[doc(hidden)]` or host-side items), so it
//!   can be replaced without changing plugin source code.

pub mod abi;
mod config;
mod error;
mod export;
mod form;
mod guard;
pub mod host;
mod logging;
pub mod percent;
mod request;
mod response;
pub mod routing;
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

/// Declares this crate as a plugd plugin: its name, version, routes and how to build its [`Handler`].
///
/// ```
/// # use plugin_api::{Handler, Request, Response};
/// # pub struct Api { prefix: String }
/// # impl Handler for Api {
/// #     fn handle(&self, _req: &Request<'_>) -> Response { Response::text(self.prefix.clone()) }
/// # }
/// plugin_api::export_plugin! {
///     name: "api",
///     version: "0.3.1",
///     routes: [
///         ("GET", "/api/items"),
///         ("POST", "/api/items"),
///         ("GET", "/api/items/{id}"),
///         ("GET", "/api/files/{*path}"),
///     ],
///     // Any expression `FnOnce(&Config) -> Result<impl Handler, InitError>`, e.g. `Api::new`.
///     init: |config| {
///         let prefix = config.get("prefix").unwrap_or("/api").to_owned();
///         if !prefix.starts_with('/') {
///             return Err(format!("prefix must start with '/', got {prefix:?}").into());
///         }
///         Ok(Api { prefix })
///     },
/// }
/// ```
///
/// It defines `pub fn plugd_plugin()` in your crate (the root module, which
/// [`testing::TestPlugin::start`] takes) and exports the library symbol plugd looks up. Call it once per
/// crate.
#[macro_export]
macro_rules! export_plugin {
    (
        name: $name:expr,
        version: $version:expr,
        routes: [$(($method:expr, $pattern:expr, $route:expr)),* $(,)?],
        init: $init:expr $(,)?
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

/// What [`export_plugin!`] expands to. Not a stable API: use the macro.
#[doc(hidden)]
pub mod __private {
    pub use crate::export::{init, init_routed, root_module, RouteFns};
    pub use abi_stable;
    pub use abi_stable::library::{
        __call_root_module_loader as call_root_module_loader, CheckTypeLayout, LibHeader,
        RootModuleResult,
    };
    pub use abi_stable::std_types::{RResult, RSlice, RString};
}
