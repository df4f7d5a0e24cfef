//! A guest agent (the VF manager) with the FreeBSD backend against the simulator's FreeBSD
//! userland, in deterministic virtual time (`hvnet simulate NAME --agent freebsd`).
//!
//! In process, the manager acts on the simulated kernel through [`hvnet_sim::SimBackend`].
//! Here the same agent runs over [`hvnet_freebsd::FreeBsdBackend`]: every observation and
//! every change is a real command (`ifconfig`, `sysctl`, `netstat -rn`, `ps`, `pgrep`,
//! `route`, `dhclient`, `kill`, the helper daemons) built by the backend, resolved through
//! `PATH` to the wrappers of a throw-away [`Root`] (the [`crate::harness`]), run as a process,
//! answered by the simulator's userland ([`hvnet_sim::guestcmd`]), and parsed back by the
//! backend's parsers.
//! pid files and device nodes are files under `ROOT/fs` that mirror the simulated guest
//! (what dhclient and devfs would have written), read through the backend's file root.
//! devctl lines reach the manager exactly as the simulator's devd delivers them to any agent
//! (boot buffering, injected devctl faults included).
//!
//! Determinism, as in `hvnet compare --original real`: one program runs at a time and the
//! driver serves its commands while it runs; virtual time moves only when the manager is idle,
//! to the next simulator event or the manager's own wake-up. A burst of devctl lines at one
//! instant is one step (the daemon coalesces bursts the same way), so a run depends only on
//! the scenario and the seed. A step's commands all run at one virtual instant and the step
//! is judged on the state it leaves ([`Sim::command_in_step`]), as the in-process manager's
//! operations are; in both, the traffic meets every state between two changes (each command
//! or op that changes the guest takes the simulator's command time), so a moment where an
//! address is on no interface costs packets in either.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::rc::Rc;
use std::time::{Duration, Instant};

use hvnet_freebsd::{Command, CommandRunner, FreeBsdBackend, Output, RunError, SystemRunner};
use hvnet_sim::{
    AgentContext, AgentFactory, GuestAgent, RunOptions, RunResult, Scenario, Sim, World,
};
use hvnet_vf::Backend;

use crate::harness::{ClientCommand, HarnessError, Move, Response, Root, Server};

/// The commands the wrappers in `ROOT/bin` serve: everything the FreeBSD backend runs.
pub const COMMANDS: &[&str] = &[
    "ifconfig",
    "sysctl",
    "netstat",
    "route",
    "dhclient",
    "ps",
    "pgrep",
    "kill",
    "hv_kvp_daemon",
    "hv_vss_daemon",
];

/// Steps at one virtual instant before the run is declared looping.
const MAX_STEPS_PER_INSTANT: usize = 200;

/// A command that neither asks the simulator anything nor exits for this long (wall time)
/// is taken as hung.
const HUNG: Duration = Duration::from_secs(30);

/// What the simulator told the stand-in agent since the driver last looked.
#[derive(Default)]
struct Mailbox {
    /// Contexts of (re)starts, in order.
    starts: Vec<AgentContext>,
    /// devctl lines as devd delivered them.
    lines: Vec<String>,
}

/// The simulator's agent slot: it only records what devd delivers; the manager runs in the
/// driver, outside the simulator's callbacks, so it can run processes the driver serves.
struct Stand(Rc<RefCell<Mailbox>>);

impl GuestAgent for Stand {
    fn name(&self) -> &str {
        "hvnet (freebsd backend)"
    }

    fn on_devctl(&mut self, _now: Duration, line: &str, _backend: &mut dyn Backend) {
        self.0.borrow_mut().lines.push(line.to_string());
    }

    fn on_timer(&mut self, _now: Duration, _backend: &mut dyn Backend) {}

    fn next_wakeup(&self) -> Option<Duration> {
        None
    }
}

