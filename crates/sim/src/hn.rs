//! hn(4)'s VF handling (spec hn.md §1): attach and pairing by MAC,
//! non-transparent activation (link pretence, RX redirection, VF_UP/VF_DOWN),
//! transparent mode (attach wait, init, datapath), and the ifnet attach and
//! detach sequences that drive them, with devctl events in kernel order.

use std::time::Duration;

use hvnet_vf::Mac;

use crate::world::{HnState, IfClass, Ifnet, KernelError, Timer, VfHw, World};

impl World {
    /// hn(4) attaches (vmbus offer at boot): ether_ifattach, then the
    /// initial RNDIS link query.
    pub fn attach_hn(&mut self, now: Duration, name: &str, mac: Mac) -> Result<(), KernelError> {
        if self.ifnets.contains_key(name) {
            return Err(KernelError::Exists(name.to_string()));
        }
        let unit: u32 = name
            .trim_start_matches(|c: char| !c.is_ascii_digit())
            .parse()
            .map_err(|_| KernelError::Invalid(name.to_string()))?;
        let index = self.alloc_index();
        let ifp = Ifnet::new(name, "hn", index, IfClass::Hn, mac);
        self.hns.insert(
            name.to_string(),
            HnState {
                name: name.to_string(),
                unit,
                synth_attached: true,
                vf: None,
                rxvf: false,
                link_suspended: false,
                link_query_pending: true,
                xpnt_ready: false,
                xpnt_enabled: false,
                xpnt_accbpf: self.vf_transparent && self.accbpf_default,
                datapath_vf: false,
                saved_caps: false,
            },
        );
        self.ether_ifattach(ifp);
        self.schedule(
            now + self.timing.link_query,
            Timer::LinkQuery {
                hn: name.to_string(),
            },
        );
        Ok(())
    }

    /// A VF's driver attaches its ifnet (PCI hot add): `if_attach`
    /// (IFNET ATTACH), `ether_ifattach_event` (hn pairing), ETHERNET IFATTACH.
    pub fn attach_vf(
        &mut self,
        now: Duration,
        dname: &str,
        mac: Mac,
        hw: VfHw,
    ) -> Result<String, KernelError> {
        let unit = self.alloc_unit(dname);
        let name = format!("{dname}{unit}");
        let index = self.alloc_index();
        let mut ifp = Ifnet::new(&name, dname, index, IfClass::Vf, mac);
        ifp.vf = Some(hw);
        self.ether_ifattach(ifp);
        self.after_ether_ifattach(now, &name);
        Ok(name)
    }

    /// `ether_ifattach` up to (not including) the ether_ifattach_event
    /// handlers: IFNET ATTACH. The caller runs the handlers, then
    /// [`World::ether_ifattach_done`] emits ETHERNET IFATTACH.
    pub(crate) fn ether_ifattach(&mut self, ifp: Ifnet) {
        let name = ifp.name.clone();
        self.ifnets.insert(name.clone(), ifp);
        self.notify("IFNET", &name, "ATTACH", None);
        if !matches!(self.ifnets[&name].class, IfClass::Vf) {
            self.ether_ifattach_done(&name);
        }
    }

    pub(crate) fn ether_ifattach_done(&mut self, name: &str) {
        self.notify("ETHERNET", name, "IFATTACH", None);
    }

    fn after_ether_ifattach(&mut self, now: Duration, name: &str) {
        let hns: Vec<String> = self.hns.keys().cloned().collect();
        for hn in hns {
            self.hn_ifnet_attevent(now, &hn, name);
        }
        self.ether_ifattach_done(name);
    }

    /// `hn_ismyvf`: pairing purely by MAC, on Ethernet alloctype, not
    /// lagg/vlan, both with a link address.
    pub fn hn_ismyvf(&self, hn: &str, ifp: &str) -> bool {
        let (Some(h), Some(v)) = (self.ifnets.get(hn), self.ifnets.get(ifp)) else {
            return false;
        };
        if h.name == v.name {
            return false;
        }
        v.alloctype_ether
            && v.dname != "lagg"
            && v.dname != "vlan"
            && !h.mac.is_zero()
            && !v.mac.is_zero()
            && h.mac == v.mac
    }

