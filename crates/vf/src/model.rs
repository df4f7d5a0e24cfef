//! The OS-neutral domain model: what a backend observes ([`SystemView`]) and
//! the small set of actions a reconciler asks it to perform ([`Op`]).
//!
//! Everything here is plain data (serde-serialisable, comparable) so that the
//! planner can be tested without any operating system and the simulator can
//! compare states byte for byte.
//!
//! Construction tip for other crates: [`Interface`] and [`SystemView`]
//! implement `Default`; build them with `..Default::default()` so that fields
//! added later (changes here are additive) do not break you.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A 48-bit Ethernet address. `Mac::ZERO` stands for "no link address".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Mac(pub [u8; 6]);

impl Mac {
    /// The all-zero address, used for interfaces without a link address.
    pub const ZERO: Mac = Mac([0; 6]);

    /// True for the all-zero address.
    pub fn is_zero(&self) -> bool {
        self.0 == [0; 6]
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

/// Why a string is not a MAC address or an address/prefix pair.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected {expected}, found {found:?}")]
pub struct ParseModelError {
    /// What the parser expected.
    pub expected: &'static str,
    /// The offending input.
    pub found: String,
}

impl FromStr for Mac {
    type Err = ParseModelError;

    /// Accepts `aa:bb:cc:dd:ee:ff` (also with `-`), case-insensitive.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseModelError {
            expected: "a MAC address like 00:15:5d:01:02:03",
            found: s.to_string(),
        };
        let mut out = [0u8; 6];
        let mut parts = s.split([':', '-']);
        for byte in out.iter_mut() {
            let p = parts.next().ok_or_else(err)?;
            if p.is_empty() || p.len() > 2 {
                return Err(err());
            }
            *byte = u8::from_str_radix(p, 16).map_err(|_| err())?;
        }
        if parts.next().is_some() {
            return Err(err());
        }
        Ok(Mac(out))
    }
}

impl Serialize for Mac {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Mac {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// An IPv4 address with its prefix length (`192.0.2.5/24`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Ipv4Net {
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

/// An IPv6 address with its prefix length (`2001:db8::5/64`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Ipv6Net {
    pub addr: Ipv6Addr,
    pub prefix: u8,
}

/// An address of either family with its prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum IpNet {
    V4(Ipv4Net),
    V6(Ipv6Net),
}

impl Ipv4Net {
    /// `prefix` is clamped to 32.
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Self {
        Ipv4Net {
            addr,
            prefix: prefix.min(32),
        }
    }
}

impl Ipv6Net {
    /// `prefix` is clamped to 128.
    pub fn new(addr: Ipv6Addr, prefix: u8) -> Self {
        Ipv6Net {
            addr,
            prefix: prefix.min(128),
        }
    }

    /// Link-local (fe80::/10) addresses are per-link and never moved.
    pub fn is_link_local(&self) -> bool {
        (self.addr.segments()[0] & 0xffc0) == 0xfe80
    }
}

impl IpNet {
    /// The address without its prefix.
    pub fn addr(&self) -> IpAddr {
        match self {
            IpNet::V4(n) => IpAddr::V4(n.addr),
            IpNet::V6(n) => IpAddr::V6(n.addr),
        }
    }

    /// The prefix length.
    pub fn prefix(&self) -> u8 {
        match self {
            IpNet::V4(n) => n.prefix,
            IpNet::V6(n) => n.prefix,
        }
    }

    /// The default route destination of a family (`0.0.0.0/0` or `::/0`).
    pub fn default_v4() -> Self {
        IpNet::V4(Ipv4Net::new(Ipv4Addr::UNSPECIFIED, 0))
    }

    /// `::/0`.
    pub fn default_v6() -> Self {
        IpNet::V6(Ipv6Net::new(Ipv6Addr::UNSPECIFIED, 0))
    }
}

impl From<Ipv4Net> for IpNet {
    fn from(n: Ipv4Net) -> Self {
        IpNet::V4(n)
    }
}

impl From<Ipv6Net> for IpNet {
    fn from(n: Ipv6Net) -> Self {
        IpNet::V6(n)
    }
}

