//! The original system as real processes against the simulator.
//!
//! A throw-away test root holds the real scripts (`packaging/baseline/`: the seed's
//! `hyperv_vfattach` and the spec's `hyperv_vfup`, their absolute paths rewritten for the
//! root), minimal `rc.subr`/`network.subr` and a `service` for rc.d/dhclient, the scenario's
//! rc.conf, and `bin/` wrappers (`sysctl`, `ifconfig`, `dhclient`, `daemon`, `pkill`, `kill`,
//! `sleep`) that send each command to this process ([`crate::harness`]), which runs it on the
//! simulated guest.
//! devd is hvnet's devd engine over hyperv.conf and devd.conf's `IFNET LINK_UP` rule; each
//! action runs through a shell, and devd waits for it, as devd does.
//!
//! Determinism: the driver is a cooperative scheduler. Exactly one guest program runs at a
//! time (a devd action, or a process `daemon` started); the others wait in `sleep`, in a
//! foreground `dhclient` (which returns once the lease is bound, or after dhclient's 60 s
//! timeout), or in their queue. Virtual time advances only when every program waits, to the
//! next simulator event or wake-up. So a run depends only on the scenario and the seed, never
//! on how fast the processes are.

use std::collections::{BTreeMap, VecDeque};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hvnet_devd::Quoting;
use hvnet_freebsd::userland::{DevdRules, DHCLIENT_CONF, HYPERV_CONF};
use hvnet_sim::runner::Sim;
use hvnet_sim::{RunOptions, RunResult, Scenario};

use crate::compare::Side;
use crate::harness::{
    ClientCommand, HarnessError, Move, Pending, Response, Root, Server, TASK_ENV,
};
use crate::problems::Problem;
use crate::script_server::{sleep_duration, COMMANDS};

const HYPERV_VFATTACH: &str = include_str!("../../../packaging/baseline/hyperv_vfattach");
const HYPERV_VFUP: &str = include_str!("../../../packaging/baseline/hyperv_vfup");
const RC_SUBR: &str = include_str!("../../../packaging/baseline/rc.subr");
const NETWORK_SUBR: &str = include_str!("../../../packaging/baseline/network.subr");
const SERVICE: &str = include_str!("../../../packaging/baseline/service");

/// dhclient's default `timeout` (dhclient.conf(5)): a foreground dhclient without a lease
/// goes to the background after it.
const DHCLIENT_TIMEOUT: Duration = Duration::from_secs(60);

/// A program that runs this long in wall time without a command is taken as hung.
const HUNG: Duration = Duration::from_secs(60);

