//! The VF manager ([`hvnet_vf::Manager`], what the daemon runs) as the simulated guest's
//! agent. Level-triggered: every devctl line and every timer is only a wake-up for a full
//! observe/plan/apply step. A [`Watcher`] sees every devctl line and step (the daemon's
//! `--backend sim` keeps its history, metrics and report with one).

use std::collections::BTreeSet;
use std::time::Duration;

use hvnet_vf::{Backend, Manager, ManagerConfig, StepReport};

use crate::agent::{AgentContext, AgentFactory, GuestAgent};
use crate::gate::SimGate;

/// Sees what the agent sees and does.
pub trait Watcher {
    /// A devctl line, before the step it wakes.
    fn devctl(&mut self, line: &str) {
        let _ = line;
    }
    /// A step at `now` and its report.
    fn stepped(&mut self, now: Duration, report: &StepReport);
}

/// The manager in the simulated guest.
pub struct ManagerAgent {
    mgr: Manager,
    next: Option<Duration>,
    log: Vec<String>,
    watcher: Option<Box<dyn Watcher>>,
}

/// The manager for the simulated guest with `config`: the guest's rc.conf as its network
/// configuration and the scenario's readiness gate; the simulated guest has no
/// `hyperv_vfup.hnX` overrides.
pub fn guest_manager(ctx: &AgentContext, config: ManagerConfig) -> Manager {
    let m = Manager::new(config, Box::new(ctx.rc()));
    match ctx.readiness {
        Some(spec) => m.with_gate(Box::new(SimGate::new(spec))),
        None => m,
    }
}

impl ManagerAgent {
    /// The manager with rc.conf's options (`hyperv_vf_delay`), as in every simulation.
    pub fn new(ctx: &AgentContext) -> Self {
        ManagerAgent::running(guest_manager(ctx, ManagerConfig::from_rcconf(&ctx.rc())))
    }

    /// An agent running `mgr`.
    pub fn running(mgr: Manager) -> Self {
        ManagerAgent {
            mgr,
            next: None,
            log: Vec::new(),
            watcher: None,
        }
    }

    /// Tell `watcher` about every devctl line and step.
    pub fn watched_by(mut self, watcher: Box<dyn Watcher>) -> Self {
        self.watcher = Some(watcher);
        self
    }

    fn step(&mut self, now: Duration, backend: &mut dyn Backend) {
        let rep = self.mgr.step(now, backend);
        self.next = rep.next_wakeup;
        if let Some(w) = &mut self.watcher {
            w.stepped(now, &rep);
        }
        // The simulator journals applied ops itself; keep the rest.
        let applied: BTreeSet<String> = rep.applied.iter().map(ToString::to_string).collect();
        self.log.extend(
            rep.log
                .into_iter()
                .map(|l| l.message)
                .filter(|m| !applied.contains(m)),
        );
    }
}

impl GuestAgent for ManagerAgent {
    fn name(&self) -> &str {
        "hvnet"
    }

    fn on_start(&mut self, now: Duration, backend: &mut dyn Backend) {
        self.step(now, backend);
    }

    fn on_devctl(&mut self, now: Duration, line: &str, backend: &mut dyn Backend) {
        if let Some(w) = &mut self.watcher {
            w.devctl(line);
        }
        self.step(now, backend);
    }

    fn on_timer(&mut self, now: Duration, backend: &mut dyn Backend) {
        self.step(now, backend);
    }

    fn next_wakeup(&self) -> Option<Duration> {
        self.next
    }

    fn take_log(&mut self) -> Vec<String> {
        std::mem::take(&mut self.log)
    }
}

/// A factory for [`ManagerAgent`] (a fresh manager on every restart: only timers are lost,
/// the state is read back from the kernel).
pub fn manager_agent() -> AgentFactory {
    Box::new(|ctx| Box::new(ManagerAgent::new(ctx)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{builtin, run, RunOptions};

    #[test]
    fn every_builtin_scenario_passes_with_the_manager() {
        let mut failed = Vec::new();
        for n in builtin::names() {
            let sc = builtin::get(n).unwrap();
            let r = run(
                sc,
                RunOptions {
                    seed: 1,
                    ..Default::default()
                },
                manager_agent(),
            )
            .unwrap();
            if std::env::var("SHOW").is_ok_and(|s| s == n) {
                for l in &r.timeline {
                    println!("{l}");
                }
            }
            if !r.summary.passed {
                failed.push(format!(
                    "{n}: {}",
                    serde_json::to_string(&r.summary).unwrap()
                ));
            }
        }
        assert!(failed.is_empty(), "{}", failed.join("\n"));
    }
}
