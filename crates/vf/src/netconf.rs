//! The network configuration of a synthetic NIC, as the manager needs it:
//! addresses, MTU, DHCP, routes. Built from rc.conf (via hvnet-rcconf) or
//! given directly (tests, Linux).
//!
//! The ifconfig words of rc.conf are interpreted here (`inet A/N`,
//! `inet A netmask M`, `inet6 A prefixlen N`, `mtu N`, ...). Words the
//! manager cannot express as [`crate::Op`]s are kept in
//! [`IfConfig::unsupported`] and reported, never silently dropped.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hvnet_rcconf::{RcConf, RouteFamily, StaticRoute};

use crate::model::{IpNet, Ipv4Net, Ipv6Net, Mac, Route};

/// What should be configured on the interface that carries a synthetic
/// NIC's IP configuration (the NIC itself, or its aggregate).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IfConfig {
    /// rc.conf configures anything at all (so the interface is brought up).
    pub configured: bool,
    /// Run a DHCP client (`DHCP`/`SYNCDHCP`/`NOSYNCDHCP`).
    pub dhcp: bool,
    /// rc.conf `SYNCDHCP` (or `synchronous_dhclient`).
    pub sync_dhcp: bool,
    /// Static IPv4 addresses, main address first, then aliases.
    pub ipv4: Vec<Ipv4Net>,
    /// Static IPv6 addresses (only when IPv6 is enabled for the interface).
    pub ipv6: Vec<Ipv6Net>,
    /// IPv6 prefixes whose host part is the interface's EUI-64.
    pub ipv6_eui64: Vec<Ipv6Net>,
    /// `mtu N`.
    pub mtu: Option<u32>,
    /// Static routes. `iface == Some(name of the synthetic NIC)` means "the
    /// interface holding the configuration" and is rewritten by the planner.
    pub routes: Vec<Route>,
    /// Words or settings that were not understood or cannot be applied.
    pub unsupported: Vec<String>,
}

/// Where the planner gets interface configuration from.
pub trait NetConfigSource {
    /// The configuration rc.conf (or the admin) gives interface `name`.
    fn interface_config(&self, name: &str) -> IfConfig;
}

/// A fixed map of configurations (tests, Linux, explicit config files).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetConfig {
    pub interfaces: BTreeMap<String, IfConfig>,
}

impl NetConfigSource for NetConfig {
    fn interface_config(&self, name: &str) -> IfConfig {
        self.interfaces.get(name).cloned().unwrap_or_default()
    }
}

impl NetConfigSource for RcConf {
    fn interface_config(&self, name: &str) -> IfConfig {
        from_rcconf(self, name)
    }
}

/// Collect `name`'s configuration from rc.conf with network.subr's rules.
pub fn from_rcconf(rc: &RcConf, name: &str) -> IfConfig {
    let ic = rc.interface(name);
    let mut out = IfConfig {
        configured: ic.is_configured() && !ic.noauto,
        dhcp: ic.dhcp,
        sync_dhcp: ic.dhcp && ic.sync_dhcp,
        ..Default::default()
    };
    apply_words(&mut out, &ic.args, false);
    for group in &ic.ipv4_aliases {
        apply_words(&mut out, group, false);
    }
    if ic.ipv6.enabled {
        apply_words(&mut out, &ic.ipv6.args, true);
        apply_words(&mut out, &ic.ipv6.obsolete_args, true);
        for group in &ic.ipv6.aliases {
            apply_words(&mut out, group, true);
        }
        for cmd in &ic.ipv6.prefix_commands {
            prefix_command(&mut out, cmd);
        }
    }
    for r in &ic.routes {
        match route_from_static(r) {
            Some(route) => out.routes.push(route),
            None => out
                .unsupported
                .push(format!("route_{}: {}", r.name, r.args.join(" "))),
        }
    }
    // A default router belongs to the interface whose subnet contains it.
    if !out.dhcp {
        if let Some(gw) = rc.default_router().and_then(|g| g.parse::<Ipv4Addr>().ok()) {
            if out.ipv4.iter().any(|n| v4_contains(n, gw)) {
                out.routes.push(Route {
                    dest: IpNet::default_v4(),
                    gateway: Some(IpAddr::V4(gw)),
                    iface: None,
                });
            }
        }
    }
    if ic.ipv6.enabled {
        if let Some(gw) = rc
            .ipv6_default_router()
            .and_then(|g| g.parse::<Ipv6Addr>().ok())
        {
            if out.ipv6.iter().any(|n| v6_contains(n, gw)) {
                out.routes.push(Route {
                    dest: IpNet::default_v6(),
                    gateway: Some(IpAddr::V6(gw)),
                    iface: None,
                });
            }
        }
    }
    if let Some(d) = &ic.description {
        out.unsupported.push(format!("description {d}"));
    }
    out
}

