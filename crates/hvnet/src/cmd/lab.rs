//! `hvnet lab`: the Linux real-kernel lab (namespaces, bridge, steered hn0/vf0, live traffic).

use crate::limits;
use anyhow::{bail, Context};
use clap::Args;
use hvnet_linux::lab::{self, LabConfig, LabReport, Reactor};
use hvnet_linux::lab_report::{ratios, report_json, summary_json};
use nix::sys::signal::{signal, SigHandler, Signal};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

#[derive(Args)]
#[command(after_help = "\
Needs root (CAP_NET_ADMIN) and iproute2. Builds three network namespaces named
hvlab-{host,peer,vm}-PID (addresses from 198.18.0.0/15 only inside them) and always deletes
them, also on error, Ctrl-C or SIGTERM.

The reactor is hvnet's daemon as users run it: `hvnet run` (this program) with a generated
configuration (backend linux, mode steered, the given --vf-delay), a child process in the VM
namespace; after each event the lab asks its control socket for the status. The planned
switch reaches it as in a Hyper-V guest: netvsc's `VF slot N removed` line in the kernel log,
written to /dev/kmsg. `--reactor shell` (or --baseline) runs the shell baseline instead.

Phases: planned (announced switch, then the VF goes), surprise (the VF vanishes), return (a
VF comes back and is used after its delay), surprise_again, early_removal (a VF goes before
its delay ends); `reattach` (between planned and surprise) is reported apart. Per phase: lost
(packets of both streams that never arrived), gap_ms (longest arrival gap), switch_ms
(trigger -> hn0's redirect filter changed, timed by an independent netlink monitor; for a
returning VF the trigger is the end of its delay), back_ms (trigger -> first VM packet after
the outage, or after the redirect onto the VF, arrived at the peer), status_ok (the daemon's
status showed the expected path and VF state), lost_before_trigger (of lost, sent before
the trigger, e.g. while the kernel tore the VF down before its first notice). quiet_lost:
packets lost while no event happened. The last JSON line is {\"pps\", \"phases\": [...], \"tcp_survived\", ...}; with
--baseline also \"baseline\" and \"ratios\" (shell / hvnet). With --runs N: one line per run,
then the medians and worsts (\"lost\", \"lost_max\", ...) in the same shape, with \"runs\".
RUST_LOG=debug prints the monitor's timeline per event and the daemon's log.")]
pub struct LabArgs {
    /// Packets per second in each direction.
    #[arg(long, default_value_t = 10_000)]
    pps: u32,
    /// Seconds of quiet traffic, spread between the events (the VF delays come on top).
    #[arg(long, default_value_t = 7)]
    duration: u64,
    /// The daemon's `vf_delay` in seconds (hvnet never uses a VF sooner than 2 s).
    #[arg(long, default_value_t = 2)]
    vf_delay: u64,
    /// Print the report as JSON (the last line is the summary object).
    #[arg(long)]
    json: bool,
    /// What reacts to the VF in the VM: `hvnet` (the daemon, `hvnet run`) or `shell` (the
    /// baseline: `ip monitor link | while read ...` running `tc`).
    #[arg(long, value_enum, default_value_t = ReactorArg::Hvnet)]
    reactor: ReactorArg,
    /// After the run, run the same lab again with the shell baseline and report it beside
    /// (JSON: a "baseline" object and loss/switch ratios).
    #[arg(long)]
    baseline: bool,
    /// Run the lab this many times (each with its baseline, if asked), then report the
    /// median and the worst of every figure (JSON: the last line, with "runs").
    #[arg(long, default_value_t = 1)]
    runs: u32,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ReactorArg {
    Hvnet,
    Shell,
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::Relaxed);
}

pub fn run(args: LabArgs) -> anyhow::Result<ExitCode> {
    crate::logging::init("warn");
    // Checked before anything is built: pps × duration records are kept in memory, and a
    // huge duration overflowed the deadline arithmetic.
    if !limits::LAB_SECONDS.contains(args.duration as f64) {
        bail!(
            "--duration: expected {}, found {}",
            limits::LAB_SECONDS.describe(),
            args.duration
        );
    }
    let packets = u64::from(args.pps) * args.duration;
    if args.pps == 0 || packets > limits::LAB_MAX_PACKETS {
        bail!(
            "--pps {} --duration {}: expected 1 to {} packets per direction in all, found {packets}",
            args.pps,
            args.duration,
            limits::LAB_MAX_PACKETS
        );
    }
    if args.runs == 0 {
        bail!("--runs must be positive");
    }
    // Ctrl-C / SIGTERM: the lab stops at the next step and tears its namespaces down.
    let on = SigHandler::Handler(on_signal);
    // SAFETY: installing a handler is unsafe because it runs at any point of any thread;
    // on_signal only stores to an atomic, which is async-signal-safe.
    unsafe {
        let _ = signal(Signal::SIGINT, on);
        let _ = signal(Signal::SIGTERM, on);
    }
    let reactor = match args.reactor {
        ReactorArg::Hvnet => Reactor::Daemon {
            program: std::env::current_exe().context("finding this program for the daemon")?,
        },
        ReactorArg::Shell => Reactor::Shell,
    };
    let cfg = LabConfig {
        pps: args.pps,
        duration: Duration::from_secs(args.duration),
        tag: std::process::id().to_string(),
        reactor,
        vf_delay: Duration::from_secs(args.vf_delay),
    };
    let (mut reports, mut baselines) = (Vec::new(), Vec::new());
    for _ in 0..args.runs.max(1) {
        let report = lab::run(&cfg, &INTERRUPTED).context("hvnet lab")?;
        let baseline = if args.baseline {
            let mut b = cfg.clone();
            b.reactor = Reactor::Shell;
            Some(lab::run(&b, &INTERRUPTED).context("hvnet lab (shell baseline)")?)
        } else {
            None
        };
        if args.json {
            let mut out = report_json(&report);
            if let Some(b) = &baseline {
                out["baseline"] = report_json(b);
                out["ratios"] = ratios(&report, b);
            }
            println!("{out}");
        } else {
            print_table(&report);
            if let Some(b) = &baseline {
                println!();
                print_table(b);
            }
            println!();
        }
        reports.push(report);
        baselines.extend(baseline);
    }
    if reports.len() > 1 {
        let mut out = summary_json(&reports);
        if !baselines.is_empty() {
            out["baseline"] = summary_json(&baselines);
        }
        if args.json {
            println!("{out}");
        } else {
            print_summary(&out);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_summary(s: &serde_json::Value) {
    for r in std::iter::once(s).chain(s.get("baseline")) {
        println!(
            "hvnet lab ({} reactor), {} runs: median / worst",
            r["reactor"].as_str().unwrap_or("?"),
            r["runs"]
        );
        println!(
            "{:<15} {:>13} {:>17} {:>17}  status",
            "phase", "lost", "switch_ms", "back_ms"
        );
        for p in r["phases"].as_array().into_iter().flatten() {
            let pair = |k: &str| format!("{} / {}", p[k], p[format!("{k}_max")]);
            println!(
                "{:<15} {:>13} {:>17} {:>17}  {}",
                p["name"].as_str().unwrap_or("?"),
                pair("lost"),
                pair("switch_ms"),
                pair("back_ms"),
                p["status_ok"]
            );
        }
        println!(
            "lost while no VF event happened: {} / {}; tcp survived every run: {}",
            r["quiet_lost"], r["quiet_lost_max"], r["tcp_survived"]
        );
    }
}

fn print_table(r: &LabReport) {
    let ms = |m: Option<f64>| m.map(|m| format!("{m:.3}")).unwrap_or_else(|| "-".into());
    println!(
        "hvnet lab ({} reactor): {} pps each way, {} packets sent, {} received",
        r.reactor, r.pps, r.sent, r.received
    );
    println!(
        "{:<15} {:>6} {:>10} {:>10} {:>10}  status",
        "phase", "lost", "gap_ms", "switch_ms", "back_ms"
    );
    for p in r.phases.iter().chain(std::iter::once(&r.reattach)) {
        let status = match (p.status_ok, &p.status) {
            (Some(true), _) => "ok".to_string(),
            (Some(false), s) => format!("WRONG: {}", s.as_deref().unwrap_or("-")),
            (None, _) => "-".to_string(),
        };
        println!(
            "{:<15} {:>6} {:>10.3} {:>10} {:>10}  {status}",
            p.name,
            p.lost,
            p.gap_ms,
            ms(p.switch_ms),
            ms(p.back_ms)
        );
    }
    println!("lost while no VF event happened: {}", r.quiet_lost);
    match &r.tcp_error {
        None => println!("tcp connection survived ({} echoes)", r.tcp_rounds),
        Some(e) => println!("tcp connection broke: {e}"),
    }
}
