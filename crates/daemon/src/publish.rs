//! The report `hvnet status` shows, shared between the engine thread (which fills it after
//! every step) and the control socket (which answers with a copy).

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use hvnet_vf::Status;

use crate::history::{ms, History};
use crate::report::Report;

/// The report shared with the control socket.
pub type SharedReport = Arc<Mutex<Report>>;

/// Lock a shared report, whatever a panicking holder left behind.
pub fn lock(r: &SharedReport) -> MutexGuard<'_, Report> {
    r.lock().unwrap_or_else(|p| p.into_inner())
}

/// Fill `r` from the manager's status after a step at `now`, with the daemon's history.
/// Under the wall clock (`monotonic`) each pair also gets its `path_since` as Unix time.
pub fn publish(r: &mut Report, now: Duration, status: &Status, history: &History) {
    let mut pairs: Vec<_> = status
        .pairs
        .iter()
        .map(|p| history.pair_report(p))
        .collect();
    if r.clock == "monotonic" {
        for p in &mut pairs {
            p.path_since_unix_ms = Some(r.started_unix_ms + p.path_since_ms);
        }
    }
    r.now_ms = ms(now);
    r.mode = Some(status.mode);
    r.converged = status.converged;
    r.steps = history.steps();
    r.pairs = pairs;
    r.unpaired_vfs = status.unpaired_vfs.clone();
    r.daemons = status.daemons.clone();
    r.errors = status.errors.clone();
    r.recent_actions = history.recent_actions();
    (r.actions_applied, r.actions_failed) = history.actions();
}
