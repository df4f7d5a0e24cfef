//! The real-kernel lab: three network namespaces, a bridge as the virtual switch, a VM with
//! `hn0` and `vf0` sharing one MAC, a reactor in the VM namespace, numbered UDP streams
//! both ways and a TCP connection, through a planned switch, surprise removals, returns of
//! the VF and a VF that goes before its delay ends. Everything it builds is torn down
//! before [`run`] returns, also on error, panic or Ctrl-C.
//!
//! The reactor is, by default, hvnet's daemon as users run it: `hvnet run` with a generated
//! configuration (`backend = "linux"`, `mode = "steered"`), a child process in the VM
//! namespace; the lab asks its control socket for the status after every event. The
//! baseline is a shell pipeline on `ip monitor`. The planned switch reaches the daemon the
//! way it does in a Hyper-V guest: netvsc's `VF slot N removed` line in the kernel log
//! (see [`crate::kmsg`]), which the lab writes to /dev/kmsg.
//!
//! Timings come from an independent [`Monitor`] of the kernel's notifications (not from
//! the reactor): the kernel's notice of the VF going or becoming usable, and the redirect
//! filter on hn0 being removed or installed. Every traffic loop is bounded in count and time.
//!
//! Topology (addresses from 198.18.0.0/15, only inside the namespaces):
//!
//! ```text
//!  peer: eth0 198.18.0.1/24 ──┐
//!                  host: br0 ─┼─ hhn ── vm: hn0 198.18.0.2/24  (MAC M)
//!                             └─ hvf ── vm: vf0 (no address)    (MAC M)
//! ```

use crate::monitor::{Monitor, Notification};
use crate::netlink::Hook;
use crate::netns::{self, ip, Namespaces, NetnsError};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

type Worker<T> = JoinHandle<Result<T, String>>;

pub const PEER_IP: &str = "198.18.0.1";
pub const VM_IP: &str = "198.18.0.2";
pub const VM_MAC: &str = "02:48:56:00:00:02";
const UDP_TO_VM: u16 = 5001;
const UDP_TO_PEER: u16 = 5002;
const TCP_PORT: u16 = 5003;
/// How long the lab waits for any one kernel notification or reaction.
const REACTION_TIMEOUT: Duration = Duration::from_secs(3);
/// How long the lab waits for the daemon's status to show an event's outcome.
const STATUS_TIMEOUT: Duration = Duration::from_secs(3);

/// What reacts to the VF's comings and goings in the VM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reactor {
    /// hvnet's daemon, `PROGRAM run -c FILE` with the Linux backend in steered mode.
    Daemon { program: PathBuf },
    /// The baseline: `ip monitor link | while read ...` running `tc` commands, as a
    /// shell-script solution would (the planned switch runs `tc filter del`).
    Shell,
}

impl Reactor {
    pub fn name(&self) -> &'static str {
        match self {
            Reactor::Daemon { .. } => "hvnet",
            Reactor::Shell => "shell",
        }
    }
}

/// Lab settings.
#[derive(Debug, Clone)]
pub struct LabConfig {
    /// Packets per second in each direction.
    pub pps: u32,
    /// Quiet traffic time, spread between the events (the VF delays come on top).
    pub duration: Duration,
    /// Suffix that makes namespace names unique (e.g. the pid).
    pub tag: String,
    pub reactor: Reactor,
    /// The daemon's `vf_delay` (at least 2 s, as hvnet enforces).
    pub vf_delay: Duration,
}

/// Loss, timing and status of one phase.
#[derive(Debug, Clone, PartialEq)]
pub struct Phase {
    pub name: &'static str,
    /// Packets (both directions) sent during the phase's window that never arrived. The
    /// window runs from 50 ms before the lab acted to 300 ms after the outcome was seen.
    pub lost: u64,
    /// The longest time without an arriving packet, in either direction, in the window.
    pub gap_ms: f64,
    /// From the trigger to the kernel's notice that hn0's egress redirect was removed or
    /// installed, as seen by the independent monitor. The trigger: for `planned` the
    /// announcement; for a VF going, the kernel's first notice that it is not usable; for
    /// a VF arriving, the moment its delay allowed its use (the kernel's notice that it is
    /// usable, plus the reactor's delay). Negative when the reactor acted earlier. Moving
    /// off the VF, hvnet's gate closes before this (the filter removal waits for the
    /// kernel's RTNL lock): see `back_ms`.
    pub switch_ms: Option<f64>,
    /// From the trigger to traffic flowing on the new path, on the data path: the arrival
    /// at the peer of the first VM packet sent after the redirect was installed (onto the
    /// VF), or after the outage, i.e. after the last lost VM packet (onto hn0).
    pub back_ms: Option<f64>,
    /// What the kernel showed after the phase (redirect filters on hn0 egress).
    pub hn_egress_redirects: usize,
    /// Lost packets by direction: peer → vm and vm → peer.
    pub lost_to_vm: u64,
    pub lost_to_peer: u64,
    /// Of `lost`, the packets sent before the trigger (for a VF going: before the kernel's
    /// first notice, while it was already tearing the VF down): no reactor can save them.
    pub lost_before_trigger: u64,
    /// The daemon's status showed the expected outcome (`None` for the shell baseline).
    pub status_ok: Option<bool>,
    /// The daemon's status of hn0 as last seen in the phase.
    pub status: Option<String>,
}

