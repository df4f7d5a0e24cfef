//! The FreeBSD backend against the simulator's FreeBSD userland, in process: what the backend
//! observes through the simulator's commands (`ifconfig`, `netstat`, `sysctl`, `ps`, ...) is
//! what the simulated kernel holds, and the backend's commands build what it means. (`hvnet
//! simulate --agent freebsd` runs the same commands as processes; hvnet-simlab's
//! freebsd_guest.)

use std::time::Duration;

use hvnet_freebsd::{Command, CommandRunner, FreeBsdBackend, Output, RunError};
use hvnet_sim::{observe_world, VfOffer, World};
use hvnet_vf::{AggregateProto, Backend, Daemon, IpNet, Mac, Op, Route, SystemView};

const T0: Duration = Duration::ZERO;

/// The simulator's userland in-process: what the wrappers would answer, without processes.
struct WorldRunner {
    w: World,
}

impl CommandRunner for WorldRunner {
    fn run(&mut self, c: &Command) -> Result<Output, RunError> {
        let mut argv = vec![c.name().to_string()];
        argv.extend(c.args.iter().cloned());
        let out = hvnet_sim::guestcmd::run(&mut self.w, T0, &argv);
        Ok(Output {
            status: out.status,
            stdout: out.stdout,
            stderr: out.stderr,
        })
    }

    fn exists(&mut self, path: &str) -> bool {
        hvnet_sim::guestcmd::files(&self.w).contains_key(path)
    }

    fn read_file(&mut self, path: &str) -> Result<Option<String>, RunError> {
        Ok(hvnet_sim::guestcmd::files(&self.w).remove(path))
    }
}

fn mac(last: u8) -> Mac {
    Mac([0x00, 0x15, 0x5d, 0, 0, last])
}

/// A non-transparent guest: hn0 with DHCP and a default route, a VF offered, the helper
/// daemons' devices, the KVP daemon running.
fn guest() -> World {
    let mut w = World::new(false);
    w.attach_loopback();
    w.host_add_nic("hn0", mac(1));
    w.attach_hn(T0, "hn0", mac(1)).unwrap();
    w.link_query_done(T0, "hn0");
    w.set_admin(T0, "hn0", true).unwrap();
    w.add_address(T0, "hn0", "10.0.0.4/24".parse().unwrap())
        .unwrap();
    w.add_address(T0, "hn0", "fd00::4/64".parse().unwrap())
        .unwrap();
    w.add_route(&Route {
        dest: IpNet::default_v4(),
        gateway: Some("10.0.0.1".parse().unwrap()),
        iface: None,
    })
    .unwrap();
    w.start_dhclient(T0, "hn0").unwrap();
    w.create_device("hv_kvp_dev");
    w.create_device("hv_fsvss_dev");
    w.host_offer_vf(T0, "hn0", &VfOffer::default()).unwrap();
    w.run_link_tasks(T0);
    w
}

/// The kernel's own routes for an address (`netstat -rn` lists them, the model does not
/// keep them): its prefix on its interface, the address itself through lo0.
fn kernels_own(v: &SystemView, r: &Route) -> bool {
    r.gateway.is_none()
        && v.interfaces.iter().any(|i| {
            i.addresses().any(|a| {
                let on_lo = r.iface.as_deref() == Some("lo0") && r.dest.addr() == a.addr();
                let prefix = r.iface.as_deref() == Some(i.name.as_str())
                    && r.dest.prefix() == a.prefix()
                    && format!("{}/{}", r.dest.addr(), r.dest.prefix())
                        == network_of(&a).to_string();
                on_lo || prefix
            })
        })
}

fn network_of(a: &IpNet) -> IpNet {
    match a {
        IpNet::V4(n) => {
            let m = u32::MAX.checked_shl(32 - u32::from(n.prefix)).unwrap_or(0);
            IpNet::V4(hvnet_vf::Ipv4Net::new(
                (u32::from(n.addr) & m).into(),
                n.prefix,
            ))
        }
        IpNet::V6(n) => {
            let m = u128::MAX
                .checked_shl(128 - u32::from(n.prefix))
                .unwrap_or(0);
            IpNet::V6(hvnet_vf::Ipv6Net::new(
                (u128::from(n.addr) & m).into(),
                n.prefix,
            ))
        }
    }
}

/// Views compared as the manager uses them: interface ranks instead of kernel indexes;
/// lo0 has no `status:` line on FreeBSD, so its link is not compared (unmanaged); the
/// kernel's own address routes are left out.
fn normalized(mut v: SystemView) -> SystemView {
    let own: Vec<Route> = v
        .routes
        .iter()
        .filter(|r| kernels_own(&v, r))
        .cloned()
        .collect();
    v.routes.retain(|r| !own.contains(r));
    for (rank, i) in v.interfaces.iter_mut().enumerate() {
        i.index = rank as u32 + 1;
        if i.kind == hvnet_vf::IfKind::Other {
            i.link_up = false;
        }
    }
    v.dhcp_clients.sort();
    v
}

