//! The types that cross the host/plugin boundary besides [`Request`] and [`Response`]: the root module every
//! plugin library exports, its manifest, and the handler object `init` returns.
//!
//! Everything here is checked by abi_stable's layout checker when the host loads a library. The compatibility
//! rules are in the crate docs ("Compatibility policy").

// `#[sabi_trait]` (abi_stable 0.11) generates impls inside a `const` block, which this newer lint flags.
#![allow(non_local_definitions)]

use abi_stable::library::RootModule;
use abi_stable::sabi_types::VersionStrings;
use abi_stable::std_types::{RBox, ROption, RResult, RSlice, RStr, RString, RVec};
use abi_stable::type_layout::TypeLayout;
use abi_stable::{declare_root_module_statics, package_version_strings, sabi_trait, StableAbi};

use crate::{Header, Request, Response};

mod filter;
mod stream;
pub use filter::{
    ContextSlot, FilterModuleV2, FilterSetup, FixedField, ResponseHeadAccess, CONTEXT_INLINE,
    FILTER_V2, HOOK_REQUEST, HOOK_RESPONSE,
};
pub use stream::{
    BodyInput, BodyInput_TO, BodyProducer, BodyProducer_TO, BodyReadError, FileModule, FileSpan,
    Produced, Producer, Reply, StreamModule, StreamWaker, Wake, Wake_TO, FILE_V1, STREAM_V1,
};

/// One `(method, pattern)` a plugin serves, e.g. `("GET", "/hello/{name}")`.
#[repr(C)]
#[derive(StableAbi, Clone, Copy, Debug)]
pub struct Route {
    method: RStr<'static>,
    pattern: RStr<'static>,
}

impl Route {
    /// A route; `pattern` uses the router's syntax: exact segments, `{param}`, a trailing `{*rest}`.
    pub const fn new(method: &'static str, pattern: &'static str) -> Route {
        Route {
            method: RStr::from_str(method),
            pattern: RStr::from_str(pattern),
        }
    }

    /// The method, e.g. `GET`.
    pub fn method(&self) -> &'static str {
        self.method.as_str()
    }

    /// The pattern, e.g. `/hello/{name}`.
    pub fn pattern(&self) -> &'static str {
        self.pattern.as_str()
    }
}

/// What a plugin declares about itself, readable before any of its code runs.
#[repr(C)]
#[derive(StableAbi, Clone, Copy, Debug)]
pub struct Manifest {
    pub name: RStr<'static>,
    pub version: RStr<'static>,
    pub routes: RSlice<'static, Route>,
}

/// One configuration entry passed to `init`.
#[repr(C)]
#[derive(StableAbi, Clone, Copy, Debug)]
pub struct ConfigEntry<'a> {
    pub key: RStr<'a>,
    pub value: RStr<'a>,
}

impl<'a> ConfigEntry<'a> {
    /// The entry `key = value`.
    pub const fn new(key: &'a str, value: &'a str) -> ConfigEntry<'a> {
        ConfigEntry {
            key: RStr::from_str(key),
            value: RStr::from_str(value),
        }
    }
}

/// Kept here too: plugin-api 0.1.0 documented this path.
pub use crate::config::Config;

/// A panic caught inside the plugin: the message, with the source location when it was available.
///
/// Only ever shown in the host's log, never sent to a client.
pub type PanicMessage = RString;

/// An optional capability a plugin offers under a versioned name ([`LOG_V1`], [`ROUTES_V1`], [`STREAM_V1`],
/// [`FILE_V1`]): a module the host
/// finds by asking, instead of a field it expects.
///
/// This is how plugd grows without stranding built plugins: abi_stable refuses a plugin whose root module has
/// fewer fields than the host's, so a grown root module would strand every plugin already built. The root module and the handler object never gain
/// fields; a new feature is a new capability type in a plugin-api patch release. A newer plugd asks an older
/// plugin for it and gets `RNone`; an older plugd never asks a newer plugin. Before using one, the host checks
/// `layout` against the type it expects with abi_stable's layout checker.
#[repr(C)]
#[derive(StableAbi, Clone, Copy, Debug)]
pub struct Capability {
    /// The layout of the module `module` points to, as the plugin compiled it.
    pub layout: &'static TypeLayout,
    /// The module, valid for as long as the object it came from (the library, or the handler object).
    pub module: *const (),
}

/// The answer of a plugin that offers no capability under a name.
pub(crate) extern "C" fn no_capability(_name: RStr<'_>) -> ROption<Capability> {
    ROption::RNone
}

