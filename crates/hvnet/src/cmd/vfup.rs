//! `hvnet vfup hnX`: drop-in for /usr/libexec/hyperv/hyperv_vfup (spec
//! hn.md §3.3). Same argument and exit codes (0, or 1 when the lagg cannot
//! be created; an override's own status). By default the improved variant
//! (current dhclient pid file, IPv4/IPv6/aliases/routes moved, no blocking
//! dhclient); `--faithful` behaves exactly like the shipped script.

use std::process::ExitCode;

use clap::Args;
use hvnet_freebsd::scripts::{self, VfupMode, VfupOptions};
use hvnet_rcconf::RcConf;

use super::vfattach::{exit_code, runner_for};

#[derive(Args, Debug)]
pub struct VfupArgs {
    /// The synthetic interface (devd's $subsystem of HYPERV_NIC_VF VF_UP).
    pub hn: String,
    /// Do exactly what the shipped script does, known defects included.
    #[arg(long)]
    pub faithful: bool,
    /// Directory of per-interface overrides hyperv_vfup.hnX.
    #[arg(long, default_value = "/usr/libexec/hyperv")]
    pub override_dir: String,
    /// Read rc.conf and pid files under this directory instead of / (tests).
    #[arg(long, hide = true, default_value = "/")]
    pub root: std::path::PathBuf,
}

pub fn run(a: VfupArgs) -> anyhow::Result<ExitCode> {
    let rc = RcConf::load(&a.root, &["netif"]);
    for d in rc.diagnostics() {
        eprintln!("{d}");
    }
    let opts = VfupOptions {
        mode: if a.faithful {
            VfupMode::Faithful
        } else {
            VfupMode::Improved
        },
        override_dir: a.override_dir.clone(),
        ..VfupOptions::default()
    };
    let mut runner = runner_for(&a.root);
    let res = scripts::vfup(&mut runner, &rc, &a.hn, &opts);
    for m in &res.messages {
        println!("{m}");
    }
    Ok(exit_code(res.exit_code))
}
