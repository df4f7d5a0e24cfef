//! `hvnet status`: ask the running daemon what it sees and does; with `--devd`, show the
//! counters `hvnet devd run` keeps in its status file instead.

use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::Context;
use clap::Args;

use hvnet_daemon::{config, control, printable};
use hvnet_devd_daemon::counters::Counters;
use hvnet_devd_daemon::status_view;

/// `hvnet devd run`'s status file with its default `--socket-dir` ([`config::RUN_DIR`]).
pub const DEFAULT_DEVD_STATUS: &str = if cfg!(target_os = "linux") {
    "/run/hvnet/hvnet-devd.status.json"
} else {
    "/var/run/hvnet-devd.status.json"
};

#[derive(Args, Debug)]
#[command(after_help = "\
For each pair (synthetic NIC, VF): the VF's state, where the IP configuration lives, which \
path carries the traffic and since when, failovers and time spent without the VF; then \
failing steps (they are retried), the latest actions with their results, and hosted devd \
rules. Needs root (or the daemon's own user). Exit status 1 when the daemon cannot be reached.

With --devd, only the counters of `hvnet devd run` (a separate process) are shown, read from \
its status file (`--status-file` of devd run; default /run/hvnet/hvnet-devd.status.json on \
Linux, /var/run/hvnet-devd.status.json on FreeBSD): \
events by kind, actions run, failed and timed out, time in actions, clients, reloads. The \
daemon rewrites the file at most once a second after a change, so the figures are at most a \
second old; the table says whether its pid is still running. Exit status 1 when the file \
cannot be read.")]
pub struct StatusArgs {
    /// One JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
    /// The daemon's control socket (default: `control_socket` of the configuration file,
    /// else /run/hvnet/hvnet.sock on Linux, /var/run/hvnet.sock on FreeBSD).
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// Configuration file to take the socket path from (default: the daemon's default).
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Show `hvnet devd run`'s counters from its status file instead of asking the VF
    /// daemon (PATH default: hvnet-devd.status.json in /run/hvnet on Linux, /var/run on
    /// FreeBSD).
    #[arg(
        long,
        value_name = "PATH",
        num_args = 0..=1,
        default_missing_value = DEFAULT_DEVD_STATUS,
        conflicts_with_all = ["socket", "config"]
    )]
    pub devd: Option<PathBuf>,
}

pub fn run(a: StatusArgs) -> anyhow::Result<ExitCode> {
    if let Some(path) = &a.devd {
        return devd(path, a.json);
    }
    let socket = match (a.socket, &a.config) {
        (Some(s), _) => s,
        (None, Some(c)) => config::Config::load(c, true)?.control_socket,
        (None, None) => {
            config::Config::load(std::path::Path::new(config::default_path()), false)?
                .control_socket
        }
    };
    // Only printable text reaches the terminal, whatever the server's strings hold.
    let r = control::query(&socket)?;
    if a.json {
        println!("{}", printable::json_text(&serde_json::to_string(&r)?));
    } else {
        print!("{}", printable::sanitized(&r)?.render());
    }
    Ok(ExitCode::SUCCESS)
}

/// Read the status file; like a server, its writer must be root or our own user.
fn read_devd_status(path: &Path) -> anyhow::Result<(String, std::fs::Metadata)> {
    let mut f = std::fs::File::open(path).with_context(|| {
        format!(
            "{}: cannot read the devd status file (is `hvnet devd run` running, with this --status-file?)",
            path.display()
        )
    })?;
    let meta = f.metadata()?;
    let own = nix::unistd::geteuid().as_raw();
    if !hvnet_sys::peer::allowed(meta.uid(), own) {
        anyhow::bail!(
            "{}: owned by uid {}, neither root nor you (uid {own}); not trusting it",
            path.display(),
            meta.uid()
        );
    }
    let mut text = String::new();
    f.read_to_string(&mut text)
        .with_context(|| format!("{}: reading", path.display()))?;
    Ok((text, meta))
}

fn devd(path: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let (text, meta) = read_devd_status(path)?;
    let c: Counters = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a devd status file", path.display()))?;
    let age = meta
        .modified()
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok());
    let running = status_view::alive(c.pid);
    if json {
        let mut v = serde_json::to_value(&c)?;
        v["running"] = running.into();
        v["age_seconds"] = age.map(|a| a.as_secs_f64()).into();
        println!("{v}");
    } else {
        print!(
            "{}",
            status_view::render(&c, running, age.map(|a| a.as_secs()))
        );
    }
    Ok(ExitCode::SUCCESS)
}
