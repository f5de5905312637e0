//! The host's side of filter plugins: calling the hooks of either capability ([`FILTER_V2`], or
//! [`FILTER_V1`] for filters built against plugin-api 0.1.2), and the one reading of a field edit and of a
//! fixed field that plugd and [`crate::testing`] share.

use std::ptr::NonNull;

use abi_stable::std_types::{ROption, RSlice, RStr};

use super::checked;
use crate::abi::{
    ContextSlot, FieldEditKind, FilterModule, FilterModuleV2, PluginInstance, ResponseHeadAccess,
    ResponseHeadView, FILTER_V1, FILTER_V2, HOOK_REQUEST, HOOK_RESPONSE,
};
use crate::{Header, Request, Response};

/// A filter plugin's hooks, as the capability it offers them through.
pub(super) enum FilterHooks {
    /// Built against plugin-api 0.1.2: edits come back as an `RVec`, the context is an `RString`.
    V1(NonNull<FilterModule>),
    V2(NonNull<FilterModuleV2>),
}

impl FilterHooks {
    /// The filter module `instance` offers, the newest this host knows first.
    pub(super) fn offered_by(plugin: &str, instance: &PluginInstance) -> Option<FilterHooks> {
        let offered = instance.capability(RStr::from(FILTER_V2)).into_option();
        if let Some(module) = checked::<FilterModuleV2>(plugin, FILTER_V2, offered) {
            return Some(FilterHooks::V2(module));
        }
        let offered = instance.capability(RStr::from(FILTER_V1)).into_option();
        checked::<FilterModule>(plugin, FILTER_V1, offered).map(FilterHooks::V1)
    }

    pub(super) fn setup(&self) -> Result<FilterSetup, String> {
        let module = match self {
            FilterHooks::V1(_) => return Ok(FilterSetup::both_hooks()),
            // SAFETY: checked against `FilterModuleV2` at start; valid while the instance lives.
            FilterHooks::V2(module) => unsafe { module.as_ref() },
        };
        let setup = (module.setup)(module).into_result()?;
        let fixed = setup.fixed.iter().map(FixedEdit::from_abi).collect();
        Ok(FilterSetup {
            request: setup.hooks & HOOK_REQUEST != 0,
            response: setup.hooks & HOOK_RESPONSE != 0,
            fixed: FixedFields(fixed),
        })
    }

    #[inline]
    pub(super) fn on_request(
        &self,
        req: &Request<'_>,
        context: &mut FilterState,
    ) -> Result<Option<Response>, String> {
        let answer = match self {
            FilterHooks::V1(module) => {
                // SAFETY: checked against `FilterModule` at start; valid while the instance lives.
                let module = unsafe { module.as_ref() };
                (module.on_request)(module, req, &mut context.0.spilled)
            }
            FilterHooks::V2(module) => {
                // SAFETY: checked against `FilterModuleV2` at start; valid while the instance lives.
                let module = unsafe { module.as_ref() };
                (module.on_request)(module, req, &mut context.0)
            }
        };
        answer
            .into_result()
            .map(ROption::into_option)
            .map_err(Into::into)
    }

    #[inline]
    pub(super) fn on_response<T: FieldTarget>(
        &self,
        req: &Request<'_>,
        context: &mut FilterState,
        status: u16,
        fields: &mut T,
    ) -> Result<(), String> {
        match self {
            FilterHooks::V1(module) => {
                // SAFETY: checked against `FilterModule` at start; valid while the instance lives.
                let module = unsafe { module.as_ref() };
                on_response_v1(module, req, &mut context.0, status, fields)
            }
            FilterHooks::V2(module) => {
                // SAFETY: checked against `FilterModuleV2` at start; valid while the instance lives.
                let module = unsafe { module.as_ref() };
                let mut head = ResponseHeadAccess {
                    status,
                    fields: (fields as *mut T).cast(),
                    field: field_of::<T>,
                    edit: edit_of::<T>,
                    borrow: std::marker::PhantomData,
                };
                match (module.on_response)(module, req, &mut context.0, &mut head) {
                    ROption::RNone => Ok(()),
                    ROption::RSome(panic) => Err(panic.into()),
                }
            }
        }
    }
}

