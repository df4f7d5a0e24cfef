//! The VF manager: the [`Reconciler`] with what every program that runs it needs around it —
//! the network configuration source, the readiness gate checked beside the steps with a time
//! limit ([`gate`]), the `hyperv_vfup.hnX` overrides and planned switches ([`planned`]). The
//! daemon (`hvnet run`, every backend) and the simulator's guest agent (`hvnet simulate`,
//! `chaos`, `compare`) run this same type; what is I/O sits behind small traits
//! ([`GateProbe`], [`OverrideSource`]) and time is the caller's clock (virtual in the
//! simulator).

pub mod gate;
pub mod planned;

use std::collections::BTreeSet;
use std::time::Duration;

use crate::backend::Backend;
use crate::config::ManagerConfig;
use crate::netconf::NetConfigSource;
use crate::reconcile::{Inputs, LogEntry, LogLevel, Readiness, Reconciler, StepReport};
use crate::status::Status;

pub use gate::{GateProbe, TimedGate, GATE_TIME_LIMIT};
pub use planned::{PlannedSwitches, PLANNED_HOLD};

/// Where `hyperv_vfup.NAME` override programs are found (FreeBSD: files in `vfup_dir`).
pub trait OverrideSource {
    /// The synthetic NICs that have an override program in `vfup_dir`.
    fn overrides(&self, vfup_dir: &str) -> BTreeSet<String>;
}

/// No overrides: systems without hyperv_vfup hooks (Linux, the simulated guest).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoOverrides;

impl OverrideSource for NoOverrides {
    fn overrides(&self, _vfup_dir: &str) -> BTreeSet<String> {
        BTreeSet::new()
    }
}

/// The reconciler with its gate, overrides and planned switches.
pub struct Manager {
    rec: Reconciler,
    net: Box<dyn NetConfigSource>,
    gate: Option<TimedGate>,
    overrides: Box<dyn OverrideSource>,
    planned: PlannedSwitches,
}

fn ms(d: Duration) -> u64 {
    d.as_millis().min(u128::from(u64::MAX)) as u64
}

impl Manager {
    /// A manager without a readiness gate or overrides.
    pub fn new(config: ManagerConfig, net: Box<dyn NetConfigSource>) -> Manager {
        Manager {
            rec: Reconciler::new(config),
            net,
            gate: None,
            overrides: Box::new(NoOverrides),
            planned: PlannedSwitches::default(),
        }
    }

    /// Release waiting VFs early when `probe` says the system is ready.
    pub fn with_gate(mut self, probe: Box<dyn GateProbe>) -> Manager {
        self.gate = Some(TimedGate::new(probe));
        self
    }

    /// Hand pairs with an override program to it (`hyperv_vfup.hnX`).
    pub fn with_overrides(mut self, overrides: Box<dyn OverrideSource>) -> Manager {
        self.overrides = overrides;
        self
    }

    pub fn config(&self) -> &ManagerConfig {
        self.rec.config()
    }

    /// The status of the last step.
    pub fn status(&self) -> Option<&Status> {
        self.rec.status()
    }

    /// New options and network configuration (rc.conf changed); timers are kept.
    pub fn reconfigure(&mut self, config: ManagerConfig, net: Box<dyn NetConfigSource>) {
        self.rec.set_config(config);
        self.net = net;
    }

    /// The host announced at `now` that `synthetic`'s VF goes (a planned switch): its
    /// traffic moves to the synthetic NIC at the next step and stays there until that VF has
    /// gone. Returns the line to log.
    pub fn leave(&mut self, synthetic: &str, now: Duration) -> LogEntry {
        let vf = self
            .rec
            .status()
            .and_then(|s| s.pairs.iter().find(|p| p.synthetic == synthetic))
            .and_then(|p| p.vf.clone());
        let message = match vf {
            Some(vf) => {
                let m = format!(
                    "{synthetic}: the host announced that VF {vf} goes; moving traffic to {synthetic}"
                );
                self.planned.announce(vf, now);
                m
            }
            None => {
                format!("{synthetic}: the host announced a VF removal, but {synthetic} has no VF")
            }
        };
        LogEntry {
            at_ms: ms(now),
            level: LogLevel::Info,
            message,
        }
    }

    /// VFs held off by a planned switch.
    pub fn leaving(&self) -> BTreeSet<String> {
        self.planned.leaving()
    }

    /// One observe/plan/apply step at `now`. Never waits for the gate: it uses the gate's
    /// latest answer. The report's log has the gate's and the planned switches' lines too.
    pub fn step(&mut self, now: Duration, backend: &mut dyn Backend) -> StepReport {
        let mut log = Vec::new();
        let readiness = match &mut self.gate {
            Some(g) => g.readiness(now, &mut log),
            None => Readiness::NoGate,
        };
        let inputs = Inputs {
            now,
            readiness,
            overrides: self.overrides.overrides(&self.rec.config().vfup_dir),
            leaving: self.planned.leaving(),
        };
        let mut rep = self.rec.step(backend, self.net.as_ref(), &inputs);
        log.append(&mut rep.log);
        self.planned.after_step(now, &rep.status, &mut log);
        if let Some(g) = &mut self.gate {
            g.after_step(now, &rep.status);
        }
        rep.log = log;
        rep
    }
}

#[cfg(test)]
mod tests;
