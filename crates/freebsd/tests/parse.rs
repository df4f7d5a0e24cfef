//! Parsers of FreeBSD command output, on real-shaped samples and on
//! malformed input.

use std::net::Ipv4Addr;

use hvnet_freebsd::parse::*;
use proptest::prelude::*;

const IFCONFIG_A: &str = "\
hn0: flags=8843<UP,BROADCAST,RUNNING,SIMPLEX,MULTICAST> metric 0 mtu 1500
\toptions=80018<VLAN_MTU,VLAN_HWTAGGING,LINKSTATE>
\tether 00:0d:3a:12:34:56
\tinet 10.0.0.4 netmask 0xffffff00 broadcast 10.0.0.255
\tinet6 fe80::20d:3aff:fe12:3456%hn0 prefixlen 64 scopeid 0x2
\tmedia: Ethernet autoselect (10Gbase-T <full-duplex>)
\tstatus: no carrier
\tnd6 options=29<PERFORMNUD,IFDISABLED,AUTO_LINKLOCAL>
mce0: flags=8843<UP,BROADCAST,RUNNING,SIMPLEX,MULTICAST> metric 0 mtu 1500
\toptions=ed07bb<RXCSUM,TXCSUM,VLAN_MTU>
\tether 00:0D:3A:12:34:56
\tmedia: Ethernet autoselect (40Gbase-CR4 <full-duplex,rxpause,txpause>)
\tstatus: active
lagg0: flags=1008843<UP,BROADCAST,RUNNING,SIMPLEX,MULTICAST,LOWER_UP> metric 0 mtu 1500
\toptions=18<VLAN_MTU,VLAN_HWTAGGING>
\tether 00:0d:3a:12:34:56
\tinet 10.0.0.4 netmask 0xffffff00 broadcast 10.0.0.255
\tinet 10.0.0.9 netmask 0xffffffff broadcast 10.0.0.9 vhid 3
\tinet6 2001:db8::4 prefixlen 64 autoconf tentative pltime 604800 vltime 2592000
\tlaggproto failover lagghash l2,l3,l4
\tlaggport: hn0 flags=1<MASTER>
\tlaggport: mce0 flags=4<ACTIVE>
\tgroups: lagg
\tdescription: moved from hn0
\tmedia: Ethernet autoselect
\tstatus: active
lo0: flags=8049<UP,LOOPBACK,RUNNING,MULTICAST> metric 0 mtu 16384
\tinet 127.0.0.1 netmask 0xff000000
\tinet6 ::1 prefixlen 128
\tgroups: lo
";

#[test]
fn ifconfig_a_sample() {
    let v = parse_ifconfig("ifconfig -a", IFCONFIG_A).unwrap();
    let names: Vec<&str> = v.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["hn0", "mce0", "lagg0", "lo0"]);
    let hn0 = &v[0];
    assert!(hn0.is_up() && hn0.is_running());
    assert_eq!(hn0.flags.bits, 0x8843);
    assert_eq!(hn0.mtu, Some(1500));
    assert_eq!(hn0.metric, Some(0));
    assert_eq!(hn0.ether.as_deref(), Some("00:0d:3a:12:34:56"));
    assert_eq!(hn0.inet[0].addr, Ipv4Addr::new(10, 0, 0, 4));
    assert_eq!(hn0.inet[0].prefix_len, 24);
    assert_eq!(hn0.inet[0].broadcast, Some(Ipv4Addr::new(10, 0, 0, 255)));
    assert_eq!(hn0.inet6[0].zone.as_deref(), Some("hn0"));
    assert_eq!(hn0.inet6[0].prefix_len, 64);
    assert_eq!(hn0.inet6[0].scope_id, Some(2));
    assert_eq!(hn0.status, Some(LinkStatus::NoCarrier));
    assert!(!hn0.link_up());
    assert!(hn0.inet6_disabled());
    assert!(hn0
        .media
        .as_deref()
        .unwrap()
        .starts_with("Ethernet autoselect"));
    let mce0 = &v[1];
    assert_eq!(
        mce0.ether.as_deref(),
        Some("00:0d:3a:12:34:56"),
        "MAC lower-cased"
    );
    assert!(mce0.link_up());
    let lagg = &v[2];
    let l = lagg.lagg.as_ref().unwrap();
    assert_eq!(l.proto, hvnet_vf::AggregateProto::Failover);
    assert_eq!(l.hash.as_deref(), Some("l2,l3,l4"));
    assert_eq!(l.ports.len(), 2);
    assert!(l.ports[0].is_primary() && !l.ports[0].is_active());
    assert!(l.ports[1].is_active() && !l.ports[1].is_primary());
    assert_eq!(lagg.inet[1].prefix_len, 32);
    assert_eq!(lagg.inet[1].vhid, Some(3));
    assert_eq!(lagg.inet6[0].flags, ["autoconf", "tentative"]);
    assert_eq!(lagg.groups, ["lagg"]);
    assert_eq!(lagg.description.as_deref(), Some("moved from hn0"));
    assert!(lagg.flags.has("LOWER_UP"));
    assert_eq!(v[3].inet[0].prefix_len, 8);
    assert_eq!(v[3].inet6[0].prefix_len, 128);
}

