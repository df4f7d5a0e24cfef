//! Manager options: mode, VF delay, flap damping, retry
//! back-off. Plain data; the daemon fills it from rc.conf and its own
//! configuration.

use std::time::Duration;

use hvnet_rcconf::RcConf;
use serde::{Deserialize, Serialize};

/// How pairs are handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ModeSetting {
    /// Transparent when the platform says so, else non-transparent.
    #[default]
    Auto,
    /// A failover aggregate holds the synthetic NIC (primary) and the VF;
    /// the IP configuration lives on the aggregate.
    NonTransparent,
    /// The kernel pairs and steers; hvnet guards the VF.
    Transparent,
    /// hvnet steers (Linux tc); configuration stays on the synthetic NIC.
    Steered,
}

/// The mode in effect (never `Auto`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    NonTransparent,
    Transparent,
    Steered,
}

impl Mode {
    /// The name in the status report and table.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::NonTransparent => "non_transparent",
            Mode::Transparent => "transparent",
            Mode::Steered => "steered",
        }
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ModeSetting {
    /// Resolve `Auto` with the platform's `vf_transparent` fact.
    pub fn resolve(self, vf_transparent: bool) -> Mode {
        match self {
            ModeSetting::Auto if vf_transparent => Mode::Transparent,
            ModeSetting::Auto => Mode::NonTransparent,
            ModeSetting::NonTransparent => Mode::NonTransparent,
            ModeSetting::Transparent => Mode::Transparent,
            ModeSetting::Steered => Mode::Steered,
        }
    }
}

/// Exponential back-off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
}

impl Backoff {
    /// Delay before attempt number `failures + 1` (`failures >= 1`).
    pub fn delay(&self, failures: u32) -> Duration {
        let shift = failures.saturating_sub(1).min(20);
        self.initial.saturating_mul(1u32 << shift).min(self.max)
    }
}

/// Flap damping: after `threshold` VF losses within `window`, a returning
/// VF is held down (not used) for `hold`, doubling per further loss up to
/// `max_hold`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlapDamping {
    pub threshold: u32,
    pub window: Duration,
    pub hold: Duration,
    pub max_hold: Duration,
}

impl Default for FlapDamping {
    fn default() -> Self {
        FlapDamping {
            threshold: 4,
            window: Duration::from_secs(60),
            hold: Duration::from_secs(10),
            max_hold: Duration::from_secs(300),
        }
    }
}

/// The minimum VF delay (hyperv_vfattach: "at least 2 seconds").
pub const MIN_VF_DELAY: Duration = Duration::from_secs(2);

/// All manager options.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManagerConfig {
    pub mode: ModeSetting,
    /// `hyperv_vf_delay`: how long a new VF waits before it is used. With a
    /// readiness gate this is the upper bound; never below [`MIN_VF_DELAY`].
    pub vf_delay: Duration,
    pub damping: FlapDamping,
    /// Retry of failed steps.
    pub retry: Backoff,
    /// Restart of KVP/VSS daemons that died while their device exists.
    pub daemon_restart: Backoff,
    /// Start/stop hv_kvp_daemon and hv_vss_daemon with their devices.
    pub manage_daemons: bool,
    /// Directory of per-interface `hyperv_vfup.hnX` overrides.
    pub vfup_dir: String,
    /// Re-observe at least this often even without events (events can be
    /// lost: devd restarts, socket overruns).
    pub resync: Duration,
}

impl Default for ManagerConfig {
    fn default() -> Self {
        ManagerConfig {
            mode: ModeSetting::Auto,
            vf_delay: MIN_VF_DELAY,
            damping: FlapDamping::default(),
            retry: Backoff {
                initial: Duration::from_millis(200),
                max: Duration::from_secs(5),
            },
            daemon_restart: Backoff {
                initial: Duration::from_secs(1),
                max: Duration::from_secs(60),
            },
            manage_daemons: true,
            vfup_dir: "/usr/libexec/hyperv".into(),
            resync: Duration::from_secs(10),
        }
    }
}

impl ManagerConfig {
    /// Defaults with `hyperv_vf_delay` from rc.conf (integer >= 2, else 2).
    pub fn from_rcconf(rc: &RcConf) -> Self {
        ManagerConfig::default().with_vf_delay_secs(rc.hyperv_vf_delay())
    }

    /// Set the VF delay, clamped to at least [`MIN_VF_DELAY`].
    pub fn with_vf_delay_secs(mut self, secs: u64) -> Self {
        self.vf_delay = Duration::from_secs(secs).max(MIN_VF_DELAY);
        self
    }

    /// Path of the per-interface hyperv_vfup override for `synthetic`.
    pub fn vfup_override_path(&self, synthetic: &str) -> String {
        format!(
            "{}/hyperv_vfup.{synthetic}",
            self.vfup_dir.trim_end_matches('/')
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_from_rcconf_has_a_floor_of_two_seconds() {
        for (text, secs) in [
            ("", 2),
            ("hyperv_vf_delay=120\n", 120),
            ("hyperv_vf_delay=1\n", 2),
            ("hyperv_vf_delay=abc\n", 2),
        ] {
            let rc = RcConf::from_text("/etc/rc.conf", text);
            assert_eq!(
                ManagerConfig::from_rcconf(&rc).vf_delay,
                Duration::from_secs(secs),
                "{text}"
            );
        }
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let b = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        assert_eq!(b.delay(1), Duration::from_millis(100));
        assert_eq!(b.delay(2), Duration::from_millis(200));
        assert_eq!(b.delay(30), Duration::from_secs(1));
    }

    #[test]
    fn auto_mode_follows_platform() {
        assert_eq!(ModeSetting::Auto.resolve(true), Mode::Transparent);
        assert_eq!(ModeSetting::Auto.resolve(false), Mode::NonTransparent);
        assert_eq!(ModeSetting::Steered.resolve(true), Mode::Steered);
    }
}
