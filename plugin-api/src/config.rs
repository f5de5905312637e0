//! Typed access to a plugin's configuration: the `[plugins.NAME]` table of plugd's configuration file, as
//! the key/value pairs `init` receives.
//!
//! plugd flattens the table into text pairs, in file order: a string is its raw text (`greeting = "Hi"` ->
//! `Hi`), a number, boolean or date its TOML text (`limit = 42` -> `42`), an array one pair per element under
//! the same key, and a nested table dotted keys (`[plugins.NAME.db] url = "x"` -> `db.url`). [`Config`] reads
//! them back as Rust values, with errors that name the plugin and the key.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use crate::abi::ConfigEntry;

/// The configuration a plugin's `init` receives.
///
/// ```
/// use std::time::Duration;
/// use plugin_api::abi::ConfigEntry;
/// use plugin_api::Config;
///
/// # let entry = ConfigEntry::new;
/// // [plugins.shop]  greeting = "Hi"  limit = 42  timeout = "250ms"  tokens = ["a", "b"]
/// // [plugins.shop.db]  url = "postgres://db"
/// # let entries = [entry("greeting", "Hi"), entry("limit", "42"), entry("timeout", "250ms"),
/// #     entry("tokens", "a"), entry("tokens", "b"), entry("db.url", "postgres://db")];
/// # let config = Config::new(&entries);
/// assert_eq!(config.get("greeting"), Some("Hi"));
/// assert_eq!(config.require::<u32>("limit")?, 42);
/// assert_eq!(config.parse_or("verbose", false)?, false);
/// assert_eq!(config.require::<Duration>("timeout")?, Duration::from_millis(250));
/// assert_eq!(config.list::<String>("tokens")?, ["a", "b"]);
/// assert_eq!(config.section("db").get("url"), Some("postgres://db"));
/// assert!(config.require::<bool>("limit").is_err());
/// # Ok::<(), plugin_api::ConfigError>(())
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Config<'a> {
    entries: &'a [ConfigEntry<'a>],
    /// The plugin's name, for error messages (empty when unknown).
    plugin: &'a str,
    /// The dotted key of the section this view shows, without the final `.`; empty for the whole table.
    prefix: &'a str,
}

impl<'a> Config<'a> {
    /// A configuration over `entries`.
    pub fn new(entries: &'a [ConfigEntry<'a>]) -> Config<'a> {
        Config {
            entries,
            plugin: "",
            prefix: "",
        }
    }

    /// This configuration, naming `plugin` in its errors.
    pub(crate) fn for_plugin(self, plugin: &'a str) -> Config<'a> {
        Config { plugin, ..self }
    }

    /// The plugin's name, as its errors show it (empty in a configuration built by hand).
    pub fn plugin(&self) -> &'a str {
        self.plugin
    }

    /// The raw text of `key`, if set (the first value, for a list).
    pub fn get(&self, key: &str) -> Option<&'a str> {
        self.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// All entries in order, as `(key, value)`; in a [section](Config::section), keys are relative to it.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        let prefix = self.prefix;
        self.entries.iter().filter_map(move |e| {
            let key = relative_key(prefix, e.key.as_str())?;
            Some((key, e.value.as_str()))
        })
    }

    /// The value of `key` as a `T`, or `None` when it is not set.
    pub fn parse<T: FromConfig>(&self, key: &str) -> Result<Option<T>, ConfigError> {
        self.get(key)
            .map(|text| T::from_config(text).map_err(|problem| self.error(key, problem)))
            .transpose()
    }

    /// The value of `key` as a `T`, or `default` when it is not set.
    pub fn parse_or<T: FromConfig>(&self, key: &str, default: T) -> Result<T, ConfigError> {
        Ok(self.parse(key)?.unwrap_or(default))
    }

    /// The value of `key` as a `T`; an error when it is not set.
    pub fn require<T: FromConfig>(&self, key: &str) -> Result<T, ConfigError> {
        self.parse(key)?
            .ok_or_else(|| self.error(key, "is required but not set".to_owned()))
    }

    /// Every value of `key` (a TOML array gives one per element), each as a `T`; empty when not set.
    pub fn list<T: FromConfig>(&self, key: &str) -> Result<Vec<T>, ConfigError> {
        self.iter()
            .filter(|(k, _)| *k == key)
            .enumerate()
            .map(|(i, (_, text))| {
                T::from_config(text).map_err(|problem| self.error(&format!("{key}[{i}]"), problem))
            })
            .collect()
    }

    /// The nested table `name` (`[plugins.NAME.name]`, or dotted keys `name.x`), as a configuration whose keys
    /// are relative to it; empty when there is none. `name` may itself be dotted (`"db.pool"`).
    pub fn section(&self, name: &str) -> Config<'a> {
        // The new prefix is borrowed from an entry's own key, so the view stays `Copy` and allocation-free.
        let prefix = self.entries.iter().find_map(|e| {
            let key = e.key.as_str();
            let relative = relative_key(self.prefix, key)?;
            let rest = relative.strip_prefix(name)?.strip_prefix('.')?;
            Some(&key[..key.len() - rest.len() - 1])
        });
        match prefix {
            Some(prefix) => Config { prefix, ..*self },
            None => Config {
                entries: &[],
                ..*self
            },
        }
    }

    fn error(&self, key: &str, problem: String) -> ConfigError {
        let key = if self.prefix.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.prefix)
        };
        ConfigError {
            plugin: self.plugin.to_owned(),
            key,
            problem,
        }
    }
}

