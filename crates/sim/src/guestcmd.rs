//! A subset of FreeBSD's userland over the model: `ifconfig`, `sysctl`,
//! `dhclient`, `kill`, `route`, `netstat -rn`, `ps -p PID -o comm=`,
//! `pgrep -x`, `pkill -x`, and the Hyper-V helper daemons, with their output formats
//! where scripts and hvnet's FreeBSD backend parse them (`laggport:` lines,
//! `sysctl -n`, netstat's route table).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::time::Duration;

use hvnet_vf::{Daemon, IpNet, Ipv4Net, Ipv6Net, Route};

use crate::world::{ProcKind, World};

/// Result of a command: exit status, stdout, stderr.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CmdOutput {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

impl CmdOutput {
    pub fn ok(stdout: String) -> Self {
        CmdOutput {
            status: 0,
            stdout,
            stderr: String::new(),
        }
    }

    fn fail(prog: &str, msg: impl std::fmt::Display) -> Self {
        CmdOutput {
            status: 1,
            stdout: String::new(),
            stderr: format!("{prog}: {msg}\n"),
        }
    }
}

/// Run `argv` in the guest at `now`.
pub fn run(w: &mut World, now: Duration, argv: &[String]) -> CmdOutput {
    let Some(prog) = argv.first() else {
        return CmdOutput::fail("sh", "empty command");
    };
    let base = prog.rsplit('/').next().unwrap_or(prog);
    let args = &argv[1..];
    let out = run_one(w, now, base, args);
    w.run_link_tasks(now);
    out
}

fn run_one(w: &mut World, now: Duration, base: &str, args: &[String]) -> CmdOutput {
    match base {
        "ifconfig" => ifconfig(w, now, args),
        "sysctl" => sysctl(w, args),
        "dhclient" => {
            let Some(iface) = args.iter().find(|a| !a.starts_with('-')) else {
                return CmdOutput::fail("dhclient", "usage: dhclient [-b] interface");
            };
            match w.start_dhclient(now, iface) {
                Ok(_) => CmdOutput::ok(String::new()),
                Err(e) => CmdOutput::fail("dhclient", e),
            }
        }
        "kill" => {
            let mut st = CmdOutput::ok(String::new());
            for a in args.iter().filter(|a| !a.starts_with('-')) {
                match a.parse::<u32>().map_err(|_| a.clone()) {
                    Ok(pid) if w.kill(pid).is_ok() => {}
                    _ => st = CmdOutput::fail("kill", format!("{a}: No such process")),
                }
            }
            st
        }
        "route" => route(w, args),
        "netstat" => netstat(w, args),
        "ps" => ps(w, args),
        "pgrep" => pgrep(w, args),
        "pkill" => pkill(w, args),
        other => match Daemon::ALL.into_iter().find(|d| d.process_name() == other) {
            // The helper daemons detach at once; they fail without their device.
            Some(d) if w.devices.contains(d.device()) => {
                w.spawn(ProcKind::Daemon(d));
                CmdOutput::ok(String::new())
            }
            Some(d) => CmdOutput::fail(
                other,
                format!("open /dev/{}: No such file or directory", d.device()),
            ),
            None => CmdOutput {
                status: 127,
                stdout: String::new(),
                stderr: format!("{other}: not found\n"),
            },
        },
    }
}

/// The guest's files a program may read, by absolute path: dhclient's pid files (FreeBSD 12+
/// location, what dhclient writes) and the device nodes under /dev (empty).
pub fn files(w: &World) -> BTreeMap<String, String> {
    w.dhclients
        .iter()
        .map(|(pid, c)| (World::dhclient_pidfile(&c.iface), format!("{pid}\n")))
        .chain(
            w.devices
                .iter()
                .map(|d| (format!("/dev/{d}"), String::new())),
        )
        .collect()
}

/// What SIOCGIFMEDIA tells devd's `media-type` about every interface: Ethernet, except
/// loopback (no media); an interface that is gone has none.
pub fn media(w: &World) -> hvnet_devd::StaticMedia {
    let mut m = hvnet_devd::StaticMedia::new();
    for i in w.ifnets.values() {
        if i.class != crate::world::IfClass::Loopback {
            m.insert(i.name.clone(), hvnet_devd::MediaType::Ethernet);
        }
    }
    m
}