    /// `hn_ifnet_attevent`: register `vf` with `hn` when it is hn's VF.
    fn hn_ifnet_attevent(&mut self, now: Duration, hn: &str, vf: &str) {
        let Some(st) = self.hns.get(hn) else { return };
        if !st.synth_attached || !self.hn_ismyvf(hn, vf) {
            return;
        }
        if let Some(cur) = st.vf.clone() {
            self.klog(format!("{hn}: {cur} was attached as VF"));
            return;
        }
        let uses_if_start = self.ifnets[vf].vf.as_ref().is_some_and(|h| h.uses_if_start);
        if self.vf_transparent && uses_if_start {
            self.klog(format!(
                "{hn}: {vf} uses if_start, which is unsupported in transparent VF mode."
            ));
            return;
        }
        let idx = self.ifnets[vf].index;
        self.vfmap.insert(idx, hn.to_string());
        let attwait = u64::from(self.attwait);
        let transparent = self.vf_transparent;
        let st = self.hns.get_mut(hn).expect("hn exists");
        st.vf = Some(vf.to_string());
        if transparent {
            // Replace the VF's if_input, follow its link from now on, and
            // try to enable the VF after the attach wait.
            st.link_suspended = true;
            st.link_query_pending = false;
            st.xpnt_ready = false;
            self.schedule(
                now + Duration::from_secs(attwait),
                Timer::XpntInit {
                    hn: hn.to_string(),
                    vf: vf.to_string(),
                },
            );
        }
    }

    /// The VF ifnet goes away (PCI hot remove): if_down, address purge,
    /// ifnet_departure_event (hn deregistration, lagg port removal),
    /// IFNET DETACH.
    pub fn detach_ifnet(&mut self, now: Duration, name: &str) -> Result<(), KernelError> {
        self.need(name)?;
        if self.ifnets[name].up {
            self.if_down(now, name);
        }
        self.purge_addresses(now, name);
        // ifnet_departure_event handlers.
        let hns: Vec<String> = self.hns.keys().cloned().collect();
        for hn in hns {
            if self.hns[&hn].vf.as_deref() == Some(name) {
                self.hn_ifnet_detevent(now, &hn);
            }
        }
        if let Some(lagg) = self.ifnets[name].member_of.clone() {
            self.lagg_port_departed(now, &lagg, name);
        }
        let dhc: Vec<u32> = self
            .dhclients
            .iter()
            .filter(|(_, c)| c.iface == name)
            .map(|(p, _)| *p)
            .collect();
        for pid in dhc {
            let _ = self.kill(pid);
        }
        self.routes.retain(|r| r.iface.as_deref() != Some(name));
        self.ifnets.remove(name);
        self.notify("IFNET", name, "DETACH", None);
        Ok(())
    }

    /// `hn_ifnet_detevent`: deregister the VF.
    fn hn_ifnet_detevent(&mut self, now: Duration, hn: &str) {
        let Some(vf) = self.hns[hn].vf.clone() else {
            return;
        };
        if self.vf_transparent {
            let st = self.hns.get_mut(hn).expect("hn");
            let was_enabled = st.xpnt_enabled;
            st.xpnt_enabled = false;
            st.xpnt_ready = false;
            if was_enabled {
                self.set_datapath(hn, false);
            }
            self.resume_link_mgmt(now, hn);
        } else if self.hns[hn].rxvf {
            self.rxvf_change(now, hn, &vf, false);
        }
        if let Some(idx) = self.ifnets.get(&vf).map(|i| i.index) {
            self.vfmap.remove(&idx);
        }
        self.hns.get_mut(hn).expect("hn").vf = None;
    }

