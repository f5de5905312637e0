//! Filters: plugin code around every request, before routing and before the response head is written (the
//! author's side of [`FILTER_V1`](crate::abi::FILTER_V1)).
//!
//! plugd runs the filters its configuration names (`middleware = ["request-id", "bearer-auth"]`) in that order
//! on the way in and in reverse on the way out, around every answer: plugin routes, static files and plugd's
//! own 404, 405 and 413. A filter's request hook may answer the request itself (a 401, a redirect, a cached
//! page): routing is then skipped and only the filters before it see the response, as in an onion. Both hooks
//! are plain synchronous functions called from every worker through `&self`.
//!
//! The filter carries data from its request hook to its response hook in the request's [`FilterContext`], a
//! string of its own (empty until it sets it), since the filter object itself is shared by all requests.

use abi_stable::std_types::{RString, RVec};

use crate::abi::{FieldEdit, FieldEditKind, ResponseHeadView};
use crate::{Header, Request, Response};

/// A filter: the one trait a filter plugin implements (see [`export_filter!`](crate::export_filter)).
///
/// A panic in either hook becomes a `500` for that request only.
pub trait Filter: Send + Sync + 'static {
    /// Sees the request before plugd routes it. `None` lets it continue; `Some(response)` answers it here:
    /// no route runs, and only the filters before this one see the response.
    fn on_request(&self, req: &Request<'_>, context: &mut FilterContext<'_>) -> Option<Response> {
        let _ = (req, context);
        None
    }

    /// Sees the response head before plugd writes it, and may add, replace or remove fields.
    fn on_response(
        &self,
        req: &Request<'_>,
        context: &FilterContext<'_>,
        head: &mut ResponseHead<'_>,
    ) {
        let _ = (req, context, head);
    }

    /// Called once when plugd shuts down.
    fn shutdown(&self) {}
}

/// One request's data of one filter, from its request hook to its response hook: a string, empty until set.
pub struct FilterContext<'a>(pub(crate) &'a mut RString);

impl FilterContext<'_> {
    /// Replaces the context with `value`.
    pub fn set(&mut self, value: &str) {
        self.0.clear();
        self.0.push_str(value);
    }

    /// The context as the request hook left it (empty if it set none).
    pub fn get(&self) -> &str {
        self.0.as_str()
    }
}

/// A response head as a filter's response hook sees it: its status and fields as they stand, and the edits
/// the hook makes, applied by plugd in order after the hook returns.
///
/// Reads see the fields before this hook's edits. plugd drops an edit whose name or value could not be sent
/// (a name that is not a token, CR, LF or NUL in a value), and the fields it owns (`Date`, `Server`,
/// `Content-Length`, `Transfer-Encoding`, `Connection`) stay its own.
///
/// ```
/// use plugin_api::filter::{Filter, FilterContext, ResponseHead};
/// use plugin_api::Request;
///
/// struct NoSniff;
///
/// impl Filter for NoSniff {
///     fn on_response(&self, _req: &Request<'_>, _cx: &FilterContext<'_>, head: &mut ResponseHead<'_>) {
///         if head.header("Content-Type").is_some() {
///             head.set_header("X-Content-Type-Options", "nosniff");
///         }
///         head.remove_header("X-Powered-By");
///     }
/// }
/// # plugin_api::export_filter! { name: "nosniff", version: "0.1.0", init: |_config| Ok(NoSniff) }
/// # use plugin_api::testing::{TestFilter, TestRequest};
/// # let f = TestFilter::start(plugd_plugin).unwrap();
/// # let r = f.call(TestRequest::get("/"), plugin_api::Response::text("x").with_header("X-Powered-By", "y"));
/// # assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
/// # assert_eq!(r.header("x-powered-by"), None);
/// ```
pub struct ResponseHead<'a> {
    status: u16,
    fields: &'a [Header<'a>],
    edits: RVec<FieldEdit>,
}

impl<'a> ResponseHead<'a> {
    pub(crate) fn new(view: &ResponseHeadView<'a>) -> ResponseHead<'a> {
        ResponseHead {
            status: view.status,
            fields: view.fields.as_slice(),
            edits: RVec::new(),
        }
    }

    /// The response's status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The first field named `name` (ASCII case-insensitive), if it is valid UTF-8.
    pub fn header(&self, name: &str) -> Option<&'a str> {
        self.fields
            .iter()
            .find(|field| field.name().eq_ignore_ascii_case(name))
            .and_then(Header::value_str)
    }

    /// Every field, in order, as `(name, value)`.
    pub fn headers(&self) -> impl Iterator<Item = (&'a str, &'a [u8])> + 'a {
        self.fields
            .iter()
            .map(|field| (field.name(), field.value()))
    }

    /// Replaces every field named `name` with one holding `value`.
    pub fn set_header(&mut self, name: &str, value: &str) {
        self.edit(FieldEditKind::Set, name, value);
    }

    /// Adds a field after the existing ones (as nginx's `add_header` does).
    pub fn append_header(&mut self, name: &str, value: &str) {
        self.edit(FieldEditKind::Append, name, value);
    }

    /// Removes every field named `name`.
    pub fn remove_header(&mut self, name: &str) {
        self.edit(FieldEditKind::Remove, name, "");
    }

    fn edit(&mut self, kind: FieldEditKind, name: &str, value: &str) {
        self.edits.push(FieldEdit {
            kind,
            name: name.into(),
            value: value.into(),
        });
    }

    pub(crate) fn into_edits(self) -> RVec<FieldEdit> {
        self.edits
    }
}
