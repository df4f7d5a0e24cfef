//! What a run left wrong, found by generic checks on the run's record and the guest's final
//! state — never by scenario name. Three sources:
//!
//! - the simulator's invariants, checked after every instant (a VF holding an address, two
//!   DHCP clients on one interface, a DHCP client on a VF or a lagg port, ...);
//! - the run's accounting (connections broken);
//! - end-state checks against rc.conf: every address rc.conf (or the DHCP lease) gives hnX is
//!   on the interface that carries hnX's configuration (hnX itself, or the lagg hnX is a port
//!   of), nothing is left on a lagg port, a DHCP-configured NIC still has one DHCP client,
//!   configured routes exist, and a paired VF carries the traffic.

use std::collections::BTreeSet;
use std::net::IpAddr;

use hvnet_sim::world::{IfClass, World};
use hvnet_sim::RunResult;
use serde::Serialize;

/// One thing left wrong: a stable `kind` and a human `detail`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Problem {
    pub kind: &'static str,
    pub detail: String,
}

impl Problem {
    pub fn new(kind: &'static str, detail: impl Into<String>) -> Self {
        Problem {
            kind,
            detail: detail.into(),
        }
    }
}

/// Every problem of a finished run, deduplicated, in a stable order: the run's own record
/// first (in time order), then the end state.
pub fn of_run(r: &RunResult, rc_conf: &str) -> Vec<Problem> {
    let mut out = Vec::new();
    for v in &r.summary.violations {
        out.push(from_violation(v));
    }
    for e in r.timeline.iter().filter(|e| e.source == "conn") {
        if let Some(why) = e.text.strip_prefix("connection broken: ") {
            out.push(Problem::new(
                "connection-broken",
                format!("at {:.3}s: {why}", e.at.as_secs_f64()),
            ));
        }
    }
    out.extend(end_state(&r.world, rc_conf));
    let mut seen = BTreeSet::new();
    out.retain(|p| seen.insert((p.kind, p.detail.clone())));
    out
}

/// An invariant violation (`T: kind: detail`, as the simulator lists them) as a problem.
fn from_violation(v: &str) -> Problem {
    let body = v.split_once("s: ").map_or(v, |(_, b)| b);
    let kind = if body.starts_with("vf-address:") {
        "address-on-vf"
    } else if body.starts_with("duplicate-address:") {
        "duplicate-address"
    } else if body.starts_with("dhclient:") && body.contains(" instances on ") {
        "two-dhcp-clients"
    } else if body.starts_with("dhclient: running on VF") {
        "dhcp-on-vf"
    } else if body.starts_with("dhclient:") && body.contains(", a port of ") {
        "dhcp-on-lagg-port"
    } else if body.starts_with("mtu:") {
        "mtu-mismatch"
    } else if body.starts_with("xpnt:") {
        "vf-enabled-without-vf"
    } else if body.starts_with("vfmap:") {
        "vf-map"
    } else {
        "invariant"
    };
    let detail = body.split_once(": ").map_or(body, |(_, d)| d);
    Problem::new(
        kind,
        format!(
            "{detail} (at {})",
            v.split_once(": ").map_or("?", |(t, _)| t)
        ),
    )
}

/// The interface that carries `hn`'s configuration: its lagg, or itself.
fn home<'a>(w: &'a World, hn: &'a str) -> &'a str {
    w.ifnet(hn)
        .and_then(|i| i.member_of.as_deref())
        .unwrap_or(hn)
}

fn holders(w: &World, a: IpAddr) -> Vec<String> {
    w.holders(a)
}

