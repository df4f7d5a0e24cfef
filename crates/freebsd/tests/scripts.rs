//! hyperv_vfattach / hyperv_vfup as library functions: exact command
//! sequences and exit codes, against a scripted runner.

use hvnet_freebsd::scripts::{vfattach, vfup, Resume, Step, VfupMode, VfupOptions};
use hvnet_freebsd::{Output, ScriptedRunner};
use hvnet_rcconf::RcConf;

fn rc(text: &str) -> RcConf {
    RcConf::from_text("/etc/rc.conf", text)
}

fn reexec() -> Vec<String> {
    vec!["/usr/libexec/hyperv/hyperv_vfattach".into()]
}

#[test]
fn vfattach_transparent_does_nothing() {
    let mut r = ScriptedRunner::new();
    r.answer("sysctl -n hw.hn.vf_transparent", Output::ok("1\n"));
    let mut slept = Vec::new();
    let res = vfattach(&mut r, "mce0", "0", &reexec(), || {
        panic!("rc.conf not read")
    })
    .finish(&mut r, &mut |s| slept.push(s));
    assert_eq!(res.exit_code, 0);
    assert_eq!(r.labels(), ["sysctl -n hw.hn.vf_transparent"]);
    assert!(slept.is_empty());
}

#[test]
fn vfattach_delayed_run_sleeps_then_brings_up() {
    let mut r = ScriptedRunner::new();
    r.answer(
        "sysctl -n hw.hn.vf_transparent",
        Output::failed(1, "unknown oid"),
    );
    r.answer("ifconfig mce0 up", Output::failed(1, "no such interface"));
    // It sleeps before anything else: the caller decides how long that takes.
    let step = vfattach(&mut r, "mce0", "120", &reexec(), || {
        panic!("rc.conf not read")
    });
    assert_eq!(
        step,
        Step::Sleep {
            secs: 120,
            then: Resume::BringUp {
                iface: "mce0".into()
            }
        }
    );
    assert_eq!(r.labels(), ["sysctl -n hw.hn.vf_transparent"]);
    let mut slept = Vec::new();
    let res = step.finish(&mut r, &mut |s| slept.push(s));
    assert_eq!(slept, [120]);
    assert_eq!(res.exit_code, 1, "exit status of ifconfig up");
    assert_eq!(
        r.labels(),
        ["sysctl -n hw.hn.vf_transparent", "ifconfig mce0 up"]
    );
}

#[test]
fn vfattach_devd_run_daemonizes_for_a_listed_vf() {
    let mut r = ScriptedRunner::new();
    r.answer("sysctl -n hw.hn.vf_transparent", Output::ok("0\n"));
    r.answer("sysctl -n hw.hn.vflist", Output::ok("mce0 mce1\n"));
    let res = vfattach(&mut r, "mce1", "0", &reexec(), || {
        rc("hyperv_vf_delay=\"120\"\n")
    })
    .finish(&mut r, &mut |_| panic!("no sleep"));
    assert_eq!(res.exit_code, 0);
    assert_eq!(
        r.labels().last().unwrap(),
        "daemon -f /usr/libexec/hyperv/hyperv_vfattach mce1 120"
    );
    // Delay below 2 (or garbage) becomes 2; hvnet can re-exec itself.
    let mut r2 = ScriptedRunner::new();
    r2.answer("sysctl -n hw.hn.vflist", Output::ok("mce0\n"));
    let me = vec!["/usr/local/sbin/hvnet".to_string(), "vfattach".to_string()];
    vfattach(&mut r2, "mce0", "", &me, || rc("hyperv_vf_delay=1\n")).finish(&mut r2, &mut |_| {});
    assert_eq!(
        r2.labels().last().unwrap(),
        "daemon -f /usr/local/sbin/hvnet vfattach mce0 2"
    );
}

#[test]
fn vfattach_ignores_non_vfs_and_old_kernels() {
    let mut r = ScriptedRunner::new();
    r.answer("sysctl -n hw.hn.vflist", Output::ok("mce0\n"));
    let res = vfattach(&mut r, "mce00", "0", &reexec(), || rc("")).finish(&mut r, &mut |_| {});
    assert_eq!(res.exit_code, 0);
    assert!(
        !r.labels().iter().any(|l| l.starts_with("daemon")),
        "exact word match only"
    );
    let mut old = ScriptedRunner::new();
    old.strict = true;
    let res = vfattach(&mut old, "mce0", "0", &reexec(), || rc("")).finish(&mut old, &mut |_| {});
    assert_eq!(res.exit_code, 0);
    assert_eq!(
        old.labels(),
        ["sysctl -n hw.hn.vf_transparent", "sysctl -n hw.hn.vflist"]
    );
}

fn vfup_runner() -> ScriptedRunner {
    let mut r = ScriptedRunner::new();
    r.answer("sysctl -n dev.hn.0.vf", Output::ok("mce0\n"));
    r.answer(
        "ifconfig lagg0",
        Output::failed(1, "ifconfig: interface lagg0 does not exist"),
    );
    // Two addresses to remove, then -alias fails.
    r.answer_once("ifconfig hn0 -alias", Output::ok(""));
    r.answer_once("ifconfig hn0 -alias", Output::ok(""));
    r.answer(
        "ifconfig hn0 -alias",
        Output::failed(1, "can't assign requested address"),
    );
    r
}

