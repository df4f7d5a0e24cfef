//! Which interface is a synthetic NIC, which is a VF, and which pairs belong together.
//!
//! Roles come from the driver (`/sys/class/net/IF/device/driver`) or, when the driver says
//! nothing useful (veth in the lab, virtio + passthrough), from configured name patterns.
//! Pairs are made by MAC: a VF pairs with the synthetic NIC that has the same non-zero MAC.

/// The role of an interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Synthetic,
    Vf,
    Other,
}

/// Drivers of synthetic (paravirtual) NICs.
pub const SYNTHETIC_DRIVERS: &[&str] = &["hv_netvsc", "virtio_net"];
/// Known VF drivers. Pairing does not depend on this list (any non-synthetic NIC with a
/// synthetic NIC's MAC is its VF); it only helps name a VF with no synthetic sibling.
pub const VF_DRIVERS: &[&str] = &["mlx4_core", "mlx5_core", "mana", "ixgbevf", "iavf", "ice"];

/// Name patterns, `*` matching any run of characters (e.g. `hn*`, `vf*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolePatterns {
    pub synthetic: Vec<String>,
    pub vf: Vec<String>,
}

impl Default for RolePatterns {
    fn default() -> Self {
        RolePatterns {
            synthetic: vec!["hn*".into()],
            vf: vec!["vf*".into()],
        }
    }
}

/// Shell-style match with `*` only (interface names have no other specials worth supporting).
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == name;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !name.starts_with(first) || name.len() < first.len() + last.len() || !name.ends_with(last) {
        return false;
    }
    let mut rest = &name[first.len()..name.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

/// The role of `name`, given its driver (if any) and the patterns. The driver wins.
pub fn role(name: &str, driver: Option<&str>, patterns: &RolePatterns) -> Role {
    if let Some(d) = driver {
        if SYNTHETIC_DRIVERS.contains(&d) {
            return Role::Synthetic;
        }
        if VF_DRIVERS.contains(&d) {
            return Role::Vf;
        }
    }
    if patterns.synthetic.iter().any(|p| glob_match(p, name)) {
        Role::Synthetic
    } else if patterns.vf.iter().any(|p| glob_match(p, name)) {
        Role::Vf
    } else {
        Role::Other
    }
}

/// One interface as pairing sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub name: String,
    pub mac: [u8; 6],
    pub role: Role,
    /// The name of the `master` link, if any.
    pub master: Option<String>,
}

/// How a pair is steered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PairMode {
    /// The kernel joined them (netvsc/net_failover: the VF's master is the synthetic NIC or
    /// a failover master): hvnet guards and observes.
    KernelTransparent,
    /// No kernel pairing: hvnet steers with tc.
    Steered,
}

/// A synthetic NIC with the VF that shares its MAC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    pub synthetic: String,
    pub vf: String,
    pub mode: PairMode,
}

/// Pair VFs with synthetic NICs by MAC. A VF candidate may also be an `Other` interface with
/// a synthetic NIC's MAC (driver-agnostic matching); zero MACs never pair.
pub fn pairs(cands: &[Candidate]) -> Vec<Pair> {
    let mut out = Vec::new();
    for s in cands
        .iter()
        .filter(|c| c.role == Role::Synthetic && c.mac != [0; 6])
    {
        let vf = cands
            .iter()
            .find(|c| c.name != s.name && c.mac == s.mac && c.role != Role::Synthetic);
        if let Some(v) = vf {
            let mode = if v.master.is_some() {
                PairMode::KernelTransparent
            } else {
                PairMode::Steered
            };
            out.push(Pair {
                synthetic: s.name.clone(),
                vf: v.name.clone(),
                mode,
            });
        }
    }
    out
}

/// The driver name of `iface` from sysfs under `sysfs_root` (normally `/sys`).
pub fn driver_of(sysfs_root: &std::path::Path, iface: &str) -> Option<String> {
    let link = sysfs_root
        .join("class/net")
        .join(iface)
        .join("device/driver");
    let target = std::fs::read_link(link).ok()?;
    target.file_name().map(|f| f.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn c(name: &str, mac: u8, role: Role, master: Option<&str>) -> Candidate {
        Candidate {
            name: name.into(),
            mac: [2, 0, 0, 0, 0, mac],
            role,
            master: master.map(str::to_string),
        }
    }

    #[test]
    fn globbing() {
        assert!(glob_match("hn*", "hn0"));
        assert!(glob_match("hn*", "hn"));
        assert!(!glob_match("hn*", "ahn0"));
        assert!(glob_match("*0", "vf0"));
        assert!(glob_match("en*s*", "enP1s2"));
        assert!(!glob_match("en*s*x", "enP1s2"));
        assert!(glob_match("eth0", "eth0"));
        assert!(!glob_match("eth0", "eth01"));
    }

    #[test]
    fn driver_wins_over_name() {
        let p = RolePatterns::default();
        assert_eq!(role("vf0", Some("hv_netvsc"), &p), Role::Synthetic);
        assert_eq!(role("eth1", Some("mlx5_core"), &p), Role::Vf);
        assert_eq!(role("hn0", Some("veth"), &p), Role::Synthetic);
        assert_eq!(role("vf3", None, &p), Role::Vf);
        assert_eq!(role("lo", None, &p), Role::Other);
    }

    #[test]
    fn pairs_by_mac_and_mode_by_master() {
        let cands = vec![
            c("eth0", 1, Role::Synthetic, None),
            c("enP1s1", 1, Role::Vf, Some("eth0")),
            c("hn0", 2, Role::Synthetic, None),
            c("vf0", 2, Role::Other, None),
            c("hn1", 3, Role::Synthetic, None),
            c("br0", 4, Role::Other, None),
        ];
        assert_eq!(
            pairs(&cands),
            vec![
                Pair {
                    synthetic: "eth0".into(),
                    vf: "enP1s1".into(),
                    mode: PairMode::KernelTransparent
                },
                Pair {
                    synthetic: "hn0".into(),
                    vf: "vf0".into(),
                    mode: PairMode::Steered
                },
            ]
        );
    }

    #[test]
    fn zero_macs_and_two_synthetics_never_pair() {
        let mut a = c("hn0", 0, Role::Synthetic, None);
        a.mac = [0; 6];
        let mut b = c("vf0", 0, Role::Vf, None);
        b.mac = [0; 6];
        assert!(pairs(&[a, b]).is_empty());
        assert!(pairs(&[
            c("hn0", 1, Role::Synthetic, None),
            c("hn1", 1, Role::Synthetic, None)
        ])
        .is_empty());
    }

    proptest! {
        #[test]
        fn star_matches_everything(name in "[a-z0-9]{0,15}") {
            prop_assert!(glob_match("*", &name));
            prop_assert!(glob_match(&name, &name));
        }
    }
}
