//! `hvnet chaos [--seeds N] [--from S] [--json]`: random scenarios with
//! faults on the simulator, the VF manager in the guest, invariants
//! checked per seed. Exit 1 when any seed fails; each failing seed is
//! printed so `hvnet chaos --from SEED --seeds 1` reproduces it.

use std::process::ExitCode;
use std::time::Instant;

use clap::Args;
use serde_json::json;

use hvnet_simlab::chaos::{generate, run_seed, Tally};

use hvnet_sim::manager_agent;

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

/// The seeds `--from F --seeds N` names: F, F+1, ..., F+N-1, which must all be u64 values
/// (a range that would wrap or saturate is refused rather than reported as run).
pub fn seed_range(from: u64, seeds: u64) -> anyhow::Result<impl DoubleEndedIterator<Item = u64>> {
    if seeds > 0 && from.checked_add(seeds - 1).is_none() {
        anyhow::bail!(
            "--from {from} --seeds {seeds}: seeds end at {}; the largest --seeds from {from} is {}",
            u64::MAX,
            u64::MAX - from + 1
        );
    }
    Ok((0..seeds).map(move |i| from + i))
}

pub fn run(a: ChaosArgs) -> anyhow::Result<ExitCode> {
    let seeds = seed_range(a.from, a.seeds)?;
    let start = Instant::now();
    let mut tally = Tally::default();
    for seed in seeds {
        let r = run_seed(seed, manager_agent());
        tally.add(&r);
        if !r.passed && !a.json {
            eprintln!("seed {seed} FAILED: {}", r.problems.join("; "));
            if a.show {
                eprintln!("{}", generate(seed).text);
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let ran = tally.ran;
    if a.json {
        println!(
            "{}",
            json!({
                "seeds": ran,
                "from": a.from,
                "failed_seeds": tally.failed,
                "invariant_violations": tally.invariant_violations,
                "wall_ms": (secs * 1000.0 * 1000.0).round() / 1000.0,
                "seeds_per_sec": if secs > 0.0 { (ran as f64 / secs).round() } else { 0.0 },
                "vf_up_max_ms": tally.vf_up_max_ms,
                "back_to_hn_max_ms": tally.back_to_hn_max_ms,
            })
        );
    } else {
        println!(
            "{} seeds from {}: {} failed, {} invariant violations, {:.0} seeds/s",
            ran,
            a.from,
            tally.failed.len(),
            tally.invariant_violations,
            if secs > 0.0 { ran as f64 / secs } else { 0.0 }
        );
    }
    Ok(if tally.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_range_is_exactly_the_seeds_that_run() {
        let seeds = |from, n| seed_range(from, n).unwrap().collect::<Vec<u64>>();
        assert_eq!(seeds(0, 3), [0, 1, 2]);
        assert_eq!(seeds(u64::MAX, 1), [u64::MAX]);
        assert_eq!(
            seeds(u64::MAX - 2, 3),
            [u64::MAX - 2, u64::MAX - 1, u64::MAX]
        );
        assert!(seeds(u64::MAX, 0).is_empty());
        // The ends of the longest range, without walking it.
        let mut all = seed_range(1, u64::MAX).unwrap();
        assert_eq!((all.next(), all.next_back()), (Some(1), Some(u64::MAX)));
        let e = seed_range(u64::MAX, 2).err().unwrap().to_string();
        assert_eq!(
            e,
            "--from 18446744073709551615 --seeds 2: seeds end at 18446744073709551615; the largest --seeds from 18446744073709551615 is 1"
        );
        assert!(seed_range(2, u64::MAX).is_err());
    }
}
