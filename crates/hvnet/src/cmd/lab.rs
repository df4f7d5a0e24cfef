//! `hvnet lab`: the Linux real-kernel lab (namespaces, bridge, steered hn0/vf0, live traffic).

use crate::limits;
use anyhow::{bail, Context};
use clap::Args;
use hvnet_linux::lab::{self, LabConfig, LabReport, Phase, Reactor};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

#[derive(Args)]
#[command(after_help = "\
Needs root (CAP_NET_ADMIN) and iproute2. Builds three network namespaces named
hvlab-{host,peer,vm}-PID (addresses from 198.18.0.0/15 only inside them) and always deletes
them, also on error, Ctrl-C or SIGTERM.

Phases: planned (announced switch, then the VF goes), surprise (the VF vanishes), return
(a VF comes back). Per phase: lost (packets of both streams that never arrived), gap_ms
(longest arrival gap), switch_ms (kernel's notice -> hn0's redirect filter changed, timed
by an independent netlink monitor), back_ms (notice -> first VM packet after the outage,
or after the redirect onto the VF, arrived at the peer), reactor_ms (hvnet's own: notice ->
data path switched; moving off the VF that is its BPF gate closing, before the filter
removal, which waits for the kernel's RTNL lock). The last JSON line is
{\"pps\", \"phases\": [...], \"tcp_survived\", ...}; with --baseline also \"baseline\" and
\"ratios\" (shell / hvnet). RUST_LOG=debug prints the monitor's timeline per event.")]
pub struct LabArgs {
    /// Packets per second in each direction.
    #[arg(long, default_value_t = 10_000)]
    pps: u32,
    /// Seconds of traffic (the three events are spread over it).
    #[arg(long, default_value_t = 5)]
    duration: u64,
    /// Print the report as JSON (the last line is the summary object).
    #[arg(long)]
    json: bool,
    /// What reacts to the VF in the VM: `hvnet` (the steerer, over rtnetlink) or `shell`
    /// (the baseline: `ip monitor link | while read ...` running `tc`).
    #[arg(long, value_enum, default_value_t = ReactorArg::Hvnet)]
    reactor: ReactorArg,
    /// After the run, run the same lab again with the shell baseline and report it beside
    /// (JSON: a "baseline" object and loss/switch ratios).
    #[arg(long)]
    baseline: bool,
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

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

fn phase_json(p: &Phase) -> serde_json::Value {
    serde_json::json!({
        "name": p.name,
        "lost": p.lost,
        "gap_ms": round3(p.gap_ms),
        "switch_ms": p.switch_ms.map(round3),
        "back_ms": p.back_ms.map(round3),
        "reactor_ms": p.reactor_ms.map(round3),
        "hn_egress_redirects": p.hn_egress_redirects,
        "lost_to_vm": p.lost_to_vm,
        "lost_to_peer": p.lost_to_peer,
    })
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
    // Ctrl-C / SIGTERM: the lab stops at the next step and tears its namespaces down.
    // SAFETY: the handler only stores to an atomic.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
    let reactor = match args.reactor {
        ReactorArg::Hvnet => Reactor::Hvnet,
        ReactorArg::Shell => Reactor::Shell,
    };
    let mut cfg = LabConfig {
        pps: args.pps,
        duration: Duration::from_secs(args.duration),
        tag: std::process::id().to_string(),
        reactor,
    };
    let report = lab::run(&cfg, &INTERRUPTED).context("hvnet lab")?;
    let baseline = if args.baseline {
        cfg.reactor = Reactor::Shell;
        Some(lab::run(&cfg, &INTERRUPTED).context("hvnet lab (shell baseline)")?)
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
    }
    Ok(ExitCode::SUCCESS)
}

fn report_json(r: &LabReport) -> serde_json::Value {
    let mut reattach = phase_json(&r.reattach);
    reattach["name"] = "reattach".into();
    serde_json::json!({
        "pps": r.pps,
        "reactor": r.reactor.name(),
        "phases": r.phases.iter().map(phase_json).collect::<Vec<_>>(),
        "tcp_survived": r.tcp_survived,
        "tcp_error": r.tcp_error,
        "tcp_rounds": r.tcp_rounds,
        "reattach": reattach,
        "sent": r.sent,
        "received": r.received,
        "vf_redirected_pkts": r.vf_redirected_pkts,
        "monitor_realtime": r.monitor_realtime,
    })
}

/// Per phase, baseline ÷ this run, for loss and switch time (null when undefined).
fn ratios(r: &LabReport, b: &LabReport) -> serde_json::Value {
    let div = |x: f64, y: f64| (y > 0.0).then(|| round3(x / y));
    r.phases
        .iter()
        .zip(&b.phases)
        .map(|(p, q)| {
            serde_json::json!({
                "name": p.name,
                "lost": div(q.lost as f64, p.lost as f64),
                "switch_ms": p.switch_ms.zip(q.switch_ms).and_then(|(a, b)| div(b, a)),
                "back_ms": p.back_ms.zip(q.back_ms).and_then(|(a, b)| div(b, a)),
            })
        })
        .collect()
}

fn print_table(r: &LabReport) {
    let ms = |m: Option<f64>| m.map(|m| format!("{m:.3}")).unwrap_or_else(|| "-".into());
    println!(
        "hvnet lab ({} reactor): {} pps each way, {} packets sent, {} received",
        r.reactor.name(),
        r.pps,
        r.sent,
        r.received
    );
    println!(
        "{:<10} {:>6} {:>10} {:>10} {:>10}",
        "phase", "lost", "gap_ms", "switch_ms", "back_ms"
    );
    for p in r.phases.iter().chain(std::iter::once(&r.reattach)) {
        println!(
            "{:<10} {:>6} {:>10.3} {:>10} {:>10}",
            p.name,
            p.lost,
            p.gap_ms,
            ms(p.switch_ms),
            ms(p.back_ms)
        );
    }
    match &r.tcp_error {
        None => println!("tcp connection survived ({} echoes)", r.tcp_rounds),
        Some(e) => println!("tcp connection broke: {e}"),
    }
}
