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

impl GuestAgent for OriginalScripts {
    fn name(&self) -> &str {
        "scripts"
    }

    fn on_devctl(&mut self, now: Duration, line: &str, be: &mut dyn Backend) {
        let Some(f) = notify_fields(line) else { return };
        let (Some(sys), Some(sub), Some(ty)) = (f.get("system"), f.get("subsystem"), f.get("type"))
        else {
            return;
        };
        match (*sys, *ty) {
            ("ETHERNET", "IFATTACH") => self.vfattach(now, sub, be),
            ("HYPERV_NIC_VF", "VF_UP") => self.vfup(sub, be),
            ("IFNET", "LINK_UP") => self.link_up(sub, be),
            ("DEVFS", "CREATE") | ("DEVFS", "DESTROY") if *sub == "CDEV" => {
                if let Some(cdev) = f.get("cdev") {
                    self.daemon(cdev, *ty == "CREATE", be);
                }
            }
            _ => {}
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
