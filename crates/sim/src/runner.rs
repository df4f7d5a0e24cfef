//! The runner: one event queue in virtual time interleaving boot, host
//! actions, kernel timers, devctl delivery, agent callbacks, traffic
//! accounting and expectations. A run is a pure function of the scenario,
//! the seed and the agents.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use hvnet_vf::{IpNet, Ipv6Net};

use crate::account::{Accounting, Bucket};
use crate::agent::{AgentContext, AgentFactory, GuestAgent};
use crate::backend::SimBackend;
use crate::faults::{FaultConfig, Faults};
use crate::host::VfOffer;
use crate::invariants;
use crate::scenario::{fmt_time, Action, ExpectKind, Scenario};
use crate::summary::{Latency, Summary};
use crate::traffic::{Fate, Path};
use crate::world::{KernelError, Timer, World};

/// Options of one run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub seed: u64,
    /// Faults from the start (scenario `faults` actions replace them).
    pub faults: FaultConfig,
    /// Plot bucket width; `None`: no series.
    pub bucket: Option<Duration>,
}

/// A line of the timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineEntry {
    pub at: Duration,
    /// `host`, `kernel`, `devctl`, `agent`, `path`, `guest`, `conn`, `expect`, `invariant`.
    pub source: &'static str,
    pub text: String,
}

impl std::fmt::Display for TimelineEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:>11}  {:<9} {}",
            fmt_time(self.at),
            self.source,
            self.text
        )
    }
}

/// A host event worth marking on a plot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marker {
    pub at: Duration,
    pub label: String,
}

/// Everything a run produced.
#[derive(Debug, Clone)]
pub struct RunResult {
    pub summary: Summary,
    pub timeline: Vec<TimelineEntry>,
    pub series: Vec<Bucket>,
    pub bucket: Option<Duration>,
    pub markers: Vec<Marker>,
    pub devctl: Vec<(Duration, String)>,
    pub world: World,
}

#[derive(Debug, Clone)]
enum Ev {
    Boot,
    AttachHn(usize),
    Devfs,
    RcNetif,
    AgentStart,
    Action { idx: usize, rep: u32 },
    DetachVf { hn: String },
    CreateDevice(String),
    ReturnVf { hn: String, offer: VfOffer },
    Timer(Timer),
    AgentWake,
    Check(usize),
}

/// Guard against agents that generate events forever within one instant.
const MAX_ROUNDS_PER_INSTANT: usize = 10_000;

/// The simulation of one scenario.
pub struct Sim {
    sc: Scenario,
    opts: RunOptions,
    world: World,
    queue: BTreeMap<(Duration, u8, u64), Ev>,
    seq: u64,
    now: Duration,
    faults: Faults,
    factory: AgentFactory,
    agent: Option<Box<dyn GuestAgent>>,
    hooks: Vec<Box<dyn GuestAgent>>,
    restarts: u32,
    boot_buffer: Vec<String>,
    wake_at: Option<Duration>,
    acct: Accounting,
    timeline: Vec<TimelineEntry>,
    devctl_log: Vec<(Duration, String)>,
    markers: Vec<Marker>,
    active_violations: BTreeSet<String>,
    violation_list: Vec<String>,
    invariant_violations: u64,
    pending_vf_up: Option<Duration>,
    pending_back: Option<Duration>,
    vf_up_ms: Vec<f64>,
    back_ms: Vec<f64>,
    failovers: u64,
    last_path: Option<Path>,
    expect_results: Vec<Option<Result<(), String>>>,
    agent_name: String,
    broken_logged: usize,
    /// When the guest's last command finishes (commands run one after another).
    cmd_clock: Duration,
    /// The connection's fates as last logged (`path` lines).
    logged_fates: (Fate, Fate),
}

/// Why a run cannot start: the simulated kernel refuses one of the scenario's settings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SimError {
    #[error("{file}: tunable {name}={value}: {source}")]
    Tunable {
        /// The scenario's file.
        file: String,
        name: String,
        value: String,
        source: KernelError,
    },
    #[error("{file}: sysctl {name}={value}: {source}")]
    Sysctl {
        file: String,
        name: String,
        value: String,
        source: KernelError,
    },
}

