//! The host's side of the ABI: load a plugin library, verify it, start it, call it.
//!
//! plugd uses this module so that only plugin-api names abi_stable (it can then be replaced without touching
//! plugd). Plugin authors never need it.
//!
//! Capabilities are resolved once, when a library is loaded ([`LOG_V1`]) or started ([`ROUTES_V1`],
//! [`FILTER_V2`] or [`FILTER_V1`], [`STREAM_V1`], [`FILE_V1`]), never per request: each is checked with abi_stable's layout checker, and one that is absent (a plugin built against
//! plugin-api 0.1.0) or fails the check is not used.

use std::fmt;
use std::os::fd::FromRawFd;
use std::path::Path;
use std::ptr::NonNull;

use abi_stable::abi_stability::abi_checking::check_layout_compatibility;
use abi_stable::library::{lib_header_from_path, LibraryError};
use abi_stable::std_types::{RArc, RResult, RSlice, RSliceMut, RStr};
use abi_stable::type_level::downcasting::TD_Opaque;
use abi_stable::StableAbi;

use crate::abi::{
    self, BodyInput_TO, Capability, ConfigEntry, FileModule, LogModule, PluginInstance,
    PluginModRef, RoutesModule, StreamModule, StreamWaker, Wake_TO, FILE_V1, LOG_V1, ROUTES_V1,
    STREAM_V1,
};
pub use crate::abi::{
    BodyReadError, FieldEdit, FieldEditKind, FilterModule, FilterModuleV2, ResponseHeadView,
    FILTER_V1, FILTER_V2,
};
pub use crate::response::ResponseHeaders;
use crate::stream::Produced;
use crate::{Request, Response};
use filter::FilterHooks;
pub use filter::{FieldTarget, FilterSetup, FilterState, FixedEdit, FixedFields};

mod filter;

/// The plugin-api version this host was built against (plugins must be built against a compatible one).
pub const API_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Why a library could not be loaded as a plugin.
#[derive(Debug)]
#[non_exhaustive]
pub enum LoadFailure {
    /// The dynamic loader refused the file (not a shared library, wrong architecture, missing dependency).
    NotALibrary { reason: String },
    /// A shared library without a plugd root module: not built with `plugin_api::export_plugin!`.
    MissingRootModule,
    /// Built against a plugin-api whose ABI differs from the host's. `detail` is abi_stable's full report
    /// (hundreds of lines: log it at debug level only).
    Incompatible {
        expected: String,
        found: String,
        detail: String,
    },
    /// Anything else abi_stable reported, summarized to its first line; `detail` holds the full text.
    Other { summary: String, detail: String },
}

impl fmt::Display for LoadFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadFailure::NotALibrary { reason } => write!(f, "not a loadable library ({reason})"),
            LoadFailure::MissingRootModule => f.write_str(
                "not a plugd plugin: the library exports no plugin root module (build it with plugin_api::export_plugin!)",
            ),
            LoadFailure::Incompatible {
                expected, found, ..
            } => write!(
                f,
                "built against an incompatible plugin-api: this plugd expects {expected}, the plugin was built \
                 against {found}; rebuild the plugin against {expected}"
            ),
            LoadFailure::Other { summary, .. } => f.write_str(summary),
        }
    }
}

impl LoadFailure {
    /// abi_stable's complete report, when it has more to say than the one-line [`Display`](fmt::Display).
    pub fn detail(&self) -> Option<&str> {
        match self {
            LoadFailure::Incompatible { detail, .. } | LoadFailure::Other { detail, .. } => {
                Some(detail)
            }
            _ => None,
        }
    }

