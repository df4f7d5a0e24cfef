//! The reconciler: observe, plan, apply, remember only timers.
//!
//! Each [`Reconciler::step`] re-reads the whole system, so lost, repeated
//! or reordered events and restarts do not matter: events are wake-ups.
//! In memory are only: when each VF was first seen (its delay), flap
//! hold-downs, retry back-offs of failed units, daemon restart back-offs,
//! and which VF an override hook already ran for.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use serde::Serialize;

use crate::backend::{Backend, BackendError};
use crate::config::{ManagerConfig, Mode, MIN_VF_DELAY};
use crate::model::{Daemon, Mac, Op, SystemView};
use crate::netconf::NetConfigSource;
use crate::plan::{pairing, plan, Plan, PlanInput};
use crate::status::{DaemonStatus, ErrorStatus, PairStatus, Status, VfState};

/// The readiness gate as the caller last saw it. A gate that says ready releases a waiting
/// VF after [`MIN_VF_DELAY`] instead of the full delay; it never holds a VF back longer
/// than the delay, and never takes traffic off a VF it released.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Readiness {
    /// No gate is configured: VFs wait for their delay.
    #[default]
    NoGate,
    /// The gate has not said ready (yet), or did not answer in time.
    NotReady,
    /// The gate says ready.
    Ready,
}

/// What the caller knows at this step (time and I/O results).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inputs {
    /// Monotonic time (virtual in the simulator).
    pub now: Duration,
    /// The readiness gate's latest answer.
    pub readiness: Readiness,
    /// Synthetic NICs that have a `hyperv_vfup.<name>` override program.
    pub overrides: BTreeSet<String>,
    /// VFs announced to leave soon (planned switch).
    pub leaving: BTreeSet<String>,
}

#[derive(Debug, Clone)]
struct VfTimer {
    /// The VF was allowed to carry traffic (only such VFs count as flaps).
    used: bool,
    mac: Mac,
    first_seen: Duration,
    synthetic: Option<String>,
    /// A readiness gate released it: it stays released whatever the gate says later.
    gate_released: bool,
}

#[derive(Debug, Clone, Default)]
struct Flap {
    losses: VecDeque<Duration>,
    hold_until: Duration,
    hold: Duration,
}

#[derive(Debug, Clone)]
struct Failure {
    count: u32,
    next_try: Duration,
    /// What failed last, as [`ErrorStatus`] shows it.
    op: &'static str,
    interface: Option<String>,
    message: String,
}

impl Failure {
    fn new(count: u32, next_try: Duration, e: &BackendError) -> Self {
        Failure {
            count,
            next_try,
            op: e.op(),
            interface: e.interface().map(str::to_string),
            message: e.detail(),
        }
    }
}

#[derive(Debug, Clone, Default)]
struct DaemonTrack {
    /// Started by us or seen running since the device appeared.
    alive: bool,
    pid: Option<u32>,
    seen_since: Option<Duration>,
    deaths: u32,
    died_at: Option<Duration>,
    restarts: u32,
}

/// One line of the manager's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogEntry {
    pub at_ms: u64,
    pub level: LogLevel,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LogLevel {
    Info,
    Warn,
    Error,
}

/// The result of one step.
#[derive(Debug)]
pub struct StepReport {
    /// Ops applied successfully, in order.
    pub applied: Vec<Op>,
    /// Ops that failed (at most one per unit).
    pub failed: Vec<(Op, BackendError)>,
    /// Call `step` again at this time at the latest (events may come first).
    pub next_wakeup: Option<Duration>,
    pub status: Status,
    /// Log lines produced by this step.
    pub log: Vec<LogEntry>,
}

/// Time the reconciler waits after applying ops before checking the result.
pub const SETTLE: Duration = Duration::from_millis(100);

/// How often a configured readiness gate is polled while a VF waits on it.
pub const GATE_POLL: Duration = Duration::from_millis(500);

/// The VF manager's control loop state.
#[derive(Debug, Clone)]
pub struct Reconciler {
    config: ManagerConfig,
    vfs: BTreeMap<String, VfTimer>,
    flaps: BTreeMap<String, Flap>,
    failures: BTreeMap<String, Failure>,
    daemons: BTreeMap<Daemon, DaemonTrack>,
    hooks_done: BTreeMap<String, String>,
    last_status: Option<Status>,
}

