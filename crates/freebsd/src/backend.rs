//! The FreeBSD [`Backend`]: `observe` composes the parsers, `apply` the
//! command builders, both through a [`CommandRunner`] (the real one on
//! FreeBSD, a scripted one in tests, fake commands on PATH in the
//! simulator).

use std::collections::BTreeSet;
use std::net::IpAddr;

use hvnet_vf::backend::Cause;
use hvnet_vf::model::{
    AggregateState, DaemonProc, DhcpClient, IfKind, Interface, IpNet, Ipv4Net, Ipv6Net, Mac, Op,
    Platform, Route, SystemView,
};
use hvnet_vf::{Backend, BackendError, Daemon};

use crate::cmd::{self, Command};
use crate::parse::{self, RouteRow};
use crate::runner::{CommandRunner, Output, RunError};
use crate::system::{self, SystemError};

/// FreeBSD major version assumed when `kern.osrelease` cannot be read
/// (decides the dhclient pid file location).
pub const DEFAULT_FREEBSD_MAJOR: u32 = 14;

/// The FreeBSD backend over a command runner.
#[derive(Debug, Clone)]
pub struct FreeBsdBackend<R: CommandRunner> {
    pub runner: R,
    /// Extra dhclient flags placed before the interface name, used when
    /// `rc` is not set.
    pub dhclient_flags: Vec<String>,
    /// rc.conf, for per-interface `dhclient_flags_IF` / `dhclient_flags`.
    pub rc: Option<hvnet_rcconf::RcConf>,
    /// Program paths of the helper daemons.
    pub kvp_daemon: String,
    pub vss_daemon: String,
    major: Option<u32>,
    /// `hw.hn.vf_transparent`, read once: a loader tunable, read-only at run time
    /// (`CTLFLAG_RDTUN`, spec hn.md §1.1).
    transparent: Option<bool>,
}

impl<R: CommandRunner> FreeBsdBackend<R> {
    pub fn new(runner: R) -> Self {
        FreeBsdBackend {
            runner,
            dhclient_flags: Vec::new(),
            rc: None,
            kvp_daemon: Daemon::Kvp.default_path().to_string(),
            vss_daemon: Daemon::Vss.default_path().to_string(),
            major: None,
            transparent: None,
        }
    }

    /// The running FreeBSD major version (read once from `kern.osrelease`).
    pub fn freebsd_major(&mut self) -> u32 {
        if let Some(m) = self.major {
            return m;
        }
        let m = match system::sysctl(&mut self.runner, "kern.osrelease") {
            Ok(Some((label, text))) => {
                parse::parse_osrelease_major(&label, &text).unwrap_or(DEFAULT_FREEBSD_MAJOR)
            }
            _ => DEFAULT_FREEBSD_MAJOR,
        };
        self.major = Some(m);
        m
    }

    fn daemon_path(&self, d: Daemon) -> &str {
        match d {
            Daemon::Kvp => &self.kvp_daemon,
            Daemon::Vss => &self.vss_daemon,
        }
    }

    /// The command name of process `pid`, `None` if there is none.
    fn process_name(&mut self, pid: u32) -> Result<Option<String>, SystemError> {
        let out = self.runner.run(&cmd::ps_comm(pid))?;
        if !out.success() {
            return Ok(None);
        }
        let name = out.stdout.trim();
        Ok((!name.is_empty()).then(|| name.rsplit('/').next().unwrap_or(name).to_string()))
    }

