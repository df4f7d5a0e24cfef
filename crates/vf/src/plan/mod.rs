//! The planner: from what is ([`SystemView`]), what rc.conf wants
//! ([`NetConfigSource`]) and the manager's timing decisions ([`PlanInput`]),
//! compute the ops that make the system right. Pure and deterministic.
//!
//! Rules (spec hn.md §3, §5, §7; DESIGN.md "Modes"):
//! - The IP configuration of a pair lives on exactly one interface, the
//!   *holder*: the aggregate in non-transparent mode once one exists, else
//!   the synthetic NIC. It is never on a VF.
//! - Non-transparent: a failover aggregate `lagg<unit>` (another name if that
//!   one is taken by something else) with the synthetic NIC added first
//!   (primary) and the VF; addresses, aliases, IPv6, routes and the DHCP
//!   client move to it completely, make before break: the aggregate holds
//!   the addresses before hn becomes its port and before they leave hn, and
//!   routes move in one step, so no address or route is ever absent. Kept
//!   when the VF leaves.
//! - Transparent: the kernel steers; the VF is guarded (no addresses, no
//!   DHCP, MTU of its synthetic NIC).
//! - Steered: steering on only while the VF is eligible, up and has link;
//!   off first, before anything else, otherwise.
//! - Ops are grouped in [`Unit`]s (one per pair, one for the daemons); a
//!   failed op stops its unit only.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use serde::Serialize;

use crate::config::{ManagerConfig, Mode};
use crate::model::{
    AggregateProto, Daemon, EgressRedirect, GateState, Interface, IpNet, Op, Route, SteerPair,
    SystemView,
};
use crate::netconf::{eui64, IfConfig, NetConfigSource};

/// Decisions the planner does not make itself (they need time or I/O).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlanInput {
    /// VFs whose delay / readiness gate / hold-down allow them to be used.
    pub eligible: BTreeSet<String>,
    /// VFs announced to leave soon (planned switch): stop using them now.
    pub leaving: BTreeSet<String>,
    /// Synthetic NICs with a `hyperv_vfup.<name>` override program.
    pub overrides: BTreeSet<String>,
    /// synthetic -> VF for which the override already ran.
    pub hooks_done: BTreeMap<String, String>,
    /// Daemons that may be (re)started now (back-off elapsed).
    pub daemon_start_allowed: BTreeSet<Daemon>,
}

/// Ops that belong together; applied in order, stopped at the first error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unit {
    /// `pair:hn0`, `vf:mce3`, `daemons`, `steering`.
    pub key: String,
    pub ops: Vec<Op>,
}

/// Which path carries a pair's traffic, as far as the view shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DataPath {
    Synthetic,
    Vf,
    /// The kernel sends the pair's outgoing packets somewhere they cannot leave (a steering
    /// redirect to a VF that is gone or down): they are dropped.
    Dropped,
}

/// What the planner concluded about one synthetic NIC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PairPlan {
    pub synthetic: String,
    /// The VF used with it (kernel-paired, or by MAC in steered mode).
    pub vf: Option<String>,
    /// More VFs claiming the same synthetic NIC (ignored and guarded).
    pub extra_vfs: Vec<String>,
    /// The aggregate in use or about to be created (non-transparent).
    pub aggregate: Option<String>,
    /// Where the IP configuration lives (after the plan).
    pub holder: String,
    pub path: DataPath,
    /// The VF may be used (delay, gate and hold-down passed).
    pub vf_eligible: bool,
    /// Managed by an administrator's hyperv_vfup override.
    pub overridden: bool,
    /// DHCP wanted on the holder.
    pub dhcp: bool,
    /// SYNCDHCP: the pair counts as configured only with a lease.
    pub sync_dhcp: bool,
    /// Things the manager will not or cannot fix.
    pub problems: Vec<String>,
}

