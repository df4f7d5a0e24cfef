//! `hvnet run`: the daemon.
//!
//! Threads:
//! - the *engine* thread owns the backend and the [`Manager`]: it waits for a wake-up (an
//!   event, a timer the reconciler asked for, the periodic resync) and steps. Backends are
//!   synchronous (commands, netlink requests on their own runtime), so they never block
//!   the async side. With `--backend sim` the engine owns the simulator instead and moves
//!   its virtual clock along with the wall clock (times `speed`); the manager runs as the
//!   simulated guest's agent.
//! - the tokio runtime serves the control socket and the metrics endpoint, turns signals
//!   into wake-ups, and (Linux) reads rtnetlink link notifications.
//! - FreeBSD: a thread reads devd's seqpacket socket and reconnects when devd restarts.
//! - hosted devd actions run on their own thread ([`crate::hosted`]).

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use hvnet_rcconf::RcConf;
use hvnet_sim::{AgentContext, AgentFactory, GuestAgent, RunOptions, Sim};
use hvnet_vf::{Backend, NetConfig, NetConfigSource};
use tokio::signal::unix::{signal, SignalKind};

use crate::config::{BackendKind, Config};
use crate::control;
use crate::hosted::Hosted;
use crate::manager::{lock, Manager, SharedReport};
use crate::metrics::Metrics;
use crate::report::{Report, SimReport};

/// A reason to step.
#[derive(Debug)]
pub enum Wake {
    /// A devctl line (FreeBSD) — hosted rules see it, then the reconciler steps.
    #[cfg_attr(not(target_os = "freebsd"), allow(dead_code))]
    Event(String),
    /// Something changed (netlink), or events may have been lost (devd reconnected).
    Kick,
    /// SIGHUP: re-read rc.conf and the hosted rules.
    Reload,
    /// The host announced that this synthetic NIC's VF goes (a planned switch; Linux: the
    /// kernel log, see `hvnet_linux::kmsg`).
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    Leaving(String),
    Shutdown,
}

/// The simulator's wall-clock tick.
const SIM_TICK: Duration = Duration::from_millis(20);

/// rc.conf as the FreeBSD backend reads it: `/etc/rc.conf` through rc's own rules, or one
/// named file on top of `/etc/defaults/rc.conf`.
fn load_rc(cfg: &Config) -> Option<RcConf> {
    let root = std::path::Path::new("/");
    match &cfg.rc_conf {
        Some(p) if p != std::path::Path::new("/etc/rc.conf") => {
            let mut rc = RcConf::new();
            rc.source_file(root, "/etc/defaults/rc.conf");
            if !rc.source_file(root, &p.to_string_lossy()) {
                tracing::warn!("rc_conf {}: cannot be read", p.display());
            }
            Some(rc)
        }
        Some(_) => Some(RcConf::load(root, &[])),
        None if cfg.backend == BackendKind::Freebsd => Some(RcConf::load(root, &[])),
        None => None,
    }
}

/// The manager options and network configuration source for a real backend.
fn real_settings(cfg: &Config) -> (hvnet_vf::ManagerConfig, Box<dyn NetConfigSource>) {
    match load_rc(cfg) {
        Some(rc) => {
            for d in rc.errors() {
                tracing::warn!("rc.conf: {d}");
            }
            (cfg.manager_config(rc.hyperv_vf_delay()), Box::new(rc))
        }
        None => (cfg.manager_config(0), Box::new(NetConfig::default())),
    }
}

