//! `hvnet devd run`: a drop-in devd(8).
//!
//! One thread, one poll loop, as devd: read a record from the event source, forward it raw to
//! every socket client, then run the first matching rule's actions one after another, waiting
//! for each. Without `-d`/`-n` the boot backlog is processed before daemonising (spec §5.3).
//!
//! The counters stay plain integers owned by the loop. After each pass that changed them the
//! loop publishes a copy for the metrics thread (only with `--metrics`) and rewrites the
//! status file, at most once a second, so `hvnet status --devd` needs no signal.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hvnet_devd::{Config, ConfigError, Engine, EventKind, EventOptions, LoadOptions};
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags};
use nix::sys::signal::{pthread_sigmask, SigSet, SigmaskHow};

use crate::clients::{self, Clients, Kind, Listener};
use crate::counters::{Counters, Snapshot};
use crate::log::Logger;
use crate::record::{self, Outcome};
use crate::source::{self, Read, Record, Source};
use crate::{action, media, shell, signals};
use hvnet_sys::{pidfile, shared_dir};

/// How to run: `hvnet devd run`'s command line, parsed.
#[derive(Debug, Clone)]
pub struct Options {
    /// `-d`: stay in the foreground, no pid file, log everything to stderr.
    pub debug: bool,
    /// `-f`: the configuration file.
    pub file: PathBuf,
    /// `-l`: the most socket clients at once (at least 1).
    pub max_clients: usize,
    /// `-n`: daemonise at once, without first processing the queued (boot) events.
    pub no_drain: bool,
    /// `-q`: log only warnings and worse.
    pub quiet: bool,
    /// The event source: a devctl character device, a FIFO, or a unix SOCK_SEQPACKET socket.
    pub devctl: PathBuf,
    /// The directory of devd.seqpacket.pipe and devd.pipe.
    pub socket_dir: PathBuf,
    /// Kill an action that runs longer (and log it); `None`: no limit.
    pub action_timeout: Option<Duration>,
    /// SIGHUP reloads the configuration instead of terminating.
    pub reload_on_hup: bool,
    /// The shell for actions ([`shell::choose`]); `None`: probed.
    pub shell: Option<PathBuf>,
    /// Read the pnp keys of `+dev at  key=value on bus` instead of losing them.
    pub fix_empty_location: bool,
    /// Where the counters are written (default: SOCKET_DIR/hvnet-devd.status.json).
    pub status_file: Option<PathBuf>,
    /// Serve the counters as Prometheus metrics here.
    pub metrics: Option<SocketAddr>,
    /// The pid file when the configuration's `pid-file` option names none.
    pub default_pid_file: PathBuf,
}

