//! Filters: plugin code around every request, before routing and before the response head is written (the
//! author's side of [`FILTER_V2`](crate::abi::FILTER_V2)).
//!
//! plugd runs the filters its configuration names (`middleware = ["request-id", "bearer-auth"]`) in that order
//! on the way in and in reverse on the way out, around every answer: plugin routes, static files and plugd's
//! own 404, 405 and 413. A filter's request hook may answer the request itself (a 401, a redirect, a cached
//! page): routing is then skipped and only the filters before it see the response, as in an onion. Both hooks
//! are plain synchronous functions called from every worker through `&self`.
//!
//! A filter runs on every request, so what it costs is paid on every request. Three things keep that small:
//! - [`Filter::hooks`] names the hooks plugd calls: a filter that only checks requests (an authenticator)
//!   is never called for responses, and one that only edits responses is never called for requests;
//! - [`Filter::fixed_fields`] registers, once, the fields that do not depend on the request's details
//!   (security headers, the CORS fields of each allowed origin): plugd adds them itself, without calling the
//!   filter at all;
//! - the hooks allocate nothing of their own: [`ResponseHead`]'s edits go straight into the head plugd is
//!   building, and a [`FilterContext`] of up to 64 bytes lives in place.
//!
//! The filter carries data from its request hook to its response hook in the request's [`FilterContext`]
//! (empty until it sets it), since the filter object itself is shared by all requests.

use std::marker::PhantomData;

use abi_stable::std_types::{RStr, RVec};

use crate::abi::{
    ContextSlot, FieldEditKind, FilterSetup, FixedField, ResponseHeadAccess, CONTEXT_INLINE,
    HOOK_REQUEST, HOOK_RESPONSE,
};
use crate::{Request, Response};

/// A filter: the one trait a filter plugin implements (see [`export_filter!`](crate::export_filter)).
///
/// A panic in either hook becomes a `500` for that request only.
pub trait Filter: Send + Sync + 'static {
    /// The hooks plugd calls, asked once after `init`. The default is both; say less and plugd skips the
    /// others (a hook not named here is never called, whatever it does).
    fn hooks(&self) -> Hooks {
        Hooks::BOTH
    }

    /// Response fields plugd applies itself, registered once after `init`: on the way out, at this filter's
    /// place in the chain, before its response hook (if it has one).
    fn fixed_fields(&self, fields: &mut FixedFields) {
        let _ = fields;
    }

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

/// Which of a filter's hooks plugd calls ([`Filter::hooks`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hooks(u8);

impl Hooks {
    /// Neither: the filter works through [`Filter::fixed_fields`] alone.
    pub const NONE: Hooks = Hooks(0);
    /// Only [`Filter::on_request`].
    pub const REQUEST: Hooks = Hooks(HOOK_REQUEST);
    /// Only [`Filter::on_response`].
    pub const RESPONSE: Hooks = Hooks(HOOK_RESPONSE);
    /// Both hooks.
    pub const BOTH: Hooks = Hooks(HOOK_REQUEST | HOOK_RESPONSE);
}

/// The response fields a filter registers once ([`Filter::fixed_fields`]), applied by plugd in the order
/// registered. Names and values are checked once, when plugd starts the filter; one that could not be sent
/// is dropped with a warning.
///
/// ```
/// use plugin_api::filter::{Filter, FixedFields, Hooks};
///
/// struct Secure;
///
/// impl Filter for Secure {
///     fn hooks(&self) -> Hooks {
///         Hooks::NONE
///     }
///     fn fixed_fields(&self, fields: &mut FixedFields) {
///         fields.set("X-Frame-Options", "DENY");
///         fields
///             .when_request_has("Origin", "https://app.example")
///             .set("Access-Control-Allow-Origin", "https://app.example")
///             .append("Vary", "Origin");
///     }
/// }
/// # plugin_api::export_filter! { name: "secure", version: "0.1.0", init: |_config| Ok(Secure) }
/// # use plugin_api::testing::{TestFilter, TestRequest};
/// # let f = TestFilter::start(plugd_plugin).unwrap();
/// # let r = f.call(TestRequest::get("/"), plugin_api::Response::text("x"));
/// # assert_eq!((r.header("x-frame-options"), r.header("vary")), (Some("DENY"), None));
/// # let r = f.call(TestRequest::get("/").header("Origin", "https://app.example"), plugin_api::Response::text("x"));
/// # assert_eq!(r.header("access-control-allow-origin"), Some("https://app.example"));
/// ```
#[derive(Debug, Default)]
pub struct FixedFields(RVec<FixedField>);

impl FixedFields {
    /// Replaces every field named `name` with one holding `value`, on every response.
    pub fn set(&mut self, name: &str, value: &str) -> &mut FixedFields {
        self.push(("", ""), FieldEditKind::Set, name, value)
    }

    /// Adds `name: value` after the response's fields, on every response.
    pub fn append(&mut self, name: &str, value: &str) -> &mut FixedFields {
        self.push(("", ""), FieldEditKind::Append, name, value)
    }