/// True when `gw` lies in `n`'s subnet.
pub fn v4_contains(n: &Ipv4Net, gw: Ipv4Addr) -> bool {
    let mask = if n.prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(n.prefix.min(32)))
    };
    (u32::from(n.addr) & mask) == (u32::from(gw) & mask)
}

/// True when `gw` lies in `n`'s subnet.
pub fn v6_contains(n: &Ipv6Net, gw: Ipv6Addr) -> bool {
    let mask = if n.prefix == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(n.prefix.min(128)))
    };
    (u128::from(n.addr) & mask) == (u128::from(gw) & mask)
}

/// The EUI-64 address of `prefix` for an interface with `mac`.
pub fn eui64(prefix: &Ipv6Net, mac: Mac) -> Ipv6Net {
    let m = mac.0;
    let host = u64::from_be_bytes([m[0] ^ 0x02, m[1], m[2], 0xff, 0xfe, m[3], m[4], m[5]]);
    let net = u128::from(prefix.addr) & (u128::MAX << 64);
    Ipv6Net::new(Ipv6Addr::from(net | u128::from(host)), prefix.prefix)
}

fn prefix_command(out: &mut IfConfig, cmd: &[String]) {
    // `inet6 P:: prefixlen N eui64 alias [anycast]`
    if cmd.iter().any(|w| w == "anycast") {
        out.unsupported.push(cmd.join(" "));
        return;
    }
    let addr = cmd.get(1).and_then(|a| a.parse::<Ipv6Addr>().ok());
    let len = cmd
        .iter()
        .position(|w| w == "prefixlen")
        .and_then(|i| cmd.get(i + 1))
        .and_then(|l| l.parse::<u8>().ok())
        .unwrap_or(64);
    match addr {
        Some(a) if len <= 128 => out.ipv6_eui64.push(Ipv6Net::new(a, len)),
        _ => out.unsupported.push(cmd.join(" ")),
    }
}

fn parse_netmask(s: &str) -> Option<u8> {
    let bits = if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u32::from_str_radix(hex, 16).ok()?
    } else {
        u32::from(s.parse::<Ipv4Addr>().ok()?)
    };
    let ones = bits.leading_ones();
    // Only contiguous masks make sense as a prefix.
    (bits.checked_shl(ones).unwrap_or(0) == 0).then_some(ones as u8)
}

/// Interpret one ifconfig argument list (`inet 10.0.0.4/24 mtu 9000 up`).
/// `v6_default`: words come from an IPv6 variable.
pub fn apply_words(out: &mut IfConfig, words: &[String], v6_default: bool) {
    let mut i = 0;
    let mut family_v6 = v6_default;
    while i < words.len() {
        let w = words[i].as_str();
        let next = words.get(i + 1).map(String::as_str);
        match w {
            "inet" => {
                family_v6 = false;
                i += 1;
            }
            "inet6" => {
                family_v6 = true;
                i += 1;
            }
            "mtu" => {
                match next.and_then(|n| n.parse::<u32>().ok()) {
                    Some(m) => out.mtu = Some(m),
                    None => out.unsupported.push(format!("mtu {}", next.unwrap_or(""))),
                }
                i += 2;
            }
            "up" | "alias" | "add" | "-ifdisabled" | "no_dad" => i += 1,
            "netmask" | "prefixlen" | "broadcast" => {
                // Applied to the preceding address; a stray one is reported.
                out.unsupported.push(format!("{w} {}", next.unwrap_or("")));
                i += 2;
            }
            _ => {
                if let Some(consumed) = address(out, words, i, family_v6) {
                    i += consumed;
                } else {
                    out.unsupported.push(w.to_string());
                    i += 1;
                }
            }
        }
    }
}

