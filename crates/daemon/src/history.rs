//! What `hvnet status` shows beyond one step: since when each pair's traffic is on its path,
//! its failovers and time without the VF, the latest actions with their results, and how
//! many steps and actions there were. Pure bookkeeping over the manager's step reports.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use hvnet_vf::{DataPath, PairStatus, StepReport};

use crate::report::{ActionRecord, PairReport};

/// How many actions the report keeps.
pub const RECENT_ACTIONS: usize = 32;

pub(crate) fn ms(d: Duration) -> u64 {
    d.as_millis().min(u128::from(u64::MAX)) as u64
}

#[derive(Debug, Clone)]
struct PairTrack {
    path: DataPath,
    /// The last path that carried traffic (hn or vf): a failover is a change of it, a
    /// passing `dropped` is not one.
    carrying: DataPath,
    since: Duration,
    failovers: u64,
    without_vf: Duration,
    updated: Duration,
}

/// What one step changed for a pair (the metrics count it).
#[derive(Debug, Clone, PartialEq)]
pub struct PairChange {
    pub synthetic: String,
    /// Time not on a VF since the step before (`None`: it was on its VF).
    pub without_vf: Option<Duration>,
    /// The traffic moved between hn and vf.
    pub failover: bool,
    pub on_vf: bool,
}

/// The daemon's memory of pairs and actions.
#[derive(Debug, Clone, Default)]
pub struct History {
    pairs: BTreeMap<String, PairTrack>,
    actions: VecDeque<ActionRecord>,
    applied: u64,
    failed: u64,
    steps: u64,
}

impl History {
    /// Take in the step at `now`: the actions and each pair's path. Returns what changed per
    /// pair; a move of the traffic is logged.
    pub fn record(&mut self, now: Duration, rep: &StepReport) -> Vec<PairChange> {
        self.steps += 1;
        for op in &rep.applied {
            self.push(ActionRecord {
                at_ms: ms(now),
                op: op.to_string(),
                ok: true,
                error: None,
            });
        }
        for (op, e) in &rep.failed {
            self.push(ActionRecord {
                at_ms: ms(now),
                op: op.to_string(),
                ok: false,
                error: Some(e.detail()),
            });
        }
        self.applied += rep.applied.len() as u64;
        self.failed += rep.failed.len() as u64;
        rep.status
            .pairs
            .iter()
            .map(|p| self.track(now, p))
            .collect()
    }

    fn push(&mut self, a: ActionRecord) {
        self.actions.push_back(a);
        while self.actions.len() > RECENT_ACTIONS {
            self.actions.pop_front();
        }
    }

    fn track(&mut self, now: Duration, p: &PairStatus) -> PairChange {
        let t = self
            .pairs
            .entry(p.synthetic.clone())
            .or_insert_with(|| PairTrack {
                path: p.path,
                carrying: p.path,
                since: now,
                failovers: 0,
                without_vf: Duration::ZERO,
                updated: now,
            });
        let elapsed = now.saturating_sub(t.updated);
        let without_vf = (t.path != DataPath::Vf).then_some(elapsed);
        t.without_vf += without_vf.unwrap_or_default();
        t.updated = now;
        let mut failover = false;
        if p.path != t.path {
            tracing::info!(
                at_ms = ms(now),
                "{}: traffic moved from {} to {}",
                p.synthetic,
                t.path,
                p.path
            );
            t.path = p.path;
            t.since = now;
            if p.path != DataPath::Dropped && p.path != t.carrying {
                t.carrying = p.path;
                t.failovers += 1;
                failover = true;
            }
        }
        PairChange {
            synthetic: p.synthetic.clone(),
            without_vf,
            failover,
            on_vf: p.path == DataPath::Vf,
        }
    }

    /// The report's view of pair `p` (its history on the daemon's clock).
    pub fn pair_report(&self, p: &PairStatus) -> PairReport {
        let t = self.pairs.get(&p.synthetic);
        PairReport {
            status: p.clone(),
            path_since_ms: t.map_or(0, |t| ms(t.since)),
            path_since_unix_ms: None,
            failovers: t.map_or(0, |t| t.failovers),
            without_vf_ms: t.map_or(0, |t| ms(t.without_vf)),
        }
    }

    /// The latest actions, oldest first.
    pub fn recent_actions(&self) -> Vec<ActionRecord> {
        self.actions.iter().cloned().collect()
    }

    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Actions applied and failed so far.
    pub fn actions(&self) -> (u64, u64) {
        (self.applied, self.failed)
    }
}
