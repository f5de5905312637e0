//! The admin listener's JSON, written by hand: two small fixed shapes do not justify a serialization
//! framework in the server (the tests read them back with serde_json).

use std::fmt::Write;
use std::time::{Duration, UNIX_EPOCH};

use super::catalog::{PluginStatus, ReloadReport};
use crate::http::date::format_http_date;

/// `{"plugins": [...]}`: one object per loaded plugin version, serving ones first.
pub fn plugins(plugins: &[PluginStatus]) -> String {
    let mut out = String::from("{\"plugins\":[");
    for (i, plugin) in plugins.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_plugin(&mut out, plugin);
    }
    out.push_str("]}\n");
    out
}

fn write_plugin(out: &mut String, plugin: &PluginStatus) {
    let counters = plugin.counters.snapshot();
    let loaded_unix = plugin
        .loaded_at
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let _ = write!(
        out,
        "{{\"name\":{},\"version\":{},\"file\":{},\"sha256\":{},\"loaded_at\":{},\"loaded_at_unix\":{loaded_unix},\
         \"state\":{},\"routes\":[",
        string(&plugin.name),
        string(&plugin.version),
        string(&plugin.file.to_string_lossy()),
        string(&plugin.sha256),
        string(&format_http_date(plugin.loaded_at)),
        string(plugin.state.as_str()),
    );
    for (i, (method, pattern)) in plugin.routes.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(
            out,
            "{{\"method\":{},\"pattern\":{}}}",
            string(method),
            string(pattern)
        );
    }
    let _ = write!(
        out,
        "],\"counters\":{{\"requests\":{},\"errors_5xx\":{},\"panics\":{},\"in_flight\":{},\
         \"latency_p50_seconds\":{},\"latency_p99_seconds\":{}}}}}",
        counters.requests,
        counters.errors_5xx,
        counters.panics,
        plugin.in_flight,
        seconds(counters.p50),
        seconds(counters.p99),
    );
}

/// `{"changes": [...], "refusals": [...], "not_attempted": null | "why"}`.
pub fn reload_report(report: &ReloadReport) -> String {
    let list = |lines: &[String]| {
        let items: Vec<String> = lines.iter().map(|line| string(line)).collect();
        format!("[{}]", items.join(","))
    };
    format!(
        "{{\"changes\":{},\"refusals\":{},\"not_attempted\":{}}}\n",
        list(&report.changes),
        list(&report.refusals),
        report
            .not_attempted
            .as_deref()
            .map_or("null".to_owned(), string)
    )
}

/// A duration in seconds, or `null` when there is none yet.
fn seconds(duration: Option<Duration>) -> String {
    duration.map_or("null".to_owned(), |d| format!("{}", d.as_secs_f64()))
}

/// A JSON string (RFC 8259 §7): quotes, backslashes and control characters escaped.
fn string(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::sync::Arc;
    use std::time::SystemTime;

    use super::*;
    use crate::admin::catalog::PluginState;
    use crate::metrics::PluginCounters;

    #[test]
    fn plugins_are_valid_json_whatever_their_names_hold() {
        let status = PluginStatus {
            name: "we\"ird\\name\n\u{1}".into(),
            version: "0.1.0".into(),
            file: PathBuf::from("/p/libx.so"),
            sha256: "ab".into(),
            loaded_at: SystemTime::UNIX_EPOCH,
            state: PluginState::Draining,
            routes: vec![("GET".into(), "/x/{id}".into())],
            counters: Arc::new(PluginCounters::new()),
            in_flight: 0,
        };
        let text = plugins(&[status.clone(), status]);
        let value: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
        let first = &value["plugins"][0];
        assert_eq!(first["name"], "we\"ird\\name\n\u{1}");
        assert_eq!(first["state"], "draining");
        assert_eq!(first["routes"][0]["pattern"], "/x/{id}");
        assert_eq!(first["counters"]["requests"], 0);
        assert!(first["counters"]["latency_p99_seconds"].is_null());
        assert_eq!(value["plugins"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn a_reload_report_says_why_nothing_was_done() {
        let report = ReloadReport {
            not_attempted: Some("not \"here\"".into()),
            refusals: vec!["a".into(), "b".into()],
            ..ReloadReport::default()
        };
        let value: serde_json::Value = serde_json::from_str(&reload_report(&report)).unwrap();
        assert_eq!(value["not_attempted"], "not \"here\"");
        assert_eq!(value["refusals"][1], "b");
        assert_eq!(value["changes"].as_array().unwrap().len(), 0);
    }
}
