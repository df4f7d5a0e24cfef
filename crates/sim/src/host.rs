//! The Hyper-V host: synthetic NICs, VF offers and revocations. A planned
//! revocation (live migration, servicing) switches the host's datapath to
//! synthetic first and detaches the VF afterwards; a surprise removal kills
//! the VF hardware first.

use std::time::Duration;

use hvnet_vf::Mac;

use crate::world::{HostNic, KernelError, VfHw, World};

/// The ifnet driver name (`if_dname`) a VF driver family uses.
pub fn vf_dname(family: &str) -> &str {
    match family {
        "mlx5en" | "mlx5" | "mce" => "mce",
        "mlx4en" | "mlx4" | "mlxen" => "mlxen",
        "mana" => "mana",
        "ixv" | "ixgbe" => "ixv",
        other => other,
    }
}

/// Options of a VF offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VfOffer {
    /// Driver family, e.g. `mlx5en`, `mlx4en`, `mana`.
    pub family: String,
    /// MAC override (default: the synthetic NIC's).
    pub mac: Option<Mac>,
    pub uses_if_start: bool,
    pub max_mtu: u32,
}

impl Default for VfOffer {
    fn default() -> Self {
        VfOffer {
            family: "mlx5en".into(),
            mac: None,
            uses_if_start: false,
            max_mtu: 9000,
        }
    }
}

impl World {
    /// The host gives the VM a synthetic NIC (its hn attaches separately).
    pub fn host_add_nic(&mut self, hn: &str, mac: Mac) {
        self.host.insert(
            hn.to_string(),
            HostNic {
                hn: hn.to_string(),
                mac,
                link: true,
                vf_allocated: false,
                vf_ifnet: None,
            },
        );
    }

    /// The host allocates a VF for `hn`'s NIC and hot-adds it; returns the
    /// VF's ifnet name.
    pub fn host_offer_vf(
        &mut self,
        now: Duration,
        hn: &str,
        offer: &VfOffer,
    ) -> Result<String, KernelError> {
        let nic = self
            .host
            .get(hn)
            .cloned()
            .ok_or_else(|| KernelError::NoSuchInterface(hn.to_string()))?;
        if let Some(v) = nic.vf_ifnet.filter(|v| self.ifnets.contains_key(v)) {
            return Err(KernelError::Busy(format!("{hn} already has VF {v}")));
        }
        let hw = VfHw {
            family: offer.family.clone(),
            hw_ok: true,
            uses_if_start: offer.uses_if_start,
            max_mtu: offer.max_mtu,
        };
        let dname = vf_dname(&offer.family).to_string();
        let name = self.attach_vf(now, &dname, offer.mac.unwrap_or(nic.mac), hw)?;
        let h = self.host.get_mut(hn).expect("nic");
        h.vf_allocated = true;
        h.vf_ifnet = Some(name.clone());
        Ok(name)
    }

    /// Planned revocation, step 1: the host switches its datapath to
    /// synthetic. Returns the VF that will be detached.
    pub fn host_revoke_begin(&mut self, hn: &str) -> Option<String> {
        let h = self.host.get_mut(hn)?;
        h.vf_allocated = false;
        h.vf_ifnet.clone()
    }

    /// Surprise removal, step 1: the VF hardware stops working (its link
    /// drops); the host has not switched the datapath.
    pub fn host_surprise_begin(&mut self, now: Duration, hn: &str) -> Option<String> {
        let vf = self.host.get(hn)?.vf_ifnet.clone()?;
        let ifp = self.ifnets.get_mut(&vf)?;
        if let Some(h) = ifp.vf.as_mut() {
            h.hw_ok = false;
        }
        self.set_link(now, &vf, false);
        Some(vf)
    }

    /// Last step of either: the VF ifnet detaches and the host forgets it.
    pub fn host_vf_detach(&mut self, now: Duration, hn: &str) -> Result<(), KernelError> {
        let Some(h) = self.host.get_mut(hn) else {
            return Err(KernelError::NoSuchInterface(hn.to_string()));
        };
        h.vf_allocated = false;
        let Some(vf) = h.vf_ifnet.take() else {
            return Ok(());
        };
        if self.ifnets.contains_key(&vf) {
            self.detach_ifnet(now, &vf)?;
        }
        Ok(())
    }
}
