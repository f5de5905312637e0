//! What [`export_plugin!`](crate::export_plugin) expands to, kept out of the macro so it is ordinary,
//! type-checked code. Not part of the author-facing API.

use std::sync::OnceLock;

use abi_stable::prefix_type::PrefixTypeTrait;
use abi_stable::std_types::{ROption, RResult, RSlice, RStr, RString};
use abi_stable::type_level::downcasting::TD_Opaque;
use abi_stable::StableAbi;

use abi_stable::sabi_types::RMut;

use crate::abi::{
    no_capability, BodyInput_TO, Capability, ConfigEntry, ContextSlot, FileModule, FilterModuleV2,
    FilterSetup, InitFn, Manifest, PanicMessage, PluginInstance, PluginMod, PluginModRef,
    PluginObject, PluginObject_TO, ResponseHeadAccess, Route, RoutesModule, StreamModule, FILE_V1,
    FILTER_V2, ROUTES_V1, STREAM_V1,
};
use crate::filter::{self, Filter, FilterContext, ResponseHead};
use crate::guard::catch;
use crate::logging::library_capability;
use crate::routing::{Lookup, Pattern, Table};
use crate::stream::{self, BodyReader, IntoReply, Reply, StreamedBody};
use crate::{abi, Config, Handler, InitError, Request, Response};

/// The symbol abi_stable looks up in a plugin library (`abi_stable::library::ROOT_MODULE_LOADER_NAME`;
/// a unit test keeps the two equal). The macro spells it out because `#[export_root_module]` would make
/// every plugin crate depend on abi_stable by name.
#[doc(hidden)]
#[macro_export]
macro_rules! __root_module_loader_static {
    ($root:path) => {
        #[no_mangle]
        #[allow(non_upper_case_globals)]
        pub static _1as_0lib_1header_0root_bmodule_bloader: $crate::__private::LibHeader = {
            extern "C" fn erased_root_module() -> $crate::__private::RootModuleResult {
                $crate::__private::call_root_module_loader($root)
            }
            // SAFETY: `erased_root_module` returns the root module of type `PluginModRef`, as
            // `#[export_root_module]` would generate it.
            unsafe {
                $crate::__private::LibHeader::from_constructor::<$crate::abi::PluginModRef>(
                    erased_root_module,
                    $crate::__private::CheckTypeLayout::Yes,
                )
            }
        };
    };
}

/// The handler object of the single-[`Handler`] form: every call guarded by `catch_unwind`.
struct Guarded<H>(H);

impl<H: Handler> PluginObject for Guarded<H> {
    fn handle(&self, req: &Request<'_>) -> RResult<Response, PanicMessage> {
        catch(|| self.0.handle(req)).map_err(RString::from).into()
    }

    fn shutdown(&self) -> ROption<PanicMessage> {
        catch(|| self.0.shutdown()).err().map(RString::from).into()
    }

    fn capability(&self, name: RStr<'_>) -> ROption<Capability> {
        no_capability(name)
    }
}

/// Wraps a handler into the FFI object the host calls (also used by [`crate::testing`]).
pub(crate) fn instance<H: Handler>(handler: H) -> PluginInstance {
    PluginObject_TO::from_value(Guarded(handler), TD_Opaque)
}