/// The result of planning.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub mode: Mode,
    pub units: Vec<Unit>,
    pub pairs: Vec<PairPlan>,
    /// VFs with a synthetic NIC's MAC that the kernel did not pair.
    pub unpaired_vfs: Vec<String>,
}

impl Plan {
    /// All ops in application order.
    pub fn ops(&self) -> impl Iterator<Item = &Op> {
        self.units.iter().flat_map(|u| u.ops.iter())
    }

    /// True when nothing needs doing.
    pub fn is_empty(&self) -> bool {
        self.units.iter().all(|u| u.ops.is_empty())
    }
}

/// The numeric unit of an interface name (`hn12` -> 12), 0 if none.
pub fn unit_of(name: &str) -> u32 {
    let digits: String = name
        .chars()
        .rev()
        .take_while(char::is_ascii_digit)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    digits.parse().unwrap_or(0)
}

/// Which VFs belong to which synthetic NIC, and which VFs share a
/// synthetic NIC's MAC without being paired.
pub fn pairing(view: &SystemView, mode: Mode) -> (BTreeMap<String, Vec<String>>, Vec<String>) {
    let mut pairs: BTreeMap<String, Vec<&Interface>> = BTreeMap::new();
    let mut unpaired = Vec::new();
    for vf in view.interfaces.iter().filter(|i| i.is_vf()) {
        let hn = match mode {
            Mode::Steered => view
                .interfaces
                .iter()
                .filter(|i| i.is_synthetic() && !vf.mac.is_zero() && i.mac == vf.mac)
                .min_by_key(|i| (i.index, i.name.clone()))
                .map(|i| i.name.clone()),
            _ => view
                .platform
                .vf_map
                .get(&vf.name)
                .filter(|hn| view.interface(hn).is_some_and(Interface::is_synthetic))
                .cloned(),
        };
        match hn {
            Some(hn) => pairs.entry(hn).or_default().push(vf),
            None => {
                let same_mac = !vf.mac.is_zero()
                    && view
                        .interfaces
                        .iter()
                        .any(|i| i.is_synthetic() && i.mac == vf.mac);
                if same_mac {
                    unpaired.push(vf.name.clone());
                }
            }
        }
    }
    let map = pairs
        .into_iter()
        .map(|(hn, mut vfs)| {
            vfs.sort_by_key(|v| {
                (
                    view.platform.vf_map.get(&v.name) != Some(&hn),
                    v.index,
                    v.name.clone(),
                )
            });
            (hn, vfs.into_iter().map(|v| v.name.clone()).collect())
        })
        .collect();
    (map, unpaired)
}

/// Ops that keep a VF free of IP configuration: stop its DHCP clients,
/// remove its addresses (link-local IPv6 excepted).
fn guard_vf(view: &SystemView, vf: &Interface, ops: &mut Vec<Op>) {
    for c in view.dhcp_for(&vf.name) {
        ops.push(Op::StopDhcp {
            iface: vf.name.clone(),
            pid: c.pid,
        });
    }
    for a in vf.addresses() {
        if matches!(a, IpNet::V6(n) if n.is_link_local()) {
            continue;
        }
        ops.push(Op::RemoveAddress {
            iface: vf.name.clone(),
            addr: a,
        });
    }
}

/// `want` is installed, not counting routes through `stripped` (they are
/// being removed in this plan).
fn route_present(view: &SystemView, want: &Route, stripped: &str) -> bool {
    view.routes.iter().any(|r| {
        r.iface.as_deref() != Some(stripped)
            && r.dest == want.dest
            && r.gateway == want.gateway
            && (want.iface.is_none() || r.iface == want.iface)
    })
}

fn in_subnet_of(addrs: &[IpNet], route: &Route) -> bool {
    addrs.iter().any(|a| match (a, route.dest) {
        (IpNet::V4(n), IpNet::V4(d)) => {
            n.prefix == d.prefix && crate::netconf::v4_contains(n, d.addr)
        }
        (IpNet::V6(n), IpNet::V6(d)) => {
            n.prefix == d.prefix && crate::netconf::v6_contains(n, d.addr)
        }
        _ => false,
    })
}

