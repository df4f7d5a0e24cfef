//! The daemon's Prometheus metrics (prometheus-client), served by [`hvnet_metrics`] only when
//! `metrics` is configured.

use std::sync::atomic::AtomicU64;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::history::PairChange;

type Labels = Vec<(String, String)>;

/// The daemon's counters. Clones share the same values.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    pub failovers: Family<Labels, Counter>,
    pub without_vf: Family<Labels, Counter<f64, AtomicU64>>,
    pub on_vf: Family<Labels, Gauge>,
    pub packets: Family<Labels, Gauge>,
    pub actions_applied: Counter,
    pub actions_failed: Counter,
    pub steps: Counter,
    pub devd_events: Counter,
    pub devd_actions_run: Counter,
    pub devd_actions_failed: Counter,
}

/// Label set of one pair.
pub fn pair(synthetic: &str) -> Labels {
    vec![("synthetic".into(), synthetic.into())]
}

impl Metrics {
    /// Count one step: its actions and what changed for each pair.
    pub fn record_step(&self, applied: usize, failed: usize, changes: &[PairChange]) {
        self.steps.inc();
        self.actions_applied.inc_by(applied as u64);
        self.actions_failed.inc_by(failed as u64);
        for c in changes {
            let labels = pair(&c.synthetic);
            if let Some(d) = c.without_vf {
                self.without_vf
                    .get_or_create(&labels)
                    .inc_by(d.as_secs_f64());
            }
            if c.failover {
                self.failovers.get_or_create(&labels).inc();
            }
            self.on_vf.get_or_create(&labels).set(i64::from(c.on_vf));
        }
    }

    /// An interface's packet counter as the kernel counts it (`direction`: `rx` or `tx`).
    pub fn set_packets(&self, interface: &str, direction: &str, packets: u64) {
        self.packets
            .get_or_create(&vec![
                ("interface".into(), interface.into()),
                ("direction".into(), direction.into()),
            ])
            .set(i64::try_from(packets).unwrap_or(i64::MAX));
    }

    /// A registry exposing these counters.
    pub fn registry(&self) -> Registry {
        let mut r = Registry::with_prefix("hvnet");
        r.register(
            "failovers",
            "Changes of the path carrying a pair's traffic (hn <-> VF)",
            self.failovers.clone(),
        );
        r.register(
            "without_vf_seconds",
            "Time a pair's traffic was not on a VF",
            self.without_vf.clone(),
        );
        r.register(
            "on_vf",
            "1 when the pair's traffic is on its VF, 0 when on the synthetic NIC",
            self.on_vf.clone(),
        );
        r.register(
            "interface_packets",
            "Packets counted by the kernel per interface and direction, where known",
            self.packets.clone(),
        );
        r.register(
            "actions_applied",
            "Actions the VF manager applied successfully",
            self.actions_applied.clone(),
        );
        r.register(
            "actions_failed",
            "Actions that failed (they are retried)",
            self.actions_failed.clone(),
        );
        r.register(
            "reconcile_steps",
            "Observe/plan/apply steps",
            self.steps.clone(),
        );
        r.register(
            "devd_events",
            "Events seen by the hosted devd rules",
            self.devd_events.clone(),
        );
        r.register(
            "devd_actions_run",
            "Hosted devd actions run",
            self.devd_actions_run.clone(),
        );
        r.register(
            "devd_actions_failed",
            "Hosted devd actions that failed (non-zero exit, signal, or not started)",
            self.devd_actions_failed.clone(),
        );
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hvnet_metrics::exposition;

    #[test]
    fn counters_appear_in_the_exposition() {
        let m = Metrics::default();
        m.failovers.get_or_create(&pair("hn0")).inc_by(2);
        m.without_vf.get_or_create(&pair("hn0")).inc_by(1.5);
        m.actions_failed.inc();
        let text = exposition(&m.registry());
        assert!(
            text.contains("hvnet_failovers_total{synthetic=\"hn0\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("hvnet_without_vf_seconds_total{synthetic=\"hn0\"} 1.5"),
            "{text}"
        );
        assert!(text.contains("hvnet_actions_failed_total 1"), "{text}");
        assert!(text.ends_with("# EOF\n"));
    }
}
