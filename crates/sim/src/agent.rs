//! Guest agents: programs that run in the guest at full speed, woken by
//! devctl lines and timers, acting on the kernel through
//! [`hvnet_vf::Backend`] (the VF manager) or through the guest's own
//! commands (the original devd rules and scripts), or nothing at all.

use std::time::Duration;

use hvnet_vf::Backend;

use crate::backend::SimBackend;

/// What an agent is told when it (re)starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentContext {
    /// The scenario's rc.conf text (parse it with `hvnet_rcconf::RcConf::from_text`).
    pub rc_conf: String,
    /// `hw.hn.vf_transparent` at boot.
    pub vf_transparent: bool,
    /// The run's seed (for agents that randomise).
    pub seed: u64,
    /// How many times the agent was restarted before this start.
    pub restarts: u32,
    /// The scenario's readiness gate for the VF manager (`readiness`).
    pub readiness: Option<crate::scenario::ReadinessSpec>,
}

/// The /etc/defaults/rc.conf values the simulated guest has (the ones
/// network.subr's rules depend on).
pub const RC_DEFAULTS: &str = "ipv6_network_interfaces=\"auto\"
ipv6_activate_all_interfaces=\"NO\"
synchronous_dhclient=\"NO\"
background_dhclient=\"NO\"
";

impl AgentContext {
    /// rc.conf as `load_rc_config` would read it: the defaults, then the
    /// scenario's /etc/rc.conf.
    pub fn rc(&self) -> hvnet_rcconf::RcConf {
        load_rc(&self.rc_conf)
    }
}

/// Parse a guest's rc.conf text on top of [`RC_DEFAULTS`].
pub fn load_rc(rc_conf: &str) -> hvnet_rcconf::RcConf {
    let mut rc = hvnet_rcconf::RcConf::new();
    rc.source_text("/etc/defaults/rc.conf", RC_DEFAULTS);
    rc.source_text("/etc/rc.conf", rc_conf);
    rc
}

/// A program running in the simulated guest.
///
/// The runner calls `on_start` once per (re)start, `on_devctl` for each
/// devctl line as devd would deliver it, and `on_timer` when virtual time
/// reaches `next_wakeup()`. All calls happen at virtual time `now`; the
/// agent may call `backend.observe()`/`apply()` any number of times.
/// Changes take effect at once; the resulting devctl lines are delivered
/// after the callback returns.
pub trait GuestAgent {
    /// A short name for the timeline.
    fn name(&self) -> &str;

    /// The agent starts (boot, or after a restart).
    fn on_start(&mut self, now: Duration, backend: &mut dyn Backend) {
        let _ = (now, backend);
    }

    /// A devctl line (`!system=... subsystem=... type=...`, no newline).
    fn on_devctl(&mut self, now: Duration, line: &str, backend: &mut dyn Backend) {
        let _ = (now, line, backend);
    }

    /// Virtual time reached `next_wakeup()`.
    fn on_timer(&mut self, now: Duration, backend: &mut dyn Backend) {
        let _ = (now, backend);
    }

    /// What the simulator calls: `guest` is the kernel as a [`Backend`] and the
    /// guest's commands as a [`hvnet_freebsd::CommandRunner`] (ifconfig,
    /// sysctl, dhclient, ... as [`crate::guestcmd`] answers them). An agent
    /// that runs programs (the original scripts) implements the `_guest`
    /// callbacks; by default they are the backend-only ones above.
    fn on_start_guest(&mut self, now: Duration, guest: &mut SimBackend<'_>) {
        self.on_start(now, guest);
    }

    fn on_devctl_guest(&mut self, now: Duration, line: &str, guest: &mut SimBackend<'_>) {
        self.on_devctl(now, line, guest);
    }

    fn on_timer_guest(&mut self, now: Duration, guest: &mut SimBackend<'_>) {
        self.on_timer(now, guest);
    }

    /// When the agent wants `on_timer` next (`None`: only on events).
    fn next_wakeup(&self) -> Option<Duration>;

    /// Log lines since the last call, for the timeline.
    fn take_log(&mut self) -> Vec<String> {
        Vec::new()
    }
}

/// Builds an agent for each (re)start.
pub type AgentFactory = Box<dyn FnMut(&AgentContext) -> Box<dyn GuestAgent>>;

/// The kernel-only agent: does nothing (rc still configures interfaces at
/// boot; no devd rules run).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoAgent;

impl GuestAgent for NoAgent {
    fn name(&self) -> &str {
        "none"
    }

    fn on_devctl(&mut self, _now: Duration, _line: &str, _backend: &mut dyn Backend) {}

    fn on_timer(&mut self, _now: Duration, _backend: &mut dyn Backend) {}

    fn next_wakeup(&self) -> Option<Duration> {
        None
    }
}

/// A factory for [`NoAgent`].
pub fn no_agent() -> AgentFactory {
    Box::new(|_| Box::new(NoAgent))
}
