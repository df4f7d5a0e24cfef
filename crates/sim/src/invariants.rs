//! Invariants checked after every instant of virtual time. A violation is
//! counted once when it appears (not again while it persists).

use std::collections::BTreeMap;

use crate::world::{IfClass, World};

/// Every invariant that does not hold right now, as `kind: detail`.
pub fn violations(w: &World) -> Vec<String> {
    let mut v = Vec::new();
    // The hn/VF registration is consistent and by MAC.
    for (idx, hn) in &w.vfmap {
        let Some(vf) = w.ifnets.values().find(|i| i.index == *idx) else {
            v.push(format!("vfmap: slot {idx} names a departed ifnet"));
            continue;
        };
        if w.hns.get(hn).and_then(|s| s.vf.as_deref()) != Some(vf.name.as_str()) {
            v.push(format!("vfmap: {}:{hn} disagrees with dev.hn.vf", vf.name));
        }
        let orig = vf.saved_mac.unwrap_or(vf.mac);
        if w.ifnets
            .get(hn)
            .is_some_and(|h| h.saved_mac.unwrap_or(h.mac) != orig)
        {
            v.push(format!("vfmap: {} and {hn} have different MACs", vf.name));
        }
    }
    // A VF never holds IP configuration (the synthetic NIC or its lagg does).
    for i in w.ifnets.values().filter(|i| i.class == IfClass::Vf) {
        if !i.ipv4.is_empty() || i.ipv6.iter().any(|n| !n.is_link_local()) {
            v.push(format!("vf-address: {} holds an IP address", i.name));
        }
    }
    // No address on two interfaces, except an address on its way from a synthetic
    // NIC to the lagg taking over its configuration (make before break): the lagg
    // holds it before it has a port, and the NIC keeps it until it is the lagg's port.
    let handover = |a: &str, b: &str| {
        let (a, b) = (&w.ifnets[a], &w.ifnets[b]);
        let (hn, lagg) = match (&a.class, &b.class) {
            (IfClass::Hn, IfClass::Lagg) => (a, b),
            (IfClass::Lagg, IfClass::Hn) => (b, a),
            _ => return false,
        };
        hn.member_of.as_deref() == Some(lagg.name.as_str())
            || lagg.lagg.as_ref().is_some_and(|l| l.ports.is_empty())
    };
    let mut seen: BTreeMap<String, &str> = BTreeMap::new();
    for i in w.by_index() {
        if i.class == IfClass::Loopback {
            continue;
        }
        let addrs = i.ipv4.iter().map(|n| n.addr.to_string()).chain(
            i.ipv6
                .iter()
                .filter(|n| !n.is_link_local())
                .map(|n| n.addr.to_string()),
        );
        for a in addrs {
            if let Some(prev) = seen.insert(a.clone(), &i.name) {
                if !handover(prev, &i.name) {
                    v.push(format!("duplicate-address: {a} on {prev} and {}", i.name));
                }
            }
        }
    }
    // dhclient: one per interface, never on a VF or a lagg port.
    let mut per_if: BTreeMap<&str, u32> = BTreeMap::new();
    for c in w.dhclients.values() {
        *per_if.entry(c.iface.as_str()).or_default() += 1;
    }
    for (iface, n) in per_if {
        if n > 1 {
            v.push(format!("dhclient: {n} instances on {iface}"));
        }
        if let Some(i) = w.ifnets.get(iface) {
            if i.class == IfClass::Vf {
                v.push(format!("dhclient: running on VF {iface}"));
            }
            if let Some(l) = &i.member_of {
                v.push(format!("dhclient: running on {iface}, a port of {l}"));
            }
        }
    }
    // lagg ports run at the lagg's MTU.
    for l in w.ifnets.values().filter(|i| i.lagg.is_some()) {
        for p in &l.lagg.as_ref().expect("lagg").ports {
            if w.ifnets.get(p).is_some_and(|pi| pi.mtu != l.mtu) {
                v.push(format!("mtu: port {p} of {} has a different MTU", l.name));
            }
        }
    }
    // Transparent: an enabled VF datapath has a running VF.
    for st in w.hns.values() {
        if st.xpnt_enabled
            && !st
                .vf
                .as_ref()
                .and_then(|vf| w.ifnets.get(vf))
                .is_some_and(|i| i.running)
        {
            v.push(format!("xpnt: {} enabled without a running VF", st.name));
        }
    }
    v
}