/// What a synthetic NIC hands over to its aggregate, and the ops that take
/// it away from the NIC once the aggregate holds it (make before break).
struct Handover {
    /// Addresses the aggregate must hold before they leave the NIC.
    addrs: Vec<IpNet>,
    /// Routes through the NIC, to move onto the aggregate.
    routes: Vec<Route>,
    /// The NIC ran a DHCP client (the aggregate gets one).
    dhcp: bool,
    /// Stop the NIC's DHCP clients (dhclient leaves its address in place).
    stop_dhcp: Vec<Op>,
    /// Remove the NIC's addresses, once the aggregate holds them.
    remove_addrs: Vec<Op>,
}

fn handover(view: &SystemView, from: &Interface) -> Handover {
    let mut h = Handover {
        addrs: Vec::new(),
        routes: Vec::new(),
        dhcp: false,
        stop_dhcp: Vec::new(),
        remove_addrs: Vec::new(),
    };
    for c in view.dhcp_for(&from.name) {
        h.dhcp = true;
        h.stop_dhcp.push(Op::StopDhcp {
            iface: from.name.clone(),
            pid: c.pid,
        });
    }
    let addrs: Vec<IpNet> = from
        .addresses()
        .filter(|a| !matches!(a, IpNet::V6(n) if n.is_link_local()))
        .collect();
    for r in view
        .routes
        .iter()
        .filter(|r| r.iface.as_deref() == Some(from.name.as_str()))
    {
        // Connected routes of the moved addresses come back by themselves.
        if r.gateway.is_none() && in_subnet_of(&addrs, r) {
            continue;
        }
        if matches!(r.gateway, Some(IpAddr::V6(g)) if g.segments()[0] & 0xffc0 == 0xfe80) {
            // A link-local next hop is scoped to the old interface.
            continue;
        }
        if matches!(r.dest, IpNet::V6(d) if d.is_link_local()) {
            // fe80::/64 is the kernel's per-link route: every interface has its own.
            continue;
        }
        h.routes.push(r.clone());
    }
    for a in addrs {
        h.remove_addrs.push(Op::RemoveAddress {
            iface: from.name.clone(),
            addr: a,
        });
        h.addrs.push(a);
    }
    h
}

/// The ops that put a configuration on its holder, by kind, so a caller
/// can interleave them with a handover.
struct HolderOps {
    up: Vec<Op>,
    mtu: Vec<Op>,
    addrs: Vec<Op>,
    dhcp: Vec<Op>,
    routes: Vec<Op>,
    /// DHCP wanted on the holder.
    dhcp_wanted: bool,
}

impl HolderOps {
    /// All of them, in the order for a holder that takes nothing over.
    fn in_order(self, ops: &mut Vec<Op>) -> bool {
        ops.extend(self.up);
        ops.extend(self.mtu);
        ops.extend(self.addrs);
        ops.extend(self.dhcp);
        ops.extend(self.routes);
        self.dhcp_wanted
    }
}