/// The body of a plugin's `init` entry point in the single-[`Handler`] form: runs the author's constructor
/// under `catch_unwind`.
pub fn init<H, F>(
    name: &'static str,
    config: RSlice<'_, ConfigEntry<'_>>,
    build: F,
) -> RResult<PluginInstance, RString>
where
    H: Handler,
    F: FnOnce(&Config<'_>) -> Result<H, InitError>,
{
    start(name, config, build, instance)
}

/// Builds the author's state from the configuration and wraps it with `wrap`, all under `catch_unwind`.
fn start<S, F>(
    name: &'static str,
    config: RSlice<'_, ConfigEntry<'_>>,
    build: F,
    wrap: impl FnOnce(S) -> PluginInstance,
) -> RResult<PluginInstance, RString>
where
    F: FnOnce(&Config<'_>) -> Result<S, InitError>,
{
    let config = Config::new(config.as_slice()).for_plugin(name);
    match catch(|| build(&config).map(wrap)) {
        Ok(Ok(instance)) => RResult::ROk(instance),
        Ok(Err(err)) => RResult::RErr(err.0.into()),
        Err(panic) => RResult::RErr(format!("init panicked: {panic}").into()),
    }
}

/// One route's function, its result already turned into a reply. Every route gets a body reader; only a
/// [`streamed_body`](crate::stream::streamed_body) route's function looks at it.
type RouteFn<S> = Box<dyn Fn(&S, &Request<'_>, &mut BodyReader<'_>) -> Reply + Send + Sync>;

/// The function-per-route form's shutdown hook.
type ShutdownFn<S> = Box<dyn Fn(&S) + Send + Sync>;

/// The route functions of the function-per-route form, in manifest order, and its shutdown hook (what
/// `export_plugin!` fills in).
pub struct RouteFns<S> {
    fns: Vec<RouteFn<S>>,
    /// Per route: whether it reads its body as it arrives.
    streamed: Vec<bool>,
    shutdown: Option<ShutdownFn<S>>,
}

/// A route function `export_plugin!` accepts: `(&S, &Request) -> R`, or a
/// [`streamed_body`](crate::stream::streamed_body) one. `M` only tells the two apart.
pub trait IntoRoute<S, M> {
    /// The function as [`RouteFns`] stores it, and whether it reads its body as it arrives.
    fn into_route(self) -> (RouteFn<S>, bool);
}

/// [`IntoRoute`]'s marker for a route whose body is read whole.
pub struct WholeBody<R>(std::marker::PhantomData<R>);

/// [`IntoRoute`]'s marker for a [`streamed_body`](crate::stream::streamed_body) route.
pub struct ReadsBody<R>(std::marker::PhantomData<R>);

/// The reply of a route function, an error answered as its status says.
fn reply(result: impl IntoReply, req: &Request<'_>) -> Reply {
    match result.into_reply() {
        Ok(reply) => reply,
        Err(error) => Reply::Whole(error.into_response(req.method(), req.path())),
    }
}

impl<S, F, R> IntoRoute<S, WholeBody<R>> for F
where
    F: Fn(&S, &Request<'_>) -> R + Send + Sync + 'static,
    R: IntoReply,
{
    fn into_route(self) -> (RouteFn<S>, bool) {
        (
            Box::new(move |state, req, _body| reply(self(state, req), req)),
            false,
        )
    }
}

impl<S, F, R> IntoRoute<S, ReadsBody<R>> for StreamedBody<F>
where
    F: Fn(&S, &Request<'_>, &mut BodyReader<'_>) -> R + Send + Sync + 'static,
    R: IntoReply,
{
    fn into_route(self) -> (RouteFn<S>, bool) {
        let route = self.0;
        (
            Box::new(move |state, req, body| reply(route(state, req, body), req)),
            true,
        )
    }
}

impl<S: 'static> RouteFns<S> {
    /// Appends the function of the next route: a function or method `(&S, &Request) -> R`, or one wrapped in
    /// [`streamed_body`](crate::stream::streamed_body).
    pub fn add<M>(&mut self, route: impl IntoRoute<S, M>) {
        let (route, streamed) = route.into_route();
        self.fns.push(route);
        self.streamed.push(streamed);
    }

    /// Sets the function called once when the host shuts down.
    pub fn on_shutdown(&mut self, shutdown: impl Fn(&S) + Send + Sync + 'static) {
        self.shutdown = Some(Box::new(shutdown));
    }
}

/// The body of a plugin's `init` entry point in the function-per-route form: builds the state, then the
/// route functions (`add_routes` calls [`RouteFns::add`] once per route, in manifest order).
pub fn init_routed<S, F>(
    name: &'static str,
    config: RSlice<'_, ConfigEntry<'_>>,
    routes: &'static [Route],
    build: F,
    add_routes: impl FnOnce(&mut RouteFns<S>),
) -> RResult<PluginInstance, RString>
where
    S: Send + Sync + 'static,
    F: FnOnce(&Config<'_>) -> Result<S, InitError>,
{
    let mut fns = RouteFns {
        fns: Vec::new(),
        streamed: Vec::new(),
        shutdown: None,
    };
    add_routes(&mut fns);
    start(name, config, build, |state| {
        PluginObject_TO::from_value(
            Routed {
                module: RoutesModule {
                    handle_route: handle_route::<S>,
                },
                stream: StreamModule {
                    body_streamed: body_streamed::<S>,
                    handle_route: handle_streaming::<S>,
                },
                state,
                fns: fns.fns,
                streamed: fns.streamed,
                shutdown: fns.shutdown,
                manifest: routes,
                table: OnceLock::new(),
            },
            TD_Opaque,
        )
    })
}

/// The handler object of the function-per-route form.
///
/// `#[repr(C)]` with the [`RoutesModule`] first: the module handed to the host is the object's own address,
/// which is how [`handle_route`] finds the object again ([`handle_streaming`] subtracts its module's offset).
#[repr(C)]
struct Routed<S> {
    module: RoutesModule,
    stream: StreamModule,
    state: S,
    /// One per manifest route, in the same order.
    fns: Vec<RouteFn<S>>,
    /// One per manifest route: whether it reads its body as it arrives.
    streamed: Vec<bool>,
    shutdown: Option<ShutdownFn<S>>,
    manifest: &'static [Route],
    /// The manifest's routes, compiled on first use by [`PluginObject::handle`], which only a host without
    /// [`ROUTES_V1`] (plugd built against plugin-api 0.1.0) calls.
    table: OnceLock<Table<usize>>,
}

impl<S: Send + Sync + 'static> Routed<S> {
    /// The route's reply; `body` is the host's reader of a streamed body (else the body is in `req`).
    fn call<'a>(
        &self,
        route: usize,
        req: &'a Request<'a>,
        body: Option<BodyInput_TO<'a, RMut<'a, ()>>>,
    ) -> Result<Reply, String> {
        catch(|| match self.fns.get(route) {
            Some(route) => route(&self.state, req, &mut stream::body_for(body, req)),
            None => Reply::Whole(Response::empty(404)),
        })
    }

    /// The route's reply as a whole response, for hosts without [`STREAM_V1`].
    fn call_whole(&self, route: usize, req: &Request<'_>) -> Result<Response, String> {
        self.call(route, req, None).map(|reply| match reply {
            Reply::Whole(response) => response,
            Reply::Streamed(_) => {
                log::error!(
                    "{} {}: this route streams its response, which this plugd (before plugin-api 0.1.2) cannot send",
                    req.method(),
                    req.path()
                );
                Response::text("Internal Server Error").with_status(500)
            }
        })
    }

    fn table(&self) -> &Table<usize> {
        self.table.get_or_init(|| {
            let mut table = Table::new();
            for (index, route) in self.manifest.iter().enumerate() {
                // plugd refuses a plugin whose patterns do not compile or tie, so these only skip what it
                // would never have served.
                if let Ok(pattern) = Pattern::parse(route.pattern()) {
                    if table.conflict(route.method(), &pattern).is_none() {
                        table.insert(route.method(), pattern, index);
                    }
                }
            }
            table
        })
    }
}

/// [`RoutesModule::handle_route`] of a `Routed<S>`.
extern "C" fn handle_route<S: Send + Sync + 'static>(
    module: &RoutesModule,
    route: usize,
    req: &Request<'_>,
) -> RResult<Response, PanicMessage> {
    // SAFETY: this function is only ever stored in the `module` field of a `Routed<S>`, which is `#[repr(C)]`
    // with `module` first, so the module's address is the object's; the host calls it through the module it
    // got from that object's `capability`, valid while the object lives.
    let routed = unsafe { &*(module as *const RoutesModule).cast::<Routed<S>>() };
    routed.call_whole(route, req).map_err(RString::from).into()
}

