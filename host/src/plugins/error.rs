//! Why a plugin file was refused. The steps that can refuse one each have their own error type (the loader's
//! [`LoadFailure`], the router's [`RouteError`]); a [`LoadError`] wraps whichever spoke, with the file.

use std::fmt;
use std::path::PathBuf;

use plugin_api::host::LoadFailure;

use crate::router::RouteError;

/// A plugin file that plugd refused, and why. Its `Display` is the one-line reason that goes into the log after
/// `plugin refused: ` (and that `plugd check` prints).
#[derive(Debug)]
pub struct LoadError {
    /// The plugin file.
    pub path: PathBuf,
    pub kind: LoadErrorKind,
}

/// The step that refused a plugin file.
#[derive(Debug)]
#[non_exhaustive]
pub enum LoadErrorKind {
    /// The file could not be loaded as a plugin library: not a library, not a plugd plugin, or built against
    /// an incompatible plugin-api (abi_stable's full report is logged at debug level).
    Library(LoadFailure),
    /// The plugin's `init` returned an error or panicked; `message` is the plugin's own.
    InitFailed { message: String },
    /// The router refused one of its routes (after the mount prefix): invalid, or already served by another
    /// owner (`static`, a built-in, or an earlier plugin in sorted file order), both owners named.
    Route(RouteError),
    /// A plugin with the same name was already loaded from another file.
    DuplicateName { name: String, first: PathBuf },
    /// The file could not be read (or its private copy written).
    Unreadable(String),
    /// The file or its folder could have been written by someone other than plugd's user or root, or it is
    /// a symlink leading out of the folder; the reason says which.
    Untrusted(String),
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
            LoadErrorKind::Library(failure) => failure.fmt(f),
            LoadErrorKind::InitFailed { message } => write!(f, "init failed: {message}"),
            LoadErrorKind::Route(err) => err.fmt(f),
            LoadErrorKind::DuplicateName { name, first } => write!(
                f,
                "a plugin named `{name}` is already loaded from {}; remove one of the two files",
                first.display()
            ),
            LoadErrorKind::Unreadable(reason) => write!(f, "cannot read it: {reason}"),
            LoadErrorKind::Untrusted(reason) => f.write_str(reason),
        }
    }
}