/// Ops putting `cfg` (plus what is handed over) on `holder`. `holder_view`
/// is the holder as observed, or None if it is being created in this plan.
/// `moved_routes` are being moved onto the holder by the caller.
#[allow(clippy::too_many_arguments)]
fn holder_ops(
    view: &SystemView,
    synthetic: &Interface,
    holder: &str,
    holder_view: Option<&Interface>,
    cfg: &IfConfig,
    moved_addrs: &[IpNet],
    moved_dhcp: bool,
    moved_routes: &[Route],
    bring_up: bool,
) -> HolderOps {
    let mut h = HolderOps {
        up: Vec::new(),
        mtu: Vec::new(),
        addrs: Vec::new(),
        dhcp: Vec::new(),
        routes: Vec::new(),
        dhcp_wanted: false,
    };
    let present = |a: &IpNet| holder_view.is_some_and(|h| h.has_address(a));
    let up = holder_view.is_some_and(|h| h.admin_up);
    let want_up = bring_up
        || cfg.configured
        || !moved_addrs.is_empty()
        || moved_dhcp
        || holder != synthetic.name;
    if want_up && !up {
        h.up.push(Op::SetAdmin {
            iface: holder.to_string(),
            up: true,
        });
    }
    if let Some(m) = cfg.mtu {
        let cur = holder_view.map(|h| h.mtu).unwrap_or(synthetic.mtu);
        if cur != m {
            h.mtu.push(Op::SetMtu {
                iface: holder.to_string(),
                mtu: m,
            });
        }
    }
    let mut want: Vec<IpNet> = Vec::new();
    for a in cfg
        .ipv4
        .iter()
        .map(|n| IpNet::V4(*n))
        .chain(cfg.ipv6.iter().map(|n| IpNet::V6(*n)))
        .chain(
            cfg.ipv6_eui64
                .iter()
                .map(|p| IpNet::V6(eui64(p, synthetic.mac))),
        )
        .chain(moved_addrs.iter().copied())
    {
        if !want.contains(&a) {
            want.push(a);
        }
    }
    for a in &want {
        if !present(a) {
            h.addrs.push(Op::AddAddress {
                iface: holder.to_string(),
                addr: *a,
            });
        }
    }
    let clients: Vec<u32> = view.dhcp_for(holder).map(|c| c.pid).collect();
    h.dhcp_wanted = cfg.dhcp || moved_dhcp || !clients.is_empty();
    for pid in clients.iter().skip(1) {
        h.dhcp.push(Op::StopDhcp {
            iface: holder.to_string(),
            pid: *pid,
        });
    }
    if h.dhcp_wanted && clients.is_empty() {
        h.dhcp.push(Op::StartDhcp {
            iface: holder.to_string(),
            sync: cfg.sync_dhcp,
        });
    }
    // Configured routes (naming the holder), except those the caller moves.
    let mut routes: Vec<Route> = Vec::new();
    for r in cfg.routes.iter().map(|r| Route {
        iface: r.iface.as_ref().map(|i| {
            if *i == synthetic.name {
                holder.to_string()
            } else {
                i.clone()
            }
        }),
        ..r.clone()
    }) {
        let dup = |x: &Route| x.dest == r.dest && x.gateway == r.gateway;
        if !moved_routes.iter().any(dup) && !routes.iter().any(dup) {
            routes.push(r);
        }
    }
    let stripped = if holder == synthetic.name {
        ""
    } else {
        synthetic.name.as_str()
    };
    for r in routes {
        if holder_view.is_none() || !route_present(view, &r, stripped) {
            h.routes.push(Op::AddRoute { route: r });
        }
    }
    h
}

/// Ops putting `cfg` on the synthetic NIC itself (no aggregate).
fn configure_synthetic(
    view: &SystemView,
    hn: &Interface,
    cfg: &IfConfig,
    ops: &mut Vec<Op>,
) -> bool {
    holder_ops(view, hn, &hn.name, Some(hn), cfg, &[], false, &[], false).in_order(ops)
}