/// Why the daemon did not start. [`RunError::Config`], [`RunError::AlreadyRunning`] and
/// [`RunError::Daemon`] are the failures devd itself reports on stderr.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The configuration does not load (`FILE:LINE: message`).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Another instance holds the pid file.
    #[error("devd already running, pid: {pid}")]
    AlreadyRunning { pid: i32 },
    /// daemon(3) failed.
    #[error("daemon: {0}")]
    Daemon(std::io::Error),
    #[error(transparent)]
    Shell(#[from] shell::ShellError),
    /// A directory files are created in fails [`shared_dir::check_dir`].
    #[error("{what}")]
    UnsafeDir {
        what: &'static str,
        #[source]
        source: shared_dir::UnsafeDir,
    },
    /// Something that is not a pid file of ours is at the pid file's path.
    #[error(transparent)]
    PidFile(pidfile::PidFileError),
    /// Another devd still serves a client socket (replacing it would cut its clients off).
    #[error("{}: another devd is serving this socket", .0.display())]
    Served(PathBuf),
    #[error("--metrics: binding {addr}")]
    Metrics {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Source(#[from] source::OpenError),
    #[error(transparent)]
    Socket(#[from] clients::SocketError),
}

/// The status file is rewritten at most this often.
const STATUS_INTERVAL: Duration = Duration::from_secs(1);

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
    args: Options,
    log: Logger,
    engine: Engine,
    /// Chosen at start: the shell that runs actions and the quoting it reads.
    shell: shell::ActionShell,
    source: Source,
    listeners: Vec<Listener>,
    clients: Clients,
    max_clients: usize,
    at_limit: bool,
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
}

/// Run until a signal or the end of the event source. `Ok` carries the exit status (1
/// after an error the daemon logged itself).
pub fn run(mut args: Options) -> Result<ExitCode, RunError> {
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
    let max_clients = args.max_clients.max(1);
    let cfg = Config::load(&args.file, &LoadOptions::default())?;
    for w in cfg.warnings() {
        log.warning(&w.to_string());
    }
    let shell = shell::choose(args.shell.as_deref())?;
    log.notice(&shell.describe());
    let pid_path = absolute(
        &cfg.pid_file()
            .map_or_else(|| args.default_pid_file.clone(), PathBuf::from),
    );
    let timeout = args.action_timeout;
    // Everything is checked before anything is created: the directories first, then the
    // pid file's lock, so that a second instance stops before it touches a socket.
    let mut dirs = vec![
        ("--socket-dir", args.socket_dir.clone()),
        ("status file", parent(&status_path)),
    ];
    if !args.debug {
        dirs.push(("pid file", parent(&pid_path)));
    }
    for (what, dir) in dirs {
        shared_dir::check_dir(&dir).map_err(|source| RunError::UnsafeDir { what, source })?;
    }
    let pidfile = if args.debug {
        None
    } else {
        match pidfile::PidFile::open(&pid_path) {
            Ok(p) => Some(p),
            Err(pidfile::PidFileError::AlreadyRunning { pid, .. }) => {
                return Err(RunError::AlreadyRunning { pid })
            }
            Err(e @ pidfile::PidFileError::Unsafe { .. }) => return Err(RunError::PidFile(e)),
            // devd goes on without a pid file (a read-only /var/run, say).
            Err(e) => {
                log.warning(&format!("pidfile_open: {e}"));
                None
            }
        }
    };
    // Another devd with its own pid file (or none, -d) may still serve the sockets.
    if let Some(p) = clients::served(&args.socket_dir) {
        return Err(RunError::Served(p));
    }
    // Bound now, so a bad address or a busy port is an error on the terminal; served from a
    // thread started once the process has daemonised (threads do not survive the fork).
    let metrics_listener = match args.metrics {
        Some(addr) => Some(
            std::net::TcpListener::bind(addr)
                .map_err(|source| RunError::Metrics { addr, source })?,
        ),
        None => None,
    };
    let mut d = Daemon {
        log,
        engine: Engine::new(cfg),
        counters: Counters {
            pid: std::process::id(),
            shell: shell.path.display().to_string(),
            quoting: shell.quoting.describe().to_string(),
            ..Default::default()
        },
        shell,
        source: Source::open(&args.devctl)?,
        listeners: Vec::new(),
        clients: Clients::default(),
        max_clients,
        at_limit: false,
        pidfile,
        drained: args.debug || args.no_drain,
        status_path,
        timeout,
        last_check: Instant::now(),
        written: Counters::default(),
        written_at: None,
        snapshot: metrics_listener.as_ref().map(|_| Snapshot::default()),
        metrics_listener,
        args,
    };
    if d.args.no_drain && !d.args.debug {
        d.daemonize()?;
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
    let ended = d.event_loop();
    d.write_status();
    if let Some(p) = d.pidfile.take() {
        p.remove();
    }
    ended
}

/// The directory `path` is in.
fn parent(path: &Path) -> PathBuf {
    path.parent()
        .map_or_else(|| PathBuf::from("/"), Path::to_path_buf)
}

impl Daemon {
    /// Detach (daemon(0,0)) and write our pid to the pid file locked at start.
    fn daemonize(&mut self) -> Result<(), RunError> {
        self.log.debug("Calling daemon");
        // daemon(3) forks: only the calling thread goes on in the child, so it runs before
        // the metrics thread starts.
        nix::unistd::daemon(false, false).map_err(|e| RunError::Daemon(e.into()))?;
        self.counters.pid = std::process::id();
        if let Some(p) = &mut self.pidfile {
            if let Err(e) = p.write_pid() {
                self.log.warning(&format!("pidfile_write: {e}"));
            }
        }
        Ok(())
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
        // The new thread inherits this mask; ours is restored right after.
        let mut old = SigSet::empty();
        let _ = pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&SigSet::all()), Some(&mut old));
        let spawned = std::thread::Builder::new().name("metrics".into()).spawn(
            move || -> std::io::Result<()> {
                listener.set_nonblocking(true)?;
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                rt.block_on(async {
                    let l = tokio::net::TcpListener::from_std(listener)?;
                    hvnet_metrics::serve(l, registry).await;
                    Ok(())
                })
            },
        );
        let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&old), None);
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

    /// `Ok`: the exit status (1 after a poll or accept error, logged).
    fn event_loop(&mut self) -> Result<ExitCode, RunError> {
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
                self.daemonize()?;
                self.start_metrics();
            }
            let status_due = self.publish();
            self.update_limit();
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
            // The source first, then the listeners unless at the limit.
            let ready = {
                let mut fds = vec![PollFd::new(self.source.fd(), PollFlags::POLLIN)];
                if !self.at_limit {
                    fds.extend(
                        self.listeners
                            .iter()
                            .map(|l| PollFd::new(l.fd(), PollFlags::POLLIN)),
                    );
                }
                match signals::poll(&mut fds, wait_ms, wait_mask) {
                    Err(Errno::EINTR) => continue,
                    Err(e) => {
                        self.log.err(&format!("poll: {}", std::io::Error::from(e)));
                        return Ok(ExitCode::from(1));
                    }
                    Ok(0) if !self.source.has_buffered() => continue,
                    Ok(_) => fds
                        .iter()
                        .map(|p| p.revents().unwrap_or(PollFlags::empty()))
                        .collect::<Vec<_>>(),
                }
            };
            // Accept before forwarding, so a client that connects and then causes an event
            // sees it (upstream PR #1771).
            for (i, l) in self.listeners.iter().enumerate() {
                if !self.at_limit
                    && ready
                        .get(i + 1)
                        .is_some_and(|r| r.contains(PollFlags::POLLIN))
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
                                return Ok(ExitCode::from(1));
                            }
                        }
                    }
                }
            }
            self.counters.clients_connected = self.clients.len() as u64;
            if !ready[0].is_empty() || self.source.has_buffered() {
                match self.source.read() {
                    Read::Nothing => {}
                    Read::Records(records) => {
                        for r in records {
                            self.handle(r);
                        }
                    }
                    // devd leaves its loop on either, and exits 0.
                    Read::End(err) => {
                        let devctl = self.args.devctl.display();
                        match err {
                            Some(e) => self.log.err(&format!("{devctl}: read: {e}; exiting")),
                            None => self.log.err(&format!(
                                "{devctl}: end of file: the event source closed; exiting"
                            )),
                        }
                        break;
                    }
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    }

    /// Zero-timeout check for queued events (the boot drain test).
    fn event_pending(&self) -> bool {
        if self.source.has_buffered() {
            return true;
        }
        crate::clients::poll_now(self.source.fd(), PollFlags::POLLIN).contains(PollFlags::POLLIN)
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
        let decided = record::decide(
            &self.engine,
            &raw,
            &opts,
            &media::SystemMedia,
            self.shell.quoting,
        );
        let (kind, matched) = match decided {
            Outcome::Malformed(e) => {
                self.counters.events.malformed += 1;
                self.log.warning(&format!("Skipping event '{text}': {e}"));
                return;
            }
            Outcome::Unmatched(kind) => (kind, None),
            Outcome::Matched {
                kind,
                place,
                actions,
            } => (kind, Some((place, actions))),
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
        let Some((place, actions)) = matched else {
            return;
        };
        self.counters.events_matched += 1;
        for cmd in actions {
            let cmd = match cmd {
                Ok(cmd) => cmd,
                Err(why) => {
                    self.counters.actions_refused += 1;
                    self.log.err(&format!(
                        "rule at {place}: action not run: {why} (event '{}')",
                        text.escape_debug()
                    ));
                    continue;
                }
            };
            let shown = String::from_utf8_lossy(&cmd).into_owned();
            self.log.info(&format!("Executing '{shown}'"));
            let out = action::run(&self.shell.path, &cmd, self.timeout);
            self.counters.actions_run += 1;
            self.counters.action_time_ms += out.elapsed.as_millis() as u64;
            if out.failed() {
                self.counters.actions_failed += 1;
            }
            if out.timed_out {
                self.counters.actions_timed_out += 1;
                self.log.warning(&format!(
                    "action exceeded its {:.3}s limit after {:.3}s and was killed with its process group ({}): '{shown}'",
                    self.timeout.unwrap_or_default().as_secs_f64(),
                    out.elapsed.as_secs_f64(),
                    out.describe()
                ));
            } else if out.status.is_none() {
                self.log
                    .err(&format!("action {}: '{shown}'", out.describe()));
            }
        }
    }
}