impl Sim {
    /// Prepare a run: the main agent comes from `factory` (again on each
    /// restart); `hooks` are further agents fed the same events (e.g. devd
    /// running hyperv.conf).
    pub fn new(
        sc: Scenario,
        opts: RunOptions,
        factory: AgentFactory,
        hooks: Vec<Box<dyn GuestAgent>>,
    ) -> Result<Sim, SimError> {
        let mut world = World::new(sc.vf_transparent());
        for (k, v) in &sc.tunables {
            world
                .set_tunable(k, v)
                .map_err(|source| SimError::Tunable {
                    file: sc.file.clone(),
                    name: k.clone(),
                    value: v.clone(),
                    source,
                })?;
        }
        for (k, v) in &sc.sysctls {
            world.sysctl_set(k, v).map_err(|source| SimError::Sysctl {
                file: sc.file.clone(),
                name: k.clone(),
                value: v.clone(),
                source,
            })?;
        }
        world.dhcp.enabled = sc.dhcp.enabled;
        world.dhcp.first = sc.dhcp.first;
        world.dhcp.prefix = sc.dhcp.prefix;
        world.dhcp.router = sc.dhcp.router;
        world.dhcp.lease = sc.dhcp.lease;
        world.dhcp.delay = sc.dhcp.delay;
        for n in &sc.nics {
            world.host_add_nic(&n.name, n.mac);
        }
        let mut acct = Accounting::new(
            sc.traffic.rate,
            sc.traffic.timeout,
            sc.traffic.address,
            sc.traffic.start,
        );
        acct.bucket = opts.bucket;
        let faults = Faults::new(opts.faults, opts.seed);
        let n_expects = sc.expects.len();
        let mut sim = Sim {
            sc,
            opts,
            world,
            queue: BTreeMap::new(),
            seq: 0,
            now: Duration::ZERO,
            faults,
            factory,
            agent: None,
            hooks,
            restarts: 0,
            boot_buffer: Vec::new(),
            wake_at: None,
            acct,
            timeline: Vec::new(),
            devctl_log: Vec::new(),
            markers: Vec::new(),
            active_violations: BTreeSet::new(),
            violation_list: Vec::new(),
            invariant_violations: 0,
            pending_vf_up: None,
            pending_back: None,
            vf_up_ms: Vec::new(),
            back_ms: Vec::new(),
            failovers: 0,
            last_path: None,
            expect_results: vec![None; n_expects],
            agent_name: String::new(),
            broken_logged: 0,
            cmd_clock: Duration::ZERO,
            logged_fates: (
                Fate::Dropped(crate::traffic::DropReason::NoAddress),
                Fate::Dropped(crate::traffic::DropReason::NoAddress),
            ),
        };
        sim.push(Duration::ZERO, 0, Ev::Boot);
        for i in 0..sim.sc.nics.len() {
            let at = sim.sc.nics[i].attach;
            sim.push(at, 0, Ev::AttachHn(i));
        }
        sim.push(Duration::from_millis(400), 0, Ev::Devfs);
        let rc_at = sim.sc.rc_at;
        sim.push(rc_at, 0, Ev::RcNetif);
        sim.push(rc_at, 1, Ev::AgentStart);
        for idx in 0..sim.sc.actions.len() {
            let at = sim.sc.actions[idx].at;
            sim.push(at, 0, Ev::Action { idx, rep: 0 });
        }
        for i in 0..n_expects {
            if let Some(at) = sim.sc.expects[i].at() {
                sim.push(at, 9, Ev::Check(i));
            }
        }
        Ok(sim)
    }

    fn push(&mut self, at: Duration, prio: u8, ev: Ev) {
        self.seq += 1;
        self.queue.insert((at, prio, self.seq), ev);
    }

    fn log(&mut self, source: &'static str, text: String) {
        self.timeline.push(TimelineEntry {
            at: self.now,
            source,
            text,
        });
    }

    /// Run to the end of the scenario.
    pub fn run(mut self) -> RunResult {
        let wall = Instant::now();
        let end = self.sc.duration;
        self.advance_to(end);
        self.finish_at_end(wall.elapsed().as_secs_f64() * 1000.0)
    }

    /// Current virtual time.
    pub fn now(&self) -> Duration {
        self.now
    }

    /// The scenario's end.
    pub fn end(&self) -> Duration {
        self.sc.duration
    }

    /// The model (read-only).
    pub fn world(&self) -> &World {
        &self.world
    }

    /// devctl lines emitted so far, with their times.
    pub fn devctl_log(&self) -> &[(Duration, String)] {
        &self.devctl_log
    }

