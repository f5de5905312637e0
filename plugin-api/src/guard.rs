//! Panic containment. Every call from the host into plugin code runs through [`catch`], inside the plugin:
//! a panic that reached an abi_stable `extern "C"` shim would abort the whole server (docs/ARCHITECTURE.md §8.5).
//!
//! A plugin library carries its own copy of std, so the host's panic hook never sees plugin panics. While a
//! call is guarded, this plugin's hook records the panic's location instead of printing it; the message goes
//! back to the host, which logs it once, with the plugin's name and the request.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

thread_local! {
    /// Whether the current thread is inside [`catch`] (the hook then stays quiet).
    static GUARDED: Cell<bool> = const { Cell::new(false) };
    /// Where the last guarded panic on this thread happened.
    static LOCATION: RefCell<Option<String>> = const { RefCell::new(None) };
}

static INSTALL_HOOK: Once = Once::new();

/// Installs (once per copy of std) a panic hook that is silent for guarded calls and defers to the previous
/// hook otherwise.
fn install_hook() {
    INSTALL_HOOK.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if GUARDED.get() {
                let location = info.location().map(|l| l.to_string());
                LOCATION.with_borrow_mut(|slot| *slot = location);
            } else {
                previous(info);
            }
        }));
    });
}

/// Runs `f`, turning a panic into its message (`"<message> (at src/lib.rs:7:9)"`).
pub(crate) fn catch<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    install_hook();
    let was_guarded = GUARDED.replace(true);
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    GUARDED.set(was_guarded);
    result.map_err(|payload| {
        let message = payload_message(payload.as_ref());
        // Dropping a payload runs plugin code too (a `Drop` impl could panic): keep it inside the guard.
        let _ = panic::catch_unwind(AssertUnwindSafe(move || drop(payload)));
        match LOCATION.take() {
            Some(location) => format!("{message} (at {location})"),
            None => message,
        }
    })
}

fn payload_message(payload: &(dyn Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "panic with a non-string payload".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::catch;

    #[test]
    fn a_panic_becomes_its_message_with_location() {
        let err = catch(|| panic!("boom {}", 7)).unwrap_err();
        assert!(err.starts_with("boom 7 (at "), "{err}");
        assert!(err.contains("guard.rs"), "{err}");
        assert_eq!(catch(|| 5), Ok(5));
    }
}