/// `key` relative to the section `prefix` (`""`: the whole table), if it lies inside it.
fn relative_key<'k>(prefix: &str, key: &'k str) -> Option<&'k str> {
    if prefix.is_empty() {
        return Some(key);
    }
    key.strip_prefix(prefix)?.strip_prefix('.')
}

/// A configuration value that is missing or not of the expected type. Its message names the plugin and the
/// full dotted key, e.g. ``plugin hello: config key `limit`: expected an integer, got "lots"``; returned from
/// `init` with `?`, it is the reason plugd gives for refusing the plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    plugin: String,
    key: String,
    problem: String,
}

impl ConfigError {
    /// The full dotted key.
    pub fn key(&self) -> &str {
        &self.key
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.plugin.is_empty() {
            write!(f, "plugin {}: ", self.plugin)?;
        }
        write!(f, "config key `{}`: {}", self.key, self.problem)
    }
}

impl std::error::Error for ConfigError {}

/// A type a configuration value can be read as. The `Err` text says what was expected, e.g.
/// `expected an integer, got "lots"`.
pub trait FromConfig: Sized {
    /// Reads `text`, the value as plugd passed it.
    fn from_config(text: &str) -> Result<Self, String>;
}

impl FromConfig for String {
    fn from_config(text: &str) -> Result<String, String> {
        Ok(text.to_owned())
    }
}

impl FromConfig for PathBuf {
    fn from_config(text: &str) -> Result<PathBuf, String> {
        Ok(PathBuf::from(text))
    }
}

impl FromConfig for bool {
    /// `true` or `false`, as TOML writes them.
    fn from_config(text: &str) -> Result<bool, String> {
        parse_as(text, "true or false")
    }
}

macro_rules! from_config_by_from_str {
    ($what:literal: $($ty:ty),*) => {$(
        impl FromConfig for $ty {
            fn from_config(text: &str) -> Result<$ty, String> {
                parse_as(text, $what)
            }
        }
    )*};
}

from_config_by_from_str!("an integer": i8, i16, i32, i64, i128, isize);
from_config_by_from_str!("a non-negative integer": u8, u16, u32, u64, u128, usize);
from_config_by_from_str!("a number": f32, f64);

fn parse_as<T: FromStr>(text: &str, expected: &str) -> Result<T, String> {
    text.parse()
        .map_err(|_| format!("expected {expected}, got {text:?}"))
}

