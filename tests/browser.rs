//! A real browser against the real binary: headless Chromium (Debian's `chromium`, driven over the DevTools
//! protocol by `headless_chrome`) opens the hello plugin's page and `/static/test.html` in 8 tabs at once.
//! Every tab must render completely, checked from inside the page: the stylesheet applied (computed
//! background colour), the script ran (`#out` set by `static/app.js`), the image loaded (`naturalWidth`).
//! A screenshot of each tab is saved under `target/test-artifacts/browser/`. The admin listener's page is
//! opened too: it must list the plugins with their versions, routes and counters, and refresh itself
//! (screenshot: `target/test-artifacts/admin/admin.png`). A page also subscribes to the stream plugin's
//! server-sent events through `EventSource`.
//!
//! Chromium missing is a failure, not a skip: CI installs it (`.ci/run`), and a test that silently skips
//! proves nothing.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use headless_chrome::protocol::cdp::Page::CaptureScreenshotFormatOption;
use headless_chrome::{Browser, LaunchOptions, Tab};
use plugd_tests::Server;

/// Where Debian's `chromium` package puts the browser.
const CHROMIUM: &str = "/usr/bin/chromium";
/// Tabs per page: 4 of the hello page and 4 of the static test page, 8 loading at once.
const TABS_PER_PAGE: usize = 4;
/// The colour `static/style.css` gives the body.
const BACKGROUND: &str = "rgb(0, 128, 0)";

/// `target/test-artifacts/browser/`, beside the profile folder this test binary was built into.
fn artifacts_dir() -> PathBuf {
    artifacts_dir_named("browser")
}

/// `target/test-artifacts/NAME/`.
fn artifacts_dir_named(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    // <target>/<profile>/deps/<test binary>
    let target = exe
        .ancestors()
        .nth(3)
        .expect("test binary lives in <target>/<profile>/deps");
    let dir = target.join("test-artifacts").join(name);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    dir
}

fn launch() -> Browser {
    assert!(
        Path::new(CHROMIUM).is_file(),
        "{CHROMIUM} is missing: install Debian's chromium (`apt-get install chromium chromium-driver`, \
         as .ci/run does) to run the browser test"
    );
    let args = [
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ];
    let options = LaunchOptions::default_builder()
        .path(Some(CHROMIUM.into()))
        .headless(true)
        // Tests run as root in CI, where Chromium's sandbox cannot start.
        .sandbox(false)
        .window_size(Some((1024, 768)))
        .idle_browser_timeout(Duration::from_secs(60))
        .args(args.iter().map(OsStr::new).collect())
        .build()
        .expect("chromium launch options");
    Browser::new(options).unwrap_or_else(|e| panic!("start {CHROMIUM}: {e:#}"))
}

/// A JS expression's value as a string (`returnByValue`).
fn eval_string(tab: &Tab, expression: &str) -> String {
    let result = tab
        .evaluate(expression, false)
        .unwrap_or_else(|e| panic!("evaluate {expression}: {e:#}"));
    match result.value {
        Some(serde_json::Value::String(s)) => s,
        Some(other) => other.to_string(),
        None => panic!("{expression} has no value: {result:?}"),
    }
}