    /// When the next queued event (host action, kernel timer, check, agent
    /// wake-up) is due; `None` when nothing is queued. Drivers that run
    /// guest programs outside the simulator step with it.
    pub fn next_event_at(&self) -> Option<Duration> {
        self.queue.first_key_value().map(|(&(at, _, _), _)| at)
    }

    /// Add a line to the timeline at the current time (a driver's note,
    /// e.g. which devd action it ran).
    pub fn note(&mut self, source: &'static str, text: String) {
        self.log(source, text);
    }

    /// Process every event up to and including `t`, then stand at `t`.
    pub fn advance_to(&mut self, t: Duration) {
        while let Some((&(at, prio, seq), _)) = self.queue.first_key_value() {
            if at > t {
                break;
            }
            let ev = self.queue.remove(&(at, prio, seq)).expect("queued");
            self.acct.advance(at);
            self.now = at;
            self.handle(ev);
            self.settle();
            let more_now = self
                .queue
                .first_key_value()
                .is_some_and(|(&(t, p, _), _)| t == at && p < 9);
            if !more_now {
                self.after_instant();
            }
        }
        if t > self.now {
            self.acct.advance(t);
            self.now = t;
        }
    }

    /// Run a guest command ([`crate::guestcmd`]) now, as a script in the
    /// guest would.
    pub fn command(&mut self, argv: &[String]) -> crate::guestcmd::CmdOutput {
        let out = self.command_in_step(argv);
        self.after_instant();
        out
    }

    /// Like [`Sim::command`], but the end-of-instant bookkeeping (paths,
    /// connections, latencies, invariants) waits for [`Sim::end_step`]: an
    /// agent that runs its operations as commands at one virtual instant is
    /// judged on the state it leaves, as an in-process agent's ops are. The
    /// traffic meets every state between its commands, as with ops: a command
    /// that changes the guest takes [`crate::Timing::command`].
    pub fn command_in_step(&mut self, argv: &[String]) -> crate::guestcmd::CmdOutput {
        let mut guest = SimBackend::new(&mut self.world, self.now, &mut self.faults);
        guest.probe = self.acct.addr;
        let out = guest.command(argv);
        let changes = std::mem::take(&mut guest.changes);
        self.log("guest", format!("$ {}", argv.join(" ")));
        self.commands_ran(changes);
        self.settle();
        out
    }

    /// How long a command that changes the guest takes (default
    /// [`crate::Timing::command`]); zero when the commands run in wall-clock
    /// time anyway (`--serve --speed`).
    pub fn set_command_time(&mut self, d: Duration) {
        self.world.timing.command = d;
    }

    /// Commands that changed the guest ran now, one after another, each
    /// taking [`crate::Timing::command`]: packets sent while one ran met the
    /// state it found (`before`, in order). The kernel's reactions and the
    /// scenario's clock stay at the instant; only the traffic sees the steps.
    fn commands_ran(&mut self, before: Vec<crate::traffic::PathState>) {
        let d = self.world.timing.command;
        if d.is_zero() || self.acct.start.is_none() {
            // No traffic yet: it starts after the instant, with what the commands left.
            return;
        }
        for st in before {
            let start = self.cmd_clock.max(self.now);
            if !st.held {
                // Reported at the instant the program ran, as after it.
                self.acct.address_left(self.now);
            }
            if !(st.fate_in.is_delivered() && st.fate_out.is_delivered()) {
                self.log(
                    "path",
                    format!(
                        "out={} in={} for {} while a command ran",
                        st.fate_out,
                        st.fate_in,
                        fmt_time(d)
                    ),
                );
            }
            self.acct.fate_in = st.fate_in;
            self.acct.fate_out = st.fate_out;
            self.acct.advance(start + d);
            self.cmd_clock = start + d;
        }
    }

    /// End a step of [`Sim::command_in_step`] calls: the bookkeeping runs
    /// once, on the state the step left.
    pub fn end_step(&mut self) {
        self.after_instant();
    }

    /// Finish the run now: end-of-run checks and the summary.
    pub fn finish_at_end(mut self, wall_ms: f64) -> RunResult {
        for i in 0..self.sc.expects.len() {
            if self.sc.expects[i].at().is_none() && !self.is_metric(i) {
                self.check(i);
            }
        }
        self.finish(wall_ms)
    }

