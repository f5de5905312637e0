//! `GET /sleep`: sleeps 10 ms, then answers `slept`; `GET /slow`: the same after 200 ms. They stand for
//! handlers that block on a database or a remote call; the bench checks that they delay only their own
//! connections, one blocker or a hundred.

use std::time::Duration;

use plugin_api::{Handler, Request, Response};

/// How long a `/sleep` request blocks its worker.
const BLOCK: Duration = Duration::from_millis(10);
/// How long a `/slow` request blocks its worker: a slow database query.
const SLOW: Duration = Duration::from_millis(200);

pub struct Sleep;

impl Handler for Sleep {
    fn handle(&self, req: &Request<'_>) -> Response {
        std::thread::sleep(if req.path() == "/slow" { SLOW } else { BLOCK });
        Response::text("slept")
    }
}

plugin_api::export_plugin! {
    name: "sleep",
    version: env!("CARGO_PKG_VERSION"),
    routes: [("GET", "/sleep"), ("GET", "/slow")],
    init: |_config| Ok(Sleep),
}
