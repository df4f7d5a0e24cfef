//! The original FreeBSD userland as a guest agent: devd running
//! hyperv.conf (spec hn.md §3.1) plus devd.conf's `IFNET LINK_UP` dhclient
//! rule, with `hyperv_vfattach` (§3.2) and `hyperv_vfup` (§3.3) followed
//! step by step — including their known defects (stale dhclient pid file
//! path, aliases/IPv6/routes not moved, `lagg<unit>` naming). It is the
//! baseline the VF manager is compared with.
//!
//! Differences from the real thing: actions do not block devd (a
//! SYNCDHCP `dhclient` in hyperv_vfup would stall devd until the lease).

use std::collections::BTreeMap;
use std::time::Duration;

use hvnet_vf::{Backend, Daemon, IpNet, Op, SystemView};

use crate::agent::{AgentContext, AgentFactory, GuestAgent};

/// The rules of FreeBSD's `/etc/devd/hyperv.conf` (comments shortened).
pub const HYPERV_CONF: &str = r#"# Hyper-V specific events (sbin/devd/hyperv.conf)
notify 10 {
	match "system"		"DEVFS";
	match "subsystem"	"CDEV";
	match "type"		"CREATE";
	match "cdev"		"hv_kvp_dev";
	action "/usr/sbin/hv_kvp_daemon";
};

notify 10 {
	match "system"		"DEVFS";
	match "subsystem"	"CDEV";
	match "type"		"DESTROY";
	match "cdev"		"hv_kvp_dev";
	action "pkill -x hv_kvp_daemon";
};

notify 11 {
	match "system"		"DEVFS";
	match "subsystem"	"CDEV";
	match "type"		"CREATE";
	match "cdev"		"hv_fsvss_dev";
	action "/usr/sbin/hv_vss_daemon";
};

notify 11 {
	match "system"		"DEVFS";
	match "subsystem"	"CDEV";
	match "type"		"DESTROY";
	match "cdev"		"hv_fsvss_dev";
	action "pkill -x hv_vss_daemon";
};

notify 10 {
	match "system"		"HYPERV_NIC_VF";
	match "type"		"VF_UP";
	action "/usr/libexec/hyperv/hyperv_vfup $subsystem";
};

notify 10 {
	match "system"		"ETHERNET";
	match "type"		"IFATTACH";
	action "/usr/libexec/hyperv/hyperv_vfattach $subsystem 0";
};
"#;

/// FreeBSD's `/etc/devd/dhclient.conf` Ethernet rule.
pub const DHCLIENT_CONF: &str = r#"# dhclient on link up (sbin/devd/dhclient.conf)
notify 0 {
	match "system"		"IFNET";
	match "type"		"LINK_UP";
	media-type		"ethernet";
	action "service dhclient quietstart $subsystem";
};
"#;