/// The `Routed<S>` whose [`StreamModule`] `module` is.
///
/// # Safety
/// `module` must be the `stream` field of a live `Routed<S>`.
unsafe fn routed_of<S>(module: &StreamModule) -> &Routed<S> {
    let offset = std::mem::offset_of!(Routed<S>, stream);
    // SAFETY: per the contract, stepping back by the field's offset gives the object's address.
    unsafe {
        &*(module as *const StreamModule)
            .cast::<u8>()
            .sub(offset)
            .cast::<Routed<S>>()
    }
}

/// [`StreamModule::body_streamed`] of a `Routed<S>`.
extern "C" fn body_streamed<S: Send + Sync + 'static>(module: &StreamModule, route: usize) -> bool {
    // SAFETY: only ever stored in the `stream` field of a `Routed<S>`, handed out by its `capability`.
    let routed = unsafe { routed_of::<S>(module) };
    routed.streamed.get(route).copied().unwrap_or(false)
}

/// [`StreamModule::handle_route`] of a `Routed<S>`.
extern "C" fn handle_streaming<'a, S: Send + Sync + 'static>(
    module: &StreamModule,
    route: usize,
    req: &'a Request<'a>,
    body: ROption<BodyInput_TO<'a, RMut<'a, ()>>>,
) -> RResult<abi::Reply, PanicMessage> {
    // SAFETY: as in `body_streamed`.
    let routed = unsafe { routed_of::<S>(module) };
    routed
        .call(route, req, body.into_option())
        .map(stream::into_abi)
        .map_err(RString::from)
        .into()
}

