//! Load and latency harness for `hvnet devd run`, with real processes and sockets (Linux).
//!
//! ```text
//! cargo build --release -p hvnet --bin hvnet --example devd_run_load
//! target/release/examples/devd_run_load [--events N] [--latency N] [--clients 10] [--window W]
//! ```
//!
//! The harness listens on a unix SOCK_SEQPACKET socket that stands in for `/dev/devctl`
//! (one record per event, as devctl delivers them), starts `hvnet devd run -d -q` on it, and
//! connects `--clients` readers to `devd.seqpacket.pipe`. Every reader checks each record
//! byte for byte and in order.
//!
//! 1. Forwarding: `--events` events that match no rule, sent as fast as the slowest client
//!    keeps up (at most `--window` events ahead of it, so no client overflows devd's 256 KiB
//!    send buffer and gets dropped; the run checks that none was); events/s = events / time until every client has all.
//! 2. Latency: `--latency` events, one at a time, each matching a rule whose action is
//!    `echo $seq > FIFO`; latency = from just before the event is written to the devctl socket
//!    until the harness reads the action's line from the FIFO, i.e. until the action's shell
//!    has started and run its first (builtin) command. Median and p99.
//!
//! Baselines, same run, same code paths in the harness: (1) a bare relay thread that reads the
//! source socket and `send`s each record to the same number of seqpacket clients (what any
//! forwarder must do at least); (2) the harness itself spawning `SHELL -c "echo $'N' > FIFO"`
//! (what running any action costs at least).

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, Signal};
use nix::sys::socket::{
    accept, bind, connect, listen, recv, send, socket, AddressFamily, Backlog, MsgFlags, SockFlag,
    SockType, UnixAddr,
};
use nix::sys::stat::Mode;
use nix::time::{clock_gettime, ClockId};
use nix::unistd::{mkfifo, sysconf, Pid, SysconfVar};

#[derive(Parser)]
#[command(about = "Forwarding rate and action latency of `hvnet devd run`")]
struct Args {
    /// The hvnet binary (default: `hvnet` next to this example's directory).
    #[arg(long)]
    hvnet: Option<PathBuf>,
    /// Events for the forwarding measurement.
    #[arg(long, default_value_t = 200_000)]
    events: u64,
    /// Events for the latency measurement (each runs one action).
    #[arg(long, default_value_t = 2_000)]
    latency: usize,
    /// Connected seqpacket clients.
    #[arg(long, default_value_t = 10)]
    clients: usize,
    /// Most events in flight ahead of the slowest client.
    #[arg(long, default_value_t = 256)]
    window: u64,
    /// Shell for actions (default: /bin/sh if it understands $'...' quoting, else /bin/bash).
    #[arg(long)]
    shell: Option<PathBuf>,
    /// One JSON object instead of text.
    #[arg(long)]
    json: bool,
}

