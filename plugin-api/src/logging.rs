//! A plugin's `log` records in plugd's log, through the [`LOG_V1`] capability.
//!
//! Every `cdylib` carries its own copy of the `log` crate, with its own global logger and maximum level, so a
//! plugin's `log::info!` would otherwise go nowhere. When plugd loads a library it asks for [`LOG_V1`] and
//! installs a [`LogSink`]: the plugin's copy of `log` then gets a logger that hands each record to plugd, and
//! plugd's own maximum level. A record above that level is dropped by the `log` macro itself, inside the
//! plugin, with one comparison: a disabled `log::debug!` never crosses the boundary. Records that cross are
//! filtered again by plugd's logger (`RUST_LOG`), under the target `NAME` (`NAME::module` for records from a
//! submodule), so `RUST_LOG=info,hello=debug` works by plugin name.

use std::borrow::Cow;
use std::sync::OnceLock;

use abi_stable::std_types::{ROption, RStr};
use abi_stable::StableAbi;

use crate::abi::{Capability, LogModule, LogRecord, LogSink, LOG_V1};

// ---------------------------------------------------------------------------------------------------------
// Plugin side: compiled into every plugin library.
// ---------------------------------------------------------------------------------------------------------

/// The sink plugd installed in this library, if it did.
static SINK: OnceLock<SharedSink> = OnceLock::new();

/// A [`LogSink`] shared by every thread of the plugin.
struct SharedSink(LogSink);

// SAFETY: the context is immutable data the host keeps for the life of the process, and the host's `log`
// function may be called from any thread (`LogSink::log`'s contract).
unsafe impl Send for SharedSink {}
// SAFETY: as above.
unsafe impl Sync for SharedSink {}

/// The module behind [`LOG_V1`].
static LOG_MODULE: LogModule = LogModule { install };

/// The plugin's library-level capabilities (the root module's `capability` entry).
pub(crate) extern "C" fn library_capability(name: RStr<'_>) -> ROption<Capability> {
    if name.as_str() != LOG_V1 {
        return ROption::RNone;
    }
    ROption::RSome(Capability {
        layout: <LogModule as StableAbi>::LAYOUT,
        module: (&LOG_MODULE as *const LogModule).cast(),
    })
}

extern "C" fn install(sink: LogSink) {
    let max_level = level_filter(sink.max_level);
    // A second install (the same library loaded twice) keeps the first sink: both lead to the same host.
    if SINK.set(SharedSink(sink)).is_ok() && log::set_logger(&ToHost).is_err() {
        // The author installed a logger of their own: it stays, and so does its level.
        return;
    }
    log::set_max_level(max_level);
}

/// The plugin's `log` logger: forwards every record the plugin's maximum level lets through.
struct ToHost;

impl log::Log for ToHost {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        let Some(SharedSink(sink)) = SINK.get() else {
            return;
        };
        let message: Cow<'_, str> = match record.args().as_str() {
            Some(text) => Cow::Borrowed(text),
            None => Cow::Owned(record.args().to_string()),
        };
        let crossing = LogRecord {
            level: record.level() as u8,
            target: record.target().into(),
            message: message.as_ref().into(),
        };
        (sink.log)(sink.context, &crossing);
    }

    fn flush(&self) {}
}

fn level_filter(number: u8) -> log::LevelFilter {
    match number {
        0 => log::LevelFilter::Off,
        1 => log::LevelFilter::Error,
        2 => log::LevelFilter::Warn,
        3 => log::LevelFilter::Info,
        4 => log::LevelFilter::Debug,
        _ => log::LevelFilter::Trace,
    }
}

// ---------------------------------------------------------------------------------------------------------
// Host side: runs in plugd.
// ---------------------------------------------------------------------------------------------------------

/// What the host's sink knows about the plugin: its name, leaked once per loaded library (libraries are never
/// unloaded either).
struct PluginLogContext {
    name: String,
}

/// A sink that forwards into this process's `log` logger under the plugin's `name`, with this process's
/// current maximum level.
pub(crate) fn host_sink(name: &str) -> LogSink {
    let context: &'static PluginLogContext = Box::leak(Box::new(PluginLogContext {
        name: name.to_owned(),
    }));
    LogSink {
        context: (context as *const PluginLogContext).cast(),
        log: forward_to_host,
        max_level: log::max_level() as u8,
    }
}

extern "C" fn forward_to_host(context: *const (), record: &LogRecord<'_>) {
    // SAFETY: `context` is the leaked `PluginLogContext` of `host_sink`, never freed.
    let plugin = unsafe { &*context.cast::<PluginLogContext>() };
    let level = match record.level {
        1 => log::Level::Error,
        2 => log::Level::Warn,
        3 => log::Level::Info,
        4 => log::Level::Debug,
        5 => log::Level::Trace,
        _ => return,
    };
    if level > log::max_level() {
        return;
    }
    let target = host_target(&plugin.name, record.target.as_str());
    log::logger().log(
        &log::Record::builder()
            .level(level)
            .target(&target)
            .args(format_args!("{}", record.message.as_str()))
            .build(),
    );
}

/// The target a plugin's record gets in plugd's log: the plugin's name in place of the first segment of the
/// plugin's own target (`hello` -> `hello`, `greeter_plugin::db` -> `greeter::db`, `audit` -> `greeter`).
fn host_target<'a>(plugin: &'a str, target: &str) -> Cow<'a, str> {
    match target.split_once("::") {
        Some((_, rest)) => Cow::Owned(format!("{plugin}::{rest}")),
        None => Cow::Borrowed(plugin),
    }
}

#[cfg(test)]
mod tests {
    use super::host_target;

    #[test]
    fn host_targets_start_with_the_plugin_name() {
        assert_eq!(host_target("hello", "hello"), "hello");
        assert_eq!(host_target("greeter", "greeter_plugin::db"), "greeter::db");
        assert_eq!(host_target("greeter", "audit"), "greeter");
        assert_eq!(host_target("greeter", "a::b::c"), "greeter::b::c");
    }
}