impl fmt::Display for Ipv4Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl fmt::Display for Ipv6Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IpNet::V4(n) => n.fmt(f),
            IpNet::V6(n) => n.fmt(f),
        }
    }
}

impl FromStr for IpNet {
    type Err = ParseModelError;

    /// `ADDR/PREFIX`; without `/PREFIX` a host prefix (32 or 128) is meant.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseModelError {
            expected: "an address with optional /prefix",
            found: s.to_string(),
        };
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p.parse::<u8>().map_err(|_| err())?)),
            None => (s, None),
        };
        match a.parse::<IpAddr>().map_err(|_| err())? {
            IpAddr::V4(v4) => {
                let p = p.unwrap_or(32);
                if p > 32 {
                    return Err(err());
                }
                Ok(IpNet::V4(Ipv4Net::new(v4, p)))
            }
            IpAddr::V6(v6) => {
                let p = p.unwrap_or(128);
                if p > 128 {
                    return Err(err());
                }
                Ok(IpNet::V6(Ipv6Net::new(v6, p)))
            }
        }
    }
}

/// What an interface is, as far as VF management cares.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum IfKind {
    /// The synthetic (paravirtual) NIC: FreeBSD `hn(4)`, Linux `hv_netvsc`,
    /// or the virtio NIC of a steered pair.
    Synthetic,
    /// An SR-IOV Virtual Function; `driver` is e.g. `mce`, `mlx4en`, `mlx5_core`.
    Vf { driver: String },
    /// A failover aggregate (FreeBSD `lagg`, Linux bond/team).
    Aggregate,
    /// Anything else (loopback, vlan, bridges, ...). Never touched.
    #[default]
    Other,
}

/// Protocol of an aggregate. Only `Failover` is ever planned.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum AggregateProto {
    #[default]
    Failover,
    Lacp,
    LoadBalance,
    RoundRobin,
    Broadcast,
    None,
    /// A protocol this model does not know, by its OS name.
    Other(String),
}

impl AggregateProto {
    /// The protocols lagg(4) has.
    pub const KNOWN: [AggregateProto; 6] = [
        AggregateProto::Failover,
        AggregateProto::Lacp,
        AggregateProto::LoadBalance,
        AggregateProto::RoundRobin,
        AggregateProto::Broadcast,
        AggregateProto::None,
    ];

    /// ifconfig's word for it (`laggproto failover`).
    pub fn name(&self) -> &str {
        match self {
            AggregateProto::Failover => "failover",
            AggregateProto::Lacp => "lacp",
            AggregateProto::LoadBalance => "loadbalance",
            AggregateProto::RoundRobin => "roundrobin",
            AggregateProto::Broadcast => "broadcast",
            AggregateProto::None => "none",
            AggregateProto::Other(word) => word,
        }
    }

    /// The protocol ifconfig's `word` names; [`AggregateProto::Other`] for a word lagg(4)
    /// does not have.
    pub fn from_name(word: &str) -> AggregateProto {
        AggregateProto::KNOWN
            .into_iter()
            .find(|p| p.name() == word)
            .unwrap_or_else(|| AggregateProto::Other(word.to_string()))
    }

    /// Not [`AggregateProto::Other`].
    pub fn is_known(&self) -> bool {
        !matches!(self, AggregateProto::Other(_))
    }
}

impl fmt::Display for AggregateProto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for AggregateProto {
    type Err = std::convert::Infallible;

    fn from_str(word: &str) -> Result<Self, Self::Err> {
        Ok(AggregateProto::from_name(word))
    }
}

/// State of an aggregate interface (only set when `kind == Aggregate`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub struct AggregateState {
    pub proto: AggregateProto,
    /// Member ports in the order the OS lists them.
    pub ports: Vec<String>,
    /// The port currently carrying traffic, if any.
    pub active: Option<String>,
    /// The failover primary (FreeBSD: the MASTER port), if any.
    pub primary: Option<String>,
}

