//! The VF manager with the FreeBSD backend against the simulator's FreeBSD userland, in
//! deterministic virtual time (`hvnet simulate NAME --agent freebsd`).
//!
//! The in-process manager ([`super::agent::ManagerAgent`]) acts on the simulated kernel
//! through [`hvnet_sim::SimBackend`]. Here the same manager runs over
//! [`hvnet_freebsd::FreeBsdBackend`]: every observation and every change is a real command
//! (`ifconfig`, `sysctl`, `netstat -rn`, `ps`, `pgrep`, `route`, `dhclient`, `kill`, the helper
//! daemons) built by the backend, resolved through `PATH` to wrappers in a throw-away root
//! (`ROOT/bin`, the `hvnet simulate --serve` client), run as a process, answered by the
//! simulator's userland ([`hvnet_sim::guestcmd`]), and parsed back by the backend's parsers.
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
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use hvnet_freebsd::{Command, CommandRunner, FreeBsdBackend, Output, RunError, SystemRunner};
use hvnet_sim::{
    AgentContext, AgentFactory, GuestAgent, RunOptions, RunResult, Scenario, Sim, World,
};
use hvnet_vf::Backend;
use serde_json::json;

use super::agent::ManagerAgent;

/// The agent name (`hvnet simulate --agent freebsd`).
pub const AGENT: &str = "freebsd";

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

/// The guest's root: `bin/` wrappers, `fs/` (pid files, /dev), the socket. A throw-away root
/// is removed on drop.
struct Root {
    dir: PathBuf,
    throw_away: bool,
}

