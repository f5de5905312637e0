//! Binds the listener, runs the worker pool, and drains on shutdown.
//!
//! In-process use (tests start servers with their own handlers this way):
//!
//! ```no_run
//! # use plugd::{config::Config, router::RouterBuilder, server::Server};
//! let server = Server::bind(&Config::for_tests(), RouterBuilder::new().build())?;
//! let addr = server.local_addr();
//! let handle = server.shutdown_handle(); // Clone + Send
//! let running = std::thread::spawn(move || server.run());
//! handle.shutdown(); // stop accepting, finish what is in flight, close idle connections
//! running.join().unwrap()?;
//! # Ok::<(), std::io::Error>(())
//! ```

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::AsRawFd;
use std::sync::Arc;

use crate::config::Config;
use crate::connections::LISTENER;
use crate::metrics::prometheus::Gauges;
use crate::poller::Poller;
use crate::router::{LiveRouter, Router};
use crate::sys;
use crate::worker::{self, Shared};

/// Pending connections the kernel queues for us: nginx's default on Linux.
const LISTEN_BACKLOG: i32 = 511;

pub struct Server {
    shared: Arc<Shared>,
    addr: SocketAddr,
}

impl Server {
    /// Binds `config.addr` and registers the listener; connections are accepted once [`Server::run`] runs.
    pub fn bind(config: &Config, router: Router) -> io::Result<Server> {
        Server::bind_live(config, Arc::new(LiveRouter::new(router)))
    }

    /// [`Server::bind`] serving whatever router `routes` holds at each moment (plugins added, replaced
    /// and removed while serving).
    pub fn bind_live(config: &Config, routes: Arc<LiveRouter>) -> io::Result<Server> {
        let listener = listen(config)?;
        listener.set_nonblocking(true)?;
        // Inherited by every accepted connection (see sys::accept_nonblocking).
        sys::set_nodelay(&listener)?;
        let addr = listener.local_addr()?;
        let poller = Poller::new()?;
        poller.add_listener(listener.as_raw_fd(), LISTENER)?;
        let shared = Shared::new(config, routes, poller, listener)?;
        Ok(Server {
            shared: Arc::new(shared),
            addr,
        })
    }

    /// The bound address (the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle {
            shared: Arc::clone(&self.shared),
        }
    }

    /// What the server reports about itself, readable from any thread (the admin listener).
    pub fn stats(&self) -> ServerStats {
        ServerStats {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Serves until shutdown has drained every connection or its deadline passed (handlers still blocked
    /// then are left to the process's exit).
    pub fn run(self) -> io::Result<()> {
        worker::run(&self.shared)
    }
}

/// The listening socket on `config.addr`: shared with other processes under `--reuse-port`
/// (docs/ARCHITECTURE.md §4.9), else std's bind, which refuses a port already taken.
fn listen(config: &Config) -> io::Result<TcpListener> {
    if config.reuse_port {
        return sys::listen_reuse_port(config.addr, LISTEN_BACKLOG);
    }
    let listener = TcpListener::bind(config.addr)?;
    sys::set_listen_backlog(&listener, LISTEN_BACKLOG)?;
    Ok(listener)
}

/// Starts a graceful shutdown from any thread (the signal handler, a test).
#[derive(Clone)]
pub struct ShutdownHandle {
    shared: Arc<Shared>,
}

impl ShutdownHandle {
    /// Stops accepting at once; in-flight requests finish (answered with `Connection: close`), idle
    /// connections are closed, and [`Server::run`] returns when all are gone or the shutdown timeout passed.
    pub fn shutdown(&self) {
        self.shared.begin_shutdown();
    }
}

/// The server's state as the admin listener reports it, read from any thread.
#[derive(Clone)]
pub struct ServerStats {
    shared: Arc<Shared>,
}

impl ServerStats {
    /// Open and idle connections, busy and running workers, at this moment.
    pub fn gauges(&self) -> Gauges {
        self.shared.gauges()
    }

    /// Whether shutdown has begun (the listener is closed, in-flight requests are finishing).
    pub fn shutting_down(&self) -> bool {
        self.shared.shutting_down()
    }
}
