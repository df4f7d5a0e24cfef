//! Planned switches: the host announced that a VF goes (Linux: netvsc's "VF slot N removed"
//! in the kernel log). Its traffic moves to the synthetic NIC at the next step and stays
//! there until that VF has gone, or for [`PLANNED_HOLD`] when the removal never comes.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::reconcile::{LogEntry, LogLevel};
use crate::status::Status;

/// How long a planned switch holds a VF off when the announced removal never comes.
pub const PLANNED_HOLD: Duration = Duration::from_secs(30);

/// VFs announced to go, and since when.
#[derive(Debug, Clone, Default)]
pub struct PlannedSwitches {
    leaving: BTreeMap<String, Duration>,
}

impl PlannedSwitches {
    /// VF `vf` was announced to go at `now`.
    pub fn announce(&mut self, vf: String, now: Duration) {
        self.leaving.insert(vf, now);
    }

    /// The VFs held off now.
    pub fn leaving(&self) -> BTreeSet<String> {
        self.leaving.keys().cloned().collect()
    }

    pub fn is_empty(&self) -> bool {
        self.leaving.is_empty()
    }

    /// After a step: a hold ends when its VF has gone (or never came to go).
    pub fn after_step(&mut self, now: Duration, status: &Status, log: &mut Vec<LogEntry>) {
        self.leaving.retain(|vf, since| {
            let present = status.pairs.iter().any(|p| p.vf.as_ref() == Some(vf));
            let expired = now.saturating_sub(*since) >= PLANNED_HOLD;
            if present && expired {
                log.push(LogEntry {
                    at_ms: now.as_millis().min(u128::from(u64::MAX)) as u64,
                    level: LogLevel::Warn,
                    message: format!(
                        "VF {vf} was announced to go {} s ago and is still here; using it again",
                        PLANNED_HOLD.as_secs()
                    ),
                });
            }
            present && !expired
        });
    }
}
