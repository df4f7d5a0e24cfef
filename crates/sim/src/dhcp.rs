//! dhclient(8) in the guest and the DHCP server on the network. Leases are
//! keyed by MAC (hnX, its VF and its lagg share one, so they share a lease).
//! dhclient exits when its interface loses link (spec hn.md §3.1) without
//! removing its address; an expired lease removes it.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use hvnet_vf::{IpNet, Ipv4Net, Mac, Route};

use crate::world::{DhcpClientState, KernelError, ProcKind, Timer, World};

/// How long dhclient waits before retrying a failed exchange.
pub const DHCP_RETRY: Duration = Duration::from_secs(3);

impl World {
    /// `dhclient -b IFACE`. A second dhclient for the same interface exits
    /// at once; the existing pid is returned.
    pub fn start_dhclient(&mut self, now: Duration, iface: &str) -> Result<u32, KernelError> {
        self.need(iface)?;
        if let Some((pid, _)) = self.dhclients.iter().find(|(_, c)| c.iface == iface) {
            return Ok(*pid);
        }
        let pid = self.spawn(ProcKind::Dhclient {
            iface: iface.to_string(),
        });
        self.dhclients.insert(
            pid,
            DhcpClientState {
                iface: iface.to_string(),
                bound: None,
                lease_until: Duration::ZERO,
            },
        );
        self.schedule(now + self.dhcp.delay, Timer::Dhcp { pid });
        Ok(pid)
    }

    /// The address the server gives `mac` (stable per MAC).
    pub fn lease_for(&mut self, mac: Mac) -> Ipv4Addr {
        if let Some(a) = self.dhcp.leases.get(&mac) {
            return *a;
        }
        let n = u32::try_from(self.dhcp.leases.len()).unwrap_or(u32::MAX);
        let a = Ipv4Addr::from(u32::from(self.dhcp.first).saturating_add(n));
        self.dhcp.leases.insert(mac, a);
        a
    }

    /// Can `iface` reach the DHCP server right now?
    fn dhcp_can_talk(&self, iface: &str) -> bool {
        let Some(i) = self.ifnets.get(iface) else {
            return false;
        };
        // A lagg port's own dhclient never sees the reply: lagg takes the
        // frame (rcvif rewritten) before BPF does.
        self.dhcp.enabled
            && i.up
            && i.running
            && i.link
            && i.member_of.is_none()
            && self.tx_fate(iface).is_delivered()
    }

    /// A dhclient exchange is due (first lease, renewal, or retry).
    pub fn dhcp_timer(&mut self, now: Duration, pid: u32) {
        let Some(c) = self.dhclients.get(&pid).cloned() else {
            return;
        };
        if self.dhcp_can_talk(&c.iface) {
            let mac = self.ifnets[&c.iface].mac;
            let addr = Ipv4Net::new(self.lease_for(mac), self.dhcp.prefix);
            if c.bound != Some(addr) || !self.ifnets[&c.iface].ipv4.contains(&addr) {
                if let Some(old) = c.bound.filter(|o| *o != addr) {
                    let _ = self.remove_address(now, &c.iface, IpAddr::V4(old.addr));
                }
                let _ = self.add_address(now, &c.iface, IpNet::V4(addr));
            }
            if let Some(gw) = self.dhcp.router {
                let dflt = IpNet::default_v4();
                if !self.routes.iter().any(|r| r.dest == dflt) {
                    let _ = self.add_route(&Route {
                        dest: dflt,
                        gateway: Some(IpAddr::V4(gw)),
                        iface: Some(c.iface.clone()),
                    });
                }
            }
            let lease = self.dhcp.lease;
            let st = self.dhclients.get_mut(&pid).expect("client");
            st.bound = Some(addr);
            st.lease_until = now + lease;
            self.schedule(now + lease / 2, Timer::Dhcp { pid });
            return;
        }
        match c.bound {
            Some(addr) if now >= c.lease_until => {
                // EXPIRE: dhclient-script removes the address.
                let _ = self.remove_address(now, &c.iface, IpAddr::V4(addr.addr));
                self.dhclients.get_mut(&pid).expect("client").bound = None;
                self.schedule(now + DHCP_RETRY, Timer::Dhcp { pid });
            }
            Some(_) => {
                let next = (now + DHCP_RETRY).min(c.lease_until);
                self.schedule(
                    next.max(now + Duration::from_millis(1)),
                    Timer::Dhcp { pid },
                );
            }
            None => self.schedule(now + DHCP_RETRY, Timer::Dhcp { pid }),
        }
    }

    /// dhclient exits when its interface loses link.
    pub(crate) fn dhclient_link_lost(&mut self, iface: &str) {
        let pids: Vec<u32> = self
            .dhclients
            .iter()
            .filter(|(_, c)| c.iface == iface)
            .map(|(p, _)| *p)
            .collect();
        for pid in pids {
            self.klog(format!("dhclient[{pid}]: {iface} link down, exiting"));
            let _ = self.kill(pid);
        }
    }

    /// dhclient pid file path (FreeBSD 12+).
    pub fn dhclient_pidfile(iface: &str) -> String {
        format!("/var/run/dhclient/dhclient.{iface}.pid")
    }
}