    pub(crate) fn set_datapath(&mut self, hn: &str, vf: bool) {
        if let Some(st) = self.hns.get_mut(hn) {
            st.datapath_vf = vf;
        }
        self.nvs_datapath.push((hn.to_string(), vf));
    }

    /// Link management resumes: hn's real link returns after an RNDIS query.
    fn resume_link_mgmt(&mut self, now: Duration, hn: &str) {
        let st = self.hns.get_mut(hn).expect("hn");
        st.link_suspended = false;
        if !st.link_query_pending {
            st.link_query_pending = true;
            self.schedule(
                now + self.timing.link_query,
                Timer::LinkQuery { hn: hn.to_string() },
            );
        }
    }

    /// An RNDIS link query completes: hn reports the host's link, unless
    /// link management was suspended again meanwhile.
    pub fn link_query_done(&mut self, now: Duration, hn: &str) {
        let Some(st) = self.hns.get_mut(hn) else {
            return;
        };
        if !st.link_query_pending {
            return;
        }
        st.link_query_pending = false;
        if st.link_suspended {
            return;
        }
        let link = self.host.get(hn).is_none_or(|h| h.link);
        self.set_link(now, hn, link);
    }

    /// The host's synthetic link changes (vswitch port up/down).
    pub fn host_link_change(&mut self, now: Duration, hn: &str, up: bool) {
        if let Some(h) = self.host.get_mut(hn) {
            h.link = up;
        }
        if let Some(st) = self.hns.get(hn) {
            if !st.link_suspended {
                self.set_link(now, hn, up);
            }
        }
    }

    /// Non-transparent `hn_rxvf_change`: activate or deactivate the VF.
    pub(crate) fn rxvf_change(&mut self, now: Duration, hn: &str, vf: &str, up: bool) {
        let Some(st) = self.hns.get(hn) else { return };
        if self.vf_transparent
            || !st.synth_attached
            || st.vf.as_deref() != Some(vf)
            || st.rxvf == up
        {
            return;
        }
        if up {
            self.hns.get_mut(hn).expect("hn").rxvf = true;
            self.set_datapath(hn, true);
            let st = self.hns.get_mut(hn).expect("hn");
            st.link_suspended = true;
            st.link_query_pending = false;
            self.set_link(now, hn, false);
            self.notify("HYPERV_NIC_VF", hn, "VF_UP", None);
            self.klog(format!("{hn}: datapath is switched to {vf}"));
        } else {
            self.hns.get_mut(hn).expect("hn").rxvf = false;
            self.set_datapath(hn, false);
            self.resume_link_mgmt(now, hn);
            self.notify("HYPERV_NIC_VF", hn, "VF_DOWN", None);
            self.klog(format!("{hn}: datapath is switched from {vf}"));
        }
    }

    /// Non-transparent: re-evaluate the VF's IFF_UP (ifnet_event and
    /// ifaddr_event handlers).
    pub(crate) fn hn_vf_flags_changed(&mut self, now: Duration, vf: &str) {
        if self.vf_transparent {
            return;
        }
        let Some(hn) = self.hn_of_vf(vf).map(str::to_string) else {
            return;
        };
        let up = self.ifnets.get(vf).is_some_and(|i| i.up);
        self.rxvf_change(now, &hn, vf, up);
    }

    /// Transparent: the attach-wait task fires.
    pub fn xpnt_init_task(&mut self, now: Duration, hn: &str, vf: &str) {
        let Some(st) = self.hns.get(hn) else { return };
        if st.vf.as_deref() != Some(vf) || st.xpnt_ready {
            return;
        }
        self.xpnt_setready(now, hn);
        if self.ifnets.get(hn).is_some_and(|i| i.running) {
            self.xpnt_vf_init(now, hn);
        }
    }