/// The lab's result.
#[derive(Debug, Clone)]
pub struct LabReport {
    pub pps: u32,
    pub reactor: &'static str,
    pub vf_delay: Duration,
    pub phases: Vec<Phase>,
    /// The VF re-attach between the planned and the surprise phase (not a named phase).
    pub reattach: Phase,
    /// Packets lost outside every event's window (steady traffic, nothing happening).
    pub quiet_lost: u64,
    pub tcp_survived: bool,
    /// Why the TCP connection broke, if it did.
    pub tcp_error: Option<String>,
    pub tcp_rounds: u64,
    pub sent: u64,
    pub received: u64,
    /// Packets the kernel counted through hn0's egress redirect (to the VF), over the run.
    pub vf_redirected_pkts: u64,
    /// Whether the monitor thread ran with a real-time priority (prompt timestamps).
    pub monitor_realtime: bool,
}

/// The lab failed to run.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error("lab unavailable: {0}")]
    Unavailable(String),
    #[error("lab setup: {0}")]
    Setup(#[from] NetnsError),
    #[error("lab: {0}")]
    Run(String),
    #[error("lab: interrupted")]
    Interrupted,
}

/// The lab's namespaces and their names; dropping it tears everything down.
pub struct Topology {
    pub host: String,
    pub peer: String,
    pub vm: String,
    guard: Namespaces,
}

impl Topology {
    /// Build the namespaces, the bridge, the peer and the VM's hn0 (vf0 separately).
    pub fn build(tag: &str) -> Result<Topology, LabError> {
        netns::lab_available().map_err(LabError::Unavailable)?;
        let mut t = Topology {
            host: format!("hvlab-host-{tag}"),
            peer: format!("hvlab-peer-{tag}"),
            vm: format!("hvlab-vm-{tag}"),
            guard: Namespaces::new(),
        };
        for n in [t.host.clone(), t.peer.clone(), t.vm.clone()] {
            t.guard.add(&n)?;
            // Quiet namespaces: no IPv6 chatter in the counts.
            let _ = netns::run(
                "ip",
                &[
                    "netns",
                    "exec",
                    &n,
                    "sysctl",
                    "-qw",
                    "net.ipv6.conf.all.disable_ipv6=1",
                    "net.ipv6.conf.default.disable_ipv6=1",
                ],
            );
        }
        let (h, p, v) = (t.host.as_str(), t.peer.as_str(), t.vm.as_str());
        ip(Some(h), &["link", "add", "br0", "type", "bridge"])?;
        ip(Some(h), &["link", "set", "br0", "up"])?;
        ip(
            Some(h),
            &[
                "link", "add", "hpeer", "type", "veth", "peer", "name", "eth0", "netns", p,
            ],
        )?;
        ip(
            Some(h),
            &[
                "link", "add", "hhn", "type", "veth", "peer", "name", "hn0", "netns", v,
            ],
        )?;
        for port in ["hpeer", "hhn"] {
            ip(Some(h), &["link", "set", port, "master", "br0", "up"])?;
        }
        ip(
            Some(p),
            &["addr", "add", &format!("{PEER_IP}/24"), "dev", "eth0"],
        )?;
        ip(Some(p), &["link", "set", "eth0", "up"])?;
        ip(Some(v), &["link", "set", "hn0", "address", VM_MAC])?;
        ip(
            Some(v),
            &["addr", "add", &format!("{VM_IP}/24"), "dev", "hn0"],
        )?;
        ip(Some(v), &["link", "set", "hn0", "up"])?;
        Ok(t)
    }

    /// Plug a VF: vf0 in the VM (same MAC as hn0) and its switch port hvf, both up.
    pub fn add_vf(&self) -> Result<(), LabError> {
        let (h, v) = (self.host.as_str(), self.vm.as_str());
        // Born with the shared MAC, as a real VF is (a later change would make it a new VF).
        ip(
            Some(h),
            &[
                "link", "add", "hvf", "type", "veth", "peer", "name", "vf0", "address", VM_MAC,
                "netns", v,
            ],
        )?;
        ip(Some(h), &["link", "set", "hvf", "master", "br0", "up"])?;
        ip(Some(v), &["link", "set", "vf0", "up"])?;
        Ok(())
    }

    /// Pull the VF out of the VM without warning.
    pub fn remove_vf(&self) -> Result<(), LabError> {
        ip(Some(&self.vm), &["link", "del", "vf0"])?;
        Ok(())
    }

    /// Tear down now (also happens on drop).
    pub fn teardown(&mut self) {
        self.guard.teardown();
    }
}

/// Packet timestamps of one numbered stream.
struct Stream {
    sent: Vec<Option<Instant>>,
    recv: Vec<Option<Instant>>,
}

impl Stream {
    fn new(n: usize) -> Arc<Mutex<Stream>> {
        Arc::new(Mutex::new(Stream {
            sent: vec![None; n],
            recv: vec![None; n],
        }))
    }

    /// Lost packets and the longest arrival gap among packets sent in [from, to].
    fn window(&self, from: Instant, to: Instant) -> (u64, f64) {
        let mut lost = 0;
        let mut arrivals: Vec<Instant> = Vec::new();
        for (s, r) in self.sent.iter().zip(&self.recv) {
            let Some(s) = s else { continue };
            if *s < from || *s > to {
                continue;
            }
            match r {
                Some(r) => arrivals.push(*r),
                None => lost += 1,
            }
        }
        arrivals.sort();
        let gap = arrivals
            .windows(2)
            .map(|w| w[1].duration_since(w[0]).as_secs_f64() * 1e3)
            .fold(0.0, f64::max);
        (lost, gap)
    }

