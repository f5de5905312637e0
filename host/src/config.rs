//! Command line, environment and config file -> one validated [`Config`].
//!
//! [`Args`] is what clap parses (every flag also readable from a `PLUGD_*` variable and from a key of the same
//! name in the `--config` file, see [`file`]); [`Config`] is what the rest of the server reads, with units made
//! explicit. Invalid values are refused at startup, never later.

mod file;
mod plugin_tables;

use std::ffi::OsString;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

pub use plugin_tables::{Mount, PluginTable, PluginTables};

/// Longest request line accepted, CRLF excluded: nginx's default `large_client_header_buffers` size.
pub const MAX_REQUEST_LINE: usize = 8 * 1024;
/// Most header fields in one request: far above any browser, low enough to bound parsing work.
pub const MAX_HEADERS: usize = 100;

/// Default `--max-threads`. A worker blocked in a handler costs about 24 KiB of resident memory (its touched
/// stack pages and thread-local buffers: 271 workers asleep in a plugin took plugd from 4.8 to 11.2 MB RSS)
/// plus the kernel's 16 KiB stack for its task, so 256 of them cost about 10 MiB, and they hold 256 handlers
/// blocked at once: 100 clients on a 200 ms route are served at full speed with room to spare. tokio's
/// blocking pool allows 512; half of that is plenty on the few cores plugd targets, and bounds what a
/// stampede of slow requests can take (a plugin's default share is three quarters of it).
pub const DEFAULT_MAX_THREADS: u16 = 256;