/// The name of the aggregate for `hn`: the one it is already a port of, else
/// `lagg<unit>` unless that is used for something else, then
/// `lagg<unit+100>`, `lagg<unit+200>`, ... Err: hn is a port of an
/// aggregate that also holds foreign ports.
fn aggregate_name(
    view: &SystemView,
    hn: &Interface,
    members: &BTreeSet<&str>,
) -> Result<String, String> {
    let ours = |agg: &Interface| {
        agg.aggregate
            .as_ref()
            .is_some_and(|a| a.ports.iter().all(|p| members.contains(p.as_str())))
    };
    if let Some(l) = &hn.member_of {
        return match view.interface(l) {
            Some(agg) if ours(agg) => Ok(l.clone()),
            _ => Err(format!(
                "{} is a port of {l}, which has other ports; not managed",
                hn.name
            )),
        };
    }
    let unit = unit_of(&hn.name);
    for k in 0..50u32 {
        let name = format!("lagg{}", unit.saturating_add(100 * k));
        match view.interface(&name) {
            None => return Ok(name),
            Some(i)
                if i.is_aggregate()
                    && ours(i)
                    && i.aggregate.as_ref().is_some_and(|a| {
                        a.ports.is_empty() || a.proto == AggregateProto::Failover
                    }) =>
            {
                return Ok(name)
            }
            Some(_) => {}
        }
    }
    Err(format!("no free aggregate name for {}", hn.name))
}

/// Compute the plan.
pub fn plan(
    view: &SystemView,
    config: &ManagerConfig,
    net: &dyn NetConfigSource,
    input: &PlanInput,
) -> Plan {
    let mode = config.mode.resolve(view.platform.vf_transparent);
    let (pairs_map, unpaired) = pairing(view, mode);
    let mut units = Vec::new();
    let mut pairs = Vec::new();

    // Stale steering first: it must go before anything else moves. A redirect stays only
    // in steered mode, on a synthetic NIC, towards that NIC's VF; anything else the kernel
    // holds (a target that is gone, a filter on another interface) is removed.
    if mode == Mode::Steered || !view.steering.is_empty() || !view.egress_redirects.is_empty() {
        let wanted = |synthetic: &str, vf: Option<&str>| {
            mode == Mode::Steered
                && view
                    .interface(synthetic)
                    .is_some_and(Interface::is_synthetic)
                && vf.is_some_and(|vf| {
                    pairs_map
                        .get(synthetic)
                        .and_then(|v| v.first())
                        .is_some_and(|p| p == vf)
                })
        };
        let mut ops: Vec<Op> = Vec::new();
        let stale = view
            .steering
            .iter()
            .filter(|s| !wanted(&s.synthetic, Some(&s.vf)))
            .map(|s| (s.synthetic.clone(), s.vf.clone()))
            .chain(
                view.egress_redirects
                    .iter()
                    .filter(|r| !wanted(&r.iface, r.to.as_deref()))
                    .map(|r| (r.iface.clone(), redirect_target(r))),
            );
        for (synthetic, vf) in stale {
            if !ops
                .iter()
                .any(|o| o.interface() == Some(synthetic.as_str()))
            {
                ops.push(Op::SteerOff { synthetic, vf });
            }
        }
        if !ops.is_empty() {
            units.push(Unit {
                key: "steering".into(),
                ops,
            });
        }
    }

    let mut synthetics: Vec<&Interface> = view
        .interfaces
        .iter()
        .filter(|i| i.is_synthetic())
        .collect();
    synthetics.sort_by_key(|i| (i.index, i.name.clone()));
    for hn in synthetics {
        let vfs = pairs_map.get(&hn.name).cloned().unwrap_or_default();
        let (ops, p) = plan_pair(view, config, net, input, mode, hn, &vfs);
        units.push(Unit {
            key: format!("pair:{}", hn.name),
            ops,
        });
        pairs.push(p);
    }

    for name in &unpaired {
        if let Some(vf) = view.interface(name) {
            let mut ops = Vec::new();
            guard_vf(view, vf, &mut ops);
            units.push(Unit {
                key: format!("vf:{name}"),
                ops,
            });
        }
    }

    if config.manage_daemons {
        units.push(Unit {
            key: "daemons".into(),
            ops: plan_daemons(view, input),
        });
    }
    units.retain(|u| !u.ops.is_empty());
    Plan {
        mode,
        units,
        pairs,
        unpaired_vfs: unpaired,
    }
}