    /// Send times of the packets sent outside every window that never arrived.
    fn lost_outside(&self, windows: &[(Instant, Instant)]) -> Vec<Instant> {
        self.sent
            .iter()
            .zip(&self.recv)
            .filter_map(|(s, r)| match (s, r) {
                (Some(s), None) if !windows.iter().any(|(a, b)| s >= a && s <= b) => Some(*s),
                _ => None,
            })
            .collect()
    }

    /// Send times of the first and the last packet sent in [from, to] that never arrived.
    fn lost_span(&self, from: Instant, to: Instant) -> Option<(Instant, Instant)> {
        let mut lost = self
            .sent
            .iter()
            .zip(&self.recv)
            .filter_map(|(s, r)| match (s, r) {
                (Some(s), None) if *s >= from && *s <= to => Some(*s),
                _ => None,
            });
        let first = lost.next()?;
        Some((first, lost.next_back().unwrap_or(first)))
    }

    /// Arrival of the first packet sent at or after `t` that arrived.
    fn first_arrival_sent_after(&self, t: Instant) -> Option<Instant> {
        self.sent
            .iter()
            .zip(&self.recv)
            .find_map(|(s, r)| match (s, r) {
                (Some(s), Some(r)) if *s >= t => Some(*r),
                _ => None,
            })
    }
}

/// How long the receivers keep listening after the senders stopped.
const LAST_PACKETS: Duration = Duration::from_millis(200);

/// Sets the flag when dropped: every worker loop watching it ends, whatever path the lab
/// leaves by.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

fn spawn_in<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> JoinHandle<Result<T, String>> {
    let ns = ns.to_string();
    std::thread::spawn(move || {
        netns::enter(&ns).map_err(|e| e.to_string())?;
        f()
    })
}

/// Send `count` numbered datagrams at `pps`; gives up at `deadline` whatever the count.
fn udp_sender(
    ns: &str,
    to: SocketAddr,
    pps: u32,
    count: usize,
    deadline: Instant,
    stream: Arc<Mutex<Stream>>,
    stop: Arc<AtomicBool>,
) -> Worker<()> {
    spawn_in(ns, move || {
        let sock = UdpSocket::bind("0.0.0.0:0").map_err(|e| format!("udp bind: {e}"))?;
        let start = Instant::now();
        let period = Duration::from_secs_f64(1.0 / pps as f64);
        for seq in 0..count {
            let due = start + period * seq as u32;
            let now = Instant::now();
            if now > deadline || stop.load(Ordering::Relaxed) {
                break;
            }
            if due > now {
                std::thread::sleep(due - now);
            }
            let t = Instant::now();
            // A send error (e.g. ENOBUFS, no route for a moment) is a lost packet, not a failure.
            let _ = sock.send_to(&(seq as u64).to_be_bytes(), to);
            stream.lock().unwrap().sent[seq] = Some(t);
        }
        Ok(())
    })
}

/// Record arrivals until stopped or `deadline`.
fn udp_receiver(
    ns: &str,
    port: u16,
    deadline: Instant,
    stream: Arc<Mutex<Stream>>,
    stop: Arc<AtomicBool>,
) -> Worker<()> {
    spawn_in(ns, move || {
        let sock =
            UdpSocket::bind(("0.0.0.0", port)).map_err(|e| format!("udp bind {port}: {e}"))?;
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .map_err(|e| e.to_string())?;
        deep_receive_buffer(&sock);
        let mut buf = [0u8; 64];
        while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
            if let Ok(n) = sock.recv(&mut buf) {
                let t = Instant::now();
                if n == 8 {
                    let seq = u64::from_be_bytes(buf[..8].try_into().unwrap()) as usize;
                    let mut s = stream.lock().unwrap();
                    if seq < s.recv.len() && s.recv[seq].is_none() {
                        s.recv[seq] = Some(t);
                    }
                }
            }
        }
        Ok(())
    })
}

/// A receive buffer for about a second of traffic (SO_RCVBUFFORCE, root), so that the
/// receiving thread being descheduled on a loaded machine is not counted as a lost packet:
/// the lab measures the network path, not its own scheduling. Best effort.
fn deep_receive_buffer(sock: &UdpSocket) {
    let _ = nix::sys::socket::setsockopt(sock, nix::sys::socket::sockopt::RcvBufForce, &(32 << 20));
}

/// TCP echo in the VM; the peer writes a counter every 5 ms and checks each echo. Both ends
/// stop at `deadline` (or the stop flag); every blocking call has a timeout.
fn tcp_pair(
    vm: &str,
    peer: &str,
    deadline: Instant,
    stop: Arc<AtomicBool>,
) -> Result<(Worker<()>, Worker<u64>), LabError> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let server_stop = stop.clone();
    let server = spawn_in(vm, move || {
        let l = TcpListener::bind((VM_IP, TCP_PORT)).map_err(|e| format!("tcp listen: {e}"))?;
        l.set_nonblocking(true).map_err(|e| e.to_string())?;
        let _ = ready_tx.send(());
        let mut c = loop {
            match l.accept() {
                Ok((c, _)) => break c,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if server_stop.load(Ordering::Relaxed) || Instant::now() > deadline {
                        return Ok(());
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => return Err(format!("tcp accept: {e}")),
            }
        };
        c.set_nonblocking(false).map_err(|e| e.to_string())?;
        c.set_read_timeout(Some(Duration::from_secs(5)))
            .map_err(|e| e.to_string())?;
        let mut buf = [0u8; 256];
        while Instant::now() < deadline {
            let n = c
                .read(&mut buf)
                .map_err(|e| format!("tcp server read: {e}"))?;
            if n == 0 {
                return Ok(());
            }
            c.write_all(&buf[..n])
                .map_err(|e| format!("tcp server write: {e}"))?;
        }
        Ok(())
    });
    ready_rx
        .recv_timeout(Duration::from_secs(5))
        .map_err(|_| LabError::Run("TCP server did not start".into()))?;
    let client = spawn_in(peer, move || {
        let addr: SocketAddr = format!("{VM_IP}:{TCP_PORT}").parse().unwrap();
        let mut c = TcpStream::connect_timeout(&addr, Duration::from_secs(3))
            .map_err(|e| format!("tcp connect: {e}"))?;
        c.set_read_timeout(Some(Duration::from_secs(3)))
            .map_err(|e| e.to_string())?;
        c.set_write_timeout(Some(Duration::from_secs(3)))
            .map_err(|e| e.to_string())?;
        let mut rounds = 0u64;
        let mut buf = [0u8; 8];
        while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
            c.write_all(&rounds.to_be_bytes())
                .map_err(|e| format!("tcp write: {e}"))?;
            c.read_exact(&mut buf)
                .map_err(|e| format!("tcp read (round {rounds}): {e}"))?;
            if u64::from_be_bytes(buf) != rounds {
                return Err(format!("tcp echo mismatch at round {rounds}"));
            }
            rounds += 1;
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(rounds)
    });
    Ok((server, client))
}

