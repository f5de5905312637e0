//! The `plugd` binary: command line -> validated config -> run. Exit codes: 0 after a clean shutdown,
//! 2 for invalid configuration (or a refused plugin under `--strict-plugins`), 1 when serving failed.

use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;
use plugd::app::{self, StartError};
use plugd::config::{Args, Config};

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(err)
            if matches!(
                err.kind(),
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
            ) =>
        {
            err.exit()
        }
        Err(err) => {
            let message = err.to_string();
            let first_line = message.lines().next().unwrap_or("invalid arguments");
            eprintln!("plugd: {}", first_line.trim_start_matches("error: "));
            return ExitCode::from(2);
        }
    };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    match app::run(Config::from_args(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(StartError::Config(message)) => {
            log::error!("{message}");
            ExitCode::from(2)
        }
        Err(StartError::Io(message)) => {
            log::error!("{message}");
            ExitCode::from(1)
        }
    }
}
