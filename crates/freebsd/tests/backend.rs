//! The FreeBSD Backend against a scripted runner: observe() from canned
//! command output, apply() as exact command lines.

use hvnet_freebsd::{FreeBsdBackend, Output, ScriptedRunner};
use hvnet_vf::backend::Cause;
use hvnet_vf::model::{AggregateProto, IfKind, IpNet, Op, Route};
use hvnet_vf::{Backend, BackendError, Daemon};

const IFCONFIG_A: &str = "\
lo0: flags=8049<UP,LOOPBACK,RUNNING,MULTICAST> metric 0 mtu 16384
\tinet 127.0.0.1 netmask 0xff000000
hn0: flags=8843<UP,BROADCAST,RUNNING,SIMPLEX,MULTICAST> metric 0 mtu 1500
\tether 00:0d:3a:12:34:56
\tinet6 fe80::20d:3aff:fe12:3456%hn0 prefixlen 64 scopeid 0x2
\tstatus: no carrier
mce0: flags=8843<UP,BROADCAST,RUNNING,SIMPLEX,MULTICAST> metric 0 mtu 1500
\tether 00:0d:3a:12:34:56
\tstatus: active
lagg0: flags=8843<UP,BROADCAST,RUNNING,SIMPLEX,MULTICAST> metric 0 mtu 1500
\tether 00:0d:3a:12:34:56
\tinet 10.0.0.4 netmask 0xffffff00 broadcast 10.0.0.255
\tlaggproto failover lagghash l2,l3,l4
\tlaggport: hn0 flags=1<MASTER>
\tlaggport: mce0 flags=4<ACTIVE>
\tgroups: lagg
\tstatus: active
vlan0: flags=8843<UP> metric 0 mtu 1500
\tether 00:0d:3a:12:34:56
hn0.100: flags=8843<UP> metric 0 mtu 1500
\tether 00:0d:3a:12:34:56
\tgroups: vlan
myvlan: flags=8843<UP> metric 0 mtu 1500
\tether 00:0d:3a:12:34:56
\tgroups: vlan
";

const NETSTAT: &str = "\
Routing tables

Internet:
Destination        Gateway            Flags     Netif Expire
default            10.0.0.1           UGS       lagg0
10.0.0.0/24        link#4             U         lagg0
127.0.0.1          link#1             UH          lo0

Internet6:
Destination                       Gateway                       Flags     Netif Expire
::1                               link#1                        UHS         lo0
fe80::%lo0/64                     link#1                        U           lo0
";

fn scripted() -> ScriptedRunner {
    let mut r = ScriptedRunner::new();
    r.strict = true;
    r.answer("ifconfig -a", Output::ok(IFCONFIG_A));
    r.answer("sysctl -n hw.hn.vf_transparent", Output::ok("0\n"));
    r.answer("sysctl -n hw.hn.vfmap", Output::ok("mce0:hn0\n"));
    r.answer("sysctl -n kern.osrelease", Output::ok("14.1-RELEASE\n"));
    r.answer("netstat -rn", Output::ok(NETSTAT));
    r.answer("pgrep -x hv_kvp_daemon", Output::ok("412\n"));
    r.answer("pgrep -x hv_vss_daemon", Output::failed(1, ""));
    r.answer("ps -p 777 -o comm=", Output::ok("dhclient\n"));
    r.answer("ps -p 778 -o comm=", Output::ok("sshd\n"));
    r.files.insert(
        "/var/run/dhclient/dhclient.lagg0.pid".into(),
        "777\n".into(),
    );
    r.files
        .insert("/var/run/dhclient/dhclient.hn0.pid".into(), "778\n".into());
    r.files.insert("/dev/hv_kvp_dev".into(), String::new());
    r
}

