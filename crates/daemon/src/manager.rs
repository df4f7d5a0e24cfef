//! The daemon's manager: the reconciler plus what `hvnet status` needs beyond one step —
//! since when each pair's traffic is on its path, failovers, time spent without the VF, the
//! latest actions with their results — and the hosted devd rules. Backend-neutral: the
//! engine loops in [`crate::run`] call [`Manager::step`] with a backend and a clock.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hvnet_vf::{
    Backend, DataPath, Inputs, LogLevel, ManagerConfig, NetConfigSource, ReadinessGate, Reconciler,
    Status,
};

use crate::hosted::Hosted;
use crate::metrics::{pair, Metrics};
use crate::report::{ActionRecord, PairReport, Report, SimReport};

/// How many actions the report keeps.
const RECENT_ACTIONS: usize = 32;

/// How long a planned switch holds a VF off when the announced removal never comes.
pub const PLANNED_HOLD: Duration = Duration::from_secs(30);

fn ms(d: Duration) -> u64 {
    d.as_millis().min(u128::from(u64::MAX)) as u64
}

fn path_name(p: DataPath) -> &'static str {
    match p {
        DataPath::Synthetic => "hn",
        DataPath::Vf => "vf",
        DataPath::Dropped => "dropped",
    }
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

/// The report shared with the control socket.
pub type SharedReport = Arc<Mutex<Report>>;

/// Lock a shared report, whatever a panicking holder left behind.
pub fn lock(r: &SharedReport) -> std::sync::MutexGuard<'_, Report> {
    r.lock().unwrap_or_else(|p| p.into_inner())
}

/// The reconciler with history, counters and hosted rules.
pub struct Manager {
    rec: Reconciler,
    net: Box<dyn NetConfigSource>,
    /// Scan this directory for `hyperv_vfup.hnX` overrides (real systems only).
    override_dir: Option<PathBuf>,
    /// Read per-interface packet counters from this sysfs root (Linux).
    sysfs: Option<PathBuf>,
    pairs: BTreeMap<String, PairTrack>,
    actions: VecDeque<ActionRecord>,
    applied: u64,
    failed: u64,
    steps: u64,
    hosted: Option<Hosted>,
    metrics: Metrics,
    shared: SharedReport,
    sim: Option<SimReport>,
    /// VFs the host announced to take away (planned switch), since when: kept off until
    /// they have gone, or for [`PLANNED_HOLD`].
    leaving: BTreeMap<String, Duration>,
}

impl Manager {
    pub fn new(
        config: ManagerConfig,
        net: Box<dyn NetConfigSource>,
        hosted: Option<Hosted>,
        metrics: Metrics,
        shared: SharedReport,
    ) -> Manager {
        Manager {
            rec: Reconciler::new(config),
            net,
            override_dir: None,
            sysfs: None,
            pairs: BTreeMap::new(),
            actions: VecDeque::new(),
            applied: 0,
            failed: 0,
            steps: 0,
            hosted,
            metrics,
            shared,
            sim: None,
            leaving: BTreeMap::new(),
        }
    }

    /// The host announced that `synthetic`'s VF goes (planned switch): move its traffic to
    /// the synthetic NIC at the next step and keep it there until that VF has gone.
    pub fn leave(&mut self, synthetic: &str, now: Duration) {
        let vf = self
            .rec
            .status()
            .and_then(|s| s.pairs.iter().find(|p| p.synthetic == synthetic))
            .and_then(|p| p.vf.clone());
        match vf {
            Some(vf) => {
                tracing::info!(
                    at_ms = ms(now),
                    "{synthetic}: the host announced that VF {vf} goes; moving traffic to {synthetic}"
                );
                self.leaving.insert(vf, now);
            }
            None => tracing::info!(
                at_ms = ms(now),
                "{synthetic}: the host announced a VF removal, but {synthetic} has no VF"
            ),
        }
    }

    /// Look for `hyperv_vfup.hnX` overrides in the configured directory on every step
    /// (the FreeBSD backend runs them).
    #[cfg_attr(not(target_os = "freebsd"), allow(dead_code))]
    pub fn with_override_scan(mut self) -> Manager {
        self.override_dir = Some(PathBuf::from(&self.rec.config().vfup_dir));
        self
    }

    /// Report kernel packet counters of paired interfaces from `sysfs` (Linux).
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    pub fn with_sysfs_packets(mut self, sysfs: PathBuf) -> Manager {
        self.sysfs = Some(sysfs);
        self
    }

    /// A fresh reconciler (the simulator restarted the agent): only timers are lost, the
    /// state is read back from the system; history and counters stay.
    pub fn restart(&mut self, config: ManagerConfig, net: Box<dyn NetConfigSource>) {
        self.rec = Reconciler::new(config);
        self.net = net;
    }

