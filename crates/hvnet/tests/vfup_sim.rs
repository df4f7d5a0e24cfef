//! `hvnet vfup` (the hyperv_vfup drop-in) run against the simulated kernel, commands taking
//! their time: the improved move never leaves hn0's address on no interface; the shipped
//! script's does (§3.3 step 4d before 4f).

use std::time::Duration;

use hvnet_freebsd::scripts::{vfup, VfupMode, VfupOptions};
use hvnet_freebsd::{Command, CommandRunner, Output, RunError};
use hvnet_sim::{RunOptions, Sim, Summary};

const SCENARIO: &str = "mode non-transparent
duration 20s
rc ifconfig_hn0=\"inet 10.0.0.4/24\"
rc defaultrouter=\"10.0.0.1\"
dhcp off
traffic rate 10000
at 5s offer-vf hn0
";

/// The simulator's userland as the script's command runner.
struct OnSim<'a>(&'a mut Sim);

impl CommandRunner for OnSim<'_> {
    fn run(&mut self, c: &Command) -> Result<Output, RunError> {
        let mut argv = vec![c.name().to_string()];
        argv.extend(c.args.iter().cloned());
        let o = self.0.command(&argv);
        Ok(Output {
            status: o.status,
            stdout: o.stdout,
            stderr: o.stderr,
        })
    }

    fn exists(&mut self, _path: &str) -> bool {
        false
    }

    fn read_file(&mut self, _path: &str) -> Result<Option<String>, RunError> {
        Ok(None)
    }
}

/// At 7 s hyperv_vfattach brings the VF up (devd then runs hyperv_vfup for VF_UP).
fn run(mode: VfupMode) -> (Summary, hvnet_sim::World) {
    let sc = hvnet_sim::parse("vfup.scn", SCENARIO).unwrap();
    let rc = hvnet_sim::agent::load_rc(&sc.rc_conf);
    let mut sim = Sim::new(sc, RunOptions::default(), hvnet_sim::no_agent(), Vec::new()).unwrap();
    sim.advance_to(Duration::from_secs(7));
    let up: Vec<String> = ["ifconfig", "mce0", "up"].map(String::from).to_vec();
    assert_eq!(sim.command(&up).status, 0);
    let opts = VfupOptions {
        mode,
        ..Default::default()
    };
    let res = vfup(&mut OnSim(&mut sim), &rc, "hn0", &opts);
    assert_eq!(res.exit_code, 0, "{res:?}");
    let end = sim.end();
    sim.advance_to(end);
    let r = sim.finish_at_end(0.0);
    (r.summary, r.world)
}

#[test]
fn the_improved_vfup_never_leaves_the_address_on_no_interface() {
    let (s, w) = run(VfupMode::Improved);
    assert_eq!(s.connections_broken, 0, "{s:?}");
    // What remains is inbound only, on the VF until it is a port: VF_UP comes after the
    // VF is up, and the lagg needs 3 commands (create, address, ports).
    assert_eq!(
        s.packets.lost_by_reason.keys().collect::<Vec<_>>(),
        ["wrong_interface"]
    );
    assert!(s.packets.lost <= 30, "{s:?}");
    assert_eq!(w.holders("10.0.0.4".parse().unwrap()), ["lagg0"]);
    assert_eq!(w.routes.len(), 1);
    assert_eq!(w.routes[0].iface.as_deref(), Some("lagg0"));
    assert_eq!(s.invariant_violations, 0, "{:?}", s.violations);

    let (s, _) = run(VfupMode::Faithful);
    assert_eq!(s.connections_broken, 1, "{s:?}");
    assert!(s.packets.lost_by_reason["no_address"] > 0, "{s:?}");
}
