//! [`FILTER_V2`]: filter hooks that allocate nothing per request (plugin-api 0.1.3).
//!
//! `filter.v1` handed every field edit back as two `RString`s in an `RVec` slot, allocated in the plugin,
//! freed through its allocator and copied into the host's field list: a chain of three filters cost about
//! three times the instructions of the request it wrapped (docs/ARCHITECTURE.md §15). Here instead:
//! - the host lends the response head through a [`ResponseHeadAccess`]: the filter reads fields and writes
//!   its edits through host functions, so its bytes are copied once, by the host, into the head being built;
//! - fields that do not depend on the request ([`FixedField`]: `headers`' security fields, CORS fields per
//!   origin) are handed over once, after `init`, and applied by the host itself;
//! - [`FilterSetup::hooks`] says which hooks the host must call at all;
//! - the per-request context ([`ContextSlot`]) holds small values in place.

use std::marker::PhantomData;

use abi_stable::std_types::{ROption, RResult, RStr, RString, RVec};
use abi_stable::StableAbi;

use super::{FieldEditKind, PanicMessage};
use crate::{Header, Request, Response};

/// The per-instance capability of a filter plugin built against plugin-api 0.1.3 or later: a
/// [`FilterModuleV2`]. Hosts that know it ask for it before [`FILTER_V1`](super::FILTER_V1).
pub const FILTER_V2: &str = "filter.v2";

/// [`FilterSetup::hooks`] bit: call the request hook.
pub const HOOK_REQUEST: u8 = 1;
/// [`FilterSetup::hooks`] bit: call the response hook.
pub const HOOK_RESPONSE: u8 = 2;

/// [`FILTER_V2`]: a filter's setup and its two hooks. It is the first field of the plugin's handler object,
/// and valid as long as that object. `RErr` / `RSome` carry the message of a panic caught inside the plugin.
#[repr(C)]
#[derive(StableAbi)]
pub struct FilterModuleV2 {
    /// What the filter needs from the host: called once, after `init`, before any request.
    pub setup: extern "C" fn(module: &FilterModuleV2) -> RResult<FilterSetup, PanicMessage>,
    /// Sees the request before routing: `RNone` lets it continue, `RSome` answers it instead.
    pub on_request: extern "C" fn(
        module: &FilterModuleV2,
        req: &Request<'_>,
        context: &mut ContextSlot,
    ) -> RResult<ROption<Response>, PanicMessage>,
    /// Sees the response head before it is written, and edits it through `head`.
    pub on_response: extern "C" fn(
        module: &FilterModuleV2,
        req: &Request<'_>,
        context: &mut ContextSlot,
        head: &mut ResponseHeadAccess<'_>,
    ) -> ROption<PanicMessage>,
}

/// What a filter asks of the host, once.
#[repr(C)]
#[derive(StableAbi, Debug)]
pub struct FilterSetup {
    /// [`HOOK_REQUEST`] and [`HOOK_RESPONSE`] bits: the hooks the host calls. A filter with neither is never
    /// called per request.
    pub hooks: u8,
    /// Edits the host makes itself to every response this filter sees, in order, before its response hook.
    pub fixed: RVec<FixedField>,
}

/// One response edit the host makes by itself, for every response or only when the request carries a field.
#[repr(C)]
#[derive(StableAbi, Debug)]
pub struct FixedField {
    /// The request field the edit depends on (ASCII case-insensitive); empty: every response.
    pub when_field: RString,
    /// The value the first `when_field` of the request must have, exactly.
    pub when_value: RString,
    pub kind: FieldEditKind,
    pub name: RString,
    /// Ignored for [`FieldEditKind::Remove`].
    pub value: RString,
}

/// Bytes a [`ContextSlot`] holds in place: a 32-digit request id, an origin, a user name.
pub const CONTEXT_INLINE: usize = 64;

/// One request's context of one filter, owned by the host, empty when the request starts: up to
/// [`CONTEXT_INLINE`] bytes in place, longer values in `spilled` (allocated by the plugin, freed through
/// its own allocator when the host drops the slot).
#[repr(C)]
#[derive(StableAbi)]
pub struct ContextSlot {
    /// Bytes of `inline` in use when `spilled` is empty.
    pub len: u32,
    pub inline: [u8; CONTEXT_INLINE],
    pub spilled: RString,
}

impl Default for ContextSlot {
    fn default() -> ContextSlot {
        ContextSlot {
            len: 0,
            inline: [0; CONTEXT_INLINE],
            spilled: RString::new(),
        }
    }
}

/// A response head lent by the host to a filter's response hook: its status, and host functions that read
/// its fields and edit them in place. Only the host's functions look behind `fields`.
#[repr(C)]
#[derive(StableAbi)]
pub struct ResponseHeadAccess<'a> {
    pub status: u16,
    /// The host's fields, opaque to the plugin.
    pub fields: *mut (),
    /// The field at `index` (in order, after the edits made so far), or `RNone` past the last.
    pub field: extern "C" fn(fields: *const (), index: usize) -> ROption<Header<'a>>,
    /// Applies one edit (`name` ASCII case-insensitive); the host drops one it could not send.
    pub edit: extern "C" fn(fields: *mut (), kind: FieldEditKind, name: RStr<'_>, value: RStr<'_>),
    /// The fields are borrowed for `'a`, and exclusively: the host touches them only through `edit`.
    pub borrow: PhantomData<&'a mut ()>,
}
