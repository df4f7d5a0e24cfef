//! Built-in scenarios (the same text format as scenario files).
//!
//! Expectations state what a correct system achieves. In transparent mode
//! the kernel alone achieves it; in non-transparent mode something in the
//! guest (hvnet, or devd with the original scripts) must build the lagg,
//! so those scenarios fail with `--agent none` — by design.

use crate::scenario::{parse, Scenario};

/// (name, scenario text).
pub const BUILTINS: &[(&str, &str)] = &[
    (
        "demo",
        "description Boot (transparent hn), a VF arrives, a live migration takes it away, a new VF returns.
duration 120s
rc ifconfig_hn0=\"DHCP\"
traffic rate 100
at 10s offer-vf hn0 family mlx5en
at 60s migrate hn0 detach-after 100ms return-after 20s family mlx5en
expect at 30s path vf
expect at 70s path hn
expect at 100s path vf
expect no-broken-connections
expect lost <= 20
expect no-invariant-violations
",
    ),
    (
        "boot-no-vf",
        "description Boot without accelerated networking: everything on hn0.
duration 60s
rc ifconfig_hn0=\"DHCP\"
expect at 30s path hn
expect ipv4 10.0.0.4 on hn0
expect sysctl hw.hn.vflist = \"\"
expect no-broken-connections
",
    ),
    (
        "boot-vf",
        "description Boot with a VF (transparent): the kernel pairs it and moves the datapath after the attach wait.
duration 60s
rc ifconfig_hn0=\"DHCP\"
at 5s offer-vf hn0 family mlx5en
expect at 6s sysctl hw.hn.vflist = \"mce0\"
expect at 6s sysctl hw.hn.vfmap = \"mce0:hn0\"
expect at 6s sysctl dev.hn.0.vf = \"mce0\"
expect at 6s sysctl dev.hn.0.vf_xpnt_enabled = \"0\"
expect at 8s sysctl dev.hn.0.vf_xpnt_enabled = \"1\"
expect at 30s path vf
expect ipv4 10.0.0.4 on hn0
expect devctl \"!system=ETHERNET subsystem=mce0 type=IFATTACH\"
expect no devctl \"!system=HYPERV_NIC_VF subsystem=hn0 type=VF_UP\"
expect no-broken-connections
expect no-invariant-violations
",
    ),
    (
        "boot-vf-nt",
        "description Boot with a VF in non-transparent mode: the VF must be brought up and a failover lagg built (hyperv_vfattach/hyperv_vfup or hvnet).
duration 90s
mode non-transparent
rc ifconfig_hn0=\"DHCP\"
at 5s offer-vf hn0 family mlx5en
expect at 6s sysctl hw.hn.vflist = \"mce0\"
expect at 6s sysctl dev.hn.0.rxvf = \"\"
expect at 60s path vf
expect at 60s sysctl dev.hn.0.rxvf = \"mce0\"
expect ipv4 10.0.0.4 on lagg0
expect no ipv4 10.0.0.4 on hn0
expect no-invariant-violations
",
    ),
    (
        "live-migration",
        "description Transparent mode: a live migration revokes the VF (datapath to synthetic first) and a new one returns.
duration 120s
rc ifconfig_hn0=\"DHCP\"
at 10s offer-vf hn0
at 60s migrate hn0 detach-after 200ms return-after 15s
expect at 40s path vf
expect at 65s path hn
expect at 100s path vf
expect no-broken-connections
expect lost == 0
expect no-invariant-violations
",
    ),
    (
        "live-migration-nt",
        "description Non-transparent mode: live migration with the failover lagg; the lagg falls back to hn0 and takes the new VF.
duration 180s
mode non-transparent
rc ifconfig_hn0=\"DHCP\"
at 5s offer-vf hn0
at 90s migrate hn0 detach-after 200ms return-after 15s
expect at 60s path vf
expect at 95s path hn
expect at 150s path vf
expect ipv4 10.0.0.4 on lagg0
expect no-broken-connections
expect lost <= 50
expect no-invariant-violations
",
    ),
    (
        "servicing",
        "description Host servicing: the VF is revoked and comes back much later.
duration 300s
rc ifconfig_hn0=\"DHCP\"
at 10s offer-vf hn0
at 60s service hn0 detach-after 500ms return-after 120s
expect at 100s path hn
expect at 250s path vf
expect no-broken-connections
expect no-invariant-violations
",
    ),
    (
        "mlx4-to-mlx5",
        "description The VM moves from a host with ConnectX-3 (mlx4en, mlxen0) to one with ConnectX-4/5 (mlx5en, mce0).
duration 120s
rc ifconfig_hn0=\"DHCP\"
at 10s offer-vf hn0 family mlx4en
at 60s migrate hn0 return-after 10s family mlx5en
expect at 30s sysctl hw.hn.vfmap = \"mlxen0:hn0\"
expect at 100s sysctl hw.hn.vfmap = \"mce0:hn0\"
expect at 100s path vf
expect no-broken-connections
expect no-invariant-violations
",
    ),
    (
        "surprise-removal",
        "description The VF disappears without warning (no datapath switch first), then returns.
duration 90s
rc ifconfig_hn0=\"DHCP\"
traffic rate 1000
at 10s offer-vf hn0
at 40s remove-vf hn0 detach-after 50ms return-after 10s
expect at 45s path hn
expect at 80s path vf
expect no-broken-connections
expect lost <= 200
expect no-invariant-violations
",
    ),
    (
        "flapping",
        "description The VF comes and goes every few seconds.
duration 120s
rc ifconfig_hn0=\"DHCP\"
at 10s offer-vf hn0
at 30s every 6s count 8 remove-vf hn0 detach-after 50ms return-after 3s
expect at 110s path vf
expect no-broken-connections
expect no-invariant-violations
",
    ),
    (
        "vf-before-hn",
        "description The VF attaches before hn0 finished attaching: hn never pairs it (no scan at attach), traffic stays synthetic.
duration 60s
rc ifconfig_hn0=\"DHCP\"
nic hn0 attach 2s
at 1s offer-vf hn0
expect at 30s sysctl hw.hn.vflist = \"\"
expect at 30s path hn
expect no-broken-connections
",
    ),
    (
        "static",
        "description Static IPv4 configuration with a default route.
duration 60s
rc ifconfig_hn0=\"inet 10.0.0.4/24\"
rc defaultrouter=\"10.0.0.1\"
dhcp off
at 10s offer-vf hn0
at 40s migrate hn0
expect at 30s path vf
expect ipv4 10.0.0.4 on hn0
expect no-broken-connections
expect no-invariant-violations
",
    ),
    (
        "static-nt",
        "description Static IPv4 in non-transparent mode: the address must move to lagg0.
duration 90s
mode non-transparent
rc ifconfig_hn0=\"inet 10.0.0.4/24\"
rc defaultrouter=\"10.0.0.1\"
dhcp off
at 5s offer-vf hn0
at 60s migrate hn0 return-after 10s
expect at 40s path vf
expect at 62s path hn
expect at 85s path vf
expect ipv4 10.0.0.4 on lagg0
expect no-invariant-violations
",
    ),
    (
        "syncdhcp",
        "description SYNCDHCP configuration (rc waits for the lease).
duration 60s
rc ifconfig_hn0=\"SYNCDHCP\"
at 10s offer-vf hn0
expect at 30s path vf
expect ipv4 10.0.0.4 on hn0
expect no-broken-connections
",
    ),
    (
        "syncdhcp-nt",
        "description SYNCDHCP in non-transparent mode (the original hyperv_vfup blocks devd while dhclient runs).
duration 90s
mode non-transparent
rc ifconfig_hn0=\"SYNCDHCP\"
at 5s offer-vf hn0
expect at 60s path vf
expect ipv4 10.0.0.4 on lagg0
expect no-invariant-violations
",
    ),
    (
        "ipv6",
        "description Dual stack: a static IPv6 address next to DHCP IPv4; the connection uses IPv6.
duration 90s
rc ifconfig_hn0=\"DHCP\"
rc ifconfig_hn0_ipv6=\"inet6 2001:db8::4 prefixlen 64\"
traffic address 2001:db8::4
at 10s offer-vf hn0
at 50s migrate hn0 return-after 10s
expect at 30s path vf
expect at 52s path hn
expect at 80s path vf
expect ipv6 2001:db8::4 on hn0
expect no-broken-connections
",
    ),
    (
        "ipv6-nt",
        "description Dual stack in non-transparent mode: the static IPv6 address must follow hn0's configuration to lagg0 (the original hyperv_vfup leaves IPv6 as a TODO).
duration 90s
mode non-transparent
rc ifconfig_hn0=\"DHCP\"
rc ifconfig_hn0_ipv6=\"inet6 2001:db8::4 prefixlen 64\"
traffic address 2001:db8::4
at 5s offer-vf hn0
at 50s migrate hn0 return-after 10s
expect at 40s path vf
expect at 52s path hn
expect at 80s path vf
expect ipv6 2001:db8::4 on lagg0
expect no ipv6 2001:db8::4 on hn0
expect no-broken-connections
expect no-invariant-violations
",
    ),
    (
        "aliases",
        "description IPv4 aliases next to the main address.
duration 60s
rc ifconfig_hn0=\"inet 10.0.0.4/24\"
rc ifconfig_hn0_alias0=\"inet 10.0.0.5/32\"
rc ifconfig_hn0_alias1=\"inet 10.0.0.6/32\"
dhcp off
traffic address 10.0.0.6
at 10s offer-vf hn0
expect at 30s path vf
expect ipv4 10.0.0.5 on hn0
expect ipv4 10.0.0.6 on hn0
expect no-broken-connections
",
    ),
    (
        "aliases-nt",
        "description IPv4 aliases in non-transparent mode: aliases must follow the main address to lagg0 (the original hyperv_vfup does not move them).
duration 90s
mode non-transparent
rc ifconfig_hn0=\"inet 10.0.0.4/24\"
rc ifconfig_hn0_alias0=\"inet 10.0.0.5/32\"
dhcp off
traffic address 10.0.0.5
at 5s offer-vf hn0
expect at 60s path vf
expect ipv4 10.0.0.4 on lagg0
expect ipv4 10.0.0.5 on lagg0
expect no-invariant-violations
",
    ),
    (
        "two-nics",
        "description Two synthetic NICs: hn0 with a ConnectX VF, hn1 with a MANA VF; pairing by MAC, sysctls list both.
duration 90s
nic hn0
nic hn1
rc ifconfig_hn0=\"DHCP\"
rc ifconfig_hn1=\"inet 10.1.0.4/24\"
at 10s offer-vf hn1 family mana
at 12s offer-vf hn0 family mlx5en
at 50s migrate hn0 return-after 10s
expect at 20s sysctl hw.hn.vflist = \"mana0 mce0\"
expect at 20s sysctl hw.hn.vfmap = \"mana0:hn1 mce0:hn0\"
expect at 20s sysctl dev.hn.1.vf_xpnt_enabled = \"1\"
expect at 30s path vf
expect at 55s sysctl hw.hn.vfmap = \"mana0:hn1\"
expect at 80s path vf
expect ipv4 10.1.0.4 on hn1
expect no-broken-connections
expect no-invariant-violations
",
    ),
    (
        "jumbo-mtu",
        "description hn0 at MTU 9000 (transparent): the VF is set to hn's MTU when it becomes ready.
duration 60s
rc ifconfig_hn0=\"DHCP mtu 9000\"
at 10s offer-vf hn0 max-mtu 9000
expect at 30s path vf
expect no-broken-connections
expect no-invariant-violations
",
    ),
    (
        "hour-60-migrations",
        "description One virtual hour with 60 live migrations (the performance scenario).
duration 3600s
rc ifconfig_hn0=\"DHCP\"
traffic rate 1000
at 10s offer-vf hn0
at 30s every 60s count 60 migrate hn0 detach-after 100ms return-after 10s
expect no-broken-connections
expect no-invariant-violations
",
    ),
];

