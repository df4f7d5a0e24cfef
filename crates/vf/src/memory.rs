//! An in-memory [`Backend`] over a [`SystemView`]: ops change the view the
//! way an idealised kernel would (lagg port order and failover election as
//! [`crate::lagg`] has them, port MTU and inet6 purge, DHCP clients by pid). Used by the planner's property tests
//! and handy for other crates' unit tests. It is not the simulator: no
//! time, no packets, no host.

use crate::backend::{Backend, BackendError, Cause};
use crate::model::{
    AggregateState, DaemonProc, DhcpClient, EgressRedirect, IfKind, Interface, Mac, Op, SteerPair,
    SystemView,
};

/// What the idealised kernel refuses, as its errno would say.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("{0}: no such interface")]
    NoSuchInterface(String),
    #[error("{0}: already exists")]
    Exists(String),
    #[error("{0}: not an aggregate")]
    NotAnAggregate(String),
    #[error("{port}: already a port of {aggregate} (EBUSY)")]
    AlreadyAPort { port: String, aggregate: String },
    #[error("{0}: nested aggregate (EINVAL)")]
    NestedAggregate(String),
    #[error("{iface}: invalid MTU {mtu}")]
    InvalidMtu { iface: String, mtu: u32 },
}

impl From<Refusal> for Cause {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::NoSuchInterface(name) => Cause::NoSuchInterface(name),
            other => Cause::platform(other),
        }
    }
}

/// A backend whose whole state is a [`SystemView`].
#[derive(Debug, Clone, Default)]
pub struct MemoryBackend {
    pub view: SystemView,
    pub next_pid: u32,
    /// Hooks that were run, in order.
    pub hooks_run: Vec<(String, Vec<String>)>,
    /// Every op applied successfully, in order.
    pub log: Vec<Op>,
}

impl MemoryBackend {
    pub fn new(view: SystemView) -> Self {
        MemoryBackend {
            view,
            next_pid: 1000,
            ..Default::default()
        }
    }
}

impl Backend for MemoryBackend {
    fn observe(&mut self) -> Result<SystemView, BackendError> {
        Ok(self.view.clone())
    }

    fn apply(&mut self, op: &Op) -> Result<(), BackendError> {
        apply_to_view(&mut self.view, op, &mut self.next_pid)
            .map_err(|m| BackendError::apply(op, m))?;
        if let Op::RunHook { program, args } = op {
            self.hooks_run.push((program.clone(), args.clone()));
        }
        self.log.push(op.clone());
        Ok(())
    }
}

/// Recompute a failover aggregate's active port ([`crate::lagg::failover_active`]): a
/// port is usable when it is up and has link.
pub fn elect_active(view: &mut SystemView, agg: &str) {
    let Some(state) = view.interface(agg).and_then(|i| i.aggregate.clone()) else {
        return;
    };
    let usable = |n: &str| view.interface(n).is_some_and(|i| i.admin_up && i.link_up);
    let active = crate::lagg::failover_active(&state.ports, state.primary.as_deref(), usable)
        .map(str::to_string);
    let any_link = state
        .ports
        .iter()
        .any(|p| view.interface(p).is_some_and(|i| i.link_up));
    if let Some(i) = view.interface_mut(agg) {
        if let Some(a) = i.aggregate.as_mut() {
            a.active = active;
        }
        i.link_up = any_link;
        i.running = i.admin_up;
    }
}

fn need<'a>(view: &'a mut SystemView, name: &str) -> Result<&'a mut Interface, Refusal> {
    view.interface_mut(name)
        .ok_or_else(|| Refusal::NoSuchInterface(name.to_string()))
}

/// Drop the routes through `iface` whose gateway is no longer on-link there
/// (the kernel takes them away with the address).
fn prune_routes(view: &mut SystemView, iface: &str) {
    let Some(i) = view.interface(iface).cloned() else {
        return;
    };
    view.routes.retain(|r| {
        if r.iface.as_deref() != Some(iface) {
            return true;
        }
        match r.gateway {
            None => true,
            Some(std::net::IpAddr::V4(g)) => {
                i.ipv4.iter().any(|n| crate::netconf::v4_contains(n, g))
            }
            Some(std::net::IpAddr::V6(g)) => {
                g.segments()[0] & 0xffc0 == 0xfe80
                    || i.ipv6.iter().any(|n| crate::netconf::v6_contains(n, g))
            }
        }
    });
}