/// Waits (bounded) until the page's load event has fired, so images and scripts are done.
fn wait_loaded(tab: &Tab, url: &str) {
    tab.wait_until_navigated()
        .unwrap_or_else(|e| panic!("{url}: navigation: {e:#}"));
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while eval_string(tab, "document.readyState") != "complete" {
        assert!(
            std::time::Instant::now() < deadline,
            "{url}: document never completed loading"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn eight_tabs_render_both_pages_completely() {
    let server = Server::start_with_examples(&[]);
    let browser = launch();
    let pages = [
        ("hello", server.url("/")),
        ("static-test", server.url("/static/test.html")),
    ];
    // Every navigation starts before any is awaited, so all 8 pages load at once.
    let tabs: Vec<(String, &str, std::sync::Arc<Tab>)> = (0..TABS_PER_PAGE)
        .flat_map(|i| {
            pages
                .iter()
                .map(move |(name, url)| (format!("{name}-{i}"), url))
        })
        .map(|(label, url)| {
            let tab = browser.new_tab().expect("new tab");
            tab.navigate_to(url)
                .unwrap_or_else(|e| panic!("navigate to {url}: {e:#}"));
            (label, url.as_str(), tab)
        })
        .collect();
    assert_eq!(tabs.len(), 2 * TABS_PER_PAGE);

    let artifacts = artifacts_dir();
    for (label, url, tab) in &tabs {
        wait_loaded(tab, url);
        let out = tab
            .wait_for_element("#out")
            .and_then(|element| element.get_inner_text())
            .unwrap_or_else(|e| panic!("{label} ({url}): #out: {e:#}"));
        assert!(
            out.starts_with("JS-RAN"),
            "{label} ({url}): script did not run, #out is {out:?}"
        );
        assert_eq!(
            eval_string(tab, "getComputedStyle(document.body).backgroundColor"),
            BACKGROUND,
            "{label} ({url}): stylesheet not applied"
        );
        let images = eval_string(
            tab,
            "JSON.stringify(Array.from(document.images).map(i => [i.complete, i.naturalWidth]))",
        );
        let images: Vec<(bool, u64)> = serde_json::from_str(&images).expect("image list");
        assert!(!images.is_empty(), "{label} ({url}): no image on the page");
        assert!(
            images
                .iter()
                .all(|&(complete, width)| complete && width > 0),
            "{label} ({url}): an image did not load: {images:?}"
        );

        // A background tab is never painted, and capturing it would hang: bring each to the front first.
        tab.bring_to_front()
            .unwrap_or_else(|e| panic!("{label}: bring to front: {e:#}"));
        let png = tab
            .capture_screenshot(CaptureScreenshotFormatOption::Png, None, None, true)
            .unwrap_or_else(|e| panic!("{label}: screenshot: {e:#}"));
        assert!(
            png.starts_with(b"\x89PNG"),
            "{label}: screenshot is not a PNG"
        );
        let path = artifacts.join(format!("{label}.png"));
        std::fs::write(&path, &png).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }

    // Every page and every asset went through plugd: the access log shows them.
    for target in [
        "/static/test.html",
        "/static/style.css",
        "/static/app.js",
        "/static/logo.png",
    ] {
        assert!(
            server.stderr().contains(target),
            "the access log never shows {target}"
        );
    }
}

#[test]
fn the_admin_page_lists_plugins_with_their_counters_and_refreshes_itself() {
    let server = Server::start_with_examples(&["--admin", "127.0.0.1:0"]);
    for _ in 0..7 {
        assert_eq!(server.get("/plaintext").status, 200);
    }
    let url = format!("http://{}/", server.admin_addr());
    let browser = launch();
    let tab = browser.new_tab().expect("new tab");
    tab.navigate_to(&url)
        .unwrap_or_else(|e| panic!("navigate to {url}: {e:#}"));
    wait_loaded(&tab, &url);
    // The page fetches /plugins by itself, at once and then every 2 s: wait for its second refresh.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while eval_string(&tab, "Number(document.body.dataset.refreshed || 0)")
        .parse::<u32>()
        .unwrap_or(0)
        < 2
    {
        assert!(
            std::time::Instant::now() < deadline,
            "{url}: the page never refreshed twice"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let rows = eval_string(
        &tab,
        "JSON.stringify(Array.from(document.querySelectorAll('tr.plugin')).map(r => \
         [r.dataset.name, r.cells[1].textContent, r.cells[2].textContent, r.cells[3].textContent, \
          r.querySelector('.requests').textContent]))",
    );
    let rows: Vec<(String, String, String, String, String)> =
        serde_json::from_str(&rows).expect("plugin rows");
    let names: Vec<&str> = rows.iter().map(|row| row.0.as_str()).collect();
    for name in ["counter", "echo", "hello"] {
        assert!(names.contains(&name), "{name} is not listed: {rows:?}");
    }
    let hello = rows
        .iter()
        .find(|row| row.0 == "hello")
        .expect("hello's row");
    assert_eq!((hello.1.as_str(), hello.2.as_str()), ("0.1.0", "serving"));
    assert!(hello.3.contains("GET /plaintext"), "{hello:?}");
    assert_eq!(hello.4, "7", "hello's requests as the page shows them");
    assert_eq!(
        eval_string(&tab, "document.getElementById('health').textContent"),
        "serving"
    );

    let png = tab
        .capture_screenshot(CaptureScreenshotFormatOption::Png, None, None, true)
        .unwrap_or_else(|e| panic!("admin page: screenshot: {e:#}"));
    assert!(png.starts_with(b"\x89PNG"), "the screenshot is not a PNG");
    let path = artifacts_dir_named("admin").join("admin.png");
    std::fs::write(&path, &png).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

#[test]
fn a_page_receives_server_sent_events_through_event_source() {
    let server = Server::start_with_examples(&[]);
    let browser = launch();
    let tab = browser.new_tab().expect("new tab");
    let url = server.url("/static/test.html");
    tab.navigate_to(&url)
        .unwrap_or_else(|e| panic!("navigate to {url}: {e:#}"));
    wait_loaded(&tab, &url);
    // The feed ends after 3 events; EventSource would reconnect, so the page closes it once it has them.
    eval_string(
        &tab,
        "window.events = []; \
         const source = new EventSource('/events?every_ms=50&count=3'); \
         source.onmessage = (e) => { window.events.push(e.data); \
             if (window.events.length === 3) source.close(); }; 'subscribed'",
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let events = eval_string(&tab, "window.events.join(',')");
        if events == "1,2,3" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the page received {events:?}, not the 3 events"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The access log is written in batches, at least once a second.
    assert!(
        server.wait_for_log("GET /events?every_ms=50&count=3", Duration::from_secs(10)),
        "no access-log line for the feed"
    );
}
