//! `hvnet run`: the VF manager daemon.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, ValueEnum};

use hvnet_daemon::config::{self, Backend, BackendKind, Config};

/// `--backend`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackendArg {
    /// FreeBSD: devd's seqpacket socket, ifconfig/sysctl/dhclient.
    Freebsd,
    /// Linux: rtnetlink link notifications, rtnetlink and tc changes.
    Linux,
    /// The built-in simulator (a scenario in virtual time).
    Sim,
}

impl From<BackendArg> for BackendKind {
    fn from(b: BackendArg) -> BackendKind {
        match b {
            BackendArg::Freebsd => BackendKind::Freebsd,
            BackendArg::Linux => BackendKind::Linux,
            BackendArg::Sim => BackendKind::Sim,
        }
    }
}

#[derive(Args, Debug)]
#[command(after_help = "\
The daemon takes events from a backend (FreeBSD: devd's seqpacket socket; Linux: rtnetlink \
link notifications; sim: a simulated guest in virtual time), runs the VF manager (a reconciler: \
every event and every resync re-observes the system and applies the difference), optionally \
hosts devd rules, answers `hvnet status` on a root-only Unix socket and, only when configured, \
serves Prometheus metrics on loopback. Options on the command line override the configuration \
file (see docs/CONFIGURATION.md). SIGTERM/SIGINT stop it; SIGHUP re-reads rc.conf and the \
hosted devd rules.

Example (the built-in demo, 10x faster than real time):
  hvnet run --backend sim --scenario demo --speed 10 --socket /tmp/hvnet/hvnet.sock")]
pub struct RunArgs {
    /// Configuration file (TOML). Default: /usr/local/etc/hvnet.conf on FreeBSD,
    /// /etc/hvnet.conf elsewhere; a missing default file means all defaults.
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Only check the configuration, print the settings in effect and exit.
    #[arg(long)]
    pub check: bool,
    /// Event source and system to manage.
    #[arg(long, value_enum)]
    pub backend: Option<BackendArg>,
    /// With --backend sim: a built-in scenario name or a scenario file.
    #[arg(long, value_name = "NAME|FILE")]
    pub scenario: Option<String>,
    /// With --backend sim: the seed.
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// With --backend sim: virtual seconds per wall-clock second.
    #[arg(long, value_name = "X")]
    pub speed: Option<f64>,
    /// Control socket path (default /run/hvnet/hvnet.sock on Linux, /var/run/hvnet.sock on
    /// FreeBSD).
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// Serve metrics on PORT, :PORT (127.0.0.1) or IP:PORT.
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<String>,
}

/// The configuration with command-line overrides applied.
pub fn settings(a: &RunArgs) -> anyhow::Result<Config> {
    let backend = a.backend.map(BackendKind::from);
    let mut c = match &a.config {
        Some(p) => Config::load_for(p, true, backend)?,
        None => Config::load_for(std::path::Path::new(config::default_path()), false, backend)?,
    };
    let speed = a
        .speed
        .map(|s| crate::limits::SPEED.check("--speed", s))
        .transpose()
        .map_err(anyhow::Error::msg)?;
    if let Some(s) = &a.socket {
        c.control_socket = s.clone();
    }
    if let Some(m) = &a.metrics {
        c.metrics = Some(hvnet_metrics::parse_listen(m).map_err(|e| anyhow::anyhow!("--{e}"))?);
    }
    if a.scenario.is_some() || a.seed.is_some() || speed.is_some() {
        let Backend::Sim(sim) = &mut c.backend else {
            anyhow::bail!("--scenario, --seed and --speed need --backend sim");
        };
        if let Some(s) = &a.scenario {
            sim.scenario = s.clone();
        }
        if let Some(s) = a.seed {
            sim.seed = s;
        }
        if let Some(s) = speed {
            sim.speed = s;
        }
    }
    Ok(c)
}

/// Load now everything the daemon loads at start (the scenario, the hosted devd rules), so
/// that an error in any of them stops it before it creates a directory, a lock or a socket.
fn validate(c: &Config) -> anyhow::Result<()> {
    if let Backend::Sim(sim) = &c.backend {
        let sc = hvnet_sim::builtin::load(&sim.scenario).map_err(|e| anyhow::anyhow!("{e}"))?;
        let opts = hvnet_sim::RunOptions {
            seed: sim.seed,
            ..Default::default()
        };
        hvnet_sim::Sim::new(sc, opts, hvnet_sim::no_agent(), Vec::new())
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    if let Some(r) = &c.devd_rules {
        hvnet_daemon::hosted::check(r).context("devd_rules")?;
    }
    Ok(())
}

pub fn run(a: RunArgs) -> anyhow::Result<ExitCode> {
    let c = settings(&a)?;
    validate(&c)?;
    if a.check {
        println!(
            "{}: ok",
            c.file
                .as_ref()
                .map_or_else(|| "defaults".to_string(), |f| f.display().to_string())
        );
        println!("backend {}", c.backend.name());
        if let Backend::Sim(sim) = &c.backend {
            println!("scenario {}", sim.scenario);
        }
        println!("control_socket {}", c.control_socket.display());
        println!(
            "metrics {}",
            c.metrics.map_or_else(|| "off".into(), |m| m.to_string())
        );
        if let Some(r) = &c.devd_rules {
            println!("devd_rules {}", r.display());
            let shell = hvnet_daemon::hosted::choose_shell(c.devd_shell.as_deref())?;
            println!("devd_shell {} ({})", shell.path.display(), shell.reason);
            println!("devd_quoting {}", shell.quoting.describe());
        }
        return Ok(ExitCode::SUCCESS);
    }
    crate::logging::init(c.log_level);
    hvnet_daemon::run::run(c)
}
