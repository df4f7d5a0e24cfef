//! `hvnet chaos [--seeds N] [--from S] [--json]`: random scenarios with
//! faults on the simulator, the VF manager in the guest, invariants
//! checked per seed. Exit 1 when any seed fails; each failing seed is
//! printed so `hvnet chaos --from SEED --seeds 1` reproduces it.

use std::process::ExitCode;
use std::time::Instant;

use clap::Args;
use serde_json::json;

use crate::daemon::chaos::{generate, run_seed};

#[derive(Args, Debug)]
pub struct ChaosArgs {
    /// How many seeds to run.
    #[arg(long, default_value_t = 1000)]
    pub seeds: u64,
    /// The first seed.
    #[arg(long, default_value_t = 0)]
    pub from: u64,
    /// One JSON summary line: {"seeds", "failed_seeds", "invariant_violations", ...}.
    #[arg(long)]
    pub json: bool,
    /// Print the generated scenario of each failing seed.
    #[arg(long)]
    pub show: bool,
}

pub fn run(a: ChaosArgs) -> anyhow::Result<ExitCode> {
    let start = Instant::now();
    let mut failed = Vec::new();
    let mut violations = 0u64;
    let mut vf_up_max: f64 = 0.0;
    let mut back_max: f64 = 0.0;
    for seed in a.from..a.from.saturating_add(a.seeds) {
        let r = run_seed(seed);
        violations += r.invariant_violations;
        vf_up_max = vf_up_max.max(r.vf_up_max_ms.unwrap_or(0.0));
        back_max = back_max.max(r.back_to_hn_max_ms.unwrap_or(0.0));
        if !r.passed {
            if !a.json {
                eprintln!("seed {seed} FAILED: {}", r.problems.join("; "));
                if a.show {
                    eprintln!("{}", generate(seed).text);
                }
            }
            failed.push(seed);
        }
    }
    let secs = start.elapsed().as_secs_f64();
    if a.json {
        println!(
            "{}",
            json!({
                "seeds": a.seeds,
                "from": a.from,
                "failed_seeds": failed,
                "invariant_violations": violations,
                "wall_ms": (secs * 1000.0 * 1000.0).round() / 1000.0,
                "seeds_per_sec": if secs > 0.0 { (a.seeds as f64 / secs).round() } else { 0.0 },
                "vf_up_max_ms": vf_up_max,
                "back_to_hn_max_ms": back_max,
            })
        );
    } else {
        println!(
            "{} seeds from {}: {} failed, {} invariant violations, {:.0} seeds/s",
            a.seeds,
            a.from,
            failed.len(),
            violations,
            if secs > 0.0 {
                a.seeds as f64 / secs
            } else {
                0.0
            }
        );
    }
    Ok(if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