#[test]
fn empty_laggport_flags_and_cidr_format() {
    let t = "lagg0: flags=8843<UP> metric 0 mtu 1500\n\tlaggport: mce0 flags=0<>\n\tinet 10.1.0.4/16 broadcast 10.1.255.255\n\tinet6 2001:db8::1/64\n";
    let v = parse_ifconfig("ifconfig lagg0", t).unwrap();
    let p = &v[0].lagg.as_ref().unwrap().ports[0];
    assert_eq!(p.flags.bits, 0);
    assert!(p.flags.names.is_empty());
    assert_eq!(v[0].inet[0].prefix_len, 16);
    assert_eq!(v[0].inet6[0].prefix_len, 64);
}

#[test]
fn status_absent_uses_lower_up() {
    let v = parse_ifconfig(
        "ifconfig",
        "x0: flags=1000003<UP,BROADCAST,LOWER_UP> mtu 1500\n",
    )
    .unwrap();
    assert!(v[0].link_up());
    let v = parse_ifconfig("ifconfig", "x0: flags=3<UP,BROADCAST> mtu 1500\n").unwrap();
    assert!(!v[0].link_up());
}

fn bad(text: &str) -> String {
    parse_ifconfig("ifconfig -a", text).unwrap_err().to_string()
}

#[test]
fn malformed_ifconfig_names_the_command_and_line() {
    let e = bad("hn0: flags=8843<UP> mtu 1500\n\tinet 10.0.0.400 netmask 0xffffff00\n");
    assert!(
        e.starts_with("ifconfig -a: line 2: expected an IPv4 address"),
        "{e}"
    );
    assert!(bad("\tether 00:11:22:33:44:55\n").contains("line 1: expected an interface header"));
    assert!(bad("hn0 flags=8843<UP>\n").contains("expected `NAME: flags=...`"));
    assert!(bad("hn0: mtu 1500\n").contains("expected `flags=`"));
    assert!(bad("hn0: flags=zz<UP>\n").contains("hexadecimal flags"));
    assert!(bad("hn0: flags=3<UP\n").contains("`<NAMES>`"));
    assert!(bad("hn0: flags=3<UP> mtu big\n").contains("number after `mtu`"));
    assert!(bad("hn0: flags=3<UP>\n\tinet 10.0.0.1 netmask 0xff00ff00\n").contains("contiguous"));
    assert!(bad("hn0: flags=3<UP>\n\tinet 10.0.0.1 netmask\n").contains("netmask"));
    assert!(bad("hn0: flags=3<UP>\n\tether 00:11:22\n").contains("MAC address"));
    assert!(bad("hn0: flags=3<UP>\n\tinet6 zz::1 prefixlen 64\n").contains("IPv6"));
    assert!(bad("hn0: flags=3<UP>\n\tinet6 ::1 prefixlen 200\n").contains("0-128"));
    assert!(bad("hn0: flags=3<UP>\n\tlaggport: \n").contains("interface name"));
    assert!(bad("hn0: flags=3<UP>\n\tlaggport: mce0 weird\n").contains("`flags=`"));
    assert!(bad("averyveryverylongname0: flags=3<UP>\n").contains("interface name"));
}

