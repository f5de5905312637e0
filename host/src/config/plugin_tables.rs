//! The `[plugins.NAME]` tables of the config file, flattened into the `(key, value)` text pairs a plugin's
//! `init` receives (`plugin_api`'s `ConfigEntry`, unchanged since plugin-api 0.1.0).
//!
//! Flattening, in file order:
//! - a string gives its raw text (no quotes, no escapes); an integer, float, boolean or datetime gives TOML's
//!   text of it (`42`, `1.5`, `true`);
//! - an array of scalars gives one entry per element under the same key (an empty array gives none);
//! - a nested table gives dotted keys (`[plugins.NAME.db] url = "x"` -> `db.url`), and an array holding
//!   tables or arrays gives index segments (`servers.0.host`).
//!
//! Host-level keys are read by plugd and still passed to the plugin: `mount`, a path prefix for all of the
//! plugin's routes (see [`Mount`]), and `max_in_flight`, the most requests the plugin's handlers may serve
//! at once (`plugins/bulkhead.rs`); for a filter plugin, `filter_paths`, the path prefixes the middleware
//! chain applies it to (`middleware.rs`).

use std::num::NonZeroUsize;
use std::ops::Range;

use toml::de::{DeTable, DeValue};

/// Key of a plugin table that prefixes all of the plugin's routes.
const MOUNT_KEY: &str = "mount";
/// Key of a plugin table that caps the plugin's requests in flight.
const MAX_IN_FLIGHT_KEY: &str = "max_in_flight";
/// Key of a filter plugin's table that limits it to path prefixes (docs/ARCHITECTURE.md §15).
const FILTER_PATHS_KEY: &str = "filter_paths";

/// Reports a problem with the value at `key` (`plugins.NAME.KEY`) found at `span`, as one line.
pub type Refuse<'a> = dyn Fn(&str, Range<usize>, &str) -> String + 'a;

/// Every `[plugins.NAME]` table, in file order.
#[derive(Clone, Debug, Default)]
pub struct PluginTables {
    tables: Vec<(String, PluginTable)>,
}

impl PluginTables {
    /// The table of plugin `name`, if the file has one.
    pub fn get(&self, name: &str) -> Option<&PluginTable> {
        self.tables.iter().find(|(n, _)| n == name).map(|(_, t)| t)
    }

    /// The plugin names that have a table.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tables.iter().map(|(name, _)| name.as_str())
    }
}

/// One plugin's configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PluginTable {
    /// What its `init` receives, in file order.
    pub entries: Vec<(String, String)>,
    /// Where its routes are mounted (`/` when not set).
    pub mount: Mount,
    /// The most requests its handlers serve at once; `None`: plugd's default share of `--max-threads`.
    pub max_in_flight: Option<NonZeroUsize>,
    /// For a filter in the middleware chain: the path prefixes it applies to (empty: every path).
    pub filter_paths: Vec<String>,
}

impl PluginTable {
    /// The entries as `init` takes them.
    pub fn entry_refs(&self) -> Vec<(&str, &str)> {
        self.entries
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }
}

/// A path prefix for all of a plugin's routes: `mount = "/api"` turns `GET /items/{id}` into
/// `GET /api/items/{id}`. The prefix is simply prepended, so the plugin's `/` becomes `/api/` (and `/api` alone
/// is not one of its routes). `/` (the default) leaves the routes as declared.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mount(String);

impl Default for Mount {
    fn default() -> Mount {
        Mount("/".to_owned())
    }
}

impl Mount {
    /// Accepts `/` or `/SEGMENT[/SEGMENT...]`: no trailing `/`, no empty, `.` or `..` segment, no `{` or `}`
    /// (a prefix is literal, never a parameter), only characters a path may hold unescaped (RFC 3986 §3.3
    /// `pchar`) or percent-encoded.
    pub fn parse(text: &str) -> Result<Mount, String> {
        if text == "/" {
            return Ok(Mount::default());
        }
        let Some(rest) = text.strip_prefix('/') else {
            return Err(format!("`{text}` does not start with `/`"));
        };
        if text.ends_with('/') {
            return Err(format!(
                "`{text}` ends with `/` (write `{}`)",
                text.trim_end_matches('/')
            ));
        }
        for segment in rest.split('/') {
            if matches!(segment, "" | "." | "..") {
                return Err(format!("`{text}` has an empty, `.` or `..` segment"));
            }
            if let Some(bad) = segment.chars().find(|&c| !is_pchar(c)) {
                return Err(format!(
                    "`{text}` holds `{bad}`, which a path prefix cannot hold (no parameters, no query)"
                ));
            }
            if !percent_triplets_ok(segment) {
                return Err(format!("`{text}` has a `%` not followed by two hex digits"));
            }
        }
        Ok(Mount(text.to_owned()))
    }

