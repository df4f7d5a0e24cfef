//! Scratch directories for the served FreeBSD userland and the compare harness.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

/// A path under the temporary directory that no other call in any process uses
/// (`PREFIX-PID-N`), with anything left there by an earlier process of the same pid removed.
pub fn fresh_temp_dir(prefix: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}