    /// Removes every field named `name` from every response.
    pub fn remove(&mut self, name: &str) -> &mut FixedFields {
        self.push(("", ""), FieldEditKind::Remove, name, "")
    }

    /// Edits made only to responses to requests whose first `field` (ASCII case-insensitive) is exactly
    /// `value`, e.g. the CORS fields of one allowed `Origin`.
    pub fn when_request_has<'f>(&'f mut self, field: &'f str, value: &'f str) -> When<'f> {
        When {
            fields: self,
            field,
            value,
        }
    }

    fn push(
        &mut self,
        (when_field, when_value): (&str, &str),
        kind: FieldEditKind,
        name: &str,
        value: &str,
    ) -> &mut FixedFields {
        self.0.push(FixedField {
            when_field: when_field.into(),
            when_value: when_value.into(),
            kind,
            name: name.into(),
            value: value.into(),
        });
        self
    }
}

/// Fixed edits that apply only when the request carries a field with a given value
/// ([`FixedFields::when_request_has`]).
pub struct When<'f> {
    fields: &'f mut FixedFields,
    field: &'f str,
    value: &'f str,
}

impl When<'_> {
    /// Replaces every field named `name` with one holding `value`.
    pub fn set(self, name: &str, value: &str) -> Self {
        self.edit(FieldEditKind::Set, name, value)
    }

    /// Adds `name: value` after the response's fields.
    pub fn append(self, name: &str, value: &str) -> Self {
        self.edit(FieldEditKind::Append, name, value)
    }

    /// Removes every field named `name`.
    pub fn remove(self, name: &str) -> Self {
        self.edit(FieldEditKind::Remove, name, "")
    }

    fn edit(self, kind: FieldEditKind, name: &str, value: &str) -> Self {
        self.fields
            .push((self.field, self.value), kind, name, value);
        self
    }
}

/// What a filter asks of plugd: its hooks and its fixed fields.
pub(crate) fn setup_of(filter: &impl Filter) -> FilterSetup {
    let mut fixed = FixedFields::default();
    filter.fixed_fields(&mut fixed);
    FilterSetup {
        hooks: filter.hooks().0,
        fixed: fixed.0,
    }
}

/// One request's data of one filter, from its request hook to its response hook: a string, empty until set.
/// Up to 64 bytes are kept in place; a longer value allocates.
pub struct FilterContext<'a>(pub(crate) &'a mut ContextSlot);

impl FilterContext<'_> {
    /// Replaces the context with `value`.
    pub fn set(&mut self, value: &str) {
        let slot = &mut *self.0;
        slot.spilled.clear();
        match slot.inline.get_mut(..value.len()) {
            Some(inline) => {
                inline.copy_from_slice(value.as_bytes());
                slot.len = value.len() as u32;
            }
            None => {
                slot.len = 0;
                slot.spilled.push_str(value);
            }
        }
    }

    /// The context as the request hook left it (empty if it set none).
    pub fn get(&self) -> &str {
        let slot = &*self.0;
        if !slot.spilled.is_empty() {
            return slot.spilled.as_str();
        }
        let len = (slot.len as usize).min(CONTEXT_INLINE);
        // Only `set` writes the slot, from a `&str`; anything else reads as empty.
        std::str::from_utf8(&slot.inline[..len]).unwrap_or_default()
    }
}

/// A response head as a filter's response hook sees it: its status and fields as they stand (with the
/// edits made so far, this hook's included), and edits that plugd applies at once.
///
/// plugd drops an edit whose name or value could not be sent (a name that is not a token, CR, LF or NUL in a
/// value), and the fields it owns (`Date`, `Server`, `Content-Length`, `Transfer-Encoding`, `Connection`)
/// stay its own.
///
/// ```
/// use plugin_api::filter::{Filter, FilterContext, Hooks, ResponseHead};
/// use plugin_api::Request;
///
/// struct NoSniff;
///
/// impl Filter for NoSniff {
///     fn hooks(&self) -> Hooks {
///         Hooks::RESPONSE
///     }
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
    /// The host's head, lent exclusively to this hook for `'a`.
    access: ResponseHeadAccess<'a>,
}

impl<'a> ResponseHead<'a> {
    pub(crate) fn new(lent: &'a mut ResponseHeadAccess<'_>) -> ResponseHead<'a> {
        ResponseHead {
            access: ResponseHeadAccess {
                status: lent.status,
                fields: lent.fields,
                field: lent.field,
                edit: lent.edit,
                borrow: PhantomData,
            },
        }
    }

    /// The response's status code.
    pub fn status(&self) -> u16 {
        self.access.status
    }

    /// The first field named `name` (ASCII case-insensitive), if it is valid UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers()
            .find(|(field, _)| field.eq_ignore_ascii_case(name))
            .and_then(|(_, value)| std::str::from_utf8(value).ok())
    }

    /// Every field, in order, as `(name, value)`.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &[u8])> + '_ {
        let access = &self.access;
        (0..)
            .map_while(move |index| (access.field)(access.fields, index).into_option())
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
        (self.access.edit)(
            self.access.fields,
            kind,
            RStr::from(name),
            RStr::from(value),
        );
    }
}