    fn from_library_error(err: LibraryError, found: Option<String>) -> LoadFailure {
        let detail = err.to_string();
        let expected = format!("plugin-api {API_VERSION}");
        let found = found.map_or_else(
            || "another version".to_owned(),
            |v| format!("plugin-api {v}"),
        );
        match err {
            LibraryError::OpenError { err, .. } => LoadFailure::NotALibrary {
                reason: first_line(&err.to_string()),
            },
            LibraryError::GetSymbolError { .. } => LoadFailure::MissingRootModule,
            LibraryError::IncompatibleVersionNumber { actual_version, .. } => {
                LoadFailure::Incompatible {
                    expected,
                    found: format!("plugin-api {actual_version}"),
                    detail,
                }
            }
            LibraryError::AbiInstability(_) => LoadFailure::Incompatible {
                expected,
                found,
                detail,
            },
            LibraryError::InvalidAbiHeader(_) => LoadFailure::Incompatible {
                expected,
                found: format!("{found} (a different abi_stable)"),
                detail,
            },
            _ => LoadFailure::Other {
                summary: first_line(&detail),
                detail,
            },
        }
    }
}

fn first_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .find(|line| !line.is_empty())
        .unwrap_or("unknown error")
        .to_owned()
}

/// A verified plugin library. Libraries are never unloaded (a loaded image may still run code or own memory
/// handed out), so everything it hands out
/// is `'static`.
#[derive(Clone, Copy)]
pub struct Library {
    root: PluginModRef,
    /// The plugin-api version the library was built against, from its abi_stable header.
    api_version: &'static str,
}

impl Library {
    /// Loads the library at `path` and checks its ABI against this host's plugin-api.
    ///
    /// Each call must use a distinct file: the dynamic loader returns the already-loaded image for a path (or a
    /// hard link) it has seen.
    pub fn load(path: &Path) -> Result<Library, LoadFailure> {
        // Not `RootModule::load_from_file`: it caches one module per root-module type, so every plugin after the
        // first would come back as the first.
        let header =
            lib_header_from_path(path).map_err(|e| LoadFailure::from_library_error(e, None))?;
        let api_version = header.version_strings().version.as_str();
        let root = header
            .init_root_module::<PluginModRef>()
            .map_err(|e| LoadFailure::from_library_error(e, Some(api_version.to_owned())))?;
        let library = Library { root, api_version };
        library.install_logging();
        Ok(library)
    }

    /// Hands the plugin a sink into this process's `log` logger, if it offers [`LOG_V1`] (plugin-api 0.1.1
    /// and later). Before `init`, so `init` can log too.
    fn install_logging(&self) {
        let offered = (self.root.capability())(RStr::from(LOG_V1)).into_option();
        if let Some(module) = checked::<LogModule>(self.name(), LOG_V1, offered) {
            // SAFETY: the layout was checked against `LogModule`; the library is never unloaded.
            let module = unsafe { module.as_ref() };
            (module.install)(crate::logging::host_sink(self.name()));
        }
    }

    /// A library's root module obtained without loading a file (the plugin is linked in, as in tests).
    pub(crate) fn from_root(root: PluginModRef) -> Library {
        Library {
            root,
            api_version: API_VERSION,
        }
    }

    /// The plugin's name from its manifest.
    pub fn name(&self) -> &'static str {
        self.root.manifest().name.as_str()
    }

    /// The plugin's own version from its manifest.
    pub fn version(&self) -> &'static str {
        self.root.manifest().version.as_str()
    }

    /// The `(method, pattern)` routes the plugin serves.
    pub fn routes(&self) -> impl Iterator<Item = (&'static str, &'static str)> {
        self.root
            .manifest()
            .routes
            .as_slice()
            .iter()
            .map(|r| (r.method(), r.pattern()))
    }

    /// Runs the plugin's `init` with `config`; `Err` is the plugin's own message (or its panic).
    pub fn init(&self, config: &[(&str, &str)]) -> Result<Instance, String> {
        let entries: Vec<ConfigEntry<'_>> = config
            .iter()
            .map(|(key, value)| ConfigEntry {
                key: RStr::from(*key),
                value: RStr::from(*value),
            })
            .collect();
        match (self.root.init())(RSlice::from(&entries[..])) {
            RResult::ROk(instance) => Ok(Instance::new(self.name(), instance)),
            RResult::RErr(message) => Err(message.into()),
        }
    }

    /// The plugin-api version the library was built against (e.g. `0.1.0`), as its header records it.
    pub fn api_version(&self) -> &'static str {
        self.api_version
    }
}