/// The name of a redirect's target, or `ifindex N` when it is gone (`a vanished device`
/// once the kernel has cleared the index too).
fn redirect_target(r: &EgressRedirect) -> String {
    match (&r.to, r.to_index) {
        (Some(name), _) => name.clone(),
        (None, 0) => "a vanished device".into(),
        (None, i) => format!("ifindex {i}"),
    }
}

/// Where the kernel sends `hn`'s outgoing packets in steered mode, from the filters and
/// the gate it holds (never from what was intended), and why, when that is wrong.
fn steered_path(view: &SystemView, hn: &Interface) -> (DataPath, Option<String>) {
    let Some(r) = view.egress_redirect(&hn.name).filter(|r| r.passes()) else {
        return (DataPath::Synthetic, None);
    };
    match r.to.as_deref().and_then(|t| view.interface(t)) {
        Some(t) if t.admin_up && t.link_up => (DataPath::Vf, None),
        Some(t) => (
            DataPath::Dropped,
            Some(format!(
                "{}'s egress redirects to {}, which is down: outgoing packets are dropped",
                hn.name, t.name
            )),
        ),
        None => (
            DataPath::Dropped,
            Some(format!(
                "{}'s egress redirects to a device that no longer exists{}: outgoing packets \
                 are dropped",
                hn.name,
                match r.to_index {
                    0 => String::new(),
                    i => format!(" (ifindex {i})"),
                }
            )),
        ),
    }
}

fn plan_daemons(view: &SystemView, input: &PlanInput) -> Vec<Op> {
    let mut ops = Vec::new();
    for d in Daemon::ALL {
        let procs: Vec<u32> = view.daemon_procs(d).map(|p| p.pid).collect();
        if view.has_device(d.device()) {
            for pid in procs.iter().skip(1) {
                ops.push(Op::StopDaemon {
                    daemon: d,
                    pid: *pid,
                });
            }
            if procs.is_empty() && input.daemon_start_allowed.contains(&d) {
                ops.push(Op::StartDaemon { daemon: d });
            }
        } else {
            for pid in procs {
                ops.push(Op::StopDaemon { daemon: d, pid });
            }
        }
    }
    ops
}

