//! `hvnet vfattach IFACE DELAY`: drop-in for /usr/libexec/hyperv/hyperv_vfattach
//! (spec hn.md §3.2). Same arguments, same exit codes; the delayed second
//! run is re-executed as `hvnet vfattach IFACE D` under daemon(8).

use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use hvnet_freebsd::scripts;
use hvnet_freebsd::SystemRunner;
use hvnet_rcconf::RcConf;

#[derive(Args, Debug)]
pub struct VfattachArgs {
    /// The interface devd saw attach ($subsystem).
    pub iface: String,
    /// 0 from devd; the delay in seconds for the detached second run.
    pub delay: String,
    /// Read /etc/rc.conf and pid files under this directory instead of / (tests).
    #[arg(long, hide = true, default_value = "/")]
    pub root: std::path::PathBuf,
}

pub fn run(a: VfattachArgs) -> anyhow::Result<ExitCode> {
    let exe = std::env::current_exe().context("finding hvnet's own path for the re-exec")?;
    let reexec = vec![exe.to_string_lossy().into_owned(), "vfattach".to_string()];
    let mut runner = runner_for(&a.root);
    let root = a.root.clone();
    let res = scripts::vfattach(&mut runner, &a.iface, &a.delay, &reexec, || {
        RcConf::load_file(&root, "/etc/rc.conf")
    })
    .finish(&mut runner, &mut |secs| {
        std::thread::sleep(std::time::Duration::from_secs(secs))
    });
    for m in &res.messages {
        println!("{m}");
    }
    Ok(exit_code(res.exit_code))
}

/// A system runner; with a non-`/` root, files are read under it and
/// programs are found through PATH (fake FreeBSD tools in tests).
pub fn runner_for(root: &std::path::Path) -> SystemRunner {
    if root == std::path::Path::new("/") {
        SystemRunner::new()
    } else {
        SystemRunner {
            path_lookup: true,
            file_root: Some(root.to_path_buf()),
        }
    }
}

/// The shell's view of an exit status: its low 8 bits.
pub fn exit_code(code: i32) -> ExitCode {
    ExitCode::from((code & 0xff) as u8)
}
