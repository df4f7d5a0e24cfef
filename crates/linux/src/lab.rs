//! The real-kernel lab: three network namespaces, a bridge as the virtual switch, a VM with
//! `hn0` and `vf0` sharing one MAC, hvnet's steerer running in the VM namespace, numbered UDP
//! streams both ways and a TCP connection, through a planned switch, a surprise removal and
//! a return of the VF. Everything it builds is torn down on drop, also on panic.
//!
//! Topology (addresses from 198.18.0.0/15, only inside the namespaces):
//!
//! ```text
//!  peer: eth0 198.18.0.1/24 ──┐
//!                  host: br0 ─┼─ hhn ── vm: hn0 198.18.0.2/24  (MAC M)
//!                             └─ hvf ── vm: vf0 (no address)    (MAC M)
//! ```

use crate::netns::{self, ip, Namespaces, NetnsError};
use crate::roles::RolePatterns;
use crate::steer::{Direction, Journal, Request, SteerConfig, Steerer, SwitchRecord};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

type Worker<T> = JoinHandle<Result<T, String>>;
type SteererHandle = (
    tokio::sync::mpsc::UnboundedSender<Request>,
    Journal,
    Worker<()>,
    std::sync::mpsc::Receiver<()>,
);

pub const PEER_IP: &str = "198.18.0.1";
pub const VM_IP: &str = "198.18.0.2";
pub const VM_MAC: &str = "02:48:56:00:00:02";
const UDP_TO_VM: u16 = 5001;
const UDP_TO_PEER: u16 = 5002;
const TCP_PORT: u16 = 5003;

/// Lab settings.
#[derive(Debug, Clone)]
pub struct LabConfig {
    /// Packets per second in each direction.
    pub pps: u32,
    /// Total traffic time; the three events are spread over it.
    pub duration: Duration,
    /// Suffix that makes namespace names unique (e.g. the pid).
    pub tag: String,
}

/// Loss and timing of one phase.
#[derive(Debug, Clone, PartialEq)]
pub struct Phase {
    pub name: &'static str,
    /// Packets (both directions) sent around the event that never arrived.
    pub lost: u64,
    /// The longest time without an arriving packet, in either direction, around the event.
    pub gap_ms: f64,
    /// From the kernel's notice (or the announcement) to the new filters confirmed.
    pub switch_ms: Option<f64>,
    /// What the kernel showed after the phase (redirect filters on hn0 egress).
    pub hn_egress_redirects: usize,
    /// Lost packets by direction: peer → vm and vm → peer.
    pub lost_to_vm: u64,
    pub lost_to_peer: u64,
}

