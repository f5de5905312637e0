//! The `--config` file: a TOML document whose top-level keys are plugd's command-line settings and whose
//! `[plugins.NAME]` tables configure plugins.
//!
//! The file layer knows no setting by name. For each top-level key it finds the clap argument with that id
//! (the flag's name with `_` for `-`), checks the value with that argument's own parser, and installs it as the
//! argument's default. clap then applies its usual order, so a flag beats its `PLUGD_*` variable, which beats
//! the file, which beats the built-in default; a flag added to [`super::Args`] gets its key with no code here.
//!
//! A table other than `[plugins]` groups flags by their common prefix: `[rate_limit] burst = 10` is the key
//! `rate_limit_burst`, i.e. `--rate-limit-burst 10`.
//!
//! Every refusal is one line naming the file, the line and the key, because the operator's next step is to
//! open the file there.

use std::ffi::OsString;
use std::fs;
use std::ops::Range;
use std::path::{Path, PathBuf};

use clap::{Arg, ArgAction};
use toml::de::{DeTable, DeValue};

use super::plugin_tables::{self, PluginTables};

/// The argument that names the file itself; a file cannot name another file.
const CONFIG_ARG: &str = "config";
/// Top-level table holding one `[plugins.NAME]` table per plugin.
const PLUGINS_KEY: &str = "plugins";

/// A config file read into memory; its text is kept to turn byte offsets into line numbers.
pub struct ConfigFile {
    path: PathBuf,
    text: String,
}

impl ConfigFile {
    /// Reads the file; a missing file, a folder or a file that is not UTF-8 is refused in one line.
    pub fn read(path: &Path) -> Result<ConfigFile, String> {
        let bytes = fs::read(path)
            .map_err(|err| format!("cannot read config file {}: {err}", path.display()))?;
        let text = String::from_utf8(bytes)
            .map_err(|_| format!("config file {} is not UTF-8 text", path.display()))?;
        Ok(ConfigFile {
            path: path.to_owned(),
            text,
        })
    }

    /// Installs every host setting of the file as its argument's default in `command`, and returns the
    /// plugin tables. Refuses text that is not TOML, an unknown key, a value of the wrong type or one the
    /// argument's parser rejects.
    pub fn apply(
        &self,
        mut command: clap::Command,
    ) -> Result<(clap::Command, PluginTables), String> {
        let document = self.document()?;
        let mut plugins = PluginTables::default();
        for (key, value) in document.get_ref() {
            let at = Location {
                file: self,
                key: key.get_ref(),
                span: value.span(),
            };
            if at.key == PLUGINS_KEY {
                plugins =
                    plugin_tables::parse(value.get_ref(), value.span(), &|key, span, problem| {
                        Location {
                            file: self,
                            key,
                            span,
                        }
                        .error(problem)
                    })?;
            } else if let DeValue::Table(table) = value.get_ref() {
                for (name, value) in table {
                    let key = format!("{}_{}", at.key, name.get_ref());
                    let at = Location {
                        file: self,
                        key: &key,
                        span: value.span(),
                    };
                    command = set_default(command, &at, value.get_ref())?;
                }
            } else {
                command = set_default(command, &at, value.get_ref())?;
            }
        }
        Ok((command, plugins))
    }

    fn document(&self) -> Result<toml::Spanned<DeTable<'_>>, String> {
        DeTable::parse(&self.text).map_err(|err| {
            let line = err.span().map_or(String::new(), |span| {
                format!(", line {}", self.line_of(&span))
            });
            format!(
                "config file {} is not valid TOML{line}: {}",
                self.path.display(),
                one_line(err.message())
            )
        })
    }

    /// The 1-based line holding byte `span.start`.
    fn line_of(&self, span: &Range<usize>) -> usize {
        let start = span.start.min(self.text.len());
        self.text.as_bytes()[..start]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }
}

/// Where in the file a value sits, for messages.
struct Location<'a> {
    file: &'a ConfigFile,
    key: &'a str,
    span: Range<usize>,
}

impl Location<'_> {
    fn error(&self, problem: &str) -> String {
        format!(
            "config file {}, line {}: `{}`: {problem}",
            self.file.path.display(),
            self.file.line_of(&self.span),
            self.key
        )
    }

    fn unknown_key(&self, command: &clap::Command) -> String {
        let spelled = self.key.replace('-', "_");
        let hint = if spelled != self.key && setting(command, &spelled).is_some() {
            format!(" (did you mean `{spelled}`?)")
        } else {
            " (keys are plugd's flags with `_` for `-`, see plugd --help, and [plugins.NAME] tables)".to_owned()
        };
        self.error(&format!("unknown key{hint}"))
    }
}

