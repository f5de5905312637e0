//! Example plugin `hello`: a static page, a configurable greeting with a path parameter, and the plaintext
//! benchmark route, one function per route.
//!
//! Configuration (`[plugins.hello]` in plugd's configuration file): `greeting`, the word `GET /hello/{name}`
//! greets with (default `Hello`).

use plugin_api::{log, Config, InitError, Request, Response};

/// The home page. It links `/static/style.css`, `/static/app.js` (which fills in `<p id="out">`) and
/// `/static/logo.png`, all served by plugd's static files. Compiled in, so answering costs no copy.
const INDEX_HTML: &str = include_str!("index.html");

/// The plaintext benchmark answer (TechEmpower's "plaintext" test).
const PLAINTEXT: &str = "Hello, World!";

/// The greeting when the configuration sets none.
const DEFAULT_GREETING: &str = "Hello";

/// Read-only after `init`: every route is a function of the request and the greeting.
pub struct Hello {
    greeting: String,
}

impl Hello {
    fn new(config: &Config<'_>) -> Result<Hello, InitError> {
        Ok(Hello {
            greeting: config.parse_or("greeting", DEFAULT_GREETING.to_owned())?,
        })
    }

    fn home(&self, _req: &Request<'_>) -> Response {
        Response::html(INDEX_HTML)
    }

    fn greet(&self, req: &Request<'_>) -> Response {
        let name = req.param("name").unwrap_or_default();
        log::info!("greeted {name}");
        // text/plain, so a name full of markup is shown, never interpreted.
        Response::text(format!("{}, {name}!", self.greeting))
    }

    /// The benchmark route: a static body, no allocation in the plugin.
    fn plaintext(&self, _req: &Request<'_>) -> Response {
        Response::text(PLAINTEXT)
    }
}

plugin_api::export_plugin! {
    name: "hello",
    version: env!("CARGO_PKG_VERSION"),
    routes: [
        ("GET", "/", Hello::home),
        ("GET", "/hello/{name}", Hello::greet),
        ("GET", "/plaintext", Hello::plaintext),
    ],
    init: Hello::new,
}

#[cfg(test)]
mod tests {
    use plugin_api::testing::{TestPlugin, TestRequest};

    fn hello() -> TestPlugin {
        TestPlugin::start(super::plugd_plugin).expect("hello starts")
    }

    #[test]
    fn home_page_links_the_static_assets() {
        let response = hello().call(TestRequest::get("/"));
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.header("Content-Type"),
            Some("text/html; charset=utf-8")
        );
        let page = response.body_str().unwrap();
        for asset in [
            "/static/style.css",
            "/static/app.js",
            "/static/logo.png",
            "id=\"out\"",
        ] {
            assert!(page.contains(asset), "page lacks {asset}");
        }
    }

    #[test]
    fn greets_by_decoded_name() {
        let response = hello().call(TestRequest::get("/hello/J%C3%BCrgen%20B"));
        assert_eq!(response.body_str(), Some("Hello, Jürgen B!"));
        assert!(response
            .header("content-type")
            .unwrap()
            .starts_with("text/plain"));
    }

    #[test]
    fn the_greeting_comes_from_the_configuration() {
        let hello = TestPlugin::start_with_config(super::plugd_plugin, &[("greeting", "Howdy")])
            .expect("hello starts");
        let response = hello.call(TestRequest::get("/hello/Ann"));
        assert_eq!(response.body_str(), Some("Howdy, Ann!"));
    }

    #[test]
    fn a_malformed_name_is_a_400_before_the_plugin_runs() {
        assert_eq!(hello().call(TestRequest::get("/hello/%+1")).status(), 400);
        assert_eq!(hello().call(TestRequest::get("/hello/%FF")).status(), 400);
    }

    #[test]
    fn plaintext_is_exactly_hello_world() {
        let response = hello().call(TestRequest::get("/plaintext"));
        assert_eq!(response.status(), 200);
        assert_eq!(response.body(), b"Hello, World!");
        assert!(response
            .header("content-type")
            .unwrap()
            .starts_with("text/plain"));
    }

    #[test]
    fn only_get_is_served() {
        let response = hello().call(TestRequest::post("/plaintext"));
        assert_eq!(response.status(), 405);
        assert_eq!(response.header("Allow"), Some("GET, HEAD"));
    }
}