/// The module of capability `name` if it was offered and its layout is `M`'s; a mismatch is logged (once, at
/// load) and the capability is not used.
fn checked<M: StableAbi>(
    plugin: &str,
    name: &str,
    offered: Option<Capability>,
) -> Option<NonNull<M>> {
    let capability = offered?;
    if let Err(err) = check_layout_compatibility(M::LAYOUT, capability.layout) {
        log::warn!("plugin {plugin}: capability {name} has an unexpected layout, not used: {err}");
        return None;
    }
    NonNull::new(capability.module.cast_mut().cast())
}

/// A running plugin: its state, callable concurrently from every worker.
pub struct Instance {
    instance: PluginInstance,
    /// The plugin's [`ROUTES_V1`] module, resolved once at start: `None` for plugins that only offer `handle`.
    routes: Option<NonNull<RoutesModule>>,
    /// The plugin's [`STREAM_V1`] module (plugin-api 0.1.2 and later), resolved once at start.
    stream: Option<NonNull<StreamModule>>,
    /// The plugin's [`FILTER_V2`] (or, built against plugin-api 0.1.2, [`FILTER_V1`]) module, resolved once
    /// at start: `None` for plugins that are no filter.
    filter: Option<FilterHooks>,
    /// The plugin's [`FILE_V1`] module (plugin-api 0.1.3 and later), resolved once at start.
    file: Option<NonNull<FileModule>>,
}

// SAFETY: `routes`, `stream`, `filter` and `file` point into (or, for `file`, beside) the handler object `instance` owns, which is `Send + Sync` (the
// `PluginObject` trait requires both) and outlives every use through `&self`.
unsafe impl Send for Instance {}
// SAFETY: as above.
unsafe impl Sync for Instance {}

/// A route's answer through [`Instance::answer`]: a response, and the producer of its body when it streams.
pub struct Answer {
    /// Status and fields; its body is ignored when `body` is set.
    pub response: Response,
    pub body: Option<Producer>,
    /// The streamed body's exact length, when the plugin declared it.
    pub length: Option<u64>,
    /// The body as a file to send (a plugin's [`crate::stream::FileBody`]), in place of `body`.
    pub file: Option<FileSpan>,
}

/// `len` bytes of `file` from `offset`: a body the host sends with `sendfile`.
#[derive(Debug)]
pub struct FileSpan {
    pub file: std::fs::File,
    pub offset: u64,
    pub len: u64,
}

impl Instance {
    pub(crate) fn new(plugin: &str, instance: PluginInstance) -> Instance {
        let offered = instance.capability(RStr::from(ROUTES_V1)).into_option();
        let routes = checked::<RoutesModule>(plugin, ROUTES_V1, offered);
        let offered = instance.capability(RStr::from(STREAM_V1)).into_option();
        let stream = checked::<StreamModule>(plugin, STREAM_V1, offered);
        let filter = FilterHooks::offered_by(plugin, &instance);
        let offered = instance.capability(RStr::from(FILE_V1)).into_option();
        let file = checked::<FileModule>(plugin, FILE_V1, offered);
        Instance {
            instance,
            routes,
            stream,
            filter,
            file,
        }
    }

    /// Whether the plugin is a filter (offers [`FILTER_V1`]), so a middleware chain may name it.
    pub fn is_filter(&self) -> bool {
        self.filter.is_some()
    }

    /// Calls the filter's request hook: `Ok(None)` lets the request continue, `Ok(Some(response))` answers
    /// it. A plugin that is no filter lets every request continue. `Err` is the message of a caught panic.
    #[inline]
    pub fn filter_request(
        &self,
        req: &Request<'_>,
        context: &mut FilterState,
    ) -> Result<Option<Response>, String> {
        match &self.filter {
            Some(hooks) => hooks.on_request(req, context),
            None => Ok(None),
        }
    }