    fn is_metric(&self, i: usize) -> bool {
        matches!(self.sc.expects[i].kind, ExpectKind::Metric { .. })
    }

    fn handle(&mut self, ev: Ev) {
        let now = self.now;
        match ev {
            Ev::Boot => self.world.attach_loopback(),
            Ev::AttachHn(i) => {
                let n = self.sc.nics[i].clone();
                if let Err(e) = self.world.attach_hn(now, &n.name, n.mac) {
                    self.log("kernel", format!("{} attach failed: {e}", n.name));
                } else {
                    self.log("kernel", format!("{} attached (mac {})", n.name, n.mac));
                }
            }
            Ev::Devfs => {
                self.world.create_device("hv_kvp_dev");
                self.world.create_device("hv_fsvss_dev");
            }
            Ev::RcNetif => self.rc_netif(),
            Ev::AgentStart => {
                if self.agent.is_none() {
                    self.start_agent();
                }
            }
            Ev::Action { idx, rep } => {
                let ta = self.sc.actions[idx].clone();
                if let Some(every) = ta.every {
                    if rep + 1 < ta.count {
                        self.push(
                            ta.at + every * (rep + 1),
                            0,
                            Ev::Action { idx, rep: rep + 1 },
                        );
                    }
                }
                self.action(&ta.action);
            }
            Ev::DetachVf { hn } => {
                let vf = self.world.host.get(&hn).and_then(|h| h.vf_ifnet.clone());
                if let Some(vf) = vf {
                    self.log("host", format!("VF {vf} of {hn} detaches"));
                }
                if let Err(e) = self.world.host_vf_detach(now, &hn) {
                    self.log("host", format!("detach failed: {e}"));
                }
            }
            Ev::ReturnVf { hn, offer } => self.offer(&hn, &offer),
            Ev::CreateDevice(cdev) => {
                self.log("host", format!("offers {cdev}"));
                self.world.create_device(&cdev);
            }
            Ev::Timer(t) => match t {
                Timer::LinkQuery { hn } => self.world.link_query_done(now, &hn),
                Timer::XpntInit { hn, vf } => {
                    self.world.xpnt_init_task(now, &hn, &vf);
                    if self.world.hns.get(&hn).is_some_and(|s| s.xpnt_enabled) {
                        self.log("kernel", format!("{hn}: transparent VF {vf} enabled"));
                    }
                }
                Timer::Dhcp { pid } => {
                    let before = self.world.dhclients.get(&pid).and_then(|c| c.bound);
                    self.world.dhcp_timer(now, pid);
                    if let Some(c) = self.world.dhclients.get(&pid) {
                        if c.bound != before {
                            if let Some(b) = c.bound {
                                let text = format!("dhclient[{pid}] on {}: bound to {b}", c.iface);
                                self.log("kernel", text);
                            }
                        }
                    }
                }
            },
            Ev::AgentWake => {
                self.wake_at = None;
                self.call_agents(|a, now, be| {
                    if a.next_wakeup().is_some_and(|w| w <= now) {
                        a.on_timer_guest(now, be);
                    }
                });
            }
            Ev::Check(i) => self.check(i),
        }
    }

    fn offer(&mut self, hn: &str, offer: &VfOffer) {
        match self.world.host_offer_vf(self.now, hn, offer) {
            Ok(vf) => {
                self.log("host", format!("offers VF {vf} ({}) to {hn}", offer.family));
                self.markers.push(Marker {
                    at: self.now,
                    label: format!("VF {vf} offered"),
                });
                self.pending_vf_up = Some(self.now);
            }
            Err(e) => self.log("host", format!("cannot offer a VF to {hn}: {e}")),
        }
    }