fn ms(d: Duration) -> u64 {
    d.as_millis().min(u128::from(u64::MAX)) as u64
}

impl Reconciler {
    pub fn new(config: ManagerConfig) -> Self {
        Reconciler {
            config,
            vfs: BTreeMap::new(),
            flaps: BTreeMap::new(),
            failures: BTreeMap::new(),
            daemons: BTreeMap::new(),
            hooks_done: BTreeMap::new(),
            last_status: None,
        }
    }

    pub fn config(&self) -> &ManagerConfig {
        &self.config
    }

    /// Replace the options (e.g. after rc.conf changed); timers are kept.
    pub fn set_config(&mut self, config: ManagerConfig) {
        self.config = config;
    }

    /// The status of the last step.
    pub fn status(&self) -> Option<&Status> {
        self.last_status.as_ref()
    }

    /// Update VF timers and flap records from a fresh view.
    fn track_vfs(&mut self, view: &SystemView, mode: Mode, now: Duration, log: &mut Vec<LogEntry>) {
        let (pairs, _) = pairing(view, mode);
        let mut owner: BTreeMap<&str, &str> = BTreeMap::new();
        for (hn, vfs) in &pairs {
            for v in vfs {
                owner.insert(v.as_str(), hn.as_str());
            }
        }
        let present: BTreeSet<&str> = view
            .interfaces
            .iter()
            .filter(|i| i.is_vf())
            .map(|i| i.name.as_str())
            .collect();
        let gone: Vec<String> = self
            .vfs
            .iter()
            .filter(|(n, t)| {
                !present.contains(n.as_str()) || view.interface(n).is_some_and(|i| i.mac != t.mac)
            })
            .map(|(n, _)| n.clone())
            .collect();
        for name in gone {
            let t = self.vfs.remove(&name).expect("listed above");
            if let Some(hn) = t.synthetic {
                self.hooks_done.retain(|_, v| *v != name);
                if t.used {
                    self.record_loss(&hn, now, log);
                }
                log.push(LogEntry {
                    at_ms: ms(now),
                    level: LogLevel::Info,
                    message: format!("VF {name} of {hn} left"),
                });
            }
        }
        for i in view.interfaces.iter().filter(|i| i.is_vf()) {
            let syn = owner.get(i.name.as_str()).map(|s| s.to_string());
            let t = self.vfs.entry(i.name.clone()).or_insert_with(|| {
                log.push(LogEntry {
                    at_ms: ms(now),
                    level: LogLevel::Info,
                    message: format!(
                        "VF {} appeared{}",
                        i.name,
                        syn.as_ref()
                            .map(|s| format!(" for {s}"))
                            .unwrap_or_default()
                    ),
                });
                VfTimer {
                    used: false,
                    mac: i.mac,
                    first_seen: now,
                    synthetic: None,
                    gate_released: false,
                }
            });
            if syn.is_some() {
                t.synthetic = syn;
            }
        }
    }

    fn record_loss(&mut self, hn: &str, now: Duration, log: &mut Vec<LogEntry>) {
        let d = self.config.damping;
        let f = self.flaps.entry(hn.to_string()).or_default();
        f.losses.push_back(now);
        while f
            .losses
            .front()
            .is_some_and(|t| now.saturating_sub(*t) > d.window)
        {
            f.losses.pop_front();
        }
        if d.threshold > 0 && f.losses.len() as u32 >= d.threshold {
            f.hold = if f.hold.is_zero() {
                d.hold
            } else {
                (f.hold * 2).min(d.max_hold)
            };
            f.hold_until = now + f.hold;
            log.push(LogEntry {
                at_ms: ms(now),
                level: LogLevel::Warn,
                message: format!(
                    "{hn}: VF flapping ({} losses in {} s), new VFs held down until {} ms",
                    f.losses.len(),
                    d.window.as_secs(),
                    ms(f.hold_until)
                ),
            });
        } else if f.losses.len() <= 1 {
            f.hold = Duration::ZERO;
        }
    }

