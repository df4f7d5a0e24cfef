use super::*;
use crate::report::Report;
use hvnet_vf::{
    DataPath, IfKind, Interface, Manager, ManagerConfig, MemoryBackend, ModeSetting, NetConfig,
};

/// The manager's steps through the recorder: the report's history (failovers, time without
/// the VF, since when), the recent actions, the metrics with the packet counters.
#[test]
fn pair_history_counts_failovers_and_time_without_vf() {
    let shared = SharedReport::default();
    let metrics = Metrics::default();
    let mut rec = Recorder::new(metrics.clone(), shared.clone(), None).with_packet_counters(
        Box::new(|iface| match iface {
            "hn0" => (Some(1234), Some(99)),
            _ => (None, None),
        }),
    );
    let mut m = Manager::new(
        ManagerConfig {
            mode: ModeSetting::Steered,
            ..Default::default()
        },
        Box::new(NetConfig::default()),
    );
    let mac = "00:15:5d:00:00:01".parse().unwrap();
    let mut b = MemoryBackend::default();
    b.view
        .interfaces
        .push(Interface::running("hn0", mac, IfKind::Synthetic));
    let mut now = Duration::ZERO;
    let mut step = |m: &mut Manager, rec: &mut Recorder, b: &mut MemoryBackend, to: Duration| {
        while now < to {
            let rep = m.step(now, b);
            rec.stepped(now, &rep);
            now += Duration::from_millis(100);
        }
    };
    step(&mut m, &mut rec, &mut b, Duration::from_secs(5));
    b.view.interfaces.push(Interface::running(
        "vf0",
        mac,
        IfKind::Vf {
            driver: "mlx5_core".into(),
        },
    ));
    step(&mut m, &mut rec, &mut b, Duration::from_secs(10));
    {
        let r = lock(&shared);
        assert_eq!(r.pairs[0].status.path, DataPath::Vf, "{r:?}");
        assert_eq!(r.pairs[0].failovers, 1);
        // hn from 0 until the VF was used (2 s delay after 5 s, plus a settle step).
        let without = r.pairs[0].without_vf_ms;
        assert!((7000..=7300).contains(&without), "{without}");
        assert!(r.actions_applied > 0);
        assert!(r.recent_actions.iter().all(|a| a.ok));
        assert_eq!(r.steps, 100);
    }
    b.view.interfaces.retain(|i| i.name != "vf0");
    step(&mut m, &mut rec, &mut b, Duration::from_secs(12));
    let r: Report = lock(&shared).clone();
    assert_eq!(r.pairs[0].status.path, DataPath::Synthetic);
    assert_eq!(r.pairs[0].failovers, 2);
    assert!(r.pairs[0].path_since_ms >= 10_000);
    assert_eq!(r.mode, Some(hvnet_vf::Mode::Steered));
    let text = hvnet_metrics::exposition(&metrics.registry());
    for want in [
        "hvnet_failovers_total{synthetic=\"hn0\"} 2",
        "hvnet_on_vf{synthetic=\"hn0\"} 0",
        "hvnet_reconcile_steps_total 120",
        "hvnet_interface_packets{interface=\"hn0\",direction=\"rx\"} 1234",
        "hvnet_interface_packets{interface=\"hn0\",direction=\"tx\"} 99",
    ] {
        assert!(text.contains(want), "{want} not in {text}");
    }
    assert!(!text.contains("interface=\"vf0\""), "{text}");
}

/// The history keeps the latest actions only, oldest first.
#[test]
fn the_report_keeps_the_latest_actions() {
    let shared = SharedReport::default();
    let mut rec = Recorder::new(Metrics::default(), shared.clone(), None);
    let mut m = Manager::new(ManagerConfig::default(), Box::new(NetConfig::default()));
    let mut b = MemoryBackend::default();
    // Every step starts the two helper daemons again (their devices exist, they never run).
    b.view.devices = ["hv_kvp_dev".to_string(), "hv_fsvss_dev".to_string()].into();
    for s in 0..100u64 {
        let now = Duration::from_secs(s * 100);
        let rep = m.step(now, &mut b);
        rec.stepped(now, &rep);
        b.view.daemons.clear();
    }
    let r = lock(&shared);
    assert_eq!(r.recent_actions.len(), crate::history::RECENT_ACTIONS);
    assert!(r.actions_applied > crate::history::RECENT_ACTIONS as u64);
    assert!(r
        .recent_actions
        .windows(2)
        .all(|w| w[0].at_ms <= w[1].at_ms));
}