    /// Replace rc.conf-derived options and re-read the hosted rules (SIGHUP).
    pub fn reload(&mut self, config: Option<(ManagerConfig, Box<dyn NetConfigSource>)>) {
        if let Some((c, n)) = config {
            self.rec.set_config(c);
            self.net = n;
        }
        if let Some(h) = &mut self.hosted {
            h.reload();
        }
    }

    /// The simulated run's progress, for the report.
    pub fn set_sim(&mut self, sim: SimReport) {
        self.sim = Some(sim);
        let mut r = lock(&self.shared);
        r.sim = self.sim.clone();
        r.now_ms = sim_now(&self.sim).unwrap_or(r.now_ms);
    }

    /// A devctl line from the backend: hosted rules only (the reconciler is
    /// level-triggered; the caller steps it after events).
    pub fn event(&mut self, line: &str) {
        if let Some(h) = &self.hosted {
            h.event(line);
        }
    }

    fn gate_open(&self) -> bool {
        match &self.rec.config().gate {
            None => false,
            Some(ReadinessGate::File(f)) => Path::new(f).exists(),
            Some(ReadinessGate::Command(argv)) => argv.split_first().is_some_and(|(p, args)| {
                std::process::Command::new(p)
                    .args(args)
                    .stdin(std::process::Stdio::null())
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success())
            }),
        }
    }

    fn overrides(&self) -> BTreeSet<String> {
        let Some(dir) = &self.override_dir else {
            return BTreeSet::new();
        };
        std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                e.file_name()
                    .to_str()
                    .and_then(|n| n.strip_prefix("hyperv_vfup."))
                    .filter(|n| !n.is_empty())
                    .map(str::to_string)
            })
            .collect()
    }

    /// One observe/plan/apply step at `now` (daemon clock). Returns when to step again at
    /// the latest.
    pub fn step(&mut self, now: Duration, backend: &mut dyn Backend) -> Option<Duration> {
        let inputs = Inputs {
            now,
            gate_open: self.gate_open(),
            overrides: self.overrides(),
            leaving: self.leaving.keys().cloned().collect(),
        };
        let rep = self.rec.step(backend, self.net.as_ref(), &inputs);
        // The hold ends when the VF has gone (or never came to go).
        self.leaving.retain(|vf, since| {
            let present = rep.status.pairs.iter().any(|p| p.vf.as_ref() == Some(vf));
            if present && now.saturating_sub(*since) >= PLANNED_HOLD {
                tracing::warn!(
                    "VF {vf} was announced to go {} s ago and is still here; using it again",
                    PLANNED_HOLD.as_secs()
                );
            }
            present && now.saturating_sub(*since) < PLANNED_HOLD
        });
        self.steps += 1;
        self.metrics.steps.inc();
        for l in &rep.log {
            match l.level {
                LogLevel::Info => tracing::info!(at_ms = l.at_ms, "{}", l.message),
                LogLevel::Warn => tracing::warn!(at_ms = l.at_ms, "{}", l.message),
                LogLevel::Error => tracing::error!(at_ms = l.at_ms, "{}", l.message),
            }
        }
        for op in &rep.applied {
            self.record(ActionRecord {
                at_ms: ms(now),
                op: op.to_string(),
                ok: true,
                error: None,
            });
        }
        for (op, e) in &rep.failed {
            self.record(ActionRecord {
                at_ms: ms(now),
                op: op.to_string(),
                ok: false,
                error: Some(e.detail()),
            });
        }
        self.applied += rep.applied.len() as u64;
        self.failed += rep.failed.len() as u64;
        self.metrics
            .actions_applied
            .inc_by(rep.applied.len() as u64);
        self.metrics.actions_failed.inc_by(rep.failed.len() as u64);
        self.track(now, &rep.status);
        self.publish(now, &rep.status);
        rep.next_wakeup
    }

    fn record(&mut self, a: ActionRecord) {
        self.actions.push_back(a);
        while self.actions.len() > RECENT_ACTIONS {
            self.actions.pop_front();
        }
    }

    fn track(&mut self, now: Duration, status: &Status) {
        for p in &status.pairs {
            let labels = pair(&p.synthetic);
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
            if t.path != DataPath::Vf {
                t.without_vf += elapsed;
                self.metrics
                    .without_vf
                    .get_or_create(&labels)
                    .inc_by(elapsed.as_secs_f64());
            }
            t.updated = now;
            if p.path != t.path {
                tracing::info!(
                    at_ms = ms(now),
                    "{}: traffic moved from {} to {}",
                    p.synthetic,
                    path_name(t.path),
                    path_name(p.path)
                );
                t.path = p.path;
                t.since = now;
                if p.path != DataPath::Dropped && p.path != t.carrying {
                    t.carrying = p.path;
                    t.failovers += 1;
                    self.metrics.failovers.get_or_create(&labels).inc();
                }
            }
            self.metrics
                .on_vf
                .get_or_create(&labels)
                .set(i64::from(p.path == DataPath::Vf));
            if let Some(sysfs) = &self.sysfs {
                for iface in std::iter::once(&p.synthetic).chain(p.vf.as_ref()) {
                    for dir in ["rx", "tx"] {
                        let f = sysfs
                            .join("class/net")
                            .join(iface)
                            .join(format!("statistics/{dir}_packets"));
                        if let Some(n) = std::fs::read_to_string(f)
                            .ok()
                            .and_then(|s| s.trim().parse::<i64>().ok())
                        {
                            self.metrics
                                .packets
                                .get_or_create(&vec![
                                    ("interface".into(), iface.clone()),
                                    ("direction".into(), dir.into()),
                                ])
                                .set(n);
                        }
                    }
                }
            }
        }
    }

    fn publish(&self, now: Duration, status: &Status) {
        let mut pairs: Vec<PairReport> = status
            .pairs
            .iter()
            .map(|p| {
                let t = self.pairs.get(&p.synthetic);
                PairReport {
                    status: p.clone(),
                    path_since_ms: t.map_or(0, |t| ms(t.since)),
                    path_since_unix_ms: None,
                    failovers: t.map_or(0, |t| t.failovers),
                    without_vf_ms: t.map_or(0, |t| ms(t.without_vf)),
                }
            })
            .collect();
        let mut r = lock(&self.shared);
        if r.clock == "monotonic" {
            let started = r.started_unix_ms;
            for p in &mut pairs {
                p.path_since_unix_ms = Some(started + p.path_since_ms);
            }
        }
        r.now_ms = sim_now(&self.sim).unwrap_or(ms(now)).max(ms(now));
        r.mode = Some(status.mode);
        r.converged = status.converged;
        r.steps = self.steps;
        r.pairs = pairs;
        r.unpaired_vfs = status.unpaired_vfs.clone();
        r.daemons = status.daemons.clone();
        r.errors = status.errors.clone();
        r.recent_actions = self.actions.iter().cloned().collect();
        r.actions_applied = self.applied;
        r.actions_failed = self.failed;
        r.devd = self.hosted.as_ref().map(Hosted::report);
        r.sim = self.sim.clone();
    }

    /// Refresh the parts of the report that change without a step (hosted devd actions
    /// finish on their own thread; time passes).
    pub fn refresh(&self, now: Duration) {
        let mut r = lock(&self.shared);
        r.now_ms = sim_now(&self.sim).unwrap_or(ms(now));
        r.devd = self.hosted.as_ref().map(Hosted::report);
        r.sim = self.sim.clone();
    }
}

