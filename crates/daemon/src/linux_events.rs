//! Linux event sources: rtnetlink link notifications (through the fast path, which closes a
//! steered VF's gate the moment it goes) and planned switches announced in the kernel log.

use std::sync::mpsc::Sender;

use anyhow::anyhow;

use hvnet_linux::fastpath::{FastAction, FastPath};

use crate::config::LinuxSettings;
use crate::engine::Wake;

/// The configured role patterns.
pub fn patterns(linux: &LinuxSettings) -> hvnet_linux::roles::RolePatterns {
    hvnet_linux::roles::RolePatterns {
        synthetic: linux.synthetic.clone(),
        vf: linux.vf.clone(),
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