/// The command name `ps -o comm=` shows for a process.
fn proc_name(kind: &ProcKind) -> &'static str {
    match kind {
        ProcKind::Dhclient { .. } => "dhclient",
        ProcKind::Daemon(d) => d.process_name(),
    }
}

/// `ps -p PID -o comm=`: the command name; exit 1 and no output when there
/// is no such process.
fn ps(w: &World, args: &[String]) -> CmdOutput {
    let pid = args
        .iter()
        .position(|a| a == "-p")
        .and_then(|i| args.get(i + 1))
        .and_then(|p| p.parse::<u32>().ok());
    match pid.and_then(|p| w.procs.get(&p)) {
        Some(p) => CmdOutput::ok(format!("{}\n", proc_name(&p.kind))),
        None => CmdOutput {
            status: 1,
            ..Default::default()
        },
    }
}

/// `pkill -x NAME`: the daemons and dhclients by name; exit 1 when nothing matched.
fn pkill(w: &mut World, args: &[String]) -> CmdOutput {
    let name = args.iter().find(|a| !a.starts_with('-'));
    let pids: Vec<u32> = w
        .procs
        .values()
        .filter(|p| name.is_some_and(|n| proc_name(&p.kind) == n))
        .map(|p| p.pid)
        .collect();
    for pid in &pids {
        let _ = w.kill(*pid);
    }
    CmdOutput {
        status: i32::from(pids.is_empty()),
        ..Default::default()
    }
}

/// `pgrep -x NAME`: one pid a line; exit 1 when nothing matches.
fn pgrep(w: &World, args: &[String]) -> CmdOutput {
    let Some(name) = args.iter().find(|a| !a.starts_with('-')) else {
        return CmdOutput {
            status: 2,
            stdout: String::new(),
            stderr: "usage: pgrep [-x] pattern\n".into(),
        };
    };
    let pids: String = w
        .procs
        .values()
        .filter(|p| proc_name(&p.kind) == name)
        .map(|p| format!("{}\n", p.pid))
        .collect();
    CmdOutput {
        status: i32::from(pids.is_empty()),
        stdout: pids,
        stderr: String::new(),
    }
}

