//! What [`export_plugin!`](crate::export_plugin) expands to, kept out of the macro so it is ordinary,
//! type-checked code. Not part of the author-facing API.

use abi_stable::prefix_type::PrefixTypeTrait;
use abi_stable::std_types::{ROption, RResult, RSlice, RStr, RString};
use abi_stable::type_level::downcasting::TD_Opaque;

use crate::abi::{
    no_capability, Capability, Config, ConfigEntry, InitFn, Manifest, PanicMessage, PluginInstance,
    PluginMod, PluginModRef, PluginObject, PluginObject_TO, Route,
};
use crate::guard::catch;
use crate::{Handler, InitError, Request, Response};

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

/// The handler object: the author's [`Handler`] with every call guarded by `catch_unwind`.
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

/// The body of a plugin's `init` entry point: runs the author's constructor under `catch_unwind`.
pub fn init<H, F>(config: RSlice<'_, ConfigEntry<'_>>, build: F) -> RResult<PluginInstance, RString>
where
    H: Handler,
    F: FnOnce(&Config<'_>) -> Result<H, InitError>,
{
    let config = Config::new(config.as_slice());
    match catch(|| build(&config)) {
        Ok(Ok(handler)) => RResult::ROk(instance(handler)),
        Ok(Err(err)) => RResult::RErr(err.0.into()),
        Err(panic) => RResult::RErr(format!("init panicked: {panic}").into()),
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
        capability: no_capability,
    }
    .leak_into_prefix()
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

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
        match init(RSlice::from_slice(&[]), |_config| build()) {
            RResult::ROk(instance) => Ok(Instance::new(instance)),
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

    #[test]
    fn the_exported_symbol_is_the_one_abi_stable_looks_up() {
        assert_eq!(
            abi_stable::library::ROOT_MODULE_LOADER_NAME,
            "_1as_0lib_1header_0root_bmodule_bloader"
        );
    }
}
