//! Raw-TCP tests of the HTTP/1.1 engine (issue 2) against the real `plugd` binary.

use plugd_tests::*;

#[test]
fn binary_builds_and_help_exits_zero() {
    let out = run_plugd(&["--help"], &[], std::time::Duration::from_secs(10));
    assert!(
        out.status.success(),
        "--help: {}\n{}",
        out.status,
        out.stderr
    );
    assert!(out.stdout.contains("--port"), "{}", out.stdout);
}