/// Why the original could not run.
#[derive(Debug, thiserror::Error)]
pub enum OriginalError {
    #[error(transparent)]
    Harness(#[from] HarnessError),
    #[error("{}: the test root's path must be plain (letters, digits, / . _ -)", .0.display())]
    RootPath(std::path::PathBuf),
    #[error("the devd rules")]
    Rules(#[source] hvnet_devd::ConfigError),
}

/// The guest root: the scripts, their configuration and the command wrappers.
fn guest_root(rc_conf: &str, client: &ClientCommand) -> Result<Root, OriginalError> {
    let root = Root::temporary("hvnet-compare")?;
    let d = root.dir().to_string_lossy();
    // The scripts' paths are rewritten into the root: nothing there may need quoting.
    if !d
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/._-".contains(&b))
    {
        return Err(OriginalError::RootPath(root.dir().to_path_buf()));
    }
    root.write("etc/rc.conf", rc_conf, 0o644)?;
    root.write("etc/defaults/rc.conf", hvnet_sim::agent::RC_DEFAULTS, 0o644)?;
    root.write("etc/rc.subr", rewrite(&root, RC_SUBR), 0o644)?;
    root.write("etc/network.subr", rewrite(&root, NETWORK_SUBR), 0o644)?;
    root.write(
        "usr/libexec/hyperv/hyperv_vfattach",
        rewrite(&root, HYPERV_VFATTACH),
        0o755,
    )?;
    root.write(
        "usr/libexec/hyperv/hyperv_vfup",
        rewrite(&root, HYPERV_VFUP),
        0o755,
    )?;
    root.mkdir("var/run")?;
    root.mkdir("log")?;
    root.write("bin/service", rewrite(&root, SERVICE), 0o755)?;
    root.install_wrappers(client, COMMANDS)?;
    Ok(root)
}

/// The scripts' absolute paths, moved under the root.
fn rewrite(root: &Root, text: &str) -> String {
    let d = root.dir().to_string_lossy();
    text.replace("/etc/", &format!("{d}/etc/"))
        .replace("/usr/libexec/hyperv/", &format!("{d}/usr/libexec/hyperv/"))
        .replace("/var/run/", &format!("{d}/var/run/"))
}

/// Why a waiting program waits.
#[derive(Debug, Clone, Copy)]
enum Wake {
    /// `sleep`: until this virtual time.
    At(Duration),
    /// A foreground `dhclient`: until client `pid` is bound or gone, or the deadline.
    Dhcp { pid: u32, deadline: Duration },
}

struct Task {
    child: Child,
    label: String,
    /// Waiting: why, and the request to answer when it wakes.
    waiting: Option<(Wake, Pending)>,
}

struct DevdAction {
    task: u32,
    action: String,
    started: Duration,
}

struct Scheduler {
    sim: Sim,
    root: Root,
    server: Server,
    shell: &'static str,
    rules: DevdRules,
    rc_at: Duration,
    tasks: BTreeMap<u32, Task>,
    next_id: u32,
    running: Option<u32>,
    ready: VecDeque<(u32, Pending)>,
    spawn_queue: VecDeque<Vec<String>>,
    devd_line: usize,
    devd_queue: VecDeque<String>,
    devd_current: Option<DevdAction>,
    problems: Vec<Problem>,
}

/// A shell that understands devd's `$'...'` quoting of expanded variables (FreeBSD's sh
/// does; dash does not, so Linux runs the actions with bash when sh cannot).
fn action_shell() -> &'static str {
    let ok = Command::new("sh")
        .args(["-c", "[ $'a' = a ]"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        "sh"
    } else {
        "bash"
    }
}

/// The agent's name in the summary and the compare row.
pub const AGENT: &str = "scripts (real processes)";

/// The original's side of a compare row: [`run`], judged as every side is.
pub fn side(sc: &Scenario, seed: u64, client: &ClientCommand) -> Result<Side, OriginalError> {
    let (r, extra) = run(sc.clone(), seed, client)?;
    Ok(Side::of_run(AGENT, &r, extra, &sc.rc_conf))
}

/// Run `sc` with the original scripts as real processes; `client` is how the command
/// wrappers reach this process (`hvnet compare --client`). Returns the run and the problems
/// only a real run shows (devd blocked by an action).
pub fn run(
    sc: Scenario,
    seed: u64,
    client: &ClientCommand,
) -> Result<(RunResult, Vec<Problem>), OriginalError> {
    let root = guest_root(&sc.rc_conf, client)?;
    let server = root.listen()?;
    let hyperv = rewrite(&root, HYPERV_CONF);
    let rules =
        DevdRules::from_files(&[("hyperv.conf", &hyperv), ("dhclient.conf", DHCLIENT_CONF)])
            .map_err(OriginalError::Rules)?;
    let rc_at = sc.rc_at;
    let opts = RunOptions {
        seed,
        ..Default::default()
    };
    let sim = Sim::new(sc, opts, hvnet_sim::no_agent(), Vec::new()).map_err(HarnessError::from)?;
    let mut h = Scheduler {
        sim,
        root,
        server,
        shell: action_shell(),
        rules,
        rc_at,
        tasks: BTreeMap::new(),
        next_id: 1,
        running: None,
        ready: VecDeque::new(),
        spawn_queue: VecDeque::new(),
        devd_line: 0,
        devd_queue: VecDeque::new(),
        devd_current: None,
        problems: Vec::new(),
    };
    let wall = Instant::now();
    let result = h.main_loop();
    if let Some(d) = h.devd_current.take() {
        h.devd_waited(&d, true);
    }
    h.kill_all();
    result?;
    let Scheduler { sim, problems, .. } = h;
    let mut r = sim.finish_at_end(wall.elapsed().as_secs_f64() * 1000.0);
    r.summary.agent = AGENT.into();
    Ok((r, problems))
}

impl Scheduler {
    fn main_loop(&mut self) -> Result<(), HarnessError> {
        loop {
            if let Some(id) = self.running {
                self.step(id)?;
                continue;
            }
            if let Some((id, pending)) = self.ready.pop_front() {
                pending.answer(&Response::default());
                self.running = Some(id);
                continue;
            }
            if let Some(argv) = self.spawn_queue.pop_front() {
                let label = format!("daemon: {}", argv.join(" "));
                let shown = label.replace(&*self.root.dir().to_string_lossy(), "");
                self.sim.note("agent", shown);
                let mut cmd = Command::new(&argv[0]);
                cmd.args(&argv[1..]);
                self.spawn(cmd, label)?;
                continue;
            }
            if self.devd_current.is_none() {
                if let Some(action) = self.devd_queue.pop_front() {
                    let shown = action.replace(&*self.root.dir().to_string_lossy(), "");
                    self.sim.note("agent", format!("devd: {shown}"));
                    let mut cmd = Command::new(self.shell);
                    cmd.args(["-c", &action]);
                    let id = self.spawn(cmd, format!("devd: {action}"))?;
                    self.devd_current = Some(DevdAction {
                        task: id,
                        action,
                        started: self.sim.now(),
                    });
                    continue;
                }
                let log_len = self.sim.devctl_log().len();
                if self.sim.now() >= self.rc_at && self.devd_line < log_len {
                    let line = self.sim.devctl_log()[self.devd_line].1.clone();
                    self.devd_line += 1;
                    let media = hvnet_sim::guestcmd::media(self.sim.world());
                    for action in self.rules.commands(&line, &media, Quoting::Shell) {
                        match action {
                            Ok(a) => self.devd_queue.push_back(a),
                            Err(why) => self
                                .sim
                                .note("agent", format!("devd: action not run: {why}")),
                        }
                    }
                    continue;
                }
            }
            if self.wake_waiters() {
                continue;
            }
            // Every program waits: advance virtual time.
            let wake = self
                .tasks
                .values()
                .filter_map(|t| t.waiting.as_ref())
                .map(|(w, _)| match *w {
                    Wake::At(t) => t,
                    Wake::Dhcp { deadline, .. } => deadline,
                })
                .min();
            let next = match (self.sim.next_event_at(), wake) {
                (Some(a), Some(b)) => a.min(b),
                (a, b) => match a.or(b) {
                    Some(t) => t,
                    None => break,
                },
            };
            if next > self.sim.end() {
                break;
            }
            self.sim.advance_to(next.max(self.sim.now()));
        }
        let end = self.sim.end();
        self.sim.advance_to(end);
        Ok(())
    }

    /// Move programs whose wait is over to the ready queue (earliest first). True if any.
    fn wake_waiters(&mut self) -> bool {
        let now = self.sim.now();
        let world = self.sim.world();
        let mut due: Vec<(Duration, u32)> = Vec::new();
        for (id, t) in &self.tasks {
            let Some((w, _)) = &t.waiting else { continue };
            match *w {
                Wake::At(at) if at <= now => due.push((at, *id)),
                Wake::Dhcp { pid, deadline } => {
                    let done = world.dhclients.get(&pid).is_none_or(|c| c.bound.is_some());
                    if done || deadline <= now {
                        due.push((now, *id));
                    }
                }
                Wake::At(_) => {}
            }
        }
        due.sort();
        for (_, id) in &due {
            if let Some((_, stream)) = self.tasks.get_mut(id).and_then(|t| t.waiting.take()) {
                self.ready.push_back((*id, stream));
            }
        }
        !due.is_empty()
    }

    fn spawn(&mut self, mut cmd: Command, label: String) -> Result<u32, HarnessError> {
        let id = self.next_id;
        self.next_id += 1;
        // In the root, which only we can write: a plain create cannot meet a planted link.
        let log = self.root.path(format!("log/task-{id}.out"));
        let out = std::fs::File::create(&log).map_err(HarnessError::io("creating", &log))?;
        let err = out
            .try_clone()
            .map_err(HarnessError::io("creating", &log))?;
        let child = cmd
            .env("PATH", self.root.path_env())
            .env(TASK_ENV, id.to_string())
            .current_dir(self.root.dir())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .spawn()
            .map_err(|source| HarnessError::Spawn {
                what: label.clone(),
                source,
            })?;
        self.tasks.insert(
            id,
            Task {
                child,
                label,
                waiting: None,
            },
        );
        self.running = Some(id);
        Ok(id)
    }

    /// Serve the running program until it sends one command or exits.
    fn step(&mut self, id: u32) -> Result<(), HarnessError> {
        let task = self.tasks.get_mut(&id).expect("running task");
        match self.server.next_move(&mut task.child, &task.label, HUNG)? {
            Move::Request(p) => self.request(id, p),
            Move::Exited(status) => {
                self.exited(id, status);
                Ok(())
            }
        }
    }

    /// A program ended: its output and a failing status go to the timeline.
    fn exited(&mut self, id: u32, status: std::process::ExitStatus) {
        let label = self.tasks.remove(&id).map(|t| t.label).unwrap_or_default();
        self.running = None;
        let root = self.root.dir().to_string_lossy().into_owned();
        let out = std::fs::read_to_string(self.root.path(format!("log/task-{id}.out")))
            .unwrap_or_default();
        for l in out.lines() {
            self.sim
                .note("agent", format!("  | {}", l.replace(&root, "")));
        }
        if !status.success() {
            let label = label.replace(&root, "");
            self.sim
                .note("agent", format!("  `{label}` exited: {status}"));
        }
        if self.devd_current.as_ref().is_some_and(|d| d.task == id) {
            let d = self.devd_current.take().expect("devd action");
            self.devd_waited(&d, false);
        }
    }

    /// devd ran `d` until now (or still runs it at the end): if events that came while it ran
    /// queued behind it for a while, that is a problem (spec hn.md §3.1: devd waits for each action).
    fn devd_waited(&mut self, d: &DevdAction, at_end: bool) {
        let now = self.sim.now();
        let queued: Vec<Duration> = self.sim.devctl_log()
            [self.devd_line.min(self.sim.devctl_log().len())..]
            .iter()
            .map(|(t, _)| *t)
            .filter(|t| *t >= d.started && *t < now)
            .collect();
        let Some(first) = queued.iter().min() else {
            return;
        };
        let action = d.action.replace(&*self.root.dir().to_string_lossy(), "");
        let detail = if at_end {
            format!(
                "devd still waits for `{action}` at the end (since {:.3}s); {} event(s) never handled",
                d.started.as_secs_f64(),
                queued.len()
            )
        } else {
            format!(
                "devd waited {:.3}s for `{action}` (from {:.3}s); {} event(s) delayed up to {:.3}s",
                (now - d.started).as_secs_f64(),
                d.started.as_secs_f64(),
                queued.len(),
                (now - *first).as_secs_f64()
            )
        };
        self.sim.note("agent", detail.clone());
        self.problems.push(Problem::new("devd-blocked", detail));
    }

    fn request(&mut self, running: u32, stream: Pending) -> Result<(), HarnessError> {
        let req = &stream.request;
        let id = if self.tasks.contains_key(&req.task) {
            req.task
        } else {
            running
        };
        let argv = req.argv.clone();
        let now = self.sim.now();
        match argv.first().map(String::as_str) {
            Some("sleep") => match sleep_duration(&argv) {
                Ok(d) => self.wait(id, Wake::At(now + d), stream),
                Err(usage) => stream.answer(&usage),
            },
            Some("daemon") => {
                // daemon(8): run the command detached; it returns at once.
                let Some(child) = hvnet_freebsd::cmd::daemon_command(&argv) else {
                    stream.answer(&Response::failed(
                        "usage: daemon [-f] command arguments ...\n",
                    ));
                    return Ok(());
                };
                self.spawn_queue.push_back(child.to_vec());
                stream.answer(&Response::default());
            }
            Some("dhclient") if !argv.iter().any(|a| a == "-b") => {
                // Foreground dhclient: returns once bound (or after its timeout).
                let iface = argv.iter().skip(1).find(|a| !a.starts_with('-')).cloned();
                let had = |sim: &Sim, i: &str| {
                    sim.world()
                        .dhclients
                        .iter()
                        .find(|(_, c)| c.iface == i)
                        .map(|(p, c)| (*p, c.bound.is_some()))
                };
                let before = iface.as_deref().and_then(|i| had(&self.sim, i));
                let out = self.sim.command(&argv);
                let after = iface.as_deref().and_then(|i| had(&self.sim, i));
                match (out.status, before, after) {
                    (0, None, Some((pid, false))) => {
                        let deadline = now + DHCLIENT_TIMEOUT;
                        self.wait(id, Wake::Dhcp { pid, deadline }, stream);
                    }
                    _ => stream.answer(&Response::from(out)),
                }
            }
            _ => {
                let out = self.sim.command(&argv);
                stream.answer(&Response::from(out));
            }
        }
        Ok(())
    }

    fn wait(&mut self, id: u32, why: Wake, stream: Pending) {
        if let Some(t) = self.tasks.get_mut(&id) {
            t.waiting = Some((why, stream));
        }
        if self.running == Some(id) {
            self.running = None;
        }
    }

    /// End of the run: stop every program still there (each runs in its own process group).
    fn kill_all(&mut self) {
        for (_, mut t) in std::mem::take(&mut self.tasks) {
            let pgid = nix::unistd::Pid::from_raw(i32::try_from(t.child.id()).unwrap_or(0));
            let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
            let _ = t.child.wait();
        }
        self.ready.clear();
    }
}
