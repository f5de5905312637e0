//! File bodies (plugin-api 0.1.3, `file.v1`): plugd asks every plugin whether a streamed body is a file it
//! can send with `sendfile`. A plugin built before the capability keeps streaming: `legacy_stream`, built
//! against plugin-api 0.1.2 exactly as released. (File bodies themselves are served end to end by the WSGI
//! plugin's `wsgi.file_wrapper`, in tests/wsgi.rs, and by the SDK's doc test of `FileBody`.)

use std::path::PathBuf;
use std::time::Duration;

use plugd_tests::{Conn, Server, example_plugin, plugin_dir_with};

#[path = "fixtures/builder.rs"]
mod fixtures;

/// How long the plugin's load line may take to appear.
const LOG_WAIT: Duration = Duration::from_secs(10);

/// The target folder the example plugins were built into (the fixtures build there too).
fn target_dir() -> PathBuf {
    let profile_dir = example_plugin("hello").parent().unwrap().to_owned();
    profile_dir.parent().unwrap().to_owned()
}

#[test]
fn a_plugin_built_against_plugin_api_0_1_2_streams_as_before() {
    let library = fixtures::build_fixture("legacy_stream", &target_dir());
    let dir = plugin_dir_with(&[library]);
    let dir_arg = dir.path().to_str().unwrap().to_owned();
    let args = ["--plugin-dir", dir_arg.as_str()];
    let server = Server::try_start(&args, &[], vec![dir]).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        server.wait_for_log("plugin loaded: legacy_stream 0.1.0", LOG_WAIT),
        "{}",
        server.stderr()
    );
    let mut conn = Conn::open(server.addr());
    conn.send(b"GET /legacy-stream/3 HTTP/1.1\r\nHost: test\r\n\r\n");
    let response = conn.read_response().unwrap();
    assert_eq!(response.status, 200, "{}", server.stderr());
    assert_eq!(response.header("Transfer-Encoding"), Some("chunked"));
    assert_eq!(response.body_str(), "line 1\nline 2\nline 3\n");
    assert!(
        !server.stderr().contains("file.v1"),
        "no complaint about the missing capability: {}",
        server.stderr()
    );
}
