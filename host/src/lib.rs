//! plugd: an HTTP/1.1 server written from scratch whose route handlers are compiled plugins.
//!
//! The folder tree is the architecture, top down (`docs/ARCHITECTURE.md` §2.1): [`app`] assembles a server
//! from a [`config::Config`]; [`server`] binds and starts the workers (`worker.rs`: accept, serve, sweep),
//! of which `pool.rs` decides how many wait on the `poller.rs` readiness set; `connections.rs` holds every
//! open connection between wake-ups and `conn.rs` serves one; `dispatch.rs` asks the [`router`] which
//! [`handler::Handler`] answers: [`plugins`], [`static_files`] or a built-in, inside the [`middleware`] chain
//! of filter plugins, after the [`rate_limit`] let the client through; [`http`] is the wire format;
//! [`access_log`] writes a line per answered request; [`metrics`] counts requests for the [`admin`]
//! listener; [`sys`] holds the few system calls std lacks; `output.rs` gathers a connection's answers into
//! one write, `words.rs` tests byte classes eight bytes at a time. Every
//! file imports only files below it (`tests/layering.rs` checks it).
//!
//! Public: what `main.rs`, the end-to-end tests, the benchmarks and the fuzz targets use. The engine's
//! modules are private.

pub mod access_log;
pub mod admin;
pub mod app;
pub mod config;
mod conn;
mod connections;
mod dispatch;
pub mod handler;
pub mod http;
pub mod metrics;
pub mod middleware;
mod output;
pub mod plugins;
mod poller;
mod pool;
pub mod rate_limit;
mod ready;
pub mod router;
pub mod server;
pub mod static_files;
mod streaming;
pub mod sys;
mod upload;
mod words;
mod worker;
