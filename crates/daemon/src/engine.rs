//! The engine thread for real backends: it owns the backend and the manager, waits for a
//! wake-up (an event, a timer the manager asked for, the periodic resync) and steps.
//! Backends are synchronous (commands, netlink requests on their own runtime), so a step
//! never blocks the async side; the readiness gate is checked beside the steps, never in them.

use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::time::{Duration, Instant};

use hvnet_vf::{Backend, Manager};

use crate::config::Config;
use crate::recorder::{self, Recorder};

/// A reason to step.
#[derive(Debug)]
pub enum Wake {
    /// A devctl line (FreeBSD) — hosted rules see it, then the manager steps.
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

/// Step on events, on the manager's timers and at least every `resync`, until shutdown.
pub fn run(
    cfg: &Config,
    mut backend: Box<dyn Backend>,
    mut mgr: Manager,
    mut recorder: Recorder,
    rx: Receiver<Wake>,
) {
    let start = Instant::now();
    let mut next = Duration::ZERO;
    loop {
        let now = start.elapsed();
        let first = if next <= now {
            rx.try_recv().map_err(|e| match e {
                TryRecvError::Empty => RecvTimeoutError::Timeout,
                TryRecvError::Disconnected => RecvTimeoutError::Disconnected,
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
                Wake::Event(line) => recorder.event(&line),
                Wake::Kick => {}
                Wake::Reload => {
                    let (config, net) = crate::rc::settings(cfg);
                    mgr.reconfigure(config, net);
                    recorder.reload_hosted();
                }
                Wake::Leaving(synthetic) => {
                    recorder::log(&mgr.leave(&synthetic, start.elapsed()));
                }
                Wake::Shutdown => return,
            }
        }
        let now = start.elapsed();
        let rep = mgr.step(now, backend.as_mut());
        recorder.stepped(now, &rep);
        let at = rep.next_wakeup.unwrap_or(now + cfg.resync);
        next = at.min(start.elapsed() + cfg.resync);
    }
}
