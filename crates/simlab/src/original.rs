//! The original system as real processes against the simulator.
//!
//! A throw-away test root holds the real scripts (`packaging/baseline/`: the seed's
//! `hyperv_vfattach` and the spec's `hyperv_vfup`, their absolute paths rewritten for the
//! root), minimal `rc.subr`/`network.subr` and a `service` for rc.d/dhclient, the scenario's
//! rc.conf, and `bin/` wrappers (`sysctl`, `ifconfig`, `dhclient`, `daemon`, `pkill`, `kill`,
//! `sleep`) that send each command to this process, which runs it on the simulated guest.
//! devd is hvnet's devd engine over hyperv.conf and devd.conf's `IFNET LINK_UP` rule; each
//! action runs through a shell, and devd waits for it, as devd does.
//!
//! Determinism: the harness is a cooperative scheduler. Exactly one guest program runs at a
//! time (a devd action, or a process `daemon` started); the others wait in `sleep`, in a
//! foreground `dhclient` (which returns once the lease is bound, or after dhclient's 60 s
//! timeout), or in their queue. Virtual time advances only when every program waits, to the
//! next simulator event or wake-up. So a run depends only on the scenario and the seed, never
//! on how fast the processes are.

use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use hvnet_devd::Quoting;
use hvnet_freebsd::userland::{DevdRules, DHCLIENT_CONF, HYPERV_CONF};
use hvnet_sim::runner::Sim;
use hvnet_sim::{RunOptions, RunResult, Scenario};
use serde::{Deserialize, Serialize};

use hvnet_simlab::problems::Problem;

const HYPERV_VFATTACH: &str = include_str!("../../../../../packaging/baseline/hyperv_vfattach");
const HYPERV_VFUP: &str = include_str!("../../../../../packaging/baseline/hyperv_vfup");
const RC_SUBR: &str = include_str!("../../../../../packaging/baseline/rc.subr");
const NETWORK_SUBR: &str = include_str!("../../../../../packaging/baseline/network.subr");
const SERVICE: &str = include_str!("../../../../../packaging/baseline/service");

/// Commands the wrappers send to the simulator.
const COMMANDS: &[&str] = &[
    "sysctl", "ifconfig", "dhclient", "daemon", "pkill", "kill", "sleep",
];

/// The environment variable naming a guest program's task (inherited by its children).
const TASK_ENV: &str = "HVNET_COMPARE_TASK";

/// dhclient's default `timeout` (dhclient.conf(5)): a foreground dhclient without a lease
/// goes to the background after it.
const DHCLIENT_TIMEOUT: Duration = Duration::from_secs(60);

/// A program that runs this long in wall time without a command is taken as hung.
const HUNG: Duration = Duration::from_secs(60);

#[derive(Serialize, Deserialize)]
struct Request {
    task: u32,
    argv: Vec<String>,
}

#[derive(Serialize, Deserialize, Default)]
struct Response {
    status: i32,
    stdout: String,
    stderr: String,
}

/// A throw-away test root, removed on drop.
struct Root {
    dir: PathBuf,
}

impl Drop for Root {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn write(path: &Path, text: &str, mode: u32) -> anyhow::Result<()> {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("chmod {}", path.display()))
}

impl Root {
    fn new(rc_conf: &str) -> anyhow::Result<Root> {
        let dir = crate::scratch::fresh_temp_dir("hvnet-compare");
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
        let root = Root { dir };
        let d = root.dir.to_string_lossy().into_owned();
        if !d
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-".contains(&b))
        {
            bail!("{d}: the test root's path must be plain (letters, digits, / . _ -)");
        }
        let exe = std::env::current_exe().context("finding hvnet's own path")?;
        let exe = exe.to_string_lossy();
        if exe.contains('\'') {
            bail!("{exe}: paths with a single quote are not supported");
        }
        let p = |rel: &str| root.dir.join(rel);
        write(&p("etc/rc.conf"), rc_conf, 0o644)?;
        write(
            &p("etc/defaults/rc.conf"),
            hvnet_sim::agent::RC_DEFAULTS,
            0o644,
        )?;
        write(&p("etc/rc.subr"), &root.rewrite(RC_SUBR), 0o644)?;
        write(&p("etc/network.subr"), &root.rewrite(NETWORK_SUBR), 0o644)?;
        write(
            &p("usr/libexec/hyperv/hyperv_vfattach"),
            &root.rewrite(HYPERV_VFATTACH),
            0o755,
        )?;
        write(
            &p("usr/libexec/hyperv/hyperv_vfup"),
            &root.rewrite(HYPERV_VFUP),
            0o755,
        )?;
        std::fs::create_dir_all(p("var/run"))?;
        std::fs::create_dir_all(p("log"))?;
        write(&p("bin/service"), &root.rewrite(SERVICE), 0o755)?;
        for c in COMMANDS {
            let text = format!("#!/bin/sh\nexec '{exe}' compare --client '{d}' -- {c} \"$@\"\n");
            write(&p(&format!("bin/{c}")), &text, 0o755)?;
        }
        Ok(root)
    }