    fn action(&mut self, a: &Action) {
        let now = self.now;
        match a {
            Action::OfferVf { hn, offer } => self.offer(hn, offer),
            Action::Revoke {
                hn,
                detach_after,
                return_after,
                offer,
            } => {
                let Some(vf) = self.world.host_revoke_begin(hn) else {
                    self.log("host", format!("no VF to revoke from {hn}"));
                    return;
                };
                self.log(
                    "host",
                    format!(
                        "revokes VF {vf} of {hn}: datapath to synthetic, detach in {}",
                        fmt_time(*detach_after)
                    ),
                );
                self.markers.push(Marker {
                    at: now,
                    label: format!("{vf} revoked"),
                });
                self.note_leaving();
                self.push(now + *detach_after, 0, Ev::DetachVf { hn: hn.clone() });
                if let Some(r) = return_after {
                    self.push(
                        now + *detach_after + *r,
                        0,
                        Ev::ReturnVf {
                            hn: hn.clone(),
                            offer: offer.clone(),
                        },
                    );
                }
            }
            Action::Remove {
                hn,
                detach_after,
                return_after,
                offer,
            } => {
                let Some(vf) = self.world.host_surprise_begin(now, hn) else {
                    self.log("host", format!("no VF to remove from {hn}"));
                    return;
                };
                self.log("host", format!("surprise removal of VF {vf} of {hn}"));
                self.markers.push(Marker {
                    at: now,
                    label: format!("{vf} removed"),
                });
                self.note_leaving();
                self.push(now + *detach_after, 0, Ev::DetachVf { hn: hn.clone() });
                if let Some(r) = return_after {
                    self.push(
                        now + *detach_after + *r,
                        0,
                        Ev::ReturnVf {
                            hn: hn.clone(),
                            offer: offer.clone(),
                        },
                    );
                }
            }
            Action::HostLink { hn, up } => {
                self.log(
                    "host",
                    format!("{hn} host link {}", if *up { "up" } else { "down" }),
                );
                self.world.host_link_change(now, hn, *up);
            }
            Action::Rescind { cdev, return_after } => {
                self.log("host", format!("rescinds {cdev}"));
                self.world.destroy_device(cdev);
                if let Some(r) = return_after {
                    self.push(now + *r, 0, Ev::CreateDevice(cdev.clone()));
                }
            }
            Action::Guest(argv) => {
                let out = crate::guestcmd::run(&mut self.world, now, argv);
                let mut text = format!("$ {}", argv.join(" "));
                if out.status != 0 {
                    text.push_str(&format!(" (exit {}): {}", out.status, out.stderr.trim()));
                }
                self.log("guest", text);
            }
            Action::RestartAgent => {
                if self.agent.is_none() {
                    self.log("agent", "restart requested before the agent started".into());
                    return;
                }
                self.log("agent", "restart".into());
                self.restarts += 1;
                self.agent = None;
                self.start_agent();
            }
            Action::Faults(f) => {
                self.faults.config = *f;
                self.log("faults", format!("{f:?}"));
            }
        }
    }

    fn note_leaving(&mut self) {
        let on_vf = self.acct.fate_out.path() == Some(Path::Vf)
            || self.acct.fate_in.path() == Some(Path::Vf);
        if on_vf && self.pending_back.is_none() {
            self.pending_back = Some(self.now);
        }
        self.pending_vf_up = None;
    }

    /// rc's netif at boot: configure each hn from rc.conf (the part of
    /// ifn_start the model needs: MTU, addresses, routes, up, dhclient).
    fn rc_netif(&mut self) {
        let rc = crate::agent::load_rc(&self.sc.rc_conf);
        let now = self.now;
        let hns: Vec<String> = self.world.hns.keys().cloned().collect();
        for hn in hns {
            let cfg = hvnet_vf::netconf::from_rcconf(&rc, &hn);
            if !cfg.configured {
                continue;
            }
            let w = &mut self.world;
            if let Some(m) = cfg.mtu {
                let _ = w.set_mtu(now, &hn, m);
            }
            let _ = w.set_admin(now, &hn, true);
            let v6 = !cfg.ipv6.is_empty() || !cfg.ipv6_eui64.is_empty();
            if v6 {
                let mac = w.ifnets[&hn].mac;
                let ll =
                    hvnet_vf::netconf::eui64(&Ipv6Net::new("fe80::".parse().expect("ll"), 64), mac);
                let _ = w.add_address(now, &hn, IpNet::V6(ll));
            }
            for a in &cfg.ipv4 {
                let _ = w.add_address(now, &hn, IpNet::V4(*a));
            }
            for a in &cfg.ipv6 {
                let _ = w.add_address(now, &hn, IpNet::V6(*a));
            }
            for p in &cfg.ipv6_eui64 {
                let mac = w.ifnets[&hn].mac;
                let _ = w.add_address(now, &hn, IpNet::V6(hvnet_vf::netconf::eui64(p, mac)));
            }
            for r in &cfg.routes {
                let _ = w.add_route(r);
            }
            if cfg.dhcp {
                let _ = w.start_dhclient(now, &hn);
            }
            let text = format!(
                "rc: configured {hn}{}{}",
                if cfg.dhcp { " (dhcp)" } else { "" },
                cfg.ipv4
                    .iter()
                    .map(|a| format!(" {a}"))
                    .chain(cfg.ipv6.iter().map(|a| format!(" {a}")))
                    .collect::<String>()
            );
            self.log("guest", text);
        }
    }