/// One network interface as observed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub struct Interface {
    pub name: String,
    /// OS interface index (lagg orders ports by it); 0 when unknown.
    pub index: u32,
    pub kind: IfKind,
    /// Link address; `Mac::ZERO` when the interface has none.
    pub mac: Mac,
    /// Administratively up (FreeBSD IFF_UP, Linux IFF_UP).
    pub admin_up: bool,
    /// Carrier / link state up.
    pub link_up: bool,
    /// Driver running (FreeBSD IFF_DRV_RUNNING, Linux operstate up).
    pub running: bool,
    pub mtu: u32,
    /// Configured IPv4 addresses (not link-local-only bookkeeping).
    pub ipv4: Vec<Ipv4Net>,
    /// Configured IPv6 addresses, including link-local ones.
    pub ipv6: Vec<Ipv6Net>,
    /// Aggregate details when this is an aggregate.
    pub aggregate: Option<AggregateState>,
    /// Name of the aggregate (or Linux master) this interface is a port of.
    pub member_of: Option<String>,
}

impl Interface {
    /// An interface as a driver shows it once attached and brought up: up, link up,
    /// running, MTU 1500, no addresses, not in an aggregate.
    pub fn running(name: &str, mac: Mac, kind: IfKind) -> Interface {
        Interface {
            name: name.into(),
            kind,
            mac,
            admin_up: true,
            link_up: true,
            running: true,
            mtu: 1500,
            ..Default::default()
        }
    }

    /// True for a VF of any driver.
    pub fn is_vf(&self) -> bool {
        matches!(self.kind, IfKind::Vf { .. })
    }

    /// True for a synthetic NIC.
    pub fn is_synthetic(&self) -> bool {
        self.kind == IfKind::Synthetic
    }

    /// True for an aggregate.
    pub fn is_aggregate(&self) -> bool {
        self.kind == IfKind::Aggregate
    }

    /// True when the interface holds any IPv4 address or any non-link-local
    /// IPv6 address, i.e. "IP configuration".
    pub fn has_ip_config(&self) -> bool {
        !self.ipv4.is_empty() || self.ipv6.iter().any(|n| !n.is_link_local())
    }

    /// All addresses of both families.
    pub fn addresses(&self) -> impl Iterator<Item = IpNet> + '_ {
        self.ipv4
            .iter()
            .map(|n| IpNet::V4(*n))
            .chain(self.ipv6.iter().map(|n| IpNet::V6(*n)))
    }

    /// True when `addr` is configured here.
    pub fn has_address(&self, addr: &IpNet) -> bool {
        match addr {
            IpNet::V4(n) => self.ipv4.contains(n),
            IpNet::V6(n) => self.ipv6.contains(n),
        }
    }
}

/// A route in the main table.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Route {
    /// Destination; `0.0.0.0/0` / `::/0` for default routes.
    pub dest: IpNet,
    /// Next hop; `None` for interface (connected) routes.
    pub gateway: Option<IpAddr>,
    /// Outgoing interface, when bound to one.
    pub iface: Option<String>,
}

/// A running DHCP client, found by its real pid (pid file or process table).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct DhcpClient {
    pub iface: String,
    pub pid: u32,
}

/// The Hyper-V helper daemons that follow their device nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Daemon {
    /// `hv_kvp_daemon`, follows `/dev/hv_kvp_dev`.
    Kvp,
    /// `hv_vss_daemon`, follows `/dev/hv_fsvss_dev`.
    Vss,
}

impl Daemon {
    /// All daemons, in a stable order.
    pub const ALL: [Daemon; 2] = [Daemon::Kvp, Daemon::Vss];

    /// Process name (`pkill -x` name in the original rules).
    pub fn process_name(self) -> &'static str {
        match self {
            Daemon::Kvp => "hv_kvp_daemon",
            Daemon::Vss => "hv_vss_daemon",
        }
    }

    /// Device node name (under /dev) whose presence means "run it".
    pub fn device(self) -> &'static str {
        match self {
            Daemon::Kvp => "hv_kvp_dev",
            Daemon::Vss => "hv_fsvss_dev",
        }
    }

    /// Default program path on FreeBSD.
    pub fn default_path(self) -> &'static str {
        match self {
            Daemon::Kvp => "/usr/sbin/hv_kvp_daemon",
            Daemon::Vss => "/usr/sbin/hv_vss_daemon",
        }
    }

    /// The daemon whose process name is `name`.
    pub fn from_process_name(name: &str) -> Option<Daemon> {
        Daemon::ALL.into_iter().find(|d| d.process_name() == name)
    }
}

