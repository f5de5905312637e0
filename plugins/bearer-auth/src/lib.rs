//! Example filter `bearer-auth`: requests under the protected path prefixes must carry
//! `Authorization: Bearer TOKEN` with one of the configured tokens (RFC 6750 §2.1); any other gets
//! `401 Unauthorized` with `WWW-Authenticate: Bearer` (RFC 6750 §3), before any route runs.
//!
//! Configuration (`[plugins.bearer-auth]`):
//! - `tokens`: the accepted tokens (without any, nobody gets in: it fails closed, with a warning at start);
//! - `paths`: the protected path prefixes (default `["/"]`: everything the chain sends through it);
//! - `realm`: the realm named in the challenge (default `plugd`).
//!
//! Tokens are compared in constant time: the time an answer takes says nothing about how much of a guess was
//! right (every configured token is compared in full, whatever matches).

use plugin_api::filter::{Filter, FilterContext, Hooks};
use plugin_api::{log, Config, InitError, Request, Response};

/// Checks bearer tokens on the protected prefixes.
pub struct BearerAuth {
    tokens: Vec<String>,
    paths: Vec<String>,
    /// `Bearer realm="..."`, built once.
    challenge: String,
}

impl BearerAuth {
    fn new(config: &Config<'_>) -> Result<BearerAuth, InitError> {
        let tokens: Vec<String> = config.list("tokens")?;
        if tokens.iter().any(String::is_empty) {
            return Err("plugin bearer-auth: config key `tokens`: a token cannot be empty".into());
        }
        if tokens.is_empty() {
            log::warn!(
                "no `tokens` configured: every request under {:?} gets 401",
                config.list::<String>("paths")?
            );
        }
        let mut paths: Vec<String> = config.list("paths")?;
        if paths.is_empty() {
            paths.push("/".to_owned());
        }
        let realm: String = config.parse_or("realm", "plugd".to_owned())?;
        if realm.contains(['"', '\\']) || realm.chars().any(char::is_control) {
            return Err("plugin bearer-auth: config key `realm` cannot hold quotes, backslashes or controls".into());
        }
        Ok(BearerAuth {
            tokens,
            paths,
            challenge: format!("Bearer realm=\"{realm}\""),
        })
    }

    fn protects(&self, path: &str) -> bool {
        self.paths
            .iter()
            .any(|prefix| path.starts_with(prefix.as_str()))
    }

    /// Whether `given` is one of the tokens, comparing each in full.
    fn accepts(&self, given: &[u8]) -> bool {
        self.tokens.iter().fold(false, |found, token| {
            found | constant_time_eq(given, token.as_bytes())
        })
    }

    fn unauthorized(&self, error: Option<&str>) -> Response {
        let challenge = match error {
            None => self.challenge.clone(),
            Some(error) => format!("{}, error=\"{error}\"", self.challenge),
        };
        Response::text("Unauthorized\n")
            .with_status(401)
            .with_header("WWW-Authenticate", challenge)
    }
}

/// Equal bytes, in a time that depends only on the lengths: every byte is looked at, no early exit.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let len = a.len().max(b.len());
    let mut diff = u8::from(a.len() != b.len());
    for i in 0..len {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= std::hint::black_box(x ^ y);
    }
    diff == 0
}

/// The token of an `Authorization: Bearer TOKEN` value (the scheme is case-insensitive, RFC 9110 §11.1).
fn bearer_token(value: &[u8]) -> Option<&[u8]> {
    let (scheme, token) = value.split_at_checked(7)?;
    (scheme.eq_ignore_ascii_case(b"bearer ")).then(|| token.trim_ascii())
}

impl Filter for BearerAuth {
    /// Only requests are checked: plugd never calls it for responses.
    fn hooks(&self) -> Hooks {
        Hooks::REQUEST
    }

    fn on_request(&self, req: &Request<'_>, _context: &mut FilterContext<'_>) -> Option<Response> {
        if !self.protects(req.path()) {
            return None;
        }
        match req.header("Authorization").map(bearer_token) {
            // RFC 6750 §3.1: no credentials, no error code.
            None | Some(None) => Some(self.unauthorized(None)),
            Some(Some(token)) if self.accepts(token) => None,
            Some(Some(_)) => Some(self.unauthorized(Some("invalid_token"))),
        }
    }
}

plugin_api::export_filter! {
    name: "bearer-auth",
    version: env!("CARGO_PKG_VERSION"),
    init: BearerAuth::new,
}

#[cfg(test)]
mod tests {
    use plugin_api::testing::{TestFilter, TestRequest};
    use plugin_api::Response;

    use super::constant_time_eq;

    fn filter() -> TestFilter {
        TestFilter::start_with_config(
            super::plugd_plugin,
            &[
                ("tokens", "s3cret"),
                ("tokens", "other"),
                ("paths", "/admin"),
            ],
        )
        .unwrap()
    }

    #[test]
    fn good_bad_and_missing_tokens() {
        let auth = filter();
        let call = |req: TestRequest| auth.call(req, Response::text("inside"));
        let good = call(TestRequest::get("/admin/x").header("Authorization", "Bearer s3cret"));
        assert_eq!(good.body_str(), Some("inside"));
        let other = call(TestRequest::get("/admin").header("Authorization", "bearer other"));
        assert_eq!(other.status(), 200);
        let bad = call(TestRequest::get("/admin").header("Authorization", "Bearer s3cre"));
        assert_eq!(bad.status(), 401);
        assert_eq!(
            bad.header("www-authenticate"),
            Some("Bearer realm=\"plugd\", error=\"invalid_token\"")
        );
        let missing = call(TestRequest::get("/admin"));
        assert_eq!(
            (missing.status(), missing.header("www-authenticate")),
            (401, Some("Bearer realm=\"plugd\""))
        );
        let basic = call(TestRequest::get("/admin").header("Authorization", "Basic czNjcmV0"));
        assert_eq!(basic.status(), 401);
        assert_eq!(
            call(TestRequest::get("/public")).status(),
            200,
            "not protected"
        );
    }

    #[test]
    fn without_tokens_nobody_gets_in() {
        let closed = TestFilter::start(super::plugd_plugin).unwrap();
        let request = TestRequest::get("/").header("Authorization", "Bearer ");
        assert_eq!(closed.call(request, Response::text("x")).status(), 401);
        let empty = TestFilter::start_with_config(super::plugd_plugin, &[("tokens", "")]);
        assert!(empty.err().unwrap().contains("cannot be empty"));
    }

    #[test]
    fn comparison_covers_lengths_and_every_byte() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abc\0"));
        assert!(!constant_time_eq(b"", b"a"));
        assert!(constant_time_eq(b"", b""));
    }
}