fn assert_same_view(b: &mut FreeBsdBackend<WorldRunner>) {
    let through_commands = normalized(b.observe().unwrap());
    let kernel = normalized(observe_world(&b.runner.w));
    assert_eq!(through_commands, kernel);
}

#[test]
fn the_backend_observes_through_the_simulators_commands_what_the_simulator_holds() {
    let mut b = FreeBsdBackend::new(WorldRunner { w: guest() });
    b.apply(&Op::StartDaemon {
        daemon: Daemon::Kvp,
    })
    .unwrap();
    assert_same_view(&mut b);
    let v = b.observe().unwrap();
    assert_eq!(
        v.platform.vf_map.get("mce0").map(String::as_str),
        Some("hn0")
    );
    assert_eq!(v.dhcp_clients.len(), 1);
    assert_eq!(v.daemons.len(), 1);
    let static_routes: Vec<&Route> = v.routes.iter().filter(|r| r.gateway.is_some()).collect();
    assert_eq!(static_routes.len(), 1);
    assert_eq!(static_routes[0].iface.as_deref(), Some("hn0"));
    // netstat also lists the kernel's routes for hn0's addresses.
    let own = |d: &str, i: &str| {
        v.routes
            .iter()
            .any(|r| r.dest.to_string() == d && r.iface.as_deref() == Some(i))
    };
    assert!(own("10.0.0.0/24", "hn0") && own("10.0.0.4/32", "lo0"));
    assert!(own("fd00::/64", "hn0") && own("fd00::4/128", "lo0"));
}

#[test]
fn the_backends_commands_build_a_failover_lagg_in_the_simulator() {
    let mut b = FreeBsdBackend::new(WorldRunner { w: guest() });
    let pid = b.observe().unwrap().dhcp_clients[0].pid;
    let addr: IpNet = "10.0.0.4/24".parse().unwrap();
    let v6: IpNet = "fd00::4/64".parse().unwrap();
    let dflt = Route {
        dest: IpNet::default_v4(),
        gateway: Some("10.0.0.1".parse().unwrap()),
        iface: Some("lagg0".into()),
    };
    let ops = [
        Op::CreateAggregate {
            name: "lagg0".into(),
        },
        Op::SetAggregateProto {
            aggregate: "lagg0".into(),
            proto: AggregateProto::Failover,
        },
        Op::StopDhcp {
            iface: "hn0".into(),
            pid,
        },
        Op::RemoveRoute {
            route: Route {
                iface: Some("hn0".into()),
                ..dflt.clone()
            },
        },
        Op::RemoveAddress {
            iface: "hn0".into(),
            addr,
        },
        Op::RemoveAddress {
            iface: "hn0".into(),
            addr: v6,
        },
        Op::AddPort {
            aggregate: "lagg0".into(),
            port: "hn0".into(),
        },
        Op::SetAdmin {
            iface: "lagg0".into(),
            up: true,
        },
        Op::AddAddress {
            iface: "lagg0".into(),
            addr,
        },
        Op::AddAddress {
            iface: "lagg0".into(),
            addr: v6,
        },
        Op::AddRoute {
            route: dflt.clone(),
        },
        Op::AddPort {
            aggregate: "lagg0".into(),
            port: "mce0".into(),
        },
        Op::SetAdmin {
            iface: "mce0".into(),
            up: true,
        },
    ];
    for op in &ops {
        b.apply(op).unwrap_or_else(|e| panic!("{op}: {e}"));
        b.runner.w.run_link_tasks(T0);
        assert_same_view(&mut b);
    }
    // Every op is retry-safe through the commands too.
    for op in ops.iter().filter(|o| !matches!(o, Op::StopDhcp { .. })) {
        b.apply(op).unwrap_or_else(|e| panic!("again: {op}: {e}"));
    }
    let v = b.observe().unwrap();
    let lagg = v.interface("lagg0").unwrap();
    let agg = lagg.aggregate.as_ref().unwrap();
    assert_eq!(agg.ports, ["hn0", "mce0"]);
    assert_eq!(agg.primary.as_deref(), Some("hn0"));
    assert_eq!(agg.active.as_deref(), Some("mce0"));
    assert_eq!(lagg.ipv4.len(), 1);
    assert_eq!(normalized(v.clone()).routes, [dflt]);
    assert!(v.dhcp_clients.is_empty());
    assert_same_view(&mut b);
}