/// A running helper daemon, by pid.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct DaemonProc {
    pub daemon: Daemon,
    pub pid: u32,
}

/// A synthetic/VF pair whose traffic hvnet steers itself (Linux steered mode:
/// tc redirect filters in both directions).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SteerPair {
    pub synthetic: String,
    pub vf: String,
}

/// The steering gate in front of a redirect (Linux: a BPF classifier reading one map value).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GateState {
    /// Packets go on to the redirect.
    Open,
    /// Packets leave through the interface itself; the redirect is bypassed.
    Closed,
    /// A gate this backend did not make (e.g. left by an earlier run): its state cannot be
    /// read, so it counts as open.
    Unknown,
}

/// A steering redirect the kernel holds on an interface's egress, as observed, whatever
/// made it and wherever it points (Linux steered mode).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct EgressRedirect {
    /// The interface whose outgoing packets are redirected.
    pub iface: String,
    /// The target's interface index, as the filter holds it.
    pub to_index: u32,
    /// The target's name; `None` when no interface has that index any more (a stale
    /// redirect: every packet it takes is dropped).
    pub to: Option<String>,
    /// The gate in front of it; `None`: no gate, every packet takes the redirect.
    pub gate: Option<GateState>,
}

impl EgressRedirect {
    /// Packets take the redirect (no gate, or a gate that is open or unreadable).
    pub fn passes(&self) -> bool {
        self.gate != Some(GateState::Closed)
    }
}

/// Facts about the platform that decide the mode and the pairing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Platform {
    /// The kernel pairs and steers by itself (FreeBSD `hw.hn.vf_transparent`
    /// non-zero, Linux netvsc / net_failover). A missing sysctl means false.
    pub vf_transparent: bool,
    /// The kernel's own pairing, VF name -> synthetic name (FreeBSD
    /// `hw.hn.vfmap`, or `dev.hn.N.vf`; Linux: the VF's netvsc master).
    /// Empty when the kernel does not pair (steered mode pairs by MAC).
    pub vf_map: BTreeMap<String, String>,
}

/// Everything a reconciler needs to know about the system at one instant.
/// Backends build it from scratch on every `observe`, so a restarted manager
/// sees exactly what a running one would.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct SystemView {
    pub interfaces: Vec<Interface>,
    pub platform: Platform,
    pub routes: Vec<Route>,
    pub dhcp_clients: Vec<DhcpClient>,
    pub daemons: Vec<DaemonProc>,
    /// Present device node names (e.g. `hv_kvp_dev`, `hv_fsvss_dev`).
    pub devices: BTreeSet<String>,
    /// Pairs that currently have steering filters installed (Linux steered).
    pub steering: BTreeSet<SteerPair>,
    /// Every steering redirect on an egress hook, including ones whose target is gone or
    /// that sit on an interface that is not a synthetic NIC (backends that steer fill it).
    pub egress_redirects: Vec<EgressRedirect>,
}

impl SystemView {
    /// The interface called `name`.
    pub fn interface(&self, name: &str) -> Option<&Interface> {
        self.interfaces.iter().find(|i| i.name == name)
    }

    /// Mutable access to the interface called `name`.
    pub fn interface_mut(&mut self, name: &str) -> Option<&mut Interface> {
        self.interfaces.iter_mut().find(|i| i.name == name)
    }

    /// The synthetic NIC a VF belongs to: the kernel's map when it has an
    /// entry, else the synthetic interface with the same non-zero MAC.
    pub fn synthetic_of(&self, vf: &str) -> Option<&Interface> {
        if let Some(hn) = self.platform.vf_map.get(vf) {
            return self.interface(hn);
        }
        let v = self.interface(vf)?;
        if !v.is_vf() || v.mac.is_zero() {
            return None;
        }
        self.interfaces
            .iter()
            .find(|i| i.is_synthetic() && i.mac == v.mac)
    }