/// The shell baseline: what a script around `ip monitor` does. Event text is only ever
/// matched by `case` patterns, never expanded into a command. `$1` is 1 when it starts
/// with the VF present (it installs the redirects first).
const SHELL_REACTOR: &str = r#"
steer_on() {
  tc qdisc add dev vf0 clsact 2>/dev/null
  tc filter replace dev vf0 ingress prio 49 handle 800::800 protocol all u32 match u32 0 0 action mirred ingress redirect dev hn0
  tc qdisc add dev hn0 clsact 2>/dev/null
  tc filter replace dev hn0 egress prio 49 handle 800::800 protocol all u32 match u32 0 0 action mirred egress redirect dev vf0
}
steer_off() {
  tc filter del dev hn0 egress 2>/dev/null
}
on=0
if [ "$1" = 1 ]; then steer_on; on=1; fi
ip monitor link | while IFS= read -r line; do
  case $line in
    *": vf0@"*|*": vf0:"*) ;;
    *) continue ;;
  esac
  case $line in
    Deleted*) usable=0 ;;
    *[\<,]UP[,\>]*LOWER_UP*|*LOWER_UP*[\<,]UP[,\>]*) usable=1 ;;
    *) usable=0 ;;
  esac
  if [ $usable = 1 ] && [ $on = 0 ]; then steer_on; on=1; fi
  if [ $usable = 0 ] && [ $on = 1 ]; then steer_off; on=0; fi
done
"#;

/// A scratch directory for the daemon's configuration, socket and log; removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Result<Scratch, LabError> {
        use std::os::unix::fs::DirBuilderExt;
        let dir = std::env::temp_dir().join(format!("hvnet-lab-{tag}"));
        // A fresh directory of our own (never one someone planted): create fails if it exists.
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(|e| LabError::Run(format!("creating {}: {e}", dir.display())))?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The daemon's configuration: the issue's, with the lab's names and paths.
fn daemon_config(socket: &Path, vf_delay: Duration) -> String {
    format!(
        "backend = \"linux\"\nmode = \"steered\"\ncontrol_socket = \"{}\"\nvf_delay = {}\n\
         [linux]\nsynthetic = [\"hn*\"]\nvf = [\"vf*\"]\n",
        socket.display(),
        vf_delay.as_secs_f64()
    )
}

/// A running reactor in the VM namespace; stopped on drop.
enum Running {
    Daemon {
        child: Child,
        socket: PathBuf,
        log: PathBuf,
        _scratch: Scratch,
    },
    Shell {
        child: Child,
        vm: String,
    },
}

