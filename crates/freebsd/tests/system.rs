//! Observation helpers against a scripted runner.

use hvnet_freebsd::system::*;
use hvnet_freebsd::{Output, ScriptedRunner};

#[test]
fn sysctls_present_absent_and_malformed() {
    let mut r = ScriptedRunner::new();
    r.strict = true;
    r.answer("sysctl -n hw.hn.vf_transparent", Output::ok("0\n"));
    r.answer("sysctl -n hw.hn.vflist", Output::ok("mce0\n"));
    r.answer("sysctl -n hw.hn.vfmap", Output::ok("mce0:hn0\n"));
    r.answer("sysctl -n dev.hn.0.vf", Output::ok("mce0\n"));
    r.answer("sysctl -n dev.hn.1.vf", Output::ok("\n"));
    r.answer("sysctl -n dev.hn.0.rxvf", Output::ok("bad name here\n"));
    assert_eq!(vf_transparent(&mut r).unwrap(), Some(false));
    assert_eq!(vflist(&mut r).unwrap().unwrap(), ["mce0"]);
    assert_eq!(
        vfmap(&mut r).unwrap().unwrap(),
        [("mce0".into(), "hn0".into())]
    );
    assert_eq!(hn_vf(&mut r, 0).unwrap().as_deref(), Some("mce0"));
    assert_eq!(hn_vf(&mut r, 1).unwrap(), None);
    assert_eq!(hn_vf(&mut r, 2).unwrap(), None, "missing sysctl");
    let e = hn_rxvf(&mut r, 0).unwrap_err().to_string();
    assert!(e.starts_with("sysctl -n dev.hn.0.rxvf: line 1:"), "{e}");
    let mut old = ScriptedRunner::new();
    old.strict = true;
    assert_eq!(vf_transparent(&mut old).unwrap(), None, "old kernel");
    assert_eq!(vflist(&mut old).unwrap(), None);
}

#[test]
fn interfaces_and_failures_name_the_command() {
    let mut r = ScriptedRunner::new();
    r.strict = true;
    r.answer("ifconfig -l", Output::ok("lo0 hn0\n"));
    r.answer(
        "ifconfig -a",
        Output::ok("hn0: flags=8843<UP> mtu 1500\n\tether 00:11:22:33:44:55\n"),
    );
    r.answer("ifconfig hn0", Output::ok("hn0: flags=8843<UP> mtu 1500\n"));
    r.answer(
        "ifconfig lagg0",
        Output::failed(1, "ifconfig: interface lagg0 does not exist"),
    );
    assert_eq!(interface_names(&mut r).unwrap(), ["lo0", "hn0"]);
    assert_eq!(
        interfaces(&mut r).unwrap()[0].ether.as_deref(),
        Some("00:11:22:33:44:55")
    );
    assert!(interface(&mut r, "hn0").unwrap().is_some());
    assert!(interface(&mut r, "lagg0").unwrap().is_none());
    let mut bad = ScriptedRunner::new();
    bad.answer("ifconfig -l", Output::failed(1, "boom\n"));
    assert_eq!(
        interface_names(&mut bad).unwrap_err().to_string(),
        "ifconfig -l: exited with status 1: boom"
    );
}

#[test]
fn dhclient_pid_by_version() {
    let mut r = ScriptedRunner::new();
    r.files
        .insert("/var/run/dhclient/dhclient.hn0.pid".into(), "321\n".into());
    r.files
        .insert("/var/run/dhclient.hn0.pid".into(), "garbage".into());
    assert_eq!(dhclient_pid(&mut r, "hn0", 13).unwrap(), Some(321));
    assert!(dhclient_pid(&mut r, "hn0", 11)
        .unwrap_err()
        .to_string()
        .starts_with("/var/run/dhclient.hn0.pid: line 1"));
    assert_eq!(dhclient_pid(&mut r, "hn1", 13).unwrap(), None);
}

#[test]
fn hn_units() {
    assert_eq!(hn_unit("hn0"), Some(0));
    assert_eq!(hn_unit("hn12"), Some(12));
    assert_eq!(hn_unit("hn"), None);
    assert_eq!(hn_unit("hnx"), None);
    assert_eq!(hn_unit("mce0"), None);
}
