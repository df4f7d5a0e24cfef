//! What the daemon does with each step of the manager, whichever loop runs it (a real
//! backend's engine, or the simulator's guest agent under `--backend sim`): log the step's
//! lines, keep the history, count the metrics, publish the report; and feed the hosted devd
//! rules the devctl lines.

use std::time::Duration;

use hvnet_vf::{LogEntry, LogLevel, StepReport};

use crate::history::{ms, History};
use crate::hosted::Hosted;
use crate::metrics::Metrics;
use crate::publish::{lock, publish, SharedReport};
use crate::report::SimReport;

/// An interface's kernel packet counters (received, sent), where known (Linux: sysfs).
pub type PacketCounters = Box<dyn Fn(&str) -> (Option<u64>, Option<u64>)>;

/// The daemon's side of every step.
pub struct Recorder {
    history: History,
    metrics: Metrics,
    shared: SharedReport,
    hosted: Option<Hosted>,
    sim: Option<SimReport>,
    packets: Option<PacketCounters>,
}

/// Log a manager line.
pub fn log(l: &LogEntry) {
    match l.level {
        LogLevel::Info => tracing::info!(at_ms = l.at_ms, "{}", l.message),
        LogLevel::Warn => tracing::warn!(at_ms = l.at_ms, "{}", l.message),
        LogLevel::Error => tracing::error!(at_ms = l.at_ms, "{}", l.message),
    }
}

impl Recorder {
    pub fn new(metrics: Metrics, shared: SharedReport, hosted: Option<Hosted>) -> Recorder {
        Recorder {
            history: History::default(),
            metrics,
            shared,
            hosted,
            sim: None,
            packets: None,
        }
    }

    /// Export the kernel's packet counters of paired interfaces as metrics.
    pub fn with_packet_counters(mut self, packets: PacketCounters) -> Recorder {
        self.packets = Some(packets);
        self
    }

    /// A devctl line for the hosted rules (the manager itself is level-triggered: the caller
    /// steps it after events).
    pub fn event(&mut self, line: &str) {
        if let Some(h) = &self.hosted {
            h.event(line);
        }
    }

    /// Re-read the hosted rules (SIGHUP).
    pub fn reload_hosted(&mut self) {
        if let Some(h) = &mut self.hosted {
            h.reload();
        }
    }

    /// Take in a step at `now` (the daemon's clock).
    pub fn stepped(&mut self, now: Duration, rep: &StepReport) {
        rep.log.iter().for_each(log);
        let changes = self.history.record(now, rep);
        self.metrics
            .record_step(rep.applied.len(), rep.failed.len(), &changes);
        if let Some(packets) = &self.packets {
            for p in &rep.status.pairs {
                for iface in std::iter::once(&p.synthetic).chain(p.vf.as_ref()) {
                    let (rx, tx) = packets(iface);
                    for (dir, n) in [("rx", rx), ("tx", tx)] {
                        if let Some(n) = n {
                            self.metrics.set_packets(iface, dir, n);
                        }
                    }
                }
            }
        }
        let mut r = lock(&self.shared);
        publish(&mut r, now, &rep.status, &self.history);
        r.now_ms = r.now_ms.max(self.sim.as_ref().map_or(0, |s| s.virtual_ms));
        r.devd = self.hosted.as_ref().map(Hosted::report);
        r.sim = self.sim.clone();
    }

    /// The simulated run's progress, for the report.
    pub fn set_sim(&mut self, sim: SimReport) {
        let mut r = lock(&self.shared);
        r.now_ms = sim.virtual_ms;
        r.sim = Some(sim.clone());
        self.sim = Some(sim);
    }

    /// Refresh the parts of the report that change without a step (hosted devd actions
    /// finish on their own thread; time passes).
    pub fn refresh(&self, now: Duration) {
        let mut r = lock(&self.shared);
        r.now_ms = self.sim.as_ref().map_or(ms(now), |s| s.virtual_ms);
        r.devd = self.hosted.as_ref().map(Hosted::report);
        r.sim = self.sim.clone();
    }
}

#[cfg(test)]
mod tests;
