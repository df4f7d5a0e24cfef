//! network.subr rules: get_if_var, ifconfig_getargs, autoif, dhcpif,
//! syncdhcpif, IPv6 variables, hyperv_vf_delay, dhclient settings.

use hvnet_rcconf::{if_var_name, mangle_ifname, noafif, RcConf};

fn conf(text: &str) -> RcConf {
    RcConf::from_text("/etc/rc.conf", text)
}

#[test]
fn name_mangling_replaces_dot_dash_slash_plus() {
    assert_eq!(mangle_ifname("vlan0.100"), "vlan0_100");
    assert_eq!(mangle_ifname("a-b/c+d"), "a_b_c_d");
    assert_eq!(mangle_ifname("hn0"), "hn0");
    // ltr's IFS splitting: edge delimiters vanish, inner runs stay.
    assert_eq!(mangle_ifname(".a."), "a");
    assert_eq!(mangle_ifname("a..b"), "a__b");
    assert_eq!(mangle_ifname(""), "");
    assert_eq!(
        if_var_name("em0.5", "ifconfig_IF_ipv6"),
        "ifconfig_em0_5_ipv6"
    );
    assert_eq!(if_var_name("hn1", "ipv6_prefix_IF"), "ipv6_prefix_hn1");
    let c = conf("ifconfig_em0_5=\"inet 10.0.0.1/24\"\n");
    assert_eq!(
        c.get_if_var("em0.5", "ifconfig_IF").as_deref(),
        Some("inet 10.0.0.1/24")
    );
}

#[test]
fn get_if_var_echo_normalises_blanks_and_keeps_empty() {
    let c = conf("ifconfig_hn0=\"  inet   10.0.0.4/24\n mtu 1500 \"\nifconfig_hn1=\"\"\n");
    assert_eq!(
        c.get_if_var("hn0", "ifconfig_IF").as_deref(),
        Some("inet 10.0.0.4/24 mtu 1500")
    );
    assert_eq!(c.get_if_var("hn1", "ifconfig_IF").as_deref(), Some(""));
    assert_eq!(c.get_if_var("hn2", "ifconfig_IF"), None);
    assert_eq!(c.get_if_var_or("hn1", "ifconfig_IF", "DHCP"), "");
    assert_eq!(c.get_if_var_or("hn2", "ifconfig_IF", "DHCP"), "DHCP");
}

#[test]
fn ifconfig_default_fallback_only_when_unset() {
    let c = conf("ifconfig_DEFAULT=\"SYNCDHCP\"\nifconfig_hn1=\"\"\n");
    assert_eq!(c.ifconfig_raw_args("hn0", None), "SYNCDHCP");
    assert!(c.dhcpif("hn0"));
    assert_eq!(c.ifconfig_raw_args("hn1", None), "");
    assert!(!c.dhcpif("hn1"));
    // The AF variant falls back to ifconfig_DEFAULT as well.
    assert_eq!(c.ifconfig_raw_args("hn0", Some("ipv6")), "SYNCDHCP");
    assert_eq!(c.ifconfig_raw_args("", None), "");
}

#[test]
fn getargs_removes_pseudo_args_any_case_and_vnet_pairs() {
    let c = conf(
        "ifconfig_hn0=\"dhcp inet 10.0.0.4/24 NoAuto vnet myjail SyncDhcp nosyncdhcp wpa HOSTAP mtu 9000\"\n\
         ifconfig_hn1=\"vnet DHCP up\"\n\
         ifconfig_hn2=\"VNET j up\"\n",
    );
    assert_eq!(
        c.ifconfig_args("hn0", None),
        vec!["inet", "10.0.0.4/24", "mtu", "9000"]
    );
    assert_eq!(c.ifconfig_getargs("hn0", None), "inet 10.0.0.4/24 mtu 9000");
    // The word after vnet goes, whatever it is; vnet is case-sensitive.
    assert_eq!(c.ifconfig_args("hn1", None), vec!["up"]);
    assert_eq!(c.ifconfig_args("hn2", None), vec!["VNET", "j", "up"]);
    assert_eq!(c.vnetif("hn0").as_deref(), Some("myjail"));
    assert_eq!(c.vnetif("hn2"), None);
}

#[test]
fn getargs_eval_honours_quotes_like_rc() {
    let c = conf("x=9000\nifconfig_hn0=\"inet 10.0.0.4/24 description 'my  nic' mtu \\$x\"\n");
    assert_eq!(
        c.ifconfig_args_eval("hn0", None).unwrap(),
        vec![
            "inet",
            "10.0.0.4/24",
            "description",
            "my nic",
            "mtu",
            "9000"
        ]
    );
    // Without eval (hyperv_vfup's $(ifconfig_getargs)), quotes stay.
    assert_eq!(c.ifconfig_args("hn0", None)[3], "'my");
    let bad = conf("ifconfig_hn0=\"inet 'x\"\n");
    assert!(bad.ifconfig_args_eval("hn0", None).is_err());
}