#[test]
fn vfup_faithful_first_time_static() {
    let mut r = vfup_runner();
    r.files
        .insert("/var/run/dhclient.hn0.pid".into(), "555\n".into());
    r.files
        .insert("/var/run/dhclient/dhclient.hn0.pid".into(), "556\n".into());
    let conf = rc(
        "ifconfig_hn0=\"inet 10.0.0.4/24 mtu 1500\"\nifconfig_hn0_alias0=\"inet 10.0.0.9/32\"\n",
    );
    let res = vfup(&mut r, &conf, "hn0", &VfupOptions::default());
    assert_eq!(res.exit_code, 0);
    assert!(res.messages.is_empty());
    assert_eq!(
        r.labels(),
        [
            "sysctl -n dev.hn.0.vf",
            "ifconfig lagg0",
            "ifconfig lagg0 create",
            "ifconfig lagg0 laggproto failover laggport hn0 laggport mce0",
            "ifconfig lagg0 inet6 no_dad",
            "kill -TERM 555",
            "ifconfig hn0 -alias",
            "ifconfig hn0 -alias",
            "ifconfig hn0 -alias",
            "ifconfig lagg0 inet 10.0.0.4/24 mtu 1500",
        ]
    );
}

#[test]
fn vfup_faithful_dhcp_sync_and_async() {
    for (cfg, dh) in [
        ("SYNCDHCP", "dhclient lagg0"),
        ("DHCP", "dhclient -b lagg0"),
    ] {
        let mut r = vfup_runner();
        r.answer(dh, Output::failed(2, "x"));
        let res = vfup(
            &mut r,
            &rc(&format!("ifconfig_hn0=\"{cfg}\"\n")),
            "hn0",
            &VfupOptions::default(),
        );
        let l = r.labels();
        assert_eq!(&l[l.len() - 2..], ["ifconfig lagg0 up", dh]);
        assert_eq!(res.exit_code, 2, "last command's status");
    }
}

#[test]
fn vfup_race_and_create_failure() {
    let mut r = ScriptedRunner::new();
    r.answer("sysctl -n dev.hn.3.vf", Output::ok("\n"));
    let res = vfup(&mut r, &rc(""), "hn3", &VfupOptions::default());
    assert_eq!(res.exit_code, 0);
    assert_eq!(res.messages, ["hn3: VF was detached"]);
    let mut r = ScriptedRunner::new();
    r.answer("sysctl -n dev.hn.1.vf", Output::ok("mce1\n"));
    r.answer("ifconfig lagg1", Output::failed(1, "no"));
    r.answer("ifconfig lagg1 create", Output::failed(1, "EEXIST"));
    let res = vfup(&mut r, &rc(""), "hn1", &VfupOptions::default());
    assert_eq!(res.exit_code, 1);
    assert_eq!(res.messages, ["lagg1 creation failed"]);
}

#[test]
fn vfup_existing_lagg_adds_missing_vf_only() {
    let shown = "lagg0: flags=8843<UP> mtu 1500\n\tlaggproto failover\n\tlaggport: hn0 flags=5<MASTER,ACTIVE>\n\tlaggport: mce10 flags=0<>\n";
    let mut r = ScriptedRunner::new();
    r.answer("sysctl -n dev.hn.0.vf", Output::ok("mce1\n"));
    r.answer("ifconfig lagg0", Output::ok(shown));
    let res = vfup(&mut r, &rc(""), "hn0", &VfupOptions::default());
    assert_eq!(res.exit_code, 0);
    // Faithful: grep "laggport: mce1" matches "laggport: mce10".
    assert_eq!(r.labels().len(), 2);
    let mut r = ScriptedRunner::new();
    r.answer("sysctl -n dev.hn.0.vf", Output::ok("mce1\n"));
    r.answer("ifconfig lagg0", Output::ok(shown));
    let opts = VfupOptions {
        mode: VfupMode::Improved,
        ..Default::default()
    };
    vfup(&mut r, &rc(""), "hn0", &opts);
    assert_eq!(r.labels().last().unwrap(), "ifconfig lagg0 laggport mce1");
}

#[test]
fn vfup_override_hook_runs_instead() {
    let mut r = ScriptedRunner::new();
    r.files
        .insert("/usr/libexec/hyperv/hyperv_vfup.hn0".into(), String::new());
    r.answer("hyperv_vfup.hn0", Output::failed(3, ""));
    let res = vfup(&mut r, &rc(""), "hn0", &VfupOptions::default());
    assert_eq!(res.exit_code, 3);
    assert_eq!(r.labels(), ["hyperv_vfup.hn0"]);
}

