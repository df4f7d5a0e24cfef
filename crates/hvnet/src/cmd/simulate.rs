//! `hvnet simulate [SCENARIO] [--seed N] [--rate PPS] [--json] [--plot FILE.svg] [--agent A]`
//! and `hvnet simulate --list [--json]`: run a scenario on the simulator
//! (hvnet-sim) and print its timeline and summary.
//!
//! `--json`: one JSON object per timeline entry, then the summary as the
//! last line. `wall_ms` is the only field that differs between identical
//! runs; `HVNET_SIM_WALL=0` sets it to 0 for byte-for-byte comparisons.
//! Exit status: 0 when the run passed (expectations held, no invariant
//! violated), 1 otherwise or on bad input (`FILE:LINE: ...` on stderr).

use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use hvnet_sim::{builtin, AgentFactory, RunOptions, Scenario};

#[derive(Args, Debug)]
pub struct SimulateArgs {
    /// A built-in scenario name or a scenario file (default: demo).
    pub scenario: Option<String>,
    /// Seed of the run (default: the scenario's `seed`, else 0).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Timeline as JSON lines; the last line is the summary.
    #[arg(long)]
    pub json: bool,
    /// The peer's packets a second each way, instead of the scenario's `traffic rate`.
    #[arg(long, value_name = "PPS")]
    pub rate: Option<u64>,
    /// Draw traffic per path over time to this SVG file.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<std::path::PathBuf>,
    /// The guest agent: hvnet (the VF manager; the default), none (kernel
    /// only; the default with --serve, where the served scripts act),
    /// scripts (devd's engine over hyperv.conf + the original
    /// hyperv_vfattach/hyperv_vfup, running the guest's commands), freebsd
    /// (the VF manager over the FreeBSD backend: real
    /// ifconfig/sysctl/netstat/... processes answered by the simulator; not
    /// with --serve).
    #[arg(long, value_name = "NAME")]
    pub agent: Option<String>,
    /// List the built-in scenarios.
    #[arg(long)]
    pub list: bool,
    /// Server mode: keep the simulated guest running and serve FreeBSD
    /// commands (DIR/bin: sysctl, ifconfig, dhclient, daemon, pkill, kill,
    /// sleep) to shell scripts; devctl lines go to DIR/devctl.
    #[arg(long, value_name = "DIR")]
    pub serve: Option<std::path::PathBuf>,
    /// With --serve: move virtual time with the wall clock (X virtual seconds a second) and
    /// serve what a real `hvnet run --backend freebsd` needs: DIR/bin wrappers for every
    /// command the FreeBSD backend runs, devd's socket DIR/devd.seqpacket.pipe, pid files
    /// and /dev nodes under DIR/fs, the scenario's DIR/rc.conf.
    #[arg(long, value_name = "X", requires = "serve")]
    pub speed: Option<f64>,
    /// Client side of the fake commands (used by DIR/bin wrappers).
    #[arg(long, value_name = "DIR", hide = true)]
    pub client: Option<std::path::PathBuf>,
    /// The command a wrapper runs (after `--`).
    #[arg(last = true, hide = true)]
    pub argv: Vec<String>,
}

/// Agents this binary can put in the guest.
pub const AGENTS: &[&str] = &["none", "scripts", "hvnet", FREEBSD];

/// The VF manager over the FreeBSD backend, its commands run as processes.
const FREEBSD: &str = "freebsd";

/// The factory for agent `name`.
pub fn agent_factory(name: &str) -> anyhow::Result<AgentFactory> {
    match name {
        "none" => Ok(hvnet_sim::no_agent()),
        "scripts" => Ok(hvnet_sim::original_scripts()),
        "hvnet" => Ok(hvnet_sim::manager_agent()),
        FREEBSD => anyhow::bail!(
            "agent {FREEBSD:?} drives the simulator itself (hvnet simulate NAME --agent freebsd); it has no in-simulator factory"
        ),
        other => anyhow::bail!(
            "unknown agent {other:?}; expected one of: {}",
            AGENTS.join(", ")
        ),
    }
}