    fn observe_inner(&mut self) -> Result<SystemView, SystemError> {
        let raw = system::interfaces(&mut self.runner)?;
        let transparent = match self.transparent {
            Some(t) => t,
            None => {
                // Kernels without the sysctl are non-transparent (as hyperv_vfattach reads it).
                let t = system::vf_transparent(&mut self.runner)?.unwrap_or(false);
                self.transparent = Some(t);
                t
            }
        };
        let mut vf_map = std::collections::BTreeMap::new();
        match system::vfmap(&mut self.runner)? {
            Some(pairs) => vf_map.extend(pairs),
            None => {
                // Kernels without hw.hn.vfmap: ask each hn for its VF.
                for i in &raw {
                    if let Some(unit) = system::hn_unit(&i.name) {
                        if let Some(vf) = system::hn_vf(&mut self.runner, unit)? {
                            vf_map.insert(vf, i.name.clone());
                        }
                    }
                }
            }
        }
        let interfaces = build_interfaces(&raw, &vf_map);
        let rows = {
            let c = cmd::netstat_routes();
            let out = system::run_ok(&mut self.runner, &c)?;
            parse::parse_netstat_routes(&c.label(), &out.stdout)?
        };
        let routes = rows.iter().filter_map(route_from_row).collect();

        let major = self.freebsd_major();
        let mut dhcp_clients = Vec::new();
        for i in &interfaces {
            if i.kind == IfKind::Other {
                continue;
            }
            let mut seen = BTreeSet::new();
            for m in [major, 11] {
                if let Some(pid) = system::dhclient_pid(&mut self.runner, &i.name, m)? {
                    if seen.insert(pid) && self.process_name(pid)?.as_deref() == Some("dhclient") {
                        dhcp_clients.push(DhcpClient {
                            iface: i.name.clone(),
                            pid,
                        });
                    }
                }
            }
        }

        let mut daemons = Vec::new();
        let mut devices = BTreeSet::new();
        for d in Daemon::ALL {
            let c = cmd::pgrep_exact(d.process_name());
            let out = self.runner.run(&c)?;
            // pgrep exits 1 when nothing matches.
            if out.status == 0 {
                for pid in parse::parse_pids(&c.label(), &out.stdout)? {
                    daemons.push(DaemonProc { daemon: d, pid });
                }
            }
            if self.runner.exists(&format!("/dev/{}", d.device())) {
                devices.insert(d.device().to_string());
            }
        }

        Ok(SystemView {
            interfaces,
            platform: Platform {
                vf_transparent: transparent,
                vf_map,
            },
            routes,
            dhcp_clients,
            daemons,
            devices,
            ..Default::default()
        })
    }

    fn run_op(&mut self, op: &Op, c: &Command) -> Result<Output, BackendError> {
        let out = self.runner.run(c).map_err(|e| BackendError::apply(op, e))?;
        if out.success() {
            Ok(out)
        } else {
            Err(BackendError::apply(op, failure(c, &out)))
        }
    }

    fn current(&mut self, op: &Op, ifname: &str) -> Result<Option<parse::Interface>, BackendError> {
        system::interface(&mut self.runner, ifname).map_err(|e| BackendError::apply(op, e))
    }

