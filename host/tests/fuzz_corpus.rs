//! Replays the fuzz corpus (`fuzz/corpus/<target>/`, local and git-ignored) and the committed seeds and
//! crash regressions (`fuzz/regressions/<target>/`) through the fuzz targets' checks, in plain `cargo test`.

#[path = "../../fuzz/checks.rs"]
mod checks;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

fn replay(target: &str, check: fn(&[u8])) {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut replayed = 0;
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(fuzz.join(dir).join(target)) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("readable corpus folder").path();
            let data = std::fs::read(&path).expect("readable corpus file");
            let outcome = catch_unwind(AssertUnwindSafe(|| check(&data)));
            assert!(outcome.is_ok(), "fuzz input failed: {}", path.display());
            replayed += 1;
        }
    }
    assert!(replayed > 0, "no corpus files for {target}");
}

#[test]
fn request_head_corpus() {
    replay("request_head", checks::request_head);
}

#[test]
fn chunked_corpus() {
    replay("chunked", checks::chunked);
}

#[test]
fn router_corpus() {
    replay("router", checks::router);
}

#[test]
fn static_path_corpus() {
    replay("static_path", checks::static_path);
    checks::remove_static_fixture();
}
