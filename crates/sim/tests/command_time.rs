//! Commands take time: a guest program's changes land one after another, and the traffic
//! meets every state in between — so moving an address through a moment where no interface
//! holds it loses packets and breaks the connection, as it does on a real system.

use std::time::Duration;

use hvnet_sim::{AgentFactory, GuestAgent, RunOptions, Sim, Summary};
use hvnet_vf::{AggregateProto, Backend, IpNet, Op};

const SCENARIO: &str = "mode non-transparent
duration 20s
rc ifconfig_hn0=\"inet 10.0.0.4/24\"
dhcp off
traffic rate 10000
";

/// Moves hn0's address to a new lagg0 at 10 s, with the ops in the given order.
struct Mover {
    ops: Vec<Op>,
    done: bool,
}

impl GuestAgent for Mover {
    fn name(&self) -> &str {
        "mover"
    }

    fn on_devctl(&mut self, _now: Duration, _line: &str, _backend: &mut dyn Backend) {}

    fn on_timer(&mut self, _now: Duration, backend: &mut dyn Backend) {
        for op in &self.ops {
            backend.apply(op).unwrap();
        }
        self.done = true;
    }

    fn next_wakeup(&self) -> Option<Duration> {
        (!self.done).then_some(Duration::from_secs(10))
    }
}

fn ops(break_before_make: bool) -> Vec<Op> {
    let addr: IpNet = "10.0.0.4/24".parse().unwrap();
    let remove = Op::RemoveAddress {
        iface: "hn0".into(),
        addr,
    };
    let add = Op::AddAddress {
        iface: "lagg0".into(),
        addr,
    };
    let port = Op::AddPort {
        aggregate: "lagg0".into(),
        port: "hn0".into(),
    };
    let up = Op::SetAdmin {
        iface: "lagg0".into(),
        up: true,
    };
    let mut v = vec![
        Op::CreateAggregate {
            name: "lagg0".into(),
        },
        Op::SetAggregateProto {
            aggregate: "lagg0".into(),
            proto: AggregateProto::Failover,
        },
    ];
    if break_before_make {
        v.extend([remove, port, up, add]);
    } else {
        v.extend([up, add, port, remove]);
    }
    v
}

fn run(break_before_make: bool, command: Option<Duration>) -> Summary {
    let sc = hvnet_sim::parse("move.scn", SCENARIO).unwrap();
    let factory: AgentFactory = Box::new(move |_| {
        Box::new(Mover {
            ops: ops(break_before_make),
            done: false,
        })
    });
    let mut sim = Sim::new(sc, RunOptions::default(), factory, Vec::new()).unwrap();
    if let Some(d) = command {
        sim.set_command_time(d);
    }
    let r = sim.run();
    assert!(r.world.ifnet("lagg0").unwrap().ipv4.len() == 1);
    r.summary
}

#[test]
fn an_address_gap_between_commands_costs_packets() {
    // Three commands (add the port, lagg0 up, the address) ran while no interface held the
    // address: 3 ms at 10,000 packets a second each way.
    let gap = run(true, None);
    assert_eq!(gap.packets.lost, 60, "{gap:?}");
    assert_eq!(gap.packets.lost_by_reason.get("no_address"), Some(&60));
    assert_eq!(gap.connections_broken, 1);
    // The same move, make before break: nothing lost.
    let mbb = run(false, None);
    assert_eq!(mbb.packets.lost, 0, "{mbb:?}");
    assert_eq!(mbb.connections_broken, 0);
    // Instantaneous commands would hide the gap's cost (what the simulator did before).
    let instant = run(true, Some(Duration::ZERO));
    assert_eq!(instant.packets.lost, 0, "{instant:?}");
}
