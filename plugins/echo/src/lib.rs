//! Example plugin `echo`: sends request bodies back.
//!
//! * `POST /echo` answers the body unchanged, with the request's `Content-Type`
//!   (`application/octet-stream` when it had none).
//! * `POST /submit` does the same, except for an `application/x-www-form-urlencoded` body (an HTML form, or
//!   `curl -d name=test`): then it answers `text/plain` with one decoded `name=value` line per field, in the
//!   order sent, so `curl -X POST localhost:8080/submit -d name=test` prints `name=test`.

use plugin_api::{Handler, Request, Response};

const FORM: &str = "application/x-www-form-urlencoded";

/// Stateless.
pub struct Echo;

impl Handler for Echo {
    fn handle(&self, req: &Request<'_>) -> Response {
        let content_type = req
            .header_str("Content-Type")
            .unwrap_or("application/octet-stream");
        if req.path() == "/submit" && media_type(content_type).eq_ignore_ascii_case(FORM) {
            return Response::text(form_lines(req.body()));
        }
        Response::ok_with_type(content_type.to_owned(), req.body().to_vec())
    }
}

/// The media type without parameters: `application/x-www-form-urlencoded; charset=utf-8` -> the part before `;`.
fn media_type(content_type: &str) -> &str {
    content_type.split(';').next().unwrap_or("").trim()
}

/// One `name=value` line per field, decoded as the URL Standard's `application/x-www-form-urlencoded` parser does
/// (`+` is a space, `%XX` a byte; a bad escape stays as written, invalid UTF-8 becomes U+FFFD).
fn form_lines(body: &[u8]) -> String {
    body.split(|&b| b == b'&')
        .filter(|field| !field.is_empty())
        .map(|field| {
            let mut parts = field.splitn(2, |&b| b == b'=');
            let name = decode_form(parts.next().unwrap_or_default());
            let value = decode_form(parts.next().unwrap_or_default());
            format!("{name}={value}\n")
        })
        .collect()
}

fn decode_form(raw: &[u8]) -> String {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let escaped = raw
            .get(i + 1..i + 3)
            .filter(|_| raw[i] == b'%')
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match (raw[i], escaped) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

plugin_api::export_plugin! {
    name: "echo",
    version: env!("CARGO_PKG_VERSION"),
    routes: [
        ("POST", "/echo"),
        ("POST", "/submit"),
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
        let response = echo().call(
            TestRequest::post("/submit").form("name=test&greeting=hello+w%C3%B6rld&x=%zz&flag"),
        );
        assert_eq!(
            response.header("content-type"),
            Some("text/plain; charset=utf-8")
        );
        assert_eq!(
            response.body_str(),
            Some("name=test\ngreeting=hello wörld\nx=%zz\nflag=\n")
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
