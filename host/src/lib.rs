//! plugd: an HTTP/1.1 server written from scratch whose route handlers are compiled plugins.
//!
//! The folder tree is the architecture: [`config`] turns the command line into a [`config::Config`];
//! [`server`] binds and runs the worker [`pool`], whose workers wait on one [`poller`] and own a
//! [`conn`]ection between wake-ups ([`connections`] holds them in between); [`http`] is the wire format;
//! [`dispatch`] asks the [`router`] which [`handler::Handler`] answers: [`plugins`], [`static_files`] or a
//! built-in. [`sys`] holds the few system calls std lacks.

pub mod app;
pub mod config;
pub mod conn;
pub mod connections;
pub mod dispatch;
pub mod handler;
pub mod http;
pub mod plugins;
pub mod poller;
pub mod pool;
mod ready;
pub mod router;
pub mod server;
pub mod static_files;
pub mod sys;
mod worker;