/// Split a `/bin/sh -c` string into words: plain words, `'...'`,
/// `"..."` (with `\` escapes) and devd's `$'...'` quoting. Anything
/// else a shell would interpret (`;`, `|`, `$(`...) makes it `None`.
pub fn shell_words(cmd: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut it = cmd.chars().peekable();
    while let Some(c) = it.next() {
        match c {
            '$' if it.peek() == Some(&'\'') => {
                it.next();
                in_word = true;
                loop {
                    match it.next()? {
                        '\'' => break,
                        '\\' => match it.next()? {
                            'n' => cur.push('\n'),
                            't' => cur.push('\t'),
                            o => cur.push(o),
                        },
                        o => cur.push(o),
                    }
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match it.next()? {
                        '\'' => break,
                        o => cur.push(o),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match it.next()? {
                        '"' => break,
                        '\\' => cur.push(it.next()?),
                        '$' | '`' => return None,
                        o => cur.push(o),
                    }
                }
            }
            ' ' | '\t' | '\n' => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            ';' | '|' | '&' | '<' | '>' | '`' | '$' | '(' | ')' | '\\' => return None,
            o => {
                in_word = true;
                cur.push(o);
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    Some(out)
}

/// devd + hyperv.conf + the two scripts.
#[derive(Debug, Clone)]
pub struct OriginalScripts {
    rc: String,
    /// Delayed `ifconfig VF up` from the daemonized hyperv_vfattach.
    pending_up: BTreeMap<Duration, Vec<String>>,
    log: Vec<String>,
}

/// A factory for [`OriginalScripts`].
pub fn original_scripts() -> AgentFactory {
    Box::new(|ctx: &AgentContext| Box::new(OriginalScripts::new(&ctx.rc_conf)))
}

/// Parse a devctl notify line into (system, subsystem, type, rest).
fn notify_fields(line: &str) -> Option<BTreeMap<&str, &str>> {
    let body = line.strip_prefix('!')?;
    Some(
        body.split(' ')
            .filter_map(|kv| kv.split_once('='))
            .collect(),
    )
}

impl OriginalScripts {
    pub fn new(rc_conf: &str) -> Self {
        OriginalScripts {
            rc: rc_conf.to_string(),
            pending_up: BTreeMap::new(),
            log: Vec::new(),
        }
    }

    fn observe(&mut self, be: &mut dyn Backend) -> Option<SystemView> {
        match be.observe() {
            Ok(v) => Some(v),
            Err(e) => {
                self.log.push(format!("observe failed: {e}"));
                None
            }
        }
    }

    fn apply(&mut self, be: &mut dyn Backend, op: Op) -> bool {
        match be.apply(&op) {
            Ok(()) => true,
            Err(e) => {
                self.log.push(format!("{e}"));
                false
            }
        }
    }

    /// `hyperv_vfattach IFACE 0`.
    fn vfattach(&mut self, now: Duration, iface: &str, be: &mut dyn Backend) {
        let Some(v) = self.observe(be) else { return };
        if v.platform.vf_transparent {
            return;
        }
        // `. /etc/rc.conf` only (not the defaults): hyperv_vf_delay.
        let rc = hvnet_rcconf::RcConf::from_text("/etc/rc.conf", &self.rc);
        let delay = rc
            .get("hyperv_vf_delay")
            .and_then(|d| d.trim().parse::<i64>().ok())
            .filter(|d| *d >= 2)
            .unwrap_or(2);
        if v.platform.vf_map.contains_key(iface) {
            let at = now + Duration::from_secs(delay.unsigned_abs());
            self.log.push(format!(
                "hyperv_vfattach {iface}: daemon -f ... {iface} {delay}"
            ));
            self.pending_up
                .entry(at)
                .or_default()
                .push(iface.to_string());
        }
    }

    /// `hyperv_vfup hnX`.
    fn vfup(&mut self, hn: &str, be: &mut dyn Backend) {
        let Some(v) = self.observe(be) else { return };
        let unit: String = hn.chars().filter(|c| c.is_ascii_digit()).collect();
        let Some(vf) = v
            .platform
            .vf_map
            .iter()
            .find(|(_, h)| h.as_str() == hn)
            .map(|(vf, _)| vf.clone())
        else {
            self.log.push(format!("{hn}: VF was detached"));
            return;
        };
        let lagg = format!("lagg{unit}");
        let rc = crate::agent::load_rc(&self.rc);
        if let Some(l) = v.interface(&lagg) {
            let has = l.aggregate.as_ref().is_some_and(|a| a.ports.contains(&vf));
            if !has {
                self.apply(
                    be,
                    Op::AddPort {
                        aggregate: lagg.clone(),
                        port: vf,
                    },
                );
            }
            return;
        }
        self.log.push(format!("hyperv_vfup {hn}: creating {lagg}"));
        if !self.apply(be, Op::CreateAggregate { name: lagg.clone() }) {
            self.log.push(format!("{lagg} creation failed"));
            return;
        }
        self.apply(
            be,
            Op::SetAggregateProto {
                aggregate: lagg.clone(),
                proto: hvnet_vf::AggregateProto::Failover,
            },
        );
        for port in [hn.to_string(), vf] {
            self.apply(
                be,
                Op::AddPort {
                    aggregate: lagg.clone(),
                    port,
                },
            );
        }
        // The /var/run/dhclient.hnX.pid check is stale since FreeBSD 12:
        // nothing is killed. Then `ifconfig hnX -alias` until it fails.
        if let Some(h) = self.observe(be).and_then(|v| v.interface(hn).cloned()) {
            for a in &h.ipv4 {
                self.apply(
                    be,
                    Op::RemoveAddress {
                        iface: hn.to_string(),
                        addr: IpNet::V4(*a),
                    },
                );
            }
        }
        let ic = rc.interface(hn);
        if ic.dhcp {
            self.apply(
                be,
                Op::SetAdmin {
                    iface: lagg.clone(),
                    up: true,
                },
            );
            self.apply(
                be,
                Op::StartDhcp {
                    iface: lagg,
                    sync: ic.sync_dhcp,
                },
            );
        } else if !ic.args.is_empty() {
            // `ifconfig laggN $(ifconfig_getargs hnX)`: the main words only.
            let mut cfg = hvnet_vf::IfConfig::default();
            hvnet_vf::netconf::apply_words(&mut cfg, &ic.args, false);
            if let Some(m) = cfg.mtu {
                self.apply(
                    be,
                    Op::SetMtu {
                        iface: lagg.clone(),
                        mtu: m,
                    },
                );
            }
            for a in cfg.ipv4 {
                self.apply(
                    be,
                    Op::AddAddress {
                        iface: lagg.clone(),
                        addr: IpNet::V4(a),
                    },
                );
            }
            for a in cfg.ipv6 {
                self.apply(
                    be,
                    Op::AddAddress {
                        iface: lagg.clone(),
                        addr: IpNet::V6(a),
                    },
                );
            }
            self.apply(
                be,
                Op::SetAdmin {
                    iface: lagg,
                    up: true,
                },
            );
        }
    }

    /// devd.conf: `IFNET LINK_UP` → `service dhclient quietstart IF`,
    /// which starts dhclient only for DHCP-configured interfaces.
    fn link_up(&mut self, iface: &str, be: &mut dyn Backend) {
        let rc = crate::agent::load_rc(&self.rc);
        if !rc.interface(iface).dhcp {
            return;
        }
        let Some(v) = self.observe(be) else { return };
        if v.dhcp_for(iface).next().is_none() && v.interface(iface).is_some() {
            self.apply(
                be,
                Op::StartDhcp {
                    iface: iface.to_string(),
                    sync: false,
                },
            );
        }
    }

    fn daemon(&mut self, cdev: &str, create: bool, be: &mut dyn Backend) {
        let Some(d) = Daemon::ALL.into_iter().find(|d| d.device() == cdev) else {
            return;
        };
        if create {
            self.apply(be, Op::StartDaemon { daemon: d });
        } else if let Some(v) = self.observe(be) {
            // pkill -x NAME
            for p in v.daemon_procs(d).cloned().collect::<Vec<_>>() {
                self.apply(
                    be,
                    Op::StopDaemon {
                        daemon: d,
                        pid: p.pid,
                    },
                );
            }
        }
    }
}

impl OriginalScripts {
    /// The commands devd runs for `line` with hyperv.conf and devd.conf's
    /// `IFNET LINK_UP` rule (values need no quoting: interface and device
    /// names are single safe words).
    pub fn builtin_rules(line: &str) -> Vec<String> {
        let Some(f) = notify_fields(line) else {
            return Vec::new();
        };
        let get = |k: &str| f.get(k).copied().unwrap_or("");
        let safe = |v: &str| {
            !v.is_empty()
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
        };
        let sub = get("subsystem");
        let cmd = match (get("system"), get("type")) {
            ("ETHERNET", "IFATTACH") if safe(sub) => {
                format!("/usr/libexec/hyperv/hyperv_vfattach {sub} 0")
            }
            ("HYPERV_NIC_VF", "VF_UP") if safe(sub) => {
                format!("/usr/libexec/hyperv/hyperv_vfup {sub}")
            }
            ("IFNET", "LINK_UP") if safe(sub) => format!("service dhclient quietstart {sub}"),
            ("DEVFS", t) if sub == "CDEV" => match (t, get("cdev")) {
                ("CREATE", "hv_kvp_dev") => "/usr/sbin/hv_kvp_daemon".into(),
                ("DESTROY", "hv_kvp_dev") => "pkill -x hv_kvp_daemon".into(),
                ("CREATE", "hv_fsvss_dev") => "/usr/sbin/hv_vss_daemon".into(),
                ("DESTROY", "hv_fsvss_dev") => "pkill -x hv_vss_daemon".into(),
                _ => return Vec::new(),
            },
            _ => return Vec::new(),
        };
        vec![cmd]
    }

    /// Run one devd action (a `/bin/sh -c` string) in the simulated guest.
    /// Known programs: hyperv_vfattach, hyperv_vfup, hv_kvp_daemon,
    /// hv_vss_daemon, `pkill -x`, `service dhclient quietstart|start`;
    /// anything else is logged as not simulated.
    pub fn run_action(&mut self, now: Duration, cmd: &str, be: &mut dyn Backend) {
        let argv = match shell_words(cmd) {
            Some(a) if !a.is_empty() => a,
            _ => {
                self.log.push(format!("not simulated: {cmd}"));
                return;
            }
        };
        let prog = argv[0].rsplit('/').next().unwrap_or(&argv[0]).to_string();
        let args: Vec<&str> = argv[1..].iter().map(String::as_str).collect();
        match (prog.as_str(), args.as_slice()) {
            ("hyperv_vfattach", [iface, "0"]) => self.vfattach(now, iface, be),
            ("hyperv_vfattach", [iface, delay]) => {
                if let Ok(d) = delay.parse::<u64>() {
                    let at = now + Duration::from_secs(d);
                    self.pending_up
                        .entry(at)
                        .or_default()
                        .push(iface.to_string());
                }
            }
            ("hyperv_vfup", [hn]) => self.vfup(hn, be),
            ("hv_kvp_daemon", _) => self.daemon("hv_kvp_dev", true, be),
            ("hv_vss_daemon", _) => self.daemon("hv_fsvss_dev", true, be),
            ("pkill", ["-x", name]) => {
                if let Some(d) = Daemon::from_process_name(name) {
                    self.daemon(d.device(), false, be);
                }
            }
            ("service", ["dhclient", "quietstart" | "start", iface]) => self.link_up(iface, be),
            _ => self.log.push(format!("not simulated: {cmd}")),
        }
    }
}

impl GuestAgent for OriginalScripts {
    fn name(&self) -> &str {
        "scripts"
    }

    fn on_devctl(&mut self, now: Duration, line: &str, be: &mut dyn Backend) {
        for cmd in Self::builtin_rules(line) {
            self.run_action(now, &cmd, be);
        }
    }

    fn on_timer(&mut self, now: Duration, be: &mut dyn Backend) {
        let due: Vec<Duration> = self.pending_up.range(..=now).map(|(t, _)| *t).collect();
        for t in due {
            for iface in self.pending_up.remove(&t).unwrap_or_default() {
                // `sleep delay; ifconfig IFACE up`
                self.apply(be, Op::SetAdmin { iface, up: true });
            }
        }
    }

    fn next_wakeup(&self) -> Option<Duration> {
        self.pending_up.keys().next().copied()
    }

    fn take_log(&mut self) -> Vec<String> {
        std::mem::take(&mut self.log)
    }
}

/// Maps a devctl line to the action strings devd would run (e.g. built
/// with hvnet-devd over hyperv.conf and devd.conf).
pub type DevdMatcher = Box<dyn FnMut(&str) -> Vec<String>>;

/// The devd hook: a caller-supplied rule matcher whose actions run in the
/// simulated guest through [`OriginalScripts::run_action`].
pub struct DevdRules {
    matcher: DevdMatcher,
    scripts: OriginalScripts,
}

impl DevdRules {
    pub fn new(rc_conf: &str, matcher: DevdMatcher) -> Self {
        DevdRules {
            matcher,
            scripts: OriginalScripts::new(rc_conf),
        }
    }
}

impl GuestAgent for DevdRules {
    fn name(&self) -> &str {
        "devd"
    }

    fn on_devctl(&mut self, now: Duration, line: &str, be: &mut dyn Backend) {
        for cmd in (self.matcher)(line) {
            self.scripts.log.push(format!("devd: {cmd}"));
            self.scripts.run_action(now, &cmd, be);
        }
    }

    fn on_timer(&mut self, now: Duration, be: &mut dyn Backend) {
        self.scripts.on_timer(now, be);
    }

    fn next_wakeup(&self) -> Option<Duration> {
        self.scripts.next_wakeup()
    }

    fn take_log(&mut self) -> Vec<String> {
        self.scripts.take_log()
    }
}

/// Every interface of the simulated guest is Ethernet except loopback.
struct GuestMedia;

impl hvnet_devd::MediaProbe for GuestMedia {
    fn media(&self, ifname: &str) -> Option<hvnet_devd::MediaType> {
        (!ifname.starts_with("lo")).then_some(hvnet_devd::MediaType::Ethernet)
    }
}

/// A rule matcher from devd configuration texts (hvnet-devd's engine).
pub fn devd_matcher(files: &[(&str, &str)]) -> Result<DevdMatcher, String> {
    let opts = hvnet_devd::LoadOptions {
        no_directories: true,
        ..Default::default()
    };
    let mut text = String::new();
    for (_, t) in files {
        text.push_str(t);
        text.push('\n');
    }
    let name = files.iter().map(|(n, _)| *n).collect::<Vec<_>>().join("+");
    let cfg = hvnet_devd::Config::parse_str(&name, &text, &opts).map_err(|e| e.to_string())?;
    let engine = hvnet_devd::Engine::new(cfg);
    Ok(Box::new(move |line: &str| {
        match hvnet_devd::Event::parse(line) {
            Ok(ev) => engine.decide(&ev, &GuestMedia).actions.into_vec(),
            Err(_) => Vec::new(),
        }
    }))
}

/// The `devd` agent: hvnet-devd running hyperv.conf and dhclient.conf,
/// actions executed in the guest.
pub fn devd_agent() -> AgentFactory {
    Box::new(|ctx: &AgentContext| {
        let m = devd_matcher(&[
            ("hyperv.conf", HYPERV_CONF),
            ("dhclient.conf", DHCLIENT_CONF),
        ])
        .expect("the built-in devd rules parse");
        Box::new(DevdRules::new(&ctx.rc_conf, m))
    })
}