/// The lab's result.
#[derive(Debug, Clone)]
pub struct LabReport {
    pub pps: u32,
    pub phases: Vec<Phase>,
    /// The VF re-attach between the planned and the surprise phase (not a named phase).
    pub reattach: Phase,
    pub tcp_survived: bool,
    pub sent: u64,
    pub received: u64,
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
        ip(
            Some(h),
            &[
                "link", "add", "hvf", "type", "veth", "peer", "name", "vf0", "netns", v,
            ],
        )?;
        ip(Some(v), &["link", "set", "vf0", "address", VM_MAC])?;
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

fn udp_sender(
    ns: &str,
    to: SocketAddr,
    pps: u32,
    count: usize,
    stream: Arc<Mutex<Stream>>,
) -> JoinHandle<Result<(), String>> {
    spawn_in(ns, move || {
        let sock = UdpSocket::bind("0.0.0.0:0").map_err(|e| format!("udp bind: {e}"))?;
        let start = Instant::now();
        let period = Duration::from_secs_f64(1.0 / pps as f64);
        for seq in 0..count {
            let due = start + period * seq as u32;
            let now = Instant::now();
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

fn udp_receiver(
    ns: &str,
    port: u16,
    stream: Arc<Mutex<Stream>>,
    stop: Arc<AtomicBool>,
) -> JoinHandle<Result<(), String>> {
    spawn_in(ns, move || {
        let sock =
            UdpSocket::bind(("0.0.0.0", port)).map_err(|e| format!("udp bind {port}: {e}"))?;
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .map_err(|e| e.to_string())?;
        let mut buf = [0u8; 64];
        while !stop.load(Ordering::Relaxed) {
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

/// TCP echo in the VM; the peer writes a line every 5 ms and checks each echo.
fn tcp_pair(
    vm: &str,
    peer: &str,
    stop: Arc<AtomicBool>,
) -> Result<(Worker<()>, Worker<u64>), LabError> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let server = spawn_in(vm, move || {
        let l = TcpListener::bind((VM_IP, TCP_PORT)).map_err(|e| format!("tcp listen: {e}"))?;
        let _ = ready_tx.send(());
        let (mut c, _) = l.accept().map_err(|e| format!("tcp accept: {e}"))?;
        let mut buf = [0u8; 256];
        loop {
            let n = c
                .read(&mut buf)
                .map_err(|e| format!("tcp server read: {e}"))?;
            if n == 0 {
                return Ok(());
            }
            c.write_all(&buf[..n])
                .map_err(|e| format!("tcp server write: {e}"))?;
        }
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
        let mut rounds = 0u64;
        let mut buf = [0u8; 8];
        while !stop.load(Ordering::Relaxed) {
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

fn start_steerer(vm: &str) -> SteererHandle {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let journal: Journal = Arc::default();
    let j = journal.clone();
    let (up_tx, up_rx) = std::sync::mpsc::channel();
    let h = spawn_in(vm, move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let cfg = SteerConfig {
            patterns: RolePatterns::default(),
            return_delay: Duration::ZERO,
        };
        let _ = up_tx.send(());
        rt.block_on(Steerer::run(cfg, rx, j))
            .map_err(|e| e.to_string())
    });
    (tx, journal, h, up_rx)
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

/// Wait until the journal has `n` records (bounded).
fn wait_journal(j: &Journal, n: usize, timeout: Duration) -> Result<(), LabError> {
    let end = Instant::now() + timeout;
    while j.lock().unwrap().len() < n {
        if Instant::now() > end {
            return Err(LabError::Run(format!(
                "steerer did not switch within {timeout:?} (switches so far: {})",
                j.lock().unwrap().len()
            )));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(())
}

/// Count hvnet redirects on hn0's egress as the kernel reports them (via `tc`, independent
/// of hvnet's own netlink code).
pub fn hn_egress_redirects(vm: &str) -> usize {
    netns::run("tc", &["-n", vm, "filter", "show", "dev", "hn0", "egress"])
        .map(|s| s.matches("mirred").count())
        .unwrap_or(0)
}

/// Run the lab. Tears the namespaces down before returning, whatever happens.
pub fn run(cfg: &LabConfig, interrupted: &AtomicBool) -> Result<LabReport, LabError> {
    let mut topo = Topology::build(&cfg.tag)?;
    let r = run_in(&topo, cfg, interrupted);
    topo.teardown();
    r
}

fn run_in(
    topo: &Topology,
    cfg: &LabConfig,
    interrupted: &AtomicBool,
) -> Result<LabReport, LabError> {
    let pps = cfg.pps.max(1);
    topo.add_vf()?;
    let (steer_tx, journal, steer_thread, steer_up) = start_steerer(&topo.vm);
    steer_up
        .recv_timeout(Duration::from_secs(5))
        .map_err(|_| LabError::Run("steerer did not start".into()))?;
    wait_journal(&journal, 1, Duration::from_secs(5))?; // initial steering onto vf0

    warm_up(topo)?;
    let stop = Arc::new(AtomicBool::new(false));
    let slice = cfg.duration.max(Duration::from_secs(2)) / 5;
    let count = (pps as f64 * slice.as_secs_f64() * 5.0) as usize;
    let to_vm = Stream::new(count);
    let to_peer = Stream::new(count);
    let receivers = [
        udp_receiver(&topo.vm, UDP_TO_VM, to_vm.clone(), stop.clone()),
        udp_receiver(&topo.peer, UDP_TO_PEER, to_peer.clone(), stop.clone()),
    ];
    let (tcp_server, tcp_client) = tcp_pair(&topo.vm, &topo.peer, stop.clone())?;
    std::thread::sleep(Duration::from_millis(50));
    let senders = [
        udp_sender(
            &topo.peer,
            format!("{VM_IP}:{UDP_TO_VM}").parse().unwrap(),
            pps,
            count,
            to_vm.clone(),
        ),
        udp_sender(
            &topo.vm,
            format!("{PEER_IP}:{UDP_TO_PEER}").parse().unwrap(),
            pps,
            count,
            to_peer.clone(),
        ),
    ];

    let check_interrupt = || -> Result<(), LabError> {
        if interrupted.load(Ordering::Relaxed) {
            Err(LabError::Run("interrupted".into()))
        } else {
            Ok(())
        }
    };
    let mut events: Vec<(&'static str, Instant, usize)> = Vec::new();

    // 1. planned: the host announces, hvnet moves traffic to hn0, then the VF goes.
    std::thread::sleep(slice);
    check_interrupt()?;
    let t = Instant::now();
    let n = journal.lock().unwrap().len();
    let (ack_tx, ack_rx) = tokio::sync::oneshot::channel();
    steer_tx
        .send(Request::PlannedSwitch(ack_tx))
        .map_err(|_| LabError::Run("steerer stopped".into()))?;
    ack_rx
        .blocking_recv()
        .map_err(|_| LabError::Run("steerer stopped".into()))?;
    let planned_redirects = hn_egress_redirects(&topo.vm);
    std::thread::sleep(Duration::from_millis(20));
    topo.remove_vf()?;
    events.push(("planned", t, n));

    // re-attach so that the surprise has a VF to lose.
    std::thread::sleep(slice);
    check_interrupt()?;
    let t = Instant::now();
    let n = journal.lock().unwrap().len();
    topo.add_vf()?;
    events.push(("reattach", t, n));
    wait_journal(&journal, n + 1, Duration::from_secs(3))?;
    let reattach_redirects = hn_egress_redirects(&topo.vm);

    // 2. surprise: the VF vanishes without warning.
    std::thread::sleep(slice);
    check_interrupt()?;
    let t = Instant::now();
    let n = journal.lock().unwrap().len();
    topo.remove_vf()?;
    events.push(("surprise", t, n));
    wait_journal(&journal, n + 1, Duration::from_secs(3))?;
    let surprise_redirects = hn_egress_redirects(&topo.vm);

    // 3. return: a VF comes back.
    std::thread::sleep(slice);
    check_interrupt()?;
    let t = Instant::now();
    let n = journal.lock().unwrap().len();
    topo.add_vf()?;
    events.push(("return", t, n));
    wait_journal(&journal, n + 1, Duration::from_secs(3))?;
    let return_redirects = hn_egress_redirects(&topo.vm);

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
    std::thread::sleep(Duration::from_millis(200)); // let the last packets land
    stop.store(true, Ordering::Relaxed);
    for r in receivers {
        if let Err(e) = r
            .join()
            .map_err(|_| "receiver panicked".to_string())
            .and_then(|r| r)
        {
            errors.push(e);
        }
    }
    let tcp_rounds = tcp_client
        .join()
        .map_err(|_| "tcp client panicked".to_string())
        .and_then(|r| r);
    drop(tcp_server); // exits when the namespace goes
    let _ = steer_tx.send(Request::Stop);
    let _ = steer_thread.join();
    if !errors.is_empty() {
        return Err(LabError::Run(errors.join("; ")));
    }
    if let Err(e) = &tcp_rounds {
        tracing::warn!("TCP connection broke: {e}");
    }

    let journal = journal.lock().unwrap().clone();
    let (to_vm, to_peer) = (to_vm.lock().unwrap(), to_peer.lock().unwrap());
    let phase = |name: &'static str, at: Instant, first_record: usize, redirects: usize| -> Phase {
        // The window covers the event and its aftermath, not the next event.
        let (from, to) = (at - Duration::from_millis(100), at + slice / 2);
        let (l1, g1) = to_vm.window(from, to);
        let (l2, g2) = to_peer.window(from, to);
        let want = if name == "planned" || name == "surprise" {
            Direction::ToSynthetic
        } else {
            Direction::ToVf
        };
        let switch_ms = journal[first_record.min(journal.len())..]
            .iter()
            .find(|r: &&SwitchRecord| r.direction == want)
            .map(SwitchRecord::switch_ms);
        Phase {
            name,
            lost: l1 + l2,
            gap_ms: g1.max(g2),
            switch_ms,
            hn_egress_redirects: redirects,
            lost_to_vm: l1,
            lost_to_peer: l2,
        }
    };
    let redirects = [
        planned_redirects,
        reattach_redirects,
        surprise_redirects,
        return_redirects,
    ];
    let mut all: Vec<Phase> = events
        .iter()
        .zip(redirects)
        .map(|((name, at, n), r)| phase(name, *at, *n, r))
        .collect();
    let reattach = all.remove(1);
    let sent = (to_vm.sent.iter().flatten().count() + to_peer.sent.iter().flatten().count()) as u64;
    let received =
        (to_vm.recv.iter().flatten().count() + to_peer.recv.iter().flatten().count()) as u64;
    Ok(LabReport {
        pps,
        phases: all,
        reattach,
        tcp_survived: tcp_rounds.is_ok(),
        sent,
        received,
    })
}
