//! File names shared by every rule and decision read from them.
//!
//! A decision names the file of its rule. Interned names are `&'static str`, so copying one
//! into a decision is a pointer copy, not an atomic reference-count update per event. Each
//! distinct name is stored once for the life of the process; a daemon reloading the same
//! files adds nothing.

use std::collections::BTreeSet;
use std::sync::Mutex;

static NAMES: Mutex<BTreeSet<&'static str>> = Mutex::new(BTreeSet::new());

/// The one stored copy of `name`.
pub(crate) fn file_name(name: &str) -> &'static str {
    // A panic while holding the lock cannot leave the set half-updated.
    let mut names = NAMES.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(&stored) = names.get(name) {
        return stored;
    }
    let stored: &'static str = Box::leak(name.into());
    names.insert(stored);
    stored
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_name_is_stored_once() {
        let a = file_name("/etc/devd/intern-test.conf");
        let b = file_name(&String::from("/etc/devd/intern-test.conf"));
        assert!(std::ptr::eq(a, b));
        assert_ne!(file_name("/etc/devd/other.conf"), a);
    }
}