#[test]
fn observe_builds_the_system_view() {
    let mut b = FreeBsdBackend::new(scripted());
    let v = b.observe().unwrap();
    let names: Vec<&str> = v.interfaces.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(
        names,
        ["lo0", "hn0", "mce0", "lagg0", "vlan0", "hn0.100", "myvlan"]
    );
    let hn0 = v.interface("hn0").unwrap();
    assert_eq!(hn0.kind, IfKind::Synthetic);
    assert!(!hn0.link_up && hn0.admin_up && hn0.running);
    assert_eq!(hn0.member_of.as_deref(), Some("lagg0"));
    assert_eq!(hn0.mac.to_string(), "00:0d:3a:12:34:56");
    assert!(hn0.ipv6[0].is_link_local());
    let mce0 = v.interface("mce0").unwrap();
    assert_eq!(
        mce0.kind,
        IfKind::Vf {
            driver: "mce".into()
        }
    );
    assert!(mce0.link_up);
    let lagg = v.interface("lagg0").unwrap();
    assert_eq!(lagg.kind, IfKind::Aggregate);
    let agg = lagg.aggregate.as_ref().unwrap();
    assert_eq!(agg.proto, AggregateProto::Failover);
    assert_eq!(agg.ports, ["hn0", "mce0"]);
    assert_eq!(agg.primary.as_deref(), Some("hn0"));
    assert_eq!(agg.active.as_deref(), Some("mce0"));
    assert_eq!(lagg.ipv4[0].to_string(), "10.0.0.4/24");
    assert_eq!(
        v.interface("vlan0").unwrap().kind,
        IfKind::Other,
        "vlan with hn MAC is no VF"
    );
    assert_eq!(v.interface("lo0").unwrap().kind, IfKind::Other);
    assert!(v.interfaces.windows(2).all(|w| w[0].index < w[1].index));
    assert!(!v.platform.vf_transparent);
    assert_eq!(
        v.platform.vf_map.get("mce0").map(String::as_str),
        Some("hn0")
    );
    let default = v
        .routes
        .iter()
        .find(|r| r.dest == IpNet::default_v4())
        .unwrap();
    assert_eq!(default.gateway.unwrap().to_string(), "10.0.0.1");
    assert_eq!(default.iface.as_deref(), Some("lagg0"));
    assert!(v.routes.iter().any(|r| r.dest.to_string() == "fe80::/64"));
    // Only the live dhclient counts; hn0's pid file points at sshd.
    assert_eq!(v.dhcp_clients.len(), 1);
    assert_eq!(v.dhcp_clients[0].iface, "lagg0");
    assert_eq!(v.daemons.len(), 1);
    assert_eq!(v.daemons[0].daemon, Daemon::Kvp);
    assert!(v.has_device("hv_kvp_dev") && !v.has_device("hv_fsvss_dev"));
}

#[test]
fn the_transparent_tunable_is_read_once() {
    // hw.hn.vf_transparent is read-only at run time (CTLFLAG_RDTUN): one sysctl per backend.
    let mut b = FreeBsdBackend::new(scripted());
    for _ in 0..3 {
        assert!(!b.observe().unwrap().platform.vf_transparent);
    }
    let reads = |b: &FreeBsdBackend<ScriptedRunner>, label: &str| {
        b.runner.labels().iter().filter(|l| *l == label).count()
    };
    assert_eq!(reads(&b, "sysctl -n hw.hn.vf_transparent"), 1);
    assert_eq!(reads(&b, "ifconfig -a"), 3);
    // A kernel without the sysctl stays non-transparent, also asked once.
    let mut r = scripted();
    r.answer(
        "sysctl -n hw.hn.vf_transparent",
        Output::failed(1, "sysctl: unknown oid 'hw.hn.vf_transparent'"),
    );
    let mut b = FreeBsdBackend::new(r);
    assert!(!b.observe().unwrap().platform.vf_transparent);
    assert!(!b.observe().unwrap().platform.vf_transparent);
    assert_eq!(reads(&b, "sysctl -n hw.hn.vf_transparent"), 1);
}

#[test]
fn observe_without_hn_sysctls_pairs_by_mac_and_dev_hn_vf() {
    let mut r = scripted();
    r.answer(
        "sysctl -n hw.hn.vf_transparent",
        Output::failed(1, "unknown oid"),
    );
    r.answer("sysctl -n hw.hn.vfmap", Output::failed(1, "unknown oid"));
    r.answer("sysctl -n dev.hn.0.vf", Output::ok("\n"));
    let mut b = FreeBsdBackend::new(r);
    let v = b.observe().unwrap();
    assert!(!v.platform.vf_transparent);
    assert!(v.platform.vf_map.is_empty());
    assert!(
        v.interface("mce0").unwrap().is_vf(),
        "paired by MAC like hn_ismyvf"
    );
}