/// Parse an address at `words[i]` with its trailing `netmask`/`prefixlen`/
/// `broadcast` words; returns how many words were used.
fn address(out: &mut IfConfig, words: &[String], i: usize, _v6: bool) -> Option<usize> {
    let w = words[i].as_str();
    let (a, plen) = match w.split_once('/') {
        Some((a, p)) => (a, Some(p.parse::<u8>().ok()?)),
        None => (w, None),
    };
    let ip: IpAddr = a.parse().ok()?;
    let mut used = 1;
    let mut prefix = plen;
    while let (Some(k), Some(v)) = (words.get(i + used), words.get(i + used + 1)) {
        match k.as_str() {
            "netmask" => prefix = Some(parse_netmask(v)?),
            "prefixlen" => prefix = Some(v.parse().ok()?),
            "broadcast" => {}
            _ => break,
        }
        used += 2;
    }
    match ip {
        IpAddr::V4(v4) => {
            let p = prefix.unwrap_or(default_v4_prefix(v4));
            if p > 32 {
                return None;
            }
            push_unique(&mut out.ipv4, Ipv4Net::new(v4, p));
        }
        IpAddr::V6(v6a) => {
            let p = prefix.unwrap_or(64);
            if p > 128 {
                return None;
            }
            push_unique(&mut out.ipv6, Ipv6Net::new(v6a, p));
        }
    }
    Some(used)
}

/// ifconfig's classful default when no mask is given.
fn default_v4_prefix(a: Ipv4Addr) -> u8 {
    match a.octets()[0] {
        0..=127 => 8,
        128..=191 => 16,
        _ => 24,
    }
}

fn push_unique<T: PartialEq>(v: &mut Vec<T>, x: T) {
    if !v.contains(&x) {
        v.push(x);
    }
}

