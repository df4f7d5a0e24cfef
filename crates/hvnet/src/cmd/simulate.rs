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
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use hvnet_sim::{builtin, AgentFactory, RunOptions};

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
pub const AGENTS: &[&str] = &["none", "scripts", "hvnet", "freebsd"];

/// The factory for agent `name`.
pub fn agent_factory(name: &str) -> anyhow::Result<AgentFactory> {
    match name {
        "none" => Ok(hvnet_sim::no_agent()),
        "scripts" => Ok(hvnet_sim::original_scripts()),
        "hvnet" => Ok(hvnet_sim::manager_agent()),
        crate::daemon::freebsd_sim::AGENT => anyhow::bail!(
            "agent {:?} drives the simulator itself (hvnet simulate NAME --agent freebsd); it has no in-simulator factory",
            crate::daemon::freebsd_sim::AGENT
        ),
        other => anyhow::bail!(
            "unknown agent {other:?}; expected one of: {}",
            AGENTS.join(", ")
        ),
    }
}

/// Load a built-in scenario or a scenario file (`FILE:LINE: message` for a bad file).
pub use hvnet_sim::builtin::load as load_scenario;

fn bucket_for(d: Duration) -> Duration {
    let ms = (d.as_millis() / 400).max(10);
    Duration::from_millis(u64::try_from(ms).unwrap_or(u64::MAX))
}