fn hosted(cfg: &Config, metrics: &Metrics) -> anyhow::Result<Option<Hosted>> {
    cfg.devd_rules
        .as_ref()
        .map(|p| {
            Hosted::start(
                p,
                cfg.devd_shell.as_deref(),
                cfg.action_timeout,
                cfg.backend != BackendKind::Sim,
                metrics.clone(),
            )
        })
        .transpose()
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The engine thread's body: it reports on `ready` once it runs, then steps until shutdown.
/// On Linux it shares the fast path (the steered gates) with the netlink reader.
#[cfg(target_os = "linux")]
type EngineFn = fn(
    Config,
    Metrics,
    SharedReport,
    Receiver<Wake>,
    Sender<anyhow::Result<()>>,
    hvnet_linux::fastpath::FastPath,
);
#[cfg(not(target_os = "linux"))]
type EngineFn = fn(Config, Metrics, SharedReport, Receiver<Wake>, Sender<anyhow::Result<()>>);

/// Run the daemon until SIGTERM/SIGINT, or until the engine thread stops (an error).
pub fn run(cfg: Config) -> anyhow::Result<std::process::ExitCode> {
    run_with(cfg, engine)
}

/// The message a panic carried.
fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

fn run_with(cfg: Config, engine: EngineFn) -> anyhow::Result<std::process::ExitCode> {
    let metrics = Metrics::default();
    let shared: SharedReport = Arc::new(std::sync::Mutex::new(Report {
        version: env!("CARGO_PKG_VERSION").into(),
        pid: std::process::id(),
        backend: cfg.backend.name().into(),
        clock: if cfg.backend == BackendKind::Sim {
            "virtual"
        } else {
            "monotonic"
        }
        .into(),
        started_unix_ms: unix_ms(),
        ..Default::default()
    }));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the runtime")?;
    // Bind before the engine starts: the instance lock taken first is the guard against a
    // second daemon, which must stop before it touches the system (or the first one's
    // socket). The configuration, scenario and hosted rules were checked before this.
    let listeners = rt.block_on(async {
        let sock = control::bind(&cfg.control_socket)?;
        let metrics_listener = match cfg.metrics {
            Some(addr) => Some(
                hvnet_metrics::bind(addr)
                    .await
                    .with_context(|| format!("metrics: binding {addr}"))?,
            ),
            None => None,
        };
        anyhow::Ok(Listeners {
            control: sock,
            metrics: metrics_listener,
        })
    })?;
    let (tx, rx) = channel::<Wake>();
    let (ready_tx, ready_rx) = channel::<anyhow::Result<()>>();
    // Shared by the Linux backend (what it steered) and the netlink reader (which closes a
    // gate the moment its VF goes).
    #[cfg(target_os = "linux")]
    let fast = hvnet_linux::fastpath::FastPath::new(linux::patterns(&cfg), cfg.sysfs.clone());
    // Whatever ends the engine thread, serve() hears of it: a daemon whose engine is gone
    // must not go on answering `hvnet status` as if it were managing the network.
    let (gone_tx, gone_rx) = tokio::sync::oneshot::channel::<Option<String>>();
    let engine = {
        let (cfg, metrics, shared) = (cfg.clone(), metrics.clone(), shared.clone());
        #[cfg(target_os = "linux")]
        let fast = fast.clone();
        std::thread::Builder::new()
            .name("engine".into())
            .spawn(move || {
                let ended = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    engine(
                        cfg,
                        metrics,
                        shared,
                        rx,
                        ready_tx,
                        #[cfg(target_os = "linux")]
                        fast,
                    )
                }));
                let _ = gone_tx.send(ended.err().map(|p| panic_message(p.as_ref())));
            })
            .context("starting the engine thread")?
    };
    match ready_rx.recv() {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(e),
        Err(_) => return Err(anyhow!("the engine thread stopped while starting")),
    }
    let result = rt.block_on(serve(
        &cfg,
        listeners,
        metrics,
        shared,
        tx.clone(),
        #[cfg(target_os = "linux")]
        fast,
        gone_rx,
    ));
    let _ = tx.send(Wake::Shutdown);
    let _ = engine.join();
    result?;
    tracing::info!("stopped");
    Ok(std::process::ExitCode::SUCCESS)
}

/// What the daemon listens on: the control socket, and the metrics endpoint when configured.
struct Listeners {
    control: control::ControlSocket,
    metrics: Option<tokio::net::TcpListener>,
}

