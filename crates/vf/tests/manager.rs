//! The manager against the in-memory backend: modes, delay and gate,
//! restart safety, retries, daemons, overrides, and planner properties.

use std::collections::BTreeSet;
use std::time::Duration;

use hvnet_rcconf::RcConf;
use hvnet_vf::backend::Cause;
use hvnet_vf::model::{AggregateProto, AggregateState, Daemon, Mac};
use hvnet_vf::reconcile::GATE_POLL;
use hvnet_vf::{
    plan, Backend, BackendError, DaemonProc, DataPath, DhcpClient, EgressRedirect, GateState,
    IfKind, Inputs, Interface, IpNet, ManagerConfig, MemoryBackend, ModeSetting, NetConfigSource,
    Op, PlanInput, Readiness, Reconciler, Route, SystemView, VfState,
};
use proptest::prelude::*;

const MAC: &str = "00:15:5d:00:00:01";

fn hn(name: &str, mac: &str) -> Interface {
    Interface {
        name: name.into(),
        index: 2 + hvnet_vf::plan::unit_of(name),
        kind: IfKind::Synthetic,
        mac: mac.parse().unwrap(),
        admin_up: true,
        link_up: true,
        running: true,
        mtu: 1500,
        ..Default::default()
    }
}

fn vf(name: &str, mac: &str) -> Interface {
    Interface {
        name: name.into(),
        index: 10 + hvnet_vf::plan::unit_of(name),
        kind: IfKind::Vf {
            driver: "mce".into(),
        },
        mac: mac.parse().unwrap(),
        link_up: true,
        mtu: 1500,
        ..Default::default()
    }
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn rc(text: &str) -> RcConf {
    RcConf::from_text("/etc/rc.conf", text)
}

fn boot_static() -> SystemView {
    let mut h = hn("hn0", MAC);
    h.ipv4 = vec![hvnet_vf::Ipv4Net::new("10.0.0.4".parse().unwrap(), 24)];
    SystemView {
        interfaces: vec![h],
        routes: vec![Route {
            dest: IpNet::default_v4(),
            gateway: Some("10.0.0.1".parse().unwrap()),
            iface: Some("hn0".into()),
        }],
        ..Default::default()
    }
}

fn add_vf(b: &mut MemoryBackend, name: &str) {
    b.view.interfaces.push(vf(name, MAC));
    b.view.platform.vf_map.insert(name.into(), "hn0".into());
}

fn at(secs_ms: u64) -> Inputs {
    Inputs {
        now: Duration::from_millis(secs_ms),
        ..Default::default()
    }
}

/// Step until nothing is applied (bounded).
fn settle(r: &mut Reconciler, b: &mut MemoryBackend, net: &dyn NetConfigSource, i: &Inputs) {
    for _ in 0..5 {
        let rep = r.step(b, net, i);
        if rep.applied.is_empty() {
            return;
        }
    }
    panic!("did not settle");
}

fn ip_holders(v: &SystemView) -> Vec<String> {
    v.interfaces
        .iter()
        .filter(|i| i.has_ip_config())
        .map(|i| i.name.clone())
        .collect()
}

#[test]
fn non_transparent_moves_everything_to_the_lagg_after_the_delay() {
    let conf =
        rc("ifconfig_hn0=\"inet 10.0.0.4/24\"\ndefaultrouter=\"10.0.0.1\"\nhyperv_vf_delay=5\n");
    let mut r = Reconciler::new(ManagerConfig {
        mode: ModeSetting::Auto,
        ..ManagerConfig::from_rcconf(&conf)
    });
    let mut b = MemoryBackend::new(boot_static());
    settle(&mut r, &mut b, &conf, &at(0));
    assert!(b.log.is_empty(), "nothing to do without a VF: {:?}", b.log);

    add_vf(&mut b, "mce0");
    let rep = r.step(&mut b, &conf, &at(1000));
    assert!(rep.applied.is_empty(), "VF waits: {:?}", rep.applied);
    assert_eq!(rep.status.pairs[0].vf_state, VfState::Waiting);
    assert_eq!(rep.next_wakeup, Some(Duration::from_millis(6000)));

    settle(&mut r, &mut b, &conf, &at(6000));
    let v = &b.view;
    let lagg = v.interface("lagg0").expect("lagg0 created");
    let st = lagg.aggregate.as_ref().unwrap();
    assert_eq!(st.proto, AggregateProto::Failover);
    assert_eq!(st.primary.as_deref(), Some("hn0"));
    assert_eq!(st.ports, vec!["hn0", "mce0"]);
    assert_eq!(ip_holders(v), vec!["lagg0"]);
    assert!(lagg.has_address(&net("10.0.0.4/24")));
    assert!(v.interface("mce0").unwrap().admin_up);
    assert!(v
        .routes
        .iter()
        .any(|r| r.dest == IpNet::default_v4() && r.iface.as_deref() == Some("lagg0")));
    assert!(!v.routes.iter().any(|r| r.iface.as_deref() == Some("hn0")));
    // The VF is brought up last, after the configuration moved.
    assert!(matches!(b.log.last(), Some(Op::SetAdmin { iface, up: true }) if iface == "mce0"));

    // Converged: a further step does nothing and reports converged.
    let rep = r.step(&mut b, &conf, &at(7000));
    assert!(rep.applied.is_empty());
    assert!(rep.status.converged);
    assert_eq!(rep.status.pairs[0].holder, "lagg0");
}

#[test]
fn vf_leaving_keeps_the_lagg_and_a_new_vf_is_only_added() {
    let conf = rc("ifconfig_hn0=\"inet 10.0.0.4/24\"\n");
    let mut r = Reconciler::new(ManagerConfig::from_rcconf(&conf));
    let mut b = MemoryBackend::new(boot_static());
    add_vf(&mut b, "mce0");
    settle(&mut r, &mut b, &conf, &at(0));
    settle(&mut r, &mut b, &conf, &at(2000));
    // Live migration: the kernel drops the port and the VF.
    b.view.interfaces.retain(|i| i.name != "mce0");
    b.view.platform.vf_map.clear();
    let l = b.view.interface_mut("lagg0").unwrap();
    l.aggregate.as_mut().unwrap().ports.retain(|p| p != "mce0");
    b.log.clear();
    settle(&mut r, &mut b, &conf, &at(3000));
    assert!(b.log.is_empty(), "{:?}", b.log);
    // A different VF comes back.
    b.view.interfaces.push(vf("mce1", MAC));
    b.view.platform.vf_map.insert("mce1".into(), "hn0".into());
    settle(&mut r, &mut b, &conf, &at(4000));
    assert!(b.log.is_empty(), "waits again: {:?}", b.log);
    settle(&mut r, &mut b, &conf, &at(6000));
    assert_eq!(
        b.log,
        vec![
            Op::AddPort {
                aggregate: "lagg0".into(),
                port: "mce1".into()
            },
            Op::SetAdmin {
                iface: "mce1".into(),
                up: true
            }
        ]
    );
}

#[test]
fn dhcp_moves_by_pid_and_never_runs_twice() {
    let conf = rc("ifconfig_hn0=\"SYNCDHCP\"\n");
    let mut view = boot_static();
    view.routes.clear();
    view.dhcp_clients.push(DhcpClient {
        iface: "hn0".into(),
        pid: 4242,
    });
    let mut b = MemoryBackend::new(view);
    add_vf(&mut b, "mce0");
    let mut r = Reconciler::new(ManagerConfig::from_rcconf(&conf));
    r.step(&mut b, &conf, &at(0));
    settle(&mut r, &mut b, &conf, &at(2500));
    assert!(b.log.contains(&Op::StopDhcp {
        iface: "hn0".into(),
        pid: 4242
    }));
    assert!(b.log.contains(&Op::StartDhcp {
        iface: "lagg0".into(),
        sync: true
    }));
    let stop = b
        .log
        .iter()
        .position(|o| matches!(o, Op::StopDhcp { .. }))
        .unwrap();
    let start = b
        .log
        .iter()
        .position(|o| matches!(o, Op::StartDhcp { .. }))
        .unwrap();
    assert!(stop < start, "stop before start");
    assert_eq!(b.view.dhcp_clients.len(), 1);
    assert_eq!(b.view.dhcp_clients[0].iface, "lagg0");
    // The leased address moves with the client so connections survive.
    assert!(b
        .view
        .interface("lagg0")
        .unwrap()
        .has_address(&net("10.0.0.4/24")));
    assert_eq!(ip_holders(&b.view), vec!["lagg0"]);
}

#[test]
fn ipv6_aliases_and_static_routes_move_too() {
    let conf = rc(concat!(
        "ifconfig_hn0=\"inet 10.0.0.4/24\"\n",
        "ifconfig_hn0_alias0=\"inet 10.0.0.5/32\"\n",
        "ipv6_network_interfaces=\"hn0\"\n",
        "ifconfig_hn0_ipv6=\"inet6 2001:db8::4 prefixlen 64\"\n",
        "static_routes=\"lan:hn0\"\nroute_lan=\"-net 10.9.0.0/16 10.0.0.254\"\n",
    ));
    let mut view = boot_static();
    let h = view.interface_mut("hn0").unwrap();
    h.ipv4
        .push(hvnet_vf::Ipv4Net::new("10.0.0.5".parse().unwrap(), 32));
    h.ipv6 = vec![
        hvnet_vf::Ipv6Net::new("fe80::1".parse().unwrap(), 64),
        hvnet_vf::Ipv6Net::new("2001:db8::4".parse().unwrap(), 64),
    ];
    view.routes.push(Route {
        dest: net("10.9.0.0/16"),
        gateway: Some("10.0.0.254".parse().unwrap()),
        iface: Some("hn0".into()),
    });
    let mut b = MemoryBackend::new(view);
    add_vf(&mut b, "mce0");
    let mut r = Reconciler::new(ManagerConfig::from_rcconf(&conf));
    r.step(&mut b, &conf, &at(0));
    settle(&mut r, &mut b, &conf, &at(2000));
    let l = b.view.interface("lagg0").unwrap();
    for a in ["10.0.0.4/24", "10.0.0.5/32", "2001:db8::4/64"] {
        assert!(l.has_address(&net(a)), "{a} on lagg0");
    }
    assert!(!b.view.interface("hn0").unwrap().has_ip_config());
    assert!(b
        .view
        .routes
        .iter()
        .any(|r| r.dest == net("10.9.0.0/16") && r.iface.as_deref() == Some("lagg0")));
}

#[test]
fn the_link_local_connected_route_stays_with_its_interface() {
    let conf = rc(concat!(
        "ifconfig_hn0=\"inet 10.0.0.4/24\"\n",
        "ipv6_network_interfaces=\"hn0\"\n",
        "ifconfig_hn0_ipv6=\"inet6 2001:db8::4 prefixlen 64\"\n",
    ));
    let mut view = boot_static();
    view.interface_mut("hn0").unwrap().ipv6 = vec![
        hvnet_vf::Ipv6Net::new("fe80::1".parse().unwrap(), 64),
        hvnet_vf::Ipv6Net::new("2001:db8::4".parse().unwrap(), 64),
    ];
    let link_local = Route {
        dest: net("fe80::/64"),
        gateway: None,
        iface: Some("hn0".into()),
    };
    view.routes.push(link_local.clone());
    let mut b = MemoryBackend::new(view);
    add_vf(&mut b, "mce0");
    let mut r = Reconciler::new(ManagerConfig::from_rcconf(&conf));
    r.step(&mut b, &conf, &at(0));
    settle(&mut r, &mut b, &conf, &at(2000));
    assert!(b
        .view
        .interface("lagg0")
        .unwrap()
        .has_address(&net("2001:db8::4/64")));
    assert!(
        !b.log.iter().any(
            |op| matches!(op, Op::RemoveRoute { route } if route.dest == link_local.dest)
                || matches!(op, Op::AddRoute { route } if route.dest == link_local.dest)
        ),
        "fe80::/64 is per link and must not be moved: {:?}",
        b.log
    );
}

#[test]
fn lagg_name_taken_by_the_admin_is_not_hijacked() {
    let conf = rc("ifconfig_hn0=\"inet 10.0.0.4/24\"\n");
    let mut view = boot_static();
    view.interfaces.push(hn("em0", "00:11:22:33:44:55"));
    view.interfaces.last_mut().unwrap().kind = IfKind::Other;
    view.interfaces.last_mut().unwrap().member_of = Some("lagg0".into());
    view.interfaces.push(Interface {
        name: "lagg0".into(),
        index: 50,
        kind: IfKind::Aggregate,
        aggregate: Some(AggregateState {
            proto: AggregateProto::Lacp,
            ports: vec!["em0".into()],
            active: Some("em0".into()),
            primary: Some("em0".into()),
        }),
        ..Default::default()
    });
    let mut b = MemoryBackend::new(view);
    add_vf(&mut b, "mce0");
    let mut r = Reconciler::new(ManagerConfig::from_rcconf(&conf));
    r.step(&mut b, &conf, &at(0));
    settle(&mut r, &mut b, &conf, &at(2000));
    let admin = b
        .view
        .interface("lagg0")
        .unwrap()
        .aggregate
        .clone()
        .unwrap();
    assert_eq!(admin.ports, vec!["em0"]);
    assert_eq!(admin.proto, AggregateProto::Lacp);
    let ours = b.view.interface("lagg100").expect("fallback name");
    assert_eq!(ours.aggregate.as_ref().unwrap().ports, vec!["hn0", "mce0"]);
}

#[test]
fn restart_finds_the_converged_system_and_does_nothing() {
    let conf = rc("ifconfig_hn0=\"DHCP\"\n");
    let mut b = MemoryBackend::new(boot_static());
    add_vf(&mut b, "mce0");
    let mut r = Reconciler::new(ManagerConfig::from_rcconf(&conf));
    r.step(&mut b, &conf, &at(0));
    settle(&mut r, &mut b, &conf, &at(2000));
    b.log.clear();
    // A fresh manager (restart) at an unrelated time.
    let mut r2 = Reconciler::new(ManagerConfig::from_rcconf(&conf));
    let rep = r2.step(&mut b, &conf, &at(50));
    assert!(rep.applied.is_empty(), "{:?}", rep.applied);
    assert_eq!(rep.status.pairs[0].vf_state, VfState::Ready);
    assert!(rep.status.converged);
}

#[test]
fn transparent_mode_guards_the_vf() {
    let conf = rc("ifconfig_hn0=\"inet 10.0.0.4/24 mtu 9000\"\nifconfig_DEFAULT=\"DHCP\"\n");
    let mut view = boot_static();
    view.platform.vf_transparent = true;
    view.interface_mut("hn0").unwrap().mtu = 9000;
    let mut b = MemoryBackend::new(view);
    add_vf(&mut b, "mce0");
    // pccard_ether configured the VF on its own (ifconfig_DEFAULT).
    let v = b.view.interface_mut("mce0").unwrap();
    v.admin_up = true;
    v.ipv4 = vec![hvnet_vf::Ipv4Net::new("10.0.0.4".parse().unwrap(), 24)];
    b.view.dhcp_clients.push(DhcpClient {
        iface: "mce0".into(),
        pid: 77,
    });
    let mut r = Reconciler::new(ManagerConfig::from_rcconf(&conf));
    r.step(&mut b, &conf, &at(0));
    assert_eq!(ip_holders(&b.view), vec!["hn0"]);
    assert!(b.view.dhcp_clients.is_empty());
    assert_eq!(
        b.view.interface("mce0").unwrap().mtu,
        1500,
        "MTU after the delay"
    );
    settle(&mut r, &mut b, &conf, &at(2000));
    assert_eq!(b.view.interface("mce0").unwrap().mtu, 9000);
    assert!(b.view.interface("lagg0").is_none());
    let st = r.status().unwrap();
    assert_eq!(st.pairs[0].path, DataPath::Vf);
}

#[test]
fn unpaired_vf_is_guarded_and_reported() {
    let conf = rc("ifconfig_hn0=\"inet 10.0.0.4/24\"\n");
    let mut b = MemoryBackend::new(boot_static());
    let mut v = vf("mce0", MAC);
    v.ipv4 = vec![hvnet_vf::Ipv4Net::new("10.0.0.4".parse().unwrap(), 24)];
    b.view.interfaces.push(v);
    let mut r = Reconciler::new(ManagerConfig::from_rcconf(&conf));
    r.step(&mut b, &conf, &at(0));
    settle(&mut r, &mut b, &conf, &at(5000));
    assert!(b.view.interface("lagg0").is_none());
    assert_eq!(ip_holders(&b.view), vec!["hn0"]);
    assert_eq!(r.status().unwrap().unpaired_vfs, vec!["mce0"]);
}

#[test]
fn steered_mode_steers_after_delay_and_unsteers_first() {
    let conf = rc("ifconfig_hn0=\"inet 10.0.0.4/24\"\n");
    let cfg = ManagerConfig {
        mode: ModeSetting::Steered,
        ..ManagerConfig::from_rcconf(&conf)
    };
    let mut b = MemoryBackend::new(boot_static());
    b.view.interfaces.push(vf("eth1", MAC));
    let mut r = Reconciler::new(cfg);
    r.step(&mut b, &conf, &at(0));
    assert!(b.view.steering.is_empty());
    settle(&mut r, &mut b, &conf, &at(2000));
    assert_eq!(b.view.steering.len(), 1);
    assert_eq!(ip_holders(&b.view), vec!["hn0"]);
    // Planned removal: steering goes first.
    b.log.clear();
    let mut leaving = at(3000);
    leaving.leaving = BTreeSet::from(["eth1".to_string()]);
    r.step(&mut b, &conf, &leaving);
    assert!(matches!(b.log.first(), Some(Op::SteerOff { .. })));
    assert!(b.view.steering.is_empty());
    // Link loss also unsteers immediately.
    settle(&mut r, &mut b, &conf, &at(3100));
    assert_eq!(b.view.steering.len(), 1);
    b.view.interface_mut("eth1").unwrap().link_up = false;
    r.step(&mut b, &conf, &at(3200));
    assert!(b.view.steering.is_empty());
}

fn gated(ms: u64, readiness: Readiness) -> Inputs {
    Inputs {
        readiness,
        ..at(ms)
    }
}

#[test]
fn readiness_gate_releases_the_vf_early() {
    let conf = rc("ifconfig_hn0=\"inet 10.0.0.4/24\"\nhyperv_vf_delay=120\n");
    let cfg = ManagerConfig::from_rcconf(&conf);
    let mut b = MemoryBackend::new(boot_static());
    add_vf(&mut b, "mce0");
    let mut r = Reconciler::new(cfg);
    r.step(&mut b, &conf, &gated(0, Readiness::NotReady));
    let mut i = gated(1500, Readiness::Ready);
    assert!(r.step(&mut b, &conf, &i).applied.is_empty(), "2 s minimum");
    i.now = Duration::from_millis(2000);
    settle(&mut r, &mut b, &conf, &i);
    assert!(b.view.interface("lagg0").is_some());
}

#[test]
fn closed_gate_waits_for_the_full_delay() {
    let conf = rc("hyperv_vf_delay=120\n");
    let cfg = ManagerConfig::from_rcconf(&conf);
    let mut b = MemoryBackend::new(boot_static());
    add_vf(&mut b, "mce0");
    let mut r = Reconciler::new(cfg);
    let rep = r.step(&mut b, &conf, &gated(0, Readiness::NotReady));
    // A waiting VF has the gate polled.
    assert_eq!(rep.next_wakeup, Some(GATE_POLL));
    assert!(r
        .step(&mut b, &conf, &gated(119_000, Readiness::NotReady))
        .applied
        .is_empty());
    settle(&mut r, &mut b, &conf, &gated(120_000, Readiness::NotReady));
    assert!(b.view.interface("lagg0").is_some());
}

/// A gate only delays moving traffic onto a VF: once it released one (transparent mode,
/// where nothing else keeps a VF eligible), the gate closing again does not take the VF's
/// traffic back to the synthetic NIC before the VF's delay.
#[test]
fn a_vf_the_gate_released_stays_released_when_the_gate_closes() {
    let conf = rc("hyperv_vf_delay=120\n");
    let mut b = MemoryBackend::new(boot_static());
    b.view.platform.vf_transparent = true;
    add_vf(&mut b, "mce0");
    let mut r = Reconciler::new(ManagerConfig::from_rcconf(&conf));
    r.step(&mut b, &conf, &gated(0, Readiness::NotReady));
    let rep = r.step(&mut b, &conf, &gated(2000, Readiness::Ready));
    assert_eq!(rep.status.pairs[0].vf_state, VfState::Ready);
    for ms in [2500, 10_000, 60_000] {
        let rep = r.step(&mut b, &conf, &gated(ms, Readiness::NotReady));
        assert_eq!(rep.status.pairs[0].vf_state, VfState::Ready, "at {ms} ms");
    }
    // A VF that comes later waits for the gate again.
    b.view.interfaces.retain(|i| i.name != "mce0");
    r.step(&mut b, &conf, &gated(61_000, Readiness::NotReady));
    add_vf(&mut b, "mce0");
    r.step(&mut b, &conf, &gated(62_000, Readiness::NotReady));
    let rep = r.step(&mut b, &conf, &gated(65_000, Readiness::NotReady));
    assert_eq!(rep.status.pairs[0].vf_state, VfState::Waiting);
}

#[test]
fn flapping_vf_is_held_down() {
    let conf = rc("ifconfig_hn0=\"inet 10.0.0.4/24\"\n");
    let mut r = Reconciler::new(ManagerConfig::from_rcconf(&conf));
    let mut b = MemoryBackend::new(boot_static());
    let drop_vf = |b: &mut MemoryBackend| {
        b.view.interfaces.retain(|i| i.name != "mce0");
        b.view.platform.vf_map.clear();
        if let Some(l) = b.view.interface_mut("lagg0") {
            l.aggregate.as_mut().unwrap().ports.retain(|p| p != "mce0");
        }
    };
    // VFs that leave before they were ever used are not flaps.
    let mut t = 0;
    for _ in 0..5 {
        add_vf(&mut b, "mce0");
        r.step(&mut b, &conf, &at(t));
        drop_vf(&mut b);
        r.step(&mut b, &conf, &at(t + 500));
        t += 1000;
    }
    add_vf(&mut b, "mce0");
    let rep = r.step(&mut b, &conf, &at(t));
    assert_eq!(rep.status.pairs[0].vf_state, VfState::Waiting);
    drop_vf(&mut b);
    r.step(&mut b, &conf, &at(t));
    // Four used VFs lost within a minute: the next one is held down.
    for _ in 0..4 {
        add_vf(&mut b, "mce0");
        r.step(&mut b, &conf, &at(t));
        settle(&mut r, &mut b, &conf, &at(t + 2000));
        assert!(b.view.interface("mce0").unwrap().admin_up);
        drop_vf(&mut b);
        t += 3000;
        r.step(&mut b, &conf, &at(t));
    }
    add_vf(&mut b, "mce0");
    let rep = r.step(&mut b, &conf, &at(t));
    assert_eq!(rep.status.pairs[0].vf_state, VfState::HeldDown);
    assert!(rep.log.is_empty() || rep.log.iter().all(|l| !l.message.contains("set mce0 up")));
    settle(&mut r, &mut b, &conf, &at(t + 5000));
    assert!(!b.view.interface("mce0").unwrap().admin_up, "still held");
    settle(&mut r, &mut b, &conf, &at(t + 10_000));
    assert!(b.view.interface("mce0").unwrap().admin_up);
}

#[test]
fn daemons_follow_devices_and_restart_with_backoff() {
    let conf = rc("");
    let mut r = Reconciler::new(ManagerConfig::from_rcconf(&conf));
    let mut b = MemoryBackend::new(SystemView::default());
    b.view.devices.insert("hv_kvp_dev".into());
    r.step(&mut b, &conf, &at(0));
    assert_eq!(b.view.daemons.len(), 1);
    let pid = b.view.daemons[0].pid;
    // Dies: not restarted before the back-off.
    b.view.daemons.clear();
    let rep = r.step(&mut b, &conf, &at(100));
    assert!(rep.applied.is_empty());
    assert_eq!(rep.next_wakeup, Some(Duration::from_millis(1100)));
    r.step(&mut b, &conf, &at(1100));
    assert_eq!(b.view.daemons.len(), 1);
    assert_ne!(b.view.daemons[0].pid, pid);
    assert_eq!(r.status().unwrap().daemons[0].restarts, 1);
    // A second copy started by someone else is stopped by pid.
    b.view.daemons.push(DaemonProc {
        daemon: Daemon::Kvp,
        pid: 9,
    });
    r.step(&mut b, &conf, &at(1200));
    assert_eq!(b.view.daemons.len(), 1);
    // Device gone: stopped by pid.
    b.view.devices.clear();
    let rep = r.step(&mut b, &conf, &at(1300));
    assert!(matches!(
        rep.applied[..],
        [Op::StopDaemon {
            daemon: Daemon::Kvp,
            ..
        }]
    ));
    assert!(b.view.daemons.is_empty());
}

/// Fails the first `n` applications of ops named `name`.
struct Flaky {
    inner: MemoryBackend,
    name: &'static str,
    left: u32,
}

impl Backend for Flaky {
    fn observe(&mut self) -> Result<SystemView, BackendError> {
        self.inner.observe()
    }
    fn apply(&mut self, op: &Op) -> Result<(), BackendError> {
        if op.name() == self.name && self.left > 0 {
            self.left -= 1;
            return Err(BackendError::apply(
                op,
                Cause::Command {
                    command: "ifconfig lagg0 laggport mce0".into(),
                    status: 1,
                    stderr: "ifconfig: SIOCSLAGGPORT: Device busy".into(),
                },
            ));
        }
        self.inner.apply(op)
    }
}

#[test]
fn failed_step_is_reported_and_retried() {
    let conf = rc("ifconfig_hn0=\"inet 10.0.0.4/24\"\n");
    let mut b = Flaky {
        inner: MemoryBackend::new(boot_static()),
        name: "add_port",
        left: 2,
    };
    add_vf(&mut b.inner, "mce0");
    let mut r = Reconciler::new(ManagerConfig::from_rcconf(&conf));
    r.step(&mut b, &conf, &at(0));
    let rep = r.step(&mut b, &conf, &at(2000));
    assert_eq!(rep.failed.len(), 1);
    assert!(!rep.status.converged);
    assert_eq!(rep.status.errors[0].op, "add_port");
    assert_eq!(rep.status.errors[0].failures, 1);
    assert!(rep.log.iter().any(|l| l.message.contains("Device busy")));
    // Not retried before the back-off.
    assert!(r.step(&mut b, &conf, &at(2100)).applied.is_empty());
    let rep = r.step(&mut b, &conf, &at(2200));
    assert_eq!(rep.status.errors[0].failures, 2);
    let mut t = 2200;
    loop {
        t += 500;
        let rep = r.step(&mut b, &conf, &at(t));
        if rep.status.converged {
            break;
        }
        assert!(t < 10_000, "did not converge");
    }
    assert_eq!(ip_holders(&b.inner.view), vec!["lagg0"]);
}

#[test]
fn override_hook_runs_once_per_vf_instead_of_the_lagg_logic() {
    let conf = rc("ifconfig_hn0=\"inet 10.0.0.4/24\"\n");
    let mut b = MemoryBackend::new(boot_static());
    add_vf(&mut b, "mce0");
    let mut r = Reconciler::new(ManagerConfig::from_rcconf(&conf));
    let mut i = at(0);
    i.overrides.insert("hn0".into());
    r.step(&mut b, &conf, &i);
    i.now = Duration::from_secs(2);
    settle(&mut r, &mut b, &conf, &i);
    assert_eq!(
        b.hooks_run,
        vec![(
            "/usr/libexec/hyperv/hyperv_vfup.hn0".to_string(),
            vec!["hn0".to_string()]
        )]
    );
    assert!(b.view.interface("lagg0").is_none());
    assert!(b.view.interface("mce0").unwrap().admin_up);
    i.now = Duration::from_secs(3);
    settle(&mut r, &mut b, &conf, &i);
    assert_eq!(b.hooks_run.len(), 1);
}

// ---------- planner properties ----------

fn arb_view() -> impl Strategy<Value = (SystemView, bool, bool, u8)> {
    (
        any::<bool>(),                       // transparent
        any::<bool>(),                       // vf present
        any::<bool>(),                       // vf admin up
        any::<bool>(),                       // dhcp on hn
        any::<bool>(),                       // dhcp on vf
        prop::collection::vec(0u8..4, 0..3), // hn v4 addrs
        prop::collection::vec(0u8..4, 0..2), // vf v4 addrs
        any::<bool>(),                       // existing lagg with hn
        any::<bool>(),                       // eligible
        0u8..3,                              // mode selector
        any::<bool>(),                       // devices present
    )
        .prop_map(|(xp, vfp, vfup, dh, dv, ha, va, lag, elig, m, dev)| {
            let mut v = SystemView::default();
            v.platform.vf_transparent = xp;
            let mut h = hn("hn0", MAC);
            for a in ha {
                h.ipv4
                    .push(hvnet_vf::Ipv4Net::new([10, 0, 0, 4 + a].into(), 24));
            }
            if lag {
                h.member_of = Some("lagg0".into());
                v.interfaces.push(Interface {
                    name: "lagg0".into(),
                    index: 40,
                    kind: IfKind::Aggregate,
                    mac: MAC.parse::<Mac>().unwrap(),
                    mtu: 1500,
                    aggregate: Some(AggregateState {
                        proto: AggregateProto::Failover,
                        ports: vec!["hn0".into()],
                        active: None,
                        primary: Some("hn0".into()),
                    }),
                    ..Default::default()
                });
            }
            v.interfaces.push(h);
            if dh {
                v.dhcp_clients.push(DhcpClient {
                    iface: "hn0".into(),
                    pid: 11,
                });
            }
            if vfp {
                let mut f = vf("mce0", MAC);
                f.admin_up = vfup;
                for a in va {
                    f.ipv4
                        .push(hvnet_vf::Ipv4Net::new([10, 0, 0, 4 + a].into(), 24));
                }
                v.interfaces.push(f);
                v.platform.vf_map.insert("mce0".into(), "hn0".into());
                if dv {
                    v.dhcp_clients.push(DhcpClient {
                        iface: "mce0".into(),
                        pid: 12,
                    });
                }
            }
            if dev {
                v.devices.insert("hv_kvp_dev".into());
                v.devices.insert("hv_fsvss_dev".into());
            }
            (v, elig, vfp, m)
        })
}

fn mode_of(m: u8) -> ModeSetting {
    match m {
        0 => ModeSetting::Auto,
        1 => ModeSetting::NonTransparent,
        _ => ModeSetting::Steered,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn plans_are_idempotent_and_never_configure_a_vf(
        (view, elig, vfp, m) in arb_view(),
        conf_kind in 0u8..3,
    ) {
        let conf = rc(match conf_kind {
            0 => "ifconfig_hn0=\"DHCP\"\n",
            1 => "ifconfig_hn0=\"inet 10.0.0.4/24\"\ndefaultrouter=\"10.0.0.1\"\n",
            _ => "",
        });
        let cfg = ManagerConfig { mode: mode_of(m), ..ManagerConfig::default() };
        let mut input = PlanInput {
            daemon_start_allowed: hvnet_vf::Daemon::ALL.into_iter().collect(),
            ..Default::default()
        };
        if elig && vfp {
            input.eligible.insert("mce0".into());
        }
        let p = plan(&view, &cfg, &conf, &input);
        for op in p.ops() {
            match op {
                Op::AddAddress { iface, .. } | Op::StartDhcp { iface, .. } => {
                    prop_assert!(iface != "mce0", "IP config planned onto the VF: {}", op);
                }
                _ => {}
            }
        }
        let mut b = MemoryBackend::new(view);
        for op in p.ops() {
            b.apply(op).unwrap();
        }
        // After applying: the VF holds nothing, one DHCP client at most.
        let vfi = b.view.interface("mce0");
        prop_assert!(vfi.is_none_or(|v| !v.has_ip_config()));
        prop_assert!(b.view.dhcp_clients.len() <= 1, "{:?}", b.view.dhcp_clients);
        prop_assert!(ip_holders(&b.view).len() <= 1, "{:?}", ip_holders(&b.view));
        // Only steering may wait for the VF's link to be observed up.
        let again = plan(&b.view, &cfg, &conf, &input);
        for op in again.ops() {
            prop_assert!(matches!(op, Op::SteerOn { .. }), "second plan not empty: {:?}", again.units);
            b.apply(op).unwrap();
        }
        let third = plan(&b.view, &cfg, &conf, &input);
        prop_assert!(third.is_empty(), "third plan not empty: {:?}", third.units);
    }
}

fn steered() -> (RcConf, Reconciler, MemoryBackend) {
    let conf = rc("ifconfig_hn0=\"inet 10.0.0.4/24\"\n");
    let cfg = ManagerConfig {
        mode: ModeSetting::Steered,
        ..ManagerConfig::from_rcconf(&conf)
    };
    let mut b = MemoryBackend::new(boot_static());
    b.view.interfaces.push(vf("eth1", MAC));
    let mut r = Reconciler::new(cfg);
    r.step(&mut b, &conf, &at(0));
    settle(&mut r, &mut b, &conf, &at(2000));
    assert_eq!(
        r.status().unwrap().pairs[0].path,
        DataPath::Vf,
        "{:?} {:?}",
        r.status(),
        b.view
    );
    (conf, r, b)
}

/// The blackhole: the VF vanished and hn0's egress still redirects to its old
/// index. The status says so, and the planner removes the redirect.
#[test]
fn a_redirect_to_a_vanished_vf_is_reported_and_removed() {
    let (conf, mut r, mut b) = steered();
    b.view.interfaces.retain(|i| i.name != "eth1");
    b.view.steering.clear();
    b.view.egress_redirects[0].to = None;
    let plan = r.plan_for(&b.view.clone(), &conf, &at(3000));
    let p = &plan.pairs[0];
    assert_eq!(p.path, DataPath::Dropped, "{p:?}");
    assert!(
        p.problems.iter().any(|m| m.contains("no longer exists")),
        "{p:?}"
    );
    assert!(plan.ops().any(
        |o| matches!(o, Op::SteerOff { synthetic, vf } if synthetic == "hn0" && vf == "ifindex 11")
    ));
    b.log.clear();
    let rep = r.step(&mut b, &conf, &at(3000));
    assert!(
        matches!(b.log.first(), Some(Op::SteerOff { .. })),
        "{:?}",
        b.log
    );
    assert!(b.view.egress_redirects.is_empty());
    let rep2 = r.step(&mut b, &conf, &at(3200));
    assert_eq!(rep2.status.pairs[0].path, DataPath::Synthetic);
    assert!(
        rep2.status.converged,
        "{:?} then {:?}",
        rep.status, rep2.status
    );
}

/// A redirect to a VF that is down drops packets just the same.
#[test]
fn a_redirect_to_a_vf_that_is_down_is_a_dropped_path() {
    let (conf, mut r, mut b) = steered();
    b.view.interface_mut("eth1").unwrap().link_up = false;
    let plan = r.plan_for(&b.view.clone(), &conf, &at(3000));
    assert_eq!(plan.pairs[0].path, DataPath::Dropped);
    r.step(&mut b, &conf, &at(3000));
    assert!(b.view.egress_redirects.is_empty());
    let st = r.step(&mut b, &conf, &at(3100)).status;
    assert_eq!(st.pairs[0].path, DataPath::Synthetic);
}

/// A closed gate bypasses the redirect: the kernel sends on hn0, whatever filters remain.
#[test]
fn a_closed_gate_means_the_synthetic_path() {
    let (conf, mut r, mut b) = steered();
    b.view.egress_redirects[0].gate = Some(GateState::Closed);
    b.view.interface_mut("eth1").unwrap().link_up = false;
    let plan = r.plan_for(&b.view.clone(), &conf, &at(3000));
    assert_eq!(plan.pairs[0].path, DataPath::Synthetic);
    assert!(plan.pairs[0].problems.is_empty());
}

/// Steering filters where they do not belong go: on an interface that is not a synthetic
/// NIC, and on any interface once the mode is not steered.
#[test]
fn redirects_that_do_not_belong_are_removed() {
    let (conf, mut r, mut b) = steered();
    b.view.egress_redirects.push(EgressRedirect {
        iface: "eth1".into(),
        to_index: 2,
        to: Some("hn0".into()),
        gate: None,
    });
    r.step(&mut b, &conf, &at(3000));
    assert_eq!(b.view.egress_redirects.len(), 1);
    assert_eq!(b.view.egress_redirects[0].iface, "hn0");
    // Another mode: nothing of steering stays.
    let mut r = Reconciler::new(ManagerConfig {
        mode: ModeSetting::Transparent,
        ..ManagerConfig::from_rcconf(&conf)
    });
    r.step(&mut b, &conf, &at(4000));
    assert!(b.view.egress_redirects.is_empty() && b.view.steering.is_empty());
}

/// A gate the backend cannot read (left by an earlier run) is made again by steering anew.
#[test]
fn an_unreadable_gate_is_steered_again() {
    let (conf, mut r, mut b) = steered();
    b.view.egress_redirects[0].gate = Some(GateState::Unknown);
    b.log.clear();
    r.step(&mut b, &conf, &at(3000));
    assert!(
        matches!(b.log.as_slice(), [Op::SteerOn { .. }]),
        "{:?}",
        b.log
    );
    assert_eq!(b.view.egress_redirects[0].gate, None);
}
