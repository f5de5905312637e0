//! End-to-end tests of the middleware chain (docs/ARCHITECTURE.md §15): the real binary, the example filters
//! (`request-id`, `bearer-auth`, `headers`), the `filter_probe` fixture (short-circuits, panics, appends
//! `X-Order: probe`) and the `legacy_filter` fixture (built against plugin-api 0.1.2's `filter.v1`), around
//! plugin routes, static files and plugd's own 404 and 413.

use std::collections::HashSet;
use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use plugd_tests::{
    Response, Server, TempDir, example_plugin, example_plugins, parse_response, plugin_dir_with,
    run_plugd, send_raw,
};

#[path = "fixtures/builder.rs"]
mod fixtures;

/// How long a log line has to appear.
const LOG_WAIT: Duration = Duration::from_secs(10);

/// The example plugins plus the `filter_probe` and `legacy_filter` fixtures, in one plugin folder.
fn plugins_with_probe() -> TempDir {
    let profile_dir = example_plugin("hello").parent().unwrap().to_owned();
    let target_dir = profile_dir.parent().unwrap();
    let mut libs = example_plugins();
    for fixture in ["filter_probe", "legacy_filter"] {
        libs.push(fixtures::build_fixture(fixture, target_dir));
    }
    plugin_dir_with(&libs)
}

/// plugd with the example plugins, the probe and a config file holding `toml`.
fn start(toml: &str) -> (Server, TempDir) {
    let config = TempDir::new("middleware-config");
    let file = config.join("plugd.toml");
    fs::write(&file, toml).unwrap();
    let file = file.to_str().unwrap().to_owned();
    let server = Server::start_with_plugin_dir(plugins_with_probe(), &["--config", &file]);
    (server, config)
}

fn request(server: &Server, raw: &str) -> Response {
    parse_response(&send_raw(server.addr(), raw.as_bytes()))
}

fn get_with(server: &Server, path: &str, fields: &str) -> Response {
    request(
        server,
        &format!("GET {path} HTTP/1.1\r\nHost: t\r\n{fields}Connection: close\r\n\r\n"),
    )
}

#[test]
fn every_answer_carries_its_own_request_id_which_the_access_log_records() {
    let (server, _config) = start("middleware = [\"request-id\"]\n");
    let answers = [
        server.get("/static/test.html"),
        server.get("/nope"),
        server.get("/plaintext"),
        // 413: refused by the engine after the head, still inside the chain.
        request(
            &server,
            "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 99999999\r\n\r\n",
        ),
    ];
    let statuses: Vec<u16> = answers.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [200, 404, 200, 413]);
    let ids: Vec<&str> = answers
        .iter()
        .map(|r| r.header("X-Request-Id").expect("every answer has an id"))
        .collect();
    assert_eq!(
        ids.iter().collect::<HashSet<_>>().len(),
        ids.len(),
        "{ids:?}"
    );
    for id in &ids {
        assert!(
            server.wait_for_log(&format!("\"{id}\"\n"), LOG_WAIT),
            "access log line ending with {id}:\n{}",
            server.stderr()
        );
    }
    let kept = get_with(&server, "/plaintext", "X-Request-Id: from-the-proxy-1\r\n");
    assert_eq!(kept.header("X-Request-Id"), Some("from-the-proxy-1"));
}

#[test]
fn a_filter_can_answer_itself_and_only_the_filters_before_it_see_the_answer() {
    let toml = "middleware = [\"headers\", \"probe-filter\"]\n\
                [plugins.headers.set]\nX-Order = \"headers\"\n";
    let (server, _config) = start(toml);
    let answered = server.get("/probe/answer");
    assert_eq!(
        (answered.status, answered.body_str().as_str()),
        (403, "probe says no")
    );
    assert_eq!(
        answered.headers_named("X-Order"),
        ["headers"],
        "headers ran on the way out"
    );

    let toml = "middleware = [\"probe-filter\", \"headers\"]\n\
                [plugins.headers.set]\nX-Order = \"headers\"\n";
    let (server, _config) = start(toml);
    let answered = server.get("/probe/answer");
    assert_eq!(answered.status, 403);
    assert_eq!(
        answered.headers_named("X-Order"),
        ["probe"],
        "the probe sees its own answer; headers, after it, never saw the request"
    );
}