impl FromConfig for Duration {
    /// A whole number with a unit: `250ms`, `2s`, `1m`, `1h`; a plain number is seconds (`30` = `30s`).
    fn from_config(text: &str) -> Result<Duration, String> {
        let expected = || format!("expected a duration such as 250ms, 2s, 1m or 1h, got {text:?}");
        let digits = text.bytes().take_while(u8::is_ascii_digit).count();
        let (number, unit) = text.split_at(digits);
        let number: u64 = number.parse().map_err(|_| expected())?;
        let seconds = |factor: u64| number.checked_mul(factor).map(Duration::from_secs);
        match unit {
            "ms" => Some(Duration::from_millis(number)),
            "" | "s" => seconds(1),
            "m" => seconds(60),
            "h" => seconds(3600),
            _ => None,
        }
        .ok_or_else(expected)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn entries(pairs: &[(&'static str, &'static str)]) -> Vec<ConfigEntry<'static>> {
        pairs
            .iter()
            .map(|&(key, value)| ConfigEntry::new(key, value))
            .collect()
    }

    #[test]
    fn typed_getters_read_tomls_text() {
        let e = entries(&[
            ("name", "shop"),
            ("limit", "42"),
            ("offset", "-3"),
            ("ratio", "1.5"),
            ("enabled", "true"),
            ("dir", "/var/lib/shop"),
        ]);
        let c = Config::new(&e).for_plugin("shop");
        assert_eq!(c.require::<String>("name").unwrap(), "shop");
        assert_eq!(c.require::<u16>("limit").unwrap(), 42);
        assert_eq!(c.require::<i64>("offset").unwrap(), -3);
        assert_eq!(c.require::<f64>("ratio").unwrap(), 1.5);
        assert!(c.require::<bool>("enabled").unwrap());
        assert_eq!(
            c.require::<PathBuf>("dir").unwrap(),
            PathBuf::from("/var/lib/shop")
        );
        assert_eq!(c.parse::<u32>("missing").unwrap(), None);
        assert_eq!(c.parse_or("missing", 7u32).unwrap(), 7);
    }

    #[test]
    fn errors_name_the_plugin_the_key_and_the_value() {
        let e = entries(&[("limit", "lots"), ("offset", "-3"), ("big", "300")]);
        let c = Config::new(&e).for_plugin("shop");
        assert_eq!(
            c.require::<u32>("limit").unwrap_err().to_string(),
            "plugin shop: config key `limit`: expected a non-negative integer, got \"lots\""
        );
        assert!(c.require::<u32>("offset").is_err());
        assert!(c.require::<u8>("big").is_err());
        assert_eq!(
            c.require::<bool>("absent").unwrap_err().to_string(),
            "plugin shop: config key `absent`: is required but not set"
        );
    }

    #[test]
    fn durations_take_a_unit_or_mean_seconds() {
        for (text, want) in [
            ("250ms", Duration::from_millis(250)),
            ("2s", Duration::from_secs(2)),
            ("1m", Duration::from_secs(60)),
            ("1h", Duration::from_secs(3600)),
            ("30", Duration::from_secs(30)),
        ] {
            assert_eq!(Duration::from_config(text), Ok(want), "{text}");
        }
        for bad in [
            "",
            "ms",
            "1.5s",
            "-1s",
            "2 s",
            "1d",
            "99999999999999999999h",
        ] {
            assert!(Duration::from_config(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn lists_and_sections() {
        let e = entries(&[
            ("tokens", "a"),
            ("db.url", "postgres://x"),
            ("tokens", "b"),
            ("db.pool.size", "4"),
            ("ports", "80"),
            ("ports", "http"),
            ("dbx", "not in db"),
        ]);
        let c = Config::new(&e).for_plugin("shop");
        assert_eq!(c.list::<String>("tokens").unwrap(), ["a", "b"]);
        assert_eq!(c.list::<u16>("none").unwrap(), Vec::<u16>::new());
        assert_eq!(
            c.list::<u16>("ports").unwrap_err().to_string(),
            "plugin shop: config key `ports[1]`: expected a non-negative integer, got \"http\""
        );
        let db = c.section("db");
        assert_eq!(db.get("url"), Some("postgres://x"));
        assert_eq!(db.iter().count(), 2);
        assert_eq!(db.section("pool").require::<u8>("size").unwrap(), 4);
        assert_eq!(c.section("db.pool").get("size"), Some("4"));
        assert_eq!(
            db.require::<u8>("port").unwrap_err().key(),
            "db.port",
            "errors give the full key"
        );
        assert_eq!(c.section("nothing").iter().count(), 0);
        assert_eq!(c.section("db").get("dbx"), None);
    }
}
