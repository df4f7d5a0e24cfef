//! The original devd rules + hyperv_vfattach/hyperv_vfup (spec hn.md §3)
//! as an agent over the non-transparent kernel: they build the lagg, and
//! show their known defects.

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
        .any(|e| e.text == "add port mce0 to lagg0"));
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
fn devd_hook_with_a_rule_matcher_runs_the_same_actions() {
    use hvnet_sim::{no_agent, runner::Sim, DevdRules, OriginalScripts};
    let sc = builtin::get("live-migration-nt").unwrap();
    let hook = DevdRules::new(
        &sc.rc_conf,
        Box::new(|l: &str| OriginalScripts::builtin_rules(l)),
    );
    let r = Sim::new(sc, RunOptions::default(), no_agent(), vec![Box::new(hook)])
        .unwrap()
        .run();
    let direct = run_scripts("live-migration-nt");
    let mut a = r.summary.clone();
    let mut b = direct.summary.clone();
    a.wall_ms = 0.0;
    b.wall_ms = 0.0;
    a.agent.clear();
    b.agent.clear();
    assert_eq!(a, b);
    assert!(r
        .timeline
        .iter()
        .any(|e| e.text == "devd: /usr/libexec/hyperv/hyperv_vfup hn0"));
}

#[test]
fn builtin_rules_are_hyperv_conf() {
    use hvnet_sim::OriginalScripts;
    assert_eq!(
        OriginalScripts::builtin_rules("!system=ETHERNET subsystem=mce0 type=IFATTACH"),
        vec!["/usr/libexec/hyperv/hyperv_vfattach mce0 0"]
    );
    assert_eq!(
        OriginalScripts::builtin_rules("!system=HYPERV_NIC_VF subsystem=hn0 type=VF_UP"),
        vec!["/usr/libexec/hyperv/hyperv_vfup hn0"]
    );
    assert!(
        OriginalScripts::builtin_rules("!system=HYPERV_NIC_VF subsystem=hn0 type=VF_DOWN")
            .is_empty()
    );
    assert_eq!(
        OriginalScripts::builtin_rules(
            "!system=DEVFS subsystem=CDEV type=DESTROY cdev=hv_fsvss_dev"
        ),
        vec!["pkill -x hv_vss_daemon"]
    );
    // Untrusted names never reach an action.
    assert!(
        OriginalScripts::builtin_rules("!system=ETHERNET subsystem=a;rm type=IFATTACH").is_empty()
    );
}

#[test]
fn kvp_daemon_follows_its_device() {
    let text = "duration 30s\nat 10s rescind-device hv_kvp_dev return-after 5s\n";
    let sc = hvnet_sim::parse("k.scn", text).unwrap();
    let r = run(sc, RunOptions::default(), original_scripts()).unwrap();
    let lines: Vec<&str> = r.devctl.iter().map(|(_, l)| l.as_str()).collect();
    assert!(lines.contains(&"!system=DEVFS subsystem=CDEV type=DESTROY cdev=hv_kvp_dev"));
    let stops = r
        .timeline
        .iter()
        .filter(|e| e.text.starts_with("stop hv_kvp_daemon"))
        .count();
    let starts = r
        .timeline
        .iter()
        .filter(|e| e.text == "start hv_kvp_daemon")
        .count();
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
fn shell_words_handles_devd_quoting_and_refuses_shell_syntax() {
    use hvnet_sim::scripts::shell_words;
    assert_eq!(
        shell_words("/usr/libexec/hyperv/hyperv_vfup $'hn0'").unwrap(),
        vec!["/usr/libexec/hyperv/hyperv_vfup", "hn0"]
    );
    assert_eq!(shell_words("a 'b c' \"d\"").unwrap(), vec!["a", "b c", "d"]);
    assert_eq!(shell_words("x $'it\\'s'").unwrap(), vec!["x", "it's"]);
    assert!(shell_words("a; rm -rf /").is_none());
    assert!(shell_words("a $(b)").is_none());
    assert!(shell_words("a 'open").is_none());
}

#[test]
fn devd_agent_with_hvnet_devd_matches_the_builtin_scripts_agent() {
    for name in ["live-migration-nt", "static-nt", "demo"] {
        let sc = builtin::get(name).unwrap();
        let a = run(sc.clone(), RunOptions::default(), hvnet_sim::devd_agent()).unwrap();
        let b = run(sc, RunOptions::default(), original_scripts()).unwrap();
        let (mut sa, mut sb) = (a.summary.clone(), b.summary.clone());
        sa.wall_ms = 0.0;
        sb.wall_ms = 0.0;
        sa.agent.clear();
        sb.agent.clear();
        assert_eq!(sa, sb, "{name}");
        let devd_lines: Vec<_> = a
            .timeline
            .iter()
            .filter(|e| e.text.starts_with("devd: "))
            .collect();
        assert!(!devd_lines.is_empty(), "{name}");
        assert!(
            !a.timeline
                .iter()
                .any(|e| e.text.starts_with("not simulated")),
            "{name}"
        );
    }
}