#[test]
fn autoif_wpaif_hostapif() {
    let c = conf("ifconfig_hn0=\"noauto DHCP\"\nifconfig_wlan0=\"WPA SYNCDHCP\"\nifconfig_wlan1=\"hostap\"\n");
    assert!(!c.autoif("hn0"));
    assert!(c.autoif("hn1"));
    assert!(c.wpaif("wlan0") && !c.wpaif("hn0"));
    assert!(c.hostapif("wlan1") && !c.hostapif("wlan0"));
}

#[test]
fn dhcpif_keywords_and_exclusions() {
    let c = conf(
        "ifconfig_DEFAULT=DHCP\n\
         ifconfig_hn0=\"inet 10.0.0.4/24\"\n\
         ifconfig_hn1=NOSYNCDHCP\n\
         ifconfig_hn2=\"syncdhcp\"\n\
         ifconfig_hn3=\"DHCPX\"\n",
    );
    assert!(!c.dhcpif("hn0"));
    assert!(c.dhcpif("hn1"));
    assert!(c.dhcpif("hn2"));
    assert!(!c.dhcpif("hn3"), "keywords are whole words");
    assert!(c.dhcpif("mce0"), "DEFAULT applies to a VF too");
    for ifn in [
        "lo0", "stf0", "lp0", "sl0", "pflog0", "pfsync0", "usbus0", "ath0", "wlan",
    ] {
        let d = ifn != "wlan";
        assert_eq!(!c.dhcpif(ifn), d, "{ifn}");
    }
    // Only `lo` followed by a digit is excluded.
    assert!(c.dhcpif("lagg0"));
    assert!(c.dhcpif("local"));
    assert!(c.dhcpif("lo"));
}

#[test]
fn noafif_list() {
    for i in [
        "pflog0", "pfsync1", "usbus2", "an0", "ath0", "ipw0", "ipfw0", "iwi0", "iwn0", "ral0",
        "wi0", "wl0", "wpi0",
    ] {
        assert!(noafif(i), "{i}");
    }
    for i in ["hn0", "mce0", "lagg0", "wlan0", "pflog", "wifi"] {
        assert!(!noafif(i), "{i}");
    }
}

#[test]
fn syncdhcpif_first_keyword_wins_else_synchronous_dhclient() {
    let c = conf(
        "ifconfig_hn0=\"SYNCDHCP NOSYNCDHCP\"\n\
         ifconfig_hn1=\"NOSYNCDHCP SYNCDHCP\"\n\
         ifconfig_hn2=\"DHCP\"\n",
    );
    assert!(c.syncdhcpif("hn0"));
    assert!(!c.syncdhcpif("hn1"));
    assert!(!c.syncdhcpif("hn2"), "synchronous_dhclient unset is NO");
    let y = conf("synchronous_dhclient=YES\nifconfig_hn2=DHCP\nifconfig_hn1=NOSYNCDHCP\n");
    assert!(y.syncdhcpif("hn2"));
    assert!(!y.syncdhcpif("hn1"));
    assert!(!y.syncdhcpif("pflog0"), "no-AF interfaces never sync");
}

#[test]
fn ipv6_args_prepend_inet6_when_starting_with_address() {
    let c = conf(
        "ifconfig_hn0_ipv6=\"2001:db8::1 prefixlen 64\"\n\
         ifconfig_hn1_ipv6=\"inet6 accept_rtadv\"\n\
         ifconfig_hn2_ipv6=\"::1\"\n\
         ifconfig_hn3_ipv6=\"auto_linklocal\"\n\
         ifconfig_hn4_ipv6=\"DHCP fe80::1%hn4\"\n",
    );
    assert_eq!(
        c.ipv6_args("hn0"),
        (
            vec![
                "inet6".into(),
                "2001:db8::1".into(),
                "prefixlen".into(),
                "64".into()
            ],
            true
        )
    );
    assert_eq!(c.ipv6_args("hn1").0, vec!["inet6", "accept_rtadv"]);
    assert!(!c.ipv6_args("hn1").1);
    assert!(c.ipv6_args("hn2").1);
    assert!(!c.ipv6_args("hn3").1);
    // Pseudo-args are removed first; the check applies to what remains.
    assert_eq!(c.ipv6_args("hn4").0, vec!["inet6", "fe80::1%hn4"]);
    assert!(c.ipv6_args("hn9").0.is_empty());
}