    /// Calls the filter's response hook on the head `status` + `fields`, which the hook edits in place. A
    /// plugin that is no filter leaves them. `Err` is the message of a caught panic.
    #[inline]
    pub fn filter_response(
        &self,
        req: &Request<'_>,
        context: &mut FilterState,
        status: u16,
        fields: &mut impl FieldTarget,
    ) -> Result<(), String> {
        match &self.filter {
            Some(hooks) => hooks.on_response(req, context, status, fields),
            None => Ok(()),
        }
    }

    /// What the filter asks of the host (its hooks, its fixed fields): call once, after start. A plugin
    /// that is no filter asks for nothing; one built against plugin-api 0.1.2 for both hooks.
    pub fn filter_setup(&self) -> Result<FilterSetup, String> {
        match &self.filter {
            Some(hooks) => hooks.setup(),
            None => Ok(FilterSetup::default()),
        }
    }

    /// Calls the plugin's handler; `Err` is the message of a panic the plugin caught (log it, answer 500).
    #[inline]
    pub fn handle(&self, req: &Request<'_>) -> Result<Response, String> {
        self.instance.handle(req).into_result().map_err(Into::into)
    }

    /// Calls the function of route `route` (its index in the manifest) when the plugin has one per route,
    /// else its handler, which routes by itself. `Err` is the message of a caught panic.
    ///
    /// Inline: it is the per-request path of every plugin call in plugd.
    #[inline]
    pub fn handle_route(&self, route: usize, req: &Request<'_>) -> Result<Response, String> {
        match self.routes {
            Some(module) => {
                // SAFETY: checked against `RoutesModule` at start; valid while `self.instance` lives.
                let module = unsafe { module.as_ref() };
                (module.handle_route)(module, route, req)
                    .into_result()
                    .map_err(Into::into)
            }
            None => self.handle(req),
        }
    }

    /// Whether the plugin can answer with streamed responses ([`STREAM_V1`]).
    pub fn streams(&self) -> bool {
        self.stream.is_some()
    }

    /// Whether route `route` reads its body as it arrives: call [`Instance::answer`] with a body source as
    /// soon as the head is in.
    pub fn body_streamed(&self, route: usize) -> bool {
        self.stream_module()
            .is_some_and(|module| (module.body_streamed)(module, route))
    }

    /// Calls route `route`, which may answer with a streamed body. `body` is the request body to read, for a
    /// route whose [`Instance::body_streamed`] is true (`None`: the body is in `req`). Falls back to
    /// [`Instance::handle_route`] for plugins without [`STREAM_V1`]. `Err` is the message of a caught panic.
    pub fn answer(
        &self,
        route: usize,
        req: &Request<'_>,
        body: Option<&mut dyn BodySource>,
    ) -> Result<Answer, String> {
        let Some(module) = self.stream_module() else {
            return self.handle_route(route, req).map(|response| Answer {
                response,
                body: None,
                length: None,
                file: None,
            });
        };
        let mut adapter = body.map(SourceAdapter);
        let input = adapter
            .as_mut()
            .map(|adapter| BodyInput_TO::from_ptr(adapter, TD_Opaque));
        match (module.handle_route)(module, route, req, input.into()) {
            RResult::ROk(reply) => {
                let mut body = reply.body.into_option();
                let file = body.as_mut().and_then(|body| self.take_file(body));
                Ok(Answer {
                    response: reply.response,
                    body: body.filter(|_| file.is_none()).map(Producer),
                    length: reply.length.into_option(),
                    file,
                })
            }
            RResult::RErr(panic) => Err(panic.into()),
        }
    }

    /// The file `body` sends, when the plugin says it is one ([`FILE_V1`]).
    fn take_file(&self, body: &mut abi::Producer) -> Option<FileSpan> {
        // SAFETY: checked against `FileModule` at start; a plugin's module lives as long as its library.
        let module = unsafe { self.file?.as_ref() };
        let span = (module.take_file)(body).into_option()?;
        if span.fd < 0 {
            return None;
        }
        // SAFETY: per `take_file`'s contract the plugin handed this open descriptor over and no longer uses
        // it: it is ours to own and close.
        let file = unsafe { std::fs::File::from_raw_fd(span.fd) };
        Some(FileSpan {
            file,
            offset: span.offset,
            len: span.len,
        })
    }

