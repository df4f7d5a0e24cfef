//! ifalias rules: aliasN ordering and gaps, aliases, ipv4_addrs, ranges.

use hvnet_rcconf::{Af, RcConf};

fn conf(text: &str) -> RcConf {
    RcConf::from_text("/etc/rc.conf", text)
}

fn groups(v: &[Vec<String>]) -> Vec<String> {
    v.iter().map(|g| g.join(" ")).collect()
}

#[test]
fn alias_n_numeric_order_with_gaps() {
    let c = conf(
        "ifconfig_hn0_alias10=\"inet 10.0.0.10/32\"\n\
         ifconfig_hn0_alias2=\"inet 10.0.0.2/32\"\n\
         ifconfig_hn0_alias0=\"inet 10.0.0.0/32\"\n",
    );
    assert_eq!(
        groups(&c.aliases("hn0", Af::Inet)),
        ["inet 10.0.0.0/32", "inet 10.0.0.2/32", "inet 10.0.0.10/32"]
    );
    assert_eq!(
        c.alias_var_names("hn0"),
        [
            "ifconfig_hn0_alias0",
            "ifconfig_hn0_alias2",
            "ifconfig_hn0_alias10"
        ]
    );
}

#[test]
fn empty_alias_n_stops_the_scan() {
    let c = conf(
        "ifconfig_hn0_alias0=\"inet 10.0.0.1/32\"\n\
         ifconfig_hn0_alias1=\"\"\n\
         ifconfig_hn0_alias2=\"inet 10.0.0.2/32\"\n",
    );
    assert_eq!(groups(&c.aliases("hn0", Af::Inet)), ["inet 10.0.0.1/32"]);
}

#[test]
fn alias_without_af_gets_inet_only_for_inet() {
    let c = conf(
        "ifconfig_hn0_alias0=\"10.0.0.1 netmask 255.255.255.255\"\n\
         ifconfig_hn0_alias1=\"inet6 2001:db8::1 prefixlen 64\"\n",
    );
    assert_eq!(
        groups(&c.aliases("hn0", Af::Inet)),
        ["inet 10.0.0.1 netmask 255.255.255.255"]
    );
    assert_eq!(
        groups(&c.aliases("hn0", Af::Inet6)),
        ["inet6 2001:db8::1 prefixlen 64"]
    );
}

#[test]
fn only_alias_digit_names_count_and_mangling_applies() {
    let c = conf(
        "ifconfig_vlan0_5_alias0=\"inet 10.1.0.1/32\"\n\
         ifconfig_hn0_aliasx=\"inet 10.9.9.9/32\"\n\
         ifconfig_hn0_aliases=\"inet 10.0.0.7/32\"\n",
    );
    assert_eq!(
        groups(&c.aliases("vlan0.5", Af::Inet)),
        ["inet 10.1.0.1/32"]
    );
    assert_eq!(groups(&c.aliases("hn0", Af::Inet)), ["inet 10.0.0.7/32"]);
}

#[test]
fn aliases_variable_splits_on_af_keywords_and_comes_first() {
    let c = conf(
        "ifconfig_hn0_aliases=\"inet 10.0.0.1/24 inet6 2001:db8::5 prefixlen 64 \\\n  inet 10.0.0.2/24 link 00:11:22:33:44:55 inet\"\n\
         ifconfig_hn0_alias0=\"inet 10.0.0.3/24\"\n",
    );
    assert_eq!(
        groups(&c.aliases("hn0", Af::Inet)),
        ["inet 10.0.0.1/24", "inet 10.0.0.2/24", "inet 10.0.0.3/24"]
    );
    assert_eq!(
        groups(&c.aliases("hn0", Af::Inet6)),
        ["inet6 2001:db8::5 prefixlen 64"]
    );
    assert_eq!(
        groups(&c.aliases("hn0", Af::Link)),
        ["link 00:11:22:33:44:55"]
    );
}

#[test]
fn ipv4_addrs_each_word_is_inet() {
    let c = conf("ipv4_addrs_hn0=\"192.168.1.1/24 192.168.2.1/24\"\n");
    assert_eq!(
        groups(&c.aliases("hn0", Af::Inet)),
        ["inet 192.168.1.1/24", "inet 192.168.2.1/24"]
    );
}

#[test]
fn obsolete_ipv6_ifconfig_alias_n() {
    let c = conf(
        "ipv6_ifconfig_hn0_alias0=\"2001:db8::10 prefixlen 64\"\n\
         ipv6_ifconfig_hn0_alias1=\"\"\n\
         ipv6_ifconfig_hn0_alias2=\"2001:db8::12 prefixlen 64\"\n",
    );
    assert_eq!(
        groups(&c.aliases("hn0", Af::Inet6)),
        ["inet6 2001:db8::10 prefixlen 64"]
    );
}

