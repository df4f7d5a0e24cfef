//! FreeBSD's devd rules and scripts as one model (hvnet_freebsd::userland) against a scripted
//! runner: devd's engine picks the rule, the action's words go to the shipped scripts, which
//! run their commands through the runner; a sleeping script waits for the caller's clock.

use std::time::Duration;

use hvnet_devd::{MediaType, NoMedia, Quoting, StaticMedia};
use hvnet_freebsd::userland::{action_words, DevdRules, Userland, HYPERV_CONF};
use hvnet_freebsd::{Output, ScriptedRunner};
use hvnet_rcconf::RcConf;

fn s(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn userland(rc: &str) -> Userland {
    Userland::new(
        RcConf::from_text("/etc/rc.conf", rc),
        RcConf::from_text("/etc/rc.conf", rc),
    )
}

fn ethernet(names: &[&str]) -> StaticMedia {
    let mut m = StaticMedia::new();
    for n in names {
        m.insert(*n, MediaType::Ethernet);
    }
    m
}

fn commands(line: &str, media: &dyn hvnet_devd::MediaProbe) -> Vec<String> {
    DevdRules::hyperv()
        .commands(line, media, Quoting::SingleQuotes)
        .into_iter()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn the_rules_are_hyperv_conf_and_devd_confs_dhclient_rule() {
    assert_eq!(
        commands("!system=ETHERNET subsystem=mce0 type=IFATTACH", &NoMedia),
        ["/usr/libexec/hyperv/hyperv_vfattach 'mce0' 0"]
    );
    assert_eq!(
        commands("!system=HYPERV_NIC_VF subsystem=hn0 type=VF_UP", &NoMedia),
        ["/usr/libexec/hyperv/hyperv_vfup 'hn0'"]
    );
    assert!(commands("!system=HYPERV_NIC_VF subsystem=hn0 type=VF_DOWN", &NoMedia).is_empty());
    assert_eq!(
        commands(
            "!system=DEVFS subsystem=CDEV type=DESTROY cdev=hv_fsvss_dev",
            &NoMedia
        ),
        ["pkill -x hv_vss_daemon"]
    );
    // `media-type "ethernet"`: only an interface whose media says so.
    let link_up = "!system=IFNET subsystem=hn0 type=LINK_UP";
    assert!(commands(link_up, &NoMedia).is_empty());
    assert_eq!(
        commands(link_up, &ethernet(&["hn0"])),
        ["service dhclient quietstart 'hn0'"]
    );
    assert!(commands("not an event", &NoMedia).is_empty());
}

#[test]
fn event_data_stays_one_word() {
    for name in ["a;rm", "$(reboot)", "it's", "`x`|y", "x\\'y", "*"] {
        let line = format!("!system=ETHERNET subsystem={name} type=IFATTACH");
        let cmd = commands(&line, &NoMedia);
        assert_eq!(
            action_words(&cmd[0]).unwrap(),
            ["/usr/libexec/hyperv/hyperv_vfattach", name, "0"],
            "{line}"
        );
    }
}

#[test]
fn action_words_remove_quotes_and_refuse_more_than_one_simple_command() {
    assert_eq!(
        action_words("a 'b c' \"d\" 'it'\\''s'").unwrap(),
        ["a", "b c", "d", "it's"]
    );
    assert!(action_words("a; rm -rf /").is_err());
    assert!(action_words("a | b").is_err());
    assert!(action_words("a $(b)").is_err());
    assert!(action_words("a 'open").is_err());
}

/// A non-transparent kernel with mce0 paired to hn0.
fn guest() -> ScriptedRunner {
    let mut r = ScriptedRunner::new();
    r.strict = true;
    r.answer("sysctl -n hw.hn.vf_transparent", Output::ok("0\n"));
    r.answer("sysctl -n hw.hn.vflist", Output::ok("mce0\n"));
    r.answer("ifconfig mce0 up", Output::ok(""));
    r.answer("sysctl -n dev.hn.0.vf", Output::ok("mce0\n"));
    r.answer("ifconfig lagg0", Output::failed(1, "does not exist"));
    for ok in [
        "ifconfig lagg0 create",
        "ifconfig lagg0 laggproto failover laggport hn0 laggport mce0",
        "ifconfig lagg0 inet6 no_dad",
        "ifconfig lagg0 up",
        "dhclient -b lagg0",
        "dhclient hn0",
        "dhclient -b hn0",
    ] {
        r.answer(ok, Output::ok(""));
    }
    r.answer_once("ifconfig hn0 -alias", Output::ok(""));
    r.answer("ifconfig hn0 -alias", Output::failed(1, "no address"));
    r
}

#[test]
fn a_vf_attach_starts_the_delayed_bring_up_and_vf_up_builds_the_lagg() {
    let mut u = userland("ifconfig_hn0=\"DHCP\"\nhyperv_vf_delay=\"5\"\n");
    let mut r = guest();
    u.on_devctl(
        s(10),
        "!system=ETHERNET subsystem=mce0 type=IFATTACH",
        &NoMedia,
        &mut r,
    );
    // devd's run daemonizes; the copy reads the sysctl, then sleeps.
    assert_eq!(
        r.labels(),
        [
            "sysctl -n hw.hn.vf_transparent",
            "sysctl -n hw.hn.vflist",
            "sysctl -n hw.hn.vf_transparent",
        ]
    );
    assert_eq!(u.next_wakeup(), Some(s(15)));
    u.on_timer(s(14), &mut r);
    assert_eq!(r.calls.len(), 3, "not yet");
    u.on_timer(s(15), &mut r);
    assert_eq!(r.labels().last().unwrap(), "ifconfig mce0 up");
    assert_eq!(u.next_wakeup(), None);
    let log = u.take_log();
    assert_eq!(
        log,
        [
            "devd: /usr/libexec/hyperv/hyperv_vfattach mce0 0",
            "$ /sbin/sysctl -n hw.hn.vf_transparent",
            "$ /sbin/sysctl -n hw.hn.vflist",
            "$ /usr/sbin/daemon -f /usr/libexec/hyperv/hyperv_vfattach mce0 5",
            "daemon: /usr/libexec/hyperv/hyperv_vfattach mce0 5",
            "$ /sbin/sysctl -n hw.hn.vf_transparent",
            "$ sleep 5",
            "$ /sbin/ifconfig mce0 up",
        ]
    );
    // VF_UP: the shipped hyperv_vfup, command for command.
    let before = r.calls.len();
    u.on_devctl(
        s(15),
        "!system=HYPERV_NIC_VF subsystem=hn0 type=VF_UP",
        &NoMedia,
        &mut r,
    );
    assert_eq!(
        r.labels()[before..],
        [
            "sysctl -n dev.hn.0.vf",
            "ifconfig lagg0",
            "ifconfig lagg0 create",
            "ifconfig lagg0 laggproto failover laggport hn0 laggport mce0",
            "ifconfig lagg0 inet6 no_dad",
            "ifconfig hn0 -alias",
            "ifconfig hn0 -alias",
            "ifconfig lagg0 up",
            "dhclient -b lagg0",
        ]
    );
}

#[test]
fn rules_decide_what_runs() {
    // hyperv.conf with its VF_UP block commented out (as users do when they do not need
    // live migration): VF_UP runs nothing.
    let text = HYPERV_CONF.replace(
        "\tmatch \"system\"\t\t\"HYPERV_NIC_VF\";",
        "\tmatch \"system\"\t\t\"NO_SUCH_SYSTEM\";",
    );
    let rules = DevdRules::from_files(&[("hyperv.conf", &text)]).unwrap();
    let mut u = Userland::with_rules(rules, RcConf::new(), RcConf::new());
    let mut r = guest();
    u.on_devctl(
        s(1),
        "!system=HYPERV_NIC_VF subsystem=hn0 type=VF_UP",
        &NoMedia,
        &mut r,
    );
    assert!(r.calls.is_empty());
    assert!(u.take_log().is_empty());
}

#[test]
fn link_up_starts_dhclient_only_where_rc_conf_asks_for_dhcp() {
    let line = |i: &str| format!("!system=IFNET subsystem={i} type=LINK_UP");
    let media = ethernet(&["hn0", "mce0"]);
    let mut u = userland("ifconfig_hn0=\"DHCP\"\n");
    let mut r = guest();
    u.on_devctl(s(1), &line("hn0"), &media, &mut r);
    u.on_devctl(s(1), &line("mce0"), &media, &mut r);
    assert_eq!(r.labels(), ["dhclient hn0"]);
    assert_eq!(
        u.take_log()[2..],
        [
            "devd: service dhclient quietstart mce0",
            "  `service dhclient quietstart mce0` exited 1",
        ]
    );
    let mut u = userland("ifconfig_hn0=\"DHCP\"\nbackground_dhclient=\"YES\"\n");
    let mut r = guest();
    u.on_devctl(s(1), &line("hn0"), &media, &mut r);
    assert_eq!(r.labels(), ["dhclient -b hn0"]);
}

#[test]
fn other_programs_go_to_the_runner() {
    let mut u = userland("");
    let mut r = ScriptedRunner::new();
    u.on_devctl(
        s(1),
        "!system=DEVFS subsystem=CDEV type=CREATE cdev=hv_kvp_dev",
        &NoMedia,
        &mut r,
    );
    u.on_devctl(
        s(2),
        "!system=DEVFS subsystem=CDEV type=DESTROY cdev=hv_kvp_dev",
        &NoMedia,
        &mut r,
    );
    assert_eq!(r.labels(), ["hv_kvp_daemon", "pkill -x hv_kvp_daemon"]);
    assert_eq!(r.calls[0].program, "/usr/sbin/hv_kvp_daemon");
}