/// `route [-n] add|change|delete [-inet6] default|-host A|-net A/N [GW [-ifp IF] | -interface IF]`.
fn route(w: &mut World, args: &[String]) -> CmdOutput {
    let words: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| !matches!(*a, "-n" | "-q"))
        .collect();
    let usage = || {
        CmdOutput::fail(
            "route",
            "usage: route [-n] add|change|delete [-inet6] destination [gateway [-ifp ifname] | -interface ifname]",
        )
    };
    let Some((&action, rest)) = words.split_first() else {
        return usage();
    };
    let (v6, rest) = match rest.split_first() {
        Some((&"-inet6", r)) => (true, r),
        Some((&"-inet", r)) => (false, r),
        _ => (false, rest),
    };
    let (dest, rest): (Option<IpNet>, &[&str]) = match rest {
        ["default", r @ ..] => (
            Some(if v6 {
                IpNet::default_v6()
            } else {
                IpNet::default_v4()
            }),
            r,
        ),
        ["-host", a, r @ ..] => (
            a.parse::<IpAddr>().ok().map(|ip| match ip {
                IpAddr::V4(x) => IpNet::V4(Ipv4Net::new(x, 32)),
                IpAddr::V6(x) => IpNet::V6(Ipv6Net::new(x, 128)),
            }),
            r,
        ),
        ["-net", a, r @ ..] => (a.parse::<IpNet>().ok(), r),
        _ => return usage(),
    };
    let Some(dest) = dest else {
        return usage();
    };
    let gateway_word = |g: &str| match g.split_once('%') {
        Some((a, zone)) => (a.parse::<IpAddr>().ok(), Some(zone.to_string())),
        None => (g.parse::<IpAddr>().ok(), None),
    };
    let (gateway, mut iface) = match rest {
        [] => (None, None),
        ["-interface", i] => (None, Some((*i).to_string())),
        [g] => gateway_word(g),
        [g, "-ifp", i] => (gateway_word(g).0, Some((*i).to_string())),
        _ => return usage(),
    };
    if gateway.is_none() && iface.is_none() && action != "delete" {
        return usage();
    }
    if action == "change" && iface.is_none() {
        // As for add: the interface the gateway is on-link through.
        iface = gateway.and_then(|g| w.onlink_iface(g));
    }
    let r = Route {
        dest,
        gateway,
        iface,
    };
    let kind = if dest.prefix() == if v6 { 128 } else { 32 } {
        "host"
    } else {
        "net"
    };
    let shown = if dest.prefix() == 0 {
        "default".to_string()
    } else if kind == "host" {
        dest.addr().to_string()
    } else {
        dest.to_string()
    };
    let gw = match rest {
        ["-interface", i] => *i,
        [g, ..] => *g,
        [] => "",
    };
    match action {
        "add" => match w.add_route(&r) {
            Ok(()) => CmdOutput::ok(format!("add {kind} {shown}: gateway {gw}\n")),
            Err(crate::world::KernelError::Exists(_)) => CmdOutput::fail(
                "route",
                format!("message indicates error: File exists\nadd {kind} {shown}: gateway {gw} fib 0: route already in table"),
            ),
            Err(e) => CmdOutput::fail("route", format!("message indicates error: {e}")),
        },
        "change" => match w.change_route(&r) {
            Ok(()) => CmdOutput::ok(format!("change {kind} {shown}: gateway {gw}\n")),
            Err(crate::world::KernelError::NoRoute(_)) => CmdOutput::fail(
                "route",
                format!("writing to routing socket: No such process\nchange {kind} {shown}: gateway {gw} fib 0: not in table"),
            ),
            Err(e) => CmdOutput::fail("route", format!("message indicates error: {e}")),
        },
        "delete" => {
            if !w.routes.iter().any(|e| e.dest == dest) {
                return CmdOutput::fail(
                    "route",
                    format!("writing to routing socket: No such process\ndelete {kind} {shown}: not in table"),
                );
            }
            w.remove_route(&r);
            CmdOutput::ok(format!("delete {kind} {shown}\n"))
        }
        _ => usage(),
    }
}

/// `netstat -rn`: the model's routes in FreeBSD's layout (`Internet:` and
/// `Internet6:` sections, `link#N` for interface routes), then the kernel's own
/// routes for every address (its prefix on the interface, `fe80::%IF/64` for a
/// link-local one, and the address itself through lo0). lo0's own are left out.
fn netstat(w: &World, args: &[String]) -> CmdOutput {
    if !args.iter().any(|a| a.starts_with('-') && a.contains('r')) {
        return CmdOutput::fail("netstat", "only -rn is supported");
    }
    let mut s = String::from("Routing tables\n");
    for v6 in [false, true] {
        let (title, width) = if v6 {
            ("Internet6", 32)
        } else {
            ("Internet", 18)
        };
        let _ = write!(
            s,
            "\n{title}:\n{:<width$} {:<width$} {:<8} {:>8} {:>6}\n",
            "Destination", "Gateway", "Flags", "Netif", "Expire"
        );
        for r in w
            .routes
            .iter()
            .filter(|r| matches!(r.dest, IpNet::V6(_)) == v6)
        {
            let host = r.dest.prefix() == if v6 { 128 } else { 32 };
            let dest = if r.dest.prefix() == 0 {
                "default".to_string()
            } else if host {
                r.dest.addr().to_string()
            } else {
                r.dest.to_string()
            };
            let netif = r.iface.clone().unwrap_or_default();
            let index = w.ifnet(&netif).map_or(0, |i| i.index);
            let gw = match r.gateway {
                Some(IpAddr::V6(g)) if (g.segments()[0] & 0xffc0) == 0xfe80 => {
                    format!("{g}%{netif}")
                }
                Some(g) => g.to_string(),
                None => format!("link#{index}"),
            };
            let mut flags = String::from("U");
            if r.gateway.is_some() {
                flags.push('G');
            }
            if host {
                flags.push('H');
            }
            flags.push('S');
            let _ = writeln!(s, "{dest:<width$} {gw:<width$} {flags:<8} {netif:>8}");
        }
        // The kernel's own routes for every address: the prefix on its interface, the
        // address itself through lo0 (as FreeBSD lists them).
        let lo = w.ifnet("lo0").map_or(1, |i| i.index);
        for i in w.by_index() {
            if i.class == crate::world::IfClass::Loopback {
                continue;
            }
            // (address, prefix, network base, link-local)
            let nets: Vec<(String, u8, String, bool)> = if v6 {
                i.ipv6
                    .iter()
                    .map(|n| {
                        let m = if n.prefix == 0 {
                            0
                        } else {
                            u128::MAX << (128 - u32::from(n.prefix))
                        };
                        let base = std::net::Ipv6Addr::from(u128::from(n.addr) & m);
                        (
                            n.addr.to_string(),
                            n.prefix,
                            base.to_string(),
                            n.is_link_local(),
                        )
                    })
                    .collect()
            } else {
                i.ipv4
                    .iter()
                    .map(|n| {
                        let m = if n.prefix == 0 {
                            0
                        } else {
                            u32::MAX << (32 - u32::from(n.prefix))
                        };
                        let base = std::net::Ipv4Addr::from(u32::from(n.addr) & m);
                        (n.addr.to_string(), n.prefix, base.to_string(), false)
                    })
                    .collect()
            };
            for (addr, prefix, base, ll) in nets {
                let zone = if ll {
                    format!("%{}", i.name)
                } else {
                    String::new()
                };
                let host = prefix == if v6 { 128 } else { 32 };
                if !host {
                    let d = format!("{base}{zone}/{prefix}");
                    let g = format!("link#{}", i.index);
                    let _ = writeln!(s, "{d:<width$} {g:<width$} {:<8} {:>8}", "U", i.name);
                }
                let d = format!("{addr}{zone}");
                let g = format!("link#{lo}");
                let _ = writeln!(s, "{d:<width$} {g:<width$} {:<8} {:>8}", "UHS", "lo0");
            }
        }
    }
    CmdOutput::ok(s)
}

