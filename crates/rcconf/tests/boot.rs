//! ifn_start / ifconfig_up as action lists.

use hvnet_rcconf::{RcAction, RcConf};

fn conf(text: &str) -> RcConf {
    RcConf::from_text("/etc/rc.conf", text)
}

fn ifc(words: &[&str]) -> RcAction {
    RcAction::Ifconfig(words.iter().map(|s| s.to_string()).collect())
}

#[test]
fn static_interface_boot_sequence() {
    let c = conf(
        "ifconfig_hn0=\"inet 10.0.0.4/24\"\n\
         ifconfig_hn0_alias0=\"inet 10.0.0.9/32\"\n\
         ifconfig_hn0_descr=\"uplink\"\n",
    );
    let (acts, cfg) = c.ifn_start_plan("hn0");
    assert!(cfg);
    assert_eq!(
        acts,
        [
            ifc(&["hn0", "inet6", "ifdisabled"]),
            ifc(&["hn0", "inet", "10.0.0.4/24"]),
            ifc(&["hn0", "description", "uplink"]),
            ifc(&["hn0", "up"]),
            ifc(&["hn0", "inet", "10.0.0.9/32", "alias"]),
        ]
    );
}

#[test]
fn dhcp_sync_and_async_and_unconfigured() {
    let c = conf(
        "ifconfig_hn0=\"SYNCDHCP\"\nifconfig_hn1=\"DHCP\"\nipv6_activate_all_interfaces=YES\n",
    );
    let (a0, c0) = c.ifconfig_up_plan("hn0");
    assert!(c0);
    assert_eq!(
        a0,
        [
            ifc(&["hn0", "inet6", "-ifdisabled"]),
            ifc(&["hn0", "up"]),
            RcAction::StartDhclient
        ]
    );
    let (a1, _) = c.ifconfig_up_plan("hn1");
    assert_eq!(
        a1.last(),
        Some(&ifc(&["hn1", "up"])),
        "async: devd starts dhclient"
    );
    let (a2, c2) = c.ifconfig_up_plan("hn2");
    assert!(!c2);
    assert_eq!(a2, [ifc(&["hn2", "inet6", "-ifdisabled"])]);
}

#[test]
fn default_config_reaches_a_new_vf() {
    let c = conf("ifconfig_DEFAULT=\"SYNCDHCP\"\n");
    let (acts, cfg) = c.ifn_start_plan("mce0");
    assert!(cfg, "ifconfig_DEFAULT configures a freshly attached VF");
    assert!(acts.contains(&RcAction::StartDhclient));
}

#[test]
fn ipv6_and_loopback() {
    let c = conf(
        "ipv6_network_interfaces=auto\n\
         ifconfig_hn0_ipv6=\"2001:db8::4/64\"\n\
         ipv6_prefix_hn0=\"2001:db8:1::\"\n",
    );
    let (acts, _) = c.ifn_start_plan("hn0");
    assert!(acts
        .iter()
        .any(|a| matches!(a, RcAction::Warn(w) if w.contains("needs leading"))));
    assert!(acts.contains(&ifc(&["hn0", "inet6", "2001:db8::4/64"])));
    assert!(acts.contains(&ifc(&[
        "hn0",
        "inet6",
        "2001:db8:1::",
        "prefixlen",
        "64",
        "eui64",
        "alias"
    ])));
    let (lo, cfg) = conf("").ifn_start_plan("lo0");
    assert!(cfg);
    assert_eq!(
        lo,
        [
            ifc(&["lo0", "up"]),
            ifc(&["lo0", "inet", "127.0.0.1/8", "alias"])
        ]
    );
    let (pf, pcfg) = conf("").ifn_start_plan("pflog0");
    assert!(pf.is_empty() && !pcfg);
}
