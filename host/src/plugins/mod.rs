//! Plugin libraries: discovery in the plugin folder, ABI verification, and the adapter that lets the router
//! call a plugin's handler like any other [`crate::handler::Handler`].
//!
//! OWNER: plugins helper.
