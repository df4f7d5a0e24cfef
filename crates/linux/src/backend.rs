//! [`hvnet_vf::backend::Backend`] for Linux: observe links, addresses, routes and steering
//! filters over rtnetlink; apply admin state, MTU, addresses, IPv4 routes and steering.
//!
//! Aggregates, DHCP clients, helper daemons and hooks are not this backend's business on
//! Linux (the kernel pairs or hvnet steers; DHCP belongs to the distribution's network
//! manager), so those ops report `unsupported`.

use crate::fastpath::FastPath;
use crate::gate::Gate;
use crate::netlink::{Hook, Link, Netlink, NetlinkError, Route4, STEER_PRIORITY};
use crate::roles::{driver_of, role, Role, RolePatterns};
use hvnet_vf::backend::{Backend, BackendError, Cause};
use hvnet_vf::model::{
    EgressRedirect, GateState, IfKind, Interface, IpNet, Ipv4Net, Ipv6Net, Mac, Op, Route,
    SteerPair, SystemView,
};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

impl From<NetlinkError> for Cause {
    fn from(e: NetlinkError) -> Self {
        match e {
            NetlinkError::NoSuchInterface { iface, .. } => Cause::NoSuchInterface(iface),
            other => Cause::platform(other),
        }
    }
}

/// The Linux backend, bound to the calling thread's network namespace.
pub struct LinuxBackend {
    rt: tokio::runtime::Runtime,
    nl: Netlink,
    patterns: RolePatterns,
    sysfs: PathBuf,
    /// The steering gate of each synthetic NIC (see [`crate::gate`]), made on first use.
    gates: BTreeMap<String, Arc<Gate>>,
    /// The synthetic NICs (by name) whose egress holds this backend's gate, with the
    /// ifindex it was attached to: only those gates can be read back.
    attached: BTreeMap<String, u32>,
    /// Set once BPF turned out to be unavailable: steer with the filters alone.
    no_gates: bool,
    fast: FastPath,
}

impl LinuxBackend {
    /// Connect in the current network namespace. `sysfs` is normally `/sys`.
    pub fn new(patterns: RolePatterns, sysfs: PathBuf) -> Result<Self, NetlinkError> {
        let fast = FastPath::new(patterns.clone(), sysfs.clone());
        Self::with_fast_path(patterns, sysfs, fast)
    }

