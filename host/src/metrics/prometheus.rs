//! The Prometheus text exposition format (version 0.0.4): every family with its `# HELP` and `# TYPE`
//! lines, names prefixed `plugd_`, counters ending in `_total`, durations in seconds, sizes in bytes, label
//! values escaped (`\\`, `\"`, `\n`). The end-to-end tests read it back with a real Prometheus parser.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::events::EVENTS;
use super::histogram::{BUCKETS, upper_bound_micros};
use super::registry::RouteKey;
use super::shards::{CLASSES, METHODS, SeriesTotals};

/// The `Content-Type` of the exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What the server reports about itself at the moment of the scrape (not counted per request).
#[derive(Clone, Copy, Debug, Default)]
pub struct Gauges {
    pub open_connections: usize,
    pub idle_connections: usize,
    pub busy_workers: usize,
    pub workers: usize,
}

/// The whole exposition: the routes' series, the server's gauges, bytes and plugin events.
pub fn render(
    routes: &[(RouteKey, SeriesTotals)],
    gauges: Gauges,
    (bytes_in, bytes_out): (u64, u64),
) -> String {
    let mut out = String::with_capacity(4096 + routes.len() * 2048);
    write_requests(&mut out, routes);
    write_durations(&mut out, routes);
    let events = &EVENTS;
    let singles: [(&str, &str, &str, u64); 10] = [
        (
            "plugd_connections_open",
            "gauge",
            "Open client connections.",
            gauges.open_connections as u64,
        ),
        (
            "plugd_connections_idle",
            "gauge",
            "Open client connections waiting for their next request.",
            gauges.idle_connections as u64,
        ),
        (
            "plugd_workers_busy",
            "gauge",
            "Worker threads serving a connection now.",
            gauges.busy_workers as u64,
        ),
        (
            "plugd_workers",
            "gauge",
            "Worker threads running (busy or not).",
            gauges.workers as u64,
        ),
        (
            "plugd_received_bytes_total",
            "counter",
            "Bytes read from client connections.",
            bytes_in,
        ),
        (
            "plugd_sent_bytes_total",
            "counter",
            "Bytes written to client connections.",
            bytes_out,
        ),
        (
            "plugd_plugin_loads_total",
            "counter",
            "Plugin files loaded and serving.",
            events.plugin_loads.get(),
        ),
        (
            "plugd_plugin_refusals_total",
            "counter",
            "Plugin files refused.",
            events.plugin_refusals.get(),
        ),
        (
            "plugd_plugin_reloads_total",
            "counter",
            "Plugin reloads done (SIGHUP, POST /reload, folder changes).",
            events.plugin_reloads.get(),
        ),
        (
            "plugd_plugin_panics_total",
            "counter",
            "Plugin calls that panicked (answered 500).",
            events.plugin_panics.get(),
        ),
    ];
    for (name, kind, help, value) in singles {
        family(&mut out, name, help, kind);
        let _ = writeln!(out, "{name} {value}");
    }
    out
}

fn family(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// `plugd_requests_total{route, method, status}`: the request's own method (a GET route also answers
/// HEAD), so routes sharing a pattern add into one series per label set.
fn write_requests(out: &mut String, routes: &[(RouteKey, SeriesTotals)]) {
    family(
        out,
        "plugd_requests_total",
        "Requests answered, by route pattern, request method and status class.",
        "counter",
    );
    let mut by_labels: BTreeMap<(&str, usize, usize), u64> = BTreeMap::new();
    for (key, totals) in routes {
        for (method, by_class) in totals.requests.iter().enumerate() {
            for (class, &count) in by_class.iter().enumerate().filter(|(_, count)| **count > 0) {
                *by_labels.entry((&key.pattern, method, class)).or_default() += count;
            }
        }
    }
    for ((pattern, method, class), count) in by_labels {
        let _ = writeln!(
            out,
            "plugd_requests_total{{route=\"{}\",method=\"{}\",status=\"{}xx\"}} {count}",
            escape(pattern),
            METHODS[method],
            class + 1
        );
    }
    debug_assert_eq!(CLASSES, 5);
}

/// `plugd_request_duration_seconds{route, method}`: one histogram per route (its registered method), from
/// a request's first byte to its response being ready.
fn write_durations(out: &mut String, routes: &[(RouteKey, SeriesTotals)]) {
    family(
        out,
        "plugd_request_duration_seconds",
        "Time from a request's first byte to its response, per route.",
        "histogram",
    );
    for (key, totals) in routes {
        let labels = format!(
            "route=\"{}\",method=\"{}\"",
            escape(&key.pattern),
            escape(&key.method)
        );
        let mut cumulative = 0;
        for (bucket, count) in totals.durations.counts.iter().enumerate() {
            cumulative += count;
            let _ = if bucket == BUCKETS {
                writeln!(
                    out,
                    "plugd_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {cumulative}"
                )
            } else {
                let bound = upper_bound_micros(bucket) as f64 / 1e6;
                writeln!(
                    out,
                    "plugd_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {cumulative}"
                )
            };
        }
        let sum = totals.durations.sum_micros as f64 / 1e6;
        let _ = writeln!(out, "plugd_request_duration_seconds_sum{{{labels}}} {sum}");
        let _ = writeln!(
            out,
            "plugd_request_duration_seconds_count{{{labels}}} {cumulative}"
        );
    }
}

/// A label value as the exposition format writes it.
fn escape(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => escaped.push_str("\\\\"),
            '"' => escaped.push_str("\\\""),
            '\n' => escaped.push_str("\\n"),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(method: &str, pattern: &str) -> RouteKey {
        RouteKey {
            method: method.into(),
            pattern: pattern.into(),
        }
    }

    #[test]
    fn routes_sharing_a_pattern_add_into_one_series_per_label_set() {
        let mut get = SeriesTotals::default();
        get.requests[1][1] = 2; // HEAD 2xx on the GET route
        let mut head = SeriesTotals::default();
        head.requests[1][1] = 3; // HEAD 2xx on the HEAD route
        head.durations.counts[0] = 3;
        let text = render(
            &[
                (route("GET", "/a/{x}"), get),
                (route("HEAD", "/a/{x}"), head),
            ],
            Gauges::default(),
            (0, 0),
        );
        assert!(
            text.contains(
                "plugd_requests_total{route=\"/a/{x}\",method=\"HEAD\",status=\"2xx\"} 5\n"
            ),
            "{text}"
        );
        assert!(text.contains("plugd_request_duration_seconds_bucket{route=\"/a/{x}\",method=\"HEAD\",le=\"0.000001\"} 3\n"));
        assert!(text.contains(
            "plugd_request_duration_seconds_count{route=\"/a/{x}\",method=\"HEAD\"} 3\n"
        ));
        assert!(text.contains("le=\"+Inf\"} 3\n"));
    }

    #[test]
    fn label_values_cannot_break_a_line() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
