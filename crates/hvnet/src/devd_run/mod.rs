//! `hvnet devd run`: a drop-in devd(8).
//!
//! One thread, one poll loop, as devd: read a record from the event source, forward it raw to
//! every socket client, then run the first matching rule's actions one after another, waiting
//! for each. Without `-d`/`-n` the boot backlog is processed before daemonising (spec §5.3).
//!
//! Modules: [`source`] (devctl or a FIFO/seqpacket stand-in) and [`framing`] (its records),
//! [`record`] (what a record decides), [`clients`] (the two client sockets), [`action`]
//! (`/bin/sh -c` like devd's `my_system`), [`pidfile`] (pidfile(3) locking), [`log`]
//! (syslog/stderr), [`signals`], [`counters`] (the status file and `--metrics`).
//!
//! The counters stay plain integers owned by the loop. After each pass that changed them the
//! loop publishes a copy for the metrics thread (only with `--metrics`) and rewrites the
//! status file, at most once a second, so `hvnet status --devd` needs no signal.

pub mod action;
pub mod clients;
pub mod counters;
pub mod framing;
pub mod log;
pub mod media;
pub mod pidfile;
pub mod record;
pub mod signals;
pub mod source;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use hvnet_devd::{Config, Engine, EventKind, EventOptions, LoadOptions, Quoting};

use clients::{Clients, Kind, Listener};
use counters::{Counters, Snapshot};
use log::Logger;
use record::Outcome;
use source::{Read, Record, Source};

const USAGE: &str = "usage: devd [-dnq] [-l connlimit] [-f file]";
const DEFAULT_PID_FILE: &str = "/var/run/devd.pid";

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
    /// Directory of devd.seqpacket.pipe and devd.pipe.
    #[arg(long, value_name = "DIR", default_value = "/var/run")]
    pub socket_dir: PathBuf,
    /// Kill an action that runs longer than this many seconds (and log it). Default: no limit.
    #[arg(long, value_name = "SECS")]
    pub action_timeout: Option<f64>,
    /// SIGHUP reloads the configuration (kept only if it loads without error) instead of
    /// terminating.
    #[arg(long)]
    pub reload_on_hup: bool,
    /// Shell for actions (devd: /bin/sh). Expanded values are quoted as `$'…'`; if this shell
    /// does not understand that (e.g. dash), a warning is logged at start.
    #[arg(long, value_name = "PATH", default_value = action::DEFAULT_SHELL)]
    pub shell: PathBuf,
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
    #[arg(long, value_name = "ADDR", value_parser = crate::daemon::config::parse_listen)]
    pub metrics: Option<SocketAddr>,
}

/// The status file is rewritten at most this often.
const STATUS_INTERVAL: Duration = Duration::from_secs(1);

/// devd parses `-l` with strtoul(…, 0): decimal, 0x hex or leading-0 octal; junk stops it.
pub fn parse_limit(s: &str) -> usize {
    let s = s.trim_start();
    let (digits, radix) = if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        (h, 16)
    } else if s.len() > 1 && s.starts_with('0') {
        (&s[1..], 8)
    } else {
        (s, 10)
    };
    let end = digits
        .find(|c: char| !c.is_digit(radix))
        .unwrap_or(digits.len());
    let n = usize::from_str_radix(&digits[..end], radix).unwrap_or(if end == 0 {
        0
    } else {
        usize::MAX
    });
    n.max(1)
}

fn absolute(p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(p))
            .unwrap_or_else(|_| p.to_path_buf())
    }
}

/// Everything the event loop needs.
struct Daemon {
    args: RunArgs,
    log: Logger,
    engine: Engine,
    source: Source,
    listeners: Vec<Listener>,
    clients: Clients,
    max_clients: usize,
    at_limit: bool,
    pid_path: PathBuf,
    pidfile: Option<pidfile::PidFile>,
    drained: bool,
    status_path: PathBuf,
    timeout: Option<Duration>,
    /// When hung-up clients were last looked for.
    last_check: Instant,
    counters: Counters,
    /// What the status file holds, and when it was written.
    written: Counters,
    written_at: Option<Instant>,
    /// `--metrics`: the bound listener until the serving thread starts, and what it reads.
    metrics_listener: Option<std::net::TcpListener>,
    snapshot: Option<Snapshot>,
    /// The pid file is locked by a running instance: leave its status file alone at exit.
    another_instance: bool,
}

