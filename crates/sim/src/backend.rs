//! [`hvnet_vf::Backend`] over the simulated kernel: `observe` is the
//! kernel's view (what ifconfig/sysctl/ps would show), `apply` does what
//! ifconfig, route, dhclient, kill and daemon would do to it. Ops are
//! retry-safe as the trait requires. Injected failures come from
//! [`crate::faults::Faults`].

use std::time::Duration;

use hvnet_vf::{
    AggregateState, Backend, BackendError, DaemonProc, DhcpClient, IfKind, Interface, Op, Platform,
    SystemView,
};

use hvnet_freebsd::{Output, RunError};
use hvnet_vf::backend::Cause;

use crate::faults::Faults;
use crate::world::{IfClass, KernelError, ProcKind, World};

impl From<KernelError> for Cause {
    fn from(e: KernelError) -> Self {
        match e {
            KernelError::NoSuchInterface(name) => Cause::NoSuchInterface(name),
            other => Cause::platform(other),
        }
    }
}

/// The backend an agent gets for one callback.
pub struct SimBackend<'a> {
    pub world: &'a mut World,
    pub now: Duration,
    pub faults: &'a mut Faults,
    /// Ops applied (or failed) during this callback, for the timeline.
    pub journal: Vec<String>,
    /// Hooks the agent asked to run (`Op::RunHook`), program and args.
    pub hooks: Vec<(String, Vec<String>)>,
    /// The connection's address: when set, `changes` records, for every op
    /// that changed the guest, the state it found (see [`crate::Timing::command`]).
    pub probe: Option<std::net::IpAddr>,
    pub changes: Vec<crate::traffic::PathState>,
}

impl<'a> SimBackend<'a> {
    pub fn new(world: &'a mut World, now: Duration, faults: &'a mut Faults) -> Self {
        SimBackend {
            world,
            now,
            faults,
            journal: Vec::new(),
            hooks: Vec::new(),
            probe: None,
            changes: Vec::new(),
        }
    }
}

/// The kernel's view as a [`SystemView`].
pub fn observe_world(w: &World) -> SystemView {
    let interfaces = w
        .by_index()
        .into_iter()
        .map(|i| Interface {
            name: i.name.clone(),
            index: i.index,
            kind: match i.class {
                IfClass::Hn => IfKind::Synthetic,
                IfClass::Vf => IfKind::Vf {
                    driver: i.dname.clone(),
                },
                IfClass::Lagg => IfKind::Aggregate,
                IfClass::Loopback => IfKind::Other,
            },
            mac: i.mac,
            admin_up: i.up,
            link_up: i.link,
            running: i.running,
            mtu: i.mtu,
            ipv4: i.ipv4.clone(),
            ipv6: i.ipv6.clone(),
            aggregate: i.lagg.as_ref().map(|l| AggregateState {
                proto: l.proto.clone(),
                ports: l.ports.clone(),
                active: w.lagg_active_port(&i.name),
                primary: l.primary.clone(),
            }),
            member_of: i.member_of.clone(),
        })
        .collect();
    let vf_map = w
        .vfmap
        .iter()
        .filter_map(|(idx, hn)| {
            let vf = w.ifnets.values().find(|i| i.index == *idx)?;
            Some((vf.name.clone(), hn.clone()))
        })
        .collect();
    SystemView {
        interfaces,
        platform: Platform {
            vf_transparent: w.vf_transparent,
            vf_map,
        },
        routes: w.routes.clone(),
        dhcp_clients: w
            .dhclients
            .iter()
            .map(|(pid, c)| DhcpClient {
                iface: c.iface.clone(),
                pid: *pid,
            })
            .collect(),
        daemons: w
            .procs
            .values()
            .filter_map(|p| match &p.kind {
                ProcKind::Daemon(d) => Some(DaemonProc {
                    daemon: *d,
                    pid: p.pid,
                }),
                ProcKind::Dhclient { .. } => None,
            })
            .collect(),
        devices: w.devices.clone(),
        steering: Default::default(),
        egress_redirects: Vec::new(),
    }
}

