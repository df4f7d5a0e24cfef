//! Interface packet counters as the kernel exports them in sysfs
//! (`class/net/IFACE/statistics/{rx,tx}_packets`), for the daemon's metrics. Plain files:
//! builds and is tested everywhere.

use std::path::Path;

/// One interface's packet counters; `None` where the kernel does not say.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Packets {
    pub rx: Option<u64>,
    pub tx: Option<u64>,
}

fn counter(sysfs: &Path, iface: &str, name: &str) -> Option<u64> {
    let f = sysfs
        .join("class/net")
        .join(iface)
        .join("statistics")
        .join(name);
    std::fs::read_to_string(f).ok()?.trim().parse().ok()
}

/// The packet counters of `iface` under the sysfs root `sysfs` (normally `/sys`).
pub fn packets(sysfs: &Path, iface: &str) -> Packets {
    Packets {
        rx: counter(sysfs, iface, "rx_packets"),
        tx: counter(sysfs, iface, "tx_packets"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_read_from_statistics() {
        let root = tempfile::tempdir().unwrap();
        let stats = root.path().join("class/net/hn0/statistics");
        std::fs::create_dir_all(&stats).unwrap();
        std::fs::write(stats.join("rx_packets"), "1234\n").unwrap();
        std::fs::write(stats.join("tx_packets"), "garbage\n").unwrap();
        assert_eq!(
            packets(root.path(), "hn0"),
            Packets {
                rx: Some(1234),
                tx: None
            }
        );
        assert_eq!(packets(root.path(), "vf0"), Packets::default());
    }
}
