//! Filter plugins in the middleware chain: each plugin offering plugin-api's `filter.v1` becomes a
//! [`Filter`], and the configuration's `middleware` list becomes the [`Chain`] (docs/ARCHITECTURE.md §15).
//!
//! [`middleware_chain`] is also how a reload checks a new list against the plugins it loaded: a name no loaded filter
//! has is refused with one line, and the caller keeps its running chain.

use std::sync::Arc;

use plugin_api::host::{Answer, EditFields, FilterState};

use super::adapter::{PluginHandler, into_host_response};
use super::load::LoadedPlugin;
use crate::config::PluginTables;
use crate::handler::{Fields, Response};
use crate::middleware::{Chain, ChainLink, Filter};

/// Response fields converted on the stack for a filter's view; more spill into an allocation.
const INLINE_FIELDS: usize = 16;

/// The chain `names` (the configuration's `middleware` list, in order) made of the filter plugins in
/// `loaded`, each limited to the `filter_paths` of its table in `tables`. `Err` is one line naming the first
/// name no loaded plugin answers to, or that names a plugin which is no filter.
pub fn middleware_chain(
    names: &[String],
    loaded: &[&LoadedPlugin],
    tables: &PluginTables,
) -> Result<Chain, String> {
    let mut links = Vec::with_capacity(names.len());
    for name in names {
        let plugin = loaded
            .iter()
            .find(|plugin| plugin.name() == name)
            .ok_or_else(|| unknown_filter(name, loaded))?;
        if !plugin.handler().instance().is_filter() {
            return Err(format!(
                "middleware `{name}`: plugin {name} from {} is no filter (it was not built with \
                 plugin_api::export_filter!)",
                plugin.path().display()
            ));
        }
        let prefixes = tables
            .get(name)
            .map(|table| table.filter_paths.clone())
            .unwrap_or_default();
        let filter = Arc::new(PluginFilter {
            plugin: Arc::clone(plugin.handler()),
        });
        links.push(ChainLink::new(name, prefixes, filter));
    }
    Ok(Chain::new(links))
}

fn unknown_filter(name: &str, loaded: &[&LoadedPlugin]) -> String {
    let filters: Vec<&str> = loaded
        .iter()
        .filter(|plugin| plugin.handler().instance().is_filter())
        .map(|plugin| plugin.name())
        .collect();
    let known = if filters.is_empty() {
        "no filter plugin is loaded".to_owned()
    } else {
        format!("loaded filters: {}", filters.join(", "))
    };
    format!("middleware `{name}`: no loaded plugin is named `{name}` ({known})")
}

/// A filter plugin as the chain calls it.
struct PluginFilter {
    plugin: Arc<PluginHandler>,
}

impl PluginFilter {
    /// A filter that failed gives a 500 for this request only; its message stays in the log.
    fn failed(&self, req: &plugin_api::Request<'_>, hook: &str, problem: &str) -> Response {
        log::error!(
            "filter {} failed in its {hook} hook on {} {}: {problem}",
            self.plugin.name(),
            req.method(),
            req.path()
        );
        Response::text(500, "Internal Server Error\n")
    }
}

impl Filter for PluginFilter {
    fn on_request(
        &self,
        req: &plugin_api::Request<'_>,
        state: &mut FilterState,
    ) -> Option<Response> {
        match self.plugin.instance().filter_request(req, state) {
            Ok(None) => None,
            Ok(Some(answer)) => Some(
                into_host_response(Answer {
                    response: answer,
                    body: None,
                    length: None,
                    file: None,
                })
                .unwrap_or_else(|problem| self.failed(req, "request", &problem)),
            ),
            Err(panic) => Some(self.failed(req, "request", &format!("panicked: {panic}"))),
        }
    }

    fn on_response(
        &self,
        req: &plugin_api::Request<'_>,
        state: &mut FilterState,
        response: &mut Response,
    ) {
        let status = response.status;
        let edits = with_field_view(&response.headers, |fields| {
            self.plugin
                .instance()
                .filter_response(req, state, status, fields)
        });
        match edits {
            Ok(edits) if edits.is_empty() => {}
            Ok(edits) => edits.apply_to(&mut EditedFields(&mut response.headers)),
            Err(panic) => *response = self.failed(req, "response", &format!("panicked: {panic}")),
        }
    }
}

/// Calls `f` with the plugin ABI's view of `fields`, on the stack for the usual few.
fn with_field_view<R>(fields: &Fields, f: impl FnOnce(&[plugin_api::Header<'_>]) -> R) -> R {
    let views = fields
        .iter()
        .map(|(name, value)| plugin_api::Header::new(name, value.as_bytes()));
    if fields.len() <= INLINE_FIELDS {
        let mut inline = [plugin_api::Header::new("", b""); INLINE_FIELDS];
        for (slot, view) in inline.iter_mut().zip(views) {
            *slot = view;
        }
        f(&inline[..fields.len()])
    } else {
        f(&views.collect::<Vec<_>>())
    }
}

/// A response's fields as a filter's edits change them; an invalid field is dropped by [`Fields::push`].
struct EditedFields<'a>(&'a mut Fields);

impl EditFields for EditedFields<'_> {
    fn remove_fields(&mut self, name: &str) {
        self.0.remove(name);
    }

    fn append_field(&mut self, name: &str, value: &str) {
        self.0
            .push((name.to_owned().into(), value.to_owned().into()));
    }
}