#[test]
fn observe_errors_name_the_command() {
    let mut r = scripted();
    r.answer("ifconfig -a", Output::ok("hn0: flags=zz<UP>\n"));
    let e = FreeBsdBackend::new(r).observe().unwrap_err();
    // The parser's own error is in the source chain: BackendError -> Cause -> ParseError.
    let parse = std::error::Error::source(&e).and_then(|c| c.source());
    assert!(
        parse.is_some_and(|p| p.is::<hvnet_freebsd::parse::ParseError>()),
        "{e:?}"
    );
    let e = e.to_string();
    assert!(e.starts_with("observe: ifconfig -a: line 1:"), "{e}");
    let mut r = scripted();
    r.answer("netstat -rn", Output::failed(1, "netstat: kvm"));
    let e = FreeBsdBackend::new(r).observe().unwrap_err().to_string();
    assert_eq!(
        e,
        "observe: netstat -rn: exited with status 1: netstat: kvm"
    );
}

/// Mutating commands are not scripted: they succeed silently.
fn apply_labels(mut r: ScriptedRunner, ops: &[Op]) -> (Vec<String>, Vec<Result<(), String>>) {
    r.strict = false;
    let mut b = FreeBsdBackend::new(r);
    let res = ops
        .iter()
        .map(|o| b.apply(o).map_err(|e| e.to_string()))
        .collect();
    let labels = b
        .runner
        .labels()
        .into_iter()
        .filter(|l| !l.starts_with("ifconfig lagg0") || l.split(' ').count() > 2)
        .collect();
    (labels, res)
}

#[test]
fn create_lagg_and_ports_are_idempotent() {
    let mut r = scripted();
    r.answer(
        "ifconfig lagg1",
        Output::failed(1, "ifconfig: interface lagg1 does not exist"),
    );
    r.answer(
        "ifconfig lagg0",
        Output::ok(
            &IFCONFIG_A[IFCONFIG_A.find("lagg0:").unwrap()..IFCONFIG_A.find("vlan0:").unwrap()],
        ),
    );
    let ops = [
        Op::CreateAggregate {
            name: "lagg1".into(),
        },
        Op::CreateAggregate {
            name: "lagg0".into(),
        },
        Op::SetAggregateProto {
            aggregate: "lagg0".into(),
            proto: AggregateProto::Failover,
        },
        Op::AddPort {
            aggregate: "lagg0".into(),
            port: "mce0".into(),
        },
        Op::AddPort {
            aggregate: "lagg0".into(),
            port: "mce1".into(),
        },
        Op::RemovePort {
            aggregate: "lagg0".into(),
            port: "mce0".into(),
        },
        Op::RemovePort {
            aggregate: "lagg0".into(),
            port: "mce9".into(),
        },
    ];
    let (labels, res) = apply_labels(r, &ops);
    assert!(res.iter().all(Result::is_ok), "{res:?}");
    let changes: Vec<&String> = labels
        .iter()
        .filter(|l| !l.starts_with("ifconfig lagg1") || l.ends_with("create"))
        .collect();
    assert_eq!(
        changes,
        [
            "ifconfig lagg1 create",
            "ifconfig lagg0 laggproto failover",
            "ifconfig lagg0 laggport mce1",
            "ifconfig lagg0 -laggport mce0",
        ]
    );
}