    /// `pattern` (which starts with `/`) under this prefix.
    pub fn apply(&self, pattern: &str) -> String {
        if self.is_root() {
            pattern.to_owned()
        } else {
            format!("{}{pattern}", self.0)
        }
    }

    /// Whether routes stay as declared.
    pub fn is_root(&self) -> bool {
        self.0 == "/"
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// RFC 3986 §3.3: `pchar = unreserved / pct-encoded / sub-delims / ":" / "@"` (the `%` checked apart).
fn is_pchar(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-._~!$&'()*+,;=:@%".contains(c)
}

fn percent_triplets_ok(segment: &str) -> bool {
    let bytes = segment.as_bytes();
    bytes.iter().enumerate().all(|(i, &b)| {
        b != b'%'
            || bytes
                .get(i + 1..i + 3)
                .is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit))
    })
}

/// Reads the top-level `plugins` value: a table of tables.
pub fn parse(
    value: &DeValue<'_>,
    span: Range<usize>,
    refuse: &Refuse<'_>,
) -> Result<PluginTables, String> {
    let DeValue::Table(plugins) = value else {
        return Err(refuse(
            "plugins",
            span,
            &format!(
                "expected a table of [plugins.NAME] tables, found {}",
                value.type_str()
            ),
        ));
    };
    let mut tables = Vec::with_capacity(plugins.len());
    for (name, table) in plugins {
        let name = name.get_ref().as_ref();
        let key = format!("plugins.{name}");
        let DeValue::Table(table) = table.get_ref() else {
            return Err(refuse(
                &key,
                table.span(),
                &format!("expected a table, found {}", table.get_ref().type_str()),
            ));
        };
        tables.push((name.to_owned(), plugin_table(&key, table, refuse)?));
    }
    Ok(PluginTables { tables })
}

fn plugin_table(
    key: &str,
    table: &DeTable<'_>,
    refuse: &Refuse<'_>,
) -> Result<PluginTable, String> {
    let mut result = PluginTable::default();
    for (name, value) in table {
        let name = name.get_ref().as_ref();
        if name == MOUNT_KEY {
            let mount_key = format!("{key}.{MOUNT_KEY}");
            let DeValue::String(text) = value.get_ref() else {
                return Err(refuse(
                    &mount_key,
                    value.span(),
                    &format!("expected a string, found {}", value.get_ref().type_str()),
                ));
            };
            result.mount = Mount::parse(text).map_err(|problem| {
                refuse(
                    &mount_key,
                    value.span(),
                    &format!("invalid mount prefix: {problem}"),
                )
            })?;
        }
        if name == MAX_IN_FLIGHT_KEY {
            let limit_key = format!("{key}.{MAX_IN_FLIGHT_KEY}");
            result.max_in_flight = Some(
                positive_integer(value.get_ref())
                    .map_err(|problem| refuse(&limit_key, value.span(), &problem))?,
            );
        }
        if name == FILTER_PATHS_KEY {
            let paths_key = format!("{key}.{FILTER_PATHS_KEY}");
            result.filter_paths = path_prefixes(value.get_ref())
                .map_err(|problem| refuse(&paths_key, value.span(), &problem))?;
        }
        flatten(name.to_owned(), value.get_ref(), &mut result.entries);
    }
    Ok(result)
}

/// An array of path prefixes, each starting with `/`.
fn path_prefixes(value: &DeValue<'_>) -> Result<Vec<String>, String> {
    let DeValue::Array(items) = value else {
        return Err(format!(
            "expected an array of path prefixes, found {}",
            value.type_str()
        ));
    };
    items
        .iter()
        .map(|item| match item.get_ref() {
            DeValue::String(text) if text.starts_with('/') => Ok(text.to_string()),
            other => Err(format!(
                "expected path prefixes starting with `/`, found {}",
                scalar_text(other).unwrap_or_else(|| other.type_str().to_owned())
            )),
        })
        .collect()
}

/// A positive integer that fits the machine's word.
fn positive_integer(value: &DeValue<'_>) -> Result<NonZeroUsize, String> {
    let DeValue::Integer(integer) = value else {
        return Err(format!(
            "expected a positive integer, found {}",
            value.type_str()
        ));
    };
    i64::from_str_radix(integer.as_str(), integer.radix())
        .ok()
        .and_then(|n| usize::try_from(n).ok())
        .and_then(NonZeroUsize::new)
        .ok_or_else(|| format!("expected a positive integer, found {integer}"))
}

