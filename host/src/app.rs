//! Assembles the server from a [`Config`]: descriptor limit, routes (static files, then plugins),
//! listener, signal handling, the admin listener when configured; then serves until a signal has drained it. `plugd check` assembles the same
//! routes for one plugin file and stops there.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use signal_hook::consts::{SIGINT, SIGTERM, SIGUSR1};
use signal_hook::iterator::Signals;

use crate::access_log;
use crate::admin::{self, Admin, PluginCatalog, StaticCatalog};
use crate::config::Config;
use crate::plugins::{self, CheckReport, Isolation, Plugins};
use crate::router::RouterBuilder;
use crate::server::{Server, ShutdownHandle};
use crate::static_files::StaticFiles;
use crate::sys;

/// Descriptors plugd needs besides one per connection: listener, epoll, signal pipe, logs, files being sent.
const RESERVED_DESCRIPTORS: u64 = 64;

/// Why plugd did not start (or stopped badly).
#[derive(Debug)]
pub enum StartError {
    /// The configuration or a plugin was refused: exit 2.
    Config(String),
    /// The network or the OS refused: exit 1.
    Io(String),
}

pub fn run(config: Config) -> Result<(), StartError> {
    if let Some(addr) = config.admin {
        admin::check_address(addr, config.admin_public).map_err(StartError::Config)?;
    }
    check_descriptor_limit(&config);
    access_log::start(&config.access_log)
        .map_err(|err| StartError::Config(format!("cannot open the access log: {err}")))?;
    let mut routes = routes_before_plugins(&config)?;
    let mut plugins = Plugins::load_dir(&config.plugin_dir, &config.plugins);
    plugins.register(&mut routes, &Isolation::from(&config));
    if config.strict_plugins && !plugins.refused().is_empty() {
        return Err(StartError::Config(format!(
            "{} plugin file(s) refused and --strict-plugins is set",
            plugins.refused().len()
        )));
    }
    let chain = plugins::middleware_chain(&config.middleware, plugins.loaded(), &config.plugins)
        .map_err(StartError::Config)?;
    if !config.middleware.is_empty() {
        log::info!("middleware: {}", config.middleware.join(" -> "));
    }
    routes.set_middleware(chain);
    let server = Server::bind(&config, routes.build())
        .map_err(|err| StartError::Io(format!("cannot listen on {}: {err}", config.addr)))?;
    // Before `listening on`: whoever waits for that line may signal at once, or ask the admin listener.
    watch_signals(server.shutdown_handle())?;
    let admin = match config.admin {
        Some(addr) => Some(start_admin(
            addr,
            StaticCatalog::new(plugins.loaded()),
            &server,
        )?),
        None => None,
    };
    log::info!(
        "listening on http://{} with {} workers (up to {} while handlers block)",
        server.local_addr(),
        config.threads,
        config.max_threads
    );
    // After the main line, so that whoever reads the first `listening on http://` finds the server's.
    if let Some(admin) = admin {
        log::info!("admin listening on http://{admin}");
    }
    let served = server.run();
    access_log::flush();
    plugins.shutdown();
    served.map_err(|err| StartError::Io(format!("serving failed: {err}")))?;
    log::info!("shut down cleanly");
    Ok(())
}

/// `plugd check FILE`: the plugin at `path` as [`run`] would load it, registered after the same routes.
pub fn check(config: &Config, path: &Path) -> Result<CheckReport, StartError> {
    let mut routes = routes_before_plugins(config)?;
    Ok(plugins::check(path, &config.plugins, &mut routes))
}

/// The routes registered before any plugin's, which plugins therefore cannot take: `static`.
fn routes_before_plugins(config: &Config) -> Result<RouterBuilder, StartError> {
    let mut routes = RouterBuilder::new();
    let static_files = Arc::new(StaticFiles::new(&config.static_dir));
    routes
        .add_all(&[("GET", "/static/{*path}")], "static", static_files)
        .map_err(|err| StartError::Config(format!("static route: {err}")))?;
    Ok(routes)
}

/// Starts the admin listener on `addr` over `catalog` and the server's gauges; returns its address.
fn start_admin(
    addr: SocketAddr,
    catalog: impl PluginCatalog + 'static,
    server: &Server,
) -> Result<SocketAddr, StartError> {
    let admin = Admin {
        catalog: Arc::new(catalog),
        server: server.stats(),
    };
    admin::start(addr, admin)
        .map_err(|err| StartError::Io(format!("cannot listen on --admin {addr}: {err}")))
}

/// Raises the open-files limit and says so when it would still cap `--max-connections`.
fn check_descriptor_limit(config: &Config) {
    match sys::raise_open_files_limit() {
        Ok(limit) if limit < config.max_connections as u64 + RESERVED_DESCRIPTORS => log::warn!(
            "open-files limit {limit} caps connections below --max-connections {}",
            config.max_connections
        ),
        Ok(limit) => log::debug!("open-files limit {limit}"),
        Err(err) => log::warn!("cannot read the open-files limit: {err}"),
    }
}

/// SIGINT or SIGTERM starts a graceful shutdown; a second one ends the process at once. SIGUSR1 reopens
/// the access log file (logrotate's `postrotate`, as for nginx).
fn watch_signals(handle: ShutdownHandle) -> Result<(), StartError> {
    let mut signals = Signals::new([SIGINT, SIGTERM, SIGUSR1])
        .map_err(|err| StartError::Io(format!("cannot handle signals: {err}")))?;
    std::thread::Builder::new()
        .name("plugd-signals".into())
        .spawn(move || {
            let mut stopping = false;
            for signal in signals.forever() {
                if signal == SIGUSR1 {
                    access_log::reopen();
                } else if !stopping {
                    log::info!("signal {signal}: shutting down (finishing in-flight requests)");
                    handle.shutdown();
                    stopping = true;
                } else {
                    log::warn!("second signal: exiting now");
                    access_log::flush();
                    std::process::exit(1);
                }
            }
        })
        .map_err(|err| StartError::Io(format!("cannot start the signal thread: {err}")))?;
    Ok(())
}
