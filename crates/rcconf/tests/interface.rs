//! Static routes and the combined InterfaceConfig.

use hvnet_rcconf::{RcConf, RouteFamily};

fn conf(text: &str) -> RcConf {
    RcConf::from_text("/etc/rc.conf", text)
}

#[test]
fn static_routes_tagged_and_via_interface() {
    let c = conf(
        "static_routes=\"net1:hn0 net2 net3 missing lan:hn0.5\"\n\
         route_net1=\"-net 192.168.1.0/24 192.168.0.1\"\n\
         route_net2=\"-net 10.5.0.0/16 -interface hn0\"\n\
         route_net3=\"-net 10.6.0.0/16 10.0.0.1\"\n\
         route_lan=\"-net 10.7.0.0/16 -iface hn1\"\n\
         ipv6_static_routes=\"v6a:hn0\"\n\
         ipv6_route_v6a=\"2001:db8:9::/48 fe80::1%hn0\"\n\
         defaultrouter=\"10.0.0.1\"\nipv6_defaultrouter=NO\n",
    );
    let all = c.static_routes();
    assert_eq!(all.len(), 4, "missing route_NAME is skipped");
    assert_eq!(all[0].name, "net1");
    assert_eq!(all[0].tagged_interface.as_deref(), Some("hn0"));
    assert_eq!(all[1].via_interface.as_deref(), Some("hn0"));
    assert_eq!(all[3].name, "lan");
    assert_eq!(all[3].via_interface.as_deref(), Some("hn1"));
    assert_eq!(all[3].tagged_interface.as_deref(), Some("hn0.5"));
    let hn0: Vec<String> = c
        .routes_for_interface("hn0")
        .iter()
        .map(|r| r.entry.clone())
        .collect();
    assert_eq!(hn0, ["net1:hn0", "net2", "v6a:hn0"]);
    let v6 = &c.ipv6_static_routes()[0];
    assert_eq!(v6.family, RouteFamily::Inet6);
    assert_eq!(
        v6.add_args(),
        ["add", "-inet6", "2001:db8:9::/48", "fe80::1%hn0"]
    );
    assert_eq!(
        all[0].add_args(),
        ["add", "-net", "192.168.1.0/24", "192.168.0.1"]
    );
    assert_eq!(c.default_router().as_deref(), Some("10.0.0.1"));
    assert_eq!(c.ipv6_default_router(), None);
}

#[test]
fn route_names_are_mangled_like_interfaces() {
    let c = conf("static_routes=\"a.b\"\nroute_a_b=\"-net 10.0.0.0/8 10.0.0.1\"\n");
    assert_eq!(c.static_routes().len(), 1);
}

#[test]
fn interface_config_collects_everything() {
    let c = conf(
        "ifconfig_hn0=\"SYNCDHCP mtu 9000\"\n\
         ifconfig_hn0_alias0=\"inet 10.0.0.9/32\"\n\
         ifconfig_hn0_ipv6=\"inet6 accept_rtadv\"\n\
         ipv6_network_interfaces=auto\n\
         ifconfig_hn0_descr=uplink\n\
         static_routes=\"r:hn0\"\nroute_r=\"-net 10.8.0.0/16 10.0.0.1\"\n\
         dhclient_flags_hn0=\"-q\"\nbackground_dhclient=YES\n",
    );
    let i = c.interface("hn0");
    assert_eq!(i.raw_args, "SYNCDHCP mtu 9000");
    assert_eq!(i.args, ["mtu", "9000"]);
    assert!(i.dhcp && i.sync_dhcp && !i.noauto && !i.wpa && !i.hostap);
    assert_eq!(i.ipv4_aliases, [["inet", "10.0.0.9/32"]]);
    assert!(i.ipv6.enabled);
    assert_eq!(i.ipv6.args, ["inet6", "accept_rtadv"]);
    assert_eq!(i.description.as_deref(), Some("uplink"));
    assert_eq!(i.routes.len(), 1);
    assert_eq!(i.dhclient.flags, ["-q"]);
    assert!(i.dhclient.background);
    assert!(i.is_configured());
    let none = c.interface("hn7");
    assert!(!none.is_configured());
    assert!(!none.dhcp);
}

#[test]
fn configured_addresses_from_all_sources() {
    use hvnet_rcconf::AddressSource;
    let c = conf(
        "ifconfig_hn0=\"inet 10.0.0.4 netmask 0xffffff00 mtu 9000\"\n\
         ifconfig_hn0_ipv6=\"inet6 2001:db8::4 prefixlen 64 accept_rtadv\"\n\
         ifconfig_hn0_alias0=\"inet 10.0.0.10-11/24\"\n\
         ifconfig_hn0_alias1=\"inet6 2001:db8::9/64\"\n\
         ifconfig_hn0_alias2=\"10.0.0.20 netmask 255.255.255.255 vhid 3\"\n\
         ifconfig_hn1=\"DHCP\"\nifconfig_hn1_ipv6=\"inet6 accept_rtadv\"\n\
         ifconfig_hn2=\"inet 10.0.0.300/24\"\n\
         ipv6_network_interfaces=auto\n",
    );
    let a = c.interface("hn0").addresses().unwrap();
    let s: Vec<String> = a
        .iter()
        .map(|x| format!("{}/{:?}", x.addr, x.prefix))
        .collect();
    assert_eq!(
        s,
        [
            "10.0.0.4/Some(24)",
            "2001:db8::4/Some(64)",
            "10.0.0.10/Some(24)",
            "10.0.0.11/Some(32)",
            "10.0.0.20/Some(32)",
            "2001:db8::9/Some(64)",
        ]
    );
    assert_eq!(a[0].source, AddressSource::Main);
    assert_eq!(a[0].extra, ["mtu", "9000"]);
    assert_eq!(a[1].source, AddressSource::Ipv6Main);
    assert_eq!(a[4].extra, ["vhid", "3"]);
    assert!(c.interface("hn1").addresses().unwrap().is_empty());
    let e = c.interface("hn2").addresses().unwrap_err();
    assert!(e.message.contains("IPv4 address"), "{e:?}");
}