fn sysctl(w: &mut World, args: &[String]) -> CmdOutput {
    let mut value_only = false;
    let mut out = String::new();
    let mut status = 0;
    let mut err = String::new();
    for a in args {
        if a == "-n" {
            value_only = true;
            continue;
        }
        if a.starts_with('-') {
            continue;
        }
        if let Some((k, v)) = a.split_once('=') {
            let old = w.sysctl_get(k);
            match (old, w.sysctl_set(k, v)) {
                (Ok(old), Ok(())) => {
                    let _ = writeln!(out, "{k}: {old} -> {v}");
                }
                (_, Err(e)) | (Err(e), _) => {
                    status = 1;
                    let _ = writeln!(err, "sysctl: {e}");
                }
            }
            continue;
        }
        match w.sysctl_get(a) {
            Ok(v) if value_only => {
                let _ = writeln!(out, "{v}");
            }
            Ok(v) => {
                let _ = writeln!(out, "{a}: {v}");
            }
            Err(e) => {
                status = 1;
                let _ = writeln!(err, "sysctl: {e}");
            }
        }
    }
    CmdOutput {
        status,
        stdout: out,
        stderr: err,
    }
}

fn prefix_of_mask(m: &str) -> Option<u8> {
    let bits = if let Some(h) = m.strip_prefix("0x") {
        u32::from_str_radix(h, 16).ok()?
    } else {
        u32::from(m.parse::<std::net::Ipv4Addr>().ok()?)
    };
    Some(bits.leading_ones() as u8)
}

