//! `GET /sleep`: sleeps 10 ms, then answers `slept`. Stands for a handler that blocks on a database or a
//! remote call; the bench checks that it delays only its own connection.

use std::time::Duration;

use plugin_api::{Handler, Request, Response};

/// How long each request blocks its worker.
const BLOCK: Duration = Duration::from_millis(10);

pub struct Sleep;

impl Handler for Sleep {
    fn handle(&self, _req: &Request<'_>) -> Response {
        std::thread::sleep(BLOCK);
        Response::text("slept")
    }
}

plugin_api::export_plugin! {
    name: "sleep",
    version: env!("CARGO_PKG_VERSION"),
    routes: [("GET", "/sleep")],
    init: |_config| Ok(Sleep),
}