    fn stream_module(&self) -> Option<&StreamModule> {
        // SAFETY: checked against `StreamModule` at start; valid while `self.instance` lives.
        self.stream.map(|module| unsafe { &*module.as_ptr() })
    }

    /// Calls the plugin's shutdown hook; `Err` is the message of a panic the plugin caught.
    pub fn shutdown(&self) -> Result<(), String> {
        match self.instance.shutdown().into_option() {
            None => Ok(()),
            Some(message) => Err(message.into()),
        }
    }
}

/// A request body the host reads for a plugin, as it arrives.
pub trait BodySource {
    /// The next de-framed bytes into `buf`; `Ok(0)` at the end of the body. May block.
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, BodyReadError>;
    /// Sets the most bytes the body may have.
    fn set_limit(&mut self, limit: u64) -> Result<(), BodyReadError>;
    /// The body's `Content-Length`, if it has one.
    fn length(&self) -> Option<u64>;
}

/// A [`BodySource`] as the plugin's [`abi::BodyInput`].
struct SourceAdapter<'a>(&'a mut dyn BodySource);

impl abi::BodyInput for SourceAdapter<'_> {
    fn read(&mut self, mut buf: RSliceMut<'_, u8>) -> RResult<usize, BodyReadError> {
        self.0.read(buf.as_mut_slice()).into()
    }

    fn set_limit(&mut self, limit: u64) -> RResult<(), BodyReadError> {
        self.0.set_limit(limit).into()
    }

    fn length(&self) -> abi_stable::std_types::ROption<u64> {
        self.0.length().into()
    }
}

/// A plugin's producer of a streamed response body. Dropping it ends the stream on the plugin's side.
pub struct Producer(abi::Producer);

impl Producer {
    /// Asks for the next bytes of the body, written at the start of `buf`. A panic inside the plugin comes
    /// back as [`Produced::Failed`].
    pub fn produce(&mut self, buf: &mut [u8], waker: &Waker) -> Produced {
        let len = buf.len();
        match self.0.produce(RSliceMut::from_mut_slice(buf), &waker.0) {
            abi::Produced::Wrote(n) if n > 0 && n <= len => Produced::Wrote(n),
            abi::Produced::Wrote(n) => {
                Produced::Failed(format!("the producer wrote {n} bytes into {len}"))
            }
            abi::Produced::Pending => Produced::Pending,
            abi::Produced::Done => Produced::Done,
            abi::Produced::Failed(why) => Produced::Failed(why.into()),
        }
    }
}

impl Producer {
    /// A producer that reads `span`: what a plugd without sendfile would be given for it.
    pub(crate) fn reading(span: FileSpan) -> Producer {
        let body = crate::stream::FileBody::new(span.file, span.offset, span.len);
        Producer(crate::stream::file_producer(body))
    }
}

impl fmt::Debug for Producer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Producer")
    }
}

/// What a host does when a plugin wakes one of its streams.
pub trait Wake: Send + Sync + 'static {
    /// Schedules another call of the stream's producer; `false` if the stream is over.
    fn wake(&self) -> bool;
}

/// The waker a host hands to a stream's producer.
#[derive(Clone)]
pub struct Waker(StreamWaker);

impl Waker {
    /// A waker that calls `target` when the plugin wakes it.
    pub fn new(target: std::sync::Arc<dyn Wake>) -> Waker {
        Waker(Wake_TO::from_ptr(RArc::new(HostWake(target)), TD_Opaque))
    }
}

/// A host's [`Wake`] as the plugin's [`abi::Wake`].
#[derive(Clone)]
struct HostWake(std::sync::Arc<dyn Wake>);

impl abi::Wake for HostWake {
    fn wake(&self) -> bool {
        self.0.wake()
    }
}