#[test]
fn ifconfig_list() {
    assert_eq!(
        parse_ifconfig_list("ifconfig -l", "lo0 hn0 mce0 lagg0\n").unwrap(),
        ["lo0", "hn0", "mce0", "lagg0"]
    );
    assert!(parse_ifconfig_list("ifconfig -l", "").unwrap().is_empty());
    let e = parse_ifconfig_list("ifconfig -l", "lo0 a:b\n").unwrap_err();
    assert!(e
        .to_string()
        .starts_with("ifconfig -l: line 1: expected an interface name"));
}

#[test]
fn hn_sysctls() {
    let c = "sysctl -n hw.hn.vflist";
    assert_eq!(parse_vflist(c, "mce0 mce1\n").unwrap(), ["mce0", "mce1"]);
    assert!(parse_vflist(c, "\n").unwrap().is_empty());
    assert!(parse_vflist(c, "").unwrap().is_empty());
    assert!(parse_vflist(c, "mce0\nmce1\n").is_err());
    let m = "sysctl -n hw.hn.vfmap";
    assert_eq!(
        parse_vfmap(m, "mce0:hn0 mce1:hn1\n").unwrap(),
        [
            ("mce0".to_string(), "hn0".to_string()),
            ("mce1".to_string(), "hn1".to_string())
        ]
    );
    assert!(parse_vfmap(m, "").unwrap().is_empty());
    let e = parse_vfmap(m, "mce0hn0").unwrap_err().to_string();
    assert!(
        e.starts_with("sysctl -n hw.hn.vfmap: line 1: expected `VF:HN`"),
        "{e}"
    );
    assert!(parse_vfmap(m, "mce0:").is_err());
    let d = "sysctl -n dev.hn.0.vf";
    assert_eq!(parse_dev_vf(d, "mce0\n").unwrap().as_deref(), Some("mce0"));
    assert_eq!(parse_dev_vf(d, "\n").unwrap(), None);
    assert!(parse_dev_vf(d, "mce0 mce1\n").is_err());
    assert_eq!(
        parse_sysctl_int("sysctl -n hw.hn.vf_transparent", "1\n").unwrap(),
        1
    );
    assert!(parse_sysctl_int("sysctl -n hw.hn.vf_transparent", "yes\n").is_err());
}

#[test]
fn dhclient_pidfiles() {
    assert_eq!(
        dhclient_pidfile("hn0", 12),
        "/var/run/dhclient/dhclient.hn0.pid"
    );
    assert_eq!(
        dhclient_pidfile("hn0", 14),
        "/var/run/dhclient/dhclient.hn0.pid"
    );
    assert_eq!(dhclient_pidfile("hn0", 11), "/var/run/dhclient.hn0.pid");
    let p = "/var/run/dhclient/dhclient.hn0.pid";
    assert_eq!(parse_pidfile(p, "1234\n").unwrap(), 1234);
    assert_eq!(parse_pidfile(p, "77").unwrap(), 77);
    for b in ["", "0", "-1", "abc", "12 34", "+5", "99999999999"] {
        let e = parse_pidfile(p, b).unwrap_err().to_string();
        assert!(e.starts_with(p), "{e}");
    }
}