/// Checks on the guest's final state against rc.conf.
pub fn end_state(w: &World, rc_conf: &str) -> Vec<Problem> {
    let rc = hvnet_sim::agent::load_rc(rc_conf);
    let mut out = Vec::new();
    for hn in w.hns.keys() {
        let Some(hn_if) = w.ifnet(hn) else { continue };
        let cfg = hvnet_vf::netconf::from_rcconf(&rc, hn);
        let home = home(w, hn);
        let mac = hn_if.saved_mac.unwrap_or(hn_if.mac);
        // The addresses rc.conf (or the DHCP server) gives hn.
        let mut want: Vec<(IpAddr, String)> = Vec::new();
        for a in &cfg.ipv4 {
            want.push((IpAddr::V4(a.addr), format!("rc.conf for {hn}")));
        }
        for a in &cfg.ipv6 {
            want.push((IpAddr::V6(a.addr), format!("rc.conf for {hn}")));
        }
        for p in &cfg.ipv6_eui64 {
            let a = hvnet_vf::netconf::eui64(p, mac);
            want.push((IpAddr::V6(a.addr), format!("rc.conf for {hn}")));
        }
        if cfg.dhcp && w.dhcp.enabled {
            if let Some(l) = w.dhcp.leases.get(&mac) {
                want.push((IpAddr::V4(*l), format!("the DHCP lease of {hn}")));
            }
        }
        for (a, src) in &want {
            let on = holders(w, *a);
            if on.iter().any(|h| h == home) {
                continue;
            }
            if on.is_empty() {
                out.push(Problem::new(
                    "address-missing",
                    format!("{a} ({src}) is on no interface; it belongs on {home}"),
                ));
            } else if on.iter().any(|h| h != hn) {
                out.push(Problem::new(
                    "address-misplaced",
                    format!("{a} ({src}) is on {}, not on {home}", on.join(", ")),
                ));
            }
        }
        // Nothing stays on hn once it is a lagg port.
        if home != hn {
            for a in &hn_if.ipv4 {
                out.push(Problem::new(
                    "ipv4-left-on-port",
                    format!("{} left on {hn}, a port of {home}", a.addr),
                ));
            }
            for a in hn_if.ipv6.iter().filter(|a| !a.is_link_local()) {
                out.push(Problem::new(
                    "ipv6-left-on-port",
                    format!("IPv6 {} left on {hn}, a port of {home}", a.addr),
                ));
            }
        }
        // DHCP: exactly one client for this NIC, on the interface holding its configuration.
        let vf = w.hns.get(hn).and_then(|s| s.vf.clone());
        let family: Vec<&str> = [Some(hn.as_str()), vf.as_deref(), Some(home)]
            .into_iter()
            .flatten()
            .collect();
        let mut clients: Vec<&str> = w
            .dhclients
            .values()
            .map(|c| c.iface.as_str())
            .filter(|i| family.contains(i))
            .collect();
        clients.sort_unstable();
        if clients.len() > 1 {
            out.push(Problem::new(
                "two-dhcp-clients",
                format!(
                    "dhclient on {} for one NIC at the end",
                    clients.join(" and ")
                ),
            ));
        }
        if cfg.dhcp && w.dhcp.enabled && !clients.contains(&home) {
            out.push(Problem::new(
                "no-dhcp-client",
                format!(
                    "no dhclient on {home} at the end ({hn} is DHCP-configured; the lease is not renewed)"
                ),
            ));
        }
        for c in clients
            .iter()
            .filter(|c| w.ifnet(c).is_some_and(|i| i.class == IfClass::Vf))
        {
            out.push(Problem::new(
                "dhcp-on-vf",
                format!("dhclient on VF {c} at the end"),
            ));
        }
        // Configured routes.
        for r in &cfg.routes {
            let ok = w
                .routes
                .iter()
                .any(|x| x.dest == r.dest && x.gateway == r.gateway);
            if !ok {
                let gw = r.gateway.map(|g| format!(" via {g}")).unwrap_or_default();
                out.push(Problem::new(
                    "route-missing",
                    format!("route {}{gw} (rc.conf for {hn}) is gone", r.dest),
                ));
            }
        }
        // A paired, working VF carries the traffic.
        if let Some(vf) = vf {
            out.extend(vf_unused(w, hn, &vf));
        }
    }
    for i in w.ifnets.values().filter(|i| i.class == IfClass::Vf) {
        let v6: Vec<_> = i.ipv6.iter().filter(|a| !a.is_link_local()).collect();
        if !i.ipv4.is_empty() || !v6.is_empty() {
            out.push(Problem::new(
                "address-on-vf",
                format!("{} holds an address at the end", i.name),
            ));
        }
    }
    out
}

