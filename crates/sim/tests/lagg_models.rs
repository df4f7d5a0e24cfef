//! The two models of a lagg — the simulator's kernel and hvnet-vf's `MemoryBackend` — agree
//! on port order, primary and the failover active port (spec hn.md §5) with three ports,
//! including a primary that is not first in the list (where `lagg_link_active` looks at the
//! port after the primary before the rest).

use std::time::Duration;

use hvnet_sim::world::World;
use hvnet_sim::{observe_world, SimBackend};
use hvnet_vf::{AggregateProto, Backend, Mac, MemoryBackend, Op, SystemView};

const T0: Duration = Duration::ZERO;

/// hn0, hn1, hn2 (indexes in that order), their host links up, all administratively up.
fn guest() -> World {
    let mut w = World::new(false);
    w.attach_loopback();
    for u in 0..3u8 {
        let hn = format!("hn{u}");
        let mac = Mac([0x00, 0x15, 0x5d, 0, 0, u + 1]);
        w.host_add_nic(&hn, mac);
        w.attach_hn(T0, &hn, mac).unwrap();
        w.link_query_done(T0, &hn);
        w.set_admin(T0, &hn, true).unwrap();
    }
    w.run_link_tasks(T0);
    w
}

/// hn1 first (the primary), then hn0 (a lower index: before it in the list), then hn2.
fn build() -> Vec<Op> {
    let port = |p: &str| Op::AddPort {
        aggregate: "lagg0".into(),
        port: p.into(),
    };
    vec![
        Op::CreateAggregate {
            name: "lagg0".into(),
        },
        port("hn1"),
        port("hn0"),
        port("hn2"),
        Op::SetAdmin {
            iface: "lagg0".into(),
            up: true,
        },
    ]
}

fn lagg(v: &SystemView) -> hvnet_vf::AggregateState {
    v.interface("lagg0").unwrap().aggregate.clone().unwrap()
}

#[test]
fn both_models_order_ports_by_index_and_keep_the_first_added_as_primary() {
    let mut w = guest();
    let mut mem = MemoryBackend::new(observe_world(&w));
    let mut faults = hvnet_sim::faults::Faults::new(Default::default(), 0);
    let mut sim = SimBackend::new(&mut w, T0, &mut faults);
    for op in build() {
        sim.apply(&op).unwrap();
        mem.apply(&op).unwrap();
    }
    let (s, m) = (lagg(&sim.observe().unwrap()), lagg(&mem.view));
    assert_eq!(s.ports, ["hn0", "hn1", "hn2"]);
    assert_eq!(s.primary.as_deref(), Some("hn1"));
    assert_eq!(m.ports, s.ports);
    assert_eq!(m.primary, s.primary);
    assert_eq!(m.active, s.active);
    // The primary leaves: the first port of the list is the new one, in both.
    let out = Op::RemovePort {
        aggregate: "lagg0".into(),
        port: "hn1".into(),
    };
    sim.apply(&out).unwrap();
    mem.apply(&out).unwrap();
    let (s, m) = (lagg(&sim.observe().unwrap()), lagg(&mem.view));
    assert_eq!(s.primary.as_deref(), Some("hn0"));
    assert_eq!((m.ports, m.primary), (s.ports, s.primary));
}

#[test]
fn both_models_elect_the_same_active_port_in_every_state_of_three_ports() {
    let mut w = guest();
    let mut faults = hvnet_sim::faults::Faults::new(Default::default(), 0);
    for op in build() {
        SimBackend::new(&mut w, T0, &mut faults).apply(&op).unwrap();
    }
    let ports = ["hn0", "hn1", "hn2"];
    let mut seen = std::collections::BTreeSet::new();
    // Each port: administratively up or down, host link up or down.
    for bits in 0u32..64 {
        for (i, p) in ports.iter().enumerate() {
            w.set_admin(T0, p, bits & (1 << (2 * i)) != 0).unwrap();
            w.host_link_change(T0, p, bits & (1 << (2 * i + 1)) != 0);
        }
        w.run_link_tasks(T0);
        let kernel = w.lagg_active_port("lagg0");
        let mut view = observe_world(&w);
        hvnet_vf::memory::elect_active(&mut view, "lagg0");
        assert_eq!(lagg(&view).active, kernel, "state bits {bits:06b}");
        seen.insert(kernel);
    }
    // The case the rule exists for: the primary (hn1) unusable, hn0 and hn2 usable — the
    // port after the primary (hn2) carries the traffic, not the first in the list (hn0).
    for (p, up) in [("hn0", true), ("hn1", false), ("hn2", true)] {
        w.set_admin(T0, p, up).unwrap();
        w.host_link_change(T0, p, true);
    }
    w.run_link_tasks(T0);
    assert_eq!(w.lagg_active_port("lagg0").as_deref(), Some("hn2"));
    assert_eq!(seen.len(), 4, "every port and none: {seen:?}");
}

#[test]
fn the_protocol_is_one_of_lagg4s_words_or_refused() {
    let mut w = guest();
    let mut faults = hvnet_sim::faults::Faults::new(Default::default(), 0);
    let mut sim = SimBackend::new(&mut w, T0, &mut faults);
    sim.apply(&Op::CreateAggregate {
        name: "lagg0".into(),
    })
    .unwrap();
    assert_eq!(
        lagg(&sim.observe().unwrap()).proto,
        AggregateProto::Failover
    );
    sim.apply(&Op::SetAggregateProto {
        aggregate: "lagg0".into(),
        proto: AggregateProto::Lacp,
    })
    .unwrap();
    assert_eq!(lagg(&sim.observe().unwrap()).proto, AggregateProto::Lacp);
    let odd = sim.apply(&Op::SetAggregateProto {
        aggregate: "lagg0".into(),
        proto: AggregateProto::Other("fec".into()),
    });
    assert!(odd.is_err(), "{odd:?}");
    let argv = |s: &str| s.split(' ').map(String::from).collect::<Vec<_>>();
    let out = hvnet_sim::guestcmd::run(&mut w, T0, &argv("ifconfig lagg0 laggproto roundrobin"));
    assert_eq!(out.status, 0, "{out:?}");
    let shown = hvnet_sim::guestcmd::run(&mut w, T0, &argv("ifconfig lagg0")).stdout;
    assert!(shown.contains("\tlaggproto roundrobin lagghash"), "{shown}");
    let bad = hvnet_sim::guestcmd::run(&mut w, T0, &argv("ifconfig lagg0 laggproto fec"));
    assert_eq!(bad.status, 1);
}
