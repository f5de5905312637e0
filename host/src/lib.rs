//! plugd: an HTTP/1.1 server written from scratch whose route handlers are compiled plugins.
//!
//! The folder tree is the architecture: [`config`] turns the command line into a [`config::Config`];
//! [`server`] binds and runs the worker [`pool`], whose workers own [`conn`]ections between wake-ups;
//! [`http`] is the wire format; [`router`] maps requests to [`handler::Handler`]s, which are
//! [`plugins`], [`static_files`] or built-ins.

pub mod config;
pub mod handler;
pub mod http;
pub mod plugins;
pub mod router;
pub mod server;
pub mod static_files;