    /// When the VF `name` may be used, ignoring "already in use".
    fn ready_at(&self, name: &str, readiness: Readiness) -> Option<Duration> {
        let t = self.vfs.get(name)?;
        let delay_at = t.first_seen + self.config.vf_delay.max(MIN_VF_DELAY);
        // A gate that says ready (or did for this VF) releases it after the minimum.
        let mut at = if readiness == Readiness::Ready || t.gate_released {
            (t.first_seen + MIN_VF_DELAY).min(delay_at)
        } else {
            delay_at
        };
        if let Some(f) = t.synthetic.as_ref().and_then(|s| self.flaps.get(s)) {
            at = at.max(f.hold_until);
        }
        Some(at)
    }

    fn held_down(&self, name: &str, now: Duration) -> bool {
        self.vfs
            .get(name)
            .and_then(|t| t.synthetic.as_ref())
            .and_then(|s| self.flaps.get(s))
            .is_some_and(|f| f.hold_until > now)
    }

    /// A VF already doing its job (after a restart) stays eligible.
    fn in_use(view: &SystemView, mode: Mode, vf: &str, hn: &str) -> bool {
        let Some(v) = view.interface(vf) else {
            return false;
        };
        match mode {
            Mode::Steered => view
                .steering
                .iter()
                .any(|s| s.vf == vf && s.synthetic == hn),
            Mode::NonTransparent => {
                v.admin_up
                    && v.member_of.is_some()
                    && v.member_of == view.interface(hn).and_then(|h| h.member_of.clone())
            }
            Mode::Transparent => false,
        }
    }

    fn track_daemons(&mut self, view: &SystemView, now: Duration, log: &mut Vec<LogEntry>) {
        for d in Daemon::ALL {
            let present = view.has_device(d.device());
            let pid = view.daemon_procs(d).map(|p| p.pid).next();
            let tr = self.daemons.entry(d).or_default();
            if !present {
                *tr = DaemonTrack {
                    restarts: tr.restarts,
                    ..Default::default()
                };
                continue;
            }
            match (tr.alive, pid) {
                (true, None) => {
                    let old = tr.pid.map(|p| p.to_string()).unwrap_or_else(|| "?".into());
                    let ran = tr
                        .seen_since
                        .map(|s| now.saturating_sub(s))
                        .unwrap_or_default();
                    tr.deaths = if ran >= self.config.daemon_restart.max {
                        1
                    } else {
                        tr.deaths + 1
                    };
                    tr.died_at = Some(now);
                    tr.pid = None;
                    tr.alive = false;
                    log.push(LogEntry {
                        at_ms: ms(now),
                        level: LogLevel::Warn,
                        message: format!("{} (pid {old}) died", d.process_name()),
                    });
                }
                (_, Some(p)) if tr.pid != Some(p) => {
                    tr.alive = true;
                    if tr.pid.is_some() || tr.seen_since.is_none() {
                        tr.seen_since = Some(now);
                    }
                    tr.pid = Some(p);
                }
                _ => {}
            }
        }
    }

    fn daemon_allowed_at(&self, d: Daemon) -> Duration {
        self.daemons
            .get(&d)
            .and_then(|t| {
                t.died_at
                    .map(|at| at + self.config.daemon_restart.delay(t.deaths.max(1)))
            })
            .unwrap_or_default()
    }

    /// Compute the plan for a view without applying it (dry run).
    pub fn plan_for(
        &mut self,
        view: &SystemView,
        net: &dyn NetConfigSource,
        inputs: &Inputs,
    ) -> Plan {
        let mut log = Vec::new();
        let mode = self.config.mode.resolve(view.platform.vf_transparent);
        self.track_vfs(view, mode, inputs.now, &mut log);
        self.track_daemons(view, inputs.now, &mut log);
        let input = self.plan_input(view, mode, inputs);
        plan(view, &self.config, net, &input)
    }

    fn plan_input(&self, view: &SystemView, mode: Mode, inputs: &Inputs) -> PlanInput {
        let now = inputs.now;
        let mut eligible = BTreeSet::new();
        for (name, t) in &self.vfs {
            let hn = t.synthetic.as_deref().unwrap_or("");
            let by_time = self
                .ready_at(name, inputs.readiness)
                .is_some_and(|at| now >= at);
            if by_time || (!self.held_down(name, now) && Self::in_use(view, mode, name, hn)) {
                eligible.insert(name.clone());
            }
        }
        let daemon_start_allowed = Daemon::ALL
            .into_iter()
            .filter(|d| now >= self.daemon_allowed_at(*d))
            .collect();
        PlanInput {
            eligible,
            leaving: inputs.leaving.clone(),
            overrides: inputs.overrides.clone(),
            hooks_done: self.hooks_done.clone(),
            daemon_start_allowed,
        }
    }

