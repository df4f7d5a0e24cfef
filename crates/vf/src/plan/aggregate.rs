//! Non-transparent mode: a failover aggregate `lagg<unit>` with the synthetic
//! NIC (primary) and the VF, holding the pair's IP configuration; or, when an
//! administrator's `hyperv_vfup.<hn>` override manages the pair, only the VF's
//! state and the override's run.

use std::collections::BTreeSet;

use crate::model::{AggregateProto, AggregateState, Interface, IpNet, Op, Route, SystemView};

use super::holder::{
    configure_synthetic, guard_vf, handover, holder_ops, remove_gateway_routes, Holder,
};
use super::pair::{PairContext, PairOut};
use super::{unit_of, DataPath};

/// The pair is managed by an override program: bring the VF up when it may be used and run
/// the override once per VF; report the aggregate the override made.
pub(super) fn plan_overridden(cx: &PairContext, out: &mut PairOut) {
    let hn = cx.hn;
    out.plan.overridden = true;
    if let Some(v) = cx.vf {
        if cx.eligible && !v.admin_up {
            out.ops.push(Op::SetAdmin {
                iface: v.name.clone(),
                up: true,
            });
        }
        let up_after = v.admin_up || cx.eligible;
        if up_after && cx.input.hooks_done.get(&hn.name) != Some(&v.name) {
            out.ops.push(Op::RunHook {
                program: cx.config.vfup_override_path(&hn.name),
                args: vec![hn.name.clone()],
            });
        }
    }
    if let Some(l) = &hn.member_of {
        out.plan.aggregate = Some(l.clone());
        out.plan.holder = l.clone();
        if let Some(agg) = cx.view.interface(l).and_then(|a| a.aggregate.as_ref()) {
            if cx
                .vf
                .is_some_and(|v| agg.active.as_deref() == Some(v.name.as_str()))
            {
                out.plan.path = DataPath::Vf;
            }
        }
    }
}

/// The aggregate is made once the VF may be used and kept after it leaves; until then the
/// configuration stays on the synthetic NIC.
pub(super) fn plan_aggregated(cx: &PairContext, out: &mut PairOut) {
    let hn = cx.hn;
    let member = hn.member_of.is_some();
    let name = if member || cx.eligible {
        match aggregate_name(cx.view, hn, &our_ports(cx)) {
            Ok(n) => Some(n),
            Err(e) => {
                out.plan.problems.push(e);
                None
            }
        }
    } else {
        None
    };
    if let Some(v) = cx.vf {
        guard_vf(cx.view, v, &mut out.ops);
    }
    match name {
        Some(l) => on_aggregate(cx, l, out),
        // hn is a port of an aggregate that is not ours: left alone.
        None if member => {}
        None => {
            out.plan.dhcp = configure_synthetic(cx, &mut out.ops);
            if let Some(v) = cx.vf {
                if cx.leaving && v.admin_up {
                    out.ops.push(Op::SetAdmin {
                        iface: v.name.clone(),
                        up: false,
                    });
                }
            }
        }
    }
}

/// The ports an aggregate of hn's may have: hn, the VFs claiming it, and any VF with hn's
/// MAC (a previous VF).
fn our_ports<'a>(cx: &PairContext<'a>) -> BTreeSet<&'a str> {
    let mut members: BTreeSet<&str> = cx.vfs.iter().map(String::as_str).collect();
    members.insert(cx.hn.name.as_str());
    for i in &cx.view.interfaces {
        if i.is_vf() && !i.mac.is_zero() && i.mac == cx.hn.mac {
            members.insert(i.name.as_str());
        }
    }
    members
}

/// The aggregate `l` (made if missing) holds the pair's configuration, hn as its primary
/// port and the VF while it may be used.
fn on_aggregate(cx: &PairContext, l: String, out: &mut PairOut) {
    let agg = cx.view.interface(&l);
    if agg.is_none() {
        out.ops.push(Op::CreateAggregate { name: l.clone() });
    }
    let state = agg.and_then(|a| a.aggregate.as_ref());
    if state.is_none_or(|s| s.proto != AggregateProto::Failover) {
        out.ops.push(Op::SetAggregateProto {
            aggregate: l.clone(),
            proto: AggregateProto::Failover,
        });
    }
    take_over(cx, &l, agg, out);
    if let Some(v) = cx.vf {
        vf_port(cx, &l, v, state, out);
    }
    out.plan.aggregate = Some(l.clone());
    out.plan.holder = l;
}

/// Move hn's configuration onto the aggregate `l` and make hn its port.
///
/// Make before break: the aggregate holds hn's addresses before hn becomes its port (the
/// kernel purges a port's inet6) and before they leave hn, and routes move in one step, so
/// the VM's addresses and routes are never absent. Leased addresses move too: the new
/// client on the aggregate (same MAC) renews the same lease.
fn take_over(cx: &PairContext, l: &str, agg: Option<&Interface>, out: &mut PairOut) {
    let hn = cx.hn;
    let ops = &mut out.ops;
    let h = handover(cx.view, hn);
    let ports: Vec<String> = agg
        .and_then(|a| a.aggregate.as_ref())
        .map(|s| s.ports.clone())
        .unwrap_or_default();
    let hold = holder_ops(
        cx,
        Holder::Aggregate {
            name: l,
            observed: agg,
            handover: &h,
        },
    );
    ops.extend(h.stop_dhcp);
    ops.extend(hold.up);
    ops.extend(hold.addrs);
    let (v6_routes, v4_routes): (Vec<Route>, Vec<Route>) = h
        .routes
        .into_iter()
        .partition(|r| matches!(r.dest, IpNet::V6(_)));
    let move_to = |r: Route| Op::MoveRoute {
        route: r,
        to: l.to_string(),
    };
    // The kernel flushes a new port's IPv6 routes with its inet6.
    ops.extend(v6_routes.into_iter().map(move_to));
    if !ports.contains(&hn.name) {
        // Added first: the failover primary.
        ops.push(Op::AddPort {
            aggregate: l.to_string(),
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
    if let Some(v) = cx.vf {
        remove_gateway_routes(cx.view, v, ops);
    }
    ops.extend(hold.mtu);
    ops.extend(hold.dhcp);
    ops.extend(hold.routes);
    out.plan.dhcp = hold.dhcp_wanted;
}

/// The VF is a port of the aggregate `l` and up while it may be used, down once it is
/// leaving; the pair's path is the VF while the aggregate has it active.
fn vf_port(
    cx: &PairContext,
    l: &str,
    v: &Interface,
    state: Option<&AggregateState>,
    out: &mut PairOut,
) {
    if cx.eligible && v.member_of.is_none() {
        out.ops.push(Op::AddPort {
            aggregate: l.to_string(),
            port: v.name.clone(),
        });
    } else if let Some(other) = v.member_of.as_ref().filter(|m| **m != l) {
        out.plan
            .problems
            .push(format!("{} is a port of {other}", v.name));
    }
    if cx.eligible && !v.admin_up {
        out.ops.push(Op::SetAdmin {
            iface: v.name.clone(),
            up: true,
        });
    }
    if cx.leaving && v.admin_up {
        out.ops.push(Op::SetAdmin {
            iface: v.name.clone(),
            up: false,
        });
    }
    if state.is_some_and(|s| s.active.as_deref() == Some(v.name.as_str())) {
        out.plan.path = DataPath::Vf;
    }
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