#[test]
fn filters_run_in_order_on_the_way_in_and_in_reverse_on_the_way_out() {
    // In: headers, probe. Out: probe appends `X-Order: probe`, then headers replaces every X-Order.
    let toml = "middleware = [\"headers\", \"probe-filter\"]\n\
                [plugins.headers.set]\nX-Order = \"headers\"\n";
    let (server, _config) = start(toml);
    assert_eq!(
        server.get("/plaintext").headers_named("X-Order"),
        ["headers"]
    );
    // In: probe, headers. Out: headers sets `X-Order: headers`, then probe appends its own.
    let toml = "middleware = [\"probe-filter\", \"headers\"]\n\
                [plugins.headers.set]\nX-Order = \"headers\"\n";
    let (server, _config) = start(toml);
    let response = server.get("/plaintext");
    assert_eq!(response.headers_named("X-Order"), ["headers", "probe"]);
    assert_eq!(
        response.header("X-Probe-Context"),
        Some("GET"),
        "request hook -> response hook"
    );
}

#[test]
fn filters_rewrite_the_fields_of_static_files_and_builtin_answers() {
    let toml = "middleware = [\"probe-filter\", \"headers\"]\n\
                [plugins.probe-filter]\nremove = [\"ETag\"]\n\
                [plugins.headers.set]\nX-Frame-Options = \"DENY\"\n\
                X-Content-Type-Options = \"nosniff; rewritten\"\n";
    let (server, _config) = start(toml);
    let file = server.get("/static/test.html");
    assert_eq!(file.status, 200);
    assert_eq!(file.header("ETag"), None, "removed by the probe");
    assert!(file.header("Last-Modified").is_some(), "the others stay");
    assert_eq!(file.header("X-Frame-Options"), Some("DENY"), "added");
    assert_eq!(
        file.headers_named("X-Content-Type-Options"),
        ["nosniff; rewritten"],
        "replaced, not doubled"
    );
    assert_eq!(
        file.body_str(),
        fs::read_to_string(static_file("test.html")).unwrap()
    );
    let missing = server.get("/nope");
    assert_eq!(
        (missing.status, missing.header("X-Frame-Options")),
        (404, Some("DENY"))
    );
    let wrong_method = request(
        &server,
        "DELETE /plaintext HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(
        (wrong_method.status, wrong_method.header("X-Order")),
        (405, Some("probe"))
    );
}

fn static_file(name: &str) -> PathBuf {
    plugd_tests::repo_static_dir().join(name)
}

#[test]
fn a_panicking_filter_fails_only_its_request() {
    let (server, _config) = start("middleware = [\"request-id\", \"probe-filter\"]\n");
    for path in ["/probe/panic-request", "/probe/panic-response"] {
        let failed = server.get(path);
        assert_eq!(failed.status, 500, "{path}");
        assert!(
            failed.header("X-Request-Id").is_some(),
            "the filters before it still ran"
        );
        assert!(
            !failed.body_str().contains("exploded"),
            "the message stays in the log"
        );
    }
    assert!(server.wait_for_log("filter probe-filter failed in its request hook", LOG_WAIT));
    assert!(server.wait_for_log("probe-filter exploded on the way out", LOG_WAIT));
    for _ in 0..3 {
        assert_eq!(server.get("/plaintext").status, 200);
    }
}

#[test]
fn a_filter_limited_to_path_prefixes_sees_only_them() {
    let toml =
        "middleware = [\"request-id\"]\n[plugins.request-id]\nfilter_paths = [\"/static\"]\n";
    let (server, _config) = start(toml);
    assert!(
        server
            .get("/static/test.html")
            .header("X-Request-Id")
            .is_some()
    );
    assert_eq!(server.get("/plaintext").header("X-Request-Id"), None);
}

#[test]
fn an_unknown_name_in_the_chain_stops_plugd_with_one_line() {
    let plugins = plugin_dir_with(&example_plugins());
    let dir = plugins.path().to_str().unwrap();
    for (name, reason) in [
        (
            "nope",
            "middleware `nope`: no loaded plugin is named `nope` (loaded filters: ",
        ),
        ("hello", "middleware `hello`: plugin hello from "),
    ] {
        let out = run_plugd(
            &["--port", "0", "--plugin-dir", dir, "--middleware", name],
            &[("RUST_LOG", "error")],
            Duration::from_secs(20),
        );
        assert_eq!(out.status.code(), Some(2), "{out:?}");
        let lines: Vec<&str> = out.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "one line: {:?}", out.stderr);
        assert!(lines[0].contains(reason), "{}", lines[0]);
    }
}