fn vf_unused(w: &World, hn: &str, vf: &str) -> Option<Problem> {
    let vf_if = w.ifnet(vf)?;
    if !vf_if.vf.as_ref().is_some_and(|h| h.hw_ok) {
        return None;
    }
    let st = w.hns.get(hn)?;
    let why = if w.vf_transparent {
        let hn_up = w.ifnet(hn).is_some_and(|i| i.up);
        (hn_up && !st.xpnt_enabled).then(|| format!("{hn}'s transparent VF {vf} is not enabled"))
    } else if !st.rxvf {
        Some(format!(
            "{vf} (paired with {hn}) is down: traffic stays on {hn}"
        ))
    } else {
        let lagg = w.ifnet(hn).and_then(|i| i.member_of.clone());
        match (lagg, &vf_if.member_of) {
            (Some(l), Some(m)) if &l == m => None,
            (Some(l), _) => Some(format!("{vf} is up but not a port of {l}")),
            (None, _) => Some(format!(
                "{vf} is up but {hn} is in no lagg: frames the VF receives are dropped"
            )),
        }
    };
    why.map(|d| Problem::new("vf-unused", d))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hvnet_sim::{builtin, RunOptions};

    fn run(name: &str, factory: hvnet_sim::AgentFactory) -> (RunResult, String) {
        let sc = builtin::get(name).unwrap();
        let rc = sc.rc_conf.clone();
        let r = hvnet_sim::run(sc, RunOptions::default(), factory).unwrap();
        (r, rc)
    }

    fn kinds(p: &[Problem]) -> Vec<&'static str> {
        p.iter().map(|p| p.kind).collect()
    }

    #[test]
    fn violations_map_to_kinds() {
        let p = from_violation("90.210s: dhclient: running on hn0, a port of lagg0");
        assert_eq!(p.kind, "dhcp-on-lagg-port");
        assert_eq!(p.detail, "running on hn0, a port of lagg0 (at 90.210s)");
        for (v, k) in [
            (
                "1.000s: vf-address: mce0 holds an IP address",
                "address-on-vf",
            ),
            ("1.000s: dhclient: 2 instances on hn0", "two-dhcp-clients"),
            ("1.000s: dhclient: running on VF mce0", "dhcp-on-vf"),
            (
                "1.000s: duplicate-address: 10.0.0.4 on hn0 and lagg0",
                "duplicate-address",
            ),
            (
                "1.000s: mtu: port mce0 of lagg0 has a different MTU",
                "mtu-mismatch",
            ),
            ("1.000s: something new", "invariant"),
        ] {
            assert_eq!(from_violation(v).kind, k, "{v}");
        }
    }

    #[test]
    fn a_clean_run_has_no_problems() {
        let (r, rc) = run("live-migration-nt", hvnet_sim::manager_agent());
        assert!(r.summary.passed);
        assert_eq!(of_run(&r, &rc), Vec::new());
        // Transparent: the kernel moves the datapath and the scripts have nothing to break.
        let (r, rc) = run("boot-vf", hvnet_sim::original_scripts());
        assert!(r.summary.passed);
        assert_eq!(of_run(&r, &rc), Vec::new());
    }

    #[test]
    fn a_vf_nobody_brings_up_is_unused() {
        // Non-transparent, no agent: the VF stays down; hn0 keeps its lease and dhclient.
        let (r, rc) = run("boot-vf-nt", hvnet_sim::no_agent());
        let p = of_run(&r, &rc);
        assert_eq!(kinds(&p), vec!["vf-unused"], "{p:?}");
        assert!(p[0].detail.starts_with("mce0 (paired with hn0) is down"));
    }

    #[test]
    fn end_state_follows_the_configuration_into_the_lagg() {
        let (r, rc) = run("ipv6-nt", hvnet_sim::original_scripts());
        let p = end_state(&r.world, &rc);
        assert!(p.contains(&Problem::new(
            "address-missing",
            "2001:db8::4 (rc.conf for hn0) is on no interface; it belongs on lagg0"
        )));
        assert!(kinds(&p).contains(&"no-dhcp-client"));
        // IPv6 (not link-local) and IPv4 left on a port are reported; a link-local is not.
        let mut w = r.world.clone();
        let hn0 = w.ifnets.get_mut("hn0").unwrap();
        hn0.ipv6
            .push(hvnet_vf::Ipv6Net::new("2001:db8::4".parse().unwrap(), 64));
        hn0.ipv6
            .push(hvnet_vf::Ipv6Net::new("fe80::1".parse().unwrap(), 64));
        hn0.ipv4
            .push(hvnet_vf::Ipv4Net::new("10.0.0.9".parse().unwrap(), 24));
        let p = end_state(&w, &rc);
        let left: Vec<&Problem> = p
            .iter()
            .filter(|p| p.kind.ends_with("left-on-port"))
            .collect();
        assert_eq!(left.len(), 2, "{p:?}");
        assert_eq!(
            left[1].detail,
            "IPv6 2001:db8::4 left on hn0, a port of lagg0"
        );
        // The address is on hn0 now: left on the port, not missing.
        assert!(!p.iter().any(|p| p.kind == "address-missing"));
    }
}