    /// Observe, plan, apply. Never panics; failures are retried with
    /// back-off and reported in the status and the log.
    pub fn step<B: Backend + ?Sized>(
        &mut self,
        backend: &mut B,
        net: &dyn NetConfigSource,
        inputs: &Inputs,
    ) -> StepReport {
        let now = inputs.now;
        let mut log = Vec::new();
        let view = match backend.observe() {
            Ok(v) => v,
            Err(e) => return self.observe_failed(e, now, log),
        };
        self.failures.remove("observe");
        let mode = self.config.mode.resolve(view.platform.vf_transparent);
        self.track_vfs(&view, mode, now, &mut log);
        self.track_daemons(&view, now, &mut log);
        let input = self.plan_input(&view, mode, inputs);
        for v in &input.eligible {
            if let Some(t) = self.vfs.get_mut(v) {
                t.used = true;
                t.gate_released |= inputs.readiness == Readiness::Ready;
            }
        }
        let p = plan(&view, &self.config, net, &input);

        let mut applied = Vec::new();
        let mut failed = Vec::new();
        for unit in &p.units {
            if let Some(f) = self.failures.get(&unit.key) {
                if f.next_try > now {
                    continue;
                }
            }
            let mut ok = true;
            for op in &unit.ops {
                match backend.apply(op) {
                    Ok(()) => {
                        log.push(LogEntry {
                            at_ms: ms(now),
                            level: LogLevel::Info,
                            message: op.to_string(),
                        });
                        self.after_success(op, &view, now);
                        applied.push(op.clone());
                    }
                    Err(e) => {
                        let count = self.failures.get(&unit.key).map_or(0, |f| f.count) + 1;
                        let retry = if e.is_permanent() {
                            self.config.retry.max
                        } else {
                            self.config.retry.delay(count)
                        };
                        log.push(LogEntry {
                            at_ms: ms(now),
                            level: LogLevel::Error,
                            message: format!(
                                "{op} failed ({e}); attempt {count}, retrying in {} ms",
                                ms(retry)
                            ),
                        });
                        self.failures
                            .insert(unit.key.clone(), Failure::new(count, now + retry, &e));
                        failed.push((op.clone(), e));
                        ok = false;
                        break;
                    }
                }
            }
            if ok && self.failures.remove(&unit.key).is_some() {
                log.push(LogEntry {
                    at_ms: ms(now),
                    level: LogLevel::Info,
                    message: format!("{} recovered", unit.key),
                });
            }
        }
        // Units that no longer have work are not failing any more.
        let active: BTreeSet<&str> = p.units.iter().map(|u| u.key.as_str()).collect();
        self.failures.retain(|k, _| active.contains(k.as_str()));

        let status = self.build_status(&view, &p, inputs);
        let next_wakeup = self.next_wakeup(&view, &p, inputs, !applied.is_empty());
        self.last_status = Some(status.clone());
        StepReport {
            applied,
            failed,
            next_wakeup,
            status,
            log,
        }
    }

    fn after_success(&mut self, op: &Op, view: &SystemView, now: Duration) {
        match op {
            Op::RunHook { args, .. } => {
                if let Some(hn) = args.first() {
                    if let Some(vf) = view.interfaces.iter().find(|i| {
                        i.is_vf()
                            && self.vfs.get(&i.name).and_then(|t| t.synthetic.as_ref()) == Some(hn)
                    }) {
                        self.hooks_done.insert(hn.clone(), vf.name.clone());
                    }
                }
            }
            Op::StartDaemon { daemon } => {
                let t = self.daemons.entry(*daemon).or_default();
                if t.died_at.is_some() {
                    t.restarts += 1;
                }
                t.alive = true;
                t.pid = None;
                t.seen_since = Some(now);
            }
            _ => {}
        }
    }

