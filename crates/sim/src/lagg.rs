//! lagg(4) failover (spec hn.md §5): create/destroy, port add/remove with
//! its checks, MTU and MAC handling, primary election, active port, receive
//! acceptance, link state.

use std::time::Duration;

use hvnet_vf::{AggregateProto, Mac};

use crate::world::{IfClass, Ifnet, KernelError, LaggState, World};

/// Most ports a lagg takes.
pub const LAGG_MAX_PORTS: usize = 32;

impl World {
    /// `ifconfig laggN create`.
    pub fn create_lagg(&mut self, now: Duration, name: &str) -> Result<(), KernelError> {
        if self.ifnets.contains_key(name) {
            return Err(KernelError::Exists(name.to_string()));
        }
        let unit_ok = name
            .strip_prefix("lagg")
            .is_some_and(|u| !u.is_empty() && u.bytes().all(|b| b.is_ascii_digit()));
        if !unit_ok {
            return Err(KernelError::Invalid(name.to_string()));
        }
        let index = self.alloc_index();
        let mut ifp = Ifnet::new(name, "lagg", index, IfClass::Lagg, Mac::ZERO);
        ifp.lagg = Some(LaggState::default());
        self.ether_ifattach(ifp);
        let _ = now;
        Ok(())
    }

    /// `ifconfig laggN destroy`: ports are released (MACs restored).
    pub fn destroy_lagg(&mut self, now: Duration, name: &str) -> Result<(), KernelError> {
        let ifp = self.need(name)?;
        let Some(l) = ifp.lagg.clone() else {
            return Err(KernelError::Invalid(name.to_string()));
        };
        for p in l.ports {
            self.remove_port(now, name, &p)?;
        }
        self.detach_ifnet(now, name)
    }

    /// `ifconfig laggN laggproto P`: a protocol lagg(4) does not have is refused.
    pub fn set_laggproto(&mut self, name: &str, proto: &AggregateProto) -> Result<(), KernelError> {
        if !proto.is_known() {
            return Err(KernelError::Invalid(proto.to_string()));
        }
        let l = self
            .ifnet_mut(name)?
            .lagg
            .as_mut()
            .ok_or_else(|| KernelError::Invalid(name.to_string()))?;
        l.proto = proto.clone();
        Ok(())
    }

    /// `ifconfig laggN laggport IF` (SIOCSLAGGPORT, `lagg_port_create`).
    pub fn add_port(&mut self, now: Duration, lagg: &str, port: &str) -> Result<(), KernelError> {
        let l = self
            .need(lagg)?
            .lagg
            .clone()
            .ok_or_else(|| KernelError::Invalid(lagg.to_string()))?;
        let p = self.need(port)?.clone();
        if port == lagg {
            return Err(KernelError::Invalid(port.to_string()));
        }
        if l.ports.len() >= LAGG_MAX_PORTS {
            return Err(KernelError::NoSpace(lagg.to_string()));
        }
        match &p.member_of {
            Some(m) if m == lagg => return Err(KernelError::Exists(port.to_string())),
            Some(_) => return Err(KernelError::Busy(port.to_string())),
            None => {}
        }
        if p.class == IfClass::Lagg {
            return Err(KernelError::Invalid(port.to_string()));
        }
        if !p.alloctype_ether {
            return Err(KernelError::ProtoNotSupported(port.to_string()));
        }
        // MTU: the first port defines it, later ports are set to it.
        let lagg_mtu = self.ifnets[lagg].mtu;
        if l.ports.is_empty() {
            self.ifnets.get_mut(lagg).expect("lagg").mtu = p.mtu;
        } else if p.mtu != lagg_mtu {
            self.set_mtu(now, port, lagg_mtu)?;
        }
        // inet6 addresses of a port with a link-local are purged, and its IPv6
        // routes with them (in6_ifdetach).
        let pi = self.ifnets.get_mut(port).expect("port");
        if pi.ipv6.iter().any(|n| n.is_link_local()) {
            pi.ipv6.clear();
            self.routes.retain(|r| {
                r.iface.as_deref() != Some(port) || !matches!(r.dest, hvnet_vf::IpNet::V6(_))
            });
        }
        // lladdr: the first port gives the lagg its MAC; later ports take it.
        let first = l.ports.is_empty();
        if first {
            self.ifnets.get_mut(lagg).expect("lagg").mac = p.mac;
        } else {
            let lmac = self.ifnets[lagg].mac;
            let pi = self.ifnets.get_mut(port).expect("port");
            pi.saved_mac = Some(pi.mac);
            pi.mac = lmac;
        }
        self.ifnets.get_mut(port).expect("port").member_of = Some(lagg.to_string());
        let mut ports = l.ports.clone();
        hvnet_vf::lagg::insert_port(&mut ports, port, |n| self.ifnets[n].index);
        let st = self
            .ifnets
            .get_mut(lagg)
            .expect("lagg")
            .lagg
            .as_mut()
            .expect("lagg");
        st.ports = ports;
        if first {
            st.primary = Some(port.to_string());
        }
        self.lagg_update_link(now, lagg);
        Ok(())
    }

