//! Interface ioctls as ifconfig(8) issues them: flags (SIOCSIFFLAGS), MTU,
//! addresses, routes; with the kernel side effects the hn model depends on
//! (if_up/if_down events, ifaddr events, driver init).

use std::net::IpAddr;
use std::time::Duration;

use hvnet_vf::{IpNet, Route};

use crate::world::{IfClass, KernelError, World};

impl World {
    /// `ifconfig NAME up|down` (SIOCSIFFLAGS): if_down before the driver
    /// stops, driver init before if_up.
    pub fn set_admin(&mut self, now: Duration, name: &str, up: bool) -> Result<(), KernelError> {
        self.need(name)?;
        self.driver_set_flags(now, name, up);
        Ok(())
    }

    pub(crate) fn driver_set_flags(&mut self, now: Duration, name: &str, up: bool) {
        let Some(ifp) = self.ifnets.get(name) else {
            return;
        };
        let was_up = ifp.up;
        if was_up && !up {
            self.if_down(now, name);
        }
        if up {
            self.driver_init(now, name);
        } else {
            self.driver_stop(now, name);
        }
        if up && !was_up {
            self.if_up(now, name);
        }
    }

    /// Driver init (`if_init`): running, and the class-specific part.
    fn driver_init(&mut self, now: Duration, name: &str) {
        let ifp = self.ifnets.get_mut(name).expect("ifnet");
        let was_running = ifp.running;
        ifp.running = true;
        match ifp.class {
            IfClass::Vf => {
                let ok = ifp.vf.as_ref().is_none_or(|h| h.hw_ok);
                self.set_link(now, name, ok);
            }
            IfClass::Hn if self.vf_transparent => self.xpnt_vf_init(now, name),
            IfClass::Lagg if !was_running => self.lagg_update_link(now, name),
            _ => {}
        }
    }

    fn driver_stop(&mut self, now: Duration, name: &str) {
        let class = self.ifnets[name].class.clone();
        if class == IfClass::Hn {
            self.xpnt_hn_stop(now, name);
        }
        let ifp = self.ifnets.get_mut(name).expect("ifnet");
        ifp.running = false;
        if class == IfClass::Vf {
            self.set_link(now, name, false);
        }
    }

    /// `if_up`: IFF_UP and the IFNET_EVENT_UP handlers.
    fn if_up(&mut self, now: Duration, name: &str) {
        self.ifnets.get_mut(name).expect("ifnet").up = true;
        self.hn_vf_flags_changed(now, name);
    }

    /// `if_down`: clear IFF_UP and run the IFNET_EVENT_DOWN handlers (also
    /// the first step of if_detach). The driver is not told.
    pub(crate) fn if_down(&mut self, now: Duration, name: &str) {
        if let Some(i) = self.ifnets.get_mut(name) {
            i.up = false;
        }
        self.hn_vf_flags_changed(now, name);
    }

    /// `ifconfig NAME mtu N`. hn in transparent mode forwards to a ready VF
    /// first (a VF failure aborts); lagg sets every port.
    pub fn set_mtu(&mut self, now: Duration, name: &str, mtu: u32) -> Result<(), KernelError> {
        let ifp = self.need(name)?;
        if !(72..=65535).contains(&mtu) {
            return Err(KernelError::Invalid(name.to_string()));
        }
        let max = |w: &World, n: &str| -> u32 {
            w.ifnets[n].vf.as_ref().map_or(
                if w.ifnets[n].class == IfClass::Hn {
                    65535 - 14
                } else {
                    65535
                },
                |h| h.max_mtu,
            )
        };
        if mtu > max(self, name) {
            return Err(KernelError::Invalid(name.to_string()));
        }
        match ifp.class {
            IfClass::Hn if self.vf_transparent => {
                let st = &self.hns[name];
                if let (Some(vf), true) = (st.vf.clone(), st.xpnt_ready) {
                    if mtu > max(self, &vf) {
                        return Err(KernelError::Invalid(vf));
                    }
                    self.ifnets.get_mut(&vf).expect("vf").mtu = mtu;
                }
            }
            IfClass::Lagg => {
                let ports = self.ifnets[name]
                    .lagg
                    .as_ref()
                    .map(|l| l.ports.clone())
                    .unwrap_or_default();
                if ports.iter().any(|p| mtu > max(self, p)) {
                    return Err(KernelError::Invalid(name.to_string()));
                }
                for p in ports {
                    self.ifnets.get_mut(&p).expect("port").mtu = mtu;
                }
            }
            _ => {}
        }
        self.ifnets.get_mut(name).expect("ifnet").mtu = mtu;
        let _ = now;
        Ok(())
    }

    /// `ifconfig NAME inet|inet6 ADDR` (SIOCAIFADDR): adding an address
    /// sets IFF_UP and initialises the driver without if_up(); then the
    /// ifaddr event handlers run. Adding an existing address succeeds.
    pub fn add_address(
        &mut self,
        now: Duration,
        name: &str,
        addr: IpNet,
    ) -> Result<(), KernelError> {
        let ifp = self.ifnet_mut(name)?;
        match addr {
            IpNet::V4(n) => {
                if let Some(e) = ifp.ipv4.iter_mut().find(|e| e.addr == n.addr) {
                    e.prefix = n.prefix;
                } else {
                    ifp.ipv4.push(n);
                }
            }
            IpNet::V6(n) => {
                if let Some(e) = ifp.ipv6.iter_mut().find(|e| e.addr == n.addr) {
                    e.prefix = n.prefix;
                } else {
                    ifp.ipv6.push(n);
                }
            }
        }
        if !ifp.up || !ifp.running {
            ifp.up = true;
            self.driver_init(now, name);
        }
        self.hn_vf_flags_changed(now, name);
        Ok(())
    }

