//! Each modelled kernel rule against spec hn.md §1 and §5: pairing, both hn
//! modes, devctl event order, sysctl formats, lagg failover.

use std::time::Duration;

use hvnet_sim::host::VfOffer;
use hvnet_sim::world::World;
use hvnet_sim::{DropReason, Fate, KernelError, Path};
use hvnet_vf::{IpNet, Mac};

const T0: Duration = Duration::ZERO;

fn s(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn mac(last: u8) -> Mac {
    Mac([0x00, 0x15, 0x5d, 0, 0, last])
}

/// A guest with hn0 (and hn1) attached and their host NICs.
fn guest(transparent: bool, nics: u8) -> World {
    let mut w = World::new(transparent);
    w.attach_loopback();
    for u in 0..nics {
        let hn = format!("hn{u}");
        w.host_add_nic(&hn, mac(u + 1));
        w.attach_hn(T0, &hn, mac(u + 1)).unwrap();
        w.link_query_done(T0, &hn);
    }
    w.run_link_tasks(T0);
    w.devctl.clear();
    w.timers.clear();
    w
}

fn offer(w: &mut World, hn: &str, family: &str) -> String {
    let o = VfOffer {
        family: family.into(),
        ..Default::default()
    };
    w.host_offer_vf(T0, hn, &o).unwrap()
}

fn fire_timers(w: &mut World, until: Duration) {
    loop {
        let mut due: Vec<_> = w
            .timers
            .iter()
            .filter(|(t, _)| *t <= until)
            .cloned()
            .collect();
        if due.is_empty() {
            return;
        }
        due.sort();
        w.timers.retain(|(t, _)| *t > until);
        for (t, timer) in due {
            match timer {
                hvnet_sim::world::Timer::LinkQuery { hn } => w.link_query_done(t, &hn),
                hvnet_sim::world::Timer::XpntInit { hn, vf } => w.xpnt_init_task(t, &hn, &vf),
                hvnet_sim::world::Timer::Dhcp { pid } => w.dhcp_timer(t, pid),
            }
            w.run_link_tasks(t);
        }
    }
}

fn ip(a: &str) -> IpNet {
    a.parse().unwrap()
}

// ---- pairing (§1.3) ----

#[test]
fn vf_pairs_by_mac_and_sysctls_use_exact_formats() {
    let mut w = guest(true, 2);
    assert_eq!(w.sysctl_get("hw.hn.vflist").unwrap(), "");
    assert_eq!(w.sysctl_get("hw.hn.vfmap").unwrap(), "");
    assert_eq!(w.sysctl_get("dev.hn.0.vf").unwrap(), "");
    let v1 = offer(&mut w, "hn1", "mlx5en");
    let v0 = offer(&mut w, "hn0", "mlx5en");
    assert_eq!((v1.as_str(), v0.as_str()), ("mce0", "mce1"));
    // ifindex order: mce0 (hn1's VF) attached first.
    assert_eq!(w.sysctl_get("hw.hn.vflist").unwrap(), "mce0 mce1");
    assert_eq!(w.sysctl_get("hw.hn.vfmap").unwrap(), "mce0:hn1 mce1:hn0");
    assert_eq!(w.sysctl_get("dev.hn.0.vf").unwrap(), "mce1");
    assert_eq!(w.sysctl_get("dev.hn.1.vf").unwrap(), "mce0");
}

#[test]
fn a_vf_with_another_mac_is_not_paired() {
    let mut w = guest(true, 1);
    let o = VfOffer {
        mac: Some(mac(0x99)),
        ..Default::default()
    };
    w.host_offer_vf(T0, "hn0", &o).unwrap();
    assert_eq!(w.sysctl_get("hw.hn.vflist").unwrap(), "");
    assert!(!w.hn_ismyvf("hn0", "mce0"));
}

#[test]
fn lagg_with_the_same_mac_is_never_a_vf_and_port_membership_keeps_pairing() {
    let mut w = guest(false, 1);
    let vf = offer(&mut w, "hn0", "mlx4en");
    assert_eq!(vf, "mlxen0");
    w.create_lagg(T0, "lagg0").unwrap();
    w.add_port(T0, "lagg0", "hn0").unwrap();
    w.add_port(T0, "lagg0", "mlxen0").unwrap();
    assert_eq!(w.ifnet("lagg0").unwrap().mac, mac(1));
    assert!(
        !w.hn_ismyvf("hn0", "lagg0"),
        "lagg is excluded by driver name"
    );
    assert!(
        w.hn_ismyvf("hn0", "mlxen0"),
        "alloctype, not type, is checked"
    );
    assert_eq!(w.sysctl_get("hw.hn.vfmap").unwrap(), "mlxen0:hn0");
}

#[test]
fn second_matching_vf_is_ignored_first_one_kept() {
    let mut w = guest(true, 1);
    offer(&mut w, "hn0", "mlx5en");
    // A second ifnet with the same MAC (another driver instance).
    let hw = hvnet_sim::world::VfHw {
        family: "mlx4en".into(),
        hw_ok: true,
        uses_if_start: false,
        max_mtu: 9000,
    };
    w.attach_vf(T0, "mlxen", mac(1), hw).unwrap();
    assert_eq!(w.sysctl_get("dev.hn.0.vf").unwrap(), "mce0");
    assert_eq!(w.sysctl_get("hw.hn.vflist").unwrap(), "mce0");
    assert!(
        w.log.iter().any(|l| l == "hn0: mce0 was attached as VF"),
        "{:?}",
        w.log
    );
}

#[test]
fn vf_attached_before_hn_is_never_paired() {
    let mut w = World::new(true);
    w.attach_loopback();
    w.host_add_nic("hn0", mac(1));
    w.host_offer_vf(T0, "hn0", &VfOffer::default()).unwrap();
    w.attach_hn(s(1), "hn0", mac(1)).unwrap();
    assert_eq!(w.sysctl_get("hw.hn.vflist").unwrap(), "");
    assert_eq!(w.sysctl_get("dev.hn.0.vf").unwrap(), "");
}

#[test]
fn transparent_refuses_if_start_drivers() {
    let mut w = guest(true, 1);
    let o = VfOffer {
        family: "ixv".into(),
        uses_if_start: true,
        ..Default::default()
    };
    w.host_offer_vf(T0, "hn0", &o).unwrap();
    assert_eq!(w.sysctl_get("hw.hn.vflist").unwrap(), "");
    assert!(w.log.iter().any(|l| l.contains("uses if_start")));
    // Non-transparent accepts it.
    let mut w = guest(false, 1);
    w.host_offer_vf(T0, "hn0", &o).unwrap();
    assert_eq!(w.sysctl_get("hw.hn.vflist").unwrap(), "ixv0");
}

// ---- devctl order (§1.7, §1.8) ----

#[test]
fn vf_attach_emits_ifnet_attach_then_ethernet_ifattach_with_vflist_ready() {
    let mut w = guest(false, 1);
    offer(&mut w, "hn0", "mlx5en");
    assert_eq!(
        w.devctl,
        vec![
            "!system=IFNET subsystem=mce0 type=ATTACH",
            "!system=ETHERNET subsystem=mce0 type=IFATTACH",
        ]
    );
    assert_eq!(w.sysctl_get("hw.hn.vflist").unwrap(), "mce0");
}

#[test]
fn non_transparent_vf_up_and_down_sequence() {
    let mut w = guest(false, 1);
    w.set_admin(T0, "hn0", true).unwrap();
    offer(&mut w, "hn0", "mlx5en");
    w.devctl.clear();
    // Attach alone activates nothing.
    assert!(!w.ifnet("mce0").unwrap().up);
    assert_eq!(w.sysctl_get("dev.hn.0.rxvf").unwrap(), "");
    assert!(w.ifnet("hn0").unwrap().link);
    assert!(w.sysctl_get("dev.hn.0.vf_xpnt_enabled").is_err());

    w.set_admin(s(2), "mce0", true).unwrap();
    // VF_UP is emitted synchronously; link changes come from the link task.
    assert_eq!(
        w.devctl,
        vec!["!system=HYPERV_NIC_VF subsystem=hn0 type=VF_UP"]
    );
    assert!(
        !w.ifnet("hn0").unwrap().link,
        "the state itself changed at once"
    );
    w.run_link_tasks(s(2));
    assert_eq!(
        w.devctl,
        vec![
            "!system=HYPERV_NIC_VF subsystem=hn0 type=VF_UP",
            "!system=IFNET subsystem=mce0 type=LINK_UP",
            "!system=IFNET subsystem=hn0 type=LINK_DOWN",
        ]
    );
    assert_eq!(w.sysctl_get("dev.hn.0.rxvf").unwrap(), "mce0");
    assert_eq!(w.sysctl_get("dev.hn.0.rxfilter").unwrap(), "0x20");
    assert_eq!(w.nvs_datapath.last(), Some(&("hn0".to_string(), true)));
    assert_eq!(
        w.sysctl_set("dev.hn.0.rss_key", "x"),
        Err(KernelError::Busy("dev.hn.0.rss_key".into()))
    );

    w.devctl.clear();
    w.set_admin(s(3), "mce0", false).unwrap();
    w.run_link_tasks(s(3));
    assert_eq!(
        w.devctl,
        vec![
            "!system=HYPERV_NIC_VF subsystem=hn0 type=VF_DOWN",
            "!system=IFNET subsystem=mce0 type=LINK_DOWN",
        ]
    );
    assert_eq!(w.nvs_datapath.last(), Some(&("hn0".to_string(), false)));
    // Link management resumes asynchronously: hn0 is still down now.
    assert!(!w.ifnet("hn0").unwrap().link);
    fire_timers(&mut w, s(4));
    assert!(w.ifnet("hn0").unwrap().link);
    assert_eq!(
        w.devctl.last().unwrap(),
        "!system=IFNET subsystem=hn0 type=LINK_UP"
    );
}

#[test]
fn non_transparent_address_on_vf_activates_without_if_up() {
    let mut w = guest(false, 1);
    offer(&mut w, "hn0", "mlx5en");
    w.add_address(T0, "mce0", ip("192.0.2.9/24")).unwrap();
    assert_eq!(w.sysctl_get("dev.hn.0.rxvf").unwrap(), "mce0");
    assert!(w
        .devctl
        .iter()
        .any(|l| l == "!system=HYPERV_NIC_VF subsystem=hn0 type=VF_UP"));
}

#[test]
fn non_transparent_vf_detach_order() {
    let mut w = guest(false, 1);
    w.set_admin(T0, "hn0", true).unwrap();
    offer(&mut w, "hn0", "mlx5en");
    w.set_admin(T0, "mce0", true).unwrap();
    w.create_lagg(T0, "lagg0").unwrap();
    w.add_port(T0, "lagg0", "hn0").unwrap();
    w.add_port(T0, "lagg0", "mce0").unwrap();
    w.set_admin(T0, "lagg0", true).unwrap();
    w.run_link_tasks(T0);
    w.devctl.clear();
    w.host_revoke_begin("hn0");
    w.host_vf_detach(s(1), "hn0").unwrap();
    w.run_link_tasks(s(1));
    assert_eq!(
        w.devctl,
        vec![
            "!system=HYPERV_NIC_VF subsystem=hn0 type=VF_DOWN",
            "!system=IFNET subsystem=mce0 type=DETACH",
            "!system=IFNET subsystem=lagg0 type=LINK_DOWN",
        ]
    );
    assert_eq!(w.sysctl_get("hw.hn.vflist").unwrap(), "");
    assert_eq!(w.sysctl_get("dev.hn.0.vf").unwrap(), "");
    let l = w.ifnet("lagg0").unwrap().lagg.clone().unwrap();
    assert_eq!(l.ports, vec!["hn0"]);
    fire_timers(&mut w, s(2));
    assert_eq!(
        &w.devctl[3..],
        &[
            "!system=IFNET subsystem=hn0 type=LINK_UP",
            "!system=IFNET subsystem=lagg0 type=LINK_UP",
        ]
    );
}

// ---- transparent mode (§1.6) ----

#[test]
fn transparent_attach_wait_then_enable_if_hn_running() {
    let mut w = guest(true, 1);
    w.set_admin(T0, "hn0", true).unwrap();
    offer(&mut w, "hn0", "mlx5en");
    assert_eq!(w.sysctl_get("dev.hn.0.vf").unwrap(), "mce0");
    assert_eq!(w.sysctl_get("dev.hn.0.vf_xpnt_enabled").unwrap(), "0");
    assert!(w.sysctl_get("dev.hn.0.rxvf").is_err());
    fire_timers(&mut w, Duration::from_millis(1999));
    assert_eq!(w.sysctl_get("dev.hn.0.vf_xpnt_enabled").unwrap(), "0");
    fire_timers(&mut w, s(2));
    assert_eq!(w.sysctl_get("dev.hn.0.vf_xpnt_enabled").unwrap(), "1");
    assert!(w.ifnet("mce0").unwrap().up, "hn forces the VF up");
    assert_eq!(w.nvs_datapath, vec![("hn0".to_string(), true)]);
    assert!(!w.devctl.iter().any(|l| l.contains("HYPERV_NIC_VF")));
}

#[test]
fn transparent_vf_waits_for_hn_up_and_hn_down_switches_synthetic_first() {
    let mut w = guest(true, 1);
    offer(&mut w, "hn0", "mlx5en");
    fire_timers(&mut w, s(5));
    assert_eq!(w.sysctl_get("dev.hn.0.vf_xpnt_enabled").unwrap(), "0");
    assert!(
        !w.ifnet("mce0").unwrap().up,
        "ready only; hn is not running"
    );
    w.set_admin(s(6), "hn0", true).unwrap();
    assert_eq!(w.sysctl_get("dev.hn.0.vf_xpnt_enabled").unwrap(), "1");
    w.set_admin(s(7), "hn0", false).unwrap();
    assert_eq!(w.sysctl_get("dev.hn.0.vf_xpnt_enabled").unwrap(), "0");
    assert_eq!(w.nvs_datapath.last(), Some(&("hn0".to_string(), false)));
    assert!(!w.ifnet("mce0").unwrap().up);
}

#[test]
fn transparent_hn_link_follows_the_vf_and_resumes_after_detach() {
    let mut w = guest(true, 1);
    w.set_admin(T0, "hn0", true).unwrap();
    offer(&mut w, "hn0", "mlx5en");
    fire_timers(&mut w, s(2));
    w.devctl.clear();
    w.host_surprise_begin(s(3), "hn0");
    w.run_link_tasks(s(3));
    assert_eq!(
        w.devctl,
        vec![
            "!system=IFNET subsystem=mce0 type=LINK_DOWN",
            "!system=IFNET subsystem=hn0 type=LINK_DOWN",
        ]
    );
    w.host_vf_detach(s(3), "hn0").unwrap();
    assert_eq!(w.nvs_datapath.last(), Some(&("hn0".to_string(), false)));
    assert!(!w.ifnet("hn0").unwrap().link);
    fire_timers(&mut w, s(4));
    assert!(w.ifnet("hn0").unwrap().link);
}

#[test]
fn attwait_clamped_at_boot_only_and_mode_is_read_only() {
    let mut w = World::new(true);
    w.set_tunable("hw.hn.vf_xpnt_attwait", "0").unwrap();
    assert_eq!(w.sysctl_get("hw.hn.vf_xpnt_attwait").unwrap(), "2");
    w.sysctl_set("hw.hn.vf_xpnt_attwait", "1").unwrap();
    assert_eq!(w.sysctl_get("hw.hn.vf_xpnt_attwait").unwrap(), "1");
    assert!(matches!(
        w.sysctl_set("hw.hn.vf_transparent", "0"),
        Err(KernelError::NotPermitted(_))
    ));
    w.set_tunable("hw.hn.vf_transparent", "0").unwrap();
    assert_eq!(w.sysctl_get("hw.hn.vf_transparent").unwrap(), "0");
}

// ---- lagg failover (§5) ----

fn nt_lagg() -> World {
    let mut w = guest(false, 1);
    w.set_admin(T0, "hn0", true).unwrap();
    offer(&mut w, "hn0", "mlx5en");
    w.create_lagg(T0, "lagg0").unwrap();
    w
}

#[test]
fn primary_is_first_added_ports_sorted_by_index() {
    let mut w = nt_lagg();
    // Add the VF (higher index) first: it becomes primary; list stays sorted.
    w.add_port(T0, "lagg0", "mce0").unwrap();
    w.add_port(T0, "lagg0", "hn0").unwrap();
    let l = w.ifnet("lagg0").unwrap().lagg.clone().unwrap();
    assert_eq!(l.ports, vec!["hn0", "mce0"]);
    assert_eq!(l.primary.as_deref(), Some("mce0"));
    // Removing the primary elects the first port of the list.
    w.remove_port(T0, "lagg0", "mce0").unwrap();
    let l = w.ifnet("lagg0").unwrap().lagg.clone().unwrap();
    assert_eq!(l.primary.as_deref(), Some("hn0"));
}

#[test]
fn port_add_checks() {
    let mut w = nt_lagg();
    w.add_port(T0, "lagg0", "hn0").unwrap();
    assert!(matches!(
        w.add_port(T0, "lagg0", "hn0"),
        Err(KernelError::Exists(_))
    ));
    assert!(matches!(
        w.add_port(T0, "lagg0", "lagg0"),
        Err(KernelError::Invalid(_))
    ));
    w.create_lagg(T0, "lagg1").unwrap();
    assert!(matches!(
        w.add_port(T0, "lagg1", "hn0"),
        Err(KernelError::Busy(_))
    ));
    assert!(matches!(
        w.add_port(T0, "lagg1", "lagg0"),
        Err(KernelError::Invalid(_))
    ));
    assert!(matches!(
        w.add_port(T0, "lagg1", "lo0"),
        Err(KernelError::ProtoNotSupported(_))
    ));
    assert!(matches!(
        w.create_lagg(T0, "lagg0"),
        Err(KernelError::Exists(_))
    ));
}

#[test]
fn port_mtu_forced_and_inet6_purged_ipv4_kept() {
    let mut w = nt_lagg();
    w.set_mtu(T0, "hn0", 4000).unwrap();
    w.add_address(T0, "mce0", ip("fe80::1/64")).unwrap();
    w.add_address(T0, "mce0", ip("2001:db8::9/64")).unwrap();
    w.add_address(T0, "mce0", ip("192.0.2.9/24")).unwrap();
    w.add_port(T0, "lagg0", "hn0").unwrap();
    assert_eq!(w.ifnet("lagg0").unwrap().mtu, 4000);
    w.add_port(T0, "lagg0", "mce0").unwrap();
    let v = w.ifnet("mce0").unwrap();
    assert_eq!(v.mtu, 4000);
    assert!(v.ipv6.is_empty());
    assert_eq!(v.ipv4.len(), 1);
}

#[test]
fn active_port_follows_link_pretence() {
    let mut w = nt_lagg();
    w.add_port(T0, "lagg0", "hn0").unwrap();
    w.add_port(T0, "lagg0", "mce0").unwrap();
    w.set_admin(T0, "lagg0", true).unwrap();
    assert_eq!(w.lagg_active_port("lagg0").as_deref(), Some("hn0"));
    // VF up: hn0 pretends link down, failover picks the VF.
    w.set_admin(T0, "mce0", true).unwrap();
    assert_eq!(w.lagg_active_port("lagg0").as_deref(), Some("mce0"));
    assert_eq!(w.laggport_flags("lagg0", "hn0"), vec!["MASTER"]);
    assert_eq!(
        w.laggport_flags("lagg0", "mce0"),
        vec!["ACTIVE", "COLLECTING", "DISTRIBUTING"]
    );
    // RX: the primary is always accepted; the active non-primary too
    // because the primary is not active.
    assert!(w.lagg_accepts_rx("lagg0", "hn0"));
    assert!(w.lagg_accepts_rx("lagg0", "mce0"));
    // VF down: back to hn0 once its link returns; until then no port.
    w.set_admin(s(1), "mce0", false).unwrap();
    assert_eq!(w.lagg_active_port("lagg0"), None);
    fire_timers(&mut w, s(2));
    assert_eq!(w.lagg_active_port("lagg0").as_deref(), Some("hn0"));
    assert!(!w.lagg_accepts_rx("lagg0", "mce0"));
    w.sysctl_set("net.link.lagg.failover_rx_all", "1").unwrap();
    assert!(w.lagg_accepts_rx("lagg0", "mce0"));
}

#[test]
fn traffic_paths_through_lagg() {
    let mut w = nt_lagg();
    w.add_port(T0, "lagg0", "hn0").unwrap();
    w.add_port(T0, "lagg0", "mce0").unwrap();
    w.set_admin(T0, "lagg0", true).unwrap();
    w.add_address(T0, "lagg0", ip("10.0.0.4/24")).unwrap();
    let a = "10.0.0.4".parse().unwrap();
    assert_eq!(w.outbound_fate(a), Fate::Delivered(Path::Hn));
    assert_eq!(w.inbound_fate(a), Fate::Delivered(Path::Hn));
    w.set_admin(T0, "mce0", true).unwrap();
    assert_eq!(w.outbound_fate(a), Fate::Delivered(Path::Vf));
    assert_eq!(w.inbound_fate(a), Fate::Delivered(Path::Vf));
    // Host revokes: RX via vmbus, redirected to the VF, accepted by lagg.
    w.host_revoke_begin("hn0");
    assert_eq!(w.inbound_fate(a), Fate::Delivered(Path::Hn));
    assert_eq!(w.outbound_fate(a), Fate::Delivered(Path::Vf));
    w.host_vf_detach(s(1), "hn0").unwrap();
    assert_eq!(w.outbound_fate(a), Fate::Dropped(DropReason::NoActivePort));
    fire_timers(&mut w, s(2));
    assert_eq!(w.outbound_fate(a), Fate::Delivered(Path::Hn));
    assert_eq!(w.inbound_fate(a), Fate::Delivered(Path::Hn));
}

#[test]
fn vf_up_without_lagg_loses_inbound_traffic_on_hn() {
    let mut w = guest(false, 1);
    w.add_address(T0, "hn0", ip("10.0.0.4/24")).unwrap();
    offer(&mut w, "hn0", "mlx5en");
    w.set_admin(T0, "mce0", true).unwrap();
    let a = "10.0.0.4".parse().unwrap();
    assert_eq!(w.inbound_fate(a), Fate::Dropped(DropReason::WrongInterface));
    assert_eq!(w.outbound_fate(a), Fate::Delivered(Path::Hn));
}

#[test]
fn vf_units_and_indexes_are_reused_after_detach() {
    let mut w = guest(true, 1);
    offer(&mut w, "hn0", "mlx4en");
    let idx = w.ifnet("mlxen0").unwrap().index;
    w.host_revoke_begin("hn0");
    w.host_vf_detach(T0, "hn0").unwrap();
    let name = offer(&mut w, "hn0", "mlx5en");
    assert_eq!(name, "mce0");
    assert_eq!(w.ifnet("mce0").unwrap().index, idx);
    assert_eq!(w.sysctl_get("hw.hn.vfmap").unwrap(), "mce0:hn0");
}

// ---- the userland surface (ifconfig/sysctl output scripts parse) ----

#[test]
fn ifconfig_and_sysctl_commands_as_hyperv_vfup_uses_them() {
    use hvnet_sim::guestcmd::run;
    let argv = |s: &str| s.split_whitespace().map(String::from).collect::<Vec<_>>();
    let mut w = guest(false, 1);
    w.set_admin(T0, "hn0", true).unwrap();
    w.add_address(T0, "hn0", ip("10.0.0.4/24")).unwrap();
    offer(&mut w, "hn0", "mlx5en");
    assert_eq!(run(&mut w, T0, &argv("ifconfig mce0 up")).status, 0);
    assert_eq!(
        run(&mut w, T0, &argv("sysctl -n dev.hn.0.vf")).stdout,
        "mce0\n"
    );
    assert_eq!(run(&mut w, T0, &argv("ifconfig lagg0")).status, 1);
    assert_eq!(run(&mut w, T0, &argv("ifconfig lagg0 create")).status, 0);
    let r = run(
        &mut w,
        T0,
        &argv("ifconfig lagg0 laggproto failover laggport hn0 laggport mce0"),
    );
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert_eq!(
        run(&mut w, T0, &argv("ifconfig lagg0 inet6 no_dad")).status,
        0
    );
    // The -alias loop ends when no address is left.
    assert_eq!(run(&mut w, T0, &argv("ifconfig hn0 -alias")).status, 0);
    assert_eq!(run(&mut w, T0, &argv("ifconfig hn0 -alias")).status, 1);
    let r = run(&mut w, T0, &argv("ifconfig lagg0 inet 10.0.0.4/24"));
    assert_eq!(r.status, 0, "{}", r.stderr);
    let show = run(&mut w, T0, &argv("ifconfig lagg0")).stdout;
    assert!(
        show.contains("\tinet 10.0.0.4 netmask 0xffffff00\n"),
        "{show}"
    );
    assert!(
        show.contains("\tlaggproto failover lagghash l2,l3,l4\n"),
        "{show}"
    );
    assert!(show.contains("\tlaggport: hn0 flags=1<MASTER>\n"), "{show}");
    assert!(
        show.contains("\tlaggport: mce0 flags=1c<ACTIVE,COLLECTING,DISTRIBUTING>\n"),
        "{show}"
    );
    let r = run(&mut w, T0, &argv("ifconfig lagg0 laggport hn0"));
    assert_eq!(r.status, 1);
    assert!(r.stderr.contains("SIOCSLAGGPORT"), "{}", r.stderr);
    assert_eq!(
        run(&mut w, T0, &argv("sysctl hw.hn.vf_transparent=1")).status,
        1,
        "read-only at run time"
    );
    assert_eq!(run(&mut w, T0, &argv("sysctl -n no.such.oid")).status, 1);
    assert_eq!(run(&mut w, T0, &argv("frobnicate")).status, 127);
}

#[test]
fn transparent_setready_syncs_mtu_or_resets_hn() {
    // The VF accepts hn's MTU.
    let mut w = guest(true, 1);
    w.set_mtu(T0, "hn0", 9000).unwrap();
    w.set_admin(T0, "hn0", true).unwrap();
    offer(&mut w, "hn0", "mlx5en");
    fire_timers(&mut w, s(2));
    assert_eq!(w.ifnet("mce0").unwrap().mtu, 9000);
    // A VF that cannot: hn falls back to 1500, the VF keeps its own.
    let mut w = guest(true, 1);
    w.set_mtu(T0, "hn0", 9000).unwrap();
    w.set_admin(T0, "hn0", true).unwrap();
    let o = VfOffer {
        max_mtu: 4000,
        ..Default::default()
    };
    w.host_offer_vf(T0, "hn0", &o).unwrap();
    fire_timers(&mut w, s(2));
    assert_eq!(w.ifnet("hn0").unwrap().mtu, 1500);
    assert_eq!(w.ifnet("mce0").unwrap().mtu, 1500);
    // Once ready, an hn MTU change goes to the VF first; a refusal aborts.
    assert!(w.set_mtu(T0, "hn0", 6000).is_err());
    assert_eq!(w.ifnet("hn0").unwrap().mtu, 1500);
    w.set_mtu(T0, "hn0", 4000).unwrap();
    assert_eq!(w.ifnet("mce0").unwrap().mtu, 4000);
}

// ---- moving an address to a lagg without a gap (issue 15 item 5) ----

#[test]
fn route_change_moves_a_route_to_another_interface_in_one_step() {
    use hvnet_sim::guestcmd::run;
    let argv = |s: &str| s.split_whitespace().map(String::from).collect::<Vec<_>>();
    let mut w = guest(false, 1);
    w.set_admin(T0, "hn0", true).unwrap();
    w.add_address(T0, "hn0", ip("10.0.0.4/24")).unwrap();
    assert_eq!(
        run(&mut w, T0, &argv("route -n add default 10.0.0.1")).status,
        0
    );
    w.create_lagg(T0, "lagg0").unwrap();
    // The gateway must be on-link through the new interface.
    let r = run(
        &mut w,
        T0,
        &argv("route -n change default 10.0.0.1 -ifp lagg0"),
    );
    assert_eq!(r.status, 1, "{}", r.stderr);
    w.add_address(T0, "lagg0", ip("10.0.0.4/24")).unwrap();
    let r = run(
        &mut w,
        T0,
        &argv("route -n change default 10.0.0.1 -ifp lagg0"),
    );
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "change net default: gateway 10.0.0.1\n");
    assert_eq!(w.routes.len(), 1);
    assert_eq!(w.routes[0].iface.as_deref(), Some("lagg0"));
    // Removing hn0's copy of the address leaves the moved route alone.
    w.remove_address(T0, "hn0", "10.0.0.4".parse().unwrap())
        .unwrap();
    assert_eq!(w.routes[0].iface.as_deref(), Some("lagg0"));
    let r = run(
        &mut w,
        T0,
        &argv("route -n change -net 192.168.0.0/16 10.0.0.1 -ifp lagg0"),
    );
    assert_eq!(r.status, 1);
    assert!(r.stderr.contains("not in table"), "{}", r.stderr);
    let r = run(
        &mut w,
        T0,
        &argv("route -n add -net 192.168.0.0/16 10.0.0.1 -ifp lagg0"),
    );
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert_eq!(w.routes[1].iface.as_deref(), Some("lagg0"));
}

