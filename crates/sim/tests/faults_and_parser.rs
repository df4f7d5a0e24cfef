//! Fault injection (devctl loss/duplication/reordering, failing ops, agent
//! restarts) and scenario parser properties.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use hvnet_sim::{builtin, parse, run, AgentFactory, FaultConfig, GuestAgent, RunOptions};
use hvnet_vf::{Backend, Op};
use proptest::prelude::*;

/// Records every devctl line and start; tries one op per line.
struct Recorder {
    seen: Rc<RefCell<Vec<String>>>,
    failures: Rc<RefCell<u32>>,
}

impl GuestAgent for Recorder {
    fn name(&self) -> &str {
        "recorder"
    }
    fn on_start(&mut self, _now: Duration, _b: &mut dyn Backend) {
        self.seen.borrow_mut().push("START".into());
    }
    fn on_devctl(&mut self, _now: Duration, line: &str, b: &mut dyn Backend) {
        self.seen.borrow_mut().push(line.to_string());
        let op = Op::SetMtu {
            iface: "hn0".into(),
            mtu: 1500,
        };
        if b.apply(&op).is_err() {
            *self.failures.borrow_mut() += 1;
        }
    }
    fn on_timer(&mut self, _now: Duration, _b: &mut dyn Backend) {}
    fn next_wakeup(&self) -> Option<Duration> {
        None
    }
}

type Shared<T> = Rc<RefCell<T>>;

fn recorder() -> (AgentFactory, Shared<Vec<String>>, Shared<u32>) {
    let seen = Rc::new(RefCell::new(Vec::new()));
    let failures = Rc::new(RefCell::new(0));
    let (s, f) = (seen.clone(), failures.clone());
    let factory: AgentFactory = Box::new(move |_| {
        Box::new(Recorder {
            seen: s.clone(),
            failures: f.clone(),
        })
    });
    (factory, seen, failures)
}

fn flapping(faults: FaultConfig, seed: u64) -> (Vec<String>, u32, hvnet_sim::Summary) {
    let (f, seen, fails) = recorder();
    let r = run(
        builtin::get("flapping").unwrap(),
        RunOptions {
            seed,
            faults,
            ..Default::default()
        },
        f,
    )
    .unwrap();
    let s = seen.borrow().clone();
    let n = *fails.borrow();
    (s, n, r.summary)
}

#[test]
fn agents_get_boot_events_queued_before_they_started() {
    let (seen, _, _) = flapping(FaultConfig::default(), 1);
    assert_eq!(seen[0], "START");
    assert_eq!(seen[1], "!system=IFNET subsystem=lo0 type=ATTACH");
    assert!(seen.contains(&"!system=DEVFS subsystem=CDEV type=CREATE cdev=hv_kvp_dev".to_string()));
}

#[test]
fn devctl_loss_dup_and_reorder_are_applied_and_deterministic() {
    let (clean, _, _) = flapping(FaultConfig::default(), 1);
    let lossy = FaultConfig {
        devctl_loss: 0.3,
        ..Default::default()
    };
    let (lost, _, s) = flapping(lossy, 1);
    assert!(lost.len() < clean.len());
    assert!(s.faults_injected["devctl_loss"] > 0);
    assert_eq!(flapping(lossy, 1).0, lost, "same seed, same faults");
    assert_ne!(flapping(lossy, 2).0, lost, "another seed, other faults");
    let dup = FaultConfig {
        devctl_dup: 1.0,
        ..Default::default()
    };
    let (d, _, _) = flapping(dup, 1);
    assert_eq!(d.len(), 2 * (clean.len() - 1) + 1);
    let re = FaultConfig {
        devctl_reorder: 1.0,
        ..Default::default()
    };
    let (r, _, _) = flapping(re, 1);
    let mut a = r.clone();
    let mut b = clean.clone();
    a.sort();
    b.sort();
    assert_eq!(a, b, "reordering keeps every line");
    assert_ne!(r, clean);
}

#[test]
fn failing_ops_return_errors_to_the_agent() {
    let (seen, fails, s) = flapping(
        FaultConfig {
            op_fail: 1.0,
            ..Default::default()
        },
        1,
    );
    assert_eq!(fails as usize, seen.len() - 1);
    assert_eq!(s.faults_injected["op_fail"], u64::from(fails));
}

#[test]
fn restart_agent_action_starts_a_fresh_agent() {
    let text =
        "duration 20s\nat 10s restart-agent\nat 15s faults devctl-loss 1\nat 16s offer-vf hn0\n";
    let (f, seen, _) = recorder();
    let r = run(parse("r.scn", text).unwrap(), RunOptions::default(), f).unwrap();
    let starts = seen.borrow().iter().filter(|l| *l == "START").count();
    assert_eq!(starts, 2);
    // After the loss fault, the VF's events were not delivered.
    assert!(!seen.borrow().iter().any(|l| l.contains("mce0")));
    assert!(r.devctl.iter().any(|(_, l)| l.contains("mce0")));
}