/// Checks the value at `at` with the parser of the argument it names, then makes it that argument's default.
fn set_default(
    command: clap::Command,
    at: &Location<'_>,
    value: &DeValue<'_>,
) -> Result<clap::Command, String> {
    let arg = setting(&command, at.key).ok_or_else(|| at.unknown_key(&command))?;
    let texts = value_texts(arg, value).map_err(|problem| at.error(&problem))?;
    check_with_parser(&command, arg, &texts).map_err(|problem| at.error(&problem))?;
    let id = arg.get_id().clone();
    Ok(command.mut_arg(id, |arg| arg.default_values(texts)))
}

/// The argument a file key sets: any named, non-positional argument of plugd except `--config`, `--help` and
/// `--version`.
fn setting<'c>(command: &'c clap::Command, key: &str) -> Option<&'c Arg> {
    command.get_arguments().find(|arg| {
        arg.get_id() == key
            && key != CONFIG_ARG
            && arg.get_long().is_some()
            && matches!(
                arg.get_action(),
                ArgAction::Set | ArgAction::Append | ArgAction::SetTrue | ArgAction::SetFalse
            )
    })
}

/// The kind of TOML value an argument takes, from the type its parser produces.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Expected {
    Boolean,
    Integer,
    /// An integer or a float (seconds, ratios).
    Number,
    /// A number or a string (a duration a parser may also read as `"250ms"`).
    NumberOrString,
    String,
}

impl Expected {
    fn of(arg: &Arg) -> Expected {
        use std::any::TypeId;
        if !arg.get_action().takes_values() {
            return Expected::Boolean;
        }
        let produced = arg.get_value_parser().type_id();
        let is = |id: TypeId| produced == id;
        let integers = [
            TypeId::of::<u8>(),
            TypeId::of::<u16>(),
            TypeId::of::<u32>(),
            TypeId::of::<u64>(),
            TypeId::of::<usize>(),
            TypeId::of::<i8>(),
            TypeId::of::<i16>(),
            TypeId::of::<i32>(),
            TypeId::of::<i64>(),
            TypeId::of::<isize>(),
        ];
        if integers.into_iter().any(is) {
            Expected::Integer
        } else if is(TypeId::of::<f64>()) || is(TypeId::of::<f32>()) {
            Expected::Number
        } else if is(TypeId::of::<std::time::Duration>()) {
            Expected::NumberOrString
        } else {
            Expected::String
        }
    }

    fn name(self) -> &'static str {
        match self {
            Expected::Boolean => "a boolean",
            Expected::Integer => "an integer",
            Expected::Number => "a number",
            Expected::NumberOrString => "a number or a string",
            Expected::String => "a string",
        }
    }

    fn accepts(self, value: &DeValue<'_>) -> bool {
        matches!(
            (self, value),
            (Expected::Boolean, DeValue::Boolean(_))
                | (Expected::Integer, DeValue::Integer(_))
                | (Expected::Number, DeValue::Integer(_) | DeValue::Float(_))
                | (
                    Expected::NumberOrString,
                    DeValue::Integer(_) | DeValue::Float(_) | DeValue::String(_)
                )
                | (Expected::String, DeValue::String(_))
        )
    }
}

/// The command-line text(s) of a file value for `arg`: one, or one per element for a repeatable argument.
fn value_texts(arg: &Arg, value: &DeValue<'_>) -> Result<Vec<String>, String> {
    let expected = Expected::of(arg);
    let wrong = |found: &DeValue<'_>| {
        format!(
            "expected {}, found a TOML {}",
            expected.name(),
            found.type_str()
        )
    };
    match value {
        DeValue::Array(items) if matches!(arg.get_action(), ArgAction::Append) => items
            .iter()
            .map(|item| {
                let item = item.get_ref();
                if expected.accepts(item) {
                    Ok(plugin_tables::scalar_text(item).unwrap_or_default())
                } else {
                    Err(wrong(item))
                }
            })
            .collect(),
        value if expected.accepts(value) => {
            Ok(vec![plugin_tables::scalar_text(value).unwrap_or_default()])
        }
        value => Err(wrong(value)),
    }
}

/// Runs `texts` through `arg`'s own parser, as if given on the command line, so a file value is held to
/// exactly the rules of the flag. (clap would also check a default, but only when no flag overrides it.)
fn check_with_parser(command: &clap::Command, arg: &Arg, texts: &[String]) -> Result<(), String> {
    let Some(long) = arg.get_long() else {
        return Ok(());
    };
    let mut argv: Vec<OsString> = vec!["plugd".into()];
    if arg.get_action().takes_values() {
        argv.extend(texts.iter().map(|text| format!("--{long}={text}").into()));
    } else if texts.iter().any(|text| text == "true") {
        argv.push(format!("--{long}").into());
    }
    match command.clone().try_get_matches_from(argv) {
        Ok(_) => Ok(()),
        Err(err) => Err(parser_message(&err, texts)),
    }
}