impl<S: Send + Sync + 'static> PluginObject for Routed<S> {
    /// Only a host without [`ROUTES_V1`] calls this: it has routed the request already, but cannot say which
    /// route matched, so the plugin finds it again with the same rules.
    fn handle(&self, req: &Request<'_>) -> RResult<Response, PanicMessage> {
        let response = match self.table().lookup(req.method(), req.path()) {
            Lookup::Found { value, .. } => self.call_whole(*value, req),
            Lookup::MethodNotAllowed { allow } => {
                Ok(Response::empty(405).with_header("Allow", allow))
            }
            Lookup::NotFound => Ok(Response::empty(404)),
        };
        response.map_err(RString::from).into()
    }

    fn shutdown(&self) -> ROption<PanicMessage> {
        let Some(shutdown) = &self.shutdown else {
            return ROption::RNone;
        };
        catch(|| shutdown(&self.state))
            .err()
            .map(RString::from)
            .into()
    }

    fn capability(&self, name: RStr<'_>) -> ROption<Capability> {
        match name.as_str() {
            ROUTES_V1 => ROption::RSome(Capability {
                layout: <RoutesModule as StableAbi>::LAYOUT,
                module: (&self.module as *const RoutesModule).cast(),
            }),
            STREAM_V1 => ROption::RSome(Capability {
                layout: <StreamModule as StableAbi>::LAYOUT,
                module: (&self.stream as *const StreamModule).cast(),
            }),
            FILE_V1 => ROption::RSome(Capability {
                layout: <FileModule as StableAbi>::LAYOUT,
                module: (&stream::FILE_MODULE as *const FileModule).cast(),
            }),
            _ => ROption::RNone,
        }
    }
}