/// Turn a `route_NAME` entry into a [`Route`], when it is one of the simple
/// forms: `[-net|-host] DEST GATEWAY`, `DEST -interface IF`, `default GW`,
/// with optional `-netmask M` / `-prefixlen N`.
pub fn route_from_static(r: &StaticRoute) -> Option<Route> {
    let v6 = r.family == RouteFamily::Inet6;
    let mut host = false;
    let mut positional: Vec<&str> = Vec::new();
    let mut mask: Option<u8> = None;
    let mut iface = r.via_interface.clone();
    let mut it = r.args.iter().map(String::as_str);
    while let Some(w) = it.next() {
        match w {
            "-net" | "-inet" | "-inet6" | "-static" => {}
            "-host" => host = true,
            "-netmask" => mask = Some(parse_netmask(it.next()?)?),
            "-prefixlen" => mask = Some(it.next()?.parse().ok()?),
            "-interface" | "-iface" => iface = Some(it.next()?.to_string()),
            _ if w.starts_with('-') => return None,
            _ => positional.push(w),
        }
    }
    let (dest, gw) = match positional.as_slice() {
        [d] => (*d, None),
        [d, g] => (*d, Some(*g)),
        _ => return None,
    };
    let dest: IpNet = if dest == "default" {
        if v6 {
            IpNet::default_v6()
        } else {
            IpNet::default_v4()
        }
    } else {
        let mut n: IpNet = dest.parse().ok()?;
        if let Some(m) = mask {
            n = match n {
                IpNet::V4(x) => IpNet::V4(Ipv4Net::new(x.addr, m)),
                IpNet::V6(x) => IpNet::V6(Ipv6Net::new(x.addr, m)),
            };
        } else if !dest.contains('/') && !host {
            if let IpNet::V4(x) = n {
                n = IpNet::V4(Ipv4Net::new(x.addr, default_v4_prefix(x.addr)));
            }
        }
        n
    };
    if matches!(dest, IpNet::V6(_)) != v6 {
        return None;
    }
    let gateway = match gw {
        Some(g) => Some(g.parse::<IpAddr>().ok()?),
        None if iface.is_some() => None,
        None => return None,
    };
    if gateway.is_none() && iface.is_none() {
        return None;
    }
    Some(Route {
        dest,
        gateway,
        iface: if gateway.is_some() && r.via_interface.is_none() {
            None
        } else {
            iface
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    fn conf(text: &str) -> IfConfig {
        RcConf::from_text("/etc/rc.conf", text).interface_config("hn0")
    }

    #[test]
    fn static_v4_forms() {
        let mut c = IfConfig::default();
        apply_words(
            &mut c,
            &words("inet 10.0.0.4 netmask 255.255.255.0 mtu 9000 up"),
            false,
        );
        apply_words(&mut c, &words("inet 10.0.1.4/16"), false);
        apply_words(&mut c, &words("inet 10.0.2.4 netmask 0xffffff00"), false);
        apply_words(&mut c, &words("192.168.1.1"), false);
        assert_eq!(
            c.ipv4,
            vec![
                Ipv4Net::new("10.0.0.4".parse().unwrap(), 24),
                Ipv4Net::new("10.0.1.4".parse().unwrap(), 16),
                Ipv4Net::new("10.0.2.4".parse().unwrap(), 24),
                Ipv4Net::new("192.168.1.1".parse().unwrap(), 24),
            ]
        );
        assert_eq!(c.mtu, Some(9000));
        assert!(c.unsupported.is_empty(), "{:?}", c.unsupported);
    }

    #[test]
    fn unknown_words_are_reported() {
        let mut c = IfConfig::default();
        apply_words(&mut c, &words("-txcsum inet 10.0.0.4/24 media auto"), false);
        assert_eq!(c.unsupported, vec!["-txcsum", "media", "auto"]);
        assert_eq!(c.ipv4.len(), 1);
    }

    #[test]
    fn rcconf_dhcp_and_aliases() {
        let c = conf(
            "ifconfig_hn0=\"SYNCDHCP\"\nifconfig_hn0_alias0=\"inet 10.0.0.9/32\"\n\
             ipv6_network_interfaces=\"hn0\"\nifconfig_hn0_ipv6=\"inet6 2001:db8::4/64\"\n",
        );
        assert!(c.dhcp && c.sync_dhcp && c.configured);
        assert_eq!(c.ipv4, vec![Ipv4Net::new("10.0.0.9".parse().unwrap(), 32)]);
        assert_eq!(
            c.ipv6,
            vec![Ipv6Net::new("2001:db8::4".parse().unwrap(), 64)]
        );
    }

    #[test]
    fn rcconf_static_with_defaultrouter_and_routes() {
        let c = conf(
            "ifconfig_hn0=\"inet 10.0.0.4/24\"\ndefaultrouter=\"10.0.0.1\"\n\
             static_routes=\"lan:hn0 direct\"\nroute_lan=\"-net 10.9.0.0/16 10.0.0.254\"\n\
             route_direct=\"-net 10.8.0.0/16 -interface hn0\"\n",
        );
        assert!(!c.dhcp);
        assert!(c.routes.contains(&Route {
            dest: IpNet::default_v4(),
            gateway: Some("10.0.0.1".parse().unwrap()),
            iface: None
        }));
        assert!(c.routes.contains(&Route {
            dest: "10.9.0.0/16".parse().unwrap(),
            gateway: Some("10.0.0.254".parse().unwrap()),
            iface: None
        }));
        assert!(c.routes.contains(&Route {
            dest: "10.8.0.0/16".parse().unwrap(),
            gateway: None,
            iface: Some("hn0".into())
        }));
    }

    #[test]
    fn defaultrouter_outside_subnet_is_not_ours() {
        let c = conf("ifconfig_hn0=\"inet 10.0.0.4/24\"\ndefaultrouter=\"192.0.2.1\"\n");
        assert!(c.routes.is_empty());
    }

    #[test]
    fn ipv6_ignored_unless_enabled() {
        let c = conf("ifconfig_hn0_ipv6=\"inet6 2001:db8::4/64\"\n");
        assert!(c.ipv6.is_empty());
    }

    #[test]
    fn eui64_from_mac() {
        let p = Ipv6Net::new("2001:db8::".parse().unwrap(), 64);
        let a = eui64(&p, "00:15:5d:01:02:03".parse().unwrap());
        assert_eq!(
            a.addr,
            "2001:db8::215:5dff:fe01:203".parse::<Ipv6Addr>().unwrap()
        );
    }

    proptest! {
        #[test]
        fn interpreting_words_never_panics(ws in proptest::collection::vec("[a-z0-9./:x-]{0,12}", 0..10)) {
            let mut c = IfConfig::default();
            apply_words(&mut c, &ws, false);
            apply_words(&mut c, &ws, true);
        }

        #[test]
        fn netmask_prefix_round_trip(p in 0u8..=32) {
            let m = if p == 0 { 0 } else { u32::MAX << (32 - u32::from(p)) };
            prop_assert_eq!(parse_netmask(&Ipv4Addr::from(m).to_string()), Some(p));
            prop_assert_eq!(parse_netmask(&format!("0x{m:08x}")), Some(p));
        }
    }
}