/// The names of the built-in scenarios.
pub fn names() -> Vec<&'static str> {
    BUILTINS.iter().map(|(n, _)| *n).collect()
}

/// The text of a built-in scenario.
pub fn text(name: &str) -> Option<&'static str> {
    BUILTINS.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

/// A built-in scenario, parsed.
pub fn get(name: &str) -> Option<Scenario> {
    let t = text(name)?;
    let mut sc = parse(&format!("builtin:{name}"), t).expect("built-in scenarios parse");
    sc.name = name.to_string();
    Some(sc)
}

/// A built-in scenario by name, else the scenario file at that path. A file error is
/// `FILE:LINE: message`.
pub fn load(name: &str) -> Result<Scenario, String> {
    if let Some(sc) = get(name) {
        return Ok(sc);
    }
    let path = std::path::Path::new(name);
    if !path.exists() {
        return Err(format!(
            "{name}: expected a built-in scenario ({}) or a scenario file, found neither",
            names().join(", ")
        ));
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("{name}: {e}"))?;
    parse(name, &text).map_err(|e| e.to_string())
}

/// Each of `wanted` as [`load`] finds it, or every built-in when none is named.
pub fn load_each(wanted: &[String]) -> Result<Vec<Scenario>, String> {
    if wanted.is_empty() {
        return Ok(names().into_iter().filter_map(get).collect());
    }
    wanted.iter().map(|n| load(n)).collect()
}

/// The one-line description of a built-in scenario.
pub fn description(name: &str) -> String {
    get(name).map(|s| s.description).unwrap_or_default()
}
