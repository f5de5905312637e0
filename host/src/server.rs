//! Binds the listener, runs the worker pool, and drains on shutdown.
//!
//! OWNER: lead. Contract for tests (in-process servers with test handlers):
//!
//! ```ignore
//! let server = Server::bind(&config, router)?;       // listening once this returns
//! let addr = server.local_addr();
//! let handle = server.shutdown_handle();              // Clone + Send; handle.shutdown() starts the drain
//! std::thread::spawn(move || server.run());           // run() returns once drained (or the deadline passed)
//! ```