fn seqpacket() -> nix::Result<OwnedFd> {
    socket(
        AddressFamily::Unix,
        SockType::SeqPacket,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
}

fn listen_seqpacket(path: &Path) -> anyhow::Result<OwnedFd> {
    let fd = seqpacket().context("socket")?;
    bind(fd.as_raw_fd(), &UnixAddr::new(path)?).context("bind")?;
    listen(&fd, Backlog::new(1)?).context("listen")?;
    Ok(fd)
}

fn connect_seqpacket(path: &Path) -> anyhow::Result<OwnedFd> {
    let fd = seqpacket().context("socket")?;
    connect(fd.as_raw_fd(), &UnixAddr::new(path)?).context("connect")?;
    Ok(fd)
}

/// Accept one connection, waiting at most `limit`.
fn accept_within(listener: &OwnedFd, limit: Duration) -> anyhow::Result<OwnedFd> {
    let mut fds = [PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
    let timeout = PollTimeout::try_from(limit).unwrap_or(PollTimeout::MAX);
    if poll(&mut fds, timeout).unwrap_or(0) <= 0 {
        bail!("hvnet did not connect to the devctl socket");
    }
    let fd = accept(listener.as_raw_fd()).context("accept")?;
    // SAFETY: accept just returned this descriptor: open, and owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn socketpair() -> anyhow::Result<(OwnedFd, OwnedFd)> {
    nix::sys::socket::socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .context("socketpair")
}

fn send_all(fd: RawFd, rec: &[u8]) -> anyhow::Result<()> {
    let n = send(fd, rec, MsgFlags::MSG_NOSIGNAL).context("send to the devctl socket")?;
    if n != rec.len() {
        bail!("send to the devctl socket: {n} of {} bytes", rec.len());
    }
    Ok(())
}

/// Event `i`: the first `bench` events match no rule, the later ones the latency rule.
fn event(i: u64, bench: u64) -> Vec<u8> {
    let system = if i < bench { "BENCH" } else { "LAT" };
    format!("!system={system} subsystem=hn0 type=LINK_UP seq={i}\n").into_bytes()
}

/// One reader per client: counts records, checks each one byte for byte and in order.
struct Readers {
    counts: Vec<Arc<AtomicU64>>,
    bad: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Readers {
    fn start(fds: Vec<OwnedFd>, bench: u64) -> Readers {
        let bad = Arc::new(AtomicBool::new(false));
        let mut counts = Vec::new();
        let mut threads = Vec::new();
        for fd in fds {
            let count = Arc::new(AtomicU64::new(0));
            counts.push(count.clone());
            let bad = bad.clone();
            threads.push(std::thread::spawn(move || {
                let mut buf = [0u8; 2048];
                let mut i = 0u64;
                loop {
                    // A blocking read of one record.
                    let Ok(n @ 1..) = recv(fd.as_raw_fd(), &mut buf, MsgFlags::empty()) else {
                        return; // hung up (dropped by the forwarder, or the end)
                    };
                    if buf[..n] != event(i, bench)[..] {
                        bad.store(true, Ordering::Relaxed);
                    }
                    i += 1;
                    count.store(i, Ordering::Release);
                }
            }));
        }
        Readers {
            counts,
            bad,
            threads,
        }
    }

    fn min(&self) -> u64 {
        self.counts
            .iter()
            .map(|c| c.load(Ordering::Acquire))
            .min()
            .unwrap_or(0)
    }

    fn wait_all(&self, n: u64, limit: Duration) -> anyhow::Result<()> {
        let start = Instant::now();
        while self.min() < n {
            if start.elapsed() > limit {
                bail!(
                    "clients stopped receiving (a client was dropped?): {:?} of {n}",
                    self.counts
                        .iter()
                        .map(|c| c.load(Ordering::Acquire))
                        .collect::<Vec<_>>()
                );
            }
            std::thread::yield_now();
        }
        Ok(())
    }

    fn finish(self) -> anyhow::Result<()> {
        for t in self.threads {
            let _ = t.join();
        }
        if self.bad.load(Ordering::Relaxed) {
            bail!("a client received a record that differs from the event sent");
        }
        Ok(())
    }
}

/// Send events `from..to` keeping at most `window` ahead of the slowest client; events/s.
fn pump(
    src: RawFd,
    readers: &Readers,
    from: u64,
    to: u64,
    bench: u64,
    window: u64,
) -> anyhow::Result<f64> {
    let start = Instant::now();
    let limit = Duration::from_secs(30);
    for i in from..to {
        while i - readers.min() >= window {
            if start.elapsed() > limit {
                readers.wait_all(i, Duration::ZERO)?;
            }
            std::thread::yield_now();
        }
        send_all(src, &event(i, bench))?;
    }
    readers.wait_all(to, limit)?;
    Ok((to - from) as f64 / start.elapsed().as_secs_f64())
}

/// User + system CPU time of a process so far (/proc/PID/stat, clock ticks).
fn process_cpu(pid: u32) -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after = &stat[stat.rfind(')').context("/proc stat")? + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 of stat(5); `after` starts at field 3.
    let ticks: u64 = f[11].parse::<u64>()? + f[12].parse::<u64>()?;
    let hz = sysconf(SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100)
        .max(1) as u64;
    Ok(Duration::from_micros(ticks * 1_000_000 / hz))
}

/// CPU time of the calling thread.
fn thread_cpu() -> Duration {
    clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID).map_or(Duration::ZERO, Duration::from)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[derive(serde::Serialize)]
struct Latency {
    median_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

fn summarize(mut v: Vec<f64>) -> Latency {
    v.sort_by(f64::total_cmp);
    Latency {
        median_ms: round3(percentile(&v, 0.5)),
        p99_ms: round3(percentile(&v, 0.99)),
        max_ms: round3(*v.last().unwrap_or(&0.0)),
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Reads one line per action from the FIFO.
struct Fifo {
    lines: BufReader<File>,
}

impl Fifo {
    fn create(path: &Path) -> anyhow::Result<Fifo> {
        mkfifo(path, Mode::from_bits_truncate(0o600)).context("mkfifo")?;
        // Read-write: never EOF between writers, and a writer's open never blocks.
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)?;
        Ok(Fifo {
            lines: BufReader::new(f),
        })
    }

    /// The next line; its arrival time.
    fn expect(&mut self, seq: u64) -> anyhow::Result<Instant> {
        let mut line = String::new();
        self.lines.read_line(&mut line)?;
        let t = Instant::now();
        if line.trim() != seq.to_string() {
            bail!("action wrote {line:?}, expected {seq}");
        }
        Ok(t)
    }
}

fn shell_ok(sh: &Path) -> bool {
    Command::new(sh)
        .args(["-c", r#"[ $'a\'b' = "a'b" ]"#])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

struct Hvnet(Child);

impl Drop for Hvnet {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[derive(serde::Serialize)]
struct Report {
    clients: usize,
    events: u64,
    window: u64,
    hvnet_forwarded_events_per_sec: f64,
    relay_forwarded_events_per_sec: f64,
    forward_ratio_vs_relay: f64,
    /// Events forwarded per second of the forwarder's own CPU time (what one core would do
    /// if the clients and the harness did not share it).
    hvnet_events_per_cpu_sec: f64,
    relay_events_per_cpu_sec: f64,
    latency_events: usize,
    hvnet_event_to_action_ms: Latency,
    direct_spawn_ms: Latency,
    hvnet_clients_dropped: u64,
    shell: String,
}

fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    let hvnet = match &a.hvnet {
        Some(p) => p.clone(),
        None => std::env::current_exe()?
            .parent()
            .and_then(Path::parent)
            .context("locating hvnet")?
            .join("hvnet"),
    };
    let shell = match &a.shell {
        Some(s) => s.clone(),
        None if shell_ok(Path::new("/bin/sh")) => "/bin/sh".into(),
        None => "/bin/bash".into(),
    };
    if !shell_ok(&shell) {
        bail!("{} does not understand $'...' quoting", shell.display());
    }
    let dir = std::env::temp_dir().join(format!("hvnet-devd-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = measure(&a, &hvnet, &shell, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    let r = result?;
    if a.json {
        println!("{}", serde_json::to_string(&r)?);
    } else {
        println!(
            "forwarding to {} seqpacket clients ({} events, window {}):",
            r.clients, r.events, r.window
        );
        println!(
            "  hvnet devd run: {:>10.0} events/s ({} clients dropped)",
            r.hvnet_forwarded_events_per_sec, r.hvnet_clients_dropped
        );
        println!(
            "  bare relay:     {:>10.0} events/s   ratio {:.2}",
            r.relay_forwarded_events_per_sec, r.forward_ratio_vs_relay
        );
        println!(
            "  per second of the forwarder's CPU: hvnet {:.0}, bare relay {:.0}",
            r.hvnet_events_per_cpu_sec, r.relay_events_per_cpu_sec
        );
        println!(
            "event -> action's shell running ({} events, {}):",
            r.latency_events, r.shell
        );
        let l = &r.hvnet_event_to_action_ms;
        println!(
            "  hvnet devd run: median {:.3} ms, p99 {:.3} ms, max {:.3} ms",
            l.median_ms, l.p99_ms, l.max_ms
        );
        let l = &r.direct_spawn_ms;
        println!(
            "  direct spawn:   median {:.3} ms, p99 {:.3} ms, max {:.3} ms",
            l.median_ms, l.p99_ms, l.max_ms
        );
    }
    Ok(())
}

fn measure(a: &Args, hvnet: &Path, shell: &Path, dir: &Path) -> anyhow::Result<Report> {
    let warm = 1_000u64;
    let bench = warm + a.events;
    let fifo_path = dir.join("actions.fifo");
    let mut fifo = Fifo::create(&fifo_path)?;
    let conf = dir.join("devd.conf");
    std::fs::write(
        &conf,
        format!(
            "notify 0 {{ match \"system\" \"LAT\"; action \"echo $seq > {}\"; }};\n",
            fifo_path.display()
        ),
    )?;
    let devctl = dir.join("devctl");
    let listener = listen_seqpacket(&devctl)?;
    let status = dir.join("status.json");
    let child = Command::new(hvnet)
        .args(["devd", "run", "-d", "-q", "-f"])
        .arg(&conf)
        .arg("--devctl")
        .arg(&devctl)
        .arg("--socket-dir")
        .arg(dir)
        .arg("--shell")
        .arg(shell)
        .arg("--status-file")
        .arg(&status)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        // -d logs every event to stderr (as devd does, even with -q); a daemon with -q logs
        // nothing per event, so the lines are discarded here.
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", hvnet.display()))?;
    let mut child = Hvnet(child);
    let src = accept_within(&listener, Duration::from_secs(10))?;
    let sock = dir.join("devd.seqpacket.pipe");
    let start = Instant::now();
    while !sock.exists() {
        if start.elapsed() > Duration::from_secs(10) {
            bail!("hvnet did not create {}", sock.display());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    // The socket file appears at bind(), a moment before listen(): retry refused connects.
    let connect = || loop {
        match connect_seqpacket(&sock) {
            Err(e) if start.elapsed() < Duration::from_secs(10) => {
                let refused = e
                    .downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.raw_os_error() == Some(libc::ECONNREFUSED));
                if !refused {
                    return Err(e);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            r => return r,
        }
    };
    let fds = (0..a.clients)
        .map(|_| connect())
        .collect::<anyhow::Result<Vec<_>>>()?;
    let readers = Readers::start(fds, bench);
    // Warm-up: also makes sure hvnet has accepted every client.
    pump(src.as_raw_fd(), &readers, 0, warm, bench, a.window)?;
    let cpu0 = process_cpu(child.0.id())?;
    let hvnet_eps = pump(src.as_raw_fd(), &readers, warm, bench, bench, a.window)?;
    let hvnet_cpu = process_cpu(child.0.id())? - cpu0;

    let mut lat = Vec::with_capacity(a.latency);
    for k in 0..a.latency as u64 {
        let i = bench + k;
        let t0 = Instant::now();
        send_all(src.as_raw_fd(), &event(i, bench))?;
        let t1 = fifo.expect(i)?;
        lat.push((t1 - t0).as_secs_f64() * 1e3);
    }
    readers.wait_all(bench + a.latency as u64, Duration::from_secs(10))?;
    // SIGTERM: hvnet writes its counters to the status file and exits.
    let _ = kill(Pid::from_raw(child.0.id() as i32), Signal::SIGTERM);
    let exit = child.0.wait()?;
    if !exit.success() {
        bail!("hvnet exited with {exit}");
    }
    drop(src);
    readers.finish()?;
    let counters: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&status)?)?;
    let dropped = counters["clients_dropped"].as_u64().unwrap_or(u64::MAX);

    // Baseline 1: a bare relay thread between the same kind of sockets.
    let (src_tx, src_rx) = socketpair()?;
    let mut ends = Vec::new();
    let mut outs = Vec::new();
    for _ in 0..a.clients {
        let (o, c) = socketpair()?;
        outs.push(o);
        ends.push(c);
    }
    let relay = std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        let mut records = 0u64;
        let start = thread_cpu();
        loop {
            // A blocking read of one record.
            let Ok(n @ 1..) = recv(src_rx.as_raw_fd(), &mut buf, MsgFlags::empty()) else {
                return records as f64 / (thread_cpu() - start).as_secs_f64();
            };
            records += 1;
            for o in &outs {
                let flags = MsgFlags::MSG_NOSIGNAL | MsgFlags::MSG_DONTWAIT;
                let _ = send(o.as_raw_fd(), &buf[..n], flags);
            }
        }
    });
    let readers = Readers::start(ends, bench);
    pump(src_tx.as_raw_fd(), &readers, 0, warm, bench, a.window)?;
    let relay_eps = pump(src_tx.as_raw_fd(), &readers, warm, bench, bench, a.window)?;
    drop(src_tx);
    let relay_cpu_eps = relay
        .join()
        .map_err(|_| anyhow::anyhow!("relay thread panicked"))?;
    readers.finish()?;

    // Baseline 2: spawning the same action directly.
    let mut direct = Vec::with_capacity(a.latency);
    for k in 0..a.latency as u64 {
        let t0 = Instant::now();
        let mut c = Command::new(shell)
            .arg("-c")
            .arg(format!("echo $'{k}' > {}", fifo_path.display()))
            .stdin(Stdio::null())
            .spawn()?;
        let t1 = fifo.expect(k)?;
        c.wait()?;
        direct.push((t1 - t0).as_secs_f64() * 1e3);
    }

    Ok(Report {
        clients: a.clients,
        events: a.events,
        window: a.window,
        hvnet_forwarded_events_per_sec: hvnet_eps.round(),
        relay_forwarded_events_per_sec: relay_eps.round(),
        forward_ratio_vs_relay: (hvnet_eps / relay_eps * 100.0).round() / 100.0,
        hvnet_events_per_cpu_sec: (a.events as f64 / hvnet_cpu.as_secs_f64()).round(),
        relay_events_per_cpu_sec: relay_cpu_eps.round(),
        latency_events: a.latency,
        hvnet_event_to_action_ms: summarize(lat),
        direct_spawn_ms: summarize(direct),
        hvnet_clients_dropped: dropped,
        shell: shell.display().to_string(),
    })
}
