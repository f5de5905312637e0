//! The `plugd` binary: command line -> validated config -> run.

fn main() {
    let args = <plugd::config::Args as clap::Parser>::parse();
    let _config = plugd::config::Config::from_args(args);
}