pub fn run(mut args: RunArgs) -> anyhow::Result<ExitCode> {
    if args.historical_d {
        eprintln!("{USAGE}");
        return Ok(ExitCode::from(1));
    }
    args.file = absolute(&args.file);
    args.devctl = absolute(&args.devctl);
    args.socket_dir = absolute(&args.socket_dir);
    let status_path = absolute(
        &args
            .status_file
            .clone()
            .unwrap_or_else(|| args.socket_dir.join("hvnet-devd.status.json")),
    );
    let log = Logger::new(args.debug, args.quiet);
    let max_clients = parse_limit(&args.limit);
    let cfg = match Config::load(&args.file, &LoadOptions::default()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return Ok(ExitCode::from(1));
        }
    };
    for w in cfg.warnings() {
        log.warning(&w.to_string());
    }
    if cfg.quoting() == Quoting::Shell && !action::supports_ansi_c_quoting(&args.shell) {
        log.warning(&format!(
            "{} does not understand $'...' quoting: expanded event values will reach actions with a literal $ (use --shell with a shell that does, e.g. /bin/bash)",
            args.shell.display()
        ));
    }
    let pid_path = absolute(Path::new(cfg.pid_file().unwrap_or(DEFAULT_PID_FILE)));
    let timeout = args
        .action_timeout
        .map(|s| crate::limits::POSITIVE_SECONDS.seconds("--action-timeout", s))
        .transpose()
        .map_err(anyhow::Error::msg)?;
    // Bound now, so a bad address or a busy port is an error on the terminal; served from a
    // thread started once the process has daemonised (threads do not survive the fork).
    let metrics_listener = match args.metrics {
        Some(addr) => Some(
            std::net::TcpListener::bind(addr)
                .map_err(|e| anyhow::anyhow!("--metrics: binding {addr}: {e}"))?,
        ),
        None => None,
    };
    let mut d = Daemon {
        log,
        engine: Engine::new(cfg),
        source: Source::open(&args.devctl).map_err(|e| anyhow::anyhow!("{e:#}"))?,
        listeners: Vec::new(),
        clients: Clients::default(),
        max_clients,
        at_limit: false,
        pid_path,
        pidfile: None,
        drained: args.debug || args.no_drain,
        status_path,
        timeout,
        last_check: Instant::now(),
        counters: Counters {
            pid: std::process::id(),
            ..Default::default()
        },
        written: Counters::default(),
        written_at: None,
        snapshot: metrics_listener.as_ref().map(|_| Snapshot::default()),
        metrics_listener,
        another_instance: false,
        args,
    };
    if d.args.no_drain && !d.args.debug {
        if let Some(code) = d.daemonize() {
            return Ok(code);
        }
    }
    signals::install_all(d.args.reload_on_hup);
    for kind in [Kind::SeqPacket, Kind::Stream] {
        d.listeners.push(Listener::create(
            &d.args.socket_dir,
            kind,
            max_clients as i32,
        )?);
    }
    if d.drained {
        d.start_metrics();
    }
    let code = d.event_loop();
    if !d.another_instance {
        d.write_status();
    }
    if let Some(p) = d.pidfile.take() {
        p.remove();
    }
    Ok(code)
}

impl Daemon {
    /// Lock the pid file, detach (daemon(0,0)), write our pid. `Some(code)` = exit now.
    fn daemonize(&mut self) -> Option<ExitCode> {
        self.log.debug("Calling daemon");
        match pidfile::PidFile::open(&self.pid_path) {
            Ok(p) => self.pidfile = Some(p),
            Err(e @ pidfile::PidFileError::AlreadyRunning(_)) => {
                self.another_instance = true;
                eprintln!("devd: {e}");
                return Some(ExitCode::from(1));
            }
            Err(e) => self.log.warning(&format!("pidfile_open: {e}")),
        }
        // SAFETY: single-threaded process; daemon forks, the parent exits, the child goes on.
        if unsafe { libc::daemon(0, 0) } != 0 {
            eprintln!("devd: daemon: {}", std::io::Error::last_os_error());
            return Some(ExitCode::from(1));
        }
        self.counters.pid = std::process::id();
        if let Some(p) = &mut self.pidfile {
            if let Err(e) = p.write_pid() {
                self.log.warning(&format!("pidfile_write: {e}"));
            }
        }
        None
    }

