//! Everything rc.conf says about one interface, in one structure, so a
//! configuration can be inspected or moved (e.g. from hnX to a lagg).

use crate::alias::Af;
use crate::conf::RcConf;
use crate::routes::StaticRoute;

/// rc.conf's configuration of one interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceConfig {
    pub name: String,
    /// `_ifconfig_getargs IF` (after the `ifconfig_DEFAULT` fallback),
    /// echoed: single spaces.
    pub raw_args: String,
    /// `ifconfig_getargs IF` as words (pseudo-args and `vnet J` removed).
    pub args: Vec<String>,
    /// `dhcpif IF`.
    pub dhcp: bool,
    /// `syncdhcpif IF`.
    pub sync_dhcp: bool,
    /// NOAUTO present (`autoif` false).
    pub noauto: bool,
    pub wpa: bool,
    pub hostap: bool,
    /// The jail of a `vnet JAIL` pair.
    pub vnet: Option<String>,
    /// `ifconfig_IF_descr`.
    pub description: Option<String>,
    /// `ifalias IF inet alias` groups, e.g. `["inet", "10.0.0.5/32"]`;
    /// each is applied as `ifconfig IF <group> alias`.
    pub ipv4_aliases: Vec<Vec<String>>,
    /// `ifalias IF link alias` and `ifalias IF ether alias` groups.
    pub link_aliases: Vec<Vec<String>>,
    pub ipv6: Ipv6Config,
    /// Static routes tagged with or routed through this interface.
    pub routes: Vec<StaticRoute>,
    pub dhclient: DhclientConfig,
}

/// IPv6 settings of one interface.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Ipv6Config {
    /// `ipv6if IF`.
    pub enabled: bool,
    /// `ipv6_activate_all_interfaces`.
    pub activate_all: bool,
    /// `ifconfig_IF_ipv6` arguments (pseudo-args removed, `inet6`
    /// prepended when the value starts with an address).
    pub args: Vec<String>,
    /// `inet6` had to be prepended (rc warns).
    pub inet6_prepended: bool,
    /// Words of `ipv6_prefix_IF`.
    pub prefixes: Vec<String>,
    /// The ifconfig arguments for the prefixes (`inet6 P:: prefixlen N eui64 alias`).
    pub prefix_commands: Vec<Vec<String>>,
    /// Obsolete `ipv6_ifconfig_IF`, as `inet6 VALUE...`.
    pub obsolete_args: Vec<String>,
    /// `ifalias IF inet6 alias` groups.
    pub aliases: Vec<Vec<String>>,
}

/// How rc.d/dhclient would run dhclient for the interface.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DhclientConfig {
    /// `dhclient_flags_IF`, else `dhclient_flags`.
    pub flags: Vec<String>,
    /// `background_dhclient_IF`, else `background_dhclient`.
    pub background: bool,
}

impl RcConf {
    /// Collect every rule for `ifname`.
    pub fn interface(&self, ifname: &str) -> InterfaceConfig {
        let (args6, prepended) = self.ipv6_args(ifname);
        InterfaceConfig {
            name: ifname.to_string(),
            raw_args: self.ifconfig_raw_args(ifname, None),
            args: self.ifconfig_args(ifname, None),
            dhcp: self.dhcpif(ifname),
            sync_dhcp: self.syncdhcpif(ifname),
            noauto: !self.autoif(ifname),
            wpa: self.wpaif(ifname),
            hostap: self.hostapif(ifname),
            vnet: self.vnetif(ifname),
            description: self.description(ifname),
            ipv4_aliases: self.aliases(ifname, Af::Inet),
            link_aliases: self
                .aliases(ifname, Af::Link)
                .into_iter()
                .chain(self.aliases(ifname, Af::Ether))
                .collect(),
            ipv6: Ipv6Config {
                enabled: self.ipv6if(ifname),
                activate_all: self.ipv6_activate_all_interfaces(),
                args: args6,
                inet6_prepended: prepended,
                prefixes: self.ipv6_prefixes(ifname),
                prefix_commands: self.ipv6_prefix_commands(ifname),
                obsolete_args: self.ipv6_ifconfig_args(ifname),
                aliases: self.aliases(ifname, Af::Inet6),
            },
            routes: self.routes_for_interface(ifname),
            dhclient: DhclientConfig {
                flags: self.dhclient_flags(ifname),
                background: self.background_dhclient(ifname),
            },
        }
    }
}

impl InterfaceConfig {
    /// Whether rc would configure anything on the interface at all.
    pub fn is_configured(&self) -> bool {
        self.dhcp
            || !self.args.is_empty()
            || !self.ipv4_aliases.is_empty()
            || !self.ipv6.args.is_empty()
            || !self.ipv6.prefixes.is_empty()
            || !self.ipv6.obsolete_args.is_empty()
            || !self.ipv6.aliases.is_empty()
    }
}