#[test]
fn ipv6if_rules() {
    let c = conf(
        "ipv6_network_interfaces=auto\n\
         ifconfig_hn0_ipv6=\"inet6 accept_rtadv\"\n\
         ipv6_prefix_hn1=\"2001:db8:1::\"\n\
         ipv6_ifconfig_hn2=\"2001:db8::2\"\n\
         ifconfig_hn3_ipv6=\"\"\n",
    );
    assert!(c.ipv6if("hn0") && c.ipv6if("hn1") && c.ipv6if("hn2"));
    assert!(!c.ipv6if("hn3"));
    assert!(c.ipv6if("lo0"));
    let listed = conf("ipv6_network_interfaces=\"em0 hn0\"\nifconfig_hn0_ipv6=\"inet6 accept_rtadv\"\nifconfig_hn1_ipv6=\"inet6 accept_rtadv\"\n");
    assert!(listed.ipv6if("hn0"));
    assert!(!listed.ipv6if("hn1"));
    let none = conf("ifconfig_hn0_ipv6=\"inet6 accept_rtadv\"\n");
    assert!(
        !none.ipv6if("hn0"),
        "ipv6_network_interfaces unset lists nothing"
    );
}

#[test]
fn ipv6_prefix_and_obsolete_ipv6_ifconfig() {
    let c = conf("ipv6_prefix_hn0=\"2001:db8:1:: 2001:db8:2::/56\"\nipv6_ifconfig_hn0=\"2001:db8::5 prefixlen 64\"\nipv6_activate_all_interfaces=yes\n");
    assert_eq!(
        c.ipv6_prefixes("hn0"),
        vec!["2001:db8:1::", "2001:db8:2::/56"]
    );
    let cmds = c.ipv6_prefix_commands("hn0");
    assert_eq!(
        cmds[0],
        vec!["inet6", "2001:db8:1::", "prefixlen", "64", "eui64", "alias"]
    );
    assert_eq!(
        cmds[1],
        vec!["inet6", "2001:db8:2::", "prefixlen", "56", "eui64", "alias"]
    );
    assert_eq!(cmds.len(), 2);
    let gw = conf("ipv6_prefix_hn0=\"2001:db8:1:\"\nipv6_gateway_enable=YES\n");
    let cmds = gw.ipv6_prefix_commands("hn0");
    assert_eq!(cmds.len(), 2);
    assert_eq!(
        cmds[1],
        vec![
            "inet6",
            "2001:db8:1::",
            "prefixlen",
            "64",
            "alias",
            "anycast"
        ]
    );
    assert_eq!(
        c.ipv6_ifconfig_args("hn0"),
        vec!["inet6", "2001:db8::5", "prefixlen", "64"]
    );
    assert!(c.ipv6_ifconfig_args("hn1").is_empty());
    assert!(c.ipv6_activate_all_interfaces());
    assert!(!conf("").ipv6_activate_all_interfaces());
}

#[test]
fn hyperv_vf_delay_is_integer_at_least_two() {
    for (v, want) in [
        ("120", 120),
        ("2", 2),
        ("1", 2),
        ("0", 2),
        ("-5", 2),
        ("abc", 2),
        ("", 2),
        ("3 4", 2),
        (" 30 ", 30),
        ("+7", 7),
        ("007", 7),
        ("1.5", 2),
    ] {
        let c = conf(&format!("hyperv_vf_delay=\"{v}\"\n"));
        assert_eq!(c.hyperv_vf_delay(), want, "{v:?}");
    }
    assert_eq!(conf("").hyperv_vf_delay(), 2);
}

#[test]
fn dhclient_flags_and_background() {
    let c = conf(
        "dhclient_flags=\"-q\"\n\
         dhclient_flags_hn1=\"-n -q\"\n\
         dhclient_flags_hn2=\"\"\n\
         background_dhclient=YES\n\
         background_dhclient_hn1=NO\n",
    );
    assert_eq!(c.dhclient_flags("hn0"), vec!["-q"]);
    assert_eq!(c.dhclient_flags("hn1"), vec!["-n", "-q"]);
    assert_eq!(
        c.dhclient_flags("hn2"),
        vec!["-q"],
        "empty per-if flags fall back"
    );
    assert!(c.background_dhclient("hn0"));
    assert!(!c.background_dhclient("hn1"));
    assert_eq!(c.dhclient_args("hn0"), vec!["-q", "-b", "hn0"]);
    assert_eq!(c.dhclient_args("hn1"), vec!["-n", "-q", "hn1"]);
    let empty_override = conf("background_dhclient=YES\nbackground_dhclient_hn0=\"\"\n");
    assert!(
        !empty_override.background_dhclient("hn0"),
        "set-but-empty is not yes"
    );
}

#[test]
fn netif_ipexpand_max_default() {
    assert_eq!(conf("").netif_ipexpand_max(), 2048);
    assert_eq!(conf("netif_ipexpand_max=\"\"\n").netif_ipexpand_max(), 2048);
    assert_eq!(conf("netif_ipexpand_max=10\n").netif_ipexpand_max(), 10);
}

#[test]
fn description() {
    let c = conf("ifconfig_hn0_descr=\"uplink  to host\"\n");
    assert_eq!(c.description("hn0").as_deref(), Some("uplink to host"));
    assert_eq!(c.description("hn1"), None);
}