    /// Like [`LinuxBackend::new`], sharing `fast` with the caller's netlink reader (which
    /// closes a gate as soon as its VF goes; see [`crate::fastpath`]).
    pub fn with_fast_path(
        patterns: RolePatterns,
        sysfs: PathBuf,
        fast: FastPath,
    ) -> Result<Self, NetlinkError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(NetlinkError::Socket)?;
        let nl = rt.block_on(async { Netlink::connect() })?;
        Ok(LinuxBackend {
            rt,
            nl,
            patterns,
            sysfs,
            gates: BTreeMap::new(),
            attached: BTreeMap::new(),
            no_gates: false,
            fast,
        })
    }

    /// The state of the gate on `link`'s egress, as far as this backend can read it.
    fn gate_state(&self, link: &Link) -> GateState {
        let ours = self.attached.get(&link.name) == Some(&link.index);
        match self
            .gates
            .get(&link.name)
            .filter(|_| ours)
            .map(|g| g.is_open())
        {
            Some(Ok(true)) => GateState::Open,
            Some(Ok(false)) => GateState::Closed,
            Some(Err(_)) | None => GateState::Unknown,
        }
    }

    /// A gratuitous ARP from `out` for `hn`'s MAC and first IPv4 address, so that learning
    /// switches move the shared MAC to the port now in use. Best effort.
    fn announce(&self, hn: &Link, out: u32) {
        let ip = self.rt.block_on(self.nl.addresses(hn)).ok().and_then(|a| {
            a.into_iter().find_map(|(ip, _)| match ip {
                IpAddr::V4(v4) => Some(v4),
                IpAddr::V6(_) => None,
            })
        });
        if let Err(e) = crate::steer::announce(out, hn.mac, ip) {
            tracing::warn!(iface = %hn.name, "gratuitous ARP failed: {e}");
        }
    }

    fn link(&self, op: &Op, name: &str) -> Result<Link, BackendError> {
        self.rt
            .block_on(self.nl.link(name))
            .map_err(|e| BackendError::apply(op, e))
    }

    fn observe_inner(&self) -> Result<SystemView, NetlinkError> {
        self.rt.block_on(async {
            let links = self.nl.links().await?;
            let name_of = |i: u32| links.iter().find(|l| l.index == i).map(|l| l.name.clone());
            let mut view = SystemView::default();
            for l in &links {
                let driver = driver_of(&self.sysfs, &l.name);
                let kind = match role(&l.name, driver.as_deref(), &self.patterns) {
                    Role::Synthetic => IfKind::Synthetic,
                    Role::Vf => IfKind::Vf {
                        driver: driver.clone().unwrap_or_default(),
                    },
                    Role::Other => IfKind::Other,
                };
                let mut iface = Interface {
                    name: l.name.clone(),
                    index: l.index,
                    kind,
                    mac: Mac(l.mac),
                    admin_up: l.admin_up,
                    link_up: l.carrier,
                    running: l.admin_up && l.carrier,
                    mtu: l.mtu,
                    member_of: l.master.and_then(name_of),
                    ..Default::default()
                };
                for (ip, p) in self.nl.addresses(l).await? {
                    match ip {
                        IpAddr::V4(a) => iface.ipv4.push(Ipv4Net::new(a, p)),
                        IpAddr::V6(a) => iface.ipv6.push(Ipv6Net { addr: a, prefix: p }),
                    }
                }
                view.interfaces.push(iface);
            }
            // Kernel pairing: a VF enslaved to a synthetic NIC (netvsc) or a failover master.
            for l in &links {
                let (Some(m), true) =
                    (l.master, view.interface(&l.name).is_some_and(|i| i.is_vf()))
                else {
                    continue;
                };
                if let Some(master) = name_of(m) {
                    view.platform.vf_transparent = true;
                    view.platform.vf_map.insert(l.name.clone(), master);
                }
            }
            for r in self.nl.routes4().await? {
                view.routes.push(Route {
                    dest: IpNet::V4(Ipv4Net::new(r.dest, r.prefix)),
                    gateway: r.gateway.map(IpAddr::V4),
                    iface: r.oif.and_then(name_of),
                });
            }
            // Steering as the kernel holds it: on a synthetic NIC any egress redirect, on
            // any other link hvnet's (by priority); targets that are gone included.
            for l in &links {
                let synthetic = view.interface(&l.name).is_some_and(Interface::is_synthetic);
                let f = self.nl.filters(l, Hook::Egress).await?;
                let Some(r) = f
                    .redirects
                    .iter()
                    .find(|r| synthetic || r.priority == STEER_PRIORITY)
                else {
                    continue;
                };
                let to = name_of(r.to);
                if let (true, Some(vf)) = (synthetic, &to) {
                    view.steering.insert(SteerPair {
                        synthetic: l.name.clone(),
                        vf: vf.clone(),
                    });
                }
                view.egress_redirects.push(EgressRedirect {
                    iface: l.name.clone(),
                    to_index: r.to,
                    to,
                    gate: f.gate.then(|| self.gate_state(l)),
                });
            }
            Ok(view)
        })
    }
}

impl Backend for LinuxBackend {
    fn observe(&mut self) -> Result<SystemView, BackendError> {
        self.observe_inner().map_err(BackendError::observe)
    }

    fn apply(&mut self, op: &Op) -> Result<(), BackendError> {
        let started = std::time::Instant::now();
        let r = self.apply_op(op);
        tracing::debug!("{op}: {:.3} ms", started.elapsed().as_secs_f64() * 1e3);
        r
    }
}