    fn apply_inner(&mut self, op: &Op) -> Result<(), BackendError> {
        match op {
            Op::CreateAggregate { name } => {
                if self.current(op, name)?.is_none() {
                    self.run_op(op, &cmd::ifconfig_create(name))?;
                    // Addresses move onto the aggregate before it has link: with DAD
                    // they would stay tentative (unusable) until a second after it
                    // comes up. Best effort, as in hyperv_vfup: a kernel without
                    // IPv6 refuses it and has no DAD to skip.
                    let _ = self.runner.run(&cmd::ifconfig_inet6_no_dad(name));
                }
            }
            Op::DestroyAggregate { name } => {
                if self.current(op, name)?.is_some() {
                    self.run_op(op, &cmd::ifconfig_destroy(name))?;
                }
            }
            Op::SetAggregateProto { aggregate, proto } => {
                self.run_op(op, &cmd::lagg_setup(aggregate, proto.name(), &[]))?;
            }
            Op::AddPort { aggregate, port } => {
                let cur = self.require(op, aggregate)?;
                if !has_port(&cur, port) {
                    self.run_op(op, &cmd::lagg_add_port(aggregate, port))?;
                }
            }
            Op::RemovePort { aggregate, port } => {
                if let Some(cur) = self.current(op, aggregate)? {
                    if has_port(&cur, port) {
                        self.run_op(op, &cmd::lagg_remove_port(aggregate, port))?;
                    }
                }
            }
            Op::SetAdmin { iface, up } => {
                let c = if *up {
                    cmd::ifconfig_up(iface)
                } else {
                    cmd::ifconfig_down(iface)
                };
                self.run_op(op, &c)?;
            }
            Op::SetMtu { iface, mtu } => {
                self.run_op(op, &cmd::ifconfig_mtu(iface, *mtu))?;
            }
            Op::AddAddress { iface, addr } => {
                let cur = self.require(op, iface)?;
                if !iface_has(&cur, addr) {
                    self.run_op(op, &address_command(iface, addr, true))?;
                }
            }
            Op::RemoveAddress { iface, addr } => {
                if let Some(cur) = self.current(op, iface)? {
                    if iface_has(&cur, addr) {
                        self.run_op(op, &address_command(iface, addr, false))?;
                    }
                }
            }
            Op::AddRoute { route } => {
                let c = cmd::route(&route_args("add", route));
                let out = self
                    .runner
                    .run(&c)
                    .map_err(|e| BackendError::apply(op, e))?;
                // Already present is success (ops are retry-safe).
                if !out.success() && !out.stderr.contains("File exists") {
                    return Err(BackendError::apply(op, failure(&c, &out)));
                }
            }
            Op::RemoveRoute { route } => {
                let c = cmd::route(&route_args("delete", route));
                let out = self
                    .runner
                    .run(&c)
                    .map_err(|e| BackendError::apply(op, e))?;
                if !out.success() && !out.stderr.contains("not in table") {
                    return Err(BackendError::apply(op, failure(&c, &out)));
                }
            }
            Op::MoveRoute { route, to } => {
                let c = cmd::route(&move_route_args("change", route, to));
                let out = self
                    .runner
                    .run(&c)
                    .map_err(|e| BackendError::apply(op, e))?;
                if !out.success() {
                    if !out.stderr.contains("not in table") {
                        return Err(BackendError::apply(op, failure(&c, &out)));
                    }
                    // Not installed (any more): add it where it belongs.
                    let c = cmd::route(&move_route_args("add", route, to));
                    let out = self
                        .runner
                        .run(&c)
                        .map_err(|e| BackendError::apply(op, e))?;
                    if !out.success() && !out.stderr.contains("File exists") {
                        return Err(BackendError::apply(op, failure(&c, &out)));
                    }
                }
            }
            Op::StartDhcp { iface, .. } => {
                // Never block the caller: dhclient -b either way.
                let major = self.freebsd_major();
                let running = match system::dhclient_pid(&mut self.runner, iface, major) {
                    Ok(Some(pid)) => {
                        self.process_name(pid)
                            .map_err(|e| BackendError::apply(op, e))?
                            .as_deref()
                            == Some("dhclient")
                    }
                    Ok(None) => false,
                    Err(e) => return Err(BackendError::apply(op, e)),
                };
                if !running {
                    let flags = match &self.rc {
                        Some(rc) => rc.dhclient_flags(iface),
                        None => self.dhclient_flags.clone(),
                    };
                    self.run_op(op, &cmd::dhclient(iface, true, &flags))?;
                }
            }
            Op::StopDhcp { pid, .. } => self.stop_pid(op, *pid, "dhclient")?,
            Op::StartDaemon { daemon } => {
                let c = cmd::pgrep_exact(daemon.process_name());
                let out = self
                    .runner
                    .run(&c)
                    .map_err(|e| BackendError::apply(op, e))?;
                if out.status != 0 {
                    let path = self.daemon_path(*daemon).to_string();
                    self.run_op(op, &Command::new(path, Vec::<String>::new()))?;
                }
            }
            Op::StopDaemon { daemon, pid } => self.stop_pid(op, *pid, daemon.process_name())?,
            _ => return Err(BackendError::unsupported(op)),
        }
        Ok(())
    }

    fn require(&mut self, op: &Op, ifname: &str) -> Result<parse::Interface, BackendError> {
        self.current(op, ifname)?
            .ok_or_else(|| BackendError::apply(op, Cause::NoSuchInterface(ifname.to_string())))
    }

    /// Send SIGTERM to `pid` if it is still a process named `name`; a
    /// vanished or reused pid is left alone.
    fn stop_pid(&mut self, op: &Op, pid: u32, name: &str) -> Result<(), BackendError> {
        let current = self
            .process_name(pid)
            .map_err(|e| BackendError::apply(op, e))?;
        if current.as_deref() != Some(name) {
            return Ok(());
        }
        let c = cmd::kill("TERM", pid);
        let out = self
            .runner
            .run(&c)
            .map_err(|e| BackendError::apply(op, e))?;
        if !out.success() && !out.stderr.contains("No such process") {
            return Err(BackendError::apply(op, failure(&c, &out)));
        }
        Ok(())
    }
}

