//! The original FreeBSD userland as a guest agent: [`hvnet_freebsd::userland::Userland`] —
//! devd's engine over hyperv.conf and devd.conf's `IFNET LINK_UP` dhclient rule, the shipped
//! `hyperv_vfattach` and `hyperv_vfup` with their known defects (spec hn.md §3) — running
//! its commands in the simulated guest ([`crate::guestcmd`]). It is the baseline the VF
//! manager is compared with.
//!
//! Differences from the real thing: actions do not block devd (a SYNCDHCP `dhclient` in
//! hyperv_vfup would stall devd until the lease); `hvnet compare --original real` runs the
//! shell scripts themselves and shows that.

use std::time::Duration;

use hvnet_freebsd::userland::Userland;

use crate::agent::{AgentContext, AgentFactory, GuestAgent};
use crate::backend::SimBackend;

/// devd + hyperv.conf + the two scripts, in the guest.
pub struct OriginalScripts {
    userland: Userland,
}

impl OriginalScripts {
    /// Over the guest's rc.conf text (`/etc/rc.conf`, on top of the simulated defaults).
    pub fn new(rc_conf: &str) -> Self {
        OriginalScripts {
            userland: Userland::new(
                crate::agent::load_rc(rc_conf),
                hvnet_rcconf::RcConf::from_text("/etc/rc.conf", rc_conf),
            ),
        }
    }
}

/// A factory for [`OriginalScripts`].
pub fn original_scripts() -> AgentFactory {
    Box::new(|ctx: &AgentContext| Box::new(OriginalScripts::new(&ctx.rc_conf)))
}

impl GuestAgent for OriginalScripts {
    fn name(&self) -> &str {
        "scripts"
    }

    fn on_devctl_guest(&mut self, now: Duration, line: &str, guest: &mut SimBackend<'_>) {
        let media = crate::guestcmd::media(guest.world);
        self.userland.on_devctl(now, line, &media, guest);
    }

    fn on_timer_guest(&mut self, now: Duration, guest: &mut SimBackend<'_>) {
        self.userland.on_timer(now, guest);
    }

    fn next_wakeup(&self) -> Option<Duration> {
        self.userland.next_wakeup()
    }

    fn take_log(&mut self) -> Vec<String> {
        self.userland.take_log()
    }
}
