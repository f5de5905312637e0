//! Example plugin `hello`: a static page, a greeting with a path parameter, and the plaintext benchmark route.

use plugin_api::{Handler, Request, Response};

/// The home page. It links `/static/style.css`, `/static/app.js` (which fills in `<p id="out">`) and
/// `/static/logo.png`, all served by plugd's static files. Compiled in, so answering costs no copy.
const INDEX_HTML: &str = include_str!("index.html");

/// The plaintext benchmark answer (TechEmpower's "plaintext" test).
const PLAINTEXT: &str = "Hello, World!";

/// Stateless: every route is a pure function of the request.
pub struct Hello;

impl Handler for Hello {
    fn handle(&self, req: &Request<'_>) -> Response {
        if let Some(name) = req.param("name") {
            // text/plain, so a name full of markup is shown, never interpreted.
            return Response::text(format!("Hello, {name}!"));
        }
        match req.path() {
            "/plaintext" => Response::text(PLAINTEXT),
            _ => Response::html(INDEX_HTML),
        }
    }
}

plugin_api::export_plugin! {
    name: "hello",
    version: env!("CARGO_PKG_VERSION"),
    routes: [
        ("GET", "/"),
        ("GET", "/hello/{name}"),
        ("GET", "/plaintext"),
    ],
    init: |_config| Ok(Hello),
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
        assert_eq!(hello().call(TestRequest::post("/plaintext")).status(), 405);
    }
}