#[test]
fn a_new_ports_ipv6_routes_go_with_its_inet6() {
    let mut w = guest(false, 1);
    w.set_admin(T0, "hn0", true).unwrap();
    w.add_address(T0, "hn0", ip("fe80::215:5dff:fe00:1/64"))
        .unwrap();
    w.add_address(T0, "hn0", ip("2001:db8::4/64")).unwrap();
    w.add_address(T0, "hn0", ip("10.0.0.4/24")).unwrap();
    for (d, g) in [("::/0", "2001:db8::1"), ("0.0.0.0/0", "10.0.0.1")] {
        w.add_route(&hvnet_vf::Route {
            dest: ip(d),
            gateway: Some(g.parse().unwrap()),
            iface: None,
        })
        .unwrap();
    }
    w.create_lagg(T0, "lagg0").unwrap();
    w.add_port(T0, "lagg0", "hn0").unwrap();
    let hn0 = w.ifnet("hn0").unwrap();
    assert!(hn0.ipv6.is_empty());
    assert_eq!(hn0.ipv4.len(), 1, "IPv4 stays on a new port");
    let dests: Vec<String> = w.routes.iter().map(|r| r.dest.to_string()).collect();
    assert_eq!(dests, ["0.0.0.0/0"]);
}

#[test]
fn an_address_on_its_way_to_the_lagg_is_no_duplicate() {
    let dup = |w: &World| {
        hvnet_sim::invariants::violations(w)
            .into_iter()
            .filter(|v| v.starts_with("duplicate-address"))
            .count()
    };
    let mut w = guest(false, 2);
    w.set_admin(T0, "hn0", true).unwrap();
    w.add_address(T0, "hn0", ip("10.0.0.4/24")).unwrap();
    w.create_lagg(T0, "lagg0").unwrap();
    // The lagg holds it before it has a port; hn0 keeps it until it is the port.
    w.add_address(T0, "lagg0", ip("10.0.0.4/24")).unwrap();
    assert_eq!(dup(&w), 0);
    w.add_port(T0, "lagg0", "hn0").unwrap();
    assert_eq!(dup(&w), 0);
    // Anywhere else it is one: on another NIC, or on a lagg hn0 is no port of.
    w.set_admin(T0, "hn1", true).unwrap();
    w.add_address(T0, "hn1", ip("10.0.0.4/24")).unwrap();
    assert!(dup(&w) > 0);
    let mut w = guest(false, 2);
    w.add_address(T0, "hn0", ip("10.0.0.4/24")).unwrap();
    w.create_lagg(T0, "lagg1").unwrap();
    w.add_port(T0, "lagg1", "hn1").unwrap();
    w.add_address(T0, "lagg1", ip("10.0.0.4/24")).unwrap();
    assert_eq!(dup(&w), 1);
}