#[test]
fn ipv4_range_first_keeps_prefix_rest_are_32() {
    let c = conf("ifconfig_hn0_alias0=\"inet 192.0.2.5-8/24\"\n");
    assert_eq!(
        groups(&c.aliases("hn0", Af::Inet)),
        [
            "inet 192.0.2.5/24",
            "inet 192.0.2.6/32",
            "inet 192.0.2.7/32",
            "inet 192.0.2.8/32"
        ]
    );
}

#[test]
fn ipv4_range_without_prefix_is_32_and_netmask_strips() {
    let c = conf("ipv4_addrs_hn0=\"10.0.0.1-2\"\nifconfig_hn1_alias0=\"inet 10.1.0.1-2/24 netmask 255.255.255.0\"\n");
    assert_eq!(
        groups(&c.aliases("hn0", Af::Inet)),
        ["inet 10.0.0.1/32", "inet 10.0.0.2/32"]
    );
    assert_eq!(
        groups(&c.aliases("hn1", Af::Inet)),
        [
            "inet 10.1.0.1 netmask 255.255.255.0",
            "inet 10.1.0.2 netmask 255.255.255.0"
        ]
    );
}

#[test]
fn ipv4_range_in_a_middle_octet() {
    let c = conf("ifconfig_hn0_alias0=\"inet 10.1-2.0.1/16\"\n");
    assert_eq!(
        groups(&c.aliases("hn0", Af::Inet)),
        ["inet 10.1.0.1/16", "inet 10.2.0.1/32"]
    );
}

#[test]
fn ipv4_range_limit_is_netif_ipexpand_max() {
    let c = conf("netif_ipexpand_max=3\nifconfig_hn0_alias0=\"inet 10.0.0.1-100/24\"\n");
    let g = c.aliases("hn0", Af::Inet);
    // rc checks after adding: low..=low+max, plus one more, then stops.
    assert_eq!(g.len(), 5);
    assert_eq!(g[4].join(" "), "inet 10.0.0.5/32");
    let d = conf("ifconfig_hn0_alias0=\"inet 10.0.0.0-4000/8\"\n");
    assert_eq!(d.aliases("hn0", Af::Inet).len(), 2050);
}

#[test]
fn invalid_ranges_configure_nothing() {
    let c = conf(
        "ifconfig_hn0_alias0=\"inet 10.0.0.1--5/24\"\nifconfig_hn1_alias0=\"inet 10.0.0.9-5/24\"\n",
    );
    assert!(c.aliases("hn0", Af::Inet).is_empty());
    assert!(
        c.aliases("hn1", Af::Inet).is_empty(),
        "empty range when low > high"
    );
}

#[test]
fn ipv6_range_expands_last_group_in_hex() {
    let c = conf("ifconfig_hn0_alias0=\"inet6 2001:db8::a-c/64\"\nifconfig_hn1_alias0=\"inet6 2001:db8::1-2\"\n");
    assert_eq!(
        groups(&c.aliases("hn0", Af::Inet6)),
        [
            "inet6 2001:db8::000a/64",
            "inet6 2001:db8::000b/64",
            "inet6 2001:db8::000c/64"
        ]
    );
    assert_eq!(
        groups(&c.aliases("hn1", Af::Inet6)),
        ["inet6 2001:db8::0001/64", "inet6 2001:db8::0002/64"]
    );
}

#[test]
fn ipv6_range_with_prefixlen_option_strips_slash() {
    let c = conf("ifconfig_hn0_alias0=\"inet6 2001:db8::1-2 prefixlen 64\"\n");
    assert_eq!(
        groups(&c.aliases("hn0", Af::Inet6)),
        [
            "inet6 2001:db8::0001 prefixlen 64",
            "inet6 2001:db8::0002 prefixlen 64"
        ]
    );
}

#[test]
fn dash_that_is_not_a_range_is_applied_as_written() {
    let c = conf("ifconfig_hn0_alias0=\"inet 10.0.0.1/24 description a-b\"\n");
    assert_eq!(
        groups(&c.aliases("hn0", Af::Inet)),
        ["inet 10.0.0.1/24 description a-b"]
    );
}

#[test]
fn words_before_first_af_keyword_are_dropped() {
    let c = conf("ifconfig_hn0_aliases=\"10.0.0.1 inet 10.0.0.2\"\n");
    assert_eq!(groups(&c.aliases("hn0", Af::Inet)), ["inet 10.0.0.2"]);
}
