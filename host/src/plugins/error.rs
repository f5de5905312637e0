//! Why a plugin file was refused.

use std::fmt;
use std::path::PathBuf;

/// A plugin file that plugd refused, and why. Its `Display` is the one-line reason that goes into the log after
/// `plugin refused: `.
#[derive(Debug, Clone)]
pub struct LoadError {
    /// The plugin file.
    pub path: PathBuf,
    pub kind: LoadErrorKind,
}

/// The reasons a plugin file is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LoadErrorKind {
    /// The dynamic loader could not open the file: not a shared library, built for another platform, or a
    /// library it depends on is missing. `reason` is the loader's message.
    NotALibrary { reason: String },
    /// A shared library that does not export a plugd root module: not built with `plugin_api::export_plugin!`.
    MissingRootModule,
    /// Built against a plugin-api whose ABI is incompatible with this plugd's (e.g. `plugin-api 0.1.0` expected,
    /// `plugin-api 0.2.0` found). abi_stable's full report is logged at debug level.
    AbiMismatch { expected: String, found: String },
    /// The library loaded, but failed in a way abi_stable reports otherwise (summarized to one line).
    Library { summary: String },
    /// The plugin's `init` returned an error or panicked; `message` is the plugin's own.
    InitFailed { message: String },
    /// Another owner (`static`, a built-in, or an earlier plugin in sorted file order) already serves one of the
    /// plugin's routes.
    RouteConflict {
        method: String,
        pattern: String,
        existing_owner: String,
        new_owner: String,
    },
    /// One of the plugin's declared route patterns is not valid router syntax.
    InvalidRoute { pattern: String, reason: String },
    /// The router refused one of the plugin's routes for another reason (e.g. a method that is not a token).
    RouteRefused { reason: String },
    /// A plugin with the same name was already loaded from another file.
    DuplicateName { name: String, first: PathBuf },
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.kind)
    }
}

impl std::error::Error for LoadError {}

impl fmt::Display for LoadErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadErrorKind::NotALibrary { reason } => {
                write!(f, "not a loadable library ({reason})")
            }
            LoadErrorKind::MissingRootModule => f.write_str(
                "not a plugd plugin: exports no plugin root module (build it with plugin_api::export_plugin!)",
            ),
            LoadErrorKind::AbiMismatch { expected, found } => write!(
                f,
                "built against an incompatible plugin-api: plugd expects {expected}, the plugin was built \
                 against {found}; rebuild it against {expected}"
            ),
            LoadErrorKind::Library { summary } => f.write_str(summary),
            LoadErrorKind::InitFailed { message } => write!(f, "init failed: {message}"),
            LoadErrorKind::RouteConflict {
                method,
                pattern,
                existing_owner,
                new_owner,
            } => write!(
                f,
                "route conflict: {method} {pattern} of plugin `{new_owner}` is already served by \
                 `{existing_owner}`; change one of the routes or remove one of the two"
            ),
            LoadErrorKind::InvalidRoute { pattern, reason } => {
                write!(f, "invalid route pattern `{pattern}`: {reason}")
            }
            LoadErrorKind::RouteRefused { reason } => write!(f, "route refused: {reason}"),
            LoadErrorKind::DuplicateName { name, first } => write!(
                f,
                "a plugin named `{name}` is already loaded from {}; remove one of the two files",
                first.display()
            ),
        }
    }
}
