//! Property: any sequence of backend ops and host events leaves the model
//! consistent and never panics (ops may fail, as a kernel refuses them).

use std::time::Duration;

use hvnet_sim::host::VfOffer;
use hvnet_sim::world::{Timer, World};
use hvnet_sim::{FaultConfig, Faults, SimBackend};
use hvnet_vf::{AggregateProto, Backend, IpNet, Mac, Op};
use proptest::prelude::*;

const IFACES: [&str; 6] = ["hn0", "mce0", "mlxen0", "lagg0", "lagg1", "lo0"];

fn op_strategy() -> impl Strategy<Value = (u8, usize, usize, bool, u16)> {
    (
        0u8..14,
        0usize..IFACES.len(),
        0usize..IFACES.len(),
        any::<bool>(),
        0u16..10000,
    )
}

fn make_op(k: u8, a: usize, b: usize, flag: bool, n: u16) -> Op {
    let (a, b) = (IFACES[a].to_string(), IFACES[b].to_string());
    match k {
        0 => Op::CreateAggregate { name: a },
        1 => Op::DestroyAggregate { name: a },
        2 => Op::AddPort {
            aggregate: a,
            port: b,
        },
        3 => Op::RemovePort {
            aggregate: a,
            port: b,
        },
        4 => Op::SetAdmin { iface: a, up: flag },
        5 => Op::SetMtu {
            iface: a,
            mtu: u32::from(n),
        },
        6 => Op::AddAddress {
            iface: a,
            addr: IpNet::V4(hvnet_vf::Ipv4Net::new([10, 0, 0, (n % 8) as u8].into(), 24)),
        },
        7 => Op::RemoveAddress {
            iface: a,
            addr: IpNet::V4(hvnet_vf::Ipv4Net::new([10, 0, 0, (n % 8) as u8].into(), 24)),
        },
        8 => Op::StartDhcp {
            iface: a,
            sync: flag,
        },
        9 => Op::StopDhcp {
            iface: a,
            pid: 100 + u32::from(n % 5),
        },
        10 => Op::SetAggregateProto {
            aggregate: a,
            proto: AggregateProto::Failover,
        },
        11 => Op::AddAddress {
            iface: a,
            addr: IpNet::V6(hvnet_vf::Ipv6Net::new("fe80::1".parse().unwrap(), 64)),
        },
        12 => Op::StartDaemon {
            daemon: hvnet_vf::Daemon::Kvp,
        },
        _ => Op::SteerOn {
            synthetic: a,
            vf: b,
        },
    }
}

fn host_event(w: &mut World, now: Duration, k: u8) {
    match k % 5 {
        0 => {
            let _ = w.host_offer_vf(now, "hn0", &VfOffer::default());
        }
        1 => {
            let o = VfOffer {
                family: "mlx4en".into(),
                ..Default::default()
            };
            let _ = w.host_offer_vf(now, "hn0", &o);
        }
        2 => {
            w.host_revoke_begin("hn0");
            let _ = w.host_vf_detach(now, "hn0");
        }
        3 => {
            w.host_surprise_begin(now, "hn0");
        }
        _ => {
            // Let every pending timer fire.
            let mut ts: Vec<_> = std::mem::take(&mut w.timers);
            ts.sort();
            for (t, timer) in ts {
                match timer {
                    Timer::LinkQuery { hn } => w.link_query_done(t, &hn),
                    Timer::XpntInit { hn, vf } => w.xpnt_init_task(t, &hn, &vf),
                    Timer::Dhcp { pid } => w.dhcp_timer(t, pid),
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn random_ops_keep_the_model_consistent(
        transparent in any::<bool>(),
        steps in proptest::collection::vec((op_strategy(), 0u8..12), 1..60),
    ) {
        let mut w = World::new(transparent);
        w.attach_loopback();
        let mac = Mac([0, 0x15, 0x5d, 0, 0, 1]);
        w.host_add_nic("hn0", mac);
        w.attach_hn(Duration::ZERO, "hn0", mac).unwrap();
        w.create_device("hv_kvp_dev");
        let mut faults = Faults::new(FaultConfig::default(), 1);
        for (i, ((k, a, b, flag, n), h)) in steps.into_iter().enumerate() {
            let now = Duration::from_millis(i as u64 * 100);
            if h < 5 {
                host_event(&mut w, now, h);
            }
            let mut be = SimBackend::new(&mut w, now, &mut faults);
            let _ = be.apply(&make_op(k, a, b, flag, n));
            let view = be.observe().unwrap();
            // Every lagg port exists and points back at its lagg.
            for i in &view.interfaces {
                if let Some(agg) = &i.aggregate {
                    for p in &agg.ports {
                        let pi = view.interface(p).expect("port exists");
                        prop_assert_eq!(pi.member_of.as_deref(), Some(i.name.as_str()));
                    }
                    if let Some(pr) = &agg.primary {
                        prop_assert!(agg.ports.contains(pr));
                    }
                    if let Some(ac) = &agg.active {
                        prop_assert!(agg.ports.contains(ac));
                    }
                }
            }
            // The kernel's VF map only names existing VFs paired by MAC.
            for (vf, hn) in &view.platform.vf_map {
                prop_assert!(view.interface(vf).is_some_and(|i| i.is_vf()));
                prop_assert_eq!(hn.as_str(), "hn0");
            }
            // Traffic fates are always computable.
            let a: std::net::IpAddr = "10.0.0.4".parse().unwrap();
            let _ = (w.inbound_fate(a), w.outbound_fate(a));
            let _ = hvnet_sim::invariants::violations(&w);
        }
    }
}