/// The handler object `init` returns: the plugin's state behind an FFI-safe vtable.
///
/// `Send + Sync` from day one (marker supertraits cannot be added later); every worker calls it concurrently.
/// Its method set is final: new per-instance features come through [`PluginObject::capability`].
#[sabi_trait]
pub trait PluginObject: Send + Sync {
    /// Answers one request. `RErr` carries the message of a panic caught inside the plugin.
    fn handle(&self, req: &Request<'_>) -> RResult<Response, PanicMessage>;

    /// Called once when the host shuts down; `RSome` carries the message of a caught panic.
    fn shutdown(&self) -> ROption<PanicMessage>;

    /// The per-instance capability named `name`, if this plugin offers it (see [`Capability`]).
    #[sabi(last_prefix_field)]
    fn capability(&self, name: RStr<'_>) -> ROption<Capability>;
}

/// A plugin's handler object as the host holds it.
pub type PluginInstance = PluginObject_TO<'static, RBox<()>>;

/// The signature of a plugin's `init` entry point.
pub type InitFn =
    extern "C" fn(config: RSlice<'_, ConfigEntry<'_>>) -> RResult<PluginInstance, RString>;

/// The root module every plugin library exports (through [`export_plugin!`](crate::export_plugin)).
///
/// Its fields are final (see [`Capability`] for how features are added): abi_stable refuses a plugin whose
/// root module has fewer fields than the host's.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = PluginModRef)))]
#[sabi(missing_field(panic))]
pub struct PluginMod {
    /// Name, version and routes: read by the host before any plugin code runs.
    pub manifest: Manifest,
    /// Builds the plugin's state from its configuration, or says why it cannot.
    pub init:
        extern "C" fn(config: RSlice<'_, ConfigEntry<'_>>) -> RResult<PluginInstance, RString>,
    /// The library-level capability named `name`, if the plugin offers it (see [`Capability`]).
    #[sabi(last_prefix_field)]
    pub capability: extern "C" fn(name: RStr<'_>) -> ROption<Capability>,
}

impl RootModule for PluginModRef {
    declare_root_module_statics! {PluginModRef}
    const BASE_NAME: &'static str = "plugd_plugin";
    const NAME: &'static str = "plugd plugin";
    const VERSION_STRINGS: VersionStrings = package_version_strings!();
}

/// The library-level capability through which the host receives a plugin's `log` records: a [`LogModule`].
pub const LOG_V1: &str = "log.v1";

/// The per-instance capability that calls one route's function directly: a [`RoutesModule`].
pub const ROUTES_V1: &str = "routes.v1";

/// The per-instance capability of a filter plugin built against plugin-api 0.1.2: hooks around every request,
/// a [`FilterModule`]. Filters built against 0.1.3 and later offer [`FILTER_V2`] instead.
pub const FILTER_V1: &str = "filter.v1";

/// [`LOG_V1`]: the host installs its sink once, right after loading the library and before `init`.
#[repr(C)]
#[derive(StableAbi)]
pub struct LogModule {
    /// Makes `sink` the plugin's `log` logger and sets the plugin's maximum level to `sink.max_level`.
    pub install: extern "C" fn(sink: LogSink),
}

/// Where a plugin's enabled log records go: a host function and its context.
#[repr(C)]
#[derive(StableAbi, Clone, Copy, Debug)]
pub struct LogSink {
    /// The host's data for `log` (the plugin's name), valid for the life of the process.
    pub context: *const (),
    /// Receives one record. Called from any thread.
    pub log: extern "C" fn(context: *const (), record: &LogRecord<'_>),
    /// The host's maximum level as `log::LevelFilter` numbers: 0 off, 1 error ... 5 trace. Records above it
    /// never leave the plugin.
    pub max_level: u8,
}

/// One log record crossing from a plugin to the host.
#[repr(C)]
#[derive(StableAbi, Clone, Copy, Debug)]
pub struct LogRecord<'a> {
    /// `log::Level` as a number: 1 error ... 5 trace.
    pub level: u8,
    /// The record's target in the plugin (its module path unless the author set one).
    pub target: RStr<'a>,
    /// The formatted message.
    pub message: RStr<'a>,
}

/// [`ROUTES_V1`]: calls the function of the route at `route` (its index in the manifest) directly, so the
/// plugin never matches the path again. It is the first field of the plugin's handler object, and valid as long
/// as that object.
#[repr(C)]
#[derive(StableAbi)]
pub struct RoutesModule {
    /// Answers `req` with the route at index `route`; `RErr` carries the message of a caught panic. `module` is
    /// this module itself (through it the plugin finds its object).
    pub handle_route: extern "C" fn(
        module: &RoutesModule,
        route: usize,
        req: &Request<'_>,
    ) -> RResult<Response, PanicMessage>,
}

/// [`FILTER_V1`]: a filter's two hooks, called by the host around every request its middleware chain applies
/// the filter to. It is the first field of the plugin's handler object, and valid as long as that object.
///
/// Both hooks are synchronous plain functions (no closure crosses the boundary). `context` is one string per
/// request and filter, created empty by the host, which the request hook may fill and the response hook reads:
/// the filter's way to carry data from one hook to the other. `RErr` carries the message of a panic caught
/// inside the plugin.
#[repr(C)]
#[derive(StableAbi)]
pub struct FilterModule {
    /// Sees the request before routing: `RNone` lets it continue, `RSome` answers it instead.
    pub on_request: extern "C" fn(
        module: &FilterModule,
        req: &Request<'_>,
        context: &mut RString,
    ) -> RResult<ROption<Response>, PanicMessage>,
    /// Sees the response head before it is written and returns the edits to make to its fields.
    pub on_response: extern "C" fn(
        module: &FilterModule,
        req: &Request<'_>,
        context: &mut RString,
        head: &ResponseHeadView<'_>,
    ) -> RResult<RVec<FieldEdit>, PanicMessage>,
}

/// The head of a response as a filter's response hook sees it: status and fields, borrowed from the host.
#[repr(C)]
#[derive(StableAbi, Clone, Copy, Debug)]
pub struct ResponseHeadView<'a> {
    pub status: u16,
    pub fields: RSlice<'a, Header<'a>>,
}

/// What an edit does to the fields named [`FieldEdit::name`] (ASCII case-insensitive).
#[repr(u8)]
#[derive(StableAbi, Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldEditKind {
    /// Adds a field after the existing ones.
    Append,
    /// Removes every field of the name, then adds this one.
    Set,
    /// Removes every field of the name (the value is ignored).
    Remove,
}

/// One change a filter makes to a response's fields.
#[repr(C)]
#[derive(StableAbi, Debug)]
pub struct FieldEdit {
    pub kind: FieldEditKind,
    pub name: RString,
    pub value: RString,
}