/// Appends the entries of `value` under `key` (see the module docs).
fn flatten(key: String, value: &DeValue<'_>, out: &mut Vec<(String, String)>) {
    match value {
        DeValue::Table(table) => {
            for (name, value) in table {
                flatten(format!("{key}.{}", name.get_ref()), value.get_ref(), out);
            }
        }
        DeValue::Array(items)
            if items
                .iter()
                .all(|item| scalar_text(item.get_ref()).is_some()) =>
        {
            out.extend(
                items
                    .iter()
                    .filter_map(|item| scalar_text(item.get_ref()))
                    .map(|text| (key.clone(), text)),
            );
        }
        DeValue::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                flatten(format!("{key}.{i}"), item.get_ref(), out);
            }
        }
        scalar => out.extend(scalar_text(scalar).map(|text| (key, text))),
    }
}

/// The text of a scalar as a plugin (or a command-line parser) reads it; `None` for arrays and tables.
pub fn scalar_text(value: &DeValue<'_>) -> Option<String> {
    Some(match value {
        DeValue::String(text) => text.to_string(),
        // TOML allows `0x2A` and `1_000`; a plugin gets the plain decimal number.
        DeValue::Integer(integer) => i64::from_str_radix(integer.as_str(), integer.radix())
            .map_or_else(|_| integer.to_string(), |n| n.to_string()),
        DeValue::Float(float) => float.as_str().to_owned(),
        DeValue::Boolean(flag) => flag.to_string(),
        DeValue::Datetime(datetime) => datetime.to_string(),
        DeValue::Array(_) | DeValue::Table(_) => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(toml: &str) -> Vec<(String, String)> {
        let document = DeTable::parse(toml).unwrap();
        let plugins = document.get_ref().get("plugins").unwrap();
        let tables = parse(plugins.get_ref(), plugins.span(), &|key, _, problem| {
            format!("{key}: {problem}")
        })
        .unwrap();
        tables.get("p").unwrap().entries.clone()
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn tables_flatten_as_the_contract_says_in_file_order() {
        let got = entries(
            r#"
            [plugins.p]
            greeting = "Hi \"you\""
            limit = 0x2A
            ratio = 1.5
            enabled = true
            day = 2026-12-02
            tokens = ["a", "b"]
            none = []
            [plugins.p.db]
            url = "x"
            [[plugins.p.servers]]
            host = "h0"
            [[plugins.p.servers]]
            host = "h1"
            "#,
        );
        assert_eq!(
            got,
            pairs(&[
                ("greeting", "Hi \"you\""),
                ("limit", "42"),
                ("ratio", "1.5"),
                ("enabled", "true"),
                ("day", "2026-12-02"),
                ("tokens", "a"),
                ("tokens", "b"),
                ("db.url", "x"),
                ("servers.0.host", "h0"),
                ("servers.1.host", "h1"),
            ])
        );
    }

    #[test]
    fn mount_is_read_and_still_passed_on() {
        assert_eq!(
            entries("[plugins.p]\nmount = \"/api\""),
            pairs(&[("mount", "/api")])
        );
    }

    fn max_in_flight(toml: &str) -> Result<Option<NonZeroUsize>, String> {
        let document = DeTable::parse(toml).unwrap();
        let plugins = document.get_ref().get("plugins").unwrap();
        let tables = parse(plugins.get_ref(), plugins.span(), &|key, _, problem| {
            format!("{key}: {problem}")
        })?;
        Ok(tables.get("p").unwrap().max_in_flight)
    }

    #[test]
    fn max_in_flight_is_a_positive_integer() {
        assert_eq!(max_in_flight("[plugins.p]\nx = 1"), Ok(None));
        assert_eq!(
            max_in_flight("[plugins.p]\nmax_in_flight = 0x10"),
            Ok(NonZeroUsize::new(16))
        );
        for bad in ["0", "-3", "\"8\"", "1.5", "true"] {
            let err = max_in_flight(&format!("[plugins.p]\nmax_in_flight = {bad}")).unwrap_err();
            assert!(
                err.starts_with("plugins.p.max_in_flight: expected a positive integer"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn mount_prefixes_are_validated() {
        for good in ["/", "/api", "/api/v1", "/caf%C3%A9", "/a-b_c.d~"] {
            assert!(Mount::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "", "api", "/api/", "//", "/a//b", "/{x}", "/a}", "/a?b", "/a#b", "/a b", "/%zz",
            "/..", "/./a", "/é",
        ] {
            assert!(Mount::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_mount_prepends_its_prefix() {
        let api = Mount::parse("/api").unwrap();
        assert_eq!(api.apply("/items/{id}"), "/api/items/{id}");
        assert_eq!(api.apply("/"), "/api/");
        assert_eq!(Mount::default().apply("/x"), "/x");
    }
}
