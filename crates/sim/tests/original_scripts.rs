//! The original devd rules + hyperv_vfattach/hyperv_vfup (spec hn.md §3)
//! as an agent over the non-transparent kernel (hvnet-freebsd's userland
//! model running the guest's commands): they build the lagg, and show their
//! known defects.

use hvnet_sim::{builtin, original_scripts, run, RunOptions, RunResult};

fn run_scripts(name: &str) -> RunResult {
    let sc = builtin::get(name).unwrap();
    run(sc, RunOptions::default(), original_scripts()).unwrap()
}

#[test]
fn static_configuration_moves_to_lagg0_with_hn0_as_primary() {
    let r = run_scripts("static-nt");
    assert!(r.summary.passed, "{:#?}", r.summary);
    let l = r.world.ifnet("lagg0").unwrap().lagg.clone().unwrap();
    assert_eq!(l.primary.as_deref(), Some("hn0"));
    assert_eq!(l.ports, vec!["hn0", "mce0"]);
    assert!(r.world.ifnet("hn0").unwrap().ipv4.is_empty());
}

#[test]
fn vfattach_waits_two_seconds_then_vf_up_builds_the_lagg() {
    let r = run_scripts("boot-vf-nt");
    let at = |line: &str| {
        r.devctl
            .iter()
            .find(|(_, l)| l == line)
            .map(|(t, _)| t.as_millis())
            .unwrap_or_else(|| panic!("{line} never emitted"))
    };
    let attach = at("!system=ETHERNET subsystem=mce0 type=IFATTACH");
    let vf_up = at("!system=HYPERV_NIC_VF subsystem=hn0 type=VF_UP");
    assert_eq!(vf_up - attach, 2000, "hyperv_vf_delay defaults to 2");
    assert!(at("!system=IFNET subsystem=lagg0 type=ATTACH") >= vf_up);
    // DHCP moves to lagg0: the address leaves the VM while dhclient runs.
    assert_eq!(r.summary.connections_broken, 1);
    assert!(r.world.holders("10.0.0.4".parse().unwrap()) == vec!["lagg0".to_string()]);
}

#[test]
fn live_migration_shows_the_dhclient_on_a_lagg_port_defect() {
    let r = run_scripts("live-migration-nt");
    assert!(!r.summary.passed);
    assert!(r
        .summary
        .violations
        .iter()
        .any(|v| v.contains("dhclient: running on hn0, a port of lagg0")));
    // The new VF is added to the existing lagg and carries traffic again.
    assert!(r
        .timeline
        .iter()
        .any(|e| e.text == "$ /sbin/ifconfig lagg0 laggport mce0"));
    assert!(r.summary.back_to_hn_ms.is_some());
}

#[test]
fn aliases_are_not_moved_by_the_original_vfup() {
    let r = run_scripts("aliases-nt");
    assert!(!r.summary.passed);
    assert!(r.world.holders("10.0.0.5".parse().unwrap()).is_empty());
    assert!(r.summary.packets.lost_by_reason.contains_key("no_address"));
}

#[test]
fn transparent_mode_scripts_do_nothing() {
    let r = run_scripts("demo");
    assert!(r.summary.passed);
    assert!(r.world.ifnet("lagg0").is_none());
    // KVP and VSS daemons follow their device nodes.
    assert_eq!(r.world.procs.len() - r.world.dhclients.len(), 2);
}

#[test]
fn kvp_daemon_follows_its_device() {
    let text = "duration 30s\nat 10s rescind-device hv_kvp_dev return-after 5s\n";
    let sc = hvnet_sim::parse("k.scn", text).unwrap();
    let r = run(sc, RunOptions::default(), original_scripts()).unwrap();
    let lines: Vec<&str> = r.devctl.iter().map(|(_, l)| l.as_str()).collect();
    assert!(lines.contains(&"!system=DEVFS subsystem=CDEV type=DESTROY cdev=hv_kvp_dev"));
    let count = |text: &str| r.timeline.iter().filter(|e| e.text == text).count();
    let stops = count("$ pkill -x hv_kvp_daemon");
    let starts = count("$ /usr/sbin/hv_kvp_daemon");
    assert_eq!((stops, starts), (1, 2));
    let kvp = r
        .world
        .procs
        .values()
        .filter(|p| p.kind == hvnet_sim::world::ProcKind::Daemon(hvnet_vf::Daemon::Kvp))
        .count();
    assert_eq!(kvp, 1);
}

#[test]
fn every_action_devd_picks_runs_in_every_builtin_scenario() {
    for name in builtin::names() {
        let r = run_scripts(name);
        let devd: Vec<_> = r
            .timeline
            .iter()
            .filter(|e| e.text.starts_with("devd: "))
            .collect();
        assert!(!devd.is_empty(), "{name}");
        assert!(
            !devd
                .iter()
                .any(|e| e.text.starts_with("devd: action not run")),
            "{name}: {devd:?}"
        );
        // hyperv.conf's own action text, values as words.
        assert!(
            r.timeline.iter().any(|e| e
                .text
                .starts_with("devd: /usr/libexec/hyperv/hyperv_vfattach ")
                && e.text.ends_with(" 0")),
            "{name}"
        );
    }
}

#[test]
fn backend_faults_do_not_reach_the_scripts_commands() {
    // op-fail/observe-fail are the backend's (agents acting through ops); the scripts run
    // commands, as a `--agent freebsd` manager does, and build the lagg regardless.
    let text = "duration 30s\nmode non-transparent\nrc ifconfig_hn0=\"DHCP\"\n\
                at 1s faults op-fail 1 observe-fail 1\nat 5s offer-vf hn0\n\
                expect at 20s path vf\nexpect ipv4 10.0.0.4 on lagg0\n";
    let sc = hvnet_sim::parse("faulty.scn", text).unwrap();
    let r = run(sc, RunOptions::default(), original_scripts()).unwrap();
    assert!(r.summary.passed, "{:#?}", r.summary);
    assert!(r.summary.faults_injected.is_empty());
}