#[test]
fn bearer_auth_lets_good_tokens_through_and_answers_401_otherwise() {
    let toml = "middleware = [\"bearer-auth\"]\n\
                [plugins.bearer-auth]\ntokens = [\"t0ken-a\", \"t0ken-b\"]\npaths = [\"/plaintext\"]\n";
    let (server, _config) = start(toml);
    let good = get_with(&server, "/plaintext", "Authorization: Bearer t0ken-b\r\n");
    assert_eq!(
        (good.status, good.body_str().as_str()),
        (200, "Hello, World!")
    );
    let bad = get_with(&server, "/plaintext", "Authorization: Bearer t0ken-c\r\n");
    assert_eq!(bad.status, 401);
    assert_eq!(
        bad.header("WWW-Authenticate"),
        Some("Bearer realm=\"plugd\", error=\"invalid_token\"")
    );
    let missing = server.get("/plaintext");
    assert_eq!(
        (missing.status, missing.header("WWW-Authenticate")),
        (401, Some("Bearer realm=\"plugd\""))
    );
    assert_eq!(
        server.get("/static/test.html").status,
        200,
        "not a protected prefix"
    );
}

#[test]
fn cors_preflights_from_configured_origins_are_answered() {
    let toml = "middleware = [\"headers\"]\n\
                [plugins.headers]\ncors_origins = [\"https://app.example\"]\ncors_methods = \"GET, PUT\"\n";
    let (server, _config) = start(toml);
    let preflight = request(
        &server,
        "OPTIONS /plaintext HTTP/1.1\r\nHost: t\r\nOrigin: https://app.example\r\n\
         Access-Control-Request-Method: PUT\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(preflight.status, 204);
    assert_eq!(
        preflight.header("Access-Control-Allow-Origin"),
        Some("https://app.example")
    );
    assert_eq!(
        preflight.header("Access-Control-Allow-Methods"),
        Some("GET, PUT")
    );
    let stranger = request(
        &server,
        "OPTIONS /plaintext HTTP/1.1\r\nHost: t\r\nOrigin: https://evil.example\r\n\
         Access-Control-Request-Method: PUT\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(stranger.status, 405, "left to the router");
    assert_eq!(stranger.header("Access-Control-Allow-Origin"), None);
    let simple = get_with(&server, "/plaintext", "Origin: https://app.example\r\n");
    assert_eq!(
        simple.header("Access-Control-Allow-Origin"),
        Some("https://app.example")
    );
}

#[test]
fn a_filter_built_against_plugin_api_0_1_2_keeps_working_in_the_chain() {
    // In: legacy, headers. Out: headers (its fixed fields), then legacy (`filter.v1`: edits returned).
    let toml = "middleware = [\"legacy-filter\", \"headers\"]\n\
                [plugins.headers.set]\nX-Order = \"headers\"\nX-Remove-Me = \"x\"\n";
    let (server, _config) = start(toml);
    assert!(
        server.wait_for_log("plugin loaded: legacy-filter 0.1.0 from ", LOG_WAIT),
        "{}",
        server.stderr()
    );
    let response = server.get("/plaintext");
    assert_eq!(response.body_str(), "Hello, World!");
    assert_eq!(response.headers_named("X-Order"), ["headers", "legacy"]);
    assert_eq!(
        response.header("X-Legacy"),
        Some("GET"),
        "request hook -> response hook"
    );
    assert_eq!(
        response.header("X-Remove-Me"),
        None,
        "removed by the legacy filter"
    );

    let answered = server.get("/legacy-filter/answer");
    assert_eq!(
        (answered.status, answered.body_str().as_str()),
        (403, "legacy says no")
    );
    assert_eq!(
        answered.headers_named("X-Order"),
        ["legacy"],
        "headers, after it, never saw the request"
    );

    assert_eq!(server.get("/legacy-filter/panic").status, 500);
    assert!(server.wait_for_log("legacy-filter exploded on the way out", LOG_WAIT));
    assert_eq!(server.get("/plaintext").status, 200);
}
