//! `hvnet install`: the drop-in files that keep NetworkManager, systemd-networkd and udev
//! consumers off the VF, written under a configurable root (normally `/`).
//!
//! The Debian package ships the same files, without VF name patterns, in the vendor
//! directories under /usr/lib (packaging/linux/); what `hvnet install` writes goes to /etc,
//! where a file of the same name overrides the vendor one for all three consumers.
//!
//! The match is driver-agnostic: any net device that the kernel has enslaved (IFF_SLAVE,
//! which netvsc and net_failover set before userspace sees the VF) and that is not itself a
//! synthetic NIC, plus any name pattern the administrator configured for VFs.

use std::path::{Path, PathBuf};

/// The first lines of every file: where it comes from and how the two copies relate.
const HEADER: &str =
    "# hvnet: keep network managers off SR-IOV VFs. The hvnet package installs this\n\
     # file under /usr/lib; `hvnet install` writes it (with local VF name patterns) under\n\
     # /etc, which overrides the /usr/lib copy.\n";

/// The udev property hvnet sets on a VF.
pub const UNMANAGED_PROPERTY: &str = "HVNET_UNMANAGED_VF";

/// Where each file goes, relative to the root.
pub const UDEV_RULE: &str = "etc/udev/rules.d/10-hvnet-unmanaged-vf.rules";
pub const NETWORKD_FILE: &str = "etc/systemd/network/01-hvnet-unmanaged-vf.network";
pub const NM_CONF: &str = "etc/NetworkManager/conf.d/99-hvnet-unmanaged-vf.conf";

/// Writing a drop-in failed.
#[derive(Debug, thiserror::Error)]
#[error("install: writing {path}: {source}")]
pub struct InstallError {
    pub path: PathBuf,
    pub source: std::io::Error,
}

/// The udev rule: mark enslaved non-synthetic NICs and configured VF names unmanaged, for
/// udev, networkd (`ID_NET_MANAGED_BY`) and NetworkManager (`NM_UNMANAGED`).
pub fn udev_rule(vf_patterns: &[String]) -> String {
    let set = format!(
        "ENV{{{UNMANAGED_PROPERTY}}}=\"1\", ENV{{ID_NET_MANAGED_BY}}=\"unmanaged\", ENV{{NM_UNMANAGED}}=\"1\""
    );
    let mut s = String::from(HEADER);
    s += "# A VF is an enslaved NIC that is not itself a synthetic one: IFF_SLAVE (0x800) is\n\
          # set by hv_netvsc/net_failover before the VF is exposed to userspace.\n";
    s += &format!(
        "SUBSYSTEM==\"net\", ACTION!=\"remove\", DRIVERS!=\"hv_netvsc|virtio_net\", ATTR{{flags}}==\"0x?[89ABCDEFabcdef]??\", {set}\n"
    );
    for p in vf_patterns {
        s += &format!("SUBSYSTEM==\"net\", ACTION!=\"remove\", KERNEL==\"{p}\", {set}\n");
    }
    s
}

/// The networkd drop-in: leave anything udev marked alone.
pub fn networkd_file() -> String {
    format!("{HEADER}[Match]\nProperty={UNMANAGED_PROPERTY}=1\n\n[Link]\nUnmanaged=yes\n")
}

/// The NetworkManager drop-in: unmanaged by the udev mark and by configured names.
pub fn nm_conf(vf_patterns: &[String]) -> String {
    let mut specs = vec![format!("udev-property:{UNMANAGED_PROPERTY}=1")];
    specs.extend(vf_patterns.iter().map(|p| format!("interface-name:{p}")));
    format!("{HEADER}[keyfile]\nunmanaged-devices={}\n", specs.join(";"))
}

/// Write all three files under `root`; returns the paths written.
pub fn install(root: &Path, vf_patterns: &[String]) -> Result<Vec<PathBuf>, InstallError> {
    let files = [
        (UDEV_RULE, udev_rule(vf_patterns)),
        (NETWORKD_FILE, networkd_file()),
        (NM_CONF, nm_conf(vf_patterns)),
    ];
    let mut written = Vec::new();
    for (rel, text) in files {
        let path = root.join(rel);
        let err = |source| InstallError {
            path: path.clone(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        std::fs::write(&path, text).map_err(err)?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_have_the_expected_contents() {
        let dir = tempfile::tempdir().unwrap();
        let paths = install(dir.path(), &["vf*".to_string()]).unwrap();
        assert_eq!(paths.len(), 3);
        let udev = std::fs::read_to_string(dir.path().join(UDEV_RULE)).unwrap();
        assert!(udev.contains("ATTR{flags}==\"0x?[89ABCDEFabcdef]??\""));
        assert!(udev.contains("DRIVERS!=\"hv_netvsc|virtio_net\""));
        assert!(udev.contains("KERNEL==\"vf*\", ENV{HVNET_UNMANAGED_VF}=\"1\", ENV{ID_NET_MANAGED_BY}=\"unmanaged\", ENV{NM_UNMANAGED}=\"1\""));
        assert_eq!(
            udev.lines().filter(|l| l.starts_with("SUBSYSTEM")).count(),
            2
        );
        let nd = std::fs::read_to_string(dir.path().join(NETWORKD_FILE)).unwrap();
        assert_eq!(
            nd,
            format!("{HEADER}[Match]\nProperty=HVNET_UNMANAGED_VF=1\n\n[Link]\nUnmanaged=yes\n")
        );
        let nm = std::fs::read_to_string(dir.path().join(NM_CONF)).unwrap();
        assert!(udev.starts_with(HEADER) && nm.starts_with(HEADER));
        assert!(nm.ends_with(
            "[keyfile]\nunmanaged-devices=udev-property:HVNET_UNMANAGED_VF=1;interface-name:vf*\n"
        ));
    }

    #[test]
    fn unwritable_root_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plain-file");
        std::fs::write(&file, "x").unwrap();
        let err = install(&file, &[]).unwrap_err();
        assert!(err.to_string().contains("plain-file/etc"), "{err}");
    }
}