/// A `filter.v1` response hook: it reads a copy of the field list and returns its edits, applied here.
fn on_response_v1(
    module: &FilterModule,
    req: &Request<'_>,
    context: &mut ContextSlot,
    status: u16,
    fields: &mut impl FieldTarget,
) -> Result<(), String> {
    let edits = {
        let view: Vec<Header<'_>> = (0..)
            .map_while(|index| fields.field(index))
            .map(|(name, value)| Header::new(name, value))
            .collect();
        let head = ResponseHeadView {
            status,
            fields: RSlice::from(&view[..]),
        };
        (module.on_response)(module, req, &mut context.spilled, &head).into_result()?
    };
    for edit in edits.iter() {
        fields.apply(edit.kind, edit.name.as_str(), edit.value.as_str());
    }
    Ok(())
}

/// [`ResponseHeadAccess::field`] over a `T`.
extern "C" fn field_of<'a, T: FieldTarget + 'a>(
    fields: *const (),
    index: usize,
) -> ROption<Header<'a>> {
    // SAFETY: `fields` is the `&mut T` that `on_response` lent for the duration of the hook, read here
    // between edits (the plugin's `ResponseHead` ties every read to a shared borrow of itself).
    let target = unsafe { &*fields.cast::<T>() };
    target
        .field(index)
        .map(|(name, value)| Header::new(name, value))
        .into()
}

/// [`ResponseHeadAccess::edit`] over a `T`.
extern "C" fn edit_of<T: FieldTarget>(
    fields: *mut (),
    kind: FieldEditKind,
    name: RStr<'_>,
    value: RStr<'_>,
) {
    // SAFETY: as in `field_of`; the plugin edits only through `&mut ResponseHead`, so no read is alive.
    let target = unsafe { &mut *fields.cast::<T>() };
    target.apply(kind, name.as_str(), value.as_str());
}

/// One request's context of one filter, handed from its request hook to its response hook. Empty until the
/// filter sets it; creating one allocates nothing, and small values never allocate.
#[derive(Default)]
pub struct FilterState(ContextSlot);

/// A response's fields as a filter reads and edits them.
pub trait FieldTarget {
    /// The field at `index`, in order, with the edits made so far.
    fn field(&self, index: usize) -> Option<(&str, &[u8])>;
    /// Removes every field named `name` (ASCII case-insensitive).
    fn remove_fields(&mut self, name: &str);
    /// Adds the field `name: value` after the others (dropping it if it could not be sent).
    fn append_field(&mut self, name: &str, value: &str);

    /// Applies one edit: the one reading of [`FieldEditKind`] that plugd and [`crate::testing`] share.
    fn apply(&mut self, kind: FieldEditKind, name: &str, value: &str) {
        match kind {
            FieldEditKind::Append => self.append_field(name, value),
            FieldEditKind::Set => {
                self.remove_fields(name);
                self.append_field(name, value);
            }
            FieldEditKind::Remove => self.remove_fields(name),
        }
    }
}

/// What a filter asks of the host, once: which hooks to call, and the fields to edit by itself.
#[derive(Debug, Default)]
pub struct FilterSetup {
    /// Call the request hook.
    pub request: bool,
    /// Call the response hook.
    pub response: bool,
    /// Applied on the way out before the response hook, whether or not it is called.
    pub fixed: FixedFields,
}

impl FilterSetup {
    /// A filter built against plugin-api 0.1.2: both hooks, nothing fixed.
    fn both_hooks() -> FilterSetup {
        FilterSetup {
            request: true,
            response: true,
            fixed: FixedFields::default(),
        }
    }
}

/// A filter's fixed response fields, in the order it registered them.
#[derive(Debug, Default)]
pub struct FixedFields(Vec<FixedEdit>);

/// One fixed edit: made to every response, or only when the request's first field `when.0` is `when.1`.
#[derive(Debug)]
pub struct FixedEdit {
    pub when: Option<(String, String)>,
    pub kind: FieldEditKind,
    pub name: String,
    pub value: String,
}

impl FixedEdit {
    fn from_abi(edit: &crate::abi::FixedField) -> FixedEdit {
        let when = (!edit.when_field.is_empty())
            .then(|| (edit.when_field.to_string(), edit.when_value.to_string()));
        FixedEdit {
            when,
            kind: edit.kind,
            name: edit.name.to_string(),
            value: edit.value.to_string(),
        }
    }