    /// The steering redirect on `iface`'s egress, if the kernel holds one.
    pub fn egress_redirect(&self, iface: &str) -> Option<&EgressRedirect> {
        self.egress_redirects.iter().find(|r| r.iface == iface)
    }

    /// DHCP clients running for `iface`.
    pub fn dhcp_for<'a>(&'a self, iface: &'a str) -> impl Iterator<Item = &'a DhcpClient> + 'a {
        self.dhcp_clients.iter().filter(move |c| c.iface == iface)
    }

    /// Running processes of `daemon`.
    pub fn daemon_procs(&self, daemon: Daemon) -> impl Iterator<Item = &DaemonProc> + '_ {
        self.daemons.iter().filter(move |p| p.daemon == daemon)
    }

    /// True when `/dev/<name>` exists.
    pub fn has_device(&self, name: &str) -> bool {
        self.devices.contains(name)
    }
}

/// One action a reconciler asks a backend to perform.
///
/// Every op is safe to retry: applying it when the system is already in the
/// target state must succeed (or fail harmlessly) and change nothing. The
/// enum is `non_exhaustive`: backends must keep a fallback arm returning
/// [`crate::BackendError::unsupported`], so that ops added later compile.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Op {
    /// Create an (empty, down) failover aggregate `name` (`ifconfig laggN create`).
    CreateAggregate { name: String },
    /// Destroy aggregate `name`; its ports are released.
    DestroyAggregate { name: String },
    /// Set the aggregate protocol (`laggproto failover`).
    SetAggregateProto {
        aggregate: String,
        proto: AggregateProto,
    },
    /// Add `port` to `aggregate` (`laggport`). The first port ever added to an
    /// empty aggregate becomes the failover primary.
    AddPort { aggregate: String, port: String },
    /// Remove `port` from `aggregate` (`-laggport`).
    RemovePort { aggregate: String, port: String },
    /// Administrative up/down.
    SetAdmin { iface: String, up: bool },
    /// Set the MTU.
    SetMtu { iface: String, mtu: u32 },
    /// Add an address (either family) to `iface`.
    AddAddress { iface: String, addr: IpNet },
    /// Remove an address from `iface`.
    RemoveAddress { iface: String, addr: IpNet },
    /// Add a route.
    AddRoute { route: Route },
    /// Remove a route.
    RemoveRoute { route: Route },
    /// Make `route` (as installed) go through interface `to` in one step, so
    /// its destination is never without a route (`route change ... -ifp`);
    /// added on `to` when it is not installed.
    MoveRoute { route: Route, to: String },
    /// Start a DHCP client on `iface`. `sync`: the rc.conf SYNCDHCP meaning —
    /// the manager will wait for a lease before it calls the step done; the
    /// backend itself must not block the caller's event loop waiting for it
    /// (FreeBSD: `dhclient -b` semantics either way).
    StartDhcp { iface: String, sync: bool },
    /// Stop the DHCP client `pid` that serves `iface` (by pid, never by name).
    StopDhcp { iface: String, pid: u32 },
    /// Start a helper daemon.
    StartDaemon { daemon: Daemon },
    /// Stop the helper daemon process `pid`.
    StopDaemon { daemon: Daemon, pid: u32 },
    /// Install steering filters so traffic of `synthetic` uses `vf`.
    SteerOn { synthetic: String, vf: String },
    /// Remove the steering filters of the pair.
    SteerOff { synthetic: String, vf: String },
    /// Run an administrator's hook program (no shell), e.g. the per-interface
    /// `hyperv_vfup.hnX` override, with `args`. Not idempotent by itself:
    /// the manager runs it once per VF arrival, as devd would.
    RunHook { program: String, args: Vec<String> },
}