fn sim_now(sim: &Option<SimReport>) -> Option<u64> {
    sim.as_ref().map(|s| s.virtual_ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hvnet_vf::{IfKind, Interface, Mac, MemoryBackend, NetConfig};

    fn iface(name: &str, mac: Mac, kind: IfKind) -> Interface {
        Interface {
            name: name.into(),
            kind,
            mac,
            admin_up: true,
            link_up: true,
            running: true,
            mtu: 1500,
            ..Default::default()
        }
    }

    /// The planned switch's hold: announced, the VF is left at once and stays unused while
    /// it is there; once it has gone, a VF that comes (back) is used after its delay.
    #[test]
    fn a_planned_switch_holds_the_vf_off_until_it_has_gone() {
        let shared = SharedReport::default();
        let mut m = Manager::new(
            ManagerConfig {
                mode: hvnet_vf::ModeSetting::Steered,
                ..Default::default()
            },
            Box::new(NetConfig::default()),
            None,
            Metrics::default(),
            shared.clone(),
        );
        let mac = "00:15:5d:00:00:01".parse().unwrap();
        let vf = iface(
            "vf0",
            mac,
            IfKind::Vf {
                driver: "mlx5_core".into(),
            },
        );
        let mut b = MemoryBackend::default();
        b.view.interfaces.push(iface("hn0", mac, IfKind::Synthetic));
        b.view.interfaces.push(vf.clone());
        let at = |ms: u64| Duration::from_millis(ms);
        for t in (0..=2200).step_by(100) {
            m.step(at(t), &mut b);
        }
        let pair = |shared: &SharedReport| {
            let r = lock(shared);
            (
                r.pairs[0].status.path.to_string(),
                r.pairs[0].status.vf_state.to_string(),
            )
        };
        assert_eq!(pair(&shared), ("vf".into(), "ready".into()));
        m.leave("hn0", at(2300));
        m.step(at(2300), &mut b);
        assert!(b.view.egress_redirects.is_empty(), "left at once");
        for t in (2400..=5000).step_by(100) {
            m.step(at(t), &mut b);
        }
        assert_eq!(pair(&shared), ("hn".into(), "leaving".into()));
        assert!(
            b.view.egress_redirects.is_empty(),
            "held off while it is there"
        );
        // It goes; one comes back and is used after its delay.
        b.view.interfaces.retain(|i| i.name != "vf0");
        m.step(at(5100), &mut b);
        b.view.interfaces.push(vf);
        for t in (5200..=7400).step_by(100) {
            m.step(at(t), &mut b);
        }
        assert_eq!(pair(&shared), ("vf".into(), "ready".into()));
        // An announcement for a NIC without a VF changes nothing.
        m.leave("hn9", at(7500));
        assert!(m.leaving.is_empty());
    }

    #[test]
    fn overrides_are_found_by_file_name() {
        let dir = tempfile::tempdir().unwrap();
        for f in ["hyperv_vfup.hn1", "hyperv_vfup.", "other"] {
            std::fs::write(dir.path().join(f), "").unwrap();
        }
        let m = Manager::new(
            ManagerConfig {
                vfup_dir: dir.path().display().to_string(),
                ..Default::default()
            },
            Box::new(NetConfig::default()),
            None,
            Metrics::default(),
            SharedReport::default(),
        );
        assert!(m.overrides().is_empty());
        let m = m.with_override_scan();
        assert_eq!(m.overrides().into_iter().collect::<Vec<_>>(), ["hn1"]);
    }

    #[test]
    fn pair_history_counts_failovers_and_time_without_vf() {
        let shared = SharedReport::default();
        let metrics = Metrics::default();
        let sysfs = tempfile::tempdir().unwrap();
        let stats = sysfs.path().join("class/net/hn0/statistics");
        std::fs::create_dir_all(&stats).unwrap();
        std::fs::write(stats.join("rx_packets"), "1234\n").unwrap();
        std::fs::write(stats.join("tx_packets"), "99\n").unwrap();
        let m = Manager::new(
            ManagerConfig {
                mode: hvnet_vf::ModeSetting::Steered,
                ..Default::default()
            },
            Box::new(NetConfig::default()),
            None,
            metrics.clone(),
            shared.clone(),
        );
        let mut m = m.with_sysfs_packets(sysfs.path().to_path_buf());
        let mac = "00:15:5d:00:00:01".parse().unwrap();
        let mut b = MemoryBackend::default();
        b.view.interfaces.push(iface("hn0", mac, IfKind::Synthetic));
        let mut now = Duration::ZERO;
        let mut step = |m: &mut Manager, b: &mut MemoryBackend, to: Duration| {
            while now < to {
                m.step(now, b);
                now += Duration::from_millis(100);
            }
        };
        step(&mut m, &mut b, Duration::from_secs(5));
        b.view.interfaces.push(iface(
            "vf0",
            mac,
            IfKind::Vf {
                driver: "mlx5_core".into(),
            },
        ));
        step(&mut m, &mut b, Duration::from_secs(10));
        {
            let r = lock(&shared);
            assert_eq!(r.pairs[0].status.path, DataPath::Vf, "{r:?}");
            assert_eq!(r.pairs[0].failovers, 1);
            // hn from 0 until the VF was used (2 s delay after 5 s, plus a settle step).
            let without = r.pairs[0].without_vf_ms;
            assert!((7000..=7300).contains(&without), "{without}");
            assert!(r.actions_applied > 0);
            assert!(r.recent_actions.iter().all(|a| a.ok));
        }
        b.view.interfaces.retain(|i| i.name != "vf0");
        step(&mut m, &mut b, Duration::from_secs(12));
        let r = lock(&shared);
        assert_eq!(r.pairs[0].status.path, DataPath::Synthetic);
        assert_eq!(r.pairs[0].failovers, 2);
        assert!(r.pairs[0].path_since_ms >= 10_000);
        let text = hvnet_metrics::exposition(&metrics.registry());
        assert!(
            text.contains("hvnet_failovers_total{synthetic=\"hn0\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("hvnet_interface_packets{interface=\"hn0\",direction=\"rx\"} 1234"),
            "{text}"
        );
        assert!(
            text.contains("hvnet_interface_packets{interface=\"hn0\",direction=\"tx\"} 99"),
            "{text}"
        );
    }
}