impl Running {
    fn start(cfg: &LabConfig, vm: &str, interrupted: &AtomicBool) -> Result<Running, LabError> {
        use std::os::unix::process::CommandExt;
        match &cfg.reactor {
            Reactor::Daemon { program } => {
                let scratch = Scratch::new(&cfg.tag)?;
                let (conf, socket, log) = (
                    scratch.0.join("hvnet.conf"),
                    scratch.0.join("hvnet.sock"),
                    scratch.0.join("daemon.log"),
                );
                std::fs::write(&conf, daemon_config(&socket, cfg.vf_delay))
                    .map_err(|e| LabError::Run(format!("writing {}: {e}", conf.display())))?;
                let stderr = std::fs::File::create(&log)
                    .map_err(|e| LabError::Run(format!("creating {}: {e}", log.display())))?;
                let child = Command::new("ip")
                    .args(["netns", "exec", vm])
                    .arg(program)
                    .arg("run")
                    .arg("-c")
                    .arg(&conf)
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(stderr)
                    .process_group(0)
                    .spawn()
                    .map_err(|e| LabError::Run(format!("starting {}: {e}", program.display())))?;
                let running = Running::Daemon {
                    child,
                    socket,
                    log,
                    _scratch: scratch,
                };
                // Ready once its control socket answers.
                let end = Instant::now() + Duration::from_secs(10);
                while running.status().is_err() {
                    if interrupted.load(Ordering::Relaxed) {
                        return Err(LabError::Interrupted);
                    }
                    if Instant::now() > end {
                        return Err(LabError::Run(format!(
                            "the daemon did not answer on its control socket: {}",
                            running.log_tail(10)
                        )));
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                Ok(running)
            }
            Reactor::Shell => {
                let child = Command::new("ip")
                    .args([
                        "netns",
                        "exec",
                        vm,
                        "sh",
                        "-c",
                        SHELL_REACTOR,
                        "hvnet-lab-shell",
                        "1",
                    ])
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    // Its own process group, so the whole pipeline is stopped together.
                    .process_group(0)
                    .spawn()
                    .map_err(|e| LabError::Run(format!("starting the shell reactor: {e}")))?;
                Ok(Running::Shell {
                    child,
                    vm: vm.to_string(),
                })
            }
        }
    }

    /// The host announces that the VF goes: for the daemon, netvsc's kernel log line
    /// (what a Hyper-V guest sees); the shell baseline is told by removing its filter.
    fn planned_switch(&self, tag: &str) -> Result<(), LabError> {
        match self {
            Running::Daemon { .. } => {
                let line = crate::kmsg::netvsc_line(&format!("hvlab-{tag}"), "hn0", 1);
                std::fs::OpenOptions::new()
                    .write(true)
                    .open("/dev/kmsg")
                    .and_then(|mut f| f.write_all(line.as_bytes()))
                    .map_err(|e| LabError::Run(format!("writing /dev/kmsg: {e}")))
            }
            Running::Shell { vm, .. } => {
                netns::run("tc", &["-n", vm, "filter", "del", "dev", "hn0", "egress"])?;
                Ok(())
            }
        }
    }

    /// The daemon's report from its control socket (`status` request, one JSON line).
    fn status(&self) -> Result<serde_json::Value, String> {
        let Running::Daemon { socket, .. } = self else {
            return Err("no daemon".into());
        };
        let mut s = UnixStream::connect(socket).map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(Duration::from_secs(2)))
            .map_err(|e| e.to_string())?;
        s.write_all(b"status\n").map_err(|e| e.to_string())?;
        let mut line = String::new();
        BufReader::new(s)
            .read_line(&mut line)
            .map_err(|e| e.to_string())?;
        serde_json::from_str(&line).map_err(|e| format!("{e}: {line}"))
    }

    /// Wait (bounded) for the daemon's status of hn0 to match `want`; the last status seen,
    /// and whether it matched. `None` for the shell baseline.
    fn expect(&self, want: &Expect) -> Option<(bool, String)> {
        let Running::Daemon { .. } = self else {
            return None;
        };
        let end = Instant::now() + STATUS_TIMEOUT;
        loop {
            let (ok, seen) = match self.status() {
                Ok(r) => {
                    let seen = summary(&r);
                    (want.matches(&r), seen)
                }
                Err(e) => (false, format!("no status: {e}")),
            };
            if ok || Instant::now() > end {
                return Some((ok, seen));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The last `n` lines of the daemon's log.
    fn log_tail(&self, n: usize) -> String {
        match self {
            Running::Daemon { log, .. } => {
                let text = std::fs::read_to_string(log).unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                lines[lines.len().saturating_sub(n)..].join("\n")
            }
            Running::Shell { .. } => String::new(),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let (Running::Daemon { child, .. } | Running::Shell { child, .. }) = self;
        // The child leads its own process group (pgid = its pid).
        let group = nix::unistd::Pid::from_raw(child.id() as i32);
        let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGTERM);
        let end = Instant::now() + Duration::from_secs(5);
        while matches!(child.try_wait(), Ok(None)) && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// What the daemon's status must say about hn0 after an event.
#[derive(Debug, Clone, Copy)]
struct Expect {
    /// `hn` or `vf`.
    path: &'static str,
    /// `absent`, `ready`, `leaving`, ...
    vf_state: &'static str,
    /// The step after the event found nothing to do.
    converged: bool,
}

impl Expect {
    fn matches(&self, r: &serde_json::Value) -> bool {
        let Some(p) = hn0(r) else {
            return false;
        };
        p["path"] == self.path
            && p["vf_state"] == self.vf_state
            && p["problems"].as_array().is_some_and(|a| a.is_empty())
            && (!self.converged || r["converged"] == true)
            && r["errors"].as_array().is_some_and(|a| a.is_empty())
    }
}

fn hn0(r: &serde_json::Value) -> Option<&serde_json::Value> {
    r["pairs"]
        .as_array()?
        .iter()
        .find(|p| p["synthetic"] == "hn0")
}

/// `path=hn vf=vf0 vf_state=ready converged problems=[..]` for the report.
fn summary(r: &serde_json::Value) -> String {
    match hn0(r) {
        Some(p) => format!(
            "path={} vf={} vf_state={} converged={} problems={}",
            p["path"].as_str().unwrap_or("?"),
            p["vf"].as_str().unwrap_or("-"),
            p["vf_state"].as_str().unwrap_or("?"),
            r["converged"],
            p["problems"]
        ),
        None => "no pair hn0".into(),
    }
}

/// Resolve ARP both ways before counting, so the first packets are not queued behind it.
fn warm_up(topo: &Topology) -> Result<(), LabError> {
    let mut workers = Vec::new();
    for (ns, to) in [(&topo.peer, VM_IP), (&topo.vm, PEER_IP)] {
        let to: SocketAddr = format!("{to}:9").parse().unwrap();
        workers.push(spawn_in(ns, move || {
            let s = UdpSocket::bind("0.0.0.0:0").map_err(|e| e.to_string())?;
            s.send_to(b"warm", to)
                .map_err(|e| format!("warm-up send: {e}"))?;
            Ok(())
        }));
    }
    for w in workers {
        w.join()
            .map_err(|_| LabError::Run("warm-up panicked".into()))?
            .map_err(LabError::Run)?;
    }
    std::thread::sleep(Duration::from_millis(100));
    Ok(())
}

/// Sleep `d`, waking early (with an error) when interrupted.
fn pause(d: Duration, interrupted: &AtomicBool) -> Result<(), LabError> {
    let end = Instant::now() + d;
    loop {
        if interrupted.load(Ordering::Relaxed) {
            return Err(LabError::Interrupted);
        }
        let now = Instant::now();
        if now >= end {
            return Ok(());
        }
        std::thread::sleep((end - now).min(Duration::from_millis(10)));
    }
}

/// Count hvnet redirects on hn0's egress as the kernel reports them (via `tc`, independent
/// of hvnet's own netlink code).
pub fn hn_egress_redirects(vm: &str) -> usize {
    netns::run("tc", &["-n", vm, "filter", "show", "dev", "hn0", "egress"])
        .map(|s| s.matches("mirred").count())
        .unwrap_or(0)
}

/// Packets the kernel counted through the redirect actions on hn0's egress (`tc -s`).
pub fn hn_egress_redirected_pkts(vm: &str) -> u64 {
    hn_egress_redirected_pkts_on(vm, "hn0")
}

/// Packets the kernel counted through the mirred actions on `dev`'s egress in `ns`.
pub fn hn_egress_redirected_pkts_on(ns: &str, dev: &str) -> u64 {
    let out = netns::run(
        "tc",
        &["-s", "-n", ns, "filter", "show", "dev", dev, "egress"],
    )
    .unwrap_or_default();
    out.lines()
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            // " Sent 42 bytes 1 pkt (dropped 0, ...)"
            (w.first() == Some(&"Sent") && w.get(4).is_some_and(|p| p.starts_with("pkt")))
                .then(|| w.get(3)?.parse::<u64>().ok())
                .flatten()
        })
        .sum()
}

/// The interface index of `name` in namespace `ns` (from `ip -o link show`).
fn ifindex(ns: &str, name: &str) -> Result<u32, LabError> {
    let out = ip(Some(ns), &["-o", "link", "show", name])?;
    out.split(':')
        .next()
        .and_then(|n| n.trim().parse().ok())
        .ok_or_else(|| LabError::Run(format!("no ifindex for {name} in `{}`", out.trim())))
}

/// Run the lab. Tears the namespaces down before returning, whatever happens.
pub fn run(cfg: &LabConfig, interrupted: &AtomicBool) -> Result<LabReport, LabError> {
    let mut topo = Topology::build(&cfg.tag)?;
    let r = run_in(&topo, cfg, interrupted);
    topo.teardown();
    r
}

/// Where an event should move hn0's outgoing traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    Hn,
    Vf,
    /// Nowhere: the VF goes before it was ever used.
    Stay,
}

/// The kernel-side moments of one event, as the monitor saw them.
struct Event {
    name: &'static str,
    want: Want,
    /// When the lab acted (announced, plugged or pulled the VF).
    at: Instant,
    /// When the lab had seen the outcome (filters, status).
    end: Instant,
    /// What the reaction should follow (see [`Phase::switch_ms`]).
    trigger: Option<Instant>,
    /// The kernel's notice of hn0's egress redirect changing.
    filter: Option<Instant>,
    redirects: usize,
    status: Option<(bool, String)>,
}

fn is_vf(n: &Notification, usable: bool) -> bool {
    match n {
        Notification::Link {
            name, usable: u, ..
        } => name == "vf0" && *u == usable,
        Notification::LinkGone { name, .. } => name == "vf0" && !usable,
        Notification::Filter { .. } => false,
    }
}

fn vf_appeared(n: &Notification) -> bool {
    matches!(n, Notification::Link { name, .. } if name == "vf0")
}

fn is_hn_filter(n: &Notification, hn: u32, added: bool) -> bool {
    matches!(n, Notification::Filter { ifindex, hook: Some(Hook::Egress), added: a }
        if *ifindex == hn && *a == added)
}

fn run_in(
    topo: &Topology,
    cfg: &LabConfig,
    interrupted: &AtomicBool,
) -> Result<LabReport, LabError> {
    let pps = cfg.pps.max(1);
    let slice = (cfg.duration / 7).max(Duration::from_millis(500));
    let delay = match cfg.reactor {
        Reactor::Daemon { .. } => cfg.vf_delay.max(Duration::from_secs(2)),
        Reactor::Shell => Duration::ZERO,
    };
    // The traffic time the events take at most; streams are sized for it, and every worker
    // stops at a hard deadline beyond it.
    let budget = slice * 7 + (delay + REACTION_TIMEOUT + STATUS_TIMEOUT) * 4;
    let deadline = Instant::now() + budget + delay + Duration::from_secs(20);
    let hn = ifindex(&topo.vm, "hn0")?;
    let monitor = Monitor::start(&topo.vm, budget + delay + Duration::from_secs(40))
        .map_err(|e| LabError::Run(e.to_string()))?;
    let t = Instant::now();
    topo.add_vf()?;
    let reactor = Running::start(cfg, &topo.vm, interrupted)?;
    let end = Instant::now() + delay + Duration::from_secs(5);
    let mut steered = None;
    while steered.is_none() && Instant::now() < end {
        if interrupted.load(Ordering::Relaxed) {
            return Err(LabError::Interrupted);
        }
        steered = monitor.wait_for(t, Duration::from_millis(20), |n| is_hn_filter(n, hn, true));
    }
    steered.ok_or_else(|| {
        LabError::Run(format!(
            "{} reactor did not steer onto vf0 within {} s {}",
            cfg.reactor.name(),
            (delay + Duration::from_secs(5)).as_secs(),
            reactor.log_tail(10)
        ))
    })?;
    let steady = Expect {
        path: "vf",
        vf_state: "ready",
        converged: true,
    };
    if let Some((false, seen)) = reactor.expect(&steady) {
        return Err(LabError::Run(format!(
            "the daemon's status after steering onto vf0: {seen}"
        )));
    }

    warm_up(topo)?;
    let stop = Arc::new(AtomicBool::new(false));
    let _stop_guard = StopOnDrop(stop.clone());
    let count = (pps as f64 * budget.as_secs_f64()) as usize;
    let to_vm = Stream::new(count);
    let to_peer = Stream::new(count);
    // The receivers stop after the senders, once the last packets have landed: stopping
    // both together counted the packets still in flight as lost.
    let recv_stop = Arc::new(AtomicBool::new(false));
    let _recv_stop_guard = StopOnDrop(recv_stop.clone());
    let recv_deadline = deadline + LAST_PACKETS;
    let receivers = [
        udp_receiver(
            &topo.vm,
            UDP_TO_VM,
            recv_deadline,
            to_vm.clone(),
            recv_stop.clone(),
        ),
        udp_receiver(
            &topo.peer,
            UDP_TO_PEER,
            recv_deadline,
            to_peer.clone(),
            recv_stop.clone(),
        ),
    ];
    let (tcp_server, tcp_client) = tcp_pair(&topo.vm, &topo.peer, deadline, stop.clone())?;
    std::thread::sleep(Duration::from_millis(50));
    let senders = [
        udp_sender(
            &topo.peer,
            format!("{VM_IP}:{UDP_TO_VM}").parse().unwrap(),
            pps,
            count,
            deadline,
            to_vm.clone(),
            stop.clone(),
        ),
        udp_sender(
            &topo.vm,
            format!("{PEER_IP}:{UDP_TO_PEER}").parse().unwrap(),
            pps,
            count,
            deadline,
            to_peer.clone(),
            stop.clone(),
        ),
    ];

    let mut events: Vec<Event> = Vec::new();
    let gone = Expect {
        path: "hn",
        vf_state: "absent",
        converged: true,
    };

    // 1. planned: the host announces, the reactor moves traffic to hn0, then the VF goes.
    pause(slice, interrupted)?;
    // The kernel's count of packets through the redirect to the VF, read before each VF
    // goes (the counter goes with the filter).
    let mut vf_redirected_pkts = hn_egress_redirected_pkts(&topo.vm);
    let at = Instant::now();
    reactor.planned_switch(&cfg.tag)?;
    let filter = monitor.wait_for(at, REACTION_TIMEOUT, |x| is_hn_filter(x, hn, false));
    let status = reactor.expect(&Expect {
        path: "hn",
        vf_state: "leaving",
        converged: true,
    });
    let redirects = hn_egress_redirects(&topo.vm);
    std::thread::sleep(Duration::from_millis(20));
    topo.remove_vf()?;
    monitor.wait_for(
        at,
        REACTION_TIMEOUT,
        |x| matches!(x, Notification::LinkGone { name, .. } if name == "vf0"),
    );
    events.push(Event {
        name: "planned",
        want: Want::Hn,
        at,
        end: Instant::now(),
        trigger: Some(at),
        filter,
        redirects,
        status,
    });

    // The VF comes back (so that the surprise has a VF to lose), goes without warning,
    // returns, and goes again.
    for (name, plug) in [
        ("reattach", true),
        ("surprise", false),
        ("return", true),
        ("surprise_again", false),
    ] {
        pause(slice, interrupted)?;
        if !plug {
            vf_redirected_pkts += hn_egress_redirected_pkts(&topo.vm);
        }
        let at = Instant::now();
        if plug {
            topo.add_vf()?;
        } else {
            topo.remove_vf()?;
        }
        // The filter change is looked for from the lab's action on, not from the kernel's
        // notice: a reactor that acts on an earlier sign (the shell on link flags, before
        // the kernel reports the VF's operational state up) shows a negative switch time.
        let trigger = if plug && !delay.is_zero() {
            // The daemon's delay runs from the VF's first appearance.
            monitor
                .wait_for(at, REACTION_TIMEOUT, vf_appeared)
                .map(|t| t + delay)
        } else {
            monitor.wait_for(at, REACTION_TIMEOUT, |x| is_vf(x, plug))
        };
        let filter = monitor.wait_for(at, delay + REACTION_TIMEOUT, |x| is_hn_filter(x, hn, plug));
        let status = reactor.expect(if plug { &steady } else { &gone });
        events.push(Event {
            name,
            want: if plug { Want::Vf } else { Want::Hn },
            at,
            end: Instant::now(),
            trigger,
            filter,
            redirects: hn_egress_redirects(&topo.vm),
            status,
        });
    }

    // A VF that goes before its delay ends is never used: nothing moves, nothing is lost.
    pause(slice, interrupted)?;
    let at = Instant::now();
    topo.add_vf()?;
    pause((delay / 2).max(Duration::from_millis(200)), interrupted)?;
    topo.remove_vf()?;
    monitor.wait_for(
        at,
        REACTION_TIMEOUT,
        |x| matches!(x, Notification::LinkGone { name, .. } if name == "vf0"),
    );
    let status = reactor.expect(&gone);
    events.push(Event {
        name: "early_removal",
        want: Want::Stay,
        at,
        end: Instant::now(),
        trigger: None,
        filter: monitor.wait_for(at, Duration::ZERO, |x| is_hn_filter(x, hn, true)),
        redirects: hn_egress_redirects(&topo.vm),
        status,
    });
    pause(slice, interrupted)?;

    stop.store(true, Ordering::Relaxed);
    let mut errors = Vec::new();
    for s in senders {
        if let Err(e) = s
            .join()
            .map_err(|_| "sender panicked".to_string())
            .and_then(|r| r)
        {
            errors.push(e);
        }
    }
    std::thread::sleep(LAST_PACKETS);
    recv_stop.store(true, Ordering::Relaxed);
    for r in receivers {
        if let Err(e) = r
            .join()
            .map_err(|_| "receiver panicked".to_string())
            .and_then(|r| r)
        {
            errors.push(e);
        }
    }
    let tcp_result = tcp_client
        .join()
        .map_err(|_| "tcp client panicked".to_string())
        .and_then(|r| r);
    let _ = tcp_server.join();
    if tracing::enabled!(tracing::Level::DEBUG) {
        tracing::debug!("daemon log:\n{}", reactor.log_tail(200));
    }
    drop(reactor);
    if !errors.is_empty() {
        return Err(LabError::Run(errors.join("; ")));
    }
    if let Err(e) = &tcp_result {
        tracing::warn!("TCP connection broke: {e}");
    }

    // RUST_LOG=debug: the kernel's notifications around each event, relative to it.
    if tracing::enabled!(tracing::Level::DEBUG) {
        let seen = monitor.snapshot();
        for e in &events {
            for (t, n) in seen
                .iter()
                .filter(|(t, _)| *t >= e.at && *t < e.at + delay + Duration::from_millis(100))
            {
                let rel = t.duration_since(e.at).as_secs_f64() * 1e3;
                tracing::debug!(event = e.name, "+{rel:.3} ms {n:?}");
            }
        }
    }
    let (to_vm, to_peer) = (to_vm.lock().unwrap(), to_peer.lock().unwrap());
    // Signed: b before a gives a negative figure.
    let ms = |a: Instant, b: Instant| {
        if b >= a {
            b.duration_since(a).as_secs_f64() * 1e3
        } else {
            -(a.duration_since(b).as_secs_f64() * 1e3)
        }
    };
    let window = |e: &Event| {
        (
            e.at - Duration::from_millis(50),
            e.end + Duration::from_millis(300),
        )
    };
    let phase = |e: &Event| -> Phase {
        let (from, to) = window(e);
        let (l1, g1) = to_vm.window(from, to);
        let (l2, g2) = to_peer.window(from, to);
        for (dir, st) in [("to_vm", &*to_vm), ("to_peer", &*to_peer)] {
            if let Some((a, b)) = st.lost_span(from, to) {
                tracing::debug!(
                    event = e.name,
                    "lost {dir} packets sent from {:+.3} to {:+.3} ms",
                    ms(e.at, a),
                    ms(e.at, b)
                );
            }
        }
        // Back on the new path: onto the VF, the first VM packet sent after the redirect was
        // installed; onto hn0, the first VM packet sent after the outage (after the last
        // lost one), whatever moved it (a filter change, or hvnet's gate, which the kernel
        // does not announce).
        let back = match e.want {
            Want::Vf => e.filter,
            Want::Hn => match (e.trigger, to_peer.lost_span(from, to)) {
                (Some(t), Some((_, last))) => Some(last.max(t)),
                (t, _) => t,
            },
            Want::Stay => None,
        }
        .and_then(|a| to_peer.first_arrival_sent_after(a));
        let before = e.trigger.map_or(0, |t| {
            if t <= from {
                0
            } else {
                to_vm.window(from, t).0 + to_peer.window(from, t).0
            }
        });
        Phase {
            lost_before_trigger: before,
            name: e.name,
            lost: l1 + l2,
            gap_ms: g1.max(g2),
            switch_ms: e.trigger.zip(e.filter).map(|(t, f)| ms(t, f)),
            back_ms: e.trigger.zip(back).map(|(t, b)| ms(t, b)),
            hn_egress_redirects: e.redirects,
            lost_to_vm: l1,
            lost_to_peer: l2,
            status_ok: e.status.as_ref().map(|s| s.0),
            status: e.status.as_ref().map(|s| s.1.clone()),
        }
    };
    let windows: Vec<_> = events.iter().map(window).collect();
    let mut quiet_lost = 0;
    for (dir, st) in [("to_vm", &*to_vm), ("to_peer", &*to_peer)] {
        for t in st.lost_outside(&windows) {
            quiet_lost += 1;
            let (name, at) = events
                .iter()
                .map(|e| (e.name, e.at))
                .min_by_key(|(_, at)| if *at > t { *at - t } else { t - *at })
                .unwrap_or(("start", t));
            tracing::debug!(
                "lost {dir} packet outside the events, {:+.3} ms from {name}",
                ms(at, t)
            );
        }
    }
    let mut all: Vec<Phase> = events.iter().map(phase).collect();
    let reattach = all.remove(1);
    let sent = (to_vm.sent.iter().flatten().count() + to_peer.sent.iter().flatten().count()) as u64;
    let received =
        (to_vm.recv.iter().flatten().count() + to_peer.recv.iter().flatten().count()) as u64;
    Ok(LabReport {
        pps,
        reactor: cfg.reactor.name(),
        vf_delay: delay,
        phases: all,
        reattach,
        quiet_lost,
        tcp_survived: tcp_result.is_ok(),
        tcp_rounds: *tcp_result.as_ref().unwrap_or(&0),
        tcp_error: tcp_result.err(),
        sent,
        received,
        vf_redirected_pkts,
        monitor_realtime: monitor.realtime,
    })
}
