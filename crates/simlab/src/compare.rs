//! The original FreeBSD system and hvnet's VF manager side by side on one scenario (`hvnet
//! compare`): each side is a run of the same scenario and seed, judged the same way — the
//! scenario's expectations, the simulator's invariants, packets lost, time to the VF and back
//! to hn, and what the run left wrong ([`crate::problems`]).
//!
//! The sides here run in process: hvnet's (any agent) and the original's emulation
//! ([`hvnet_sim::original_scripts`]). The original as real processes is
//! `crate::original::run` (feature `harness`); [`Side::of_run`] judges it the same way.

use hvnet_sim::{AgentFactory, Latency, RunOptions, RunResult, Scenario, SimError};
use serde::Serialize;

use crate::problems::{self, Problem};

/// One side of a row.
#[derive(Debug, Clone, Serialize)]
pub struct Side {
    /// `scripts (real processes)`, `scripts (emulated)` or `hvnet`.
    pub agent: String,
    pub passed: bool,
    pub lost: u64,
    pub problems: Vec<Problem>,
    pub time_to_vf_ms: Option<Latency>,
    pub back_to_hn_ms: Option<Latency>,
    pub connections_broken: u64,
    pub invariant_violations: u64,
    pub failed_expectations: Vec<String>,
    /// The scenario's VF mode, as the run reported it (the row shows it once).
    #[serde(skip)]
    pub mode: String,
    /// The run's timeline (`--timeline`), not in the JSON.
    #[serde(skip)]
    pub timeline: Vec<String>,
}

impl Side {
    /// Judge a finished run of a scenario whose rc.conf is `rc_conf`; `extra` are problems only
    /// the way it ran can show (devd blocked by a real action), listed after the run's own.
    pub fn of_run(agent: &str, r: &RunResult, mut extra: Vec<Problem>, rc_conf: &str) -> Side {
        let s = &r.summary;
        let mut all = problems::of_run(r, rc_conf);
        all.append(&mut extra);
        Side {
            agent: agent.to_string(),
            passed: s.passed,
            lost: s.packets.lost,
            problems: all,
            time_to_vf_ms: s.vf_up_latency_ms,
            back_to_hn_ms: s.back_to_hn_ms,
            connections_broken: s.connections_broken,
            invariant_violations: s.invariant_violations,
            failed_expectations: s.failed_expectations.clone(),
            mode: s.mode.clone(),
            timeline: r.timeline.iter().map(ToString::to_string).collect(),
        }
    }
}

/// One scenario, both sides.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub scenario: String,
    pub mode: String,
    pub seed: u64,
    pub original: Side,
    pub hvnet: Side,
}

impl Row {
    pub fn new(sc: &Scenario, seed: u64, original: Side, hvnet: Side) -> Row {
        Row {
            scenario: sc.name.clone(),
            mode: hvnet.mode.clone(),
            seed,
            original,
            hvnet,
        }
    }
}

fn options(seed: u64) -> RunOptions {
    RunOptions {
        seed,
        ..Default::default()
    }
}

/// hvnet's side: `sc` with the agent `hvnet` makes (the VF manager).
pub fn hvnet_side(sc: &Scenario, seed: u64, hvnet: AgentFactory) -> Result<Side, SimError> {
    let r = hvnet_sim::run(sc.clone(), options(seed), hvnet)?;
    Ok(Side::of_run("hvnet", &r, Vec::new(), &sc.rc_conf))
}

/// The original's side as the simulator's in-process emulation of devd and the scripts.
pub fn emulated_original(sc: &Scenario, seed: u64) -> Result<Side, SimError> {
    let r = hvnet_sim::run(sc.clone(), options(seed), hvnet_sim::original_scripts())?;
    Ok(Side::of_run(
        "scripts (emulated)",
        &r,
        Vec::new(),
        &sc.rc_conf,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hvnet_sim::builtin;

    #[test]
    fn a_side_carries_the_runs_figures_and_its_problems() {
        let sc = builtin::get("ipv6-nt").unwrap();
        let s = emulated_original(&sc, 0).unwrap();
        assert_eq!(s.agent, "scripts (emulated)");
        assert!(!s.passed);
        assert!(s.problems.iter().any(|p| p.kind == "address-missing"));
        assert_eq!(s.mode, "non-transparent");
        // Extra problems come after the run's own.
        let r = hvnet_sim::run(sc.clone(), options(0), hvnet_sim::no_agent()).unwrap();
        let extra = Problem {
            kind: "devd-blocked",
            detail: "x".into(),
        };
        let with = Side::of_run("x", &r, vec![extra.clone()], &sc.rc_conf);
        assert_eq!(with.problems.last(), Some(&extra));
        assert_eq!(
            with.problems.len(),
            problems::of_run(&r, &sc.rc_conf).len() + 1
        );
        // The JSON has the figures, not the timeline or the mode.
        let v = serde_json::to_value(&with).unwrap();
        assert!(v.get("timeline").is_none() && v.get("mode").is_none());
        assert_eq!(
            v["problems"].as_array().unwrap().last().unwrap()["kind"],
            "devd-blocked"
        );
    }

    #[test]
    fn a_row_takes_the_scenarios_name_and_mode() {
        let sc = builtin::get("boot-vf").unwrap();
        let o = emulated_original(&sc, 3).unwrap();
        let h = hvnet_side(&sc, 3, hvnet_sim::no_agent()).unwrap();
        let row = Row::new(&sc, 3, o, h);
        assert_eq!(
            (row.scenario.as_str(), row.mode.as_str(), row.seed),
            ("boot-vf", "transparent", 3)
        );
        assert_eq!(row.hvnet.agent, "hvnet");
    }
}
