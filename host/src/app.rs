//! Assembles the server from a [`Config`]: descriptor limit, routes (static files, then plugins),
//! listener, signal handling, the admin listener when configured; then serves until a signal has drained it. `plugd check` assembles the same
//! routes for one plugin file and stops there.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1};
use signal_hook::iterator::Signals;

use crate::access_log;
use crate::admin::{self, Admin, PluginCatalog};
use crate::config::Config;
use crate::plugins::{
    self, CheckReport, Isolation, LivePlugins, LiveSettings, LoadPolicy, LoadedPlugin, Plugins,
};
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
    let policy = LoadPolicy::from(&config);
    let base_routes = base_routes(&config);
    let mut routes = base_routes();
    let mut plugins = Plugins::load_dir(&config.plugin_dir, &config.plugins, &policy);
    plugins.register(&mut routes);
    if config.strict_plugins && !plugins.refused().is_empty() {
        return Err(StartError::Config(format!(
            "{} plugin file(s) refused and --strict-plugins is set",
            plugins.refused().len()
        )));
    }
    let loaded: Vec<&LoadedPlugin> = plugins.loaded().iter().collect();
    let chain = plugins::middleware_chain(&config.middleware, &loaded, &config.plugins)
        .map_err(StartError::Config)?;
    if !config.middleware.is_empty() {
        log::info!("middleware: {}", config.middleware.join(" -> "));
    }
    routes.set_middleware(chain);
    let live = Arc::new(LivePlugins::adopt(
        plugins.into_parts(),
        routes.build(),
        config.plugins.clone(),
        LiveSettings {
            dir: config.plugin_dir.clone(),
            config: config.source.clone(),
            policy,
            shutdown_timeout: config.timeouts.shutdown,
            base_routes,
            middleware: config.middleware.clone(),
        },
    ));
    let server = Server::bind_live(&config, Arc::clone(live.routes()))
        .map_err(|err| StartError::Io(format!("cannot listen on {}: {err}", config.addr)))?;
    let watched = Arc::clone(&live);
    plugins::watch(config.plugin_dir.clone(), move || {
        watched.rescan();
    })
    .map_err(|err| StartError::Io(format!("cannot start the plugin folder watcher: {err}")))?;
    // Before `listening on`: whoever waits for that line may signal at once, or ask the admin listener.
    watch_signals(server.shutdown_handle(), Arc::clone(&live))?;
    let admin = match config.admin {
        Some(addr) => Some(start_admin(addr, Arc::clone(&live) as _, &server)?),
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
    live.shutdown();
    plugins::remove_private_copies();
    served.map_err(|err| StartError::Io(format!("serving failed: {err}")))?;
    log::info!("shut down cleanly");
    Ok(())
}

/// `plugd check FILE`: the plugin at `path` as [`run`] would load it, registered after the same routes.
pub fn check(config: &Config, path: &Path) -> CheckReport {
    let mut routes = base_routes(config)();
    let report = plugins::check(path, &config.plugins, &Isolation::from(config), &mut routes);
    plugins::remove_private_copies();
    report
}

/// The route registered before any plugin's, which plugins therefore cannot take.
const STATIC_ROUTE: (&str, &str) = ("GET", "/static/{*path}");

/// The routes registered before any plugin's, which plugins therefore cannot take (`static`): built for
/// the first router and again for every router a reload builds, sharing one static-files handler.
fn base_routes(config: &Config) -> Box<dyn Fn() -> RouterBuilder + Send> {
    let static_files = Arc::new(StaticFiles::new(&config.static_dir));
    Box::new(move || {
        let mut routes = RouterBuilder::new();
        // A constant, valid route on an empty table: the router has no reason to refuse it.
        if let Err(err) = routes.add_all(&[STATIC_ROUTE], "static", static_files.clone()) {
            log::error!("bug: static route: {err}");
        }
        routes
    })
}

/// Starts the admin listener on `addr` over `catalog` and the server's gauges; returns its address.
fn start_admin(
    addr: SocketAddr,
    catalog: Arc<dyn PluginCatalog>,
    server: &Server,
) -> Result<SocketAddr, StartError> {
    let admin = Admin {
        catalog,
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
/// the access log file (logrotate's `postrotate`, as for nginx). SIGHUP re-reads the config file's plugin
/// tables and rescans the plugin folder (nginx's reload signal).
fn watch_signals(handle: ShutdownHandle, live: Arc<LivePlugins>) -> Result<(), StartError> {
    let mut signals = Signals::new([SIGINT, SIGTERM, SIGUSR1, SIGHUP])
        .map_err(|err| StartError::Io(format!("cannot handle signals: {err}")))?;
    std::thread::Builder::new()
        .name("plugd-signals".into())
        .spawn(move || {
            let mut stopping = false;
            for signal in signals.forever() {
                if signal == SIGUSR1 {
                    access_log::reopen();
                } else if signal == SIGHUP {
                    log::info!(
                        "SIGHUP: re-reading the config file and rescanning the plugin folder"
                    );
                    let report = live.reload();
                    log::info!("SIGHUP: {}", report.summary());
                } else if !stopping {
                    // Begun before it is logged: whoever reads the line finds /healthz at 503.
                    handle.shutdown();
                    log::info!("signal {signal}: shutting down (finishing in-flight requests)");
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