/// Apply `op` to `view`. Errors are what a kernel would refuse.
pub fn apply_to_view(view: &mut SystemView, op: &Op, next_pid: &mut u32) -> Result<(), Refusal> {
    match op {
        Op::CreateAggregate { name } => {
            if view.interface(name).is_some() {
                return Err(Refusal::Exists(name.clone()));
            }
            let index = view.interfaces.iter().map(|i| i.index).max().unwrap_or(0) + 1;
            view.interfaces.push(Interface {
                name: name.clone(),
                index,
                kind: IfKind::Aggregate,
                mac: Mac::ZERO,
                mtu: 1500,
                aggregate: Some(AggregateState::default()),
                ..Default::default()
            });
        }
        Op::DestroyAggregate { name } => {
            if let Some(ports) = view.interface(name).map(|i| {
                i.aggregate
                    .as_ref()
                    .map(|a| a.ports.clone())
                    .unwrap_or_default()
            }) {
                for p in ports {
                    if let Some(pi) = view.interface_mut(&p) {
                        pi.member_of = None;
                    }
                }
                view.interfaces.retain(|i| &i.name != name);
                view.routes.retain(|r| r.iface.as_deref() != Some(name));
            }
        }
        Op::SetAggregateProto { aggregate, proto } => {
            let a = need(view, aggregate)?;
            a.aggregate
                .as_mut()
                .ok_or_else(|| Refusal::NotAnAggregate(aggregate.clone()))?
                .proto = proto.clone();
        }
        Op::AddPort { aggregate, port } => {
            let (mtu, mac, first) = {
                let a = view
                    .interface(aggregate)
                    .ok_or_else(|| Refusal::NoSuchInterface(aggregate.clone()))?;
                let st = a
                    .aggregate
                    .as_ref()
                    .ok_or_else(|| Refusal::NotAnAggregate(aggregate.clone()))?;
                if st.ports.contains(port) {
                    return Ok(());
                }
                (a.mtu, a.mac, st.ports.is_empty())
            };
            let p = need(view, port)?;
            if let Some(m) = &p.member_of {
                return Err(Refusal::AlreadyAPort {
                    port: port.clone(),
                    aggregate: m.clone(),
                });
            }
            if p.is_aggregate() {
                return Err(Refusal::NestedAggregate(port.clone()));
            }
            p.member_of = Some(aggregate.clone());
            // The kernel purges inet6 from a new port.
            p.ipv6.clear();
            if !first {
                p.mtu = mtu;
            }
            let (pmtu, pmac) = (p.mtu, p.mac);
            view.routes.retain(|r| {
                r.iface.as_deref() != Some(port.as_str()) || matches!(r.dest, crate::IpNet::V4(_))
            });
            let indexes: Vec<(String, u32)> = view
                .interfaces
                .iter()
                .map(|i| (i.name.clone(), i.index))
                .collect();
            let index = |n: &str| indexes.iter().find(|(x, _)| x == n).map_or(0, |(_, i)| *i);
            let a = need(view, aggregate)?;
            let st = a.aggregate.as_mut().expect("checked above");
            crate::lagg::insert_port(&mut st.ports, port, index);
            if first {
                st.primary = Some(port.clone());
                a.mtu = pmtu;
                a.mac = pmac;
            } else if mac.is_zero() {
                a.mac = pmac;
            }
            elect_active(view, aggregate);
        }
        Op::RemovePort { aggregate, port } => {
            let a = need(view, aggregate)?;
            if let Some(st) = a.aggregate.as_mut() {
                st.ports.retain(|p| p != port);
                if st.primary.as_deref() == Some(port.as_str()) {
                    st.primary = st.ports.first().cloned();
                }
            }
            if let Some(p) = view.interface_mut(port) {
                if p.member_of.as_deref() == Some(aggregate.as_str()) {
                    p.member_of = None;
                }
            }
            elect_active(view, aggregate);
        }
        Op::SetAdmin { iface, up } => {
            let i = need(view, iface)?;
            i.admin_up = *up;
            i.running = *up;
            if i.kind == IfKind::Aggregate {
                i.link_up = i.link_up && *up;
            }
            let member = i.member_of.clone();
            if let Some(m) = member {
                elect_active(view, &m);
            }
            if view.interface(iface).is_some_and(Interface::is_aggregate) {
                elect_active(view, iface);
            }
        }
        Op::SetMtu { iface, mtu } => {
            let i = need(view, iface)?;
            if *mtu < 68 {
                return Err(Refusal::InvalidMtu {
                    iface: iface.clone(),
                    mtu: *mtu,
                });
            }
            i.mtu = *mtu;
            let ports = i.aggregate.as_ref().map(|a| a.ports.clone());
            for p in ports.unwrap_or_default() {
                if let Some(pi) = view.interface_mut(&p) {
                    pi.mtu = *mtu;
                }
            }
        }
        Op::AddAddress { iface, addr } => {
            let i = need(view, iface)?;
            match addr {
                crate::IpNet::V4(n) if !i.ipv4.contains(n) => i.ipv4.push(*n),
                crate::IpNet::V6(n) if !i.ipv6.contains(n) => i.ipv6.push(*n),
                _ => {}
            }
        }
        Op::RemoveAddress { iface, addr } => {
            let i = need(view, iface)?;
            match addr {
                crate::IpNet::V4(n) => i.ipv4.retain(|x| x != n),
                crate::IpNet::V6(n) => i.ipv6.retain(|x| x != n),
            }
            prune_routes(view, iface);
        }
        Op::AddRoute { route } => {
            let exists = view.routes.iter().any(|r| {
                r.dest == route.dest
                    && r.gateway == route.gateway
                    && (route.iface.is_none() || r.iface == route.iface)
            });
            if !exists {
                view.routes.push(route.clone());
            }
        }
        Op::RemoveRoute { route } => view.routes.retain(|r| r != route),
        Op::MoveRoute { route, to } => {
            need(view, to)?;
            let same = |r: &crate::Route| r.dest == route.dest && r.gateway == route.gateway;
            match view.routes.iter_mut().find(|r| same(r)) {
                Some(r) => r.iface = Some(to.clone()),
                None => view.routes.push(crate::Route {
                    iface: Some(to.clone()),
                    ..route.clone()
                }),
            }
        }
        Op::StartDhcp { iface, .. } => {
            need(view, iface)?;
            *next_pid += 1;
            view.dhcp_clients.push(DhcpClient {
                iface: iface.clone(),
                pid: *next_pid,
            });
        }
        Op::StopDhcp { pid, .. } => view.dhcp_clients.retain(|c| c.pid != *pid),
        Op::StartDaemon { daemon } => {
            *next_pid += 1;
            view.daemons.push(DaemonProc {
                daemon: *daemon,
                pid: *next_pid,
            });
        }
        Op::StopDaemon { pid, .. } => view.daemons.retain(|d| d.pid != *pid),
        Op::SteerOn { synthetic, vf } => {
            need(view, synthetic)?;
            let to_index = need(view, vf)?.index;
            view.steering.retain(|s| s.synthetic != *synthetic);
            view.steering.insert(SteerPair {
                synthetic: synthetic.clone(),
                vf: vf.clone(),
            });
            view.egress_redirects.retain(|r| r.iface != *synthetic);
            view.egress_redirects.push(EgressRedirect {
                iface: synthetic.clone(),
                to_index,
                to: Some(vf.clone()),
                gate: None,
            });
        }
        Op::SteerOff { synthetic, .. } => {
            // Like the kernel's: every steering filter on the synthetic NIC's egress goes.
            view.steering.retain(|s| s.synthetic != *synthetic);
            view.egress_redirects.retain(|r| r.iface != *synthetic);
        }
        Op::RunHook { .. } => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// hn0 (index 2), mce0 (5), mce1 (3), all up with link.
    fn view() -> SystemView {
        let up = |name: &str, index| Interface {
            name: name.into(),
            index,
            admin_up: true,
            link_up: true,
            mtu: 1500,
            ..Default::default()
        };
        SystemView {
            interfaces: vec![up("hn0", 2), up("mce0", 5), up("mce1", 3)],
            ..Default::default()
        }
    }

    #[test]
    fn three_ports_in_index_order_and_the_port_after_the_primary_takes_over() {
        let mut b = MemoryBackend::new(view());
        b.apply(&Op::CreateAggregate {
            name: "lagg0".into(),
        })
        .unwrap();
        for p in ["mce1", "hn0", "mce0"] {
            b.apply(&Op::AddPort {
                aggregate: "lagg0".into(),
                port: p.into(),
            })
            .unwrap();
        }
        let agg = |b: &MemoryBackend| {
            b.view
                .interface("lagg0")
                .unwrap()
                .aggregate
                .clone()
                .unwrap()
        };
        assert_eq!(agg(&b).ports, ["hn0", "mce1", "mce0"]);
        assert_eq!(agg(&b).primary.as_deref(), Some("mce1"));
        assert_eq!(agg(&b).active.as_deref(), Some("mce1"));
        // The primary loses its link: the port after it, not the list's first.
        b.view.interface_mut("mce1").unwrap().link_up = false;
        elect_active(&mut b.view, "lagg0");
        assert_eq!(agg(&b).active.as_deref(), Some("mce0"));
    }
}
