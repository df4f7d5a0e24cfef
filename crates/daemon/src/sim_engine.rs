//! The engine thread with `--backend sim`: it owns the simulator and moves its virtual clock
//! along with the wall clock (times `speed`). The simulated guest runs the manager as its
//! agent ([`hvnet_sim::ManagerAgent`], what `hvnet simulate` runs) with the daemon's options;
//! the daemon watches its steps to keep the history, metrics and report.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use anyhow::anyhow;
use hvnet_sim::{
    guest_manager, AgentContext, AgentFactory, ManagerAgent, RunOptions, Sim, Watcher,
};
use hvnet_vf::StepReport;

use crate::config::{Config, SimSettings};
use crate::engine::Wake;
use crate::publish::{lock, SharedReport};
use crate::recorder::Recorder;
use crate::report::SimReport;

/// The simulator's wall-clock tick.
const SIM_TICK: Duration = Duration::from_millis(20);

/// The daemon's recorder, watching the simulated guest's manager.
struct Watch(Rc<RefCell<Recorder>>);

impl Watcher for Watch {
    fn devctl(&mut self, line: &str) {
        self.0.borrow_mut().event(line);
    }

    fn stepped(&mut self, now: Duration, report: &StepReport) {
        self.0.borrow_mut().stepped(now, report);
    }
}

/// The agent factory: on every (re)start a fresh manager (a restart loses only timers; the
/// daemon's history stays), with hvnet.conf's options over the guest's rc.conf, and
/// hvnet.conf's readiness gate when it has one (checked on this host, its time limit in
/// virtual time), else the scenario's.
fn factory(cfg: &Config, recorder: Rc<RefCell<Recorder>>) -> AgentFactory {
    let cfg = cfg.clone();
    Box::new(move |ctx: &AgentContext| {
        if ctx.restarts > 0 {
            tracing::info!("simulated agent restart #{}", ctx.restarts);
        }
        let config = cfg.manager_config(ctx.rc().hyperv_vf_delay());
        let mut mgr = guest_manager(ctx, config);
        if let Some(g) = &cfg.gate {
            mgr = mgr.with_gate(crate::gate::probe(g));
        }
        Box::new(ManagerAgent::running(mgr).watched_by(Box::new(Watch(recorder.clone()))))
    })
}

pub fn run(
    cfg: &Config,
    settings: &SimSettings,
    recorder: Recorder,
    shared: SharedReport,
    rx: Receiver<Wake>,
    ready: Sender<anyhow::Result<()>>,
) {
    let sc = match hvnet_sim::builtin::load(&settings.scenario) {
        Ok(sc) => sc,
        Err(e) => {
            let _ = ready.send(Err(anyhow!("{e}")));
            return;
        }
    };
    let recorder = Rc::new(RefCell::new(recorder));
    let (name, end) = (sc.name.clone(), sc.duration);
    let opts = RunOptions {
        seed: settings.seed,
        ..Default::default()
    };
    let mut sim = match Sim::new(sc, opts, factory(cfg, recorder.clone()), Vec::new()) {
        Ok(s) => s,
        Err(e) => {
            let _ = ready.send(Err(anyhow!("{e}")));
            return;
        }
    };
    let _ = ready.send(Ok(()));
    tracing::info!(
        "simulating scenario {name} (seed {}, x{} speed, {} s virtual)",
        settings.seed,
        settings.speed,
        end.as_secs_f64()
    );
    let start = Instant::now();
    let mut finished = false;
    loop {
        match rx.recv_timeout(SIM_TICK) {
            Ok(Wake::Shutdown) | Err(RecvTimeoutError::Disconnected) => break,
            Ok(Wake::Reload) => recorder.borrow_mut().reload_hosted(),
            Ok(Wake::Event(_) | Wake::Kick | Wake::Leaving(_)) | Err(RecvTimeoutError::Timeout) => {
            }
        }
        if !finished {
            let target = crate::limits::scale(start.elapsed(), settings.speed).min(end);
            sim.advance_to(target);
            finished = target >= end;
            if finished {
                tracing::info!("scenario {name} finished; still serving status");
            }
        }
        let mut r = recorder.borrow_mut();
        r.set_sim(SimReport {
            scenario: name.clone(),
            seed: settings.seed,
            speed: settings.speed,
            virtual_ms: sim.now().as_millis() as u64,
            end_ms: end.as_millis() as u64,
            finished,
        });
        r.refresh(sim.now());
    }
    lock(&shared).sim = None;
}
