//! Non-transparent mode moves hn's configuration to the failover aggregate without a gap:
//! applied op by op, a plan never leaves one of the VM's addresses off every interface that
//! receives its frames, nor an IPv4 route without an interface that carries traffic.

use std::collections::BTreeSet;

use hvnet_rcconf::RcConf;
use hvnet_vf::model::{AggregateProto, AggregateState, Mac};
use hvnet_vf::{
    plan, Backend, DhcpClient, IfKind, Interface, IpNet, Ipv4Net, Ipv6Net, ManagerConfig,
    MemoryBackend, ModeSetting, Op, PlanInput, Route, SystemView,
};
use proptest::prelude::*;

const MAC: &str = "00:15:5d:00:00:01";

fn mac() -> Mac {
    MAC.parse().unwrap()
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn route(dest: &str, gw: Option<&str>, iface: &str) -> Route {
    Route {
        dest: net(dest),
        gateway: gw.map(|g| g.parse().unwrap()),
        iface: Some(iface.into()),
    }
}

/// Interfaces whose received frames reach the stack with `addr`: up, carrying hn's MAC,
/// holding the address, and not a lagg port (lagg takes a port's frames).
fn receivers(v: &SystemView, addr: &IpNet) -> Vec<String> {
    v.interfaces
        .iter()
        .filter(|i| i.admin_up && i.mac == mac() && i.member_of.is_none() && i.has_address(addr))
        .map(|i| i.name.clone())
        .collect()
}

/// The VM's addresses as the network reaches them.
fn reachable(v: &SystemView) -> BTreeSet<IpNet> {
    v.interfaces
        .iter()
        .flat_map(|i| i.addresses())
        .filter(|a| !matches!(a, IpNet::V6(n) if n.is_link_local()))
        .filter(|a| !receivers(v, a).is_empty())
        .collect()
}

/// Gateway routes (dest, gateway) installed through an interface that sends: up, and an
/// aggregate only once it has a port.
fn usable_routes(v: &SystemView, v6: bool) -> BTreeSet<String> {
    v.routes
        .iter()
        .filter(|r| r.gateway.is_some() && matches!(r.dest, IpNet::V6(_)) == v6)
        .filter(|r| {
            r.iface
                .as_deref()
                .and_then(|i| v.interface(i))
                .is_some_and(|i| {
                    i.admin_up && i.aggregate.as_ref().is_none_or(|a| !a.ports.is_empty())
                })
        })
        .map(|r| format!("{} via {}", r.dest, r.gateway.unwrap()))
        .collect()
}

fn installed_routes(v: &SystemView, v6: bool) -> BTreeSet<String> {
    v.routes
        .iter()
        .filter(|r| r.gateway.is_some() && matches!(r.dest, IpNet::V6(_)) == v6)
        .map(|r| format!("{} via {}", r.dest, r.gateway.unwrap()))
        .collect()
}

#[derive(Debug, Clone)]
struct Case {
    view: SystemView,
    rc: String,
    eligible: bool,
}

/// A non-transparent guest at some point of its life: hn0 configured by rc or DHCP, with
/// aliases, IPv6 and routes; maybe already a port of lagg0 (holding some of it), maybe
/// with a VF (up or not, eligible or not).
fn arb_case() -> impl Strategy<Value = Case> {
    (
        prop::collection::btree_set(4u8..8, 0..3), // hn0 IPv4 hosts in 10.0.0.0/24
        any::<bool>(),                             // alias in another subnet
        prop::collection::btree_set(4u8..8, 0..3), // hn0 IPv6 hosts in 2001:db8::/64
        any::<bool>(),                             // DHCP client on hn0
        (any::<bool>(), any::<bool>(), any::<bool>()), // v4 default, v4 net route, v6 default
        0u8..3,                                    // lagg0: none, hn0 a port, hn0+VF ports
        (any::<bool>(), any::<bool>(), any::<bool>()), // VF present, up, eligible
        0u8..4,                                    // rc.conf
        any::<bool>(),                             // hn0 admin up
    )
        .prop_map(
            |(v4, alias, v6, dhcp, (dflt4, net4, dflt6), lagg, (vfp, vfup, elig), rc, hn_up)| {
                let mut h = Interface {
                    name: "hn0".into(),
                    index: 2,
                    kind: IfKind::Synthetic,
                    mac: mac(),
                    admin_up: hn_up,
                    link_up: true,
                    running: hn_up,
                    mtu: 1500,
                    ..Default::default()
                };
                for a in &v4 {
                    h.ipv4.push(Ipv4Net::new([10, 0, 0, *a].into(), 24));
                }
                if alias {
                    h.ipv4.push(Ipv4Net::new([10, 1, 0, 5].into(), 24));
                }
                if !v6.is_empty() {
                    h.ipv6
                        .push(Ipv6Net::new("fe80::215:5dff:fe00:1".parse().unwrap(), 64));
                }
                for a in &v6 {
                    h.ipv6
                        .push(Ipv6Net::new(format!("2001:db8::{a}").parse().unwrap(), 64));
                }
                let mut view = SystemView::default();
                let mut routes = Vec::new();
                if !v4.is_empty() {
                    routes.push(route("10.0.0.0/24", None, "hn0"));
                    if dflt4 {
                        routes.push(route("0.0.0.0/0", Some("10.0.0.1"), "hn0"));
                    }
                    if net4 {
                        routes.push(route("192.168.0.0/16", Some("10.0.0.1"), "hn0"));
                    }
                }
                if !v6.is_empty() {
                    routes.push(route("fe80::/64", None, "hn0"));
                    if dflt6 {
                        routes.push(route("::/0", Some("2001:db8::1"), "hn0"));
                    }
                }
                if dhcp {
                    view.dhcp_clients.push(DhcpClient {
                        iface: "hn0".into(),
                        pid: 11,
                    });
                }
                let mut vf = Interface {
                    name: "mce0".into(),
                    index: 3,
                    kind: IfKind::Vf {
                        driver: "mce".into(),
                    },
                    mac: mac(),
                    admin_up: vfup,
                    link_up: vfup,
                    running: vfup,
                    mtu: 1500,
                    ..Default::default()
                };
                if lagg > 0 {
                    // A lagg built earlier: it holds the first IPv4 address and the
                    // routes; hn0 keeps the rest (as if a DHCP client or an admin had
                    // put them back).
                    let mut ports = vec!["hn0".to_string()];
                    if lagg == 2 && vfp {
                        ports.push("mce0".into());
                        vf.member_of = Some("lagg0".into());
                    }
                    h.member_of = Some("lagg0".into());
                    let mut l = Interface {
                        name: "lagg0".into(),
                        index: 4,
                        kind: IfKind::Aggregate,
                        mac: mac(),
                        admin_up: true,
                        link_up: true,
                        running: true,
                        mtu: 1500,
                        aggregate: Some(AggregateState {
                            proto: AggregateProto::Failover,
                            ports,
                            active: Some("hn0".into()),
                            primary: Some("hn0".into()),
                        }),
                        ..Default::default()
                    };
                    if !h.ipv4.is_empty() {
                        l.ipv4.push(h.ipv4.remove(0));
                    }
                    // A port has no inet6 (the kernel purged it).
                    l.ipv6.append(&mut h.ipv6);
                    for r in &mut routes {
                        r.iface = Some("lagg0".into());
                    }
                    view.interfaces.push(l);
                }
                view.routes = routes;
                view.interfaces.insert(0, h);
                if vfp {
                    view.interfaces.insert(1, vf);
                    view.platform.vf_map.insert("mce0".into(), "hn0".into());
                }
                let rc = match rc {
                    0 => "ifconfig_hn0=\"DHCP\"\n",
                    1 => "ifconfig_hn0=\"inet 10.0.0.4/24\"\ndefaultrouter=\"10.0.0.1\"\n",
                    2 => concat!(
                        "ifconfig_hn0=\"inet 10.0.0.4/24\"\n",
                        "ifconfig_hn0_alias0=\"inet 10.1.0.5/24\"\n",
                        "ifconfig_hn0_ipv6=\"inet6 2001:db8::4 prefixlen 64\"\n",
                        "defaultrouter=\"10.0.0.1\"\n",
                        "ipv6_defaultrouter=\"2001:db8::1\"\n",
                    ),
                    _ => "",
                };
                Case {
                    view,
                    rc: rc.into(),
                    eligible: vfp && elig,
                }
            },
        )
}

/// Apply the plan op by op; after each op, every address reachable before and after the
/// plan is reachable, and every IPv4 gateway route is usable (IPv6 ones installed: the
/// kernel flushes a new port's IPv6 routes, so they move onto the aggregate one op before
/// it has its first port).
fn check_no_gap(case: &Case) -> Result<Vec<Op>, TestCaseError> {
    let rc = RcConf::from_text("/etc/rc.conf", &case.rc);
    let cfg = ManagerConfig {
        mode: ModeSetting::NonTransparent,
        ..ManagerConfig::default()
    };
    let mut input = PlanInput::default();
    if case.eligible {
        input.eligible.insert("mce0".into());
    }
    let p = plan(&case.view, &cfg, &rc, &input);
    let ops: Vec<Op> = p.ops().cloned().collect();
    let mut end = MemoryBackend::new(case.view.clone());
    for op in &ops {
        end.apply(op).unwrap();
    }
    let keep: BTreeSet<IpNet> = reachable(&case.view)
        .intersection(&reachable(&end.view))
        .copied()
        .collect();
    let keep4 = &usable_routes(&case.view, false) & &usable_routes(&end.view, false);
    let keep6 = &installed_routes(&case.view, true) & &installed_routes(&end.view, true);
    let mut b = MemoryBackend::new(case.view.clone());
    for (n, op) in ops.iter().enumerate() {
        b.apply(op).unwrap();
        let now = reachable(&b.view);
        for a in &keep {
            prop_assert!(
                now.contains(a),
                "{a} unreachable after op {n} ({op}) of {:?}",
                ops.iter().map(ToString::to_string).collect::<Vec<_>>()
            );
        }
        let r4 = usable_routes(&b.view, false);
        let r6 = installed_routes(&b.view, true);
        for r in keep4.iter().filter(|r| !r4.contains(*r)) {
            prop_assert!(
                false,
                "route {r} unusable after op {n} ({op}): {:?}",
                b.view.routes
            );
        }
        for r in keep6.iter().filter(|r| !r6.contains(*r)) {
            prop_assert!(
                false,
                "route {r} missing after op {n} ({op}): {:?}",
                b.view.routes
            );
        }
    }
    Ok(ops)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn the_move_to_the_aggregate_never_leaves_an_address_or_route_absent(case in arb_case()) {
        check_no_gap(&case)?;
    }
}

/// The static case of issue 15 item 5, spelled out: what the old order did (the address
/// left hn0 two ops before lagg0 had it) no longer happens.
#[test]
fn static_address_and_default_route_move_without_a_gap() {
    let h = Interface {
        name: "hn0".into(),
        index: 2,
        kind: IfKind::Synthetic,
        mac: mac(),
        admin_up: true,
        link_up: true,
        running: true,
        mtu: 1500,
        ipv4: vec![Ipv4Net::new([10, 0, 0, 4].into(), 24)],
        ..Default::default()
    };
    let vf = Interface {
        name: "mce0".into(),
        index: 3,
        kind: IfKind::Vf {
            driver: "mce".into(),
        },
        mac: mac(),
        link_up: true,
        mtu: 1500,
        ..Default::default()
    };
    let mut view = SystemView {
        interfaces: vec![h, vf],
        routes: vec![
            route("10.0.0.0/24", None, "hn0"),
            route("0.0.0.0/0", Some("10.0.0.1"), "hn0"),
        ],
        ..Default::default()
    };
    view.platform.vf_map.insert("mce0".into(), "hn0".into());
    let case = Case {
        view,
        rc: "ifconfig_hn0=\"inet 10.0.0.4/24\"\ndefaultrouter=\"10.0.0.1\"\n".into(),
        eligible: true,
    };
    let ops = check_no_gap(&case).unwrap();
    let text: Vec<String> = ops.iter().map(ToString::to_string).collect();
    assert_eq!(
        text,
        [
            "create aggregate lagg0",
            "set lagg0 proto Failover",
            "set lagg0 up",
            "add 10.0.0.4/24 to lagg0",
            "add port hn0 to lagg0",
            "move route 0.0.0.0/0 via 10.0.0.1 dev hn0 to lagg0",
            "remove 10.0.0.4/24 from hn0",
            "add port mce0 to lagg0",
            "set mce0 up",
        ]
    );
}
