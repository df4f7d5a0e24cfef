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

use serde::{Deserialize, Serialize};

use crate::config::{ManagerConfig, Mode};
use crate::model::{Daemon, EgressRedirect, Interface, Op, SystemView};
use crate::netconf::NetConfigSource;

mod aggregate;
mod holder;
mod kernel;
mod pair;

use holder::guard_vf;
use pair::{plan_pair, PairContext};

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

/// Which path carries a pair's traffic, as far as the view shows. Its JSON name (the status
/// report's `path`) is `hn`, `vf` or `dropped`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataPath {
    #[default]
    #[serde(rename = "hn")]
    Synthetic,
    Vf,
    /// The kernel sends the pair's outgoing packets somewhere they cannot leave (a steering
    /// redirect to a VF that is gone or down): they are dropped.
    Dropped,
}

impl DataPath {
    /// The name in the status report and table.
    pub fn as_str(self) -> &'static str {
        match self {
            DataPath::Synthetic => "hn",
            DataPath::Vf => "vf",
            DataPath::Dropped => "dropped",
        }
    }
}

impl std::fmt::Display for DataPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
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

    // Stale steering first: it must go before anything else moves.
    let stale = stale_steering(view, mode, &pairs_map);
    if !stale.is_empty() {
        units.push(Unit {
            key: "steering".into(),
            ops: stale,
        });
    }

    let mut synthetics: Vec<&Interface> = view
        .interfaces
        .iter()
        .filter(|i| i.is_synthetic())
        .collect();
    synthetics.sort_by_key(|i| (i.index, i.name.clone()));
    for hn in synthetics {
        let vfs = pairs_map.get(&hn.name).cloned().unwrap_or_default();
        let cx = PairContext::new(view, config, net, input, hn, &vfs);
        let (ops, p) = plan_pair(&cx, mode);
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

/// Ops removing steering that is not wanted: a redirect stays only in steered mode, on a
/// synthetic NIC, towards that NIC's VF; anything else the kernel holds (a target that is
/// gone, a filter on another interface) is removed.
fn stale_steering(
    view: &SystemView,
    mode: Mode,
    pairs_map: &BTreeMap<String, Vec<String>>,
) -> Vec<Op> {
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
    let mut ops: Vec<Op> = Vec::new();
    for (synthetic, vf) in stale {
        if !ops
            .iter()
            .any(|o| o.interface() == Some(synthetic.as_str()))
        {
            ops.push(Op::SteerOff { synthetic, vf });
        }
    }
    ops
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
