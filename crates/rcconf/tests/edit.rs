//! sysrc-style textual edits.

use hvnet_rcconf::edit::{delete_var, quote, set_var};
use hvnet_rcconf::RcConf;

#[test]
fn replaces_last_assignment_in_place() {
    let t = "# hdr\nifconfig_hn0=\"SYNCDHCP\"\nx=1\nifconfig_hn0=\"DHCP\"\ny=2\n";
    let out = set_var(t, "/etc/rc.conf", "ifconfig_hn0", "inet 10.0.0.4/24").unwrap();
    assert_eq!(
        out,
        "# hdr\nifconfig_hn0=\"SYNCDHCP\"\nx=1\nifconfig_hn0=\"inet 10.0.0.4/24\"\ny=2\n"
    );
}

#[test]
fn appends_when_absent_and_adds_missing_newline() {
    assert_eq!(set_var("a=1", "f", "b", "2").unwrap(), "a=1\nb=\"2\"\n");
    assert_eq!(set_var("", "f", "b", "").unwrap(), "b=\"\"\n");
}

#[test]
fn replaces_multi_line_assignment_whole() {
    let t = "a=\"x \\\n y\"\nb=1\n";
    assert_eq!(set_var(t, "f", "a", "z").unwrap(), "a=\"z\"\nb=1\n");
}

#[test]
fn refuses_shared_lines() {
    let e = set_var("a=1; b=2\n", "/etc/rc.conf", "a", "3").unwrap_err();
    assert!(e.to_string().starts_with("/etc/rc.conf:1: "), "{e}");
    assert!(set_var("a=1 b=2\n", "f", "b", "3").is_err());
    assert!(set_var("a=1\n", "f", "1a", "3").is_err());
}

#[test]
fn delete_removes_every_assignment() {
    let t = "ifconfig_hn0=\"SYNCDHCP\"\nx=1\nifconfig_hn0=\"DHCP\"\n";
    assert_eq!(delete_var(t, "f", "ifconfig_hn0").unwrap(), "x=1\n");
    assert_eq!(delete_var("x=1\n", "f", "y").unwrap(), "x=1\n");
}

#[test]
fn quoted_values_read_back_exactly() {
    for v in [
        "plain",
        "with space",
        "q\"uote",
        "dollar $x ${y}",
        "back\\slash",
        "tick`",
        "new\nline",
        "",
    ] {
        let text = set_var("", "f", "v", v).unwrap();
        assert_eq!(RcConf::from_text("f", &text).get("v"), Some(v), "{text}");
    }
    assert_eq!(quote("a\"b"), "\"a\\\"b\"");
}
