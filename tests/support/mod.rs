//! Shared helpers for the end-to-end tests: build the real `plugd` binary and the example plugins, start the
//! binary on a free port, talk raw HTTP/1.1 to it over TCP. One module per concern:
//!
//! - [`build`]: `plugd` and the example plugins, built once per test binary (the WSGI plugin on first use); plugin
//!   folders with copies of them.
//! - [`server`]: a `plugd` process serving for the length of a test, its stderr captured.
//! - [`process`]: `plugd` runs that end by themselves, signals, `/proc` readings.
//! - [`client`]: a raw TCP client that writes any bytes; [`response`]: reading its answers byte-exact.
//! - [`temp_dir`]: folders removed on drop.
//!
//! Every wait in here is bounded, so a broken server fails a test instead of hanging it. Tests import the
//! helpers flat (`use plugd_tests::{Server, Conn}`).

pub mod build;
pub mod client;
pub mod process;
pub mod response;
pub mod server;
pub mod temp_dir;

pub use build::{
    EXAMPLE_PLUGINS, example_plugin, example_plugins, plugd_bin, plugin_dir_with, repo_static_dir,
    workspace_root, wsgi_plugin,
};
pub use client::{Conn, IO_TIMEOUT, connect, connect_from, get, read_until_close, send_raw};
pub use process::{RunOutput, proc_status, run_plugd, run_status, send_signal};
pub use response::{Response, ResponseReader, parse_response, parse_responses};
pub use server::{START_TIMEOUT, Server};
pub use temp_dir::TempDir;