pub fn run(a: SimulateArgs) -> anyhow::Result<ExitCode> {
    if a.list {
        return list(a.json);
    }
    if let Some(dir) = &a.client {
        return serve::client(dir, &a.argv);
    }
    let name = a.scenario.as_deref().unwrap_or("demo");
    let mut sc = match load_scenario(name) {
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
    let freebsd = agent == crate::daemon::freebsd_sim::AGENT;
    if let Some(dir) = &a.serve {
        anyhow::ensure!(!freebsd, "--agent freebsd cannot be combined with --serve");
        if let Some(speed) = a.speed {
            let exe = std::env::current_exe().context("finding hvnet's own path")?;
            let opts = RunOptions {
                seed,
                ..Default::default()
            };
            let r = crate::daemon::freebsd_sim::serve_realtime(dir, sc, opts, speed, &exe)?;
            println!("{}", serde_json::to_string(&r.summary)?);
            return Ok(if r.summary.passed {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            });
        }
        return serve::serve(dir, sc, seed, agent_factory(&agent)?);
    }
    let opts = RunOptions {
        seed,
        bucket: a.plot.as_ref().map(|_| bucket_for(sc.duration)),
        ..Default::default()
    };
    let title = format!("{} (seed {seed}, agent {agent})", sc.name);
    let result = if freebsd {
        let exe = std::env::current_exe().context("finding hvnet's own path")?;
        crate::daemon::freebsd_sim::run(sc, opts, &exe)?
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
    let mut out = String::new();
    if a.json {
        for e in &r.timeline {
            let line = serde_json::json!({
                "t_ms": (e.at.as_secs_f64() * 1e6).round() / 1e3,
                "source": e.source,
                "text": e.text,
            });
            out.push_str(&line.to_string());
            out.push('\n');
        }
        out.push_str(&serde_json::to_string(&r.summary)?);
        out.push('\n');
    } else {
        for e in &r.timeline {
            out.push_str(&e.to_string());
            out.push('\n');
        }
        out.push_str(&human_summary(&r.summary));
    }
    print!("{out}");
    Ok(if r.summary.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn lat(l: &Option<hvnet_sim::Latency>) -> String {
    match l {
        Some(l) => format!("median {} ms, max {} ms", l.median, l.max),
        None => "none".into(),
    }
}

fn human_summary(s: &hvnet_sim::Summary) -> String {
    let p = &s.packets;
    let reasons: Vec<String> = p
        .lost_by_reason
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    let mut t = format!(
        "\nscenario {} (seed {}, agent {}, {}): {}\n  virtual {} s in {} ms wall\n  packets: sent {}, delivered {} (hn {}, vf {}), lost {}{}\n  connections broken {}, failovers {}\n  VF up latency: {}\n  back to hn: {}\n  invariant violations {}, expectations passed {} failed {}\n",
        s.scenario,
        s.seed,
        s.agent,
        s.mode,
        if s.passed { "PASSED" } else { "FAILED" },
        s.virtual_seconds,
        s.wall_ms,
        p.sent,
        p.delivered,
        p.by_path.hn,
        p.by_path.vf,
        p.lost,
        if reasons.is_empty() {
            String::new()
        } else {
            format!(" ({})", reasons.join(", "))
        },
        s.connections_broken,
        s.failovers,
        lat(&s.vf_up_latency_ms),
        lat(&s.back_to_hn_ms),
        s.invariant_violations,
        s.expectations.passed,
        s.expectations.failed,
    );
    for f in &s.failed_expectations {
        t.push_str(&format!("  failed: {f}\n"));
    }
    for v in &s.violations {
        t.push_str(&format!("  violation: {v}\n"));
    }
    t
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

/// Server mode: the simulated guest behind a Unix socket, and wrappers
/// that make FreeBSD commands talk to it. Virtual time advances only
/// through `sleep`, so script runs stay deterministic.
mod serve {
    use std::io::{BufRead, BufReader, Write};
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::net::{UnixListener, UnixStream};
    use std::os::unix::process::CommandExt;
    use std::path::Path;
    use std::process::ExitCode;
    use std::time::{Duration, Instant};

    use anyhow::{bail, Context};
    use hvnet_sim::runner::Sim;
    use hvnet_sim::{AgentFactory, RunOptions, Scenario};
    use serde::{Deserialize, Serialize};

    /// Commands the wrappers provide.
    pub const COMMANDS: &[&str] = &[
        "sysctl", "ifconfig", "dhclient", "daemon", "pkill", "kill", "sleep",
    ];

    #[derive(Serialize, Deserialize)]
    struct Request {
        argv: Vec<String>,
    }

    #[derive(Serialize, Deserialize)]
    struct Response {
        status: i32,
        stdout: String,
        stderr: String,
    }

    fn write_wrappers(dir: &Path) -> anyhow::Result<()> {
        let exe = std::env::current_exe().context("finding hvnet's own path")?;
        let (exe, d) = (exe.to_string_lossy(), dir.to_string_lossy());
        if exe.contains('\'') || d.contains('\'') {
            bail!("{d}: paths with a single quote are not supported");
        }
        let bin = dir.join("bin");
        std::fs::create_dir_all(&bin).with_context(|| format!("creating {}", bin.display()))?;
        for c in COMMANDS {
            let p = bin.join(c);
            let text = format!("#!/bin/sh\nexec '{exe}' simulate --client '{d}' -- {c} \"$@\"\n");
            std::fs::write(&p, text).with_context(|| format!("writing {}", p.display()))?;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755))?;
        }
        Ok(())
    }

    pub fn serve(
        dir: &Path,
        sc: Scenario,
        seed: u64,
        factory: AgentFactory,
    ) -> anyhow::Result<ExitCode> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        write_wrappers(dir)?;
        let sock = dir.join("sim.sock");
        let _ = std::fs::remove_file(&sock);
        let listener =
            UnixListener::bind(&sock).with_context(|| format!("binding {}", sock.display()))?;
        let mut events = std::fs::File::create(dir.join("devctl"))?;
        let wall = Instant::now();
        let opts = RunOptions {
            seed,
            ..Default::default()
        };
        let mut sim = Sim::new(sc, opts, factory, Vec::new()).map_err(anyhow::Error::msg)?;
        let mut written = 0;
        sim.advance_to(Duration::ZERO);
        written = flush_events(&sim, &mut events, written)?;
        eprintln!(
            "hvnet simulate: serving on {} (PATH={}/bin:$PATH)",
            sock.display(),
            dir.display()
        );
        for stream in listener.incoming() {
            let mut stream = match stream {
                Ok(s) => s,
                Err(_) => continue,
            };
            let mut line = String::new();
            if BufReader::new(&stream).read_line(&mut line).is_err() {
                continue;
            }
            let Ok(req) = serde_json::from_str::<Request>(&line) else {
                continue;
            };
            let (resp, stop) = handle(&mut sim, &req.argv);
            written = flush_events(&sim, &mut events, written)?;
            let _ = writeln!(stream, "{}", serde_json::to_string(&resp)?);
            if stop || sim.now() >= sim.end() {
                break;
            }
        }
        let _ = std::fs::remove_file(&sock);
        let mut r = sim.finish_at_end(wall.elapsed().as_secs_f64() * 1000.0);
        if std::env::var("HVNET_SIM_WALL").is_ok_and(|v| v == "0") {
            r.summary.wall_ms = 0.0;
        }
        let json = serde_json::to_string(&r.summary)?;
        std::fs::write(dir.join("summary.json"), format!("{json}\n"))?;
        println!("{json}");
        Ok(ExitCode::SUCCESS)
    }

    fn flush_events(sim: &Sim, f: &mut std::fs::File, from: usize) -> anyhow::Result<usize> {
        let log = sim.devctl_log();
        for (_, l) in &log[from.min(log.len())..] {
            writeln!(f, "{l}")?;
        }
        f.flush()?;
        Ok(log.len())
    }

    fn handle(sim: &mut Sim, argv: &[String]) -> (Response, bool) {
        let ok = |stdout: String| Response {
            status: 0,
            stdout,
            stderr: String::new(),
        };
        match argv.first().map(String::as_str) {
            Some("sleep") => {
                let secs: f64 = argv.get(1).and_then(|s| s.parse().ok()).unwrap_or(-1.0);
                if !(0.0..1e9).contains(&secs) {
                    return (
                        Response {
                            status: 1,
                            stdout: String::new(),
                            stderr: "usage: sleep seconds\n".into(),
                        },
                        false,
                    );
                }
                let t = sim.now() + Duration::from_secs_f64(secs);
                sim.advance_to(t.min(sim.end()));
                (ok(String::new()), false)
            }
            Some("stop") => (ok(String::new()), true),
            Some("now") => (ok(format!("{}\n", sim.now().as_secs_f64())), false),
            _ => {
                let out = sim.command(argv);
                (
                    Response {
                        status: out.status,
                        stdout: out.stdout,
                        stderr: out.stderr,
                    },
                    false,
                )
            }
        }
    }

    /// A wrapper's side: `daemon` runs locally (detached); everything else
    /// goes to the server.
    pub fn client(dir: &Path, argv: &[String]) -> anyhow::Result<ExitCode> {
        if argv.first().map(String::as_str) == Some("daemon") {
            let Some((prog, args)) =
                hvnet_freebsd::cmd::daemon_command(argv).and_then(|c| c.split_first())
            else {
                eprintln!("usage: daemon [-f] command arguments ...");
                return Ok(ExitCode::from(1));
            };
            std::process::Command::new(prog)
                .args(args)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .process_group(0)
                .spawn()
                .with_context(|| format!("daemon: {prog}"))?;
            return Ok(ExitCode::SUCCESS);
        }
        let sock = dir.join("sim.sock");
        let mut s = UnixStream::connect(&sock)
            .with_context(|| format!("connecting to the simulator at {}", sock.display()))?;
        hvnet_sys::peer::check_server(&s, &sock)?;
        writeln!(
            s,
            "{}",
            serde_json::to_string(&Request {
                argv: argv.to_vec()
            })?
        )?;
        let mut line = String::new();
        BufReader::new(&s).read_line(&mut line)?;
        let r: Response = serde_json::from_str(&line).context("simulator reply")?;
        print!("{}", r.stdout);
        eprint!("{}", r.stderr);
        Ok(ExitCode::from(
            u8::try_from(r.status.clamp(0, 255)).unwrap_or(1),
        ))
    }
}