/// Raw command-line arguments.
#[derive(Parser, Debug)]
#[command(
    name = "plugd",
    version,
    about = "An HTTP/1.1 server whose route handlers are compiled plugins"
)]
pub struct Args {
    /// TOML file holding any of these settings (same names, `_` for `-`) and the `[plugins.NAME]` tables;
    /// a flag or a variable wins over the file.
    #[arg(long, env = "PLUGD_CONFIG", global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Address to listen on.
    #[arg(long, env = "PLUGD_HOST", default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// TCP port to listen on; 0 picks a free port (the log line `listening on ...` shows which).
    #[arg(long, env = "PLUGD_PORT", default_value_t = 8080)]
    pub port: u16,
    /// Share the port with other plugd processes started with this flag (`SO_REUSEPORT`): the kernel
    /// spreads new connections among them, so N processes give a WSGI app N interpreters on N cores.
    #[arg(long, env = "PLUGD_REUSE_PORT")]
    pub reuse_port: bool,
    /// Folder served under /static/.
    #[arg(long, env = "PLUGD_STATIC_DIR", default_value = "static")]
    pub static_dir: PathBuf,
    /// Folder of plugin libraries (*.so directly inside it), watched while serving: a file added, replaced
    /// (write a temporary name, then rename it over the old one) or removed takes effect within a second.
    #[arg(long, env = "PLUGD_PLUGIN_DIR", default_value = "plugins")]
    pub plugin_dir: PathBuf,
    /// Load plugin files and folders that others than plugd's user or root could write, and symlinks
    /// leading out of the folder (refused by default), with a warning.
    #[arg(long, env = "PLUGD_ALLOW_INSECURE_PLUGINS")]
    pub allow_insecure_plugins: bool,
    /// Refuse to start (exit 2) if any plugin file is refused.
    #[arg(long, env = "PLUGD_STRICT_PLUGINS")]
    pub strict_plugins: bool,
    /// Worker threads [default: 2 x CPUs, at least 4]. Handlers block, so more workers than cores.
    #[arg(long, env = "PLUGD_THREADS", value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub threads: Option<u16>,
    /// Most worker threads while handlers block: more start when every worker is inside a handler, and
    /// retire after 10 s without work, down to --threads (raised to --threads if below it).
    #[arg(long, env = "PLUGD_MAX_THREADS", default_value_t = DEFAULT_MAX_THREADS,
          value_parser = clap::value_parser!(u16).range(1..=4096))]
    pub max_threads: u16,
    /// Seconds after which a handler still running is named in one warning (plugin, route, peer, time).
    #[arg(long, env = "PLUGD_SLOW_HANDLER", default_value = "1", value_parser = parse_seconds)]
    pub slow_handler: Duration,
    /// Largest request body in bytes; larger gets 413.
    #[arg(long, env = "PLUGD_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: u64,
    /// Largest request header section in bytes; larger gets 431.
    #[arg(long, env = "PLUGD_MAX_HEADER_BYTES", default_value_t = 16 * 1024,
          value_parser = clap::value_parser!(u32).range(256..=1024 * 1024))]
    pub max_header_bytes: u32,
    /// Seconds a client has to send a complete request head, counted from its first byte.
    #[arg(long, env = "PLUGD_HEADER_TIMEOUT", default_value = "10", value_parser = parse_seconds)]
    pub header_timeout: Duration,
    /// Seconds a request body may go without a byte arriving (nginx's client_body_timeout); also the grace
    /// period before --min-body-rate applies. A stalled body gets 408.
    #[arg(long, env = "PLUGD_BODY_TIMEOUT", default_value = "10", value_parser = parse_seconds)]
    pub body_timeout: Duration,
    /// Bytes per second a request body must average once its grace period (--body-timeout) is over; a
    /// slower one gets 408. 0 turns the rate off.
    #[arg(long, env = "PLUGD_MIN_BODY_RATE", default_value_t = 1024)]
    pub min_body_rate: u64,
    /// Seconds a response may wait for the client to read more of it; a client that reads nothing for that
    /// long is cut off.
    #[arg(long, env = "PLUGD_SEND_TIMEOUT", default_value = "30", value_parser = parse_seconds)]
    pub send_timeout: Duration,
    /// Seconds an idle keep-alive connection is kept open.
    #[arg(long, env = "PLUGD_IDLE_TIMEOUT", default_value = "60", value_parser = parse_seconds)]
    pub idle_timeout: Duration,
    /// Most open client connections; beyond it new connections get a fast 503 and are closed.
    #[arg(long, env = "PLUGD_MAX_CONNECTIONS", default_value_t = 16384,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_connections: u32,
    /// Seconds in-flight requests get to finish after SIGINT/SIGTERM.
    #[arg(long, env = "PLUGD_SHUTDOWN_TIMEOUT", default_value = "10", value_parser = parse_seconds)]
    pub shutdown_timeout: Duration,
    /// Where the access log goes: a file PATH (appended to, reopened on SIGUSR1 for logrotate), `stderr`
    /// or `off`. Lines are buffered per worker and written at least every second.
    #[arg(long, env = "PLUGD_ACCESS_LOG", default_value = "stderr",
          value_parser = crate::access_log::Destination::parse)]
    pub access_log: crate::access_log::Destination,
    /// Access log line format: `combined` (Combined Log Format, then duration in seconds and handler)
    /// or `json` (one object per line).
    #[arg(
        long,
        env = "PLUGD_ACCESS_LOG_FORMAT",
        value_enum,
        default_value = "combined"
    )]
    pub access_log_format: crate::access_log::Format,
    /// A filter plugin to run around every answer (repeatable; in the file: `middleware = ["a", "b"]`), in
    /// this order on the way in and in reverse on the way out. A name no loaded filter has stops plugd.
    #[arg(
        long,
        env = "PLUGD_MIDDLEWARE",
        value_name = "NAME",
        value_delimiter = ','
    )]
    pub middleware: Vec<String>,
    /// Address block of a reverse proxy (repeatable, e.g. `10.0.0.0/8`): requests from it are attributed to
    /// the client its `X-Forwarded-For` / `Forwarded` names (the rate limit counts that address).
    #[arg(long, env = "PLUGD_TRUSTED_PROXIES", value_name = "CIDR", value_delimiter = ',',
          value_parser = crate::rate_limit::Cidr::parse)]
    pub trusted_proxies: Vec<crate::rate_limit::Cidr>,
    /// Most open connections per client address; beyond it a new connection gets 503 and is closed
    /// [default: no limit but --max-connections].
    #[arg(long, env = "PLUGD_MAX_CONNECTIONS_PER_CLIENT",
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_connections_per_client: Option<u32>,
    /// Requests per second each client address may make, sustained (`[rate_limit] requests_per_second` in
    /// the file); over it: 429 with Retry-After [default: no limit].
    #[arg(long, env = "PLUGD_RATE_LIMIT_REQUESTS_PER_SECOND", value_name = "R",
          value_parser = parse_rate)]
    pub rate_limit_requests_per_second: Option<f64>,
    /// Requests a client may make at once before the sustained rate applies (`[rate_limit] burst`)
    /// [default: the rate per second, at least 1].
    #[arg(long, env = "PLUGD_RATE_LIMIT_BURST", value_name = "B",
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub rate_limit_burst: Option<u32>,
    /// Path prefix the rate limit applies to (repeatable; `[rate_limit] paths`) [default: every path].
    #[arg(
        long,
        env = "PLUGD_RATE_LIMIT_PATHS",
        value_name = "PREFIX",
        value_delimiter = ','
    )]
    pub rate_limit_paths: Vec<String>,
    /// Add the IETF draft `RateLimit` and `RateLimit-Policy` fields to rate-limited answers
    /// (`[rate_limit] headers = true`).
    #[arg(long, env = "PLUGD_RATE_LIMIT_HEADERS")]
    pub rate_limit_headers: bool,
    /// Address of the admin listener (GET / page, /plugins JSON, /metrics for Prometheus, /healthz,
    /// POST /reload); off unless set. Port 0 picks a free one (logged as `admin listening on ...`).
    #[arg(long, env = "PLUGD_ADMIN", value_name = "ADDR:PORT")]
    pub admin: Option<SocketAddr>,
    /// Allow --admin on an address other than loopback: whoever reaches it can read plugd's figures and
    /// reload its plugins.
    #[arg(long, env = "PLUGD_ADMIN_PUBLIC")]
    pub admin_public: bool,
}

