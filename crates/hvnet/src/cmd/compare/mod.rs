//! `hvnet compare [--json] [--seed N] [--rate PPS] [--scenario NAME]... [--original real|emulated]`: the
//! original FreeBSD system (devd running hyperv.conf and devd.conf's dhclient rule, the seed's
//! `hyperv_vfattach`, the spec's `hyperv_vfup`) and hvnet's VF manager side by side on every
//! built-in simulator scenario, same seed for both.
//!
//! For each scenario and side: passed or failed (the scenario's expectations and the
//! simulator's invariants), packets lost, time to the VF and back to hn (median, virtual
//! time), and what was left wrong ([`hvnet_simlab::problems`]: generic checks, not per
//! scenario). The sides run and are judged in [`hvnet_simlab::compare`]; this module parses
//! the arguments and prints the rows.
//!
//! `--original real` (default) runs the real shell scripts as processes against the
//! simulator (hvnet-simlab's `original`, feature `harness`); `--original emulated` uses the
//! simulator's in-process emulation of them (`hvnet simulate --agent scripts`).
//!
//! `--json`: one object per scenario, `{"scenario", "mode", "seed", "original": {"passed",
//! "lost", "problems": [{"kind","detail"}], ...}, "hvnet": {...}}`.
//! Exit status 0 when hvnet passed every scenario, 1 otherwise or on error.

use std::process::ExitCode;

use clap::{Args, ValueEnum};
use hvnet_sim::{builtin, Latency, Scenario};
use hvnet_simlab::compare::{emulated_original, hvnet_side, Row, Side};

#[derive(Args, Debug)]
pub struct CompareArgs {
    /// One JSON object per scenario (one per line).
    #[arg(long)]
    pub json: bool,
    /// Seed for both sides (default: the scenario's `seed`, else 0).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Only these scenarios: built-in names or scenario files (repeatable; default: every
    /// built-in).
    #[arg(long = "scenario", value_name = "NAME")]
    pub scenarios: Vec<String>,
    /// Print each run's timeline before the table (both sides).
    #[arg(long)]
    pub timeline: bool,
    /// The peer's packets a second each way, instead of each scenario's `traffic rate`.
    #[arg(long, value_name = "PPS")]
    pub rate: Option<u64>,
    /// How the original system runs: `real` — the shell scripts as processes, devd's rules
    /// through hvnet's devd engine, the simulator serving sysctl/ifconfig/dhclient/...;
    /// `emulated` — the simulator's in-process emulation of the same scripts.
    #[arg(long, value_enum, default_value_t = Original::Real)]
    pub original: Original,
    /// Client side of the fake FreeBSD commands (used by the test root's bin/ wrappers).
    #[arg(long, value_name = "ROOT", hide = true)]
    pub client: Option<std::path::PathBuf>,
    /// The command a wrapper runs (after `--`).
    #[arg(last = true, hide = true)]
    pub argv: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Original {
    Real,
    Emulated,
}

/// Run one scenario on both sides.
pub fn compare(sc: &Scenario, seed: u64, original: Original) -> anyhow::Result<Row> {
    let orig = match original {
        Original::Emulated => emulated_original(sc, seed)?,
        Original::Real => real_original(sc, seed)?,
    };
    let hv = hvnet_side(sc, seed, hvnet_sim::manager_agent())?;
    Ok(Row::new(sc, seed, orig, hv))
}

#[cfg(feature = "harness")]
fn real_original(sc: &Scenario, seed: u64) -> anyhow::Result<Side> {
    use anyhow::Context;
    let client = super::harness::client_command("compare")?;
    hvnet_simlab::original::side(sc, seed, &client)
        .with_context(|| format!("{}: running the original scripts", sc.name))
}

#[cfg(not(feature = "harness"))]
fn real_original(_sc: &Scenario, _seed: u64) -> anyhow::Result<Side> {
    Err(super::harness::unavailable("--original real"))
}

fn secs(l: &Option<Latency>) -> String {
    match l {
        Some(l) if l.median == l.max => format!("{:.2}s", l.median / 1000.0),
        Some(l) => format!("{:.2}s..{:.2}s", l.median / 1000.0, l.max / 1000.0),
        None => "-".into(),
    }
}

fn verdict(s: &Side) -> &'static str {
    if s.passed {
        "passed"
    } else {
        "FAILED"
    }
}

/// The human table: one line per scenario, then what each side left wrong.
pub fn table(rows: &[Row]) -> String {
    let mut t = format!(
        "{:<20} {:<6} | {:<7} {:>6} {:>12} {:>7} | {:<7} {:>6} {:>12} {:>7}\n",
        "scenario", "mode", "original", "lost", "to VF", "to hn", "hvnet", "lost", "to VF", "to hn"
    );
    for r in rows {
        let mode = if r.mode == "transparent" {
            "xpnt"
        } else {
            "non-xp"
        };
        t.push_str(&format!(
            "{:<20} {:<6} | {:<7} {:>6} {:>12} {:>7} | {:<7} {:>6} {:>12} {:>7}\n",
            r.scenario,
            mode,
            verdict(&r.original),
            r.original.lost,
            secs(&r.original.time_to_vf_ms),
            secs(&r.original.back_to_hn_ms),
            verdict(&r.hvnet),
            r.hvnet.lost,
            secs(&r.hvnet.time_to_vf_ms),
            secs(&r.hvnet.back_to_hn_ms),
        ));
    }
    let passed = |f: fn(&Row) -> &Side| rows.iter().filter(|r| f(r).passed).count();
    t.push_str(&format!(
        "\noriginal passed {}/{}, hvnet passed {}/{}\n",
        passed(|r| &r.original),
        rows.len(),
        passed(|r| &r.hvnet),
        rows.len()
    ));
    let mut wrong = String::new();
    for r in rows {
        for (who, s) in [("original", &r.original), ("hvnet", &r.hvnet)] {
            for p in &s.problems {
                wrong.push_str(&format!(
                    "  {:<20} {:<8} {:<18} {}\n",
                    r.scenario, who, p.kind, p.detail
                ));
            }
        }
    }
    if !wrong.is_empty() {
        t.push_str("\nleft wrong:\n");
        t.push_str(&wrong);
    }
    t
}

pub fn run(a: CompareArgs) -> anyhow::Result<ExitCode> {
    if let Some(root) = &a.client {
        #[cfg(feature = "harness")]
        return Ok(super::harness::relay(hvnet_simlab::harness::client(
            root, &a.argv,
        )?));
        #[cfg(not(feature = "harness"))]
        return Err(super::harness::unavailable(&format!(
            "--client {}",
            root.display()
        )));
    }
    let mut scs = builtin::load_each(&a.scenarios).map_err(anyhow::Error::msg)?;
    if let Some(rate) = a.rate {
        for sc in &mut scs {
            sc.traffic.rate = rate;
        }
    }
    let mut rows = Vec::new();
    for sc in &scs {
        let seed = a.seed.or(sc.seed).unwrap_or(0);
        let row = compare(sc, seed, a.original)?;
        if a.json {
            println!("{}", serde_json::to_string(&row)?);
        } else if a.timeline {
            for s in [&row.original, &row.hvnet] {
                println!("== {} ({}, seed {seed})", row.scenario, s.agent);
                for l in &s.timeline {
                    println!("{l}");
                }
            }
        }
        rows.push(row);
    }
    if !a.json {
        print!("{}", table(&rows));
    }
    Ok(if rows.iter().all(|r| r.hvnet.passed) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