/// The body of a filter plugin's `init` entry point (what [`export_filter!`](crate::export_filter) expands
/// to): builds the filter from its configuration under `catch_unwind`.
pub fn init_filter<F, B>(
    name: &'static str,
    config: RSlice<'_, ConfigEntry<'_>>,
    build: B,
) -> RResult<PluginInstance, RString>
where
    F: Filter,
    B: FnOnce(&Config<'_>) -> Result<F, InitError>,
{
    start(name, config, build, filter_instance)
}

/// Wraps a filter into the FFI object the host calls (also used by [`crate::testing`]).
pub(crate) fn filter_instance<F: Filter>(filter: F) -> PluginInstance {
    PluginObject_TO::from_value(
        Filtered {
            module: FilterModuleV2 {
                setup: filter_setup::<F>,
                on_request: on_request::<F>,
                on_response: on_response::<F>,
            },
            filter,
        },
        TD_Opaque,
    )
}

/// The handler object of a filter plugin.
///
/// `#[repr(C)]` with the [`FilterModuleV2`] first: the module handed to the host is the object's own address,
/// which is how the hooks find the object again (as [`Routed`] does for [`RoutesModule`]).
#[repr(C)]
struct Filtered<F> {
    module: FilterModuleV2,
    filter: F,
}

impl<F: Filter> Filtered<F> {
    /// The object whose module `module` is.
    ///
    /// # Safety
    /// `module` must be the `module` field of a live `Filtered<F>`.
    unsafe fn of(module: &FilterModuleV2) -> &Filtered<F> {
        // Per the contract, `module` is the first field of a `#[repr(C)]` `Filtered<F>`, so its address is the
        // object's.
        &*(module as *const FilterModuleV2).cast::<Filtered<F>>()
    }
}

/// [`FilterModuleV2::setup`] of a `Filtered<F>`.
extern "C" fn filter_setup<F: Filter>(
    module: &FilterModuleV2,
) -> RResult<FilterSetup, PanicMessage> {
    // SAFETY: this function is only ever stored in the `module` of a `Filtered<F>`, and the host calls it
    // through the module it got from that object's `capability`, valid while the object lives.
    let filtered = unsafe { Filtered::<F>::of(module) };
    catch(|| filter::setup_of(&filtered.filter))
        .map_err(RString::from)
        .into()
}

/// [`FilterModuleV2::on_request`] of a `Filtered<F>`.
extern "C" fn on_request<F: Filter>(
    module: &FilterModuleV2,
    req: &Request<'_>,
    context: &mut ContextSlot,
) -> RResult<ROption<Response>, PanicMessage> {
    // SAFETY: as in `filter_setup`.
    let filtered = unsafe { Filtered::<F>::of(module) };
    catch(|| filtered.filter.on_request(req, &mut FilterContext(context)))
        .map(ROption::from)
        .map_err(RString::from)
        .into()
}

/// [`FilterModuleV2::on_response`] of a `Filtered<F>`.
extern "C" fn on_response<F: Filter>(
    module: &FilterModuleV2,
    req: &Request<'_>,
    context: &mut ContextSlot,
    head: &mut ResponseHeadAccess<'_>,
) -> ROption<PanicMessage> {
    // SAFETY: as in `filter_setup`.
    let filtered = unsafe { Filtered::<F>::of(module) };
    catch(|| {
        filtered
            .filter
            .on_response(req, &FilterContext(context), &mut ResponseHead::new(head));
    })
    .err()
    .map(RString::from)
    .into()
}

impl<F: Filter> PluginObject for Filtered<F> {
    /// A filter serves no routes; only a host that registered routes the manifest does not have would call it.
    fn handle(&self, _req: &Request<'_>) -> RResult<Response, PanicMessage> {
        RResult::ROk(Response::empty(404))
    }

    fn shutdown(&self) -> ROption<PanicMessage> {
        catch(|| self.filter.shutdown())
            .err()
            .map(RString::from)
            .into()
    }

    fn capability(&self, name: RStr<'_>) -> ROption<Capability> {
        if name.as_str() != FILTER_V2 {
            return ROption::RNone;
        }
        ROption::RSome(Capability {
            layout: <FilterModuleV2 as StableAbi>::LAYOUT,
            module: (&self.module as *const FilterModuleV2).cast(),
        })
    }
}

/// Builds the root module. Called once per loaded library (abi_stable caches it), so leaking is fine.
pub fn root_module(
    name: &'static str,
    version: &'static str,
    routes: &'static [Route],
    init: InitFn,
) -> PluginModRef {
    PluginMod {
        manifest: Manifest {
            name: name.into(),
            version: version.into(),
            routes: routes.into(),
        },
        init,
        capability: library_capability,
    }
    .leak_into_prefix()
}

#[cfg(test)]
mod tests {
    use std::hint::black_box;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::Instant;

    use abi_stable::std_types::{RResult, RSlice};

    use super::init;
    use crate::host::Instance;
    use crate::{Handler, InitError, Request, RequestParts, Response, Version};

    struct Flaky {
        shut_down: Arc<AtomicBool>,
    }

    impl Handler for Flaky {
        fn handle(&self, req: &Request<'_>) -> Response {
            if req.path() == "/panic" {
                panic!("handler exploded");
            }
            Response::text("fine")
        }

        fn shutdown(&self) {
            self.shut_down.store(true, Ordering::SeqCst);
            panic!("shutdown exploded");
        }
    }

    fn start(build: impl FnOnce() -> Result<Flaky, InitError>) -> Result<Instance, String> {
        match init("flaky", RSlice::from_slice(&[]), |_config| build()) {
            RResult::ROk(instance) => Ok(Instance::new("flaky", instance)),
            RResult::RErr(message) => Err(message.into()),
        }
    }

    #[test]
    fn init_errors_and_panics_come_back_as_messages() {
        let refused = start(|| Err(InitError::from("no database configured")));
        assert_eq!(refused.err().as_deref(), Some("no database configured"));
        let panicked = start(|| panic!("init exploded")).err().unwrap();
        assert!(
            panicked.starts_with("init panicked: init exploded (at "),
            "{panicked}"
        );
    }

    #[test]
    fn handler_and_shutdown_panics_are_caught_and_reported() {
        let shut_down = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&shut_down);
        let instance = start(move || Ok(Flaky { shut_down: flag })).unwrap();
        let request = |path: &str| {
            instance.handle(&Request::new(RequestParts {
                method: "GET",
                target: path,
                path,
                query: None,
                version: Version::Http11,
                headers: &[],
                params: &[],
                body: b"",
                peer: ([127, 0, 0, 1], 40000).into(),
            }))
        };
        assert!(request("/panic")
            .unwrap_err()
            .starts_with("handler exploded (at "));
        assert_eq!(request("/ok").unwrap().body_str(), Some("fine"));
        assert!(instance
            .shutdown()
            .unwrap_err()
            .starts_with("shutdown exploded"));
        assert!(shut_down.load(Ordering::SeqCst));
    }

    /// A plugin in the function-per-route form whose state records its shutdown.
    mod routed {
        use std::sync::atomic::{AtomicBool, Ordering};

        use crate::{Error, Request, Response};

        /// Set by the shutdown hook.
        pub static SHUT_DOWN: AtomicBool = AtomicBool::new(false);

        pub struct State;

        impl State {
            fn ok(&self, _req: &Request<'_>) -> Response {
                Response::text("ok")
            }

            fn fails(&self, _req: &Request<'_>) -> Result<Response, Error> {
                Err(Error::conflict("taken"))
            }

            fn panics(&self, _req: &Request<'_>) -> Response {
                panic!("route exploded")
            }

            fn plain(&self, _req: &Request<'_>) -> Response {
                Response::text("Hello, World!")
            }

            fn debug(&self, _req: &Request<'_>) -> Response {
                log::debug!("answering plaintext");
                Response::text("Hello, World!")
            }

            fn stop(&self) {
                SHUT_DOWN.store(true, Ordering::SeqCst);
            }
        }

        crate::export_plugin! {
            name: "routed",
            version: "0.0.0",
            routes: [
                ("GET", "/ok", State::ok),
                ("GET", "/fails", State::fails),
                ("GET", "/panics", State::panics),
                ("GET", "/plain", State::plain),
                ("GET", "/debug", State::debug),
            ],
            init: |_config| Ok(State),
            shutdown: State::stop,
        }
    }

    #[test]
    fn the_routed_form_calls_each_route_by_index_and_its_shutdown_hook() {
        let library = crate::host::Library::from_root(routed::plugd_plugin());
        let instance = library.init(&[]).unwrap();
        let req = Request::new(RequestParts {
            method: "GET",
            target: "/",
            path: "/",
            query: None,
            version: Version::Http11,
            headers: &[],
            params: &[],
            body: b"",
            peer: ([127, 0, 0, 1], 40000).into(),
        });
        let call = |route| instance.handle_route(route, &req);
        assert_eq!(call(0).unwrap().body_str(), Some("ok"));
        let failed = call(1).unwrap();
        assert_eq!((failed.status(), failed.body_str()), (409, Some("taken")));
        assert!(call(2).unwrap_err().starts_with("route exploded (at "));
        assert_eq!(call(9).unwrap().status(), 404, "no such route");
        assert!(instance.shutdown().is_ok());
        assert!(routed::SHUT_DOWN.load(Ordering::SeqCst));
    }

    /// The cost of a disabled `log::debug!` in a route function, called through the ABI as plugd calls it (the
    /// plugin is linked in, so plugin and host share one `log`, at level info): routes `/plain` and `/debug`
    /// differ only by the `debug!`. Run with
    /// `cargo test --release -p plugin-api disabled_debug_cost -- --ignored --nocapture`.
    #[test]
    #[ignore = "a measurement, not a check"]
    fn disabled_debug_cost() {
        log::set_max_level(log::LevelFilter::Info);
        let library = crate::host::Library::from_root(routed::plugd_plugin());
        let instance = library.init(&[]).unwrap();
        let route = |pattern: &str| library.routes().position(|(_, p)| p == pattern).unwrap();
        let req = Request::new(RequestParts {
            method: "GET",
            target: "/",
            path: "/",
            query: None,
            version: Version::Http11,
            headers: &[],
            params: &[],
            body: b"",
            peer: ([127, 0, 0, 1], 40000).into(),
        });
        const CALLS: u32 = 5_000_000;
        for round in 1..=3 {
            for (label, route) in [
                ("plain", route("/plain")),
                ("disabled debug!", route("/debug")),
            ] {
                let start = Instant::now();
                for _ in 0..CALLS {
                    black_box(instance.handle_route(route, black_box(&req)).unwrap());
                }
                eprintln!(
                    "round {round}: {label}: {:?} per call",
                    start.elapsed() / CALLS
                );
            }
        }
        const MACROS: u32 = 100_000_000;
        let start = Instant::now();
        for i in 0..MACROS {
            log::debug!("{}", black_box(i));
        }
        eprintln!(
            "a disabled log::debug! alone: {:.2} ns",
            start.elapsed().as_secs_f64() * 1e9 / f64::from(MACROS)
        );
    }

    #[test]
    fn the_exported_symbol_is_the_one_abi_stable_looks_up() {
        assert_eq!(
            abi_stable::library::ROOT_MODULE_LOADER_NAME,
            "_1as_0lib_1header_0root_bmodule_bloader"
        );
    }
}
