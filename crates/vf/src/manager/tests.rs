use std::cell::RefCell;
use std::rc::Rc;

use super::*;
use crate::model::{IfKind, Interface, Mac};
use crate::{DataPath, MemoryBackend, ModeSetting, NetConfig, VfState};

fn mac() -> Mac {
    "00:15:5d:00:00:01".parse().unwrap()
}

fn vf(name: &str) -> Interface {
    Interface::running(
        name,
        mac(),
        IfKind::Vf {
            driver: "mlx5_core".into(),
        },
    )
}

/// hn0 in steered mode, with `vf_delay` seconds of delay.
fn steered(vf_delay: u64) -> (Manager, MemoryBackend) {
    let m = Manager::new(
        ManagerConfig {
            mode: ModeSetting::Steered,
            ..Default::default()
        }
        .with_vf_delay_secs(vf_delay),
        Box::new(NetConfig::default()),
    );
    let mut b = MemoryBackend::default();
    b.view
        .interfaces
        .push(Interface::running("hn0", mac(), IfKind::Synthetic));
    (m, b)
}

fn at(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

fn pair(m: &Manager) -> (DataPath, VfState) {
    let p = &m.status().unwrap().pairs[0];
    (p.path, p.vf_state)
}

/// The planned switch's hold: announced, the VF is left at once and stays unused while it is
/// there; once it has gone, a VF that comes (back) is used after its delay.
#[test]
fn a_planned_switch_holds_the_vf_off_until_it_has_gone() {
    let (mut m, mut b) = steered(2);
    b.view.interfaces.push(vf("vf0"));
    for t in (0..=2200).step_by(100) {
        m.step(at(t), &mut b);
    }
    assert_eq!(pair(&m), (DataPath::Vf, VfState::Ready));
    let line = m.leave("hn0", at(2300));
    assert!(line.message.contains("VF vf0 goes"), "{line:?}");
    m.step(at(2300), &mut b);
    assert!(b.view.egress_redirects.is_empty(), "left at once");
    for t in (2400..=5000).step_by(100) {
        m.step(at(t), &mut b);
    }
    assert_eq!(pair(&m), (DataPath::Synthetic, VfState::Leaving));
    assert!(
        b.view.egress_redirects.is_empty(),
        "held off while it is there"
    );
    // It goes; one comes back and is used after its delay.
    b.view.interfaces.retain(|i| i.name != "vf0");
    m.step(at(5100), &mut b);
    b.view.interfaces.push(vf("vf0"));
    for t in (5200..=7400).step_by(100) {
        m.step(at(t), &mut b);
    }
    assert_eq!(pair(&m), (DataPath::Vf, VfState::Ready));
    // An announcement for a NIC without a VF changes nothing.
    let line = m.leave("hn9", at(7500));
    assert!(line.message.contains("hn9 has no VF"), "{line:?}");
    assert!(m.leaving().is_empty());
}

#[test]
fn a_planned_hold_ends_when_the_removal_never_comes() {
    let (mut m, mut b) = steered(2);
    b.view.interfaces.push(vf("vf0"));
    for t in (0..=2200).step_by(100) {
        m.step(at(t), &mut b);
    }
    m.leave("hn0", at(2300));
    let mut warned = Vec::new();
    for t in (2300..=2300 + 31_000).step_by(500) {
        warned.extend(m.step(at(t), &mut b).log);
    }
    assert!(m.leaving().is_empty());
    assert!(warned
        .iter()
        .any(|l| l.level == LogLevel::Warn && l.message.contains("still here")));
    assert_eq!(pair(&m), (DataPath::Vf, VfState::Ready));
}

/// What a probe was asked, and what it answers.
#[derive(Debug, Default)]
struct ProbeState {
    starts: Vec<Duration>,
    stops: u32,
    /// `None`: a check never answers (hangs).
    answer: Option<bool>,
}

struct FakeProbe(Rc<RefCell<ProbeState>>);

impl GateProbe for FakeProbe {
    fn start(&mut self, now: Duration) {
        self.0.borrow_mut().starts.push(now);
    }
    fn poll(&mut self, _now: Duration) -> Option<bool> {
        self.0.borrow().answer
    }
    fn stop(&mut self) {
        self.0.borrow_mut().stops += 1;
    }
    fn describe(&self) -> String {
        "fake".into()
    }
}

fn gated(answer: Option<bool>) -> (Manager, MemoryBackend, Rc<RefCell<ProbeState>>) {
    let state = Rc::new(RefCell::new(ProbeState {
        answer,
        ..Default::default()
    }));
    let (m, b) = steered(120);
    (m.with_gate(Box::new(FakeProbe(state.clone()))), b, state)
}

/// A gate that says ready releases the VF at the 2 s minimum instead of its 120 s delay;
/// nothing is checked while no VF waits.
#[test]
fn a_ready_gate_releases_the_vf_after_the_minimum() {
    let (mut m, mut b, probe) = gated(Some(true));
    m.step(at(0), &mut b);
    m.step(at(500), &mut b);
    assert!(probe.borrow().starts.is_empty(), "no VF waits");
    b.view.interfaces.push(vf("vf0"));
    // Seen at 1 s: released at 3 s, on the VF one settle step later.
    let mut t = 1000;
    while m.step(at(t), &mut b).status.pairs[0].path != DataPath::Vf {
        t += 100;
        assert!(t < 10_000, "never released");
    }
    assert!((3000..=3200).contains(&t), "{t}");
    assert!(!probe.borrow().starts.is_empty());
    // Released: no more checks.
    let n = probe.borrow().starts.len();
    for t in (t..t + 5000).step_by(500) {
        m.step(at(t), &mut b);
    }
    assert_eq!(probe.borrow().starts.len(), n);
}

/// A check that hangs never holds up a step: it is stopped at its time limit with a log
/// line, the waiting VF is used after its full delay, and a VF in use that goes while a
/// check hangs is failed over from at that very step.
#[test]
fn a_hung_gate_is_stopped_at_its_time_limit_and_never_holds_up_failover() {
    let (mut m, mut b, probe) = gated(None);
    b.view.interfaces.push(vf("vf0"));
    m.step(at(0), &mut b);
    assert_eq!(pair(&m).1, VfState::Waiting);
    assert_eq!(probe.borrow().starts, [at(0)]);
    for t in (500..=9500).step_by(500) {
        m.step(at(t), &mut b);
    }
    assert_eq!(probe.borrow().stops, 0, "still within its time limit");
    let limit = m.step(at(10_000), &mut b);
    assert_eq!(probe.borrow().stops, 1);
    let line = limit
        .log
        .iter()
        .find(|l| l.message.contains("no answer within 10 s"))
        .unwrap_or_else(|| panic!("no time-limit line in {:?}", limit.log));
    assert_eq!(line.level, LogLevel::Warn);
    assert!(line.message.contains("readiness gate fake"), "{line:?}");
    // A fresh check starts for the VF that still waits.
    assert_eq!(probe.borrow().starts.last(), Some(&at(10_000)));
    // The VF is used after its delay, whatever the gate.
    for t in (10_500..=120_500).step_by(500) {
        m.step(at(t), &mut b);
    }
    assert_eq!(pair(&m), (DataPath::Vf, VfState::Ready));
    // A second NIC's VF waits on the gate, whose check hangs ...
    let mac2: Mac = "00:15:5d:00:00:02".parse().unwrap();
    b.view
        .interfaces
        .push(Interface::running("hn1", mac2, IfKind::Synthetic));
    b.view.interfaces.push(Interface::running(
        "vf9",
        mac2,
        IfKind::Vf {
            driver: "mlx5_core".into(),
        },
    ));
    m.step(at(121_000), &mut b);
    m.step(at(121_500), &mut b);
    let running = probe.borrow().starts.last() == Some(&at(121_000));
    assert!(running, "{:?}", probe.borrow());
    // ... when hn0's VF goes: that step takes hn0's traffic off it.
    b.view.interfaces.retain(|i| i.name != "vf0");
    let rep = m.step(at(122_000), &mut b);
    assert!(b.view.egress_redirects.is_empty(), "{:?}", rep.applied);
    let rep = m.step(at(122_100), &mut b);
    assert_eq!(rep.status.pairs[0].path, DataPath::Synthetic);
    assert_eq!(rep.status.pairs[1].vf_state, VfState::Waiting);
    // vf9 goes too, mid-check: nothing waits, so the check is stopped.
    let stops = probe.borrow().stops;
    b.view.interfaces.retain(|i| i.name != "vf9");
    m.step(at(122_500), &mut b);
    assert_eq!(probe.borrow().stops, stops + 1, "nothing waits: stopped");
}

struct Listed;

impl OverrideSource for Listed {
    fn overrides(&self, vfup_dir: &str) -> BTreeSet<String> {
        assert_eq!(vfup_dir, "/etc/hyperv");
        ["hn0".to_string()].into()
    }
}

/// Non-transparent mode hands a pair with an override program to it.
#[test]
fn overrides_come_from_the_configured_directory() {
    let (_, mut b) = steered(2);
    let mut m = Manager::new(
        ManagerConfig {
            vfup_dir: "/etc/hyperv".into(),
            ..Default::default()
        },
        Box::new(NetConfig::default()),
    )
    .with_overrides(Box::new(Listed));
    b.view.interfaces.push(vf("vf0"));
    let rep = m.step(at(0), &mut b);
    assert!(rep.status.pairs[0].overridden, "{:?}", rep.status);
}
