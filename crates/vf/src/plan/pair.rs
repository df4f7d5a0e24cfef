//! Planning one synthetic NIC: what every mode needs ([`PairContext`]), and
//! the choice of the mode's planner.

use crate::config::{ManagerConfig, Mode};
use crate::model::{Interface, Op, SystemView};
use crate::netconf::{IfConfig, NetConfigSource};

use super::holder::guard_vf;
use super::{aggregate, kernel, DataPath, PairPlan, PlanInput};

/// What planning one synthetic NIC needs, whatever the mode.
pub(super) struct PairContext<'a> {
    pub view: &'a SystemView,
    pub config: &'a ManagerConfig,
    pub input: &'a PlanInput,
    /// The synthetic NIC.
    pub hn: &'a Interface,
    /// The VFs claiming it, the one to use first.
    pub vfs: &'a [String],
    /// The VF to use, as observed.
    pub vf: Option<&'a Interface>,
    /// What rc.conf wants on the interface holding hn's configuration.
    pub cfg: IfConfig,
    /// The VF is announced to leave soon: stop using it.
    pub leaving: bool,
    /// The VF may carry traffic (delay, gate and hold-down passed; not leaving).
    pub eligible: bool,
}

/// What planning one synthetic NIC produces: its ops in order, and what was concluded.
pub(super) struct PairOut {
    pub ops: Vec<Op>,
    pub plan: PairPlan,
}

impl<'a> PairContext<'a> {
    pub fn new(
        view: &'a SystemView,
        config: &'a ManagerConfig,
        net: &dyn NetConfigSource,
        input: &'a PlanInput,
        hn: &'a Interface,
        vfs: &'a [String],
    ) -> Self {
        let vf = vfs.first().and_then(|n| view.interface(n));
        let leaving = vf.is_some_and(|v| input.leaving.contains(&v.name));
        PairContext {
            view,
            config,
            input,
            hn,
            vfs,
            vf,
            cfg: net.interface_config(&hn.name),
            leaving,
            eligible: vf.is_some_and(|v| input.eligible.contains(&v.name)) && !leaving,
        }
    }

    /// More VFs claiming hn (ignored and guarded).
    fn extra_vfs(&self) -> &'a [String] {
        self.vfs.get(1..).unwrap_or_default()
    }

    /// The plan before the mode's planner: the configuration on hn, the extra VFs guarded,
    /// what rc.conf asks that cannot be applied reported.
    fn start(&self) -> PairOut {
        let mut ops = Vec::new();
        for e in self.extra_vfs() {
            if let Some(x) = self.view.interface(e) {
                if x.member_of.is_none() {
                    guard_vf(self.view, x, &mut ops);
                }
            }
        }
        PairOut {
            ops,
            plan: PairPlan {
                synthetic: self.hn.name.clone(),
                vf: self.vf.map(|v| v.name.clone()),
                extra_vfs: self.extra_vfs().to_vec(),
                aggregate: None,
                holder: self.hn.name.clone(),
                path: DataPath::Synthetic,
                vf_eligible: self.eligible,
                overridden: false,
                dhcp: false,
                sync_dhcp: self.cfg.sync_dhcp,
                problems: self
                    .cfg
                    .unsupported
                    .iter()
                    .map(|u| format!("not applied: {u}"))
                    .collect(),
            },
        }
    }
}

/// The ops for one synthetic NIC and what the planner concluded about it.
pub(super) fn plan_pair(cx: &PairContext, mode: Mode) -> (Vec<Op>, PairPlan) {
    let mut out = cx.start();
    match mode {
        Mode::NonTransparent if cx.input.overrides.contains(&cx.hn.name) => {
            aggregate::plan_overridden(cx, &mut out)
        }
        Mode::NonTransparent => aggregate::plan_aggregated(cx, &mut out),
        Mode::Transparent => kernel::plan_transparent(cx, &mut out),
        Mode::Steered => kernel::plan_steered(cx, &mut out),
    }
    (out.ops, out.plan)
}