    fn start_agent(&mut self) {
        let ctx = AgentContext {
            rc_conf: self.sc.rc_conf.clone(),
            vf_transparent: self.world.vf_transparent,
            seed: self.opts.seed,
            restarts: self.restarts,
            readiness: self.sc.readiness,
        };
        let agent = (self.factory)(&ctx);
        self.agent_name = agent.name().to_string();
        self.agent = Some(agent);
        let first = self.restarts == 0;
        self.log("agent", format!("{} starts", self.agent_name));
        let now = self.now;
        let mut be = SimBackend::new(&mut self.world, now, &mut self.faults);
        be.probe = self.acct.addr;
        if let Some(a) = self.agent.as_mut() {
            a.on_start_guest(now, &mut be);
        }
        if first {
            for h in &mut self.hooks {
                h.on_start_guest(now, &mut be);
            }
        }
        let journal = std::mem::take(&mut be.journal);
        let changes = std::mem::take(&mut be.changes);
        drop(be);
        self.journal("agent", journal);
        self.commands_ran(changes);
        if first {
            // devd reads what the kernel queued since boot.
            let buffered = std::mem::take(&mut self.boot_buffer);
            self.deliver(buffered);
        }
    }

    fn journal(&mut self, source: &'static str, lines: Vec<String>) {
        for l in lines {
            self.log(source, l);
        }
        let mut logs = Vec::new();
        if let Some(a) = self.agent.as_mut() {
            logs.extend(a.take_log());
        }
        for h in &mut self.hooks {
            logs.extend(h.take_log());
        }
        for l in logs {
            self.log("agent", l);
        }
    }

