//! The adapter that makes each route of a plugin a [`Handler`] like any other: it builds the FFI view of the
//! request (no copies, parameters decoded once), calls the route's function by its manifest index (or the
//! plugin's single handler, for plugins built against plugin-api 0.1.0), and turns the plugin's answer into a
//! host [`Response`]: a streamed body stays the plugin's producer, for the connection to pull
//! (docs/ARCHITECTURE.md §18), and a file body is sent with `sendfile` like a static file.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use plugin_api::host::{Answer, BodySource, Instance};
use plugin_api::percent::decode_params;

use crate::handler::{Body, Fields, Handler, Request, Response, StreamBody};
use crate::metrics::{PluginCounters, SeriesId};

/// Final statuses a handler may answer with (RFC 9110 §15: 1xx are interim, and the host owns those).
const VALID_STATUS: std::ops::RangeInclusive<u16> = 200..=599;

/// One running plugin; the router holds one [`PluginRoute`] per route of it.
pub struct PluginHandler {
    /// The plugin's name, for log lines.
    name: Arc<str>,
    instance: Instance,
    /// Whether the shutdown hook has run (it runs at most once).
    shut_down: AtomicBool,
    /// This version's calls, statuses, durations and panics.
    counters: Arc<PluginCounters>,
}

impl PluginHandler {
    pub(super) fn new(
        name: Arc<str>,
        instance: Instance,
        counters: Arc<PluginCounters>,
    ) -> PluginHandler {
        PluginHandler {
            name,
            instance,
            shut_down: AtomicBool::new(false),
            counters,
        }
    }

    /// The plugin's name.
    pub(super) fn name(&self) -> &str {
        &self.name
    }

    /// The running plugin.
    pub(super) fn instance(&self) -> &Instance {
        &self.instance
    }

    /// This version's counters.
    pub fn counters(&self) -> &Arc<PluginCounters> {
        &self.counters
    }

    /// Runs the plugin's shutdown hook, the first time only.
    pub(super) fn shutdown(&self) {
        if self.shut_down.swap(true, Ordering::AcqRel) {
            return;
        }
        if let Err(panic) = self.instance.shutdown() {
            log::error!(
                "plugin {} panicked in its shutdown hook: {panic}",
                self.name
            );
        }
    }

    /// Answers `req` with the plugin's route at `index`.
    fn handle_route(&self, index: usize, req: &Request<'_>) -> Response {
        // Path parameters are decoded exactly once, here (with the decoder plugins' unit tests use). One that
        // is not valid percent-encoding, or not UTF-8 once decoded, cannot be handed to the plugin as text:
        // the client gets 400 and the plugin is not called.
        let decoded = match decode_params(req.params) {
            Ok(decoded) => decoded,
            Err(bad) => return Response::text(400, format!("{bad}\n")),
        };
        let params: Vec<plugin_api::Param<'_>> = decoded
            .iter()
            .map(|(name, value)| plugin_api::Param::new(name, value))
            .collect();
        let mut upload = req.upload.map(|upload| upload.source());
        let body = upload
            .as_deref_mut()
            .map(|source| source as &mut dyn BodySource);
        match req.with_plugin_view(&params, |view| self.instance.answer(index, view, body)) {
            Ok(answer) => match into_host_response(answer) {
                Ok(response) => response,
                Err(problem) => {
                    log::error!(
                        "plugin {} answered {} {} with {problem}",
                        self.name,
                        req.head.method,
                        req.head.path
                    );
                    Response::text(500, "Internal Server Error\n")
                }
            },
            Err(panic) => {
                self.counters.panicked();
                log::error!(
                    "plugin {} panicked handling {} {}: {panic}",
                    self.name,
                    req.head.method,
                    req.head.path
                );
                // The message stays in the log: it may reveal internals.
                Response::text(500, "Internal Server Error\n")
            }
        }
    }
}

/// The handler of one route of a plugin: the plugin and the route's index in its manifest.
pub struct PluginRoute {
    plugin: Arc<PluginHandler>,
    index: usize,
}

impl PluginRoute {
    /// The handler of the route at `index` in `plugin`'s manifest.
    pub fn new(plugin: Arc<PluginHandler>, index: usize) -> PluginRoute {
        PluginRoute { plugin, index }
    }
}

impl Handler for PluginRoute {
    fn handle(&self, req: &Request<'_>) -> Response {
        self.plugin.handle_route(self.index, req)
    }

    /// Its answers are counted in the plugin version's own series too, when the request is
    /// (`docs/ARCHITECTURE.md` §17.2).
    fn version_series(&self) -> Option<SeriesId> {
        Some(self.plugin.counters.series())
    }

    fn streams_body(&self) -> bool {
        self.plugin.instance.body_streamed(self.index)
    }
}

/// Converts a plugin's answer, refusing what would corrupt the response on the wire: a status that is not a
/// final 2xx-5xx, or a header field that is not `token: value` without CR, LF or NUL (RFC 9110 §5.1, §5.5),
/// which could split the response (e.g. a `Location` copied from the request). Nothing is copied: the fields
/// and a static body stay in the plugin's memory until the response is written.
#[inline]
pub(super) fn into_host_response(answer: Answer) -> Result<Response, String> {
    let (status, headers, body) = answer.response.into_parts();
    if !VALID_STATUS.contains(&status) {
        return Err(format!("invalid status {status}"));
    }
    // Framing fields (`Content-Length`, `Connection`, ...) are dropped when the head is written, as for
    // every handler: the host alone frames responses.
    let headers = Fields::from_plugin(headers)
        .map_err(|(name, value)| format!("invalid header field {name:?}: {value:?}"))?;
    let body = match (answer.file, answer.body, body) {
        (Some(span), _, _) => Body::File {
            file: span.file,
            offset: span.offset,
            len: span.len,
        },
        (None, Some(producer), _) => Body::Stream(StreamBody {
            producer,
            length: answer.length,
        }),
        (None, None, plugin_api::Body::Empty) => Body::Empty,
        // Plugin libraries are never unloaded, so their statics live as long as the process.
        (None, None, plugin_api::Body::Static(bytes)) => Body::Static(bytes.as_slice()),
        (None, None, owned @ plugin_api::Body::Owned(_)) => Body::Plugin(owned),
    };
    Ok(Response {
        status,
        headers,
        body,
    })
}

#[cfg(test)]
mod tests {
    use crate::handler::{Body, Response as HostResponse};
    use plugin_api::Response;

    fn into_host_response(response: Response) -> Result<HostResponse, String> {
        super::into_host_response(plugin_api::host::Answer {
            response,
            body: None,
            length: None,
            file: None,
        })
    }

    #[test]
    fn headers_are_kept_in_order_and_static_bodies_stay_static() {
        let response = Response::text("hi").with_header("X-Kept", "yes");
        let converted = into_host_response(response).unwrap();
        let names: Vec<_> = converted.headers.iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["Content-Type", "X-Kept"]);
        assert!(matches!(converted.body, Body::Static(b"hi")));
    }

    #[test]
    fn responses_that_would_corrupt_the_wire_are_refused() {
        let split = Response::see_other("/x\r\nSet-Cookie: stolen=1");
        assert!(into_host_response(split).is_err());
        let bad_name = Response::text("").with_header("Bad Name", "v");
        assert!(into_host_response(bad_name).is_err());
        for status in [0, 101, 600] {
            assert!(
                into_host_response(Response::empty(status)).is_err(),
                "{status}"
            );
        }
        assert!(into_host_response(Response::empty(204)).is_ok());
    }
}
