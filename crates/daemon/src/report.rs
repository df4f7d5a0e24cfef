//! What `hvnet status` shows: the daemon's report, as JSON on the control socket and as a
//! table for people. The daemon fills it ([`crate::publish`]); the client renders it.

use std::fmt::Write as _;

use hvnet_vf::{DaemonStatus, DataPath, ErrorStatus, Mode, PairStatus, VfState};
use serde::{Deserialize, Serialize};

/// The whole report.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub version: String,
    pub pid: u32,
    /// `freebsd`, `linux` or `sim`.
    pub backend: String,
    /// `virtual` (simulator) or `monotonic` (ms since the daemon started).
    pub clock: String,
    /// Now, on the daemon's clock.
    pub now_ms: u64,
    /// Wall-clock time the daemon started (Unix ms).
    pub started_unix_ms: u64,
    /// The mode in effect (`null` before the first observation).
    pub mode: Option<Mode>,
    /// The last step found nothing to do and nothing is failing.
    pub converged: bool,
    /// Reconciler steps so far.
    pub steps: u64,
    pub pairs: Vec<PairReport>,
    pub unpaired_vfs: Vec<String>,
    pub daemons: Vec<DaemonStatus>,
    /// Steps that failed and are being retried.
    pub errors: Vec<ErrorStatus>,
    /// The latest actions, oldest first.
    pub recent_actions: Vec<ActionRecord>,
    pub actions_applied: u64,
    pub actions_failed: u64,
    /// Hosted devd rules, when configured.
    pub devd: Option<DevdReport>,
    /// The simulated run, with `--backend sim`.
    pub sim: Option<SimReport>,
}

/// One synthetic NIC and its VF: the manager's [`PairStatus`] and the daemon's history of
/// the pair (the JSON object has the fields of both).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct PairReport {
    #[serde(flatten)]
    pub status: PairStatus,
    /// Since when (daemon clock, ms) `path` carries the traffic.
    pub path_since_ms: u64,
    /// The same as wall-clock time (Unix ms); `null` with the simulator's virtual clock.
    pub path_since_unix_ms: Option<u64>,
    /// Changes between `hn` and `vf` seen by the daemon (a passing `dropped` is not one).
    pub failovers: u64,
    /// Time the pair's traffic was not on a VF (ms).
    pub without_vf_ms: u64,
}

/// A pair's JSON object with its keys in the order `hvnet status --json` has always had
/// them: the manager's fields with the daemon's history after `path`.
#[derive(Serialize)]
struct PairWire<'a> {
    synthetic: &'a str,
    vf: &'a Option<String>,
    vf_state: &'a VfState,
    vf_ready_in_ms: Option<u64>,
    aggregate: &'a Option<String>,
    holder: &'a str,
    path: &'a DataPath,
    path_since_ms: u64,
    path_since_unix_ms: Option<u64>,
    failovers: u64,
    without_vf_ms: u64,
    vf_losses: u32,
    dhcp: bool,
    waiting_for_lease: bool,
    overridden: bool,
    problems: &'a [String],
}

impl Serialize for PairReport {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let s = &self.status;
        PairWire {
            synthetic: &s.synthetic,
            vf: &s.vf,
            vf_state: &s.vf_state,
            vf_ready_in_ms: s.vf_ready_in_ms,
            aggregate: &s.aggregate,
            holder: &s.holder,
            path: &s.path,
            path_since_ms: self.path_since_ms,
            path_since_unix_ms: self.path_since_unix_ms,
            failovers: self.failovers,
            without_vf_ms: self.without_vf_ms,
            vf_losses: s.vf_losses,
            dhcp: s.dhcp,
            waiting_for_lease: s.waiting_for_lease,
            overridden: s.overridden,
            problems: &s.problems,
        }
        .serialize(serializer)
    }
}

/// One action the manager took, and how it went.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ActionRecord {
    pub at_ms: u64,
    /// The action, as a command-like line.
    pub op: String,
    pub ok: bool,
    /// Why it failed (it is retried; see `errors`).
    pub error: Option<String>,
}

/// Hosted devd rules.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DevdReport {
    pub rules: String,
    /// The shell that runs the actions, chosen at start.
    #[serde(default)]
    pub shell: String,
    /// How event values are quoted for it.
    #[serde(default)]
    pub quoting: String,
    pub events: u64,
    pub matched: u64,
    pub actions_run: u64,
    pub actions_failed: u64,
    /// Actions not run because an event value could not be quoted (a NUL).
    #[serde(default)]
    pub actions_refused: u64,
    /// The latest actions, oldest first.
    pub recent: Vec<DevdAction>,
}

/// One hosted devd action.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DevdAction {
    /// Wall-clock time the action ended (Unix ms).
    pub unix_ms: u64,
    pub command: String,
    pub ok: bool,
    /// `exit status 0`, `killed by signal 9`, ...
    pub result: String,
    pub elapsed_ms: u64,
}