#[test]
fn vfup_improved_moves_everything() {
    let mut r = vfup_runner();
    r.answer(
        "ifconfig hn0",
        Output::ok("hn0: flags=8843<UP> mtu 1500\n\tinet 10.0.0.4 netmask 0xffffff00\n\tinet 10.0.0.9 netmask 0xffffffff\n"),
    );
    r.files
        .insert("/var/run/dhclient/dhclient.hn0.pid".into(), "556\n".into());
    r.answer("ps -p 556 -o comm=", Output::ok("dhclient\n"));
    let conf = rc("ifconfig_hn0=\"inet 10.0.0.4/24 description 'up link'\"\n\
         ifconfig_hn0_alias0=\"inet 10.0.0.9/32\"\n\
         ipv6_network_interfaces=auto\n\
         ifconfig_hn0_ipv6=\"2001:db8::4/64\"\n\
         defaultrouter=\"10.0.0.1\"\n\
         static_routes=\"r\"\nroute_r=\"-net 10.8.0.0/16 -interface hn0\"\n");
    let opts = VfupOptions {
        mode: VfupMode::Improved,
        ..Default::default()
    };
    let res = vfup(&mut r, &conf, "hn0", &opts);
    assert_eq!(res.exit_code, 0);
    let l = r.labels();
    let after: Vec<&str> = l
        .iter()
        .skip_while(|x| *x != "ifconfig lagg0 create")
        .skip(1)
        .map(String::as_str)
        .collect();
    // Make before break: lagg0 holds everything before hn0 becomes its port and before
    // it leaves hn0; routes move with one command each.
    assert_eq!(
        after,
        [
            "ifconfig lagg0 inet6 no_dad",
            "ps -p 556 -o comm=",
            "kill -TERM 556",
            "ifconfig lagg0 inet 10.0.0.4/24 description up link",
            "ifconfig lagg0 inet 10.0.0.9/32 alias",
            "ifconfig lagg0 inet6 -ifdisabled",
            "ifconfig lagg0 inet6 2001:db8::4/64",
            "ifconfig lagg0 up",
            "ifconfig lagg0 laggproto failover laggport hn0 laggport mce0",
            "route -n change default 10.0.0.1 -ifp lagg0",
            "route -n change -net 10.8.0.0/16 -interface lagg0",
            "ifconfig hn0",
            "ifconfig hn0 inet 10.0.0.4 delete",
            "ifconfig hn0 inet 10.0.0.9 delete",
        ]
    );
}

#[test]
fn vfup_improved_carries_the_lease_and_adds_a_route_that_is_gone() {
    let mut r = vfup_runner();
    r.answer(
        "ifconfig hn0",
        Output::ok("hn0: flags=8843<UP> mtu 1500\n\tinet 10.0.0.4 netmask 0xffffff00\n"),
    );
    r.answer(
        "route -n change -inet6 -net 2001:db8:9::/48 2001:db8::1 -ifp lagg0",
        Output::failed(1, "route: writing to routing socket: No such process"),
    );
    let opts = VfupOptions {
        mode: VfupMode::Improved,
        ..Default::default()
    };
    let conf = rc("ifconfig_hn0=\"DHCP\"\n\
         ipv6_static_routes=\"r6:hn0\"\nipv6_route_r6=\"-net 2001:db8:9::/48 2001:db8::1\"\n");
    vfup(&mut r, &conf, "hn0", &opts);
    let l = r.labels();
    let pos = |c: &str| {
        l.iter()
            .position(|x| x == c)
            .unwrap_or_else(|| panic!("{c}: {l:#?}"))
    };
    let lease = pos("ifconfig lagg0 inet 10.0.0.4/24 alias");
    let port = pos("ifconfig lagg0 laggproto failover laggport hn0 laggport mce0");
    let v6 = pos("route -n add -inet6 -net 2001:db8:9::/48 2001:db8::1");
    let off = pos("ifconfig hn0 inet 10.0.0.4 delete");
    let client = pos("dhclient -b lagg0");
    // The IPv6 route moves before hn0's inet6 goes (here: added, it was gone).
    assert!(
        lease < v6 && v6 < port && port < off && off < client,
        "{l:#?}"
    );
}

#[test]
fn vfup_improved_dhcp_never_blocks_and_uses_flags() {
    let mut r = vfup_runner();
    let opts = VfupOptions {
        mode: VfupMode::Improved,
        ..Default::default()
    };
    vfup(
        &mut r,
        &rc("ifconfig_hn0=\"SYNCDHCP\"\ndhclient_flags_hn0=\"-q\"\n"),
        "hn0",
        &opts,
    );
    assert_eq!(r.labels().last().unwrap(), "dhclient -b -q lagg0");
}

#[test]
fn vfattach_passes_the_delay_word_as_written() {
    let mut r = ScriptedRunner::new();
    r.answer("sysctl -n hw.hn.vflist", Output::ok("mce0\n"));
    vfattach(&mut r, "mce0", "0", &reexec(), || {
        rc("hyperv_vf_delay=\"007\"\n")
    })
    .finish(&mut r, &mut |_| {});
    assert_eq!(
        r.labels().last().unwrap(),
        "daemon -f /usr/libexec/hyperv/hyperv_vfattach mce0 007"
    );
}