impl<R: CommandRunner> Backend for FreeBsdBackend<R> {
    fn observe(&mut self) -> Result<SystemView, BackendError> {
        self.observe_inner().map_err(BackendError::observe)
    }

    fn apply(&mut self, op: &Op) -> Result<(), BackendError> {
        self.apply_inner(op)
    }
}

/// `c` ran and failed with `out`.
fn failure(c: &Command, out: &Output) -> Cause {
    Cause::Command {
        command: c.label(),
        status: out.status,
        stderr: out.stderr.trim().to_string(),
    }
}

impl From<SystemError> for Cause {
    fn from(e: SystemError) -> Self {
        match e {
            SystemError::Failed {
                command,
                status,
                stderr,
            } => Cause::Command {
                command,
                status,
                stderr,
            },
            SystemError::Run(e) => e.into(),
            SystemError::Parse(e) => Cause::platform(e),
        }
    }
}

impl From<RunError> for Cause {
    fn from(e: RunError) -> Self {
        Cause::platform(e)
    }
}

fn has_port(i: &parse::Interface, port: &str) -> bool {
    i.lagg
        .as_ref()
        .is_some_and(|l| l.ports.iter().any(|p| p.name == port))
}

fn iface_has(i: &parse::Interface, addr: &IpNet) -> bool {
    match addr {
        IpNet::V4(n) => i.inet.iter().any(|a| a.addr == n.addr),
        IpNet::V6(n) => i.inet6.iter().any(|a| a.addr == n.addr),
    }
}

/// `ifconfig IF inet A/P alias` / `ifconfig IF inet6 A prefixlen P alias`,
/// or `-alias` to remove.
pub fn address_command(ifname: &str, addr: &IpNet, add: bool) -> Command {
    let action = if add { "alias" } else { "-alias" };
    let args: Vec<String> = match addr {
        IpNet::V4(n) if add => vec!["inet".into(), n.to_string(), action.into()],
        IpNet::V4(n) => vec!["inet".into(), n.addr.to_string(), action.into()],
        IpNet::V6(n) if add => vec![
            "inet6".into(),
            n.addr.to_string(),
            "prefixlen".into(),
            n.prefix.to_string(),
            action.into(),
        ],
        IpNet::V6(n) => vec!["inet6".into(), n.addr.to_string(), action.into()],
    };
    cmd::ifconfig_args(ifname, &args)
}

/// route(8) arguments: `-n ACTION [-inet6] DEST [GATEWAY | -interface IF]`.
pub fn route_args(action: &str, r: &Route) -> Vec<String> {
    let mut v = vec!["-n".to_string(), action.to_string()];
    let v6 = matches!(r.dest, IpNet::V6(_));
    if v6 {
        v.push("-inet6".into());
    }
    let host = r.dest.prefix() == if v6 { 128 } else { 32 };
    if r.dest.prefix() == 0 {
        v.push("default".into());
    } else if host {
        v.push("-host".into());
        v.push(r.dest.addr().to_string());
    } else {
        v.push("-net".into());
        v.push(r.dest.to_string());
    }
    match (&r.gateway, &r.iface) {
        (Some(IpAddr::V6(g)), Some(i)) if (g.segments()[0] & 0xffc0) == 0xfe80 => {
            v.push(format!("{g}%{i}"));
        }
        (Some(g), _) => v.push(g.to_string()),
        (None, Some(i)) => {
            v.push("-interface".into());
            v.push(i.clone());
        }
        (None, None) => {}
    }
    v
}

/// route(8) arguments putting `r` on interface `to`: `-n ACTION [-inet6] DEST GATEWAY -ifp
/// TO`, or `... DEST -interface TO` for a route without a gateway.
pub fn move_route_args(action: &str, r: &Route, to: &str) -> Vec<String> {
    let on_to = Route {
        iface: Some(to.to_string()),
        ..r.clone()
    };
    let mut v = route_args(action, &on_to);
    if r.gateway.is_some() {
        v.push("-ifp".into());
        v.push(to.to_string());
    }
    v
}

