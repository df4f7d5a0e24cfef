//! What the daemon has done so far, for `hvnet status --devd` (written as JSON at most once a
//! second after a change, on SIGUSR1 and at exit) and for `--metrics` (a [`Collector`] over a
//! snapshot the event loop publishes).

use std::path::Path;
use std::sync::{Arc, Mutex};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use serde::{Deserialize, Serialize};

/// Events by kind.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventCounts {
    pub notify: u64,
    pub attach: u64,
    pub detach: u64,
    pub nomatch: u64,
    pub unknown: u64,
    /// Empty records: logged and skipped.
    pub malformed: u64,
    /// Records longer than the devctl limit (1015 bytes): logged and skipped.
    pub oversized: u64,
}

/// Counters since start. Field names are part of the status-file contract.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Counters {
    pub pid: u32,
    /// The shell that runs actions, chosen at start.
    #[serde(default)]
    pub shell: String,
    /// How event values are quoted for it.
    #[serde(default)]
    pub quoting: String,
    /// Every record read from the event source (devd's "Events received so far").
    pub events_received: u64,
    pub events: EventCounts,
    /// Events that matched a rule.
    pub events_matched: u64,
    pub actions_run: u64,
    /// Actions whose shell exited non-zero or died from a signal (devd ignores this).
    pub actions_failed: u64,
    /// Actions that ran longer than `--action-timeout` and were killed.
    pub actions_timed_out: u64,
    /// Actions not run because a value could not be quoted for the shell (a NUL).
    #[serde(default)]
    pub actions_refused: u64,
    /// Total wall time spent in actions, milliseconds.
    pub action_time_ms: u64,
    pub clients_accepted: u64,
    pub clients_connected: u64,
    /// Dropped after a failed or short send.
    pub clients_dropped: u64,
    /// Reaped after they hung up.
    pub clients_reaped: u64,
    pub bytes_forwarded: u64,
    pub reloads: u64,
    pub reload_failures: u64,
}

impl Counters {
    /// Write the counters as one JSON object, mode 0600, atomically and without following
    /// anything planted in the directory ([`hvnet_sys::shared_dir::write_atomic`]).
    pub fn write_json(&self, path: &Path) -> std::io::Result<()> {
        let mut text = serde_json::to_vec(self).map_err(std::io::Error::other)?;
        text.push(b'\n');
        hvnet_sys::shared_dir::write_atomic(path, &text, 0o600)
    }
}

/// The latest counters, shared between the event loop (which publishes a copy after each
/// batch of records) and the metrics thread (which reads it on each scrape).
#[derive(Debug, Clone, Default)]
pub struct Snapshot(Arc<Mutex<Counters>>);

impl Snapshot {
    pub fn publish(&self, c: &Counters) {
        let mut g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        g.clone_from(c);
    }

    pub fn get(&self) -> Counters {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// A registry (prefix `hvnet_devd`) exposing the snapshot.
    pub fn registry(&self) -> Registry {
        let mut r = Registry::with_prefix("hvnet_devd");
        r.register_collector(Box::new(self.clone()));
        r
    }
}

fn counter(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    v: impl prometheus_client::encoding::EncodeCounterValue,
) -> Result<(), std::fmt::Error> {
    let m = ConstCounter::new(v);
    m.encode(enc.encode_descriptor(name, help, None, m.metric_type())?)
}

impl Collector for Snapshot {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let c = self.get();
        let e = &c.events;
        counter(
            &mut enc,
            "events_received",
            "Records read from the event source",
            c.events_received,
        )?;
        {
            let m = ConstCounter::<u64>::default();
            let mut family = enc.encode_descriptor(
                "events",
                "Records by kind (malformed and oversized ones are skipped)",
                None,
                m.metric_type(),
            )?;
            for (kind, v) in [
                ("notify", e.notify),
                ("attach", e.attach),
                ("detach", e.detach),
                ("nomatch", e.nomatch),
                ("unknown", e.unknown),
                ("malformed", e.malformed),
                ("oversized", e.oversized),
            ] {
                ConstCounter::new(v).encode(family.encode_family(&[("kind", kind)])?)?;
            }
        }
        counter(
            &mut enc,
            "events_matched",
            "Events that matched a rule",
            c.events_matched,
        )?;
        counter(&mut enc, "actions", "Actions run", c.actions_run)?;
        counter(
            &mut enc,
            "action_failures",
            "Actions that exited non-zero or died from a signal",
            c.actions_failed,
        )?;
        counter(
            &mut enc,
            "action_timeouts",
            "Actions killed after --action-timeout",
            c.actions_timed_out,
        )?;
        counter(
            &mut enc,
            "action_refusals",
            "Actions not run because an event value could not be quoted for the shell",
            c.actions_refused,
        )?;
        counter(
            &mut enc,
            "action_seconds",
            "Wall time spent in actions",
            c.action_time_ms as f64 / 1000.0,
        )?;
        counter(
            &mut enc,
            "clients_accepted",
            "Socket clients accepted",
            c.clients_accepted,
        )?;
        let g = ConstGauge::new(c.clients_connected as i64);
        g.encode(enc.encode_descriptor(
            "clients",
            "Socket clients connected",
            None,
            g.metric_type(),
        )?)?;
        counter(
            &mut enc,
            "clients_dropped",
            "Clients dropped after a failed or short send",
            c.clients_dropped,
        )?;
        counter(
            &mut enc,
            "clients_reaped",
            "Clients reaped after they hung up",
            c.clients_reaped,
        )?;
        counter(
            &mut enc,
            "forwarded_bytes",
            "Bytes forwarded to clients",
            c.bytes_forwarded,
        )?;
        counter(&mut enc, "reloads", "Configuration reloads", c.reloads)?;
        counter(
            &mut enc,
            "reload_failures",
            "Reloads that failed (the previous rules stay)",
            c.reload_failures,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hvnet_metrics::exposition;

    #[test]
    fn the_snapshot_is_exposed_with_the_devd_prefix() {
        let s = Snapshot::default();
        let mut c = Counters::default();
        c.events.attach = 2;
        c.actions_run = 3;
        c.action_time_ms = 1500;
        c.clients_connected = 4;
        s.publish(&c);
        let text = exposition(&s.registry());
        for want in [
            "hvnet_devd_events_total{kind=\"attach\"} 2\n",
            "hvnet_devd_events_total{kind=\"notify\"} 0\n",
            "hvnet_devd_actions_total 3\n",
            "hvnet_devd_action_seconds_total 1.5\n",
            "hvnet_devd_clients 4\n",
            "hvnet_devd_clients_dropped_total 0\n",
        ] {
            assert!(text.contains(want), "{want:?} not in\n{text}");
        }
        assert!(text.ends_with("# EOF\n"));
    }
}
