//! `hyperv_vfup.hnX` overrides: an administrator's program in the hook directory
//! (`vfup_dir`) that takes over one synthetic NIC's VF handling, as with FreeBSD's own
//! hyperv_vfup. The manager looks for them on every step.

use std::collections::BTreeSet;
use std::path::Path;

use hvnet_vf::OverrideSource;

/// The file name prefix of an override program.
pub const PREFIX: &str = "hyperv_vfup.";

/// The override programs in a directory, read on every step.
#[derive(Debug, Clone, Copy, Default)]
pub struct OverrideDir;

/// The synthetic NICs with an override program in `dir` (none when it cannot be read).
pub fn scan(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_prefix(PREFIX))
                .filter(|n| !n.is_empty())
                .map(str::to_string)
        })
        .collect()
}

impl OverrideSource for OverrideDir {
    fn overrides(&self, vfup_dir: &str) -> BTreeSet<String> {
        scan(Path::new(vfup_dir))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_are_found_by_file_name() {
        let dir = std::env::temp_dir().join(format!("hvnet-overrides-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        for f in ["hyperv_vfup.hn1", "hyperv_vfup.", "other"] {
            std::fs::write(dir.join(f), "").unwrap();
        }
        let found = OverrideDir.overrides(dir.to_str().unwrap());
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(found.into_iter().collect::<Vec<_>>(), ["hn1"]);
        assert!(OverrideDir.overrides("/nonexistent/hvnet").is_empty());
    }
}