/// A `netstat -rn` row as a model route; `None` for rows that are not
/// plain unicast routes (unparseable destinations are skipped).
fn route_from_row(row: &RouteRow) -> Option<Route> {
    let strip_zone = |s: &str| -> String {
        match s.split_once('%') {
            Some((a, rest)) => match rest.split_once('/') {
                Some((_, p)) => format!("{a}/{p}"),
                None => a.to_string(),
            },
            None => s.to_string(),
        }
    };
    let dest = if row.destination == "default" {
        if row.inet6 {
            IpNet::default_v6()
        } else {
            IpNet::default_v4()
        }
    } else {
        strip_zone(&row.destination).parse::<IpNet>().ok()?
    };
    let gateway = strip_zone(&row.gateway).parse::<IpAddr>().ok();
    Some(Route {
        dest,
        gateway,
        iface: Some(row.netif.clone()),
    })
}

/// The alphabetic driver prefix of an interface name (`mce0` → `mce`).
fn driver_of(name: &str) -> String {
    name.trim_end_matches(|c: char| c.is_ascii_digit())
        .to_string()
}

fn is_lagg(i: &parse::Interface) -> bool {
    i.lagg.is_some() || i.groups.iter().any(|g| g == "lagg") || driver_of(&i.name) == "lagg"
}

/// Cloned interfaces that may carry an hn's MAC but are never its VF
/// (`hn_ismyvf` rejects lagg and vlan; bridges and tunnels are not
/// Ethernet devices of their own).
fn is_clone(i: &parse::Interface) -> bool {
    const CLONES: &[&str] = &["vlan", "lagg", "bridge", "tap", "tun", "epair", "carp"];
    i.name.contains('.')
        || CLONES.contains(&driver_of(&i.name).as_str())
        || i.groups.iter().any(|g| CLONES.contains(&g.as_str()))
}

/// Classify and convert parsed interfaces. A VF is any interface the
/// kernel pairs with an hn (`vf_map`), or, like `hn_ismyvf`, any other
/// Ethernet interface (not hn, lagg or vlan) with an hn's MAC.
fn build_interfaces(
    raw: &[parse::Interface],
    vf_map: &std::collections::BTreeMap<String, String>,
) -> Vec<Interface> {
    let hn_macs: Vec<Mac> = raw
        .iter()
        .filter(|i| system::hn_unit(&i.name).is_some())
        .filter_map(|i| i.ether.as_deref().and_then(|m| m.parse().ok()))
        .filter(|m: &Mac| !m.is_zero())
        .collect();
    let mut member_of = std::collections::BTreeMap::new();
    for i in raw {
        if let Some(l) = &i.lagg {
            for p in &l.ports {
                member_of.insert(p.name.clone(), i.name.clone());
            }
        }
    }
    raw.iter()
        .enumerate()
        .map(|(pos, i)| {
            let mac: Mac = i
                .ether
                .as_deref()
                .and_then(|m| m.parse().ok())
                .unwrap_or(Mac::ZERO);
            let drv = driver_of(&i.name);
            let kind = if system::hn_unit(&i.name).is_some() {
                IfKind::Synthetic
            } else if is_lagg(i) {
                IfKind::Aggregate
            } else if vf_map.contains_key(&i.name)
                || (!is_clone(i) && !mac.is_zero() && hn_macs.contains(&mac))
            {
                IfKind::Vf { driver: drv }
            } else {
                IfKind::Other
            };
            let aggregate = i.lagg.as_ref().map(|l| AggregateState {
                proto: l.proto.clone(),
                ports: l.ports.iter().map(|p| p.name.clone()).collect(),
                active: l
                    .ports
                    .iter()
                    .find(|p| p.is_active())
                    .map(|p| p.name.clone()),
                primary: l
                    .ports
                    .iter()
                    .find(|p| p.is_primary())
                    .map(|p| p.name.clone()),
            });
            Interface {
                name: i.name.clone(),
                // ifconfig lists interfaces in if_index order; the rank
                // keeps that order (lagg sorts ports by it).
                index: pos as u32 + 1,
                kind,
                mac,
                admin_up: i.is_up(),
                link_up: i.link_up(),
                running: i.is_running(),
                mtu: i.mtu.unwrap_or(0),
                ipv4: i
                    .inet
                    .iter()
                    .map(|a| Ipv4Net::new(a.addr, a.prefix_len))
                    .collect(),
                ipv6: i
                    .inet6
                    .iter()
                    .map(|a| Ipv6Net::new(a.addr, a.prefix_len))
                    .collect(),
                aggregate,
                member_of: member_of.get(&i.name).cloned(),
            }
        })
        .collect()
}