/// Apply one op to the kernel (no fault injection).
pub fn apply_op(w: &mut World, now: Duration, op: &Op) -> Result<(), BackendError> {
    let err = |e: KernelError| BackendError::apply(op, e);
    match op {
        Op::CreateAggregate { name } => {
            if w.ifnet(name).is_some_and(|i| i.lagg.is_some()) {
                return Ok(());
            }
            w.create_lagg(now, name).map_err(err)
        }
        Op::DestroyAggregate { name } => {
            if w.ifnet(name).is_none() {
                return Ok(());
            }
            w.destroy_lagg(now, name).map_err(err)
        }
        Op::SetAggregateProto { aggregate, proto } => {
            w.set_laggproto(aggregate, proto).map_err(err)
        }
        Op::AddPort { aggregate, port } => {
            if w.ifnet(port).and_then(|p| p.member_of.as_deref()) == Some(aggregate.as_str()) {
                return Ok(());
            }
            w.add_port(now, aggregate, port).map_err(err)
        }
        Op::RemovePort { aggregate, port } => {
            if w.ifnet(port).and_then(|p| p.member_of.as_deref()) != Some(aggregate.as_str()) {
                return Ok(());
            }
            w.remove_port(now, aggregate, port).map_err(err)
        }
        Op::SetAdmin { iface, up } => w.set_admin(now, iface, *up).map_err(err),
        Op::SetMtu { iface, mtu } => {
            if w.ifnet(iface).is_some_and(|i| i.mtu == *mtu) {
                return Ok(());
            }
            w.set_mtu(now, iface, *mtu).map_err(err)
        }
        Op::AddAddress { iface, addr } => w.add_address(now, iface, *addr).map_err(err),
        Op::RemoveAddress { iface, addr } => {
            let present = w
                .ifnet(iface)
                .map(|i| {
                    i.ipv4
                        .iter()
                        .any(|n| n.addr.to_string() == addr.addr().to_string())
                        || i.ipv6
                            .iter()
                            .any(|n| n.addr.to_string() == addr.addr().to_string())
                })
                .unwrap_or(false);
            if !present {
                return Ok(());
            }
            w.remove_address(now, iface, addr.addr()).map_err(err)
        }
        Op::AddRoute { route } => w.add_route(route).map_err(err),
        Op::RemoveRoute { route } => {
            w.remove_route(route);
            Ok(())
        }
        Op::MoveRoute { route, to } => {
            let moved = hvnet_vf::Route {
                iface: Some(to.clone()),
                ..route.clone()
            };
            match w.change_route(&moved) {
                Err(KernelError::NoRoute(_)) => w.add_route(&moved).map_err(err),
                r => r.map_err(err),
            }
        }
        Op::StartDhcp { iface, .. } => w.start_dhclient(now, iface).map(|_| ()).map_err(err),
        Op::StopDhcp { pid, .. } => {
            let _ = w.kill(*pid);
            Ok(())
        }
        Op::StartDaemon { daemon } => {
            if !w.devices.contains(daemon.device()) {
                return Err(BackendError::apply(
                    op,
                    Cause::NoDevice(format!("/dev/{}", daemon.device())),
                ));
            }
            w.spawn(ProcKind::Daemon(*daemon));
            Ok(())
        }
        Op::StopDaemon { pid, .. } => {
            let _ = w.kill(*pid);
            Ok(())
        }
        _ => Err(BackendError::unsupported(op)),
    }
}

impl SimBackend<'_> {
    /// Run a guest command ([`crate::guestcmd`]) at the callback's time; one that changes the
    /// guest records the state it found in `changes` (it takes [`crate::Timing::command`], as
    /// an op does).
    pub fn command(&mut self, argv: &[String]) -> crate::guestcmd::CmdOutput {
        let before = self
            .probe
            .map(|a| (self.world.path_state(a), observe_world(self.world)));
        let out = crate::guestcmd::run(self.world, self.now, argv);
        if let Some((state, view)) = before {
            if observe_world(self.world) != view {
                self.changes.push(state);
            }
        }
        out
    }
}

/// The guest's commands for a program in the guest ([`SimBackend::command`]). The program
/// keeps its own transcript (commands are not journaled here); injected faults are the
/// backend's (ops and observes), not the commands'.
impl hvnet_freebsd::CommandRunner for SimBackend<'_> {
    fn run(&mut self, c: &hvnet_freebsd::Command) -> Result<Output, RunError> {
        let argv: Vec<String> = c.argv().into_iter().map(String::from).collect();
        let out = self.command(&argv);
        Ok(Output {
            status: out.status,
            stdout: out.stdout,
            stderr: out.stderr,
        })
    }

    fn exists(&mut self, path: &str) -> bool {
        crate::guestcmd::files(self.world).contains_key(path)
    }

    fn read_file(&mut self, path: &str) -> Result<Option<String>, RunError> {
        Ok(crate::guestcmd::files(self.world).remove(path))
    }
}

impl Backend for SimBackend<'_> {
    fn observe(&mut self) -> Result<SystemView, BackendError> {
        if self.faults.fail_observe() {
            return Err(BackendError::observe(Cause::Injected));
        }
        Ok(observe_world(self.world))
    }

    fn apply(&mut self, op: &Op) -> Result<(), BackendError> {
        if self.faults.fail_op() {
            self.journal.push(format!("{op} FAILED (injected)"));
            return Err(BackendError::apply(op, Cause::Injected));
        }
        if let Op::RunHook { program, args } = op {
            self.hooks.push((program.clone(), args.clone()));
            self.journal.push(op.to_string());
            return Ok(());
        }
        let before = self
            .probe
            .map(|a| (self.world.path_state(a), observe_world(self.world)));
        let res = apply_op(self.world, self.now, op);
        // The kernel's link tasks run before the caller's next syscall.
        self.world.run_link_tasks(self.now);
        if let Some((state, view)) = before {
            if observe_world(self.world) != view {
                self.changes.push(state);
            }
        }
        match res {
            Ok(()) => {
                self.journal.push(op.to_string());
                Ok(())
            }
            Err(e) => {
                self.journal.push(format!("{op} FAILED: {}", e.detail()));
                Err(e)
            }
        }
    }
}