    fn observe_failed(
        &mut self,
        e: BackendError,
        now: Duration,
        mut log: Vec<LogEntry>,
    ) -> StepReport {
        let count = self.failures.get("observe").map_or(0, |f| f.count) + 1;
        let retry = self.config.retry.delay(count);
        log.push(LogEntry {
            at_ms: ms(now),
            level: LogLevel::Error,
            message: format!("{e}; retrying in {} ms", ms(retry)),
        });
        self.failures
            .insert("observe".into(), Failure::new(count, now + retry, &e));
        let mut status = self.last_status.clone().unwrap_or(Status {
            mode: self.config.mode.resolve(false),
            converged: false,
            pairs: Vec::new(),
            unpaired_vfs: Vec::new(),
            daemons: Vec::new(),
            errors: Vec::new(),
        });
        status.converged = false;
        status.errors = self.error_status(now);
        self.last_status = Some(status.clone());
        StepReport {
            applied: Vec::new(),
            failed: Vec::new(),
            next_wakeup: Some(now + retry),
            status,
            log,
        }
    }

    fn error_status(&self, now: Duration) -> Vec<ErrorStatus> {
        self.failures
            .iter()
            .map(|(k, f)| ErrorStatus {
                unit: k.clone(),
                op: f.op.to_string(),
                interface: f.interface.clone(),
                message: f.message.clone(),
                failures: f.count,
                retry_in_ms: ms(f.next_try.saturating_sub(now)),
            })
            .collect()
    }

    fn build_status(&self, view: &SystemView, p: &Plan, inputs: &Inputs) -> Status {
        let now = inputs.now;
        let pairs = p
            .pairs
            .iter()
            .map(|pp| {
                let (vf_state, ready_in) = match &pp.vf {
                    None => (VfState::Absent, None),
                    Some(v) if inputs.leaving.contains(v) => (VfState::Leaving, None),
                    Some(_) if pp.vf_eligible => (VfState::Ready, None),
                    Some(v) => {
                        let at = self.ready_at(v, inputs.readiness);
                        let st = if self.held_down(v, now) {
                            VfState::HeldDown
                        } else {
                            VfState::Waiting
                        };
                        (st, at.map(|a| ms(a.saturating_sub(now))))
                    }
                };
                let holder = view.interface(&pp.holder);
                PairStatus {
                    synthetic: pp.synthetic.clone(),
                    vf: pp.vf.clone(),
                    vf_state,
                    vf_ready_in_ms: ready_in,
                    aggregate: pp.aggregate.clone(),
                    holder: pp.holder.clone(),
                    path: pp.path,
                    dhcp: pp.dhcp,
                    waiting_for_lease: pp.dhcp && holder.is_none_or(|h| h.ipv4.is_empty()),
                    overridden: pp.overridden,
                    vf_losses: self
                        .flaps
                        .get(&pp.synthetic)
                        .map_or(0, |f| f.losses.len() as u32),
                    problems: pp.problems.clone(),
                }
            })
            .collect();
        let daemons = Daemon::ALL
            .into_iter()
            .map(|d| DaemonStatus {
                name: d.process_name().into(),
                device_present: view.has_device(d.device()),
                pid: view.daemon_procs(d).map(|p| p.pid).next(),
                restarts: self.daemons.get(&d).map_or(0, |t| t.restarts),
            })
            .collect();
        Status {
            mode: p.mode,
            converged: p.is_empty() && self.failures.is_empty(),
            pairs,
            unpaired_vfs: p.unpaired_vfs.clone(),
            daemons,
            errors: self.error_status(now),
        }
    }

    fn next_wakeup(
        &self,
        view: &SystemView,
        p: &Plan,
        inputs: &Inputs,
        acted: bool,
    ) -> Option<Duration> {
        let now = inputs.now;
        let mut next: Option<Duration> = None;
        let mut consider = |t: Duration| {
            let t = t.max(now);
            next = Some(next.map_or(t, |n: Duration| n.min(t)));
        };
        if acted {
            consider(now + SETTLE);
        }
        if !self.config.resync.is_zero() {
            consider(now + self.config.resync);
        }
        for f in self.failures.values() {
            consider(f.next_try);
        }
        for pp in &p.pairs {
            if let Some(v) = pp.vf.as_ref().filter(|_| !pp.vf_eligible) {
                if let Some(at) = self.ready_at(v, inputs.readiness) {
                    if at > now {
                        consider(at);
                    }
                }
                if inputs.readiness != Readiness::NoGate {
                    consider(now + GATE_POLL);
                }
            }
        }
        for d in Daemon::ALL {
            if view.has_device(d.device()) && view.daemon_procs(d).next().is_none() {
                consider(self.daemon_allowed_at(d));
            }
        }
        next
    }
}
