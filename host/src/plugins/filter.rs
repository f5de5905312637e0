//! Filter plugins in the middleware chain: each plugin offering plugin-api's `filter.v2` (or `filter.v1`,
//! built against plugin-api 0.1.2) becomes a [`Filter`], and the configuration's `middleware` list becomes
//! the [`Chain`] (docs/ARCHITECTURE.md §15).
//!
//! A filter's setup is asked once per chain: the hooks it wants called and its fixed fields, which are
//! checked here once and then added by plugd to every response without calling the plugin. The leading
//! fixed fields that every response gets (`headers`' configured fields) are prepared as head lines, added
//! with one copy after one removal per `Set` name, which costs nothing when the response has no field of
//! that name.
//!
//! [`middleware_chain`] is also how a reload checks a new list against the plugins it loaded: a name no loaded filter
//! has is refused with one line, and the caller keeps its running chain.

use std::sync::Arc;

use plugin_api::host::{Answer, FieldEditKind, FieldTarget, FilterSetup, FilterState, FixedEdit};

use super::adapter::{PluginHandler, into_host_response};
use super::load::LoadedPlugin;
use crate::config::PluginTables;
use crate::handler::{Fields, Response};
use crate::http::appended::Lines;
use crate::http::response::is_host_owned;
use crate::http::syntax::{is_token, is_valid_field};
use crate::middleware::{Chain, ChainLink, Filter};

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
        let filter = PluginFilter::start(Arc::clone(plugin.handler()))
            .map_err(|problem| format!("middleware `{name}`: {problem}"))?;
        links.push(ChainLink::new(name, prefixes, Arc::new(filter)));
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
    /// Its hooks and its fixed fields (only those that can be sent, and not those in `lines`), asked once.
    setup: FilterSetup,
    /// Its leading fixed fields for every response, as head lines: made by removing each `Set` name in
    /// `replaced`, then adding `lines`.
    lines: Lines,
    replaced: Vec<String>,
}

impl PluginFilter {
    /// The filter `plugin`, its setup asked and its fixed fields checked; `Err` if asking panicked.
    fn start(plugin: Arc<PluginHandler>) -> Result<PluginFilter, String> {
        let mut setup = plugin
            .instance()
            .filter_setup()
            .map_err(|panic| format!("filter {} panicked in its setup: {panic}", plugin.name()))?;
        setup.fixed.retain(|edit| {
            let sendable = sendable(edit);
            if !sendable {
                log::warn!(
                    "filter {}: dropped the fixed field {:?}: {:?}, which could not be sent",
                    plugin.name(),
                    edit.name,
                    edit.value
                );
            }
            sendable
        });
        let (lines, replaced) = prepared_lines(&mut setup);
        Ok(PluginFilter {
            plugin,
            setup,
            lines,
            replaced,
        })
    }

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

/// Whether a fixed edit can ever reach the wire (a removal needs only a name, and a field the host owns
/// is never sent).
fn sendable(edit: &FixedEdit) -> bool {
    match edit.kind {
        FieldEditKind::Remove => is_token(edit.name.as_bytes()),
        FieldEditKind::Append | FieldEditKind::Set => {
            is_valid_field(&edit.name, &edit.value) && !is_host_owned(&edit.name)
        }
    }
}

/// Takes from `setup` its leading fixed fields made to every response, `Set` or `Append`, each name
/// different from the others (ASCII case-insensitive): removing all the `Set` names first and then adding
/// every field makes the same head as the edits one by one. Returns them as head lines, and the names to
/// remove first.
fn prepared_lines(setup: &mut FilterSetup) -> (Lines, Vec<String>) {
    let mut names: Vec<String> = Vec::new();
    let taken = setup.fixed.take_leading(|edit| {
        let fresh = edit.when.is_none()
            && edit.kind != FieldEditKind::Remove
            && !names
                .iter()
                .any(|name| name.eq_ignore_ascii_case(&edit.name));
        if fresh {
            names.push(edit.name.clone());
        }
        fresh
    });
    let mut lines = Lines::default();
    let mut replaced = Vec::new();
    for edit in taken {
        lines.push(&edit.name, &edit.value);
        if edit.kind == FieldEditKind::Set {
            replaced.push(edit.name);
        }
    }
    (lines, replaced)
}

impl Filter for PluginFilter {
    fn sees_requests(&self) -> bool {
        self.setup.request
    }

    fn sees_responses(&self) -> bool {
        self.setup.response || !self.lines.is_empty() || !self.setup.fixed.is_empty()
    }

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

    #[inline]
    fn on_response(
        &self,
        req: &plugin_api::Request<'_>,
        state: &mut FilterState,
        response: &mut Response,
    ) {
        if !self.lines.is_empty() {
            for name in &self.replaced {
                response.headers.remove(name);
            }
            response.headers.append_lines(&self.lines);
        }
        if !self.setup.fixed.is_empty() {
            let mut fields = EditedFields {
                fields: &mut response.headers,
                checked: true,
            };
            self.setup.fixed.apply(req, &mut fields);
        }
        if !self.setup.response {
            return;
        }
        let mut fields = EditedFields {
            fields: &mut response.headers,
            checked: false,
        };
        let hooked =
            self.plugin
                .instance()
                .filter_response(req, state, response.status, &mut fields);
        if let Err(panic) = hooked {
            *response = self.failed(req, "response", &format!("panicked: {panic}"));
        }
    }
}

/// A response's fields as a filter reads and edits them; an invalid field is dropped by [`Fields::append`].
struct EditedFields<'a> {
    fields: &'a mut Fields,
    /// The edits are fixed fields, which [`PluginFilter::start`] checked once: not checked again.
    checked: bool,
}

impl FieldTarget for EditedFields<'_> {
    fn field(&self, index: usize) -> Option<(&str, &[u8])> {
        self.fields
            .iter()
            .nth(index)
            .map(|(name, value)| (name, value.as_bytes()))
    }

    fn remove_fields(&mut self, name: &str) {
        self.fields.remove(name);
    }

    fn append_field(&mut self, name: &str, value: &str) {
        match self.checked {
            true => self.fields.append_checked(name, value),
            false => self.fields.append(name, value),
        }
    }
}
