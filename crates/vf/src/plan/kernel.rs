//! The modes where the configuration stays on the synthetic NIC and the VF is
//! guarded: transparent (the kernel pairs and steers) and steered (hvnet
//! steers, only while the VF is eligible, up and has link).

use crate::model::{GateState, Interface, Op, SteerPair, SystemView};

use super::holder::{configure_synthetic, guard_vf, remove_gateway_routes};
use super::pair::{PairContext, PairOut};
use super::DataPath;

/// Transparent: the path is the VF while it is up with link.
pub(super) fn plan_transparent(cx: &PairContext, out: &mut PairOut) {
    kernel_paired(cx, out);
    if let Some(v) = cx.vf {
        if v.admin_up && v.link_up {
            out.plan.path = DataPath::Vf;
        }
    }
}

/// Steered: steering on while the VF is usable, off first (before anything else) when not;
/// the path is what the kernel's filters and gate do.
pub(super) fn plan_steered(cx: &PairContext, out: &mut PairOut) {
    let hn_mtu = kernel_paired(cx, out);
    if let Some(v) = cx.vf {
        steer(cx, v, hn_mtu, out);
    }
    let (path, problem) = steered_path(cx.view, cx.hn);
    out.plan.path = path;
    out.plan.problems.extend(problem);
}

/// What both modes do: the VF guarded and without gateway routes, the configuration on hn,
/// the VF at hn's MTU once it may be used. Returns hn's MTU.
fn kernel_paired(cx: &PairContext, out: &mut PairOut) -> u32 {
    let hn = cx.hn;
    if let Some(v) = cx.vf {
        guard_vf(cx.view, v, &mut out.ops);
        remove_gateway_routes(cx.view, v, &mut out.ops);
    }
    if let Some(l) = &hn.member_of {
        out.plan.problems.push(format!(
            "{} is a port of {l}; the kernel pairs in this mode",
            hn.name
        ));
    }
    out.plan.dhcp = configure_synthetic(cx, &mut out.ops);
    let hn_mtu = cx.cfg.mtu.unwrap_or(hn.mtu);
    if let Some(v) = cx.vf {
        if cx.eligible && v.mtu != hn_mtu {
            out.ops.push(Op::SetMtu {
                iface: v.name.clone(),
                mtu: hn_mtu,
            });
        }
    }
    hn_mtu
}

/// Bring an eligible VF up; steer hn's traffic to it while it is usable, and stop steering,
/// first of all, when it is not.
fn steer(cx: &PairContext, v: &Interface, hn_mtu: u32, out: &mut PairOut) {
    let hn = cx.hn;
    if cx.eligible && !v.admin_up {
        out.ops.push(Op::SetAdmin {
            iface: v.name.clone(),
            up: true,
        });
    }
    let pair = SteerPair {
        synthetic: hn.name.clone(),
        vf: v.name.clone(),
    };
    // A gate this backend cannot read is re-made by steering again.
    let steered = cx.view.steering.contains(&pair)
        && cx
            .view
            .egress_redirect(&hn.name)
            .is_none_or(|r| r.gate != Some(GateState::Unknown));
    let usable = cx.eligible && v.admin_up && v.link_up && v.mtu == hn_mtu;
    if usable && !steered {
        out.ops.push(Op::SteerOn {
            synthetic: pair.synthetic,
            vf: pair.vf,
        });
    } else if !usable && steered {
        // Off first: move it to the front of the unit.
        out.ops.insert(
            0,
            Op::SteerOff {
                synthetic: pair.synthetic,
                vf: pair.vf,
            },
        );
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