    /// Serve `--metrics` from a thread of its own (daemon::metrics on a one-thread runtime),
    /// with every signal blocked so they keep interrupting the event loop's poll.
    fn start_metrics(&mut self) {
        let (Some(listener), Some(snapshot)) = (self.metrics_listener.take(), &self.snapshot)
        else {
            return;
        };
        let registry = Arc::new(snapshot.registry());
        snapshot.publish(&self.counters);
        if let Ok(a) = listener.local_addr() {
            self.log.notice(&format!("metrics on http://{a}/metrics"));
        }
        // SAFETY: sigset manipulation on local values; the mask is restored right after.
        let old = unsafe {
            let mut all: libc::sigset_t = std::mem::zeroed();
            let mut old: libc::sigset_t = std::mem::zeroed();
            libc::sigfillset(&mut all);
            libc::pthread_sigmask(libc::SIG_BLOCK, &all, &mut old);
            old
        };
        let spawned = std::thread::Builder::new().name("metrics".into()).spawn(
            move || -> std::io::Result<()> {
                listener.set_nonblocking(true)?;
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                rt.block_on(async {
                    let l = tokio::net::TcpListener::from_std(listener)?;
                    crate::daemon::metrics::serve(l, registry).await;
                    Ok(())
                })
            },
        );
        // SAFETY: restores the mask saved above.
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut()) };
        if let Err(e) = spawned {
            self.log.err(&format!("metrics: starting the thread: {e}"));
        }
    }

    /// Publish changed counters to the metrics thread and, at most once per
    /// [`STATUS_INTERVAL`], to the status file. Returns how long until a pending write is due.
    fn publish(&mut self) -> Option<Duration> {
        self.counters.clients_connected = self.clients.len() as u64;
        if self.counters == self.written {
            return None;
        }
        if let Some(s) = &self.snapshot {
            s.publish(&self.counters);
        }
        let since = self.written_at.map(|t| t.elapsed());
        match since {
            Some(t) if t < STATUS_INTERVAL => Some(STATUS_INTERVAL - t),
            _ => {
                self.write_status();
                None
            }
        }
    }

    fn write_status(&mut self) {
        self.counters.clients_connected = self.clients.len() as u64;
        if let Err(e) = self.counters.write_json(&self.status_path) {
            self.log
                .warning(&format!("{}: {e}", self.status_path.display()));
        }
        self.written.clone_from(&self.counters);
        self.written_at = Some(Instant::now());
    }

    fn event_loop(&mut self) -> ExitCode {
        let wait_mask = signals::block_handled();
        while !signals::terminate_requested() {
            if signals::take_hup() {
                self.reload();
            }
            if signals::take_report() {
                self.report();
            }
            if !self.drained && !self.event_pending() {
                self.drained = true;
                if let Some(code) = self.daemonize() {
                    return code;
                }
                self.start_metrics();
            }
            let status_due = self.publish();
            self.update_limit();
            let mut fds = vec![libc::pollfd {
                fd: self.source.raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            }];
            if !self.at_limit {
                for l in &self.listeners {
                    fds.push(libc::pollfd {
                        fd: l.raw_fd(),
                        events: libc::POLLIN,
                        revents: 0,
                    });
                }
            }
            // devd's select timeout (60 s, 2 s at the limit) drives check_clients; keep it a
            // deadline so signals (SIGUSR1) that interrupt poll do not postpone reaping.
            let period = Duration::from_millis(if self.at_limit { 2_000 } else { 60_000 });
            let now = Instant::now();
            if now.duration_since(self.last_check) >= period {
                self.reap();
                self.last_check = now;
            }
            let wait_ms = if self.source.has_buffered() || !self.drained {
                0
            } else {
                let wait = period.saturating_sub(now.duration_since(self.last_check));
                (wait.min(status_due.unwrap_or(wait)).as_millis() as i32).max(1)
            };
            let n = signals::poll(&mut fds, wait_ms, &wait_mask);
            if n < 0 {
                let e = std::io::Error::last_os_error();
                if e.raw_os_error() == Some(libc::EINTR) {
                    continue;
                }
                self.log.err(&format!("poll: {e}"));
                return ExitCode::from(1);
            }
            if n == 0 && !self.source.has_buffered() {
                continue;
            }
            // Accept before forwarding, so a client that connects and then causes an event
            // sees it (upstream PR #1771).
            for (i, l) in self.listeners.iter().enumerate() {
                if !self.at_limit
                    && fds
                        .get(i + 1)
                        .is_some_and(|p| p.revents & libc::POLLIN != 0)
                {
                    self.counters.clients_reaped += self.clients.reap() as u64;
                    while self.clients.len() < self.max_clients {
                        match l.accept() {
                            Ok(Some(c)) => {
                                self.clients.add(c);
                                self.counters.clients_accepted += 1;
                            }
                            Ok(None) => break,
                            Err(e) => {
                                self.log.err(&format!("accept: {e}"));
                                return ExitCode::from(1);
                            }
                        }
                    }
                }
            }
            self.counters.clients_connected = self.clients.len() as u64;
            if fds[0].revents != 0 || self.source.has_buffered() {
                match self.source.read() {
                    Read::Nothing => {}
                    Read::Records(records) => {
                        for r in records {
                            self.handle(r);
                        }
                    }
                    Read::End(err) => {
                        if let Some(e) = err {
                            self.log.err(&format!("read: {e}"));
                        }
                        break;
                    }
                }
            }
        }
        ExitCode::SUCCESS
    }

    /// Zero-timeout check for queued events (the boot drain test).
    fn event_pending(&self) -> bool {
        if self.source.has_buffered() {
            return true;
        }
        let mut p = libc::pollfd {
            fd: self.source.raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one pollfd, zero timeout.
        let n = unsafe { libc::poll(&mut p, 1, 0) };
        n > 0 && p.revents & libc::POLLIN != 0
    }

    /// At the limit the listeners leave the poll set and refuse quickly (backlog 0).
    fn update_limit(&mut self) {
        let at_limit = self.clients.len() >= self.max_clients;
        if at_limit != self.at_limit {
            let backlog = if at_limit { 0 } else { self.max_clients as i32 };
            for l in &self.listeners {
                l.set_backlog(backlog);
            }
            self.at_limit = at_limit;
        }
    }

    fn reap(&mut self) {
        let n = self.clients.reap();
        for _ in 0..n {
            self.log
                .notice("check_clients:  dropping disconnected client");
        }
        self.counters.clients_reaped += n as u64;
        self.counters.clients_connected = self.clients.len() as u64;
    }

    fn report(&mut self) {
        self.log.notice(&format!(
            "Events received so far={}",
            self.counters.events_received
        ));
        self.write_status();
    }

    fn reload(&mut self) {
        match Config::load(&self.args.file, &LoadOptions::default()) {
            Ok(cfg) => {
                for w in cfg.warnings() {
                    self.log.warning(&w.to_string());
                }
                self.engine = Engine::new(cfg);
                self.counters.reloads += 1;
                self.log
                    .notice(&format!("Reloaded {}", self.args.file.display()));
            }
            Err(e) => {
                self.counters.reload_failures += 1;
                self.log
                    .err(&format!("reload failed, keeping the previous rules: {e}"));
            }
        }
    }

    fn handle(&mut self, record: Record) {
        self.counters.events_received += 1;
        let raw = match record {
            Record::Oversized(len) => {
                self.counters.events.oversized += 1;
                self.log.warning(&format!(
                    "Dropping oversized event ({len} bytes, devctl limit {})",
                    source::MAX_RECORD
                ));
                return;
            }
            Record::Event(raw) => raw,
        };
        // Forward first, byte for byte, before any rule runs.
        let f = self.clients.forward(&raw);
        self.counters.bytes_forwarded += (raw.len() * f.delivered) as u64;
        for _ in 0..f.dropped {
            self.log
                .warning("notify_clients: send() failed; dropping unresponsive client");
        }
        self.counters.clients_dropped += f.dropped as u64;
        self.counters.clients_connected = self.clients.len() as u64;
        let text = String::from_utf8_lossy(record::event_line(&raw));
        let opts = EventOptions {
            fix_empty_location: self.args.fix_empty_location,
            ..Default::default()
        };
        let (kind, actions) = match record::decide(&self.engine, &raw, &opts, &media::SystemMedia) {
            Outcome::Malformed(e) => {
                self.counters.events.malformed += 1;
                self.log.warning(&format!("Skipping event '{text}': {e}"));
                return;
            }
            Outcome::Unmatched(kind) => (kind, None),
            Outcome::Matched { kind, actions } => (kind, Some(actions)),
        };
        self.log.info(&format!("Processing event '{text}'"));
        let ec = &mut self.counters.events;
        *match kind {
            EventKind::Notify => &mut ec.notify,
            EventKind::Attach => &mut ec.attach,
            EventKind::Detach => &mut ec.detach,
            EventKind::Nomatch => &mut ec.nomatch,
            EventKind::Unknown => &mut ec.unknown,
        } += 1;
        self.log
            .debug(&format!("Processing {} event", kind.as_str()));
        let Some(actions) = actions else {
            return;
        };
        self.counters.events_matched += 1;
        for cmd in actions {
            let shown = String::from_utf8_lossy(&cmd).into_owned();
            self.log.info(&format!("Executing '{shown}'"));
            let out = action::run(&self.args.shell, &cmd, self.timeout);
            self.counters.actions_run += 1;
            self.counters.action_time_ms += out.elapsed.as_millis() as u64;
            if out.failed() {
                self.counters.actions_failed += 1;
            }
            if out.timed_out {
                self.counters.actions_timed_out += 1;
                self.log.warning(&format!(
                    "action exceeded its {:.3}s limit after {:.3}s and was killed ({}): '{shown}'",
                    self.timeout.unwrap_or_default().as_secs_f64(),
                    out.elapsed.as_secs_f64(),
                    action::describe(&out.status)
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_limit;

    #[test]
    fn limit_parses_like_strtoul_base_0() {
        assert_eq!(parse_limit("10"), 10);
        assert_eq!(parse_limit("0x10"), 16);
        assert_eq!(parse_limit("010"), 8);
        assert_eq!(parse_limit("0"), 1);
        assert_eq!(parse_limit("junk"), 1);
        assert_eq!(parse_limit("3abc"), 3);
    }
}