impl Op {
    /// A short stable name of the op kind (`add_address`, ...), for logs and
    /// errors.
    pub fn name(&self) -> &'static str {
        match self {
            Op::CreateAggregate { .. } => "create_aggregate",
            Op::DestroyAggregate { .. } => "destroy_aggregate",
            Op::SetAggregateProto { .. } => "set_aggregate_proto",
            Op::AddPort { .. } => "add_port",
            Op::RemovePort { .. } => "remove_port",
            Op::SetAdmin { .. } => "set_admin",
            Op::SetMtu { .. } => "set_mtu",
            Op::AddAddress { .. } => "add_address",
            Op::RemoveAddress { .. } => "remove_address",
            Op::AddRoute { .. } => "add_route",
            Op::RemoveRoute { .. } => "remove_route",
            Op::MoveRoute { .. } => "move_route",
            Op::StartDhcp { .. } => "start_dhcp",
            Op::StopDhcp { .. } => "stop_dhcp",
            Op::StartDaemon { .. } => "start_daemon",
            Op::StopDaemon { .. } => "stop_daemon",
            Op::SteerOn { .. } => "steer_on",
            Op::SteerOff { .. } => "steer_off",
            Op::RunHook { .. } => "run_hook",
        }
    }

    /// The interface the op acts on, if any (the aggregate for port ops, the
    /// synthetic NIC for steering ops).
    pub fn interface(&self) -> Option<&str> {
        match self {
            Op::CreateAggregate { name } | Op::DestroyAggregate { name } => Some(name),
            Op::SetAggregateProto { aggregate, .. }
            | Op::AddPort { aggregate, .. }
            | Op::RemovePort { aggregate, .. } => Some(aggregate),
            Op::SetAdmin { iface, .. }
            | Op::SetMtu { iface, .. }
            | Op::AddAddress { iface, .. }
            | Op::RemoveAddress { iface, .. }
            | Op::StartDhcp { iface, .. }
            | Op::StopDhcp { iface, .. } => Some(iface),
            Op::MoveRoute { to, .. } => Some(to),
            Op::AddRoute { route } | Op::RemoveRoute { route } => route.iface.as_deref(),
            Op::StartDaemon { .. } | Op::StopDaemon { .. } => None,
            Op::SteerOn { synthetic, .. } | Op::SteerOff { synthetic, .. } => Some(synthetic),
            Op::RunHook { args, .. } => args.first().map(String::as_str),
        }
    }
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.dest)?;
        if let Some(g) = &self.gateway {
            write!(f, " via {g}")?;
        }
        if let Some(i) = &self.iface {
            write!(f, " dev {i}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::CreateAggregate { name } => write!(f, "create aggregate {name}"),
            Op::DestroyAggregate { name } => write!(f, "destroy aggregate {name}"),
            Op::SetAggregateProto { aggregate, proto } => {
                write!(f, "set {aggregate} proto {proto:?}")
            }
            Op::AddPort { aggregate, port } => write!(f, "add port {port} to {aggregate}"),
            Op::RemovePort { aggregate, port } => {
                write!(f, "remove port {port} from {aggregate}")
            }
            Op::SetAdmin { iface, up } => {
                write!(f, "set {iface} {}", if *up { "up" } else { "down" })
            }
            Op::SetMtu { iface, mtu } => write!(f, "set {iface} mtu {mtu}"),
            Op::AddAddress { iface, addr } => write!(f, "add {addr} to {iface}"),
            Op::RemoveAddress { iface, addr } => write!(f, "remove {addr} from {iface}"),
            Op::AddRoute { route } => write!(f, "add route {route}"),
            Op::RemoveRoute { route } => write!(f, "remove route {route}"),
            Op::MoveRoute { route, to } => write!(f, "move route {route} to {to}"),
            Op::StartDhcp { iface, sync } => {
                write!(
                    f,
                    "start dhcp on {iface}{}",
                    if *sync { " (sync)" } else { "" }
                )
            }
            Op::StopDhcp { iface, pid } => write!(f, "stop dhcp on {iface} (pid {pid})"),
            Op::StartDaemon { daemon } => write!(f, "start {}", daemon.process_name()),
            Op::StopDaemon { daemon, pid } => {
                write!(f, "stop {} (pid {pid})", daemon.process_name())
            }
            Op::SteerOn { synthetic, vf } => write!(f, "steer {synthetic} via {vf}"),
            Op::SteerOff { synthetic, vf } => write!(f, "unsteer {synthetic} from {vf}"),
            Op::RunHook { program, args } => write!(f, "run {program} {}", args.join(" ")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_round_trips() {
        let m: Mac = "00:15:5D:0a:0B:ff".parse().unwrap();
        assert_eq!(m.to_string(), "00:15:5d:0a:0b:ff");
        assert!("00:15:5d:0a:0b".parse::<Mac>().is_err());
        assert!("00:15:5d:0a:0b:ff:00".parse::<Mac>().is_err());
        assert!("00:15:5d:0a:0b:fff".parse::<Mac>().is_err());
        assert!(Mac::ZERO.is_zero());
    }

    #[test]
    fn aggregate_protocols_read_and_print_ifconfigs_words() {
        let words = [
            "failover",
            "lacp",
            "loadbalance",
            "roundrobin",
            "broadcast",
            "none",
        ];
        for (w, p) in words.iter().zip(AggregateProto::KNOWN) {
            assert_eq!(w.parse::<AggregateProto>(), Ok(p.clone()));
            assert_eq!(p.to_string(), *w);
            assert!(p.is_known());
        }
        let odd = AggregateProto::from_name("fec");
        assert_eq!(odd, AggregateProto::Other("fec".into()));
        assert_eq!(odd.to_string(), "fec");
        assert!(!odd.is_known());
    }

    #[test]
    fn ipnet_parses_with_and_without_prefix() {
        assert_eq!(
            "192.0.2.5/24".parse::<IpNet>().unwrap().to_string(),
            "192.0.2.5/24"
        );
        assert_eq!("192.0.2.5".parse::<IpNet>().unwrap().prefix(), 32);
        assert_eq!("2001:db8::1".parse::<IpNet>().unwrap().prefix(), 128);
        assert!("192.0.2.5/33".parse::<IpNet>().is_err());
        assert!("fe80::1/64".parse::<IpNet>().is_ok());
    }

    #[test]
    fn link_local_detection() {
        let ll = Ipv6Net::new("fe80::1".parse().unwrap(), 64);
        let gl = Ipv6Net::new("2001:db8::1".parse().unwrap(), 64);
        assert!(ll.is_link_local());
        assert!(!gl.is_link_local());
        let i = Interface {
            name: "hn0".into(),
            ipv6: vec![ll],
            ..Default::default()
        };
        assert!(!i.has_ip_config());
    }

    #[test]
    fn synthetic_of_prefers_kernel_map_then_mac() {
        let mac: Mac = "00:15:5d:00:00:01".parse().unwrap();
        let mut v = SystemView {
            interfaces: vec![
                Interface {
                    name: "hn0".into(),
                    kind: IfKind::Synthetic,
                    mac,
                    ..Default::default()
                },
                Interface {
                    name: "hn1".into(),
                    kind: IfKind::Synthetic,
                    ..Default::default()
                },
                Interface {
                    name: "mce0".into(),
                    kind: IfKind::Vf {
                        driver: "mce".into(),
                    },
                    mac,
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        assert_eq!(v.synthetic_of("mce0").unwrap().name, "hn0");
        v.platform.vf_map.insert("mce0".into(), "hn1".into());
        assert_eq!(v.synthetic_of("mce0").unwrap().name, "hn1");
    }

    #[test]
    fn ops_serialize_with_tag() {
        let op = Op::AddAddress {
            iface: "lagg0".into(),
            addr: "10.0.0.4/24".parse().unwrap(),
        };
        let j = serde_json::to_string(&op).unwrap();
        assert_eq!(
            j,
            r#"{"op":"add_address","iface":"lagg0","addr":{"addr":"10.0.0.4","prefix":24}}"#
        );
        assert_eq!(op.name(), "add_address");
        assert_eq!(op.interface(), Some("lagg0"));
        assert_eq!(op.to_string(), "add 10.0.0.4/24 to lagg0");
    }
}