/// A positive, finite number of requests per second, fractions allowed ("0.5": one every two seconds).
fn parse_rate(s: &str) -> Result<f64, String> {
    let rate: f64 = s
        .parse()
        .map_err(|_| format!("`{s}` is not a number of requests per second"))?;
    if !(rate.is_finite() && (0.001..=1e6).contains(&rate)) {
        return Err(format!(
            "`{s}` is not between 0.001 and 1000000 requests per second"
        ));
    }
    Ok(rate)
}

/// What plugd is asked to do besides serving.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Load one plugin file as plugd would, print what it serves, run its `init` with its `[plugins.NAME]`
    /// table from `--config` (then its shutdown hook), and exit 0 if plugd would serve it, 1 if not.
    Check {
        /// The plugin library (`.so`).
        plugin: PathBuf,
    },
}

/// A positive, finite number of seconds, fractions allowed ("0.5").
fn parse_seconds(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .parse()
        .map_err(|_| format!("`{s}` is not a number of seconds"))?;
    if !(secs.is_finite() && secs > 0.0 && secs <= 86_400.0) {
        return Err(format!("`{s}` is not between 0 and 86400 seconds"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Every limit on one request.
#[derive(Clone, Debug)]
pub struct Limits {
    pub head: crate::http::HeadLimits,
    /// Largest de-framed body in bytes.
    pub max_body_bytes: u64,
}

/// Every deadline a connection is held to.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    /// From the first byte of a request to the end of its head.
    pub header: Duration,
    /// How a request body must keep arriving.
    pub body: BodyTimeouts,
    /// Between requests on a keep-alive connection.
    pub idle: Duration,
    /// The longest a response may wait for the client to take more of it.
    pub send: Duration,
    /// From SIGTERM to exit.
    pub shutdown: Duration,
}

/// How long a request body may take, as nginx's `client_body_timeout` (between reads) and Kestrel's
/// `MinRequestBodyDataRate` (a rate, after a grace period) measure it.
#[derive(Clone, Copy, Debug)]
pub struct BodyTimeouts {
    /// The longest wait for the next byte; also the grace period before `min_rate` applies.
    pub inactivity: Duration,
    /// Bytes per second the body must average, counted from the end of the head, once the grace period
    /// is over.
    pub min_rate: u64,
}

impl BodyTimeouts {
    /// When a body that began arriving at `since`, last received a byte at `last_read` and has `received`
    /// bytes so far must have received more.
    pub fn deadline(
        &self,
        since: std::time::Instant,
        last_read: std::time::Instant,
        received: u64,
    ) -> std::time::Instant {
        let stalled = last_read + self.inactivity;
        if self.min_rate == 0 {
            return stalled;
        }
        let earned = Duration::from_secs_f64(received as f64 / self.min_rate as f64);
        stalled.min(since + earned.max(self.inactivity))
    }
}

/// The validated configuration the server runs with.
#[derive(Clone, Debug)]
pub struct Config {
    pub addr: SocketAddr,
    /// `--reuse-port`: the listener is bound with `SO_REUSEPORT`, shared with other processes.
    pub reuse_port: bool,
    pub static_dir: PathBuf,
    pub plugin_dir: PathBuf,
    /// Load plugin files others could write (with a warning) instead of refusing them.
    pub allow_insecure_plugins: bool,
    pub strict_plugins: bool,
    /// The `--config` file and the arguments, read again on `SIGHUP` (set by [`Invocation::parse`]).
    pub source: Option<ConfigSource>,
    /// Workers started at once, and the count the pool shrinks back to.
    pub threads: usize,
    /// Most workers while handlers block (at least `threads`).
    pub max_threads: usize,
    /// A handler still running after this long is named in one warning.
    pub slow_handler: Duration,
    pub max_connections: usize,
    pub limits: Limits,
    pub timeouts: Timeouts,
    /// The `[plugins.NAME]` tables of the config file.
    pub plugins: PluginTables,
    pub access_log: crate::access_log::Settings,
    /// The filter plugins around every answer, in order (`middleware.rs`).
    pub middleware: Vec<String>,
    /// The per-client request limit, if one is set.
    pub rate_limit: Option<crate::rate_limit::Settings>,
    /// Whose forwarding fields name the client.
    pub trusted_proxies: crate::rate_limit::TrustedProxies,
    /// Most open connections per client address, if limited.
    pub max_connections_per_client: Option<u32>,
    /// Where the admin listener listens; `None`: no admin listener, and requests are not counted.
    pub admin: Option<SocketAddr>,
    /// `--admin-public`: the admin address need not be loopback.
    pub admin_public: bool,
}

/// What the command line asks for.
#[derive(Debug)]
pub enum Invocation {
    /// `plugd [FLAGS]`: serve.
    Serve(Config),
    /// `plugd check FILE`: load one plugin without serving.
    Check { plugin: PathBuf, config: Config },
}

/// Why the command line was not accepted.
#[derive(Debug)]
pub enum CliError {
    /// clap's own answer: a usage error, or `--help` / `--version` (which print and exit 0).
    Usage(clap::Error),
    /// The config file cannot be used; one line naming the file (and the key and line when there is one).
    File(String),
}

impl Invocation {
    /// Parses `argv` (program name first) with the config file's settings as defaults: flag > environment >
    /// file > built-in default.
    pub fn parse(
        argv: impl IntoIterator<Item = impl Into<OsString>>,
    ) -> Result<Invocation, CliError> {
        let argv: Vec<OsString> = argv.into_iter().map(Into::into).collect();
        let command = Args::command();
        let first = command
            .clone()
            .try_get_matches_from(&argv)
            .map_err(CliError::Usage)?;
        let (matches, plugins) = match first.get_one::<PathBuf>("config") {
            None => (first, PluginTables::default()),
            Some(path) => {
                let settings = file::ConfigFile::read(path).map_err(CliError::File)?;
                let (command, plugins) = settings.apply(command).map_err(CliError::File)?;
                let matches = command
                    .try_get_matches_from(&argv)
                    .map_err(CliError::Usage)?;
                (matches, plugins)
            }
        };
        let mut args = Args::from_arg_matches(&matches).map_err(CliError::Usage)?;
        let command = args.command.take();
        let config_path = args.config.clone();
        let mut config = Config::from_args(args);
        config.plugins = plugins;
        config.source = config_path.map(|file| ConfigSource { file, argv });
        Ok(match command {
            None => Invocation::Serve(config),
            Some(Command::Check { plugin }) => Invocation::Check { plugin, config },
        })
    }
}

/// Where plugd's configuration came from, to be read again by a reload (`SIGHUP`, `POST /reload`): the
/// config file, and the arguments plugd was started with, which still win over the file.
#[derive(Clone, Debug)]
pub struct ConfigSource {
    pub file: PathBuf,
    argv: Vec<OsString>,
}

/// What a reload takes from the config file; its other settings take effect at the next start.
#[derive(Debug)]
pub struct Reloaded {
    pub plugins: PluginTables,
    pub middleware: Vec<String>,
}

impl ConfigSource {
    /// The file read again, under the same arguments as at startup. The whole file is checked as at
    /// startup, so a file that would not start plugd is refused.
    pub fn reread(&self) -> Result<Reloaded, String> {
        let settings = file::ConfigFile::read(&self.file)?;
        let (command, plugins) = settings.apply(Args::command())?;
        let args = command
            .try_get_matches_from(&self.argv)
            .and_then(|matches| Args::from_arg_matches(&matches))
            .map_err(|err| err.to_string())?;
        Ok(Reloaded {
            plugins,
            middleware: args.middleware,
        })
    }
}

impl Config {
    pub fn from_args(args: Args) -> Config {
        let threads = args.threads.map_or_else(default_threads, usize::from);
        Config {
            addr: SocketAddr::new(args.host, args.port),
            reuse_port: args.reuse_port,
            static_dir: args.static_dir,
            plugin_dir: args.plugin_dir,
            allow_insecure_plugins: args.allow_insecure_plugins,
            strict_plugins: args.strict_plugins,
            source: None,
            threads,
            max_threads: usize::from(args.max_threads).max(threads),
            slow_handler: args.slow_handler,
            max_connections: args.max_connections as usize,
            limits: Limits {
                head: crate::http::HeadLimits {
                    max_request_line: MAX_REQUEST_LINE,
                    max_header_bytes: args.max_header_bytes as usize,
                    max_headers: MAX_HEADERS,
                },
                max_body_bytes: args.max_body_bytes,
            },
            timeouts: Timeouts {
                header: args.header_timeout,
                body: BodyTimeouts {
                    inactivity: args.body_timeout,
                    min_rate: args.min_body_rate,
                },
                idle: args.idle_timeout,
                send: args.send_timeout,
                shutdown: args.shutdown_timeout,
            },
            plugins: PluginTables::default(),
            access_log: crate::access_log::Settings {
                destination: args.access_log,
                format: args.access_log_format,
            },
            middleware: args.middleware,
            rate_limit: args
                .rate_limit_requests_per_second
                .map(|requests_per_second| crate::rate_limit::Settings {
                    requests_per_second,
                    burst: args
                        .rate_limit_burst
                        .unwrap_or(requests_per_second.ceil() as u32)
                        .max(1),
                    paths: args.rate_limit_paths,
                    draft_fields: args.rate_limit_headers,
                }),
            trusted_proxies: crate::rate_limit::TrustedProxies::new(args.trusted_proxies),
            max_connections_per_client: args.max_connections_per_client,
            admin: args.admin,
            admin_public: args.admin_public,
        }
    }

    /// Defaults for everything, listening on `127.0.0.1:0`: what in-process tests start from.
    pub fn for_tests() -> Config {
        let mut config = Config::from_args(Args::parse_from(["plugd", "--port", "0"]));
        config.threads = 4;
        config
    }
}

/// Handlers may block (a plugin calling a database), so the pool has more workers than cores.
fn default_threads() -> usize {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    (cores * 2).max(4)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn a_body_must_keep_arriving_and_keep_up_its_rate_after_the_grace_period() {
        let timeouts = BodyTimeouts {
            inactivity: Duration::from_secs(10),
            min_rate: 1000,
        };
        let since = Instant::now();
        let secs = Duration::from_secs;
        // Nothing yet: the grace period.
        assert_eq!(timeouts.deadline(since, since, 0), since + secs(10));
        // Fast: only inactivity can cut it.
        assert_eq!(
            timeouts.deadline(since, since + secs(30), 1_000_000),
            since + secs(40)
        );
        // 15,000 bytes earn 15 s at 1,000 B/s, then it is too slow whatever keeps trickling.
        assert_eq!(
            timeouts.deadline(since, since + secs(14), 15_000),
            since + secs(15)
        );
        let no_rate = BodyTimeouts {
            min_rate: 0,
            ..timeouts
        };
        assert_eq!(
            no_rate.deadline(since, since + secs(99), 1),
            since + secs(109)
        );
    }
}