impl Drop for Root {
    fn drop(&mut self) {
        if self.throw_away {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

impl Root {
    fn new(exe: &Path) -> anyhow::Result<Root> {
        let dir = crate::scratch::fresh_temp_dir("hvnet-freebsd-sim");
        Root::at(dir, true, exe)
    }

    fn at(dir: PathBuf, throw_away: bool, exe: &Path) -> anyhow::Result<Root> {
        std::fs::create_dir_all(dir.join("bin"))
            .with_context(|| format!("creating {}", dir.display()))?;
        std::fs::create_dir_all(dir.join("fs"))?;
        let root = Root { dir, throw_away };
        std::fs::set_permissions(&root.dir, std::fs::Permissions::from_mode(0o700))?;
        let (exe, d) = (exe.to_string_lossy(), root.dir.to_string_lossy());
        if exe.contains('\'') || d.contains('\'') {
            bail!("{exe}, {d}: paths with a single quote are not supported");
        }
        for c in COMMANDS {
            let p = root.dir.join("bin").join(c);
            let text = format!("#!/bin/sh\nexec '{exe}' simulate --client '{d}' -- {c} \"$@\"\n");
            std::fs::write(&p, text).with_context(|| format!("writing {}", p.display()))?;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755))?;
        }
        Ok(root)
    }
}

/// One request from a wrapper: `{"argv": [...]}` in, `{"status","stdout","stderr"}` out.
fn serve_one(
    stream: UnixStream,
    run: impl FnOnce(&[String]) -> hvnet_sim::guestcmd::CmdOutput,
) -> Result<(), String> {
    stream.set_nonblocking(false).map_err(|e| e.to_string())?;
    let mut line = String::new();
    BufReader::new(&stream)
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;
    let req: serde_json::Value = serde_json::from_str(&line).map_err(|e| e.to_string())?;
    let argv: Vec<String> = req["argv"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let out = run(&argv);
    let resp = json!({"status": out.status, "stdout": out.stdout, "stderr": out.stderr});
    writeln!(&stream, "{resp}").map_err(|e| e.to_string())
}

/// Write the guest's files under `fs` (see [`guest_files`]); `written` is what is there.
fn mirror(
    fs: &Path,
    want: BTreeMap<PathBuf, String>,
    written: &mut BTreeMap<PathBuf, String>,
) -> Result<(), RunError> {
    if want == *written {
        return Ok(());
    }
    let host = |p: &Path| fs.join(p.strip_prefix("/").unwrap_or(p));
    let err = |p: &Path, e: std::io::Error| RunError {
        command: format!("mirror {}", p.display()),
        reason: e.to_string(),
    };
    for p in written.keys().filter(|p| !want.contains_key(*p)) {
        let _ = std::fs::remove_file(host(p));
    }
    for (p, text) in &want {
        if written.get(p) != Some(text) {
            let h = host(p);
            if let Some(d) = h.parent() {
                std::fs::create_dir_all(d).map_err(|e| err(p, e))?;
            }
            std::fs::write(&h, text).map_err(|e| err(p, e))?;
        }
    }
    *written = want;
    Ok(())
}

/// The files of the simulated guest the backend reads ([`hvnet_sim::guestcmd::files`]).
fn guest_files(w: &World) -> BTreeMap<PathBuf, String> {
    hvnet_sim::guestcmd::files(w)
        .into_iter()
        .map(|(p, text)| (PathBuf::from(p), text))
        .collect()
}

/// Runs the backend's commands as processes (found through `PATH`, wrappers first) and
/// answers what they ask the simulator while they run.
pub struct SimRunner {
    sim: Rc<RefCell<Sim>>,
    listener: UnixListener,
    path: String,
    files: SystemRunner,
    /// Files written under the file root, with their contents.
    written: BTreeMap<PathBuf, String>,
    /// Commands run so far.
    pub commands: u64,
}

impl SimRunner {
    fn new(sim: Rc<RefCell<Sim>>, root: &Path) -> anyhow::Result<SimRunner> {
        let sock = root.join("sim.sock");
        let listener =
            UnixListener::bind(&sock).with_context(|| format!("binding {}", sock.display()))?;
        listener.set_nonblocking(true)?;
        Ok(SimRunner {
            sim,
            listener,
            path: format!(
                "{}:{}",
                root.join("bin").display(),
                std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into())
            ),
            files: SystemRunner {
                path_lookup: true,
                file_root: Some(root.join("fs")),
            },
            written: BTreeMap::new(),
            commands: 0,
        })
    }

    /// One request from a wrapper, run within the current step.
    fn serve(&mut self, stream: UnixStream) -> Result<(), String> {
        serve_one(stream, |argv| self.sim.borrow_mut().command_in_step(argv))
    }

    /// Mirror the guest's pid files and device nodes under the file root.
    fn sync_files(&mut self) -> Result<(), RunError> {
        let want = guest_files(self.sim.borrow().world());
        let fs = self.files.file_root.clone().unwrap_or_default();
        mirror(&fs, want, &mut self.written)
    }
}

impl CommandRunner for SimRunner {
    fn run(&mut self, cmd: &Command) -> Result<Output, RunError> {
        let fail = |reason: String| RunError {
            command: cmd.to_string(),
            reason,
        };
        self.commands += 1;
        // By file name through PATH, as SystemRunner::with_path_lookup does.
        let mut child = std::process::Command::new(cmd.name())
            .args(&cmd.args)
            .env("PATH", &self.path)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| fail(e.to_string()))?;
        let t0 = Instant::now();
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    self.serve(stream)
                        .map_err(|e| fail(format!("serving: {e}")))?;
                    continue;
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(fail(format!("accepting: {e}"))),
            }
            if child.try_wait().map_err(|e| fail(e.to_string()))?.is_some() {
                break;
            }
            if t0.elapsed() > HUNG {
                let _ = child.kill();
                let _ = child.wait();
                return Err(fail(format!("no request and no exit for {HUNG:?}")));
            }
            std::thread::sleep(Duration::from_micros(100));
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

/// Run scenario `sc` with the VF manager over the FreeBSD backend; `exe` is the hvnet binary
/// the command wrappers call (`hvnet simulate --client`). The timeline's last agent line
/// counts the manager's steps and the commands it ran.
pub fn run(sc: Scenario, opts: RunOptions, exe: &Path) -> anyhow::Result<RunResult> {
    let root = Root::new(exe)?;
    let mailbox = Rc::new(RefCell::new(Mailbox::default()));
    let factory: AgentFactory = {
        let mb = mailbox.clone();
        Box::new(move |ctx: &AgentContext| {
            mb.borrow_mut().starts.push(ctx.clone());
            Box::new(Stand(mb.clone()))
        })
    };
    let sim = Sim::new(sc, opts, factory, Vec::new()).map_err(anyhow::Error::msg)?;
    let end = sim.end();
    let sim = Rc::new(RefCell::new(sim));
    let mut backend = FreeBsdBackend::new(SimRunner::new(sim.clone(), &root.dir)?);
    let mut manager: Option<ManagerAgent> = None;
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
                bail!(
                    "the manager stepped {MAX_STEPS_PER_INSTANT} times at {:.3}s without settling",
                    now.as_secs_f64()
                );
            }
            // One step for everything pending (level-triggered: a line is only a wake-up).
            if let Some(ctx) = starts.last() {
                // A (re)start: a fresh manager; only its timers are lost.
                let mut m = ManagerAgent::new(ctx);
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
            let m = manager.as_mut().expect("a manager");
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
    drop(backend);
    let mut sim = Rc::try_unwrap(sim)
        .map_err(|_| anyhow::anyhow!("the simulator is still shared"))?
        .into_inner();
    sim.advance_to(end);
    sim.note(
        "agent",
        format!("freebsd backend: {steps} manager steps, {commands} commands run as processes"),
    );
    let r = sim.finish_at_end(wall.elapsed().as_secs_f64() * 1000.0);
    drop(root);
    Ok(r)
}

/// The simulated guest for a real `hvnet run --backend freebsd` process, in scaled wall-clock
/// time (`hvnet simulate NAME --serve DIR --speed X`): virtual time follows the wall clock
/// times `speed`; `DIR/bin` holds the command wrappers (put it first on the daemon's PATH),
/// `DIR/fs` the guest's pid files and /dev nodes (the daemon's `[freebsd] root`),
/// `DIR/devd.seqpacket.pipe` is devd's socket (every devctl line as devd sends it, from the
/// time rc starts devd), and `DIR/rc.conf` the scenario's rc.conf. Ends at the scenario's
/// end (or `stop` from a client); the summary also goes to `DIR/summary.json`.
pub fn serve_realtime(
    dir: &Path,
    sc: Scenario,
    opts: RunOptions,
    speed: f64,
    exe: &Path,
) -> anyhow::Result<RunResult> {
    use hvnet_devd_daemon::clients::{Clients, Kind, Listener};
    crate::limits::SPEED
        .check("--speed", speed)
        .map_err(anyhow::Error::msg)?;
    let root = Root::at(dir.to_path_buf(), false, exe)?;
    std::fs::set_permissions(&root.dir, std::fs::Permissions::from_mode(0o700))?;
    std::fs::write(root.dir.join("rc.conf"), &sc.rc_conf)?;
    let sock = root.dir.join("sim.sock");
    let _ = std::fs::remove_file(&sock);
    let listener =
        UnixListener::bind(&sock).with_context(|| format!("binding {}", sock.display()))?;
    listener.set_nonblocking(true)?;
    let devd = Listener::create(&root.dir, Kind::SeqPacket, 8)?;
    let mut clients = Clients::default();
    let mailbox = Rc::new(RefCell::new(Mailbox::default()));
    let factory: AgentFactory = {
        let mb = mailbox.clone();
        Box::new(move |_ctx: &AgentContext| Box::new(Stand(mb.clone())))
    };
    let mut sim = Sim::new(sc, opts, factory, Vec::new()).map_err(anyhow::Error::msg)?;
    // The daemon's commands take their own wall-clock time here.
    sim.set_command_time(Duration::ZERO);
    let end = sim.end();
    let fs = root.dir.join("fs");
    let mut written = BTreeMap::new();
    let wall = Instant::now();
    let mut stop = false;
    while !stop {
        while let Some(c) = devd.accept()? {
            clients.add(c);
        }
        loop {
            match listener.accept() {
                Ok((stream, _)) => {
                    let _ = serve_one(stream, |argv| {
                        if argv.first().map(String::as_str) == Some("stop") {
                            stop = true;
                            hvnet_sim::guestcmd::CmdOutput::default()
                        } else {
                            sim.command(argv)
                        }
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e).context("accepting a guest command"),
            }
        }
        let target = crate::limits::scale(wall.elapsed(), speed).min(end);
        sim.advance_to(target.max(sim.now()));
        for line in std::mem::take(&mut mailbox.borrow_mut().lines) {
            clients.forward(format!("{line}\n").as_bytes());
        }
        mirror(&fs, guest_files(sim.world()), &mut written).map_err(anyhow::Error::msg)?;
        stop |= sim.now() >= end;
        std::thread::sleep(Duration::from_millis(2));
    }
    let r = sim.finish_at_end(wall.elapsed().as_secs_f64() * 1000.0);
    std::fs::write(
        root.dir.join("summary.json"),
        format!("{}\n", serde_json::to_string(&r.summary)?),
    )?;
    let _ = std::fs::remove_file(&sock);
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hvnet_sim::{observe_world, VfOffer};
    use hvnet_vf::{AggregateProto, Daemon, IpNet, Mac, Op, Route, SystemView};

    const T0: Duration = Duration::ZERO;

    /// The simulator's userland in-process: what the wrappers would answer, without processes.
    struct WorldRunner {
        w: World,
    }

    impl CommandRunner for WorldRunner {
        fn run(&mut self, c: &Command) -> Result<Output, RunError> {
            let mut argv = vec![c.name().to_string()];
            argv.extend(c.args.iter().cloned());
            let out = hvnet_sim::guestcmd::run(&mut self.w, T0, &argv);
            Ok(Output {
                status: out.status,
                stdout: out.stdout,
                stderr: out.stderr,
            })
        }

        fn exists(&mut self, path: &str) -> bool {
            guest_files(&self.w).contains_key(Path::new(path))
        }

        fn read_file(&mut self, path: &str) -> Result<Option<String>, RunError> {
            Ok(guest_files(&self.w).remove(Path::new(path)))
        }
    }

    fn mac(last: u8) -> Mac {
        Mac([0x00, 0x15, 0x5d, 0, 0, last])
    }

    /// A non-transparent guest: hn0 with DHCP and a default route, a VF offered, the helper
    /// daemons' devices, the KVP daemon running.
    fn guest() -> World {
        let mut w = World::new(false);
        w.attach_loopback();
        w.host_add_nic("hn0", mac(1));
        w.attach_hn(T0, "hn0", mac(1)).unwrap();
        w.link_query_done(T0, "hn0");
        w.set_admin(T0, "hn0", true).unwrap();
        w.add_address(T0, "hn0", "10.0.0.4/24".parse().unwrap())
            .unwrap();
        w.add_address(T0, "hn0", "fd00::4/64".parse().unwrap())
            .unwrap();
        w.add_route(&Route {
            dest: IpNet::default_v4(),
            gateway: Some("10.0.0.1".parse().unwrap()),
            iface: None,
        })
        .unwrap();
        w.start_dhclient(T0, "hn0").unwrap();
        w.create_device("hv_kvp_dev");
        w.create_device("hv_fsvss_dev");
        w.host_offer_vf(T0, "hn0", &VfOffer::default()).unwrap();
        w.run_link_tasks(T0);
        w
    }

    /// The kernel's own routes for an address (`netstat -rn` lists them, the model does not
    /// keep them): its prefix on its interface, the address itself through lo0.
    fn kernels_own(v: &SystemView, r: &Route) -> bool {
        r.gateway.is_none()
            && v.interfaces.iter().any(|i| {
                i.addresses().any(|a| {
                    let on_lo = r.iface.as_deref() == Some("lo0") && r.dest.addr() == a.addr();
                    let prefix = r.iface.as_deref() == Some(i.name.as_str())
                        && r.dest.prefix() == a.prefix()
                        && format!("{}/{}", r.dest.addr(), r.dest.prefix())
                            == network_of(&a).to_string();
                    on_lo || prefix
                })
            })
    }

    fn network_of(a: &IpNet) -> IpNet {
        match a {
            IpNet::V4(n) => {
                let m = u32::MAX.checked_shl(32 - u32::from(n.prefix)).unwrap_or(0);
                IpNet::V4(hvnet_vf::Ipv4Net::new(
                    (u32::from(n.addr) & m).into(),
                    n.prefix,
                ))
            }
            IpNet::V6(n) => {
                let m = u128::MAX
                    .checked_shl(128 - u32::from(n.prefix))
                    .unwrap_or(0);
                IpNet::V6(hvnet_vf::Ipv6Net::new(
                    (u128::from(n.addr) & m).into(),
                    n.prefix,
                ))
            }
        }
    }

    /// Views compared as the manager uses them: interface ranks instead of kernel indexes;
    /// lo0 has no `status:` line on FreeBSD, so its link is not compared (unmanaged); the
    /// kernel's own address routes are left out.
    fn normalized(mut v: SystemView) -> SystemView {
        let own: Vec<Route> = v
            .routes
            .iter()
            .filter(|r| kernels_own(&v, r))
            .cloned()
            .collect();
        v.routes.retain(|r| !own.contains(r));
        for (rank, i) in v.interfaces.iter_mut().enumerate() {
            i.index = rank as u32 + 1;
            if i.kind == hvnet_vf::IfKind::Other {
                i.link_up = false;
            }
        }
        v.dhcp_clients.sort();
        v
    }

    fn assert_same_view(b: &mut FreeBsdBackend<WorldRunner>) {
        let through_commands = normalized(b.observe().unwrap());
        let kernel = normalized(observe_world(&b.runner.w));
        assert_eq!(through_commands, kernel);
    }

    #[test]
    fn the_backend_observes_through_the_simulators_commands_what_the_simulator_holds() {
        let mut b = FreeBsdBackend::new(WorldRunner { w: guest() });
        b.apply(&Op::StartDaemon {
            daemon: Daemon::Kvp,
        })
        .unwrap();
        assert_same_view(&mut b);
        let v = b.observe().unwrap();
        assert_eq!(
            v.platform.vf_map.get("mce0").map(String::as_str),
            Some("hn0")
        );
        assert_eq!(v.dhcp_clients.len(), 1);
        assert_eq!(v.daemons.len(), 1);
        let static_routes: Vec<&Route> = v.routes.iter().filter(|r| r.gateway.is_some()).collect();
        assert_eq!(static_routes.len(), 1);
        assert_eq!(static_routes[0].iface.as_deref(), Some("hn0"));
        // netstat also lists the kernel's routes for hn0's addresses.
        let own = |d: &str, i: &str| {
            v.routes
                .iter()
                .any(|r| r.dest.to_string() == d && r.iface.as_deref() == Some(i))
        };
        assert!(own("10.0.0.0/24", "hn0") && own("10.0.0.4/32", "lo0"));
        assert!(own("fd00::/64", "hn0") && own("fd00::4/128", "lo0"));
    }

    #[test]
    fn the_backends_commands_build_a_failover_lagg_in_the_simulator() {
        let mut b = FreeBsdBackend::new(WorldRunner { w: guest() });
        let pid = b.observe().unwrap().dhcp_clients[0].pid;
        let addr: IpNet = "10.0.0.4/24".parse().unwrap();
        let v6: IpNet = "fd00::4/64".parse().unwrap();
        let dflt = Route {
            dest: IpNet::default_v4(),
            gateway: Some("10.0.0.1".parse().unwrap()),
            iface: Some("lagg0".into()),
        };
        let ops = [
            Op::CreateAggregate {
                name: "lagg0".into(),
            },
            Op::SetAggregateProto {
                aggregate: "lagg0".into(),
                proto: AggregateProto::Failover,
            },
            Op::StopDhcp {
                iface: "hn0".into(),
                pid,
            },
            Op::RemoveRoute {
                route: Route {
                    iface: Some("hn0".into()),
                    ..dflt.clone()
                },
            },
            Op::RemoveAddress {
                iface: "hn0".into(),
                addr,
            },
            Op::RemoveAddress {
                iface: "hn0".into(),
                addr: v6,
            },
            Op::AddPort {
                aggregate: "lagg0".into(),
                port: "hn0".into(),
            },
            Op::SetAdmin {
                iface: "lagg0".into(),
                up: true,
            },
            Op::AddAddress {
                iface: "lagg0".into(),
                addr,
            },
            Op::AddAddress {
                iface: "lagg0".into(),
                addr: v6,
            },
            Op::AddRoute {
                route: dflt.clone(),
            },
            Op::AddPort {
                aggregate: "lagg0".into(),
                port: "mce0".into(),
            },
            Op::SetAdmin {
                iface: "mce0".into(),
                up: true,
            },
        ];
        for op in &ops {
            b.apply(op).unwrap_or_else(|e| panic!("{op}: {e}"));
            b.runner.w.run_link_tasks(T0);
            assert_same_view(&mut b);
        }
        // Every op is retry-safe through the commands too.
        for op in ops.iter().filter(|o| !matches!(o, Op::StopDhcp { .. })) {
            b.apply(op).unwrap_or_else(|e| panic!("again: {op}: {e}"));
        }
        let v = b.observe().unwrap();
        let lagg = v.interface("lagg0").unwrap();
        let agg = lagg.aggregate.as_ref().unwrap();
        assert_eq!(agg.ports, ["hn0", "mce0"]);
        assert_eq!(agg.primary.as_deref(), Some("hn0"));
        assert_eq!(agg.active.as_deref(), Some("mce0"));
        assert_eq!(lagg.ipv4.len(), 1);
        assert_eq!(normalized(v.clone()).routes, [dflt]);
        assert!(v.dhcp_clients.is_empty());
        assert_same_view(&mut b);
    }
}