    /// The scripts' absolute paths, moved under the root.
    fn rewrite(&self, text: &str) -> String {
        let d = self.dir.to_string_lossy();
        text.replace("/etc/", &format!("{d}/etc/"))
            .replace("/usr/libexec/hyperv/", &format!("{d}/usr/libexec/hyperv/"))
            .replace("/var/run/", &format!("{d}/var/run/"))
    }

    fn path_env(&self) -> String {
        format!(
            "{}/bin:{}",
            self.dir.display(),
            std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into())
        )
    }
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
    /// Waiting: why, and the connection to answer when it wakes.
    waiting: Option<(Wake, UnixStream)>,
}

struct DevdAction {
    task: u32,
    action: String,
    started: Duration,
}

struct Harness {
    sim: Sim,
    root: Root,
    listener: UnixListener,
    shell: &'static str,
    rules: DevdRules,
    rc_at: Duration,
    tasks: BTreeMap<u32, Task>,
    next_id: u32,
    running: Option<u32>,
    ready: VecDeque<(u32, UnixStream)>,
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

/// Run `sc` with the original scripts as real processes. Returns the run and the problems
/// only a real run shows (devd blocked by an action).
pub fn run(sc: Scenario, seed: u64) -> anyhow::Result<(RunResult, Vec<Problem>)> {
    let root = Root::new(&sc.rc_conf)?;
    let sock = root.dir.join("sim.sock");
    let listener =
        UnixListener::bind(&sock).with_context(|| format!("binding {}", sock.display()))?;
    listener.set_nonblocking(true)?;
    let hyperv = root.rewrite(HYPERV_CONF);
    let rules =
        DevdRules::from_files(&[("hyperv.conf", &hyperv), ("dhclient.conf", DHCLIENT_CONF)])
            .context("the devd rules")?;
    let rc_at = sc.rc_at;
    let opts = RunOptions {
        seed,
        ..Default::default()
    };
    let sim = Sim::new(sc, opts, hvnet_sim::no_agent(), Vec::new()).map_err(anyhow::Error::msg)?;
    let mut h = Harness {
        sim,
        root,
        listener,
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
    let Harness { sim, problems, .. } = h;
    let mut r = sim.finish_at_end(wall.elapsed().as_secs_f64() * 1000.0);
    r.summary.agent = "scripts (real processes)".into();
    Ok((r, problems))
}

impl Harness {
    fn main_loop(&mut self) -> anyhow::Result<()> {
        loop {
            if let Some(id) = self.running {
                self.step(id)?;
                continue;
            }
            if let Some((id, stream)) = self.ready.pop_front() {
                answer(stream, &Response::default());
                self.running = Some(id);
                continue;
            }
            if let Some(argv) = self.spawn_queue.pop_front() {
                let label = format!("daemon: {}", argv.join(" "));
                let shown = label.replace(&*self.root.dir.to_string_lossy(), "");
                self.sim.note("agent", shown);
                let mut cmd = Command::new(&argv[0]);
                cmd.args(&argv[1..]);
                self.spawn(cmd, label)?;
                continue;
            }
            if self.devd_current.is_none() {
                if let Some(action) = self.devd_queue.pop_front() {
                    let shown = action.replace(&*self.root.dir.to_string_lossy(), "");
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

    fn spawn(&mut self, mut cmd: Command, label: String) -> anyhow::Result<u32> {
        let id = self.next_id;
        self.next_id += 1;
        let out = std::fs::File::create(self.root.dir.join(format!("log/task-{id}.out")))?;
        let err = out.try_clone()?;
        let child = cmd
            .env("PATH", self.root.path_env())
            .env(TASK_ENV, id.to_string())
            .current_dir(&self.root.dir)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting {label}"))?;
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
    fn step(&mut self, id: u32) -> anyhow::Result<()> {
        let t0 = Instant::now();
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => return self.request(id, stream),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e).context("accepting a guest command"),
            }
            let task = self.tasks.get_mut(&id).expect("running task");
            if let Some(status) = task.child.try_wait()? {
                self.exited(id, status);
                return Ok(());
            }
            if t0.elapsed() > HUNG {
                bail!("{}: no command and no exit for {HUNG:?}", task.label);
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    }

    /// A program ended: its output and a failing status go to the timeline.
    fn exited(&mut self, id: u32, status: std::process::ExitStatus) {
        let label = self.tasks.remove(&id).map(|t| t.label).unwrap_or_default();
        self.running = None;
        let root = self.root.dir.to_string_lossy().into_owned();
        let out = std::fs::read_to_string(self.root.dir.join(format!("log/task-{id}.out")))
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
        let action = d.action.replace(&*self.root.dir.to_string_lossy(), "");
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
        self.problems.push(Problem {
            kind: "devd-blocked",
            detail,
        });
    }

    fn request(&mut self, running: u32, stream: UnixStream) -> anyhow::Result<()> {
        stream.set_nonblocking(false)?;
        let mut line = String::new();
        BufReader::new(&stream).read_line(&mut line)?;
        let req: Request = serde_json::from_str(&line).context("a guest command request")?;
        let id = if self.tasks.contains_key(&req.task) {
            req.task
        } else {
            running
        };
        let argv = req.argv;
        let now = self.sim.now();
        match argv.first().map(String::as_str) {
            Some("sleep") => {
                let secs: f64 = argv.get(1).and_then(|s| s.parse().ok()).unwrap_or(-1.0);
                if !(0.0..1e9).contains(&secs) {
                    answer(
                        stream,
                        &Response {
                            status: 1,
                            stderr: "usage: sleep seconds\n".into(),
                            ..Default::default()
                        },
                    );
                    return Ok(());
                }
                self.wait(id, Wake::At(now + Duration::from_secs_f64(secs)), stream);
            }
            Some("daemon") => {
                // daemon(8): run the command detached; it returns at once.
                let Some(child) = hvnet_freebsd::cmd::daemon_command(&argv) else {
                    answer(
                        stream,
                        &Response {
                            status: 1,
                            stderr: "usage: daemon [-f] command arguments ...\n".into(),
                            ..Default::default()
                        },
                    );
                    return Ok(());
                };
                self.spawn_queue.push_back(child.to_vec());
                answer(stream, &Response::default());
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
                    _ => answer(stream, &reply(out)),
                }
            }
            _ => {
                let out = self.sim.command(&argv);
                answer(stream, &reply(out));
            }
        }
        Ok(())
    }

    fn wait(&mut self, id: u32, why: Wake, stream: UnixStream) {
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

fn reply(out: hvnet_sim::guestcmd::CmdOutput) -> Response {
    Response {
        status: out.status,
        stdout: out.stdout,
        stderr: out.stderr,
    }
}

fn answer(mut stream: UnixStream, r: &Response) {
    if let Ok(text) = serde_json::to_string(r) {
        let _ = writeln!(stream, "{text}");
    }
}

/// A wrapper's side: send the command to the harness and relay its answer.
pub fn client(root: &Path, argv: &[String]) -> anyhow::Result<ExitCode> {
    let sock = root.join("sim.sock");
    let mut s = UnixStream::connect(&sock)
        .with_context(|| format!("connecting to the harness at {}", sock.display()))?;
    hvnet_sys::peer::check_server(&s, &sock)?;
    let task = std::env::var(TASK_ENV)
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    let req = Request {
        task,
        argv: argv.to_vec(),
    };
    writeln!(s, "{}", serde_json::to_string(&req)?)?;
    let mut line = String::new();
    BufReader::new(&s).read_line(&mut line)?;
    let r: Response = serde_json::from_str(&line).context("the harness's answer")?;
    print!("{}", r.stdout);
    eprint!("{}", r.stderr);
    Ok(ExitCode::from(
        u8::try_from(r.status.clamp(0, 255)).unwrap_or(1),
    ))
}
