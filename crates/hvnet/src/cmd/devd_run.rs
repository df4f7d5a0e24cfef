//! `hvnet devd run`: devd(8)'s command line, parsed and checked, then
//! [`hvnet_devd_daemon::daemon::run`]. Errors devd reports itself (a configuration that does
//! not load, another instance running, daemon(3) failing) are printed in devd's words.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use hvnet_devd_daemon::cli::{parse_limit, DEFAULT_PID_FILE};
use hvnet_devd_daemon::daemon::{self, Options, RunError};

const USAGE: &str = "usage: devd [-dnq] [-l connlimit] [-f file]";
#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// Stay in the foreground, no pid file, log everything to stderr.
    #[arg(short = 'd')]
    pub debug: bool,
    /// Configuration file.
    #[arg(short = 'f', value_name = "FILE", default_value = "/etc/devd.conf")]
    pub file: PathBuf,
    /// Maximum simultaneous socket clients (strtoul syntax: 10, 0x10, 010; at least 1).
    #[arg(short = 'l', value_name = "N", default_value = "10")]
    pub limit: String,
    /// Daemonise at once, without first processing the queued (boot) events.
    #[arg(short = 'n')]
    pub no_drain: bool,
    /// Quiet: log only warnings and worse.
    #[arg(short = 'q')]
    pub quiet: bool,
    /// Historical devd flag; a usage error now, as in devd.
    #[arg(short = 'D', hide = true)]
    pub historical_d: bool,
    /// Event source: a devctl character device, a FIFO, or a unix SOCK_SEQPACKET socket.
    #[arg(long, value_name = "PATH", default_value = "/dev/devctl")]
    pub devctl: PathBuf,
    /// Directory of devd.seqpacket.pipe and devd.pipe (default /run/hvnet on Linux, /var/run
    /// on FreeBSD).
    #[arg(long, value_name = "DIR", default_value = hvnet_daemon::config::RUN_DIR)]
    pub socket_dir: PathBuf,
    /// Kill an action that runs longer than this many seconds (and log it). Default: no limit.
    #[arg(long, value_name = "SECS")]
    pub action_timeout: Option<f64>,
    /// SIGHUP reloads the configuration (kept only if it loads without error) instead of
    /// terminating.
    #[arg(long)]
    pub reload_on_hup: bool,
    /// Shell for actions, used as given: event values are quoted as `$'…'` if it reads that
    /// back intact, else as POSIX '…'. Default: /bin/sh if it reads `$'…'`, else the first
    /// of bash, mksh, ksh93, busybox, zsh in /bin, /usr/bin, /usr/local/bin that does, else
    /// /bin/sh with '…'.
    #[arg(long, value_name = "PATH")]
    pub shell: Option<PathBuf>,
    /// Fix devd's empty-location bug: in `+dev at  key=value on bus` (two spaces), read the
    /// pnp keys and `bus` instead of losing them (upstream loses them; default bug-compatible).
    #[arg(long)]
    pub fix_empty_location: bool,
    /// Where the counters are written as JSON, mode 0600, for `hvnet status --devd`: at most
    /// once a second after they change, on SIGUSR1 and at exit
    /// (default: SOCKET_DIR/hvnet-devd.status.json).
    #[arg(long, value_name = "PATH")]
    pub status_file: Option<PathBuf>,
    /// Serve the counters as Prometheus metrics (`GET /metrics`) on PORT or :PORT (both
    /// 127.0.0.1), IP:PORT or [IPv6]:PORT. Default: off, nothing listens.
    #[arg(long, value_name = "ADDR", value_parser = hvnet_metrics::parse_listen)]
    pub metrics: Option<SocketAddr>,
}

/// The daemon's options from the command line (after `-D`, which is a usage error).
fn options(args: RunArgs) -> anyhow::Result<Options> {
    let action_timeout = args
        .action_timeout
        .map(|s| crate::limits::POSITIVE_SECONDS.seconds("--action-timeout", s))
        .transpose()
        .map_err(anyhow::Error::msg)?;
    Ok(Options {
        debug: args.debug,
        file: args.file,
        max_clients: parse_limit(&args.limit),
        no_drain: args.no_drain,
        quiet: args.quiet,
        devctl: args.devctl,
        socket_dir: args.socket_dir,
        action_timeout,
        reload_on_hup: args.reload_on_hup,
        shell: args.shell,
        fix_empty_location: args.fix_empty_location,
        status_file: args.status_file,
        metrics: args.metrics,
        default_pid_file: PathBuf::from(DEFAULT_PID_FILE),
    })
}

pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    if args.historical_d {
        eprintln!("{USAGE}");
        return Ok(ExitCode::from(1));
    }
    match daemon::run(options(args)?) {
        Ok(code) => Ok(code),
        Err(e @ RunError::Config(_)) => {
            eprintln!("{e}");
            Ok(ExitCode::from(1))
        }
        Err(e @ (RunError::AlreadyRunning { .. } | RunError::Daemon(_))) => {
            eprintln!("devd: {e}");
            Ok(ExitCode::from(1))
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        run: RunArgs,
    }

    fn parse(argv: &[&str]) -> anyhow::Result<Options> {
        let argv = std::iter::once("devd").chain(argv.iter().copied());
        options(Cli::try_parse_from(argv)?.run)
    }

    /// Without flags: devd's files and limits; the sockets, the pid file and the status file
    /// in the OS's run directory (on Linux the systemd unit's RuntimeDirectory, the one place
    /// it may write).
    #[test]
    fn defaults_are_devds() {
        use hvnet_daemon::config::RUN_DIR;
        let o = parse(&[]).unwrap();
        assert_eq!(o.file, PathBuf::from("/etc/devd.conf"));
        assert_eq!(o.devctl, PathBuf::from("/dev/devctl"));
        assert_eq!(o.socket_dir, PathBuf::from(RUN_DIR));
        assert_eq!(
            o.default_pid_file.parent(),
            Some(std::path::Path::new(RUN_DIR))
        );
        assert_eq!(o.default_pid_file.file_name().unwrap(), "devd.pid");
        let status = std::path::Path::new(crate::cmd::status::DEFAULT_DEVD_STATUS);
        assert_eq!(status.parent(), Some(std::path::Path::new(RUN_DIR)));
        assert_eq!(status.file_name().unwrap(), "hvnet-devd.status.json");
        assert_eq!(
            (o.max_clients, o.action_timeout, o.metrics),
            (10, None, None)
        );
        assert_eq!((o.debug, o.no_drain, o.quiet), (false, false, false));
    }

    #[test]
    fn flags_reach_the_options_and_a_bad_timeout_is_refused() {
        let o = parse(&[
            "-dnq",
            "-l",
            "0x20",
            "--action-timeout",
            "1.5",
            "--metrics",
            "9100",
        ])
        .unwrap();
        assert_eq!((o.debug, o.no_drain, o.quiet), (true, true, true));
        assert_eq!(o.max_clients, 32);
        assert_eq!(
            o.action_timeout,
            Some(std::time::Duration::from_millis(1500))
        );
        assert_eq!(o.metrics, Some("127.0.0.1:9100".parse().unwrap()));
        for bad in ["0", "-1", "nan", "inf", "1e300"] {
            let e = parse(&[&format!("--action-timeout={bad}")]).unwrap_err();
            assert!(
                e.to_string()
                    .starts_with("--action-timeout: expected a number of seconds above 0"),
                "{bad}: {e}"
            );
        }
    }
}