#[test]
fn addresses_mtu_admin_and_routes() {
    let mut r = scripted();
    r.answer(
        "ifconfig lagg0",
        Output::ok("lagg0: flags=8843<UP> mtu 1500\n\tinet 10.0.0.4 netmask 0xffffff00\n"),
    );
    r.answer_once(
        "route -n add default 10.0.0.1",
        Output::failed(1, "route: writing to routing socket: File exists"),
    );
    let ops = [
        Op::AddAddress {
            iface: "lagg0".into(),
            addr: "10.0.0.4/24".parse().unwrap(),
        },
        Op::AddAddress {
            iface: "lagg0".into(),
            addr: "10.0.0.9/32".parse().unwrap(),
        },
        Op::AddAddress {
            iface: "lagg0".into(),
            addr: "2001:db8::4/64".parse().unwrap(),
        },
        Op::RemoveAddress {
            iface: "lagg0".into(),
            addr: "10.0.0.4/24".parse().unwrap(),
        },
        Op::RemoveAddress {
            iface: "lagg0".into(),
            addr: "10.9.9.9/24".parse().unwrap(),
        },
        Op::SetMtu {
            iface: "mce0".into(),
            mtu: 9000,
        },
        Op::SetAdmin {
            iface: "mce0".into(),
            up: true,
        },
        Op::SetAdmin {
            iface: "hn0".into(),
            up: false,
        },
        Op::AddRoute {
            route: Route {
                dest: IpNet::default_v4(),
                gateway: Some("10.0.0.1".parse().unwrap()),
                iface: Some("lagg0".into()),
            },
        },
        Op::AddRoute {
            route: Route {
                dest: "10.5.0.0/16".parse().unwrap(),
                gateway: None,
                iface: Some("lagg0".into()),
            },
        },
        Op::AddRoute {
            route: Route {
                dest: "2001:db8:9::/48".parse().unwrap(),
                gateway: Some("fe80::1".parse().unwrap()),
                iface: Some("lagg0".into()),
            },
        },
        Op::RemoveRoute {
            route: Route {
                dest: "10.0.0.7/32".parse().unwrap(),
                gateway: None,
                iface: None,
            },
        },
    ];
    let (labels, res) = apply_labels(r, &ops);
    assert!(res.iter().all(Result::is_ok), "{res:?}");
    let changes: Vec<&str> = labels
        .iter()
        .map(String::as_str)
        .filter(|l| *l != "ifconfig lagg0")
        .collect();
    assert_eq!(
        changes,
        [
            "ifconfig lagg0 inet 10.0.0.9/32 alias",
            "ifconfig lagg0 inet6 2001:db8::4 prefixlen 64 alias",
            "ifconfig lagg0 inet 10.0.0.4 -alias",
            "ifconfig mce0 mtu 9000",
            "ifconfig mce0 up",
            "ifconfig hn0 down",
            "route -n add default 10.0.0.1",
            "route -n add -net 10.5.0.0/16 -interface lagg0",
            "route -n add -inet6 -net 2001:db8:9::/48 fe80::1%lagg0",
            "route -n delete -host 10.0.0.7",
        ]
    );
}

#[test]
fn a_new_lagg_skips_dad_and_routes_move_in_one_command() {
    let mut r = scripted();
    r.answer(
        "ifconfig lagg1",
        Output::failed(1, "ifconfig: interface lagg1 does not exist"),
    );
    r.answer_once(
        "route -n change -inet6 default 2001:db8::1 -ifp lagg1",
        Output::failed(
            1,
            "route: writing to routing socket: No such process\nchange net default: gateway 2001:db8::1 fib 0: not in table",
        ),
    );
    let dflt = Route {
        dest: IpNet::default_v4(),
        gateway: Some("10.0.0.1".parse().unwrap()),
        iface: Some("hn0".into()),
    };
    let ops = [
        Op::CreateAggregate {
            name: "lagg1".into(),
        },
        Op::MoveRoute {
            route: dflt,
            to: "lagg1".into(),
        },
        Op::MoveRoute {
            route: Route {
                dest: "10.5.0.0/16".parse().unwrap(),
                gateway: None,
                iface: Some("hn0".into()),
            },
            to: "lagg1".into(),
        },
        // Gone meanwhile (the kernel flushed it): added where it belongs.
        Op::MoveRoute {
            route: Route {
                dest: IpNet::default_v6(),
                gateway: Some("2001:db8::1".parse().unwrap()),
                iface: Some("hn0".into()),
            },
            to: "lagg1".into(),
        },
    ];
    let (labels, res) = apply_labels(r, &ops);
    assert!(res.iter().all(Result::is_ok), "{res:?}");
    let changes: Vec<&str> = labels
        .iter()
        .map(String::as_str)
        .filter(|l| *l != "ifconfig lagg1")
        .collect();
    assert_eq!(
        changes,
        [
            "ifconfig lagg1 create",
            "ifconfig lagg1 inet6 no_dad",
            "route -n change default 10.0.0.1 -ifp lagg1",
            "route -n change -net 10.5.0.0/16 -interface lagg1",
            "route -n change -inet6 default 2001:db8::1 -ifp lagg1",
            "route -n add -inet6 default 2001:db8::1 -ifp lagg1",
        ]
    );
}