    fn applies_to(&self, req: &Request<'_>) -> bool {
        match &self.when {
            None => true,
            Some((field, value)) => req.header(field) == Some(value.as_bytes()),
        }
    }
}

impl FixedFields {
    /// Whether there are none (then nothing is done per response).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Keeps only the edits `keep` accepts (a host drops those it could never send, once).
    pub fn retain(&mut self, keep: impl FnMut(&FixedEdit) -> bool) {
        self.0.retain(keep);
    }

    /// Takes the leading edits, as long as `take` accepts each in turn (a host that prepares some edits
    /// once, and leaves the rest to [`FixedFields::apply`]).
    pub fn take_leading(&mut self, mut take: impl FnMut(&FixedEdit) -> bool) -> Vec<FixedEdit> {
        let count = self.0.iter().take_while(|edit| take(edit)).count();
        self.0.drain(..count).collect()
    }

    /// Makes the edits that apply to `req` to `fields`, in order.
    #[inline]
    pub fn apply(&self, req: &Request<'_>, fields: &mut impl FieldTarget) {
        for edit in self.0.iter().filter(|edit| edit.applies_to(req)) {
            fields.apply(edit.kind, &edit.name, &edit.value);
        }
    }
}

#[cfg(test)]
mod tests {
    use abi_stable::std_types::{RResult, RString, RVec};
    use abi_stable::type_level::downcasting::TD_Opaque;
    use abi_stable::StableAbi;

    use super::*;
    use crate::abi::{Capability, FieldEdit, PanicMessage, PluginObject, PluginObject_TO};
    use crate::host::Instance;
    use crate::testing::{TestFilter, TestRequest};

    /// A filter object as plugin-api 0.1.2's `export_filter!` built it: its `filter.v1` module first.
    #[repr(C)]
    struct V1Filter {
        module: FilterModule,
    }

    /// Keeps the method in the context.
    extern "C" fn v1_request(
        _module: &FilterModule,
        req: &Request<'_>,
        context: &mut RString,
    ) -> RResult<ROption<Response>, PanicMessage> {
        context.push_str(req.method());
        RResult::ROk(ROption::RNone)
    }

    /// Returns its edits: `X-V1` set from the context and the fields it saw, `X-Gone` removed.
    extern "C" fn v1_response(
        _module: &FilterModule,
        _req: &Request<'_>,
        context: &mut RString,
        head: &ResponseHeadView<'_>,
    ) -> RResult<RVec<FieldEdit>, PanicMessage> {
        let seen = format!("{context} saw {}", head.fields.len());
        let edit = |kind, name: &str, value: &str| FieldEdit {
            kind,
            name: name.into(),
            value: value.into(),
        };
        RResult::ROk(
            vec![
                edit(FieldEditKind::Set, "X-V1", &seen),
                edit(FieldEditKind::Remove, "X-Gone", ""),
            ]
            .into(),
        )
    }

    impl PluginObject for V1Filter {
        fn handle(&self, _req: &Request<'_>) -> RResult<Response, PanicMessage> {
            RResult::ROk(Response::empty(404))
        }

        fn shutdown(&self) -> ROption<PanicMessage> {
            ROption::RNone
        }

        fn capability(&self, name: RStr<'_>) -> ROption<Capability> {
            (name.as_str() == FILTER_V1)
                .then(|| Capability {
                    layout: <FilterModule as StableAbi>::LAYOUT,
                    module: (&self.module as *const FilterModule).cast(),
                })
                .into()
        }
    }

    #[test]
    fn test_filter_runs_a_filter_built_against_plugin_api_0_1_2() {
        let object = V1Filter {
            module: FilterModule {
                on_request: v1_request,
                on_response: v1_response,
            },
        };
        let instance = Instance::new("v1", PluginObject_TO::from_value(object, TD_Opaque));
        let filter = TestFilter::of("v1", instance).unwrap();
        let inner = Response::text("x").with_header("X-Gone", "soon");
        let response = filter.call(TestRequest::new("PUT", "/"), inner);
        assert_eq!(response.header("x-v1"), Some("PUT saw 2"));
        assert_eq!(response.header("x-gone"), None);
        assert_eq!(response.body_str(), Some("x"));
    }
}
