//! The readiness gate beside the reconciler: a check (a file test, a command) runs while a
//! VF waits for it, and the steps use its latest answer instead of waiting for it. A check
//! that has not answered within [`GATE_TIME_LIMIT`] is stopped and counts as not ready, so a
//! hung gate delays moving traffic onto a VF by at most the VF's delay and never stalls a
//! step (failover back to the synthetic NIC included).

use std::time::Duration;

use crate::reconcile::{LogEntry, LogLevel, Readiness};
use crate::status::{Status, VfState};

/// How long one check may run before it is stopped (on the caller's clock: virtual time in
/// the simulator).
pub const GATE_TIME_LIMIT: Duration = Duration::from_secs(10);

/// One way of asking "is the system ready for the VF?" that runs beside the manager.
pub trait GateProbe {
    /// Begin a check at `now` (called only when none is running).
    fn start(&mut self, now: Duration);
    /// The running check's answer (`true`: ready) once it has one, `None` while it runs.
    /// Never waits.
    fn poll(&mut self, now: Duration) -> Option<bool>;
    /// Abandon the running check (past the time limit, or no VF waits any more).
    fn stop(&mut self);
    /// The gate as the log names it (`readiness_command ["/usr/bin/x"]`).
    fn describe(&self) -> String;
}

/// A [`GateProbe`] with its time limit and latest answer.
pub struct TimedGate {
    probe: Box<dyn GateProbe>,
    running_since: Option<Duration>,
    answer: Readiness,
}

fn ms(d: Duration) -> u64 {
    d.as_millis().min(u128::from(u64::MAX)) as u64
}

impl TimedGate {
    pub fn new(probe: Box<dyn GateProbe>) -> TimedGate {
        TimedGate {
            probe,
            running_since: None,
            answer: Readiness::NotReady,
        }
    }

    /// The answer for a step at `now`: a finished check's, else the one before; a check past
    /// its time limit is stopped (and logged) and counts as not ready.
    pub fn readiness(&mut self, now: Duration, log: &mut Vec<LogEntry>) -> Readiness {
        if let Some(since) = self.running_since {
            match self.probe.poll(now) {
                Some(ready) => {
                    self.running_since = None;
                    self.answer = if ready {
                        Readiness::Ready
                    } else {
                        Readiness::NotReady
                    };
                }
                None if now.saturating_sub(since) >= GATE_TIME_LIMIT => {
                    self.probe.stop();
                    self.running_since = None;
                    self.answer = Readiness::NotReady;
                    log.push(LogEntry {
                        at_ms: ms(now),
                        level: LogLevel::Warn,
                        message: format!(
                            "readiness gate {}: no answer within {} s; stopped it (not ready: the VF waits for its delay)",
                            self.probe.describe(),
                            GATE_TIME_LIMIT.as_secs()
                        ),
                    });
                }
                None => {}
            }
        }
        self.answer
    }

    /// After a step: keep a check going while a VF waits for the gate; with none waiting,
    /// stop a running check and forget the answer (the next VF is asked about afresh).
    pub fn after_step(&mut self, now: Duration, status: &Status) {
        let waiting = status.pairs.iter().any(|p| p.vf_state == VfState::Waiting);
        if !waiting {
            if self.running_since.take().is_some() {
                self.probe.stop();
            }
            self.answer = Readiness::NotReady;
        } else if self.running_since.is_none() {
            self.probe.start(now);
            self.running_since = Some(now);
        }
    }
}
