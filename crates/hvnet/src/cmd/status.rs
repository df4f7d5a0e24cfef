//! `hvnet status`: ask the running daemon what it sees and does.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::daemon::{config, control};

#[derive(Args, Debug)]
#[command(after_help = "\
For each pair (synthetic NIC, VF): the VF's state, where the IP configuration lives, which \
path carries the traffic and since when, failovers and time spent without the VF; then \
failing steps (they are retried), the latest actions with their results, and hosted devd \
rules. Needs root (or the daemon's own user). Exit status 1 when the daemon cannot be reached.")]
pub struct StatusArgs {
    /// One JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
    /// The daemon's control socket (default: `control_socket` of the configuration file,
    /// else /var/run/hvnet.sock).
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// Configuration file to take the socket path from (default: the daemon's default).
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub config: Option<PathBuf>,
}

pub fn run(a: StatusArgs) -> anyhow::Result<ExitCode> {
    let socket = match (a.socket, &a.config) {
        (Some(s), _) => s,
        (None, Some(c)) => config::Config::load(c, true)?.control_socket,
        (None, None) => {
            config::Config::load(std::path::Path::new(config::default_path()), false)?
                .control_socket
        }
    };
    let r = control::query(&socket)?;
    if a.json {
        println!("{}", serde_json::to_string(&r)?);
    } else {
        print!("{}", r.render());
    }
    Ok(ExitCode::SUCCESS)
}