fn ifconfig(w: &mut World, now: Duration, args: &[String]) -> CmdOutput {
    match args.first().map(String::as_str) {
        None | Some("-a") => {
            let names: Vec<String> = w.by_index().iter().map(|i| i.name.clone()).collect();
            return CmdOutput::ok(names.iter().map(|n| show(w, n)).collect());
        }
        Some("-l") => {
            let names: Vec<String> = w.by_index().iter().map(|i| i.name.clone()).collect();
            return CmdOutput::ok(format!("{}\n", names.join(" ")));
        }
        _ => {}
    }
    let name = args[0].as_str();
    let words = &args[1..];
    if words.is_empty() {
        return match w.ifnet(name) {
            Some(_) => CmdOutput::ok(show(w, name)),
            None => CmdOutput::fail("ifconfig", format!("interface {name} does not exist")),
        };
    }
    if words[0] == "create" {
        return match w.create_lagg(now, name) {
            Ok(()) => CmdOutput::ok(String::new()),
            Err(e) => CmdOutput::fail("ifconfig", format!("SIOCIFCREATE2: {e}")),
        };
    }
    if words[0] == "destroy" {
        return match w.destroy_lagg(now, name) {
            Ok(()) => CmdOutput::ok(String::new()),
            Err(e) => CmdOutput::fail("ifconfig", format!("SIOCIFDESTROY: {e}")),
        };
    }
    if w.ifnet(name).is_none() {
        return CmdOutput::fail("ifconfig", format!("interface {name} does not exist"));
    }
    let mut i = 0;
    let mut res: Result<(), String> = Ok(());
    while i < words.len() && res.is_ok() {
        let wd = words[i].as_str();
        let next = words.get(i + 1).map(String::as_str);
        res = match wd {
            "up" => w.set_admin(now, name, true).map_err(|e| e.to_string()),
            "down" => w.set_admin(now, name, false).map_err(|e| e.to_string()),
            "mtu" => {
                i += 1;
                match next.and_then(|v| v.parse().ok()) {
                    Some(m) => w
                        .set_mtu(now, name, m)
                        .map_err(|e| format!("SIOCSIFMTU: {e}")),
                    None => Err("mtu: bad value".into()),
                }
            }
            "laggproto" => {
                i += 1;
                w.set_laggproto(
                    name,
                    &hvnet_vf::AggregateProto::from_name(next.unwrap_or("")),
                )
                .map_err(|e| format!("SIOCSLAGG: {e}"))
            }
            "laggport" => {
                i += 1;
                w.add_port(now, name, next.unwrap_or(""))
                    .map_err(|e| format!("SIOCSLAGGPORT: {e}"))
            }
            "-laggport" => {
                i += 1;
                w.remove_port(now, name, next.unwrap_or(""))
                    .map_err(|e| format!("SIOCSLAGGDELPORT: {e}"))
            }
            "-alias" => w
                .remove_first_ipv4(now, name)
                .map_err(|_| "ioctl (SIOCDIFADDR): Can't assign requested address".into()),
            "inet" | "inet6" => {
                let (consumed, r) = address_words(w, now, name, wd == "inet6", &words[i + 1..]);
                i += consumed;
                r
            }
            // Accepted and ignored: no effect on the model.
            "no_dad" | "-ifdisabled" | "ifdisabled" | "accept_rtadv" | "-accept_rtadv"
            | "auto_linklocal" | "-auto_linklocal" | "lagghash" | "description" | "descr" => {
                if matches!(wd, "lagghash" | "description" | "descr") {
                    i += 1;
                }
                Ok(())
            }
            other => Err(format!("{other}: bad value")),
        };
        i += 1;
    }
    match res {
        Ok(()) => CmdOutput::ok(String::new()),
        Err(e) => CmdOutput::fail("ifconfig", e),
    }
}

/// `inet ADDR[/N] [netmask M] [prefixlen N] [alias|-alias|delete]`; returns
/// the number of words consumed.
fn address_words(
    w: &mut World,
    now: Duration,
    name: &str,
    v6: bool,
    rest: &[String],
) -> (usize, Result<(), String>) {
    let Some(a) = rest.first() else {
        return (0, Err("missing address".into()));
    };
    // `inet6 no_dad`, `inet6 -ifdisabled`: address-family flags, no address.
    if !a.starts_with(|c: char| c.is_ascii_hexdigit() || c == ':') {
        return (0, Ok(()));
    }
    let (addr, mut prefix) = match a.split_once('/') {
        Some((x, p)) => (x, p.parse::<u8>().ok()),
        None => (a.as_str(), None),
    };
    let Ok(ip) = addr.parse::<IpAddr>() else {
        return (1, Err(format!("{addr}: bad value")));
    };
    let mut n = 1;
    let mut remove = false;
    while let Some(wd) = rest.get(n) {
        match wd.as_str() {
            "netmask" => {
                prefix = rest.get(n + 1).and_then(|m| prefix_of_mask(m));
                n += 2;
            }
            "prefixlen" => {
                prefix = rest.get(n + 1).and_then(|m| m.parse().ok());
                n += 2;
            }
            "alias" | "add" => n += 1,
            "-alias" | "delete" => {
                remove = true;
                n += 1;
            }
            _ => break,
        }
    }
    let r = if remove {
        w.remove_address(now, name, ip)
            .map_err(|_| "ioctl (SIOCDIFADDR): Can't assign requested address".to_string())
    } else {
        let net = match (ip, v6) {
            (IpAddr::V4(a), false) => IpNet::V4(Ipv4Net::new(a, prefix.unwrap_or(8))),
            (IpAddr::V6(a), true) => IpNet::V6(Ipv6Net::new(a, prefix.unwrap_or(64))),
            _ => return (n, Err(format!("{addr}: bad value"))),
        };
        w.add_address(now, name, net).map_err(|e| e.to_string())
    };
    (n, r)
}

