//! Errors a route function returns with `?`, and how they become responses.

use std::fmt;

use crate::Response;

/// An error that answers a request: a status and a message.
///
/// A client error (4xx) is answered with its message as `text/plain`. A server error (5xx) is answered with a
/// bare `Internal Server Error`: its message may reveal internals, so it goes to plugd's log only, with the
/// plugin's name and the request. Any [`std::error::Error`] converts into a 500 with `?`, so a route function
/// returning `Result<Response, Error>` can use `?` on I/O, parsing, or its own errors:
///
/// ```
/// use plugin_api::{Error, Request, Response};
///
/// fn item(req: &Request<'_>) -> Result<Response, Error> {
///     let id: u32 = req
///         .param("id")
///         .unwrap_or_default()
///         .parse()
///         .map_err(|_| Error::bad_request("the id is a number"))?;
///     if id == 0 {
///         return Err(Error::not_found("no item 0"));
///     }
///     let stock: u32 = "12".parse()?; // a ParseIntError would become a 500
///     Ok(Response::text(format!("item {id}: {stock} in stock")))
/// }
/// ```
///
/// `Error` deliberately does not implement [`std::error::Error`] (that would clash with the conversion from
/// every error type).
pub struct Error {
    status: u16,
    message: String,
}

impl Error {
    /// An error with `status` (a 4xx or 5xx; anything else becomes 500) and `message`.
    pub fn new(status: u16, message: impl Into<String>) -> Error {
        let status = if (400..=599).contains(&status) {
            status
        } else {
            500
        };
        Error {
            status,
            message: message.into(),
        }
    }

    /// `400 Bad Request`: the request is malformed (a missing field, a number that is not one).
    pub fn bad_request(message: impl Into<String>) -> Error {
        Error::new(400, message)
    }

    /// `401 Unauthorized`: credentials are missing or wrong (add a `WWW-Authenticate` field yourself).
    pub fn unauthorized(message: impl Into<String>) -> Error {
        Error::new(401, message)
    }

    /// `403 Forbidden`: understood, and refused.
    pub fn forbidden(message: impl Into<String>) -> Error {
        Error::new(403, message)
    }

    /// `404 Not Found`: the route exists, the thing it names does not.
    pub fn not_found(message: impl Into<String>) -> Error {
        Error::new(404, message)
    }

    /// `409 Conflict`: the request conflicts with the current state (a duplicate name).
    pub fn conflict(message: impl Into<String>) -> Error {
        Error::new(409, message)
    }

    /// `415 Unsupported Media Type`: a body of a type the route does not read.
    pub fn unsupported_media_type(message: impl Into<String>) -> Error {
        Error::new(415, message)
    }

    /// `422 Unprocessable Content`: well-formed, but the values make no sense.
    pub fn unprocessable(message: impl Into<String>) -> Error {
        Error::new(422, message)
    }

    /// `500 Internal Server Error`: the message goes to plugd's log, not to the client.
    pub fn internal(message: impl Into<String>) -> Error {
        Error::new(500, message)
    }

    /// `503 Service Unavailable`: try again later (a backend is down); the message is logged, not sent.
    pub fn unavailable(message: impl Into<String>) -> Error {
        Error::new(503, message)
    }

    /// The status the client gets.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The message (sent for a 4xx, logged for a 5xx).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The response for this error: see the type's docs. A 5xx is logged at error level, naming `method` and
    /// `path`.
    pub(crate) fn into_response(self, method: &str, path: &str) -> Response {
        if self.status >= 500 {
            log::error!(target: "plugin", "{method} {path}: {}", self.message);
            Response::text("Internal Server Error").with_status(self.status)
        } else {
            Response::text(self.message).with_status(self.status)
        }
    }
}

impl<E: std::error::Error> From<E> for Error {
    fn from(err: E) -> Error {
        Error::internal(err.to_string())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Error({} {:?})", self.status, self.message)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status, self.message)
    }
}

/// What a route function may return: a [`Response`], or `Result<Response, E>` where `E` converts into an
/// [`Error`] (the SDK's own, or any `std::error::Error`).
pub trait IntoResponse {
    /// The response, or the error to answer with.
    fn into_response(self) -> Result<Response, Error>;
}

impl IntoResponse for Response {
    fn into_response(self) -> Result<Response, Error> {
        Ok(self)
    }
}

impl<E: Into<Error>> IntoResponse for Result<Response, E> {
    fn into_response(self) -> Result<Response, Error> {
        self.map_err(Into::into)
    }
}

#[cfg(test)]
mod tests {
    use super::Error;

    #[test]
    fn client_errors_send_their_message_and_server_errors_hide_it() {
        let bad = Error::bad_request("name is empty").into_response("GET", "/x");
        assert_eq!((bad.status(), bad.body_str()), (400, Some("name is empty")));
        let io = std::io::Error::other("disk /var/secret is full");
        let hidden = Error::from(io).into_response("GET", "/x");
        assert_eq!(
            (hidden.status(), hidden.body_str()),
            (500, Some("Internal Server Error"))
        );
        assert_eq!(Error::new(302, "not an error status").status(), 500);
    }
}
