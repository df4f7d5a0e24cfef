//! The run summary (`--json`'s last line). Field names are a contract
//! (DESIGN.md); extra fields may be added.

use std::collections::BTreeMap;

use serde::Serialize;

/// `{"median","max"}` in virtual milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Latency {
    pub median: f64,
    pub max: f64,
}

impl Latency {
    /// `None` when nothing happened.
    pub fn of(values: &[f64]) -> Option<Latency> {
        if values.is_empty() {
            return None;
        }
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Some(Latency {
            median: (median * 1000.0).round() / 1000.0,
            max: v[n - 1],
        })
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ByPath {
    pub hn: u64,
    pub vf: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Packets {
    pub sent: u64,
    pub delivered: u64,
    pub lost: u64,
    pub by_path: ByPath,
    pub lost_by_reason: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ExpectationCounts {
    pub passed: u64,
    pub failed: u64,
}

/// The summary of one run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub scenario: String,
    pub seed: u64,
    pub virtual_seconds: f64,
    /// Wall-clock time of the run; the only field that varies between
    /// identical runs (`HVNET_SIM_WALL=0` makes it 0).
    pub wall_ms: f64,
    pub packets: Packets,
    pub connections_broken: u64,
    pub failovers: u64,
    pub vf_up_latency_ms: Option<Latency>,
    pub back_to_hn_ms: Option<Latency>,
    pub invariant_violations: u64,
    pub expectations: ExpectationCounts,
    /// All expectations held and no invariant was violated.
    pub passed: bool,
    /// The agent's name.
    pub agent: String,
    /// `transparent` or `non-transparent`.
    pub mode: String,
    pub devctl_events: u64,
    pub violations: Vec<String>,
    pub failed_expectations: Vec<String>,
    pub faults_injected: BTreeMap<String, u64>,
}

impl Summary {
    pub fn new(scenario: &str, seed: u64) -> Self {
        Summary {
            scenario: scenario.to_string(),
            seed,
            virtual_seconds: 0.0,
            wall_ms: 0.0,
            packets: Packets::default(),
            connections_broken: 0,
            failovers: 0,
            vf_up_latency_ms: None,
            back_to_hn_ms: None,
            invariant_violations: 0,
            expectations: ExpectationCounts::default(),
            passed: false,
            agent: String::new(),
            mode: String::new(),
            devctl_events: 0,
            violations: Vec::new(),
            failed_expectations: Vec::new(),
            faults_injected: BTreeMap::new(),
        }
    }

    /// A metric by its scenario name (`lost`, `lost.no_active_port`, ...).
    pub fn metric(&self, name: &str, expectations_failed: usize) -> f64 {
        let p = &self.packets;
        match name {
            "sent" => p.sent as f64,
            "delivered" => p.delivered as f64,
            "lost" => p.lost as f64,
            "by_path.hn" => p.by_path.hn as f64,
            "by_path.vf" => p.by_path.vf as f64,
            "connections_broken" => self.connections_broken as f64,
            "failovers" => self.failovers as f64,
            "invariant_violations" => self.invariant_violations as f64,
            "expectations_failed" => expectations_failed as f64,
            other => other
                .strip_prefix("lost.")
                .map(|r| p.lost_by_reason.get(r).copied().unwrap_or(0) as f64)
                .unwrap_or(f64::NAN),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_median_and_max() {
        assert_eq!(Latency::of(&[]), None);
        let l = Latency::of(&[3.0, 1.0, 2.0]).unwrap();
        assert_eq!((l.median, l.max), (2.0, 3.0));
        let l = Latency::of(&[4.0, 1.0]).unwrap();
        assert_eq!((l.median, l.max), (2.5, 4.0));
    }

    #[test]
    fn json_has_the_contract_fields() {
        let s = Summary::new("demo", 7);
        let v: serde_json::Value = serde_json::to_value(&s).unwrap();
        for k in [
            "scenario",
            "seed",
            "virtual_seconds",
            "wall_ms",
            "packets",
            "connections_broken",
            "failovers",
            "vf_up_latency_ms",
            "back_to_hn_ms",
            "invariant_violations",
            "expectations",
            "passed",
        ] {
            assert!(v.get(k).is_some(), "{k}");
        }
        for k in ["sent", "delivered", "lost", "by_path", "lost_by_reason"] {
            assert!(v["packets"].get(k).is_some(), "{k}");
        }
        assert!(v["vf_up_latency_ms"].is_null());
        assert!(v["packets"]["by_path"].get("hn").is_some());
        assert!(v["expectations"].get("failed").is_some());
    }
}
