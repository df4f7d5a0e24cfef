use std::sync::mpsc::channel;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::*;
use hvnet_vf::{
    DataPath, IfKind, Interface, LogEntry, Mac, Manager, ManagerConfig, MemoryBackend, ModeSetting,
    NetConfig, VfState,
};

fn command(argv: &[&str]) -> CommandGate {
    CommandGate {
        argv: argv.iter().map(|s| s.to_string()).collect(),
        child: None,
        failed: false,
        last_error: None,
    }
}

/// Poll until the check answers (bounded).
fn answer(g: &mut dyn GateProbe) -> bool {
    let t = Instant::now();
    loop {
        if let Some(a) = g.poll(Duration::ZERO) {
            return a;
        }
        assert!(t.elapsed() < Duration::from_secs(10), "no answer");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_file_gate_is_ready_once_the_file_exists() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("provisioned");
    let mut g = probe(&ReadinessGate::File(f.display().to_string()));
    g.start(Duration::ZERO);
    assert!(!answer(g.as_mut()));
    std::fs::write(&f, "").unwrap();
    g.start(Duration::ZERO);
    assert!(answer(g.as_mut()));
    assert!(g.describe().starts_with("readiness_file "));
}

#[test]
fn a_command_gate_answers_with_the_exit_status() {
    for (argv, ready) in [
        (&["true"][..], true),
        (&["false"][..], false),
        (&["/nonexistent/hvnet-gate"][..], false),
    ] {
        let mut g = command(argv);
        g.start(Duration::ZERO);
        assert_eq!(answer(&mut g), ready, "{argv:?}");
        assert_eq!(g.poll(Duration::ZERO), None, "one answer per check");
    }
}

/// Whether a live (not zombie) process of group `pgid` is left, after up to 5 s.
fn group_alive(pgid: u32) -> bool {
    let live = || {
        if !cfg!(target_os = "linux") {
            return killpg(Pid::from_raw(pgid as i32), None).is_ok();
        }
        std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
            // pid (comm) state ppid pgrp ...: the fields after the last ')'.
            std::fs::read_to_string(e.path().join("stat")).is_ok_and(|stat| {
                let rest: Vec<&str> = stat
                    .rsplit_once(')')
                    .map_or("", |(_, r)| r)
                    .split_whitespace()
                    .collect();
                rest.get(2) == Some(&pgid.to_string().as_str()) && rest.first() != Some(&"Z")
            })
        })
    };
    let t = Instant::now();
    while live() {
        if t.elapsed() > Duration::from_secs(5) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// The command gate, recording the pid of every command it starts.
struct Spy {
    gate: CommandGate,
    pids: Arc<Mutex<Vec<u32>>>,
}

impl GateProbe for Spy {
    fn start(&mut self, now: Duration) {
        self.gate.start(now);
        self.pids.lock().unwrap().extend(self.gate.pid());
    }
    fn poll(&mut self, now: Duration) -> Option<bool> {
        self.gate.poll(now)
    }
    fn stop(&mut self) {
        self.gate.stop()
    }
    fn describe(&self) -> String {
        self.gate.describe()
    }
}

/// What the stepping thread saw.
struct Seen {
    log: Vec<LogEntry>,
    slowest_step: Duration,
    path_after_removal: DataPath,
    waiting: VfState,
}

/// A readiness command that hangs (a shell whose child sleeps) while a VF waits: every step
/// returns at once, the VF in use on another NIC is failed over from when it goes, the
/// command is stopped at the time limit with a log line, and its whole process group is
/// killed. (The daemon used to run the command inside every step without a time limit: a
/// hung command stopped all steps, failover included.)
#[test]
fn a_hung_readiness_command_never_stops_failover_and_is_killed_at_its_time_limit() {
    let pids = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = channel();
    {
        let pids = pids.clone();
        std::thread::spawn(move || {
            let gate = Spy {
                gate: command(&["sh", "-c", "sleep 1000; :"]),
                pids,
            };
            let mut m = Manager::new(
                ManagerConfig {
                    mode: ModeSetting::Steered,
                    ..Default::default()
                }
                .with_vf_delay_secs(60),
                Box::new(NetConfig::default()),
            )
            .with_gate(Box::new(gate));
            let mac0: Mac = "00:15:5d:00:00:01".parse().unwrap();
            let mac1: Mac = "00:15:5d:00:00:02".parse().unwrap();
            let vf = |name: &str, mac| {
                Interface::running(
                    name,
                    mac,
                    IfKind::Vf {
                        driver: "mlx5_core".into(),
                    },
                )
            };
            let mut b = MemoryBackend::default();
            for (hn, mac) in [("hn0", mac0), ("hn1", mac1)] {
                b.view
                    .interfaces
                    .push(Interface::running(hn, mac, IfKind::Synthetic));
            }
            b.view.interfaces.push(vf("vf0", mac0));
            let mut log = Vec::new();
            let mut slowest = Duration::ZERO;
            let mut step = |m: &mut Manager, b: &mut MemoryBackend, ms: u64| {
                let t = Instant::now();
                let rep = m.step(Duration::from_millis(ms), b);
                slowest = slowest.max(t.elapsed());
                log.extend(rep.log.iter().cloned());
                rep
            };
            // hn0's VF is in use after its delay (it waited on the hung gate throughout).
            for ms in (0..=61_000).step_by(500) {
                step(&mut m, &mut b, ms);
            }
            // hn1's VF comes and waits on the gate, whose command hangs; hn0's VF goes.
            b.view.interfaces.push(vf("vf1", mac1));
            step(&mut m, &mut b, 61_500);
            step(&mut m, &mut b, 62_000);
            b.view.interfaces.retain(|i| i.name != "vf0");
            step(&mut m, &mut b, 62_500);
            let rep = step(&mut m, &mut b, 62_600);
            let path_after_removal = rep.status.pairs[0].path;
            for ms in (63_000..=72_000).step_by(500) {
                step(&mut m, &mut b, ms);
            }
            let waiting = m.status().unwrap().pairs[1].vf_state;
            drop(m);
            let _ = tx.send(Seen {
                log,
                slowest_step: slowest,
                path_after_removal,
                waiting,
            });
        });
    }
    let seen = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the steps stopped: a hung readiness command held them up");
    assert!(
        seen.slowest_step < Duration::from_secs(2),
        "a step waited for the gate: {:?}",
        seen.slowest_step
    );
    assert_eq!(seen.path_after_removal, DataPath::Synthetic);
    assert_eq!(seen.waiting, VfState::Waiting);
    let limits: Vec<&LogEntry> = seen
        .log
        .iter()
        .filter(|l| l.message.contains("no answer within 10 s; stopped it"))
        .collect();
    // hn0's VF waited 60 s (checks stopped at 10, 20, ... 60 s), hn1's from 61.5 s.
    assert!(limits.len() >= 6, "{:?}", seen.log);
    assert!(
        limits[0]
            .message
            .contains(r#"readiness_command ["sh", "-c", "sleep 1000; :"]"#),
        "{:?}",
        limits[0]
    );
    assert_eq!(limits[0].at_ms, 10_000);
    assert!(limits.iter().any(|l| l.at_ms == 71_500), "{limits:?}");
    // Every command started was killed with its group (the sleep its shell started too).
    let pids = pids.lock().unwrap().clone();
    assert!(pids.len() >= 7, "{pids:?}");
    for pid in pids {
        assert!(!group_alive(pid), "process group {pid} is still there");
    }
}