#[test]
fn dhcp_and_daemons_by_pid() {
    let mut r = scripted();
    let ops = [
        Op::StartDhcp {
            iface: "lagg0".into(),
            sync: true,
        },
        Op::StartDhcp {
            iface: "hn1".into(),
            sync: true,
        },
        Op::StopDhcp {
            iface: "lagg0".into(),
            pid: 777,
        },
        Op::StopDhcp {
            iface: "hn0".into(),
            pid: 778,
        },
        Op::StartDaemon {
            daemon: Daemon::Kvp,
        },
        Op::StartDaemon {
            daemon: Daemon::Vss,
        },
        Op::StopDaemon {
            daemon: Daemon::Kvp,
            pid: 412,
        },
    ];
    r.answer("ps -p 412 -o comm=", Output::ok("hv_kvp_daemon\n"));
    r.strict = false;
    let mut b = FreeBsdBackend::new(r);
    b.dhclient_flags = vec!["-q".into()];
    for o in &ops {
        b.apply(o).unwrap();
    }
    let changes: Vec<String> = b
        .runner
        .labels()
        .into_iter()
        .filter(|l| !l.starts_with("ps ") && !l.starts_with("pgrep ") && !l.starts_with("sysctl "))
        .collect();
    assert_eq!(
        changes,
        [
            "dhclient -b -q hn1",
            "kill -TERM 777",
            "hv_vss_daemon",
            "kill -TERM 412",
        ]
    );
}

#[test]
fn failures_and_unsupported_ops() {
    let mut r = scripted();
    r.answer(
        "ifconfig mce0 mtu 9000",
        Output::failed(
            1,
            "ifconfig: ioctl SIOCSIFMTU (set mtu): Invalid argument\n",
        ),
    );
    r.answer("ifconfig lagg5", Output::failed(1, "does not exist"));
    let mut b = FreeBsdBackend::new(r);
    let e = b
        .apply(&Op::SetMtu {
            iface: "mce0".into(),
            mtu: 9000,
        })
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "set_mtu on mce0: ifconfig mce0 mtu 9000: exited with status 1: ifconfig: ioctl SIOCSIFMTU (set mtu): Invalid argument"
    );
    assert!(
        matches!(
            &e,
            BackendError::Apply {
                source: Cause::Command { status: 1, .. },
                ..
            }
        ),
        "{e:?}"
    );
    let e = b
        .apply(&Op::AddPort {
            aggregate: "lagg5".into(),
            port: "mce0".into(),
        })
        .unwrap_err();
    assert!(e.to_string().contains("lagg5 does not exist"));
    assert!(
        matches!(&e, BackendError::Apply { source: Cause::NoSuchInterface(i), .. } if i == "lagg5"),
        "{e:?}"
    );
    let e = b
        .apply(&Op::SteerOn {
            synthetic: "hn0".into(),
            vf: "mce0".into(),
        })
        .unwrap_err();
    assert!(matches!(e, BackendError::Unsupported { .. }), "{e}");
}

#[test]
fn dhclient_flags_come_from_rc_conf_per_interface() {
    let mut r = scripted();
    r.strict = false;
    let mut b = FreeBsdBackend::new(r);
    b.rc = Some(hvnet_rcconf::RcConf::from_text(
        "/etc/rc.conf",
        "dhclient_flags=\"-q\"\ndhclient_flags_lagg1=\"-n\"\n",
    ));
    b.apply(&Op::StartDhcp {
        iface: "lagg1".into(),
        sync: false,
    })
    .unwrap();
    b.apply(&Op::StartDhcp {
        iface: "hn3".into(),
        sync: false,
    })
    .unwrap();
    let starts: Vec<String> = b
        .runner
        .labels()
        .into_iter()
        .filter(|l| l.starts_with("dhclient"))
        .collect();
    assert_eq!(starts, ["dhclient -b -n lagg1", "dhclient -b -q hn3"]);
}

proptest::proptest! {
    #[test]
    fn observe_never_panics_on_arbitrary_output(
        ifc in "[ -~\t\n]{0,300}",
        map in "[ -~\n]{0,40}",
        ns in "[ -~\n]{0,200}",
    ) {
        let mut r = scripted();
        r.answer("ifconfig -a", Output::ok(&ifc));
        r.answer("sysctl -n hw.hn.vfmap", Output::ok(&map));
        r.answer("netstat -rn", Output::ok(&ns));
        let _ = FreeBsdBackend::new(r).observe();
    }
}
