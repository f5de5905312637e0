//! `plugd-bench-builtin --port P --static-dir DIR --plugin-dir DIR [--threads N]`
//!
//! plugd's own start-up (static files, then the plugin folder) plus `GET /builtin`, an in-process handler
//! that answers exactly what the hello plugin's `GET /plaintext` answers (200, `text/plain; charset=utf-8`,
//! `Hello, World!`). Both routes run in the same engine, so the two differ only by the plugin boundary.

use std::path::PathBuf;
use std::sync::Arc;

use plugd::config::Config;
use plugd::handler::{Body, Handler, Request, Response};
use plugd::plugins::Plugins;
use plugd::router::RouterBuilder;
use plugd::server::Server;
use plugd::static_files::StaticFiles;

/// What hello's `Response::text("Hello, World!")` becomes on the host side: a static body and one field.
struct Plaintext;

impl Handler for Plaintext {
    fn handle(&self, _req: &Request<'_>) -> Response {
        Response::new(200, Body::Static(b"Hello, World!"))
            .with_header("Content-Type", "text/plain; charset=utf-8")
    }
}

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let mut config = Config::for_tests();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--port" => config.addr.set_port(value.parse().expect("--port")),
            "--static-dir" => config.static_dir = PathBuf::from(value),
            "--plugin-dir" => config.plugin_dir = PathBuf::from(value),
            "--threads" => config.threads = value.parse().expect("--threads"),
            _ => panic!("unknown argument {flag}"),
        }
    }
    let _ = plugd::sys::raise_open_files_limit();
    let mut routes = RouterBuilder::new();
    routes
        .add_all(
            &[("GET", "/static/{*path}")],
            "static",
            Arc::new(StaticFiles::new(&config.static_dir)),
        )
        .expect("static route");
    let mut plugins = Plugins::load_dir(&config.plugin_dir, &config.plugins);
    plugins.register(&mut routes, &plugd::plugins::Isolation::from(&config));
    routes
        .add_all(&[("GET", "/builtin")], "builtin", Arc::new(Plaintext))
        .expect("built-in route");
    let server = Server::bind(&config, routes.build()).expect("bind");
    log::warn!("listening on http://{}", server.local_addr());
    server.run().expect("serve");
}
