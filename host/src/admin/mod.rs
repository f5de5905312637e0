//! The admin listener (`--admin ADDR:PORT`, off unless configured): what is loaded and how it is doing,
//! for people (`GET /`, a page that refreshes itself), for programs (`GET /plugins`, JSON), for
//! Prometheus (`GET /metrics`) and for load balancers (`GET /healthz`), and `POST /reload`
//! (`docs/ARCHITECTURE.md` §17).
//!
//! It runs on threads of its own ([`listener`]), never on the worker pool, so it answers while the workers
//! are all busy, and it sees plugins only through a [`catalog::PluginCatalog`]. Anyone who reaches it can
//! read the server's figures and reload its plugins, so it listens on a loopback address unless
//! `--admin-public` says otherwise.

pub mod catalog;
mod endpoints;
mod json;
mod listener;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

pub use catalog::{PluginCatalog, PluginState, PluginStatus, ReloadReport};
pub use endpoints::Admin;

/// Refuses an admin address other than loopback unless `public` allows it: one line saying what to do.
pub fn check_address(addr: SocketAddr, public: bool) -> Result<(), String> {
    if addr.ip().is_loopback() || public {
        return Ok(());
    }
    Err(format!(
        "--admin {addr} is not a loopback address: anyone who reaches it can read plugd's figures and \
         reload its plugins; use 127.0.0.1 (or ::1), or add --admin-public if that is what you want"
    ))
}

/// Starts counting requests and serving `admin` on `addr`; returns the address bound (the real port for
/// port 0).
pub fn start(addr: SocketAddr, admin: Admin) -> io::Result<SocketAddr> {
    crate::metrics::enable();
    listener::start(addr, Arc::new(admin))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_unless_public() {
        assert!(check_address("127.0.0.1:0".parse().unwrap(), false).is_ok());
        assert!(check_address("[::1]:9000".parse().unwrap(), false).is_ok());
        let refused = check_address("0.0.0.0:9000".parse().unwrap(), false).unwrap_err();
        assert!(refused.contains("--admin-public") && !refused.contains('\n'));
        assert!(check_address("0.0.0.0:9000".parse().unwrap(), true).is_ok());
    }
}