/// Why a run with the FreeBSD backend stopped short.
#[derive(Debug, thiserror::Error)]
pub enum GuestError {
    #[error(transparent)]
    Harness(#[from] HarnessError),
    #[error("the manager stepped {MAX_STEPS_PER_INSTANT} times at {:.3}s without settling", .at.as_secs_f64())]
    NotSettling { at: Duration },
    #[error(transparent)]
    Devd(#[from] hvnet_devd_daemon::clients::SocketError),
    #[error("the run's summary")]
    Summary(#[source] serde_json::Error),
}

/// A fresh root for a run: the wrappers for [`COMMANDS`], `fs/` for the guest's files.
fn guest_root(root: Root, client: &ClientCommand) -> Result<Root, HarnessError> {
    root.install_wrappers(client, COMMANDS)?;
    root.mkdir(FS)?;
    Ok(root)
}

/// The guest's file tree in the root (the backend's file root).
const FS: &str = "fs";

/// Write the guest's files under the root's `fs/` (see [`guest_files`]); `written` is what
/// is there. Only plain paths (no `..`) are mirrored.
fn mirror(
    root: &Root,
    want: BTreeMap<PathBuf, String>,
    written: &mut BTreeMap<PathBuf, String>,
) -> Result<(), HarnessError> {
    if want == *written {
        return Ok(());
    }
    let host = |p: &Path| -> Option<PathBuf> {
        let rel = p.strip_prefix("/").unwrap_or(p);
        rel.components()
            .all(|c| matches!(c, std::path::Component::Normal(_)))
            .then(|| Path::new(FS).join(rel))
    };
    for p in written.keys().filter(|p| !want.contains_key(*p)) {
        if let Some(h) = host(p) {
            let _ = std::fs::remove_file(root.path(h));
        }
    }
    for (p, text) in &want {
        if written.get(p) != Some(text) {
            if let Some(h) = host(p) {
                root.write(h, text, 0o644)?;
            }
        }
    }
    *written = want;
    Ok(())
}

/// The files of the simulated guest the backend reads ([`hvnet_sim::guestcmd::files`]).
pub fn guest_files(w: &World) -> BTreeMap<PathBuf, String> {
    hvnet_sim::guestcmd::files(w)
        .into_iter()
        .map(|(p, text)| (PathBuf::from(p), text))
        .collect()
}

/// Runs the backend's commands as processes (found through `PATH`, wrappers first) and
/// answers what they ask the simulator while they run.
struct SimRunner {
    sim: Rc<RefCell<Sim>>,
    root: Root,
    server: Server,
    files: SystemRunner,
    /// Files written under the file root, with their contents.
    written: BTreeMap<PathBuf, String>,
    /// Commands run so far.
    commands: u64,
}

impl SimRunner {
    fn new(sim: Rc<RefCell<Sim>>, root: Root) -> Result<SimRunner, HarnessError> {
        let server = root.listen()?;
        let files = SystemRunner {
            path_lookup: true,
            file_root: Some(root.path(FS)),
        };
        Ok(SimRunner {
            sim,
            root,
            server,
            files,
            written: BTreeMap::new(),
            commands: 0,
        })
    }

    /// Mirror the guest's pid files and device nodes under the file root.
    fn sync_files(&mut self) -> Result<(), RunError> {
        let want = guest_files(self.sim.borrow().world());
        mirror(&self.root, want, &mut self.written).map_err(|e| RunError {
            command: "mirror the guest's files".into(),
            reason: error_chain(&e),
        })
    }
}

/// An error and its sources on one line (a [`RunError`] keeps only text).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(&format!(": {c}"));
        cur = c.source();
    }
    s
}

impl CommandRunner for SimRunner {
    fn run(&mut self, cmd: &Command) -> Result<Output, RunError> {
        let fail = |reason: String| RunError {
            command: cmd.to_string(),
            reason,
        };
        self.commands += 1;
        // By file name through PATH, as SystemRunner::with_path_lookup does.
        let mut child = self
            .root
            .command(cmd.name())
            .args(&cmd.args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| fail(e.to_string()))?;
        let what = cmd.to_string();
        loop {
            match self.server.next_move(&mut child, &what, HUNG) {
                // Within the current step, as the in-process manager's ops are.
                Ok(Move::Request(p)) => {
                    let out = self.sim.borrow_mut().command_in_step(&p.request.argv);
                    p.answer(&Response::from(out));
                }
                Ok(Move::Exited(_)) => break,
                Err(e @ HarnessError::Hung { .. }) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(fail(e.to_string()));
                }
                Err(e) => return Err(fail(format!("serving: {}", error_chain(&e)))),
            }
        }
        let out = child.wait_with_output().map_err(|e| fail(e.to_string()))?;
        Ok(Output {
            status: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }

    fn exists(&mut self, path: &str) -> bool {
        self.sync_files().is_ok() && self.files.exists(path)
    }

    fn read_file(&mut self, path: &str) -> Result<Option<String>, RunError> {
        self.sync_files()?;
        self.files.read_file(path)
    }
}

/// Run scenario `sc` with the agent `agent` makes over the FreeBSD backend; `client` is how
/// the command wrappers reach this process (`hvnet simulate --client`). The timeline's last
/// agent line counts the agent's steps and the commands it ran.
pub fn run(
    sc: Scenario,
    opts: RunOptions,
    client: &ClientCommand,
    mut agent: AgentFactory,
) -> Result<RunResult, GuestError> {
    let root = guest_root(Root::temporary("hvnet-freebsd-sim")?, client)?;
    let mailbox = Rc::new(RefCell::new(Mailbox::default()));
    let factory: AgentFactory = {
        let mb = mailbox.clone();
        Box::new(move |ctx: &AgentContext| {
            mb.borrow_mut().starts.push(ctx.clone());
            Box::new(Stand(mb.clone()))
        })
    };
    let sim = Sim::new(sc, opts, factory, Vec::new()).map_err(HarnessError::from)?;
    let end = sim.end();
    let sim = Rc::new(RefCell::new(sim));
    let mut backend = FreeBsdBackend::new(SimRunner::new(sim.clone(), root)?);
    let mut manager: Option<Box<dyn GuestAgent>> = None;
    let mut wake: Option<Duration> = None;
    let mut steps = 0u64;
    let wall = Instant::now();
    loop {
        let now = sim.borrow().now();
        let mut rounds = 0;
        loop {
            let (starts, lines) = {
                let mut mb = mailbox.borrow_mut();
                (
                    std::mem::take(&mut mb.starts),
                    std::mem::take(&mut mb.lines),
                )
            };
            let due = wake.is_some_and(|w| w <= now);
            if starts.is_empty() && lines.is_empty() && !due {
                break;
            }
            rounds += 1;
            if rounds > MAX_STEPS_PER_INSTANT {
                return Err(GuestError::NotSettling { at: now });
            }
            // One step for everything pending (level-triggered: a line is only a wake-up).
            if let Some(ctx) = starts.last() {
                // A (re)start: a fresh agent; only its timers are lost.
                let mut m = agent(ctx);
                backend.rc = Some(ctx.rc());
                m.on_start(now, &mut backend);
                manager = Some(m);
            } else if let Some(m) = manager.as_mut() {
                match lines.last() {
                    Some(l) => m.on_devctl(now, l, &mut backend),
                    None => m.on_timer(now, &mut backend),
                }
            } else {
                // devd delivers nothing before the agent starts; nothing to do.
                wake = None;
                continue;
            }
            steps += 1;
            let m = manager.as_mut().expect("an agent");
            // As the simulator schedules agents: a wake-up in the past is 1 ms from now.
            wake = m
                .next_wakeup()
                .map(|w| w.max(now + Duration::from_millis(1)));
            let log = m.take_log();
            let mut s = sim.borrow_mut();
            // The step is judged on the state it left, as the in-process manager's ops are.
            s.end_step();
            for l in log {
                s.note("agent", l);
            }
        }
        let next = {
            let s = sim.borrow();
            match (s.next_event_at(), wake) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            }
        };
        match next {
            Some(t) if t <= end => sim.borrow_mut().advance_to(t.max(now)),
            _ => break,
        }
    }
    let commands = backend.runner.commands;
    // The runner holds the root: the wrappers, the socket and fs/ go with it.
    drop(backend);
    let mut sim = Rc::try_unwrap(sim)
        .ok()
        .expect("the runner, the only other owner, is gone")
        .into_inner();
    sim.advance_to(end);
    sim.note(
        "agent",
        format!("freebsd backend: {steps} manager steps, {commands} commands run as processes"),
    );
    Ok(sim.finish_at_end(wall.elapsed().as_secs_f64() * 1000.0))
}

/// The simulated guest for a real `hvnet run --backend freebsd` process, in scaled wall-clock
/// time (`hvnet simulate NAME --serve DIR --speed X`): virtual time is `clock` of the wall
/// time since the start (the wall clock times the speed); `DIR/bin` holds the command
/// wrappers (put it first on the daemon's PATH), `DIR/fs` the guest's pid files and /dev nodes
/// (the daemon's `[freebsd] root`), `DIR/devd.seqpacket.pipe` is devd's socket (every devctl
/// line as devd sends it, from the time rc starts devd), and `DIR/rc.conf` the scenario's
/// rc.conf. Ends at the scenario's end (or `stop` from a client); the summary also goes to
/// `DIR/summary.json`.
pub fn serve_realtime(
    dir: &Path,
    sc: Scenario,
    opts: RunOptions,
    clock: impl Fn(Duration) -> Duration,
    client: &ClientCommand,
) -> Result<RunResult, GuestError> {
    use hvnet_devd_daemon::clients::{Clients, Kind, Listener};
    let root = guest_root(Root::keep_at(dir)?, client)?;
    root.write("rc.conf", &sc.rc_conf, 0o644)?;
    let server = root.listen()?;
    let devd = Listener::create(root.dir(), Kind::SeqPacket, 8)?;
    let mut clients = Clients::default();
    let mailbox = Rc::new(RefCell::new(Mailbox::default()));
    let factory: AgentFactory = {
        let mb = mailbox.clone();
        Box::new(move |_ctx: &AgentContext| Box::new(Stand(mb.clone())))
    };
    let mut sim = Sim::new(sc, opts, factory, Vec::new()).map_err(HarnessError::from)?;
    // The daemon's commands take their own wall-clock time here.
    sim.set_command_time(Duration::ZERO);
    let end = sim.end();
    let mut written = BTreeMap::new();
    let wall = Instant::now();
    let mut stop = false;
    while !stop {
        while let Some(c) = devd.accept().map_err(HarnessError::Accept)? {
            clients.add(c);
        }
        loop {
            match server.try_next() {
                Ok(Some(p)) => {
                    let answer = if p.request.argv.first().map(String::as_str) == Some("stop") {
                        stop = true;
                        Response::default()
                    } else {
                        Response::from(sim.command(&p.request.argv))
                    };
                    p.answer(&answer);
                }
                Ok(None) => break,
                // One bad request is that program's problem, not the guest's.
                Err(HarnessError::Request(_) | HarnessError::Read(_)) => {}
                Err(HarnessError::ForeignClient { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let target = clock(wall.elapsed()).min(end);
        sim.advance_to(target.max(sim.now()));
        for line in std::mem::take(&mut mailbox.borrow_mut().lines) {
            clients.forward(format!("{line}\n").as_bytes());
        }
        mirror(&root, guest_files(sim.world()), &mut written)?;
        stop |= sim.now() >= end;
        std::thread::sleep(Duration::from_millis(2));
    }
    let r = sim.finish_at_end(wall.elapsed().as_secs_f64() * 1000.0);
    let summary = serde_json::to_string(&r.summary).map_err(GuestError::Summary)?;
    root.write("summary.json", format!("{summary}\n"), 0o644)?;
    Ok(r)
}
