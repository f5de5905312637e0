//! The `plugd` binary: command line (and config file) -> validated config -> serve, or `plugd check FILE`.
//! Exit codes: 0 after a clean shutdown (or a plugin that `check` accepts), 2 for invalid configuration (or a
//! refused plugin under `--strict-plugins`), 1 when serving failed (or `check` refused the plugin).

use std::path::Path;
use std::process::ExitCode;

use clap::error::ErrorKind;
use plugd::app::{self, StartError};
use plugd::config::{CliError, Config, Invocation};

fn main() -> ExitCode {
    let invocation = match Invocation::parse(std::env::args_os()) {
        Ok(invocation) => invocation,
        Err(CliError::Usage(err))
            if matches!(
                err.kind(),
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
            ) =>
        {
            err.exit()
        }
        Err(CliError::Usage(err)) => {
            let message = err.to_string();
            let first_line = message.lines().next().unwrap_or("invalid arguments");
            eprintln!("plugd: {}", first_line.trim_start_matches("error: "));
            return ExitCode::from(2);
        }
        Err(CliError::File(message)) => {
            eprintln!("plugd: {message}");
            return ExitCode::from(2);
        }
    };
    let default_log = match invocation {
        Invocation::Serve(_) => "info",
        // The report is on stdout; the log keeps warnings (the plugin's own), minus the static folder's, which
        // has no say in whether a plugin is served.
        Invocation::Check { .. } => "warn,plugd::static_files=error",
    };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(default_log)).init();
    let outcome = match invocation {
        Invocation::Serve(config) => app::run(config).map(|()| ExitCode::SUCCESS),
        Invocation::Check { plugin, config } => check(&config, &plugin),
    };
    outcome.unwrap_or_else(|err| match err {
        StartError::Config(message) => {
            log::error!("{message}");
            ExitCode::from(2)
        }
        StartError::Io(message) => {
            log::error!("{message}");
            ExitCode::from(1)
        }
    })
}

/// Prints what `plugd check` found on stdout; a refusal goes to stderr as the server would log it, exit 1.
fn check(config: &Config, plugin: &Path) -> Result<ExitCode, StartError> {
    // The dynamic loader searches its library path for a bare file name: `check libx.so` means this folder's.
    let plugin = std::path::absolute(plugin)
        .map_err(|err| StartError::Io(format!("{}: {err}", plugin.display())))?;
    let report = app::check(config, &plugin);
    print!("{}", report.text);
    Ok(match report.verdict {
        Ok(()) => {
            println!("verdict     plugd would serve it");
            ExitCode::SUCCESS
        }
        Err(err) => {
            println!("verdict     plugd would refuse it");
            eprintln!("plugin refused: {err}");
            ExitCode::from(1)
        }
    })
}
