//! `hvnet install`: write the drop-ins that keep NetworkManager, systemd-networkd and udev
//! consumers off SR-IOV VFs (a udev rule, a networkd .network file, an NM conf).

use anyhow::Context;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args)]
pub struct InstallArgs {
    /// Write under this root instead of `/` (for images and packaging).
    #[arg(long, default_value = "/")]
    root: PathBuf,
    /// Also treat interfaces matching this name pattern (`*` wildcard) as VFs; repeatable.
    #[arg(long = "vf-pattern")]
    vf_patterns: Vec<String>,
}

pub fn run(args: InstallArgs) -> anyhow::Result<ExitCode> {
    for p in &args.vf_patterns {
        if p.is_empty() || p.contains(['"', '\n', ';', '\\']) {
            anyhow::bail!(
                "--vf-pattern {p:?}: expected an interface name pattern like vf* or enP*"
            );
        }
    }
    let written =
        hvnet_linux::install::install(&args.root, &args.vf_patterns).context("hvnet install")?;
    for path in written {
        println!("{}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}