    /// Call `f` on the agent and every hook with a backend at `now`.
    fn call_agents<F>(&mut self, mut f: F)
    where
        F: FnMut(&mut dyn GuestAgent, Duration, &mut SimBackend<'_>),
    {
        let now = self.now;
        let mut be = SimBackend::new(&mut self.world, now, &mut self.faults);
        be.probe = self.acct.addr;
        if let Some(a) = self.agent.as_mut() {
            f(a.as_mut(), now, &mut be);
        }
        for h in &mut self.hooks {
            f(h.as_mut(), now, &mut be);
        }
        let journal = std::mem::take(&mut be.journal);
        let changes = std::mem::take(&mut be.changes);
        drop(be);
        self.journal("agent", journal);
        self.commands_ran(changes);
    }

    fn deliver(&mut self, lines: Vec<String>) {
        let lines = self.faults.mangle_devctl(lines);
        for l in lines {
            self.call_agents(|a, now, be| a.on_devctl_guest(now, &l, be));
        }
    }

    /// Move kernel output (devctl, timers, log) into the run until quiet.
    fn settle(&mut self) {
        for _ in 0..MAX_ROUNDS_PER_INSTANT {
            self.world.run_link_tasks(self.now);
            for (at, t) in std::mem::take(&mut self.world.timers) {
                self.push(at.max(self.now), 1, Ev::Timer(t));
            }
            for l in std::mem::take(&mut self.world.log) {
                self.log("kernel", l);
            }
            let lines = std::mem::take(&mut self.world.devctl);
            if lines.is_empty() {
                break;
            }
            for l in &lines {
                self.devctl_log.push((self.now, l.clone()));
                self.log("devctl", l.clone());
            }
            if self.agent.is_none() && self.restarts == 0 {
                self.boot_buffer.extend(lines);
            } else {
                self.deliver(lines);
            }
        }
        // Agent wake-up.
        let mut next: Option<Duration> = None;
        let mut consider = |w: Option<Duration>| {
            if let Some(w) = w {
                next = Some(next.map_or(w, |n: Duration| n.min(w)));
            }
        };
        if let Some(a) = &self.agent {
            consider(a.next_wakeup());
        }
        for h in &self.hooks {
            consider(h.next_wakeup());
        }
        if let Some(w) = next {
            let w = if w <= self.now {
                self.now + Duration::from_millis(1)
            } else {
                w
            };
            if self.wake_at.is_none_or(|s| w < s) {
                self.wake_at = Some(w);
                self.push(w, 2, Ev::AgentWake);
            }
        }
    }

    /// After every event of an instant: fates, paths, connections,
    /// latencies, invariants.
    fn after_instant(&mut self) {
        let now = self.now;
        if self.acct.addr.is_none() {
            let first = self
                .world
                .by_index()
                .into_iter()
                .filter(|i| i.class != crate::world::IfClass::Loopback)
                .find_map(|i| i.ipv4.first().map(|n| IpAddr::V4(n.addr)));
            if let Some(a) = first {
                self.acct.addr = Some(a);
                if self.acct.start.is_none() {
                    self.acct.start = Some(now);
                }
                self.log("conn", format!("peer starts talking to {a}"));
            }
        }
        if let (Some(addr), None) = (self.acct.addr, self.acct.start) {
            if !self.world.holders(addr).is_empty() {
                self.acct.start = Some(now);
                self.log("conn", format!("peer starts talking to {addr}"));
            }
        }
        if let Some(addr) = self.acct.addr {
            let fin = self.world.inbound_fate(addr);
            let fout = self.world.outbound_fate(addr);
            if (fin, fout) != self.logged_fates {
                self.log("path", format!("out={fout} in={fin}"));
                self.logged_fates = (fin, fout);
            }
            self.acct.fate_in = fin;
            self.acct.fate_out = fout;
            if self.world.holders(addr).is_empty() && self.acct.open {
                self.acct.address_left(now);
            }
            if let Fate::Delivered(p) = fout {
                if self.last_path.is_some_and(|l| l != p) {
                    self.failovers += 1;
                }
                self.last_path = Some(p);
            }
            let both = |p| fin == Fate::Delivered(p) && fout == Fate::Delivered(p);
            if let Some(t) = self.pending_vf_up {
                if both(Path::Vf) {
                    self.vf_up_ms.push(ms(now - t));
                    self.pending_vf_up = None;
                }
            }
            if let Some(t) = self.pending_back {
                if both(Path::Hn) {
                    self.back_ms.push(ms(now - t));
                    self.pending_back = None;
                }
            }
        }
        while self.acct.broken.len() > self.broken_logged {
            let (at, why) = self.acct.broken[self.broken_logged].clone();
            self.broken_logged += 1;
            self.timeline.push(TimelineEntry {
                at,
                source: "conn",
                text: format!("connection broken: {why}"),
            });
        }
        let current: BTreeSet<String> = invariants::violations(&self.world).into_iter().collect();
        for v in current.difference(&self.active_violations) {
            self.invariant_violations += 1;
            self.violation_list.push(format!("{}: {v}", fmt_time(now)));
            self.timeline.push(TimelineEntry {
                at: now,
                source: "invariant",
                text: v.clone(),
            });
        }
        self.active_violations = current;
    }

    fn check(&mut self, i: usize) {
        let e = self.sc.expects[i].clone();
        let w = &self.world;
        let r: Result<(), String> = match &e.kind {
            ExpectKind::PathAt { path, .. } => {
                let (fi, fo) = match self.acct.addr {
                    Some(a) => (w.inbound_fate(a), w.outbound_fate(a)),
                    None => (
                        Fate::Dropped(crate::traffic::DropReason::NoAddress),
                        Fate::Dropped(crate::traffic::DropReason::NoAddress),
                    ),
                };
                let ok = match path {
                    Some(p) => fi == Fate::Delivered(*p) && fo == Fate::Delivered(*p),
                    None => !fi.is_delivered() || !fo.is_delivered(),
                };
                if ok {
                    Ok(())
                } else {
                    Err(format!("path is out={fo} in={fi}"))
                }
            }
            ExpectKind::Address {
                addr,
                iface,
                present,
                ..
            } => {
                let has = w.holders(*addr).iter().any(|h| h == iface);
                if has == *present {
                    Ok(())
                } else {
                    Err(format!("holders of {addr}: {:?}", w.holders(*addr)))
                }
            }
            ExpectKind::Sysctl { name, value, .. } => match w.sysctl_get(name) {
                Ok(v) if v == *value => Ok(()),
                Ok(v) => Err(format!("{name} is {v:?}")),
                Err(er) => Err(er.to_string()),
            },
            ExpectKind::Link { iface, up, .. } => match w.ifnet(iface) {
                Some(i) if i.link == *up => Ok(()),
                Some(i) => Err(format!(
                    "{iface} link is {}",
                    if i.link { "up" } else { "down" }
                )),
                None => Err(format!("{iface} does not exist")),
            },
            ExpectKind::Devctl { line, present } => {
                let seen = self.devctl_log.iter().any(|(_, l)| l == line);
                if seen == *present {
                    Ok(())
                } else if seen {
                    Err("it was emitted".into())
                } else {
                    Err("it was never emitted".into())
                }
            }
            ExpectKind::Metric { .. } => Ok(()),
        };
        let text = match &r {
            Ok(()) => format!("line {}: {} ... ok", e.line, e.text),
            Err(why) => format!("line {}: {} ... FAILED ({why})", e.line, e.text),
        };
        self.log("expect", text);
        self.expect_results[i] = Some(r);
    }

    fn finish(mut self, wall_ms: f64) -> RunResult {
        let c = &self.acct.counters;
        let mut summary = Summary::new(&self.sc.name, self.opts.seed);
        summary.virtual_seconds = self.sc.duration.as_secs_f64();
        summary.wall_ms = (wall_ms * 1000.0).round() / 1000.0;
        summary.packets.sent = c.sent;
        summary.packets.delivered = c.delivered;
        summary.packets.lost = c.lost_total();
        summary.packets.by_path.hn = c.hn;
        summary.packets.by_path.vf = c.vf;
        summary.packets.lost_by_reason = c
            .lost
            .iter()
            .map(|(r, n)| (r.key().to_string(), *n))
            .collect();
        summary.connections_broken = self.acct.broken.len() as u64;
        summary.failovers = self.failovers;
        summary.vf_up_latency_ms = Latency::of(&self.vf_up_ms);
        summary.back_to_hn_ms = Latency::of(&self.back_ms);
        summary.invariant_violations = self.invariant_violations;
        summary.violations = self.violation_list.clone();
        summary.agent = self.agent_name.clone();
        summary.mode = if self.world.vf_transparent {
            "transparent".into()
        } else {
            "non-transparent".into()
        };
        summary.devctl_events = self.devctl_log.len() as u64;
        summary.faults_injected = self
            .faults
            .injected
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect();
        // Metric expectations use the summary.
        for i in 0..self.sc.expects.len() {
            if let ExpectKind::Metric { metric, cmp, value } = self.sc.expects[i].kind.clone() {
                let actual = summary.metric(
                    &metric,
                    self.expect_results
                        .iter()
                        .filter(|r| matches!(r, Some(Err(_))))
                        .count(),
                );
                let r = if cmp.holds(actual, value) {
                    Ok(())
                } else {
                    Err(format!("{metric} is {actual}"))
                };
                self.check_metric_log(i, &r);
                self.expect_results[i] = Some(r);
            }
        }
        for (i, r) in self.expect_results.iter().enumerate() {
            match r {
                Some(Ok(())) => summary.expectations.passed += 1,
                Some(Err(why)) => {
                    summary.expectations.failed += 1;
                    let e = &self.sc.expects[i];
                    summary
                        .failed_expectations
                        .push(format!("{}:{}: {} ({why})", self.sc.file, e.line, e.text));
                }
                None => {
                    summary.expectations.failed += 1;
                    let e = &self.sc.expects[i];
                    summary.failed_expectations.push(format!(
                        "{}:{}: {} (not reached before the end)",
                        self.sc.file, e.line, e.text
                    ));
                }
            }
        }
        summary.passed = summary.expectations.failed == 0 && summary.invariant_violations == 0;
        RunResult {
            summary,
            timeline: self.timeline,
            series: self.acct.series,
            bucket: self.opts.bucket,
            markers: self.markers,
            devctl: self.devctl_log,
            world: self.world,
        }
    }

    fn check_metric_log(&mut self, i: usize, r: &Result<(), String>) {
        let e = &self.sc.expects[i];
        let text = match r {
            Ok(()) => format!("line {}: {} ... ok", e.line, e.text),
            Err(why) => format!("line {}: {} ... FAILED ({why})", e.line, e.text),
        };
        self.log("expect", text);
    }
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// Run a scenario with an agent factory and no hooks.
pub fn run(sc: Scenario, opts: RunOptions, factory: AgentFactory) -> Result<RunResult, SimError> {
    Ok(Sim::new(sc, opts, factory, Vec::new())?.run())
}