proptest! {
    #[test]
    fn parsers_never_panic(s in any::<String>()) {
        let _ = parse_ifconfig("ifconfig -a", &s);
        let _ = parse_ifconfig_list("ifconfig -l", &s);
        let _ = parse_vflist("x", &s);
        let _ = parse_vfmap("x", &s);
        let _ = parse_dev_vf("x", &s);
        let _ = parse_sysctl_int("x", &s);
        let _ = parse_pidfile("x", &s);
    }

    #[test]
    fn ifconfig_parser_never_panics_on_ifconfig_like_text(
        lines in proptest::collection::vec(
            prop_oneof![
                Just("hn0: flags=8843<UP,RUNNING> metric 0 mtu 1500".to_string()),
                Just("\tinet ".to_string()),
                Just("\tinet6 ".to_string()),
                Just("\tlaggport: ".to_string()),
                Just("\tether ".to_string()),
                Just("\tnd6 options=".to_string()),
                "[\t ]?[a-z0-9:.%/<>=, x-]{0,30}",
            ].prop_flat_map(|p| ("[a-f0-9:.%/<>=, x-]{0,20}", Just(p)).prop_map(|(s, p)| format!("{p}{s}"))),
            0..12),
    ) {
        let _ = parse_ifconfig("ifconfig -a", &lines.join("\n"));
    }

    #[test]
    fn vfmap_round_trip(pairs in proptest::collection::vec(("[a-z]{1,6}[0-9]", "hn[0-9]{1,2}"), 0..5)) {
        let text = pairs.iter().map(|(v, h)| format!("{v}:{h}")).collect::<Vec<_>>().join(" ");
        let got = parse_vfmap("m", &format!("{text}\n")).unwrap();
        prop_assert_eq!(got, pairs);
    }
}

#[test]
fn netstat_routes_both_families_and_old_layout() {
    let t = "Routing tables\n\nInternet:\nDestination        Gateway            Flags     Netif Expire\ndefault            10.0.0.1           UGS         hn0\n10.0.0.0/24        link#2             U           hn0\n\nInternet6:\nDestination                       Gateway                       Flags     Netif Expire\n::1                               link#1                        UHS         lo0\n";
    let rows = parse_netstat_routes("netstat -rn", t).unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0].destination, "default");
    assert_eq!(rows[0].gateway, "10.0.0.1");
    assert_eq!(rows[0].netif, "hn0");
    assert!(!rows[0].inet6 && rows[2].inet6);
    let old = "Internet:\nDestination        Gateway            Flags    Refs      Use  Netif Expire\ndefault            10.0.0.1           UGS         0       12    em0\n";
    let rows = parse_netstat_routes("netstat -rn", old).unwrap();
    assert_eq!(rows[0].netif, "em0");
    let e = parse_netstat_routes("netstat -rn", "Internet:\ndefault 10.0.0.1\n").unwrap_err();
    assert!(e
        .to_string()
        .starts_with("netstat -rn: line 2: expected a `Destination ...` header"));
    let e = parse_netstat_routes(
        "netstat -rn",
        "Internet:\nDestination Gateway Flags Netif\ndefault 10.0.0.1\n",
    )
    .unwrap_err();
    assert!(e
        .to_string()
        .contains("line 3: expected at least 4 columns"));
    assert!(parse_netstat_routes("netstat -rn", "Internet:\nDestination Gateway\n").is_err());
}

#[test]
fn pids_and_osrelease() {
    assert_eq!(parse_pids("pgrep -x x", "12\n34\n").unwrap(), [12, 34]);
    assert!(parse_pids("pgrep -x x", "").unwrap().is_empty());
    assert!(parse_pids("pgrep -x x", "12\nzz\n")
        .unwrap_err()
        .to_string()
        .starts_with("pgrep -x x: line 2"));
    assert_eq!(
        parse_osrelease_major("sysctl -n kern.osrelease", "14.1-RELEASE-p3\n").unwrap(),
        14
    );
    assert_eq!(parse_osrelease_major("s", "12.0-CURRENT").unwrap(), 12);
    assert!(parse_osrelease_major("s", "FreeBSD").is_err());
}

proptest! {
    #[test]
    fn more_parsers_never_panic(s in any::<String>()) {
        let _ = parse_netstat_routes("netstat -rn", &s);
        let _ = parse_pids("pgrep", &s);
        let _ = parse_osrelease_major("s", &s);
    }
}