fn prefix_mask(p: u8) -> String {
    let m: u32 = if p == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(p))
    };
    format!("0x{m:08x}")
}

/// `ifconfig NAME` output in FreeBSD 14's layout: flags, `ether`, `inet A netmask 0x...`
/// (without `broadcast`), `inet6 A[%IF] prefixlen N [scopeid 0xI]`, `laggproto`/`laggport:` lines,
/// `groups:`, and for Ethernet `media:` and `status:` (loopback has neither, as on FreeBSD),
/// then `nd6 options=`.
pub fn show(w: &World, name: &str) -> String {
    let Some(i) = w.ifnet(name) else {
        return String::new();
    };
    let lo = i.class == crate::world::IfClass::Loopback;
    // IFF_UP 0x1, BROADCAST 0x2, LOOPBACK 0x8, RUNNING 0x40, SIMPLEX 0x800, MULTICAST 0x8000.
    let mut flags = Vec::new();
    let mut bits = 0x8000u32;
    if i.up {
        flags.push("UP");
        bits |= 0x1;
    }
    if lo {
        flags.push("LOOPBACK");
        bits |= 0x8;
    } else {
        flags.push("BROADCAST");
        bits |= 0x2 | 0x800;
    }
    if i.running {
        flags.push("RUNNING");
        bits |= 0x40;
    }
    if !lo {
        flags.push("SIMPLEX");
    }
    flags.push("MULTICAST");
    let mut s = format!(
        "{}: flags={bits:x}<{}> metric 0 mtu {}\n",
        i.name,
        flags.join(","),
        i.mtu
    );
    if !i.mac.is_zero() {
        let _ = writeln!(s, "\tether {}", i.mac);
    }
    for n in &i.ipv4 {
        let _ = writeln!(s, "\tinet {} netmask {}", n.addr, prefix_mask(n.prefix));
    }
    for n in &i.ipv6 {
        if (n.addr.segments()[0] & 0xffc0) == 0xfe80 {
            let _ = writeln!(
                s,
                "\tinet6 {}%{} prefixlen {} scopeid 0x{:x}",
                n.addr, i.name, n.prefix, i.index
            );
        } else {
            let _ = writeln!(s, "\tinet6 {} prefixlen {}", n.addr, n.prefix);
        }
    }
    if let Some(l) = &i.lagg {
        let _ = writeln!(s, "\tlaggproto {} lagghash l2,l3,l4", l.proto);
        for p in &l.ports {
            let f = w.laggport_flags(name, p);
            let mut b = 0u32;
            for x in &f {
                b |= match *x {
                    "MASTER" => 0x1,
                    "ACTIVE" => 0x4,
                    "COLLECTING" => 0x8,
                    "DISTRIBUTING" => 0x10,
                    _ => 0,
                };
            }
            let _ = writeln!(s, "\tlaggport: {p} flags={b:x}<{}>", f.join(","));
        }
        let _ = writeln!(s, "\tgroups: lagg");
    } else if lo {
        let _ = writeln!(s, "\tgroups: lo");
    }
    if !lo {
        let _ = writeln!(s, "\tmedia: Ethernet autoselect");
        let _ = writeln!(
            s,
            "\tstatus: {}",
            if i.link { "active" } else { "no carrier" }
        );
    }
    let _ = writeln!(s, "\tnd6 options=21<PERFORMNUD,AUTO_LINKLOCAL>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use hvnet_vf::Mac;

    const T0: Duration = Duration::ZERO;

    fn sh(w: &mut World, line: &str) -> CmdOutput {
        let argv: Vec<String> = line.split_whitespace().map(String::from).collect();
        run(w, T0, &argv)
    }

    fn guest() -> World {
        let mut w = World::new(true);
        w.attach_loopback();
        w.host_add_nic("hn0", Mac([0, 0x15, 0x5d, 0, 0, 1]));
        w.attach_hn(T0, "hn0", Mac([0, 0x15, 0x5d, 0, 0, 1]))
            .unwrap();
        w.link_query_done(T0, "hn0");
        w.run_link_tasks(T0);
        assert_eq!(sh(&mut w, "ifconfig hn0 inet 10.0.0.4/24 alias").status, 0);
        w
    }

    #[test]
    fn route_adds_and_deletes_with_freebsds_messages() {
        let mut w = guest();
        let add = sh(&mut w, "route -n add default 10.0.0.1");
        assert_eq!(add.stdout, "add net default: gateway 10.0.0.1\n");
        assert_eq!(w.routes[0].iface.as_deref(), Some("hn0"));
        // Identical again: the kernel keeps one.
        assert_eq!(sh(&mut w, "route -n add default 10.0.0.1").status, 0);
        let other = sh(&mut w, "route -n add default 10.0.0.2");
        assert_eq!(other.status, 1);
        assert!(other.stderr.contains("File exists"), "{}", other.stderr);
        let h = sh(&mut w, "route -n add -inet6 -host fd00::9 -interface hn0");
        assert_eq!(h.stdout, "add host fd00::9: gateway hn0\n");
        assert_eq!(sh(&mut w, "route -n delete default 10.0.0.1").status, 0);
        let gone = sh(&mut w, "route -n delete default 10.0.0.1");
        assert_eq!(gone.status, 1);
        assert!(gone.stderr.contains("not in table"), "{}", gone.stderr);
        assert_eq!(sh(&mut w, "route -n add").status, 1);
        assert_eq!(sh(&mut w, "route -n add -net nonsense 10.0.0.1").status, 1);
    }

    #[test]
    fn netstat_prints_both_families_in_freebsds_columns() {
        let mut w = guest();
        sh(&mut w, "route -n add default 10.0.0.1");
        sh(&mut w, "route -n add -net 192.168.0.0/16 -interface hn0");
        sh(
            &mut w,
            "ifconfig hn0 inet6 fe80::215:5dff:fe00:1 prefixlen 64 alias",
        );
        sh(&mut w, "route -n add -inet6 default fe80::1%hn0");
        let out = sh(&mut w, "netstat -rn");
        assert_eq!(out.status, 0);
        let lines: Vec<&str> = out.stdout.lines().collect();
        assert_eq!(lines[0], "Routing tables");
        assert_eq!(lines[2], "Internet:");
        assert!(lines[3].starts_with("Destination        Gateway            Flags"));
        let words = |l: &str| l.split_whitespace().map(String::from).collect::<Vec<_>>();
        assert_eq!(words(lines[4]), ["default", "10.0.0.1", "UGS", "hn0"]);
        let idx = w.ifnet("hn0").unwrap().index;
        assert_eq!(
            words(lines[5]),
            ["192.168.0.0/16", &format!("link#{idx}"), "US", "hn0"]
        );
        // The kernel's routes for hn0's address: its prefix, and itself through lo0.
        assert_eq!(
            words(lines[6]),
            ["10.0.0.0/24", &format!("link#{idx}"), "U", "hn0"]
        );
        let lo = w.ifnet("lo0").unwrap().index;
        assert_eq!(
            words(lines[7]),
            ["10.0.0.4", &format!("link#{lo}"), "UHS", "lo0"]
        );
        assert_eq!(lines[9], "Internet6:");
        assert_eq!(words(lines[11]), ["default", "fe80::1%hn0", "UGS", "hn0"]);
        assert_eq!(
            words(lines[12]),
            ["fe80::%hn0/64", &format!("link#{idx}"), "U", "hn0"]
        );
        assert_eq!(
            words(lines[13]),
            [
                "fe80::215:5dff:fe00:1%hn0",
                &format!("link#{lo}"),
                "UHS",
                "lo0"
            ]
        );
        assert_eq!(lines.len(), 14);
        assert_eq!(sh(&mut w, "netstat -i").status, 1);
    }

    #[test]
    fn ps_pgrep_and_the_helper_daemons() {
        let mut w = guest();
        let started = sh(&mut w, "hv_kvp_daemon");
        assert_eq!(started.status, 1);
        assert_eq!(
            started.stderr,
            "hv_kvp_daemon: open /dev/hv_kvp_dev: No such file or directory\n"
        );
        assert_eq!(sh(&mut w, "pgrep -x hv_kvp_daemon").status, 1);
        w.create_device("hv_kvp_dev");
        assert_eq!(sh(&mut w, "hv_kvp_daemon").status, 0);
        let pg = sh(&mut w, "pgrep -x hv_kvp_daemon");
        assert_eq!(pg.status, 0);
        let pid: u32 = pg.stdout.trim().parse().unwrap();
        let ps = sh(&mut w, &format!("ps -p {pid} -o comm="));
        assert_eq!((ps.status, ps.stdout.as_str()), (0, "hv_kvp_daemon\n"));
        assert_eq!(sh(&mut w, &format!("kill -TERM {pid}")).status, 0);
        let ps = sh(&mut w, &format!("ps -p {pid} -o comm="));
        assert_eq!((ps.status, ps.stdout.as_str()), (1, ""));
        assert_eq!(sh(&mut w, "pgrep").status, 2);
        assert_eq!(sh(&mut w, "nosuchcommand").status, 127);
        // pkill -x: by name, exit 1 when nothing matched.
        assert_eq!(sh(&mut w, "hv_kvp_daemon").status, 0);
        assert_eq!(sh(&mut w, "pkill -x hv_kvp_daemon").status, 0);
        assert_eq!(sh(&mut w, "pgrep -x hv_kvp_daemon").status, 1);
        assert_eq!(sh(&mut w, "pkill -x hv_kvp_daemon").status, 1);
    }

    #[test]
    fn files_and_media_are_the_guests() {
        use hvnet_devd::{MediaProbe, MediaType};
        let mut w = guest();
        w.create_device("hv_kvp_dev");
        assert_eq!(sh(&mut w, "dhclient -b hn0").status, 0);
        let pid = *w.dhclients.keys().next().unwrap();
        let f = files(&w);
        assert_eq!(
            f.get("/var/run/dhclient/dhclient.hn0.pid"),
            Some(&format!("{pid}\n"))
        );
        assert_eq!(f.get("/dev/hv_kvp_dev").map(String::as_str), Some(""));
        assert_eq!(f.len(), 2);
        let m = media(&w);
        assert_eq!(m.media("hn0"), Some(MediaType::Ethernet));
        assert_eq!(m.media("lo0"), None);
        assert_eq!(m.media("mce9"), None);
    }

    #[test]
    fn ifconfig_prints_freebsds_layout() {
        let mut w = guest();
        sh(&mut w, "ifconfig hn0 up");
        sh(
            &mut w,
            "ifconfig hn0 inet6 fe80::215:5dff:fe00:1 prefixlen 64 alias",
        );
        let idx = w.ifnet("hn0").unwrap().index;
        let out = sh(&mut w, "ifconfig hn0").stdout;
        let want = format!(
            "hn0: flags=8843<UP,BROADCAST,RUNNING,SIMPLEX,MULTICAST> metric 0 mtu 1500
\tether 00:15:5d:00:00:01
\tinet 10.0.0.4 netmask 0xffffff00
\tinet6 fe80::215:5dff:fe00:1%hn0 prefixlen 64 scopeid 0x{idx:x}
\tmedia: Ethernet autoselect
\tstatus: active
\tnd6 options=21<PERFORMNUD,AUTO_LINKLOCAL>
"
        );
        assert_eq!(out, want);
        let lo = sh(&mut w, "ifconfig lo0").stdout;
        assert_eq!(
            lo,
            "lo0: flags=8049<UP,LOOPBACK,RUNNING,MULTICAST> metric 0 mtu 16384
\tinet 127.0.0.1 netmask 0xff000000
\tgroups: lo
\tnd6 options=21<PERFORMNUD,AUTO_LINKLOCAL>
"
        );
    }
}
