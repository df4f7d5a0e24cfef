//! `hvnet lab`: the Linux real-kernel lab (namespaces, bridge, steered hn0/vf0, live traffic).

use anyhow::{bail, Context};
use clap::Args;
use hvnet_linux::lab::{self, LabConfig, Phase};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

#[derive(Args)]
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
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::Relaxed);
}

fn phase_json(p: &Phase) -> serde_json::Value {
    serde_json::json!({
        "name": p.name,
        "lost": p.lost,
        "gap_ms": (p.gap_ms * 1000.0).round() / 1000.0,
        "switch_ms": p.switch_ms.map(|m| (m * 1000.0).round() / 1000.0),
        "hn_egress_redirects": p.hn_egress_redirects,
        "lost_to_vm": p.lost_to_vm,
        "lost_to_peer": p.lost_to_peer,
    })
}

/// Logs to stderr for journald: no timestamps or colours when not on a terminal
/// (journald adds its own), level from RUST_LOG (default warn).
fn init_logging() {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let tty = std::io::stderr().is_terminal();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(tty)
        .with_target(false);
    let _ = if tty {
        builder.try_init()
    } else {
        builder.without_time().try_init()
    };
}

pub fn run(args: LabArgs) -> anyhow::Result<ExitCode> {
    init_logging();
    if args.pps == 0 || args.duration == 0 {
        bail!("--pps and --duration must be positive");
    }
    // Ctrl-C / SIGTERM: the lab stops at the next step and tears its namespaces down.
    // SAFETY: the handler only stores to an atomic.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
    let cfg = LabConfig {
        pps: args.pps,
        duration: Duration::from_secs(args.duration),
        tag: std::process::id().to_string(),
    };
    let report = lab::run(&cfg, &INTERRUPTED).context("hvnet lab")?;
    if args.json {
        let mut reattach = phase_json(&report.reattach);
        reattach["name"] = "reattach".into();
        println!(
            "{}",
            serde_json::json!({
                "pps": report.pps,
                "phases": report.phases.iter().map(phase_json).collect::<Vec<_>>(),
                "tcp_survived": report.tcp_survived,
                "reattach": reattach,
                "sent": report.sent,
                "received": report.received,
            })
        );
    } else {
        println!(
            "hvnet lab: {} pps each way, {} packets sent, {} received",
            report.pps, report.sent, report.received
        );
        println!(
            "{:<10} {:>6} {:>10} {:>10}",
            "phase", "lost", "gap_ms", "switch_ms"
        );
        for p in report
            .phases
            .iter()
            .chain(std::iter::once(&report.reattach))
        {
            let sw = p
                .switch_ms
                .map(|m| format!("{m:.3}"))
                .unwrap_or_else(|| "-".into());
            println!("{:<10} {:>6} {:>10.3} {:>10}", p.name, p.lost, p.gap_ms, sw);
        }
        println!("tcp connection survived: {}", report.tcp_survived);
    }
    Ok(ExitCode::SUCCESS)
}
