//! Putting a pair's IP configuration on its holder (the synthetic NIC, or an
//! aggregate taking it over from the NIC) and keeping it off VFs.

use std::net::IpAddr;

use crate::model::{Interface, IpNet, Op, Route, SystemView};
use crate::netconf::eui64;

use super::pair::PairContext;

/// Ops that keep a VF free of IP configuration: stop its DHCP clients,
/// remove its addresses (link-local IPv6 excepted).
pub(super) fn guard_vf(view: &SystemView, vf: &Interface, ops: &mut Vec<Op>) {
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

/// Ops removing the routes through a gateway that point at `vf` (traffic never leaves by a
/// VF's own routes: it follows the holder's).
pub(super) fn remove_gateway_routes(view: &SystemView, vf: &Interface, ops: &mut Vec<Op>) {
    for r in view
        .routes
        .iter()
        .filter(|r| r.iface.as_deref() == Some(vf.name.as_str()) && r.gateway.is_some())
    {
        ops.push(Op::RemoveRoute { route: r.clone() });
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
pub(super) struct Handover {
    /// Addresses the aggregate must hold before they leave the NIC.
    pub addrs: Vec<IpNet>,
    /// Routes through the NIC, to move onto the aggregate.
    pub routes: Vec<Route>,
    /// The NIC ran a DHCP client (the aggregate gets one).
    pub dhcp: bool,
    /// Stop the NIC's DHCP clients (dhclient leaves its address in place).
    pub stop_dhcp: Vec<Op>,
    /// Remove the NIC's addresses, once the aggregate holds them.
    pub remove_addrs: Vec<Op>,
}

pub(super) fn handover(view: &SystemView, from: &Interface) -> Handover {
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

/// Where a pair's IP configuration goes.
pub(super) enum Holder<'a> {
    /// The synthetic NIC itself.
    Synthetic,
    /// An aggregate taking over what the synthetic NIC hands over.
    Aggregate {
        name: &'a str,
        /// As observed; None when it is being created in this plan.
        observed: Option<&'a Interface>,
        /// Moved onto it by the caller (its routes included).
        handover: &'a Handover,
    },
}

/// The ops that put a configuration on its holder, by kind, so a caller
/// can interleave them with a handover.
pub(super) struct HolderOps {
    pub up: Vec<Op>,
    pub mtu: Vec<Op>,
    pub addrs: Vec<Op>,
    pub dhcp: Vec<Op>,
    pub routes: Vec<Op>,
    /// DHCP wanted on the holder.
    pub dhcp_wanted: bool,
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

/// Ops putting the pair's configuration (plus what is handed over) on `target`.
pub(super) fn holder_ops(cx: &PairContext, target: Holder) -> HolderOps {
    let (view, synthetic, cfg) = (cx.view, cx.hn, &cx.cfg);
    let (holder, holder_view, moved, bring_up) = match target {
        Holder::Synthetic => (synthetic.name.as_str(), Some(synthetic), None, false),
        Holder::Aggregate {
            name,
            observed,
            handover,
        } => (name, observed, Some(handover), true),
    };
    let moved_addrs = moved.map_or(&[][..], |h| &h.addrs);
    let moved_dhcp = moved.is_some_and(|h| h.dhcp);
    let moved_routes = moved.map_or(&[][..], |h| &h.routes);
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

/// Ops putting the pair's configuration on the synthetic NIC itself (no aggregate);
/// true when DHCP is wanted there.
pub(super) fn configure_synthetic(cx: &PairContext, ops: &mut Vec<Op>) -> bool {
    holder_ops(cx, Holder::Synthetic).in_order(ops)
}