async fn serve(
    cfg: &Config,
    listeners: Listeners,
    metrics: Metrics,
    shared: SharedReport,
    tx: Sender<Wake>,
    #[cfg(target_os = "linux")] fast: hvnet_linux::fastpath::FastPath,
    mut engine_gone: tokio::sync::oneshot::Receiver<Option<String>>,
) -> anyhow::Result<()> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    let Listeners {
        control: sock,
        metrics: metrics_listener,
    } = listeners;
    if let Some(l) = metrics_listener {
        tracing::info!("metrics on http://{}/metrics", l.local_addr()?);
        tokio::spawn(hvnet_metrics::serve(l, Arc::new(metrics.registry())));
    }
    #[cfg(target_os = "linux")]
    if cfg.backend == BackendKind::Linux {
        linux::spawn_link_events(tx.clone(), fast)?;
        linux::follow_planned_switches(tx.clone(), cfg.sysfs.clone());
    }
    if cfg.backend == BackendKind::Freebsd {
        devd_events::spawn_devd_reader(cfg.devd_socket.clone(), tx.clone())?;
    }
    tracing::info!(
        "hvnet {} running: backend {}, control socket {}",
        env!("CARGO_PKG_VERSION"),
        cfg.backend.name(),
        cfg.control_socket.display()
    );
    let server = control::serve(&sock, shared);
    tokio::pin!(server);
    loop {
        tokio::select! {
            _ = &mut server => {}
            gone = &mut engine_gone => {
                let why = match gone {
                    Ok(Some(panic)) => format!("panicked: {panic}"),
                    Ok(None) | Err(_) => "ended".to_string(),
                };
                tracing::error!("the engine thread {why}; stopping");
                // Returning drops the control socket: no status is served without an engine.
                return Err(anyhow!("the engine thread {why}"));
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => {
                tracing::info!("SIGHUP: reloading");
                let _ = tx.send(Wake::Reload);
            }
        }
    }
    tracing::info!("stopping");
    Ok(())
}