pub fn run(a: SimulateArgs) -> anyhow::Result<ExitCode> {
    if a.list {
        return list(a.json);
    }
    if let Some(dir) = &a.client {
        #[cfg(feature = "harness")]
        return Ok(super::harness::relay(hvnet_simlab::script_server::client(
            dir, &a.argv,
        )?));
        #[cfg(not(feature = "harness"))]
        return Err(super::harness::unavailable(&format!(
            "--client {}",
            dir.display()
        )));
    }
    let name = a.scenario.as_deref().unwrap_or("demo");
    let mut sc = match builtin::load(name) {
        Ok(sc) => sc,
        Err(e) => {
            eprintln!("{e}");
            return Ok(ExitCode::from(1));
        }
    };
    if let Some(rate) = a.rate {
        sc.traffic.rate = rate;
    }
    let agent = a
        .agent
        .clone()
        .unwrap_or_else(|| if a.serve.is_some() { "none" } else { "hvnet" }.into());
    let seed = a.seed.or(sc.seed).unwrap_or(0);
    let freebsd = agent == FREEBSD;
    if let Some(dir) = &a.serve {
        anyhow::ensure!(!freebsd, "--agent freebsd cannot be combined with --serve");
        if let Some(speed) = a.speed {
            let speed = crate::limits::SPEED
                .check("--speed", speed)
                .map_err(anyhow::Error::msg)?;
            return serve_realtime(dir, sc, seed, speed);
        }
        return serve(dir, sc, seed, agent_factory(&agent)?);
    }
    let opts = RunOptions {
        seed,
        bucket: a
            .plot
            .as_ref()
            .map(|_| hvnet_sim::plot::bucket_for(sc.duration)),
        ..Default::default()
    };
    let title = format!("{} (seed {seed}, agent {agent})", sc.name);
    let result = if freebsd {
        freebsd_agent(sc, opts)?
    } else {
        match hvnet_sim::run(sc, opts, agent_factory(&agent)?) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("{e}");
                return Ok(ExitCode::from(1));
            }
        }
    };
    let mut r = result;
    if std::env::var("HVNET_SIM_WALL").is_ok_and(|v| v == "0") {
        r.summary.wall_ms = 0.0;
    }
    if let Some(p) = &a.plot {
        let svg = hvnet_sim::plot::svg(&r, &title)?;
        std::fs::write(p, svg).with_context(|| format!("writing {}", p.display()))?;
    }
    let out = hvnet_sim::printout::run(&r, a.json)?;
    print!("{out}");
    Ok(if r.summary.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn list(json: bool) -> anyhow::Result<ExitCode> {
    if json {
        let v: Vec<serde_json::Value> = builtin::names()
            .into_iter()
            .map(|n| serde_json::json!({"name": n, "description": builtin::description(n)}))
            .collect();
        println!("{}", serde_json::to_string(&v)?);
    } else {
        for n in builtin::names() {
            println!("{n:<20} {}", builtin::description(n));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `--agent freebsd`: the VF manager over the FreeBSD backend, its commands processes.
#[cfg(feature = "harness")]
fn freebsd_agent(sc: Scenario, opts: RunOptions) -> anyhow::Result<hvnet_sim::RunResult> {
    let client = super::harness::client_command("simulate")?;
    Ok(hvnet_simlab::freebsd_guest::run(
        sc,
        opts,
        &client,
        hvnet_sim::manager_agent(),
    )?)
}

#[cfg(not(feature = "harness"))]
fn freebsd_agent(_sc: Scenario, _opts: RunOptions) -> anyhow::Result<hvnet_sim::RunResult> {
    Err(super::harness::unavailable("--agent freebsd"))
}

/// `--serve DIR --speed X`: the guest for a real `hvnet run --backend freebsd`.
#[cfg(feature = "harness")]
fn serve_realtime(
    dir: &std::path::Path,
    sc: Scenario,
    seed: u64,
    speed: f64,
) -> anyhow::Result<ExitCode> {
    let client = super::harness::client_command("simulate")?;
    let opts = RunOptions {
        seed,
        ..Default::default()
    };
    let clock = |wall: std::time::Duration| crate::limits::scale(wall, speed);
    let r = hvnet_simlab::freebsd_guest::serve_realtime(dir, sc, opts, clock, &client)?;
    println!("{}", serde_json::to_string(&r.summary)?);
    Ok(if r.summary.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `--serve DIR`: the guest for shell scripts, time moved by their `sleep`.
#[cfg(feature = "harness")]
fn serve(
    dir: &std::path::Path,
    sc: Scenario,
    seed: u64,
    agent: AgentFactory,
) -> anyhow::Result<ExitCode> {
    use hvnet_simlab::script_server::{serve, ServeOptions};
    let client = super::harness::client_command("simulate")?;
    let o = ServeOptions {
        seed,
        zero_wall: std::env::var("HVNET_SIM_WALL").is_ok_and(|v| v == "0"),
    };
    let r = serve(dir, sc, &o, agent, &client, |sock| {
        eprintln!(
            "hvnet simulate: serving on {} (PATH={}/bin:$PATH)",
            sock.display(),
            dir.display()
        );
    })?;
    println!("{}", serde_json::to_string(&r.summary)?);
    Ok(ExitCode::SUCCESS)
}

#[cfg(not(feature = "harness"))]
fn serve_realtime(
    _dir: &std::path::Path,
    _sc: Scenario,
    _seed: u64,
    _speed: f64,
) -> anyhow::Result<ExitCode> {
    Err(super::harness::unavailable("--serve"))
}

#[cfg(not(feature = "harness"))]
fn serve(
    _dir: &std::path::Path,
    _sc: Scenario,
    _seed: u64,
    _agent: AgentFactory,
) -> anyhow::Result<ExitCode> {
    Err(super::harness::unavailable("--serve"))
}