    /// `hn_xpnt_vf_setready`: sync MTU to the VF.
    fn xpnt_setready(&mut self, now: Duration, hn: &str) {
        let vf = self.hns[hn].vf.clone().expect("vf");
        self.hns.get_mut(hn).expect("hn").xpnt_ready = true;
        self.hns.get_mut(hn).expect("hn").saved_caps = true;
        let hn_mtu = self.ifnets[hn].mtu;
        if hn_mtu != 1500 {
            let max = self.ifnets[&vf].vf.as_ref().map_or(1500, |h| h.max_mtu);
            if hn_mtu <= max {
                self.ifnets.get_mut(&vf).expect("vf").mtu = hn_mtu;
            } else {
                self.klog(format!("{hn}: failed to change {vf} MTU to {hn_mtu}"));
                if hn_mtu > 1500 {
                    self.ifnets.get_mut(hn).expect("hn").mtu = 1500;
                }
            }
        }
        let _ = now;
    }

    /// `hn_xpnt_vf_init`: bring the VF up with hn's flags, datapath VF,
    /// enable.
    pub(crate) fn xpnt_vf_init(&mut self, now: Duration, hn: &str) {
        let Some(vf) = self.hns[hn].vf.clone() else {
            return;
        };
        if !self.hns[hn].xpnt_ready || self.hns[hn].xpnt_enabled {
            return;
        }
        let hw_ok = self.ifnets[&vf].vf.as_ref().is_none_or(|h| h.hw_ok);
        if !hw_ok {
            self.klog(format!("{hn}: bringing up {vf} failed"));
            return;
        }
        self.driver_set_flags(now, &vf, true);
        self.set_datapath(hn, true);
        self.hns.get_mut(hn).expect("hn").xpnt_enabled = true;
    }

    /// Transparent `hn_stop` part: datapath SYNTH first, then VF down.
    pub(crate) fn xpnt_hn_stop(&mut self, now: Duration, hn: &str) {
        let Some(st) = self.hns.get(hn) else { return };
        if !self.vf_transparent {
            return;
        }
        let Some(vf) = st.vf.clone() else { return };
        if st.xpnt_enabled {
            self.hns.get_mut(hn).expect("hn").xpnt_enabled = false;
            self.set_datapath(hn, false);
        }
        if self.hns[hn].xpnt_ready && self.ifnets.contains_key(&vf) {
            self.driver_set_flags(now, &vf, false);
        }
    }

    /// Set a link state (`if_link_state_change`): the state changes now;
    /// the devctl IFNET LINK_UP/LINK_DOWN and the link event handlers run
    /// later from the link task ([`World::run_link_tasks`]), as FreeBSD
    /// defers them to a taskqueue — so e.g. `VF_UP` reaches devd before
    /// hn's `LINK_DOWN`.
    pub(crate) fn set_link(&mut self, _now: Duration, name: &str, up: bool) {
        let Some(ifp) = self.ifnets.get_mut(name) else {
            return;
        };
        if ifp.link == up {
            return;
        }
        ifp.link = up;
        if !self.link_tasks.iter().any(|n| n == name) {
            self.link_tasks.push_back(name.to_string());
        }
    }

    /// Run queued link tasks (`do_link_state_change`): lagg port state,
    /// devctl, transparent hn mirroring, dhclient's reaction. A task
    /// reports the state at the time it runs (coalesced like a taskqueue).
    pub fn run_link_tasks(&mut self, now: Duration) {
        while let Some(name) = self.link_tasks.pop_front() {
            let Some(ifp) = self.ifnets.get(&name) else {
                continue;
            };
            let up = ifp.link;
            let member_of = ifp.member_of.clone();
            if let Some(lagg) = member_of {
                self.lagg_update_link(now, &lagg);
            }
            self.notify(
                "IFNET",
                &name,
                if up { "LINK_UP" } else { "LINK_DOWN" },
                None,
            );
            if self.vf_transparent {
                if let Some(hn) = self.hn_of_vf(&name).map(str::to_string) {
                    if self.hns[&hn].link_suspended {
                        self.set_link(now, &hn, up);
                    }
                }
            }
            if !up {
                self.dhclient_link_lost(&name);
            }
        }
    }
}