proptest! {
    #[test]
    fn parser_never_panics(text in "[ -~\n]{0,300}") {
        let _ = parse("p.scn", &text);
    }

    #[test]
    fn parser_errors_point_at_a_real_line(lines in proptest::collection::vec("[a-z0-9 .=\"/-]{0,40}", 1..12)) {
        let text = lines.join("\n");
        if let Err(e) = parse("p.scn", &text) {
            prop_assert!(e.line >= 1 && e.line <= lines.len());
            let shown = e.to_string();
            let prefix = format!("p.scn:{}: expected", e.line);
            prop_assert!(shown.starts_with(&prefix), "{}", shown);
        }
    }

    #[test]
    fn durations_in_ms_round_trip(ms in 0u64..10_000_000) {
        prop_assert_eq!(hvnet_sim::scenario::parse_duration(&format!("{ms}ms")), Some(Duration::from_millis(ms)));
    }
}

#[test]
fn restart_before_the_agent_started_is_ignored() {
    let text = "duration 10s\nat 1s restart-agent\n";
    let (f, seen, _) = recorder();
    run(parse("r.scn", text).unwrap(), RunOptions::default(), f).unwrap();
    assert_eq!(seen.borrow().iter().filter(|l| *l == "START").count(), 1);
}

#[test]
fn a_setting_the_kernel_refuses_is_a_sim_error_naming_it() {
    use std::error::Error;
    let sc = parse("t.scn", "duration 1s\ntunable hw.hn.vf_transparent=yes\n").unwrap();
    let Err(e) = run(sc, RunOptions::default(), hvnet_sim::no_agent()) else {
        panic!("the run started");
    };
    assert!(
        matches!(&e, hvnet_sim::SimError::Tunable { name, .. } if name == "hw.hn.vf_transparent")
    );
    assert_eq!(
        e.to_string(),
        "t.scn: tunable hw.hn.vf_transparent=yes: hw.hn.vf_transparent=yes: invalid argument"
    );
    let source = e
        .source()
        .and_then(|s| s.downcast_ref::<hvnet_sim::KernelError>());
    assert!(
        matches!(source, Some(hvnet_sim::KernelError::Invalid(_))),
        "{source:?}"
    );

    let sc = parse("t.scn", "duration 1s\nsysctl kern.vm_guest=none\n").unwrap();
    let Err(e) = run(sc, RunOptions::default(), hvnet_sim::no_agent()) else {
        panic!("the run started");
    };
    assert!(matches!(e, hvnet_sim::SimError::Sysctl { .. }), "{e}");
}

#[test]
fn an_unterminated_quote_is_reported_at_its_line() {
    assert_eq!(
        hvnet_sim::scenario::words("a 'b c"),
        Err(hvnet_sim::scenario::UnterminatedQuote)
    );
    let e = parse(
        "q.scn",
        "duration 1s\nrc ifconfig_hn0=\"DHCP\"\nat 1s guest ifconfig \"hn0\n",
    )
    .unwrap_err();
    assert_eq!(e.line, 3, "{e}");
    assert!(e.to_string().contains("an unterminated quote"), "{e}");
}

#[test]
fn backend_errors_say_what_failed() {
    use hvnet_vf::backend::Cause;
    use hvnet_vf::BackendError;
    let mut world = hvnet_sim::World::new(true);
    let mut faults = hvnet_sim::Faults::new(FaultConfig::default(), 0);
    let mut b = hvnet_sim::SimBackend::new(&mut world, Duration::ZERO, &mut faults);
    let op = Op::SetMtu {
        iface: "hn9".into(),
        mtu: 1500,
    };
    let e = b.apply(&op).unwrap_err();
    assert!(
        matches!(&e, BackendError::Apply { op: "set_mtu", source: Cause::NoSuchInterface(i), .. } if i == "hn9"),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "set_mtu on hn9: interface hn9 does not exist"
    );
    assert!(!e.is_permanent());
    let steer = Op::SteerOn {
        synthetic: "hn0".into(),
        vf: "mce0".into(),
    };
    assert!(b.apply(&steer).unwrap_err().is_permanent());
    assert_eq!(
        b.journal,
        [
            "set hn9 mtu 1500 FAILED: interface hn9 does not exist",
            "steer hn0 via mce0 FAILED: not supported by this backend"
        ]
    );

    let mut faults = hvnet_sim::Faults::new(
        FaultConfig {
            op_fail: 1.0,
            observe_fail: 1.0,
            ..Default::default()
        },
        0,
    );
    let mut b = hvnet_sim::SimBackend::new(&mut world, Duration::ZERO, &mut faults);
    let e = b.observe().unwrap_err();
    assert!(
        matches!(
            e,
            BackendError::Observe {
                source: Cause::Injected
            }
        ),
        "{e:?}"
    );
    assert_eq!(e.to_string(), "observe: injected failure");
    let e = b.apply(&op).unwrap_err();
    assert!(
        matches!(
            e,
            BackendError::Apply {
                source: Cause::Injected,
                ..
            }
        ),
        "{e:?}"
    );
}
