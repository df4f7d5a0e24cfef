//! What the manager sees and does, as `hvnet status` shows it: these types are also the
//! control socket's wire types (the daemon's report embeds them), so their JSON names and
//! values are part of the interface.

use serde::{Deserialize, Serialize};

use crate::config::Mode;
use crate::plan::DataPath;

/// State of a pair's VF.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VfState {
    #[default]
    Absent,
    /// Present, waiting for the delay or the readiness gate.
    Waiting,
    /// Present, held down after flapping.
    HeldDown,
    /// Present and allowed to carry traffic.
    Ready,
    /// Announced to leave; traffic moved off it.
    Leaving,
}

/// One pair in [`Status`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairStatus {
    pub synthetic: String,
    pub vf: Option<String>,
    pub vf_state: VfState,
    /// Milliseconds until the VF may be used, when waiting or held down.
    pub vf_ready_in_ms: Option<u64>,
    pub aggregate: Option<String>,
    /// Interface holding the IP configuration.
    pub holder: String,
    pub path: DataPath,
    pub dhcp: bool,
    /// DHCP wanted and no IPv4 address yet.
    pub waiting_for_lease: bool,
    pub overridden: bool,
    pub vf_losses: u32,
    pub problems: Vec<String>,
}

/// A failing unit in [`Status`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorStatus {
    pub unit: String,
    pub op: String,
    pub interface: Option<String>,
    pub message: String,
    pub failures: u32,
    pub retry_in_ms: u64,
}

/// A helper daemon in [`Status`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaemonStatus {
    pub name: String,
    pub device_present: bool,
    pub pid: Option<u32>,
    pub restarts: u32,
}

/// What the manager sees and does (`hvnet status`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    pub mode: Mode,
    /// The last step found nothing to do and nothing is failing.
    pub converged: bool,
    pub pairs: Vec<PairStatus>,
    pub unpaired_vfs: Vec<String>,
    pub daemons: Vec<DaemonStatus>,
    pub errors: Vec<ErrorStatus>,
}

impl VfState {
    /// The name in the JSON report and the status table.
    pub fn as_str(self) -> &'static str {
        match self {
            VfState::Absent => "absent",
            VfState::Waiting => "waiting",
            VfState::HeldDown => "held_down",
            VfState::Ready => "ready",
            VfState::Leaving => "leaving",
        }
    }
}

impl std::fmt::Display for VfState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table shows the names the JSON report has.
    #[test]
    fn display_names_are_the_json_names() {
        for s in [
            VfState::Absent,
            VfState::Waiting,
            VfState::HeldDown,
            VfState::Ready,
            VfState::Leaving,
        ] {
            assert_eq!(serde_json::to_value(s).unwrap(), s.to_string());
        }
        for p in [DataPath::Synthetic, DataPath::Vf, DataPath::Dropped] {
            assert_eq!(serde_json::to_value(p).unwrap(), p.to_string());
        }
        for m in [Mode::NonTransparent, Mode::Transparent, Mode::Steered] {
            assert_eq!(serde_json::to_value(m).unwrap(), m.to_string());
        }
        assert_eq!(DataPath::Synthetic.to_string(), "hn");
    }

    #[test]
    fn a_pair_survives_the_json_round_trip() {
        let p = PairStatus {
            synthetic: "hn0".into(),
            vf: Some("mce0".into()),
            vf_state: VfState::HeldDown,
            vf_ready_in_ms: Some(1500),
            path: DataPath::Dropped,
            problems: vec!["x".into()],
            ..Default::default()
        };
        let text = serde_json::to_string(&p).unwrap();
        assert!(text.contains(r#""vf_state":"held_down""#), "{text}");
        assert!(text.contains(r#""path":"dropped""#), "{text}");
        assert_eq!(serde_json::from_str::<PairStatus>(&text).unwrap(), p);
    }
}
