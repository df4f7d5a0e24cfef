//! Fault injection for chaos runs: lost, duplicated and reordered devctl
//! events, failing ops and observes. Deterministic: one ChaCha stream per
//! run, seeded from the run's seed.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Probabilities (0.0..=1.0) of each fault.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct FaultConfig {
    /// A devctl line is not delivered to the agent or devd.
    pub devctl_loss: f64,
    /// A devctl line is delivered twice.
    pub devctl_dup: f64,
    /// A devctl line is delivered after the next one.
    pub devctl_reorder: f64,
    /// `Backend::apply` fails.
    pub op_fail: f64,
    /// `Backend::observe` fails.
    pub observe_fail: f64,
}

impl FaultConfig {
    /// True when no fault can happen.
    pub fn is_none(&self) -> bool {
        *self == FaultConfig::default()
    }
}

/// The fault source of one run.
#[derive(Debug, Clone)]
pub struct Faults {
    pub config: FaultConfig,
    rng: ChaCha8Rng,
    /// Counters of injected faults, by kind.
    pub injected: std::collections::BTreeMap<&'static str, u64>,
}

impl Faults {
    pub fn new(config: FaultConfig, seed: u64) -> Self {
        Faults {
            config,
            rng: ChaCha8Rng::seed_from_u64(seed ^ 0x6661_756c_7473),
            injected: Default::default(),
        }
    }

    fn roll(&mut self, p: f64, kind: &'static str) -> bool {
        if p <= 0.0 {
            return false;
        }
        let hit = self.rng.random_bool(p.min(1.0));
        if hit {
            *self.injected.entry(kind).or_default() += 1;
        }
        hit
    }

    pub fn fail_op(&mut self) -> bool {
        let p = self.config.op_fail;
        self.roll(p, "op_fail")
    }

    pub fn fail_observe(&mut self) -> bool {
        let p = self.config.observe_fail;
        self.roll(p, "observe_fail")
    }

    /// Apply loss, duplication and reordering to a batch of devctl lines.
    pub fn mangle_devctl(&mut self, lines: Vec<String>) -> Vec<String> {
        let c = self.config;
        if c.devctl_loss <= 0.0 && c.devctl_dup <= 0.0 && c.devctl_reorder <= 0.0 {
            return lines;
        }
        let mut out: Vec<String> = Vec::with_capacity(lines.len());
        for l in lines {
            if self.roll(c.devctl_loss, "devctl_loss") {
                continue;
            }
            let dup = self.roll(c.devctl_dup, "devctl_dup");
            out.push(l.clone());
            if dup {
                out.push(l);
            }
        }
        let mut i = 0;
        while i + 1 < out.len() {
            if self.roll(c.devctl_reorder, "devctl_reorder") {
                out.swap(i, i + 1);
                i += 2;
            } else {
                i += 1;
            }
        }
        out
    }
}
