//! `hvnet run`: the daemon.
//!
//! Threads:
//! - the *engine* thread owns the backend and the manager ([`hvnet_vf::Manager`]) and steps
//!   it ([`crate::engine`]); with `--backend sim` it owns the simulator, whose guest runs the
//!   same manager ([`crate::sim_engine`]). A [`Recorder`] keeps the history, metrics and
//!   report of every step.
//! - the tokio runtime serves the control socket and the metrics endpoint, turns signals
//!   into wake-ups, and (Linux) reads rtnetlink link notifications.
//! - FreeBSD: a thread reads devd's seqpacket socket and reconnects when devd restarts.
//! - hosted devd actions run on their own thread ([`crate::hosted`]).

use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;

use anyhow::{anyhow, Context};
use tokio::signal::unix::{signal, SignalKind};

use crate::config::{Backend, BackendKind, Config};
use crate::control;
use crate::engine::Wake;
use crate::hosted::Hosted;
use crate::metrics::Metrics;
use crate::publish::SharedReport;
use crate::recorder::Recorder;
use crate::report::Report;

fn hosted(cfg: &Config, metrics: &Metrics) -> anyhow::Result<Option<Hosted>> {
    cfg.devd_rules
        .as_ref()
        .map(|p| {
            Hosted::start(
                p,
                cfg.devd_shell.as_deref(),
                cfg.action_timeout,
                !matches!(cfg.backend, Backend::Sim(_)),
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
        clock: if matches!(cfg.backend, Backend::Sim(_)) {
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
    let fast = {
        let linux = match &cfg.backend {
            Backend::Linux(l) => l.clone(),
            _ => crate::config::LinuxSettings::default(),
        };
        hvnet_linux::fastpath::FastPath::new(crate::linux_events::patterns(&linux), linux.sysfs)
    };
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
    if let Backend::Linux(linux) = &cfg.backend {
        crate::linux_events::spawn_link_events(tx.clone(), fast)?;
        crate::linux_events::follow_planned_switches(tx.clone(), linux.sysfs.clone());
    }
    if let Backend::Freebsd(freebsd) = &cfg.backend {
        crate::devd_events::spawn_devd_reader(freebsd.devd_socket.clone(), tx.clone())?;
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
    let recorder = match hosted(&cfg, &metrics) {
        Ok(h) => Recorder::new(metrics, shared.clone(), h),
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let gate = |mgr: hvnet_vf::Manager| match &cfg.gate {
        Some(g) => mgr.with_gate(crate::gate::probe(g)),
        None => mgr,
    };
    match &cfg.backend {
        Backend::Sim(sim) => crate::sim_engine::run(&cfg, sim, recorder, shared, rx, ready),
        #[cfg(target_os = "linux")]
        Backend::Linux(linux) => {
            let backend = match hvnet_linux::backend::LinuxBackend::with_fast_path(
                crate::linux_events::patterns(linux),
                linux.sysfs.clone(),
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
            let (config, net) = crate::rc::settings(&cfg);
            let mgr = gate(hvnet_vf::Manager::new(config, net));
            let sysfs = linux.sysfs.clone();
            let recorder = recorder.with_packet_counters(Box::new(move |iface| {
                let p = hvnet_linux::stats::packets(&sysfs, iface);
                (p.rx, p.tx)
            }));
            let _ = ready.send(Ok(()));
            crate::engine::run(&cfg, Box::new(backend), mgr, recorder, rx);
        }
        Backend::Freebsd(freebsd) => {
            let (config, net) = crate::rc::settings(&cfg);
            // Elsewhere than on FreeBSD (a simulated guest's userland first on PATH, as
            // `hvnet simulate --serve DIR --speed X` provides) programs come from PATH.
            let elsewhere = !cfg!(target_os = "freebsd");
            if elsewhere {
                tracing::warn!("backend freebsd off FreeBSD: its commands are looked up on PATH");
            }
            let mut backend = hvnet_freebsd::FreeBsdBackend::new(hvnet_freebsd::SystemRunner {
                path_lookup: elsewhere,
                file_root: freebsd.root.clone(),
            });
            backend.rc = crate::rc::load(&cfg);
            let mgr = gate(hvnet_vf::Manager::new(config, net))
                .with_overrides(Box::new(hvnet_freebsd::overrides::OverrideDir));
            let _ = ready.send(Ok(()));
            crate::engine::run(&cfg, Box::new(backend), mgr, recorder, rx);
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
        crate::publish::lock(&shared).converged = true;
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
            backend: Backend::Sim(Default::default()),
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
