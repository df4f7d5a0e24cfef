//! hvnet: keeps a VM's network up while its SR-IOV VF comes and goes.
//!
//! The binary is a thin shell: each subcommand lives in its own module under the library's
//! `cmd/` and calls into the library crates.

use clap::{Parser, Subcommand};

use hvnet::cmd;

#[derive(Parser)]
#[command(
    name = "hvnet",
    version,
    about = "Keep a VM's network up while its SR-IOV VF comes and goes"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// devd-compatible rule engine: check, match, bench, run.
    #[command(subcommand)]
    Devd(cmd::devd::DevdCommand),
    /// Run a scenario on the simulator (default: the demo).
    Simulate(cmd::simulate::SimulateArgs),
    /// Random scenarios with faults on the simulator, the VF manager in the guest.
    Chaos(cmd::chaos::ChaosArgs),
    /// The original scripts and hvnet side by side on every built-in scenario.
    Compare(cmd::compare::CompareArgs),
    /// The VF manager daemon: events, reconciler, control socket, metrics, hosted devd rules.
    Run(cmd::run::RunArgs),
    /// What the running daemon sees and does: pairs, paths, failovers, actions.
    Status(cmd::status::StatusArgs),
    /// Drop-in for hyperv_vfattach IFACE DELAY (devd IFATTACH action).
    Vfattach(cmd::vfattach::VfattachArgs),
    /// Drop-in for hyperv_vfup hnX (devd HYPERV_NIC_VF VF_UP action).
    Vfup(cmd::vfup::VfupArgs),
    /// Linux real-kernel lab: namespaces, steered hn0/vf0, live traffic (root).
    #[cfg(target_os = "linux")]
    Lab(cmd::lab::LabArgs),
    /// Write drop-ins that keep NetworkManager/networkd/udev consumers off VFs (Linux).
    #[cfg(target_os = "linux")]
    Install(cmd::install::InstallArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Devd(c) => cmd::devd::run(c),
        Command::Simulate(a) => cmd::simulate::run(a),
        Command::Chaos(a) => cmd::chaos::run(a),
        Command::Compare(a) => cmd::compare::run(a),
        Command::Run(a) => cmd::run::run(a),
        Command::Status(a) => cmd::status::run(a),
        Command::Vfattach(a) => cmd::vfattach::run(a),
        Command::Vfup(a) => cmd::vfup::run(a),
        #[cfg(target_os = "linux")]
        Command::Lab(a) => cmd::lab::run(a),
        #[cfg(target_os = "linux")]
        Command::Install(a) => cmd::install::run(a),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("hvnet: {err:#}");
            std::process::ExitCode::from(1)
        }
    }
}