#[allow(clippy::too_many_arguments)]
fn plan_pair(
    view: &SystemView,
    config: &ManagerConfig,
    net: &dyn NetConfigSource,
    input: &PlanInput,
    mode: Mode,
    hn: &Interface,
    vfs: &[String],
) -> (Vec<Op>, PairPlan) {
    let mut ops = Vec::new();
    let cfg = net.interface_config(&hn.name);
    let vf = vfs.first().and_then(|n| view.interface(n));
    let extra: Vec<String> = vfs.iter().skip(1).cloned().collect();
    let mut problems: Vec<String> = cfg
        .unsupported
        .iter()
        .map(|u| format!("not applied: {u}"))
        .collect();
    let leaving = vf.is_some_and(|v| input.leaving.contains(&v.name));
    let eligible = vf.is_some_and(|v| input.eligible.contains(&v.name)) && !leaving;
    let mut pp = PairPlan {
        synthetic: hn.name.clone(),
        vf: vf.map(|v| v.name.clone()),
        extra_vfs: extra.clone(),
        aggregate: None,
        holder: hn.name.clone(),
        path: DataPath::Synthetic,
        vf_eligible: eligible,
        overridden: false,
        dhcp: false,
        sync_dhcp: cfg.sync_dhcp,
        problems: Vec::new(),
    };
    for e in &extra {
        if let Some(x) = view.interface(e) {
            if x.member_of.is_none() {
                guard_vf(view, x, &mut ops);
            }
        }
    }

    match mode {
        Mode::NonTransparent if input.overrides.contains(&hn.name) => {
            pp.overridden = true;
            if let Some(v) = vf {
                if eligible && !v.admin_up {
                    ops.push(Op::SetAdmin {
                        iface: v.name.clone(),
                        up: true,
                    });
                }
                let up_after = v.admin_up || eligible;
                if up_after && input.hooks_done.get(&hn.name) != Some(&v.name) {
                    ops.push(Op::RunHook {
                        program: config.vfup_override_path(&hn.name),
                        args: vec![hn.name.clone()],
                    });
                }
            }
            if let Some(l) = &hn.member_of {
                pp.aggregate = Some(l.clone());
                pp.holder = l.clone();
                if let Some(agg) = view.interface(l).and_then(|a| a.aggregate.as_ref()) {
                    if vf.is_some_and(|v| agg.active.as_deref() == Some(v.name.as_str())) {
                        pp.path = DataPath::Vf;
                    }
                }
            }
        }
        Mode::NonTransparent => {
            let mut members: BTreeSet<&str> = vfs.iter().map(String::as_str).collect();
            members.insert(hn.name.as_str());
            // A lagg port that is a VF with hn's MAC (a previous VF) is ours too.
            for i in &view.interfaces {
                if i.is_vf() && !i.mac.is_zero() && i.mac == hn.mac {
                    members.insert(i.name.as_str());
                }
            }
            let existing = hn.member_of.is_some();
            let agg_name = if existing || eligible {
                match aggregate_name(view, hn, &members) {
                    Ok(n) => Some(n),
                    Err(e) => {
                        problems.push(e);
                        None
                    }
                }
            } else {
                None
            };
            let conflict = hn.member_of.is_some() && agg_name.is_none();
            if let Some(v) = vf {
                guard_vf(view, v, &mut ops);
            }
            if conflict {
                pp.problems = problems;
                return (ops, pp);
            }
            match agg_name {
                Some(l) => {
                    let agg = view.interface(&l);
                    if agg.is_none() {
                        ops.push(Op::CreateAggregate { name: l.clone() });
                    }
                    let state = agg.and_then(|a| a.aggregate.as_ref());
                    if state.is_none_or(|s| s.proto != AggregateProto::Failover) {
                        ops.push(Op::SetAggregateProto {
                            aggregate: l.clone(),
                            proto: AggregateProto::Failover,
                        });
                    }
                    // Make before break: the aggregate holds hn's addresses before
                    // hn becomes its port (the kernel purges a port's inet6) and
                    // before they leave hn, and routes move in one step, so the
                    // VM's addresses and routes are never absent. Leased addresses
                    // move too: the new client on the aggregate (same MAC) renews
                    // the same lease.
                    let h = handover(view, hn);
                    let ports: Vec<String> = state.map(|s| s.ports.clone()).unwrap_or_default();
                    let hold =
                        holder_ops(view, hn, &l, agg, &cfg, &h.addrs, h.dhcp, &h.routes, true);
                    ops.extend(h.stop_dhcp);
                    ops.extend(hold.up);
                    ops.extend(hold.addrs);
                    let (v6_routes, v4_routes): (Vec<Route>, Vec<Route>) = h
                        .routes
                        .into_iter()
                        .partition(|r| matches!(r.dest, IpNet::V6(_)));
                    let move_to = |r: Route| Op::MoveRoute {
                        route: r,
                        to: l.clone(),
                    };
                    // The kernel flushes a new port's IPv6 routes with its inet6.
                    ops.extend(v6_routes.into_iter().map(move_to));
                    if !ports.contains(&hn.name) {
                        // Added first: the failover primary.
                        ops.push(Op::AddPort {
                            aggregate: l.clone(),
                            port: hn.name.clone(),
                        });
                    }
                    if !hn.admin_up {
                        ops.push(Op::SetAdmin {
                            iface: hn.name.clone(),
                            up: true,
                        });
                    }
                    // IPv4 routes once the aggregate carries traffic (it has a port).
                    ops.extend(v4_routes.into_iter().map(move_to));
                    ops.extend(h.remove_addrs);
                    if let Some(v) = vf {
                        for r in view.routes.iter().filter(|r| {
                            r.iface.as_deref() == Some(v.name.as_str()) && r.gateway.is_some()
                        }) {
                            ops.push(Op::RemoveRoute { route: r.clone() });
                        }
                    }
                    ops.extend(hold.mtu);
                    ops.extend(hold.dhcp);
                    ops.extend(hold.routes);
                    pp.dhcp = hold.dhcp_wanted;
                    if let Some(v) = vf {
                        if eligible && v.member_of.is_none() {
                            ops.push(Op::AddPort {
                                aggregate: l.clone(),
                                port: v.name.clone(),
                            });
                        } else if let Some(other) = v.member_of.as_ref().filter(|m| **m != l) {
                            problems.push(format!("{} is a port of {other}", v.name));
                        }
                        if eligible && !v.admin_up {
                            ops.push(Op::SetAdmin {
                                iface: v.name.clone(),
                                up: true,
                            });
                        }
                        if leaving && v.admin_up {
                            ops.push(Op::SetAdmin {
                                iface: v.name.clone(),
                                up: false,
                            });
                        }
                        if state.is_some_and(|s| s.active.as_deref() == Some(v.name.as_str())) {
                            pp.path = DataPath::Vf;
                        }
                    }
                    pp.aggregate = Some(l.clone());
                    pp.holder = l;
                }
                None => {
                    pp.dhcp = configure_synthetic(view, hn, &cfg, &mut ops);
                    if let Some(v) = vf {
                        if leaving && v.admin_up {
                            ops.push(Op::SetAdmin {
                                iface: v.name.clone(),
                                up: false,
                            });
                        }
                    }
                }
            }
        }
        Mode::Transparent | Mode::Steered => {
            if let Some(v) = vf {
                guard_vf(view, v, &mut ops);
                for r in view
                    .routes
                    .iter()
                    .filter(|r| r.iface.as_deref() == Some(v.name.as_str()) && r.gateway.is_some())
                {
                    ops.push(Op::RemoveRoute { route: r.clone() });
                }
            }
            if let Some(l) = &hn.member_of {
                problems.push(format!(
                    "{} is a port of {l}; the kernel pairs in this mode",
                    hn.name
                ));
            }
            pp.dhcp = configure_synthetic(view, hn, &cfg, &mut ops);
            let hn_mtu = cfg.mtu.unwrap_or(hn.mtu);
            if let Some(v) = vf {
                if eligible && v.mtu != hn_mtu {
                    ops.push(Op::SetMtu {
                        iface: v.name.clone(),
                        mtu: hn_mtu,
                    });
                }
                if mode == Mode::Transparent {
                    if v.admin_up && v.link_up {
                        pp.path = DataPath::Vf;
                    }
                } else {
                    if eligible && !v.admin_up {
                        ops.push(Op::SetAdmin {
                            iface: v.name.clone(),
                            up: true,
                        });
                    }
                    let pair = SteerPair {
                        synthetic: hn.name.clone(),
                        vf: v.name.clone(),
                    };
                    // A gate this backend cannot read is re-made by steering again.
                    let steered = view.steering.contains(&pair)
                        && view
                            .egress_redirect(&hn.name)
                            .is_none_or(|r| r.gate != Some(GateState::Unknown));
                    let usable = eligible && v.admin_up && v.link_up && v.mtu == hn_mtu;
                    if usable && !steered {
                        ops.push(Op::SteerOn {
                            synthetic: pair.synthetic.clone(),
                            vf: pair.vf.clone(),
                        });
                    } else if !usable && steered {
                        // Off first: move it to the front of the unit.
                        ops.insert(
                            0,
                            Op::SteerOff {
                                synthetic: pair.synthetic.clone(),
                                vf: pair.vf.clone(),
                            },
                        );
                    }
                }
            }
            if mode == Mode::Steered {
                let (path, problem) = steered_path(view, hn);
                pp.path = path;
                problems.extend(problem);
            }
        }
    }
    pp.problems = problems;
    (ops, pp)
}