impl LinuxBackend {
    fn apply_op(&mut self, op: &Op) -> Result<(), BackendError> {
        let err = |e: NetlinkError| BackendError::apply(op, e);
        match op {
            Op::SetAdmin { iface, up } => {
                let l = self.link(op, iface)?;
                self.rt.block_on(self.nl.set_admin(&l, *up)).map_err(err)
            }
            Op::SetMtu { iface, mtu } => {
                let l = self.link(op, iface)?;
                self.rt.block_on(self.nl.set_mtu(&l, *mtu)).map_err(err)
            }
            Op::AddAddress { iface, addr } | Op::RemoveAddress { iface, addr } => {
                let l = self.link(op, iface)?;
                let (ip, p) = match addr {
                    IpNet::V4(n) => (IpAddr::V4(n.addr), n.prefix),
                    IpNet::V6(n) => (IpAddr::V6(n.addr), n.prefix),
                };
                let f = async {
                    if matches!(op, Op::AddAddress { .. }) {
                        self.nl.add_address(&l, ip, p).await
                    } else {
                        self.nl.del_address(&l, ip, p).await
                    }
                };
                self.rt.block_on(f).map_err(err)
            }
            Op::AddRoute { route } | Op::RemoveRoute { route } => {
                let IpNet::V4(dest) = route.dest else {
                    return Err(BackendError::unsupported(op));
                };
                let gateway = match route.gateway {
                    Some(IpAddr::V4(g)) => Some(g),
                    Some(IpAddr::V6(_)) => return Err(BackendError::unsupported(op)),
                    None => None,
                };
                let name = route.iface.clone().unwrap_or_default();
                let oif = match &route.iface {
                    Some(i) => Some(self.link(op, i)?.index),
                    None => None,
                };
                let r = Route4 {
                    dest: dest.addr,
                    prefix: dest.prefix,
                    gateway,
                    oif,
                };
                let f = async {
                    if matches!(op, Op::AddRoute { .. }) {
                        self.nl.add_route4(&r, &name).await
                    } else {
                        self.nl.del_route4(&r, &name).await
                    }
                };
                self.rt.block_on(f).map_err(err)
            }
            Op::SteerOn { synthetic, vf } => {
                let hn = self.link(op, synthetic)?;
                let v = self.link(op, vf)?;
                if !self.no_gates && !self.gates.contains_key(synthetic) {
                    match Gate::new() {
                        Ok(g) => {
                            self.gates.insert(synthetic.clone(), Arc::new(g));
                        }
                        Err(e) => {
                            tracing::warn!(
                                "no BPF steering gate ({e}): switching by filter changes only, \
                                 which wait for the kernel's RTNL lock"
                            );
                            self.no_gates = true;
                        }
                    }
                }
                let gate = self.gates.get(synthetic).cloned();
                self.rt
                    .block_on(async {
                        crate::steer::guard_vf(&self.nl, &v, &hn).await;
                        crate::steer::steer_on(&self.nl, &hn, &v, gate.as_deref()).await
                    })
                    .map_err(err)?;
                if gate.is_some() {
                    self.attached.insert(synthetic.clone(), hn.index);
                }
                self.fast.steered(synthetic, &v, gate);
                self.announce(&hn, v.index);
                Ok(())
            }
            Op::SteerOff { synthetic, .. } => {
                let hn = self.link(op, synthetic)?;
                // Whatever happens below, the fast path must not act for this pair again.
                self.fast.unsteered(synthetic);
                let gate = self
                    .gates
                    .get(synthetic)
                    .filter(|_| self.attached.get(synthetic) == Some(&hn.index));
                self.rt
                    .block_on(crate::steer::steer_off(&self.nl, &hn, gate.map(|g| &**g)))
                    .map_err(err)?;
                self.attached.remove(synthetic);
                if hn.admin_up {
                    self.announce(&hn, hn.index);
                }
                Ok(())
            }
            _ => Err(BackendError::unsupported(op)),
        }
    }
}
