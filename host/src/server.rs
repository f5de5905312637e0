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
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use crate::config::{Config, Limits, Timeouts};
use crate::connections::{Connections, LISTENER};
use crate::poller::Poller;
use crate::router::Router;
use crate::{pool, sys};

/// Pending connections the kernel queues for us: nginx's default on Linux.
const LISTEN_BACKLOG: i32 = 511;

/// Everything the workers share.
pub(crate) struct Shared {
    pub poller: Poller,
    pub connections: Connections,
    /// `None` once shutdown began: dropping it refuses new connections at once.
    pub listener: Mutex<Option<TcpListener>>,
    /// Accepting stopped because the process ran out of descriptors; the sweep resumes it.
    pub accept_paused: AtomicBool,
    pub router: Router,
    pub limits: Limits,
    pub timeouts: Timeouts,
    pub max_connections: usize,
    /// Milliseconds on the pool's clock of the last deadline sweep.
    pub last_sweep: AtomicU64,
    /// Set once, when shutdown begins: the time by which the server exits whatever is still open.
    pub shutdown_deadline: OnceLock<Instant>,
    /// Which workers run the event loop (see [`pool`]).
    pub pool: pool::Pool,
}

pub struct Server {
    shared: Arc<Shared>,
    addr: SocketAddr,
    threads: usize,
}

impl Server {
    /// Binds `config.addr` and registers the listener; connections are accepted once [`Server::run`] runs.
    pub fn bind(config: &Config, router: Router) -> io::Result<Server> {
        let listener = TcpListener::bind(config.addr)?;
        sys::set_listen_backlog(&listener, LISTEN_BACKLOG)?;
        listener.set_nonblocking(true)?;
        // Inherited by every accepted connection (see sys::accept_nonblocking).
        sys::set_nodelay(&listener)?;
        let addr = listener.local_addr()?;
        let poller = Poller::new()?;
        poller.add_listener(listener.as_raw_fd(), LISTENER)?;
        let shared = Shared {
            poller,
            connections: Connections::default(),
            listener: Mutex::new(Some(listener)),
            accept_paused: AtomicBool::new(false),
            router,
            limits: config.limits.clone(),
            timeouts: config.timeouts,
            max_connections: config.max_connections,
            last_sweep: AtomicU64::new(0),
            shutdown_deadline: OnceLock::new(),
            pool: pool::Pool::new(config.threads),
        };
        Ok(Server {
            shared: Arc::new(shared),
            addr,
            threads: config.threads.max(1),
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

    /// Serves until shutdown has drained every connection or its deadline passed.
    pub fn run(self) -> io::Result<()> {
        let workers = (0..self.threads)
            .map(|n| {
                let shared = Arc::clone(&self.shared);
                std::thread::Builder::new()
                    .name(format!("plugd-worker-{n}"))
                    .spawn(move || pool::work(&shared, n))
            })
            .collect::<io::Result<Vec<_>>>()?;
        for worker in workers {
            if worker.join().is_err() {
                log::error!("a worker thread died");
            }
        }
        Ok(())
    }
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
        let shared = &self.shared;
        if shared
            .shutdown_deadline
            .set(Instant::now() + shared.timeouts.shutdown)
            .is_err()
        {
            return;
        }
        let listener = shared
            .listener
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some(listener) = listener {
            let _ = shared.poller.delete(listener.as_raw_fd());
        }
        shared.last_sweep.store(0, Ordering::Relaxed);
    }
}
