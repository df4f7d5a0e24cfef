//! What the daemon has done so far, for `hvnet status` (dumped as JSON on SIGUSR1).

use std::path::Path;

use serde::Serialize;

/// Events by kind.
#[derive(Debug, Default, Clone, Serialize)]
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
#[derive(Debug, Default, Clone, Serialize)]
pub struct Counters {
    pub pid: u32,
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
    /// Write the counters as one JSON object, atomically (temp file + rename), mode 0600.
    pub fn write_json(&self, path: &Path) -> std::io::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let tmp = path.with_extension("json.tmp");
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        let text = serde_json::to_string(self).map_err(std::io::Error::other)?;
        writeln!(f, "{text}")?;
        drop(f);
        std::fs::rename(&tmp, path)
    }
}