    /// `ifconfig laggN -laggport IF`.
    pub fn remove_port(
        &mut self,
        now: Duration,
        lagg: &str,
        port: &str,
    ) -> Result<(), KernelError> {
        let l = self
            .need(lagg)?
            .lagg
            .clone()
            .ok_or_else(|| KernelError::Invalid(lagg.to_string()))?;
        if !l.ports.iter().any(|p| p == port) {
            return Err(KernelError::Invalid(port.to_string()));
        }
        let pi = self.ifnets.get_mut(port).expect("port");
        if let Some(m) = pi.saved_mac.take() {
            pi.mac = m;
        }
        self.lagg_port_departed(now, lagg, port);
        Ok(())
    }

    /// Remove a port from the list (departure or -laggport after the MAC
    /// restore) and re-elect the primary.
    pub(crate) fn lagg_port_departed(&mut self, now: Duration, lagg: &str, port: &str) {
        if let Some(pi) = self.ifnets.get_mut(port) {
            pi.member_of = None;
        }
        let Some(st) = self.ifnets.get_mut(lagg).and_then(|i| i.lagg.as_mut()) else {
            return;
        };
        st.ports.retain(|p| p != port);
        if st.primary.as_deref() == Some(port) {
            st.primary = st.ports.first().cloned();
            let ports = st.ports.clone();
            let primary = st.primary.clone();
            let new_mac = primary
                .as_ref()
                .and_then(|p| self.ifnets.get(p))
                .map(|i| i.saved_mac.unwrap_or(i.mac))
                .unwrap_or(Mac::ZERO);
            self.ifnets.get_mut(lagg).expect("lagg").mac = new_mac;
            for p in ports {
                let pi = self.ifnets.get_mut(&p).expect("port");
                let orig = pi.saved_mac.unwrap_or(pi.mac);
                pi.mac = new_mac;
                pi.saved_mac = (orig != new_mac).then_some(orig);
            }
        }
        self.lagg_update_link(now, lagg);
    }

    /// lagg link: UP iff any port has link UP.
    pub(crate) fn lagg_update_link(&mut self, now: Duration, lagg: &str) {
        let Some(l) = self.ifnets.get(lagg).and_then(|i| i.lagg.as_ref()) else {
            return;
        };
        let up = l.ports.iter().any(|p| self.ifnets[p].link);
        self.set_link(now, lagg, up);
    }

    /// `lagg_link_active` for failover ([`hvnet_vf::lagg::failover_active`]): a port is
    /// usable iff link UP and IFF_UP.
    pub fn lagg_active_port(&self, lagg: &str) -> Option<String> {
        let l = self.ifnets.get(lagg)?.lagg.as_ref()?;
        let usable = |p: &str| self.ifnets.get(p).is_some_and(|i| i.link && i.up);
        hvnet_vf::lagg::failover_active(&l.ports, l.primary.as_deref(), usable).map(str::to_string)
    }

    /// `lagg_fail_input`: does the lagg accept a frame received on `port`?
    pub fn lagg_accepts_rx(&self, lagg: &str, port: &str) -> bool {
        let Some(l) = self.ifnets.get(lagg).and_then(|i| i.lagg.as_ref()) else {
            return false;
        };
        if l.proto != AggregateProto::Failover {
            return true;
        }
        if l.primary.as_deref() == Some(port) || self.failover_rx_all {
            return true;
        }
        let active = self.lagg_active_port(lagg);
        let primary_active = active.is_some() && active == l.primary;
        !primary_active && (active.as_deref() == Some(port) || active.is_none())
    }

    /// `laggport:` flags as ifconfig prints them (MASTER, ACTIVE, ...).
    pub fn laggport_flags(&self, lagg: &str, port: &str) -> Vec<&'static str> {
        let mut f = Vec::new();
        let Some(l) = self.ifnets.get(lagg).and_then(|i| i.lagg.as_ref()) else {
            return f;
        };
        if l.primary.as_deref() == Some(port) {
            f.push("MASTER");
        }
        if self.lagg_active_port(lagg).as_deref() == Some(port) {
            f.push("ACTIVE");
            f.push("COLLECTING");
            f.push("DISTRIBUTING");
        }
        f
    }
}