/// The parser's reason, without clap's `--flag <VALUE>` framing (the operator wrote a key, not a flag).
fn parser_message(err: &clap::Error, texts: &[String]) -> String {
    let value = texts.join(", ");
    match std::error::Error::source(err) {
        Some(reason) => format!("invalid value `{value}`: {}", one_line(&reason.to_string())),
        None => {
            let rendered = err.to_string();
            let first = rendered.lines().next().unwrap_or("invalid value");
            one_line(first.trim_start_matches("error: "))
        }
    }
}

/// Messages end up on one log line.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use clap::{Arg, ArgAction, value_parser};

    use super::*;

    /// A command with arguments plugd does not have (yet): the file layer must serve them with no code of its own.
    fn command() -> clap::Command {
        clap::Command::new("plugd")
            .arg(
                Arg::new("access_log_format")
                    .long("access-log-format")
                    .value_parser(["common", "json"])
                    .default_value("common"),
            )
            .arg(
                Arg::new("max_threads")
                    .long("max-threads")
                    .value_parser(value_parser!(u16).range(1..=64)),
            )
            .arg(
                Arg::new("ratio")
                    .long("ratio")
                    .value_parser(value_parser!(f64)),
            )
            .arg(Arg::new("tag").long("tag").action(ArgAction::Append))
            .arg(Arg::new("quiet").long("quiet").action(ArgAction::SetTrue))
    }

    fn file(text: &str) -> ConfigFile {
        ConfigFile {
            path: PathBuf::from("test.toml"),
            text: text.to_owned(),
        }
    }

    fn matches(text: &str, argv: &[&str]) -> Result<clap::ArgMatches, String> {
        let (command, _) = file(text).apply(command())?;
        let argv = std::iter::once("plugd").chain(argv.iter().copied());
        Ok(command.try_get_matches_from(argv).expect("argv parses"))
    }

    #[test]
    fn any_argument_gets_a_key_and_a_flag_still_wins() {
        let text = "access_log_format = \"json\"\nmax_threads = 8\nratio = 2\ntag = [\"a\", \"b\"]\nquiet = true\n";
        let m = matches(text, &[]).unwrap();
        assert_eq!(m.get_one::<String>("access_log_format").unwrap(), "json");
        assert_eq!(m.get_one::<u16>("max_threads"), Some(&8));
        assert_eq!(m.get_one::<f64>("ratio"), Some(&2.0));
        let tags: Vec<&String> = m.get_many("tag").unwrap().collect();
        assert_eq!(tags, ["a", "b"]);
        assert!(m.get_flag("quiet"));

        let m = matches(text, &["--max-threads", "3", "--tag", "c"]).unwrap();
        assert_eq!(m.get_one::<u16>("max_threads"), Some(&3));
        let tags: Vec<&String> = m.get_many("tag").unwrap().collect();
        assert_eq!(tags, ["c"]);
    }

    #[test]
    fn a_table_groups_the_flags_of_its_prefix() {
        let text = "[ratio]\nx = 1\n";
        let command = command().arg(
            Arg::new("ratio_x")
                .long("ratio-x")
                .value_parser(value_parser!(u16)),
        );
        let (command, _) = file(text).apply(command).unwrap();
        let m = command.try_get_matches_from(["plugd"]).unwrap();
        assert_eq!(m.get_one::<u16>("ratio_x"), Some(&1));
        let err = matches("[ratio]\ny = 1\n", &[]).unwrap_err();
        assert!(err.contains("`ratio_y`: unknown key"), "{err}");
    }

    #[test]
    fn each_refusal_names_the_key_and_the_line() {
        for (text, needles) in [
            (
                "\nmax_threads = 65\n",
                &["line 2", "`max_threads`", "65"][..],
            ),
            (
                "access_log_format = \"xml\"\n",
                &["line 1", "`access_log_format`", "xml"],
            ),
            (
                "tag = [\"a\", 1]\n",
                &["`tag`", "expected a string, found a TOML integer"],
            ),
            ("ratio = \"2\"\n", &["`ratio`", "expected a number"]),
            ("quiet = \"yes\"\n", &["`quiet`", "expected a boolean"]),
            ("\n\nthreads = 4\n", &["line 3", "`threads`", "unknown key"]),
            ("config = \"other.toml\"\n", &["`config`", "unknown key"]),
        ] {
            let err = matches(text, &[]).unwrap_err();
            assert!(needles.iter().all(|n| err.contains(n)), "{text:?}: {err}");
            assert!(!err.contains('\n'), "{err}");
        }
    }
}