/// The simulated run behind `--backend sim`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SimReport {
    pub scenario: String,
    pub seed: u64,
    /// Virtual seconds per wall second.
    pub speed: f64,
    pub virtual_ms: u64,
    pub end_ms: u64,
    pub finished: bool,
}

/// `12.3s`, `4m05s`, `2h03m`.
pub fn fmt_ms(ms: u64) -> String {
    let s = ms / 1000;
    if s < 60 {
        format!("{}.{}s", s, (ms % 1000) / 100)
    } else if s < 3600 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    }
}

impl Report {
    /// The human table of `hvnet status`.
    pub fn render(&self) -> String {
        let mut o = String::new();
        let clock = if self.clock == "virtual" {
            " (virtual time)"
        } else {
            ""
        };
        let _ = writeln!(
            o,
            "hvnet {} (pid {}): backend {}, mode {}, {}, up {}{clock}",
            self.version,
            self.pid,
            self.backend,
            self.mode.map_or("unknown", Mode::as_str),
            if self.converged {
                "converged"
            } else {
                "converging"
            },
            fmt_ms(self.now_ms)
        );
        if let Some(s) = &self.sim {
            let _ = writeln!(
                o,
                "simulator: scenario {} seed {} at {} of {} (x{}){}",
                s.scenario,
                s.seed,
                fmt_ms(s.virtual_ms),
                fmt_ms(s.end_ms),
                s.speed,
                if s.finished { ", finished" } else { "" }
            );
        }
        let _ = writeln!(o);
        if self.pairs.is_empty() {
            let _ = writeln!(o, "no synthetic NICs seen");
        } else {
            let rows: Vec<[String; 8]> = self
                .pairs
                .iter()
                .map(|p| {
                    let s = &p.status;
                    let state = match s.vf_ready_in_ms {
                        Some(ms) => format!("{} ({} left)", s.vf_state, fmt_ms(ms)),
                        None => s.vf_state.to_string(),
                    };
                    [
                        s.synthetic.clone(),
                        s.vf.clone().unwrap_or_else(|| "-".into()),
                        state,
                        s.holder.clone(),
                        s.path.to_string(),
                        format!(
                            "{} ago",
                            fmt_ms(self.now_ms.saturating_sub(p.path_since_ms))
                        ),
                        p.failovers.to_string(),
                        fmt_ms(p.without_vf_ms),
                    ]
                })
                .collect();
            let head = [
                "PAIR",
                "VF",
                "VF STATE",
                "CONFIG ON",
                "PATH",
                "SINCE",
                "FAILOVERS",
                "WITHOUT VF",
            ];
            let mut w: Vec<usize> = head.iter().map(|h| h.len()).collect();
            for r in &rows {
                for (i, c) in r.iter().enumerate() {
                    w[i] = w[i].max(c.len());
                }
            }
            let line = |cells: Vec<&str>| {
                cells
                    .iter()
                    .enumerate()
                    .map(|(i, c)| format!("{c:<width$}", width = w[i]))
                    .collect::<Vec<_>>()
                    .join("  ")
                    .trim_end()
                    .to_string()
            };
            let _ = writeln!(o, "{}", line(head.to_vec()));
            for r in &rows {
                let _ = writeln!(o, "{}", line(r.iter().map(String::as_str).collect()));
            }
            for p in self.pairs.iter().map(|p| &p.status) {
                for pr in &p.problems {
                    let _ = writeln!(o, "  {}: {pr}", p.synthetic);
                }
                if p.waiting_for_lease {
                    let _ = writeln!(o, "  {}: waiting for a DHCP lease", p.synthetic);
                }
            }
        }
        if !self.unpaired_vfs.is_empty() {
            let _ = writeln!(o, "unpaired VFs: {}", self.unpaired_vfs.join(", "));
        }
        for d in self.daemons.iter().filter(|d| d.device_present) {
            let _ = writeln!(
                o,
                "{}: {}{}",
                d.name,
                d.pid
                    .map_or_else(|| "not running".to_string(), |p| format!("pid {p}")),
                if d.restarts > 0 {
                    format!(", {} restarts", d.restarts)
                } else {
                    String::new()
                }
            );
        }
        if !self.errors.is_empty() {
            let _ = writeln!(o, "\nfailing (retried):");
            for e in &self.errors {
                let _ = writeln!(
                    o,
                    "  {}: {}{}: {} (attempt {}, next try in {})",
                    e.unit,
                    e.op,
                    e.interface
                        .as_ref()
                        .map(|i| format!(" on {i}"))
                        .unwrap_or_default(),
                    e.message,
                    e.failures,
                    fmt_ms(e.retry_in_ms)
                );
            }
        }
        let _ = writeln!(
            o,
            "\nactions: {} applied, {} failed; last {}:",
            self.actions_applied,
            self.actions_failed,
            self.recent_actions.len()
        );
        for a in &self.recent_actions {
            let _ = writeln!(
                o,
                "  {:>9}  {:<6}  {}{}",
                fmt_ms(a.at_ms),
                if a.ok { "ok" } else { "FAILED" },
                a.op,
                a.error
                    .as_ref()
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default()
            );
        }
        if let Some(d) = &self.devd {
            let _ = writeln!(
                o,
                "\ndevd rules {}: {} events, {} matched, {} actions run, {} failed, {} refused",
                d.rules, d.events, d.matched, d.actions_run, d.actions_failed, d.actions_refused
            );
            let _ = writeln!(
                o,
                "  actions run with {}, values quoted as {}",
                d.shell, d.quoting
            );
            for a in &d.recent {
                let _ = writeln!(
                    o,
                    "  {:<6}  {} ({}, {} ms)",
                    if a.ok { "ok" } else { "FAILED" },
                    a.command,
                    a.result,
                    a.elapsed_ms
                );
            }
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_well() {
        assert_eq!(fmt_ms(0), "0.0s");
        assert_eq!(fmt_ms(12_345), "12.3s");
        assert_eq!(fmt_ms(245_000), "4m05s");
        assert_eq!(fmt_ms(7_380_000), "2h03m");
    }

    #[test]
    fn table_has_one_row_per_pair_and_failed_actions_stand_out() {
        let r = Report {
            version: "0.1.0".into(),
            backend: "sim".into(),
            clock: "virtual".into(),
            now_ms: 30_000,
            mode: Some(Mode::NonTransparent),
            pairs: vec![PairReport {
                status: PairStatus {
                    synthetic: "hn0".into(),
                    vf: Some("mce0".into()),
                    vf_state: hvnet_vf::VfState::Ready,
                    holder: "lagg0".into(),
                    path: hvnet_vf::DataPath::Vf,
                    ..Default::default()
                },
                path_since_ms: 12_000,
                failovers: 1,
                without_vf_ms: 12_000,
                ..Default::default()
            }],
            recent_actions: vec![ActionRecord {
                at_ms: 11_900,
                op: "ifconfig lagg0 create".into(),
                ok: false,
                error: Some("boom".into()),
            }],
            actions_failed: 1,
            ..Default::default()
        };
        let t = r.render();
        let row = t.lines().find(|l| l.starts_with("hn0")).unwrap();
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(
            cells,
            ["hn0", "mce0", "ready", "lagg0", "vf", "18.0s", "ago", "1", "12.0s"]
        );
        assert!(t.contains("FAILED  ifconfig lagg0 create (boom)"), "{t}");
        assert!(t.contains("(virtual time)"));
        assert!(t.contains("mode non_transparent"), "{t}");
    }

    /// The wire form is today's: one flat object per pair with the names and values
    /// `hvnet status --json` has always had (the lab and scripts read them).
    #[test]
    fn a_pair_is_one_flat_json_object_with_the_status_names() {
        let p = PairReport {
            status: PairStatus {
                synthetic: "hn0".into(),
                vf: None,
                vf_state: hvnet_vf::VfState::HeldDown,
                vf_ready_in_ms: Some(7),
                holder: "hn0".into(),
                path: hvnet_vf::DataPath::Synthetic,
                vf_losses: 4,
                ..Default::default()
            },
            path_since_ms: 5,
            path_since_unix_ms: None,
            failovers: 2,
            without_vf_ms: 9,
        };
        // Byte for byte, key order included.
        assert_eq!(
            serde_json::to_string(&p).unwrap(),
            "{\"synthetic\":\"hn0\",\"vf\":null,\"vf_state\":\"held_down\",\"vf_ready_in_ms\":7,\
             \"aggregate\":null,\"holder\":\"hn0\",\"path\":\"hn\",\"path_since_ms\":5,\
             \"path_since_unix_ms\":null,\"failovers\":2,\"without_vf_ms\":9,\"vf_losses\":4,\
             \"dhcp\":false,\"waiting_for_lease\":false,\"overridden\":false,\"problems\":[]}"
        );
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "synthetic": "hn0", "vf": null, "vf_state": "held_down", "vf_ready_in_ms": 7,
                "aggregate": null, "holder": "hn0", "path": "hn", "path_since_ms": 5,
                "path_since_unix_ms": null, "failovers": 2, "without_vf_ms": 9, "vf_losses": 4,
                "dhcp": false, "waiting_for_lease": false, "overridden": false, "problems": []
            })
        );
        assert_eq!(serde_json::from_value::<PairReport>(v).unwrap(), p);
        let r = Report {
            mode: Some(Mode::Steered),
            daemons: vec![DaemonStatus {
                name: "hv_kvp_daemon".into(),
                device_present: true,
                pid: Some(3),
                restarts: 1,
            }],
            ..Default::default()
        };
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["mode"], "steered");
        assert_eq!(
            v["daemons"][0],
            serde_json::json!({"name": "hv_kvp_daemon", "device_present": true, "pid": 3, "restarts": 1})
        );
    }
}
