//! What each admin path answers. Everything here reads: the plugin catalog, the metrics registry and the
//! server's gauges; only `POST /reload` changes anything, and it does so through the catalog.

use std::sync::Arc;

use super::catalog::PluginCatalog;
use super::json;
use crate::metrics::{self, prometheus};
use crate::server::ServerStats;

/// The page for people: plugins, versions, routes and counters, refreshed by its own script.
const PAGE: &str = include_str!("page.html");

/// What the admin listener reads from.
pub struct Admin {
    pub catalog: Arc<dyn PluginCatalog>,
    pub server: ServerStats,
}

/// One answer, before it is framed.
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    /// For a 405: the methods the path takes.
    pub allow: Option<&'static str>,
    pub body: Vec<u8>,
}

impl Reply {
    fn new(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Reply {
        Reply {
            status,
            content_type,
            allow: None,
            body: body.into(),
        }
    }

    fn text(status: u16, text: &str) -> Reply {
        Reply::new(status, "text/plain; charset=utf-8", format!("{text}\n"))
    }
}

const JSON: &str = "application/json";

impl Admin {
    /// The answer to `method path` (the path without its query).
    pub fn answer(&self, method: &str, path: &str) -> Reply {
        let read = matches!(method, "GET" | "HEAD");
        match (path, read, method) {
            ("/", true, _) => Reply::new(200, "text/html; charset=utf-8", PAGE),
            ("/plugins", true, _) => Reply::new(200, JSON, json::plugins(&self.catalog.plugins())),
            ("/metrics", true, _) => Reply::new(200, prometheus::CONTENT_TYPE, self.metrics()),
            ("/healthz", true, _) => self.health(),
            ("/reload", _, "POST") => self.reload(),
            ("/" | "/plugins" | "/metrics" | "/healthz", false, _) => Reply {
                allow: Some("GET, HEAD"),
                ..Reply::text(405, "Method Not Allowed")
            },
            ("/reload", _, _) => Reply {
                allow: Some("POST"),
                ..Reply::text(405, "Method Not Allowed")
            },
            _ => Reply::text(404, "Not Found"),
        }
    }

    fn metrics(&self) -> String {
        prometheus::render(
            &metrics::route_totals(),
            self.server.gauges(),
            metrics::bytes(),
        )
    }

    /// 200 while serving; 503 once shutdown began, so a load balancer stops sending new requests.
    fn health(&self) -> Reply {
        if self.server.shutting_down() {
            Reply::text(503, "shutting down")
        } else {
            Reply::text(200, "ok")
        }
    }

    fn reload(&self) -> Reply {
        log::info!("admin: reload asked for");
        let report = self.catalog.reload();
        for line in &report.changes {
            log::info!("reload: {line}");
        }
        if let Some(reason) = &report.not_attempted {
            log::info!("reload: nothing done: {reason}");
        }
        Reply::new(200, JSON, json::reload_report(&report))
    }
}