fn engine(
    cfg: Config,
    metrics: Metrics,
    shared: SharedReport,
    rx: Receiver<Wake>,
    ready: Sender<anyhow::Result<()>>,
    #[cfg(target_os = "linux")] fast: hvnet_linux::fastpath::FastPath,
) {
    let hosted = match hosted(&cfg, &metrics) {
        Ok(h) => h,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    match cfg.backend {
        BackendKind::Sim => sim_engine(&cfg, hosted, metrics, shared, rx, ready),
        #[cfg(target_os = "linux")]
        BackendKind::Linux => {
            let backend = match hvnet_linux::backend::LinuxBackend::with_fast_path(
                linux::patterns(&cfg),
                cfg.sysfs.clone(),
                fast,
            ) {
                Ok(b) => b,
                Err(e) => {
                    let _ = ready.send(Err(anyhow!("linux backend: {e}")));
                    return;
                }
            };
            if let Some(r) = &cfg.devd_rules {
                tracing::warn!(
                    "devd_rules {}: the linux backend delivers no devctl events, so these rules never fire",
                    r.display()
                );
            }
            let (mc, net) = real_settings(&cfg);
            let mgr = Manager::new(mc, net, hosted, metrics, shared)
                .with_sysfs_packets(cfg.sysfs.clone());
            let _ = ready.send(Ok(()));
            real_engine(&cfg, Box::new(backend), mgr, rx);
        }
        BackendKind::Freebsd => {
            let (mc, net) = real_settings(&cfg);
            // Elsewhere than on FreeBSD (a simulated guest's userland first on PATH, as
            // `hvnet simulate --serve DIR --speed X` provides) programs come from PATH.
            let elsewhere = !cfg!(target_os = "freebsd");
            if elsewhere {
                tracing::warn!("backend freebsd off FreeBSD: its commands are looked up on PATH");
            }
            let mut backend = hvnet_freebsd::FreeBsdBackend::new(hvnet_freebsd::SystemRunner {
                path_lookup: elsewhere,
                file_root: cfg.freebsd_root.clone(),
            });
            backend.rc = load_rc(&cfg);
            let mgr = Manager::new(mc, net, hosted, metrics, shared).with_override_scan();
            let _ = ready.send(Ok(()));
            real_engine(&cfg, Box::new(backend), mgr, rx);
        }
        #[allow(unreachable_patterns)]
        other => {
            let _ = ready.send(Err(anyhow!(
                "backend {} is not available on this system (use {} or sim)",
                other.name(),
                BackendKind::native().name()
            )));
        }
    }
}

/// The engine for real backends: step on events, on the reconciler's timers and at least
/// every `resync`.
fn real_engine(cfg: &Config, mut backend: Box<dyn Backend>, mut mgr: Manager, rx: Receiver<Wake>) {
    let start = Instant::now();
    let mut next = Duration::ZERO;
    loop {
        let now = start.elapsed();
        let first = if next <= now {
            rx.try_recv().map_err(|e| match e {
                std::sync::mpsc::TryRecvError::Empty => RecvTimeoutError::Timeout,
                std::sync::mpsc::TryRecvError::Disconnected => RecvTimeoutError::Disconnected,
            })
        } else {
            rx.recv_timeout(next - now)
        };
        let mut wakes = Vec::new();
        match first {
            Ok(w) => wakes.push(w),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        // Coalesce a burst: every line goes to the hosted rules, one step for all.
        while let Ok(w) = rx.try_recv() {
            wakes.push(w);
        }
        for w in wakes {
            match w {
                Wake::Event(line) => mgr.event(&line),
                Wake::Kick => {}
                Wake::Reload => mgr.reload(Some(real_settings(cfg))),
                Wake::Leaving(synthetic) => mgr.leave(&synthetic, start.elapsed()),
                Wake::Shutdown => return,
            }
        }
        let now = start.elapsed();
        let at = mgr.step(now, backend.as_mut()).unwrap_or(now + cfg.resync);
        next = at.min(start.elapsed() + cfg.resync);
    }
}

/// The simulated guest's agent: the daemon's manager.
struct SimAgent {
    mgr: Rc<RefCell<Manager>>,
    next: Option<Duration>,
}

impl GuestAgent for SimAgent {
    fn name(&self) -> &str {
        "hvnet"
    }

    fn on_start(&mut self, now: Duration, backend: &mut dyn Backend) {
        self.next = self.mgr.borrow_mut().step(now, backend);
    }

    fn on_devctl(&mut self, now: Duration, line: &str, backend: &mut dyn Backend) {
        let mut m = self.mgr.borrow_mut();
        m.event(line);
        self.next = m.step(now, backend);
    }

    fn on_timer(&mut self, now: Duration, backend: &mut dyn Backend) {
        self.next = self.mgr.borrow_mut().step(now, backend);
    }

    fn next_wakeup(&self) -> Option<Duration> {
        self.next
    }
}

fn sim_engine(
    cfg: &Config,
    hosted: Option<Hosted>,
    metrics: Metrics,
    shared: SharedReport,
    rx: Receiver<Wake>,
    ready: Sender<anyhow::Result<()>>,
) {
    let sc = match hvnet_sim::builtin::load(&cfg.sim_scenario) {
        Ok(sc) => sc,
        Err(e) => {
            let _ = ready.send(Err(anyhow!("{e}")));
            return;
        }
    };
    let guest_rc = hvnet_sim::agent::load_rc(&sc.rc_conf);
    let mgr = Rc::new(RefCell::new(Manager::new(
        cfg.manager_config(guest_rc.hyperv_vf_delay()),
        Box::new(guest_rc),
        hosted,
        metrics,
        shared.clone(),
    )));
    let factory: AgentFactory = {
        let (mgr, cfg) = (mgr.clone(), cfg.clone());
        Box::new(move |ctx: &AgentContext| {
            if ctx.restarts > 0 {
                let rc = ctx.rc();
                tracing::info!("simulated agent restart #{}", ctx.restarts);
                mgr.borrow_mut()
                    .restart(cfg.manager_config(rc.hyperv_vf_delay()), Box::new(rc));
            }
            Box::new(SimAgent {
                mgr: mgr.clone(),
                next: None,
            })
        })
    };
    let (name, end) = (sc.name.clone(), sc.duration);
    let mut sim = match Sim::new(
        sc,
        RunOptions {
            seed: cfg.sim_seed,
            ..Default::default()
        },
        factory,
        Vec::new(),
    ) {
        Ok(s) => s,
        Err(e) => {
            let _ = ready.send(Err(anyhow!("{e}")));
            return;
        }
    };
    let _ = ready.send(Ok(()));
    tracing::info!(
        "simulating scenario {name} (seed {}, x{} speed, {} s virtual)",
        cfg.sim_seed,
        cfg.sim_speed,
        end.as_secs_f64()
    );
    let start = Instant::now();
    let mut finished = false;
    loop {
        match rx.recv_timeout(SIM_TICK) {
            Ok(Wake::Shutdown) | Err(RecvTimeoutError::Disconnected) => break,
            Ok(Wake::Reload) => mgr.borrow_mut().reload(None),
            Ok(Wake::Event(_) | Wake::Kick | Wake::Leaving(_)) | Err(RecvTimeoutError::Timeout) => {
            }
        }
        if !finished {
            let target = crate::limits::scale(start.elapsed(), cfg.sim_speed).min(end);
            sim.advance_to(target);
            finished = target >= end;
            if finished {
                tracing::info!("scenario {name} finished; still serving status");
            }
        }
        let mut m = mgr.borrow_mut();
        m.set_sim(SimReport {
            scenario: name.clone(),
            seed: cfg.sim_seed,
            speed: cfg.sim_speed,
            virtual_ms: sim.now().as_millis() as u64,
            end_ms: end.as_millis() as u64,
            finished,
        });
        m.refresh(sim.now());
    }
    lock(&shared).sim = None;
}

#[cfg(target_os = "linux")]
mod linux {
    use std::sync::mpsc::Sender;

    use anyhow::anyhow;

    use hvnet_linux::fastpath::{FastAction, FastPath};

    use super::Wake;
    use crate::config::Config;

    /// The configured role patterns.
    pub fn patterns(cfg: &Config) -> hvnet_linux::roles::RolePatterns {
        hvnet_linux::roles::RolePatterns {
            synthetic: cfg.linux_synthetic.clone(),
            vf: cfg.linux_vf.clone(),
        }
    }

    /// Hand each rtnetlink link notification to the fast path (a steered VF going closes its
    /// gate at once), then wake the reconciler, which re-observes and does the rest.
    pub fn spawn_link_events(tx: Sender<Wake>, fast: FastPath) -> anyhow::Result<()> {
        hvnet_linux::fastpath::spawn_reader(fast, move |done| {
            for d in done {
                match d {
                    FastAction::GateClosed { synthetic, vf } => tracing::info!(
                        "{vf} is going: steering gate of {synthetic} closed, traffic on {synthetic}"
                    ),
                    FastAction::Guarded { vf } => {
                        tracing::debug!("{vf}: IPv6 autoconfiguration off")
                    }
                }
            }
            tx.send(Wake::Kick).is_ok()
        })
        .map_err(|e| anyhow!("rtnetlink subscription: {e}"))?;
        Ok(())
    }

    /// Planned switches: netvsc's `VF slot N removed` in the kernel log (see
    /// `hvnet_linux::kmsg`). Without access to the log, only surprise removals are seen.
    pub fn follow_planned_switches(tx: Sender<Wake>, sysfs: std::path::PathBuf) {
        let follow = hvnet_linux::kmsg::follow("/dev/kmsg", move |r| {
            // The kernel log is shared by every network namespace: only our NIC counts.
            if r.is_for(&sysfs, &r.synthetic) {
                let _ = tx.send(Wake::Leaving(r.synthetic));
            } else {
                tracing::debug!("kernel log: {r:?} is not about this system's NIC");
            }
        });
        if let Err(e) = follow {
            tracing::warn!("/dev/kmsg: {e}; announced (planned) VF removals are not seen");
        }
    }
}

/// devd's socket as the event source (the FreeBSD backend's; plain Unix sockets, so it is
/// built and tested everywhere).
mod devd_events {
    use std::path::PathBuf;
    use std::sync::mpsc::Sender;
    use std::time::Duration;

    use anyhow::Context;
    use hvnet_freebsd::devd_socket::DevdSocket;

    use super::Wake;

    /// Read devd's seqpacket socket on a thread; reconnect (and ask for a resync: events
    /// may have been lost) whenever devd goes away.
    #[cfg_attr(not(target_os = "freebsd"), allow(dead_code))]
    pub fn spawn_devd_reader(path: PathBuf, tx: Sender<Wake>) -> anyhow::Result<()> {
        std::thread::Builder::new()
            .name("devd-reader".into())
            .spawn(move || {
                let p = path.to_string_lossy().into_owned();
                let mut warned = false;
                loop {
                    match DevdSocket::connect(&p) {
                        Ok(mut s) => {
                            tracing::info!("connected to devd at {p}");
                            warned = false;
                            if tx.send(Wake::Kick).is_err() {
                                return;
                            }
                            loop {
                                match s.recv_event() {
                                    Ok(Some(line)) => {
                                        if tx.send(Wake::Event(line)).is_err() {
                                            return;
                                        }
                                    }
                                    Ok(None) => {
                                        tracing::warn!("devd closed {p}; reconnecting");
                                        break;
                                    }
                                    Err(e) => {
                                        tracing::warn!("{p}: {e}; reconnecting");
                                        break;
                                    }
                                }
                            }
                        }
                        Err(e) if !warned => {
                            tracing::warn!("{p}: {e}; retrying every second");
                            warned = true;
                        }
                        Err(_) => {}
                    }
                    std::thread::sleep(Duration::from_secs(1));
                }
            })
            .context("starting the devd reader")?;
        Ok(())
    }

    #[cfg(test)]
    mod tests {
        use std::sync::mpsc::channel;
        use std::time::{Duration, Instant};

        use super::*;
        use hvnet_devd_daemon::clients::{Clients, Kind, Listener, SEQPACKET_NAME};

        fn accept(l: &Listener) -> Clients {
            let t = Instant::now();
            let mut clients = Clients::default();
            while clients.is_empty() {
                match l.accept().unwrap() {
                    Some(c) => clients.add(c),
                    None => std::thread::sleep(Duration::from_millis(10)),
                }
                assert!(
                    t.elapsed() < Duration::from_secs(10),
                    "reader never connected"
                );
            }
            clients
        }

        #[test]
        fn events_are_forwarded_and_a_lost_devd_is_reconnected() {
            let dir = tempfile::tempdir().unwrap();
            let l = Listener::create(dir.path(), Kind::SeqPacket, 4).unwrap();
            let (tx, rx) = channel();
            spawn_devd_reader(dir.path().join(SEQPACKET_NAME), tx).unwrap();
            let wait = || rx.recv_timeout(Duration::from_secs(10)).unwrap();
            let mut clients = accept(&l);
            assert!(matches!(wait(), Wake::Kick));
            clients.forward(b"!system=IFNET subsystem=hn0 type=LINK_UP\n");
            match wait() {
                Wake::Event(line) => assert_eq!(line, "!system=IFNET subsystem=hn0 type=LINK_UP"),
                other => panic!("{other:?}"),
            }
            // devd restarts: the reader connects again and asks for a resync.
            drop(clients);
            let mut clients = accept(&l);
            assert!(matches!(wait(), Wake::Kick));
            clients.forward(b"!system=HYPERV_NIC_VF subsystem=hn0 type=VF_UP\n");
            assert!(matches!(wait(), Wake::Event(l) if l.ends_with("type=VF_UP")));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::{Duration, Instant};

    use super::*;

    /// Set once the test has seen the daemon serve its status.
    static SERVED: AtomicBool = AtomicBool::new(false);

    /// An engine that starts and reports a healthy state, then dies once that was served.
    fn dying_engine(
        _: Config,
        _: Metrics,
        shared: SharedReport,
        _: Receiver<Wake>,
        ready: Sender<anyhow::Result<()>>,
        #[cfg(target_os = "linux")] _: hvnet_linux::fastpath::FastPath,
    ) {
        lock(&shared).converged = true;
        let _ = ready.send(Ok(()));
        let t = Instant::now();
        while !SERVED.load(Ordering::SeqCst) && t.elapsed() < Duration::from_secs(20) {
            std::thread::sleep(Duration::from_millis(5));
        }
        panic!("engine failure for the test");
    }

    #[test]
    fn a_dead_engine_stops_the_daemon_instead_of_serving_a_healthy_status() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("hvnet.sock");
        let cfg = Config {
            backend: BackendKind::Sim,
            control_socket: sock.clone(),
            ..Default::default()
        };
        let (done_tx, done_rx) = channel();
        std::thread::spawn(move || {
            let _ = done_tx.send(run_with(cfg, dying_engine).map_err(|e| e.to_string()));
        });
        // While the engine runs, its status is served.
        let t = Instant::now();
        loop {
            match control::query(&sock) {
                Ok(r) => {
                    assert!(r.converged);
                    break;
                }
                Err(e) => assert!(t.elapsed() < Duration::from_secs(10), "never served: {e}"),
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        SERVED.store(true, Ordering::SeqCst);
        let ended = done_rx
            .recv_timeout(Duration::from_secs(20))
            .expect("the daemon went on serving after its engine died");
        let e = ended.unwrap_err();
        assert!(
            e.contains("the engine thread panicked: engine failure for the test"),
            "{e}"
        );
        assert!(!sock.exists(), "the control socket outlived the engine");
    }
}
