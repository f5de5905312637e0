//! The host's side of the ABI: load a plugin library, verify it, start it, call it.
//!
//! plugd uses this module so that only plugin-api names abi_stable (DESIGN.md pitfall 8). Plugin authors never
//! need it.

use std::fmt;
use std::path::Path;

use abi_stable::library::{lib_header_from_path, LibraryError};
use abi_stable::std_types::{RResult, RSlice, RStr};

use crate::abi::{ConfigEntry, PluginInstance, PluginModRef};
pub use crate::response::ResponseHeaders;
use crate::{Request, Response};

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

/// A verified plugin library. Libraries are never unloaded (DESIGN.md pitfall 5), so everything it hands out
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
        // first would come back as the first (DESIGN.md pitfall 1).
        let header =
            lib_header_from_path(path).map_err(|e| LoadFailure::from_library_error(e, None))?;
        let api_version = header.version_strings().version.as_str();
        let root = header
            .init_root_module::<PluginModRef>()
            .map_err(|e| LoadFailure::from_library_error(e, Some(api_version.to_owned())))?;
        Ok(Library { root, api_version })
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
            RResult::ROk(instance) => Ok(Instance::new(instance)),
            RResult::RErr(message) => Err(message.into()),
        }
    }

    /// The plugin-api version the library was built against (e.g. `0.1.0`), as its header records it.
    pub fn api_version(&self) -> &'static str {
        self.api_version
    }
}

/// A running plugin: its state, callable concurrently from every worker.
pub struct Instance {
    instance: PluginInstance,
}

impl Instance {
    pub(crate) fn new(instance: PluginInstance) -> Instance {
        Instance { instance }
    }

    /// Calls the plugin's handler; `Err` is the message of a panic the plugin caught (log it, answer 500).
    pub fn handle(&self, req: &Request<'_>) -> Result<Response, String> {
        self.instance.handle(req).into_result().map_err(Into::into)
    }

    /// Calls the plugin's shutdown hook; `Err` is the message of a panic the plugin caught.
    pub fn shutdown(&self) -> Result<(), String> {
        match self.instance.shutdown().into_option() {
            None => Ok(()),
            Some(message) => Err(message.into()),
        }
    }
}
