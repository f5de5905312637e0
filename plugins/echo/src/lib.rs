//! Example plugin `echo`: sends request bodies back, one function per route.
//!
//! * `POST /echo` answers the body unchanged, with the request's `Content-Type`
//!   (`application/octet-stream` when it had none).
//! * `POST /submit` does the same, except for an `application/x-www-form-urlencoded` body (an HTML form, or
//!   `curl -d name=test`): then it answers `text/plain` with one decoded `name=value` line per field, in the
//!   order sent, so `curl -X POST localhost:8080/submit -d name=test` prints `name=test`. A form that is not
//!   valid percent-encoded UTF-8 is answered 400 (plugd's own decoder, through `Request::form`).

use plugin_api::{Error, Request, Response};

/// Stateless.
pub struct Echo;

impl Echo {
    fn echo(&self, req: &Request<'_>) -> Response {
        let content_type = req
            .header_str("Content-Type")
            .unwrap_or("application/octet-stream");
        Response::ok_with_type(content_type.to_owned(), req.body().to_vec())
    }

    fn submit(&self, req: &Request<'_>) -> Result<Response, Error> {
        let form = match req.form() {
            // 415: not a form, so it is echoed like any body.
            Err(not_a_form) if not_a_form.status() == 415 => return Ok(self.echo(req)),
            form => form?,
        };
        let lines: String = form
            .iter()
            .map(|(name, value)| format!("{name}={value}\n"))
            .collect();
        Ok(Response::text(lines))
    }
}

plugin_api::export_plugin! {
    name: "echo",
    version: env!("CARGO_PKG_VERSION"),
    routes: [
        ("POST", "/echo", Echo::echo),
        ("POST", "/submit", Echo::submit),
    ],
    init: |_config| Ok(Echo),
}

#[cfg(test)]
mod tests {
    use plugin_api::testing::{TestPlugin, TestRequest};

    fn echo() -> TestPlugin {
        TestPlugin::start(super::plugd_plugin).expect("echo starts")
    }

    #[test]
    fn echo_returns_body_and_content_type() {
        let response = echo().call(
            TestRequest::post("/echo")
                .header("content-type", "application/json")
                .body(r#"{"a":1}"#),
        );
        assert_eq!(response.status(), 200);
        assert_eq!(response.header("Content-Type"), Some("application/json"));
        assert_eq!(response.body(), br#"{"a":1}"#);
    }

    #[test]
    fn a_body_without_content_type_is_octet_stream() {
        let response = echo().call(TestRequest::post("/echo").body([0, 159, 146, 150]));
        assert_eq!(
            response.header("content-type"),
            Some("application/octet-stream")
        );
        assert_eq!(response.body(), [0, 159, 146, 150]);
    }

    #[test]
    fn submit_decodes_form_fields_one_per_line() {
        let response = echo()
            .call(TestRequest::post("/submit").form("name=test&greeting=hello+w%C3%B6rld&flag"));
        assert_eq!(
            response.header("content-type"),
            Some("text/plain; charset=utf-8")
        );
        assert_eq!(
            response.body_str(),
            Some("name=test\ngreeting=hello wörld\nflag=\n")
        );
    }

    #[test]
    fn a_malformed_form_is_a_400_naming_the_problem() {
        let response = echo().call(TestRequest::post("/submit").form("name=test&x=%zz"));
        assert_eq!(response.status(), 400);
        assert!(
            response
                .body_str()
                .unwrap()
                .contains("not valid percent-encoded"),
            "{:?}",
            response.body_str()
        );
    }

    #[test]
    fn submit_echoes_other_bodies() {
        let response = echo().call(
            TestRequest::post("/submit")
                .header("Content-Type", "text/plain")
                .body("name=test"),
        );
        assert_eq!(response.body_str(), Some("name=test"));
        assert_eq!(response.header("content-type"), Some("text/plain"));
    }

    #[test]
    fn only_post_is_served() {
        assert_eq!(echo().call(TestRequest::get("/echo")).status(), 405);
    }
}