    /// `ifconfig NAME inet ADDR -alias`. Routes whose gateway is no longer
    /// on-link through the interface go with the address.
    pub fn remove_address(
        &mut self,
        now: Duration,
        name: &str,
        addr: IpAddr,
    ) -> Result<(), KernelError> {
        let ifp = self.ifnet_mut(name)?;
        let before = ifp.ipv4.len() + ifp.ipv6.len();
        ifp.ipv4.retain(|n| IpAddr::V4(n.addr) != addr);
        ifp.ipv6.retain(|n| IpAddr::V6(n.addr) != addr);
        if before == ifp.ipv4.len() + ifp.ipv6.len() {
            return Err(KernelError::Invalid(format!("{name}: {addr}")));
        }
        self.prune_routes(name);
        self.hn_vf_flags_changed(now, name);
        Ok(())
    }

    /// `ifconfig NAME -alias` without an address: the first IPv4 address.
    pub fn remove_first_ipv4(&mut self, now: Duration, name: &str) -> Result<(), KernelError> {
        let first = self
            .need(name)?
            .ipv4
            .first()
            .map(|n| n.addr)
            .ok_or_else(|| KernelError::Invalid(format!("{name}: no address")))?;
        self.remove_address(now, name, IpAddr::V4(first))
    }

    /// Address purge on detach.
    pub(crate) fn purge_addresses(&mut self, now: Duration, name: &str) {
        if let Some(i) = self.ifnets.get_mut(name) {
            i.ipv4.clear();
            i.ipv6.clear();
        }
        self.prune_routes(name);
        self.hn_vf_flags_changed(now, name);
    }

    /// Drop routes via `name` whose gateway is no longer on-link.
    pub(crate) fn prune_routes(&mut self, name: &str) {
        let ifp = self.ifnets.get(name).cloned();
        self.routes.retain(|r| {
            if r.iface.as_deref() != Some(name) {
                return true;
            }
            let Some(ifp) = &ifp else { return false };
            match r.gateway {
                None => true,
                Some(IpAddr::V4(g)) => ifp
                    .ipv4
                    .iter()
                    .any(|n| hvnet_vf::netconf::v4_contains(n, g)),
                Some(IpAddr::V6(g)) => {
                    g.segments()[0] & 0xffc0 == 0xfe80
                        || ifp
                            .ipv6
                            .iter()
                            .any(|n| hvnet_vf::netconf::v6_contains(n, g))
                }
            }
        });
    }

    /// The interface a gateway is on-link through.
    pub fn onlink_iface(&self, gw: IpAddr) -> Option<String> {
        self.by_index()
            .into_iter()
            .find(|i| match gw {
                IpAddr::V4(g) => i.ipv4.iter().any(|n| hvnet_vf::netconf::v4_contains(n, g)),
                IpAddr::V6(g) => i.ipv6.iter().any(|n| hvnet_vf::netconf::v6_contains(n, g)),
            })
            .map(|i| i.name.clone())
    }

    /// `route add`: the gateway must be on-link; the route binds to that
    /// interface unless one is given. Adding an identical route succeeds.
    pub fn add_route(&mut self, route: &Route) -> Result<(), KernelError> {
        let mut r = route.clone();
        if r.iface.is_none() {
            if let Some(gw) = r.gateway {
                r.iface =
                    Some(self.onlink_iface(gw).ok_or_else(|| {
                        KernelError::Invalid(format!("network unreachable {gw}"))
                    })?);
            }
        }
        if let Some(i) = &r.iface {
            self.need(i)?;
        }
        if let Some(e) = self.routes.iter().find(|e| e.dest == r.dest) {
            if *e == r {
                return Ok(());
            }
            return Err(KernelError::Exists(format!("route {}", r.dest)));
        }
        self.routes.push(r);
        Ok(())
    }

    /// `route change DEST [GW] -ifp IF` / `-interface IF`: the installed route to
    /// DEST goes through `route.iface` (and `route.gateway`) from now on, in one
    /// step. The gateway must be on-link through the new interface.
    pub fn change_route(&mut self, route: &Route) -> Result<(), KernelError> {
        let iface = route
            .iface
            .clone()
            .ok_or_else(|| KernelError::Invalid(format!("route {}: no interface", route.dest)))?;
        self.need(&iface)?;
        if let Some(gw) = route.gateway {
            let onlink = self.ifnets[&iface].ipv4.iter().any(|n| match gw {
                IpAddr::V4(g) => hvnet_vf::netconf::v4_contains(n, g),
                IpAddr::V6(_) => false,
            }) || self.ifnets[&iface].ipv6.iter().any(|n| match gw {
                IpAddr::V6(g) => {
                    g.segments()[0] & 0xffc0 == 0xfe80 || hvnet_vf::netconf::v6_contains(n, g)
                }
                IpAddr::V4(_) => false,
            });
            if !onlink {
                return Err(KernelError::Invalid(format!("network unreachable {gw}")));
            }
        }
        let e = self
            .routes
            .iter_mut()
            .find(|e| e.dest == route.dest)
            .ok_or_else(|| KernelError::NoRoute(route.dest.to_string()))?;
        e.gateway = route.gateway;
        e.iface = Some(iface);
        Ok(())
    }

    /// `route delete DEST`. Deleting a missing route succeeds (retry-safe).
    pub fn remove_route(&mut self, route: &Route) {
        self.routes.retain(|e| e.dest != route.dest);
    }
}
