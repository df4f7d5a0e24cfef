//! The VF manager ([`hvnet_vf::Reconciler`]) as a simulator guest agent.
//! Level-triggered: every devctl line and every timer is only a wake-up
//! for a full observe/plan/apply step.

use std::time::Duration;

use crate::agent::{AgentContext, AgentFactory, GuestAgent};
use hvnet_rcconf::RcConf;
use hvnet_vf::{Backend, Inputs, ManagerConfig, Reconciler};

/// The manager in the simulated guest.
pub struct ManagerAgent {
    rec: Reconciler,
    rc: RcConf,
    next: Option<Duration>,
    log: Vec<String>,
}

impl ManagerAgent {
    pub fn new(ctx: &AgentContext) -> Self {
        let rc = ctx.rc();
        ManagerAgent {
            rec: Reconciler::new(ManagerConfig::from_rcconf(&rc)),
            rc,
            next: None,
            log: Vec::new(),
        }
    }

    fn step(&mut self, now: Duration, backend: &mut dyn Backend) {
        let rep = self.rec.step(
            backend,
            &self.rc,
            &Inputs {
                now,
                ..Default::default()
            },
        );
        self.next = rep.next_wakeup;
        // The simulator journals applied ops itself; keep the rest.
        let applied: std::collections::BTreeSet<String> =
            rep.applied.iter().map(ToString::to_string).collect();
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

    fn on_devctl(&mut self, now: Duration, _line: &str, backend: &mut dyn Backend) {
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

/// A factory for [`ManagerAgent`] (a fresh manager on every restart: only
/// timers are lost, the state is read back from the kernel).
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
