//! Which path a packet takes, or why it is dropped, given the current state
//! of kernel and host. The state is constant between events, so one fate
//! holds for a whole interval and packets are counted in aggregate.

use std::fmt;
use std::net::IpAddr;

use serde::Serialize;

use crate::world::{IfClass, World};

/// The path that carried a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Path {
    /// The synthetic (vmbus) path.
    Hn,
    /// The VF.
    Vf,
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Path::Hn => "hn",
            Path::Vf => "vf",
        })
    }
}

/// Why a packet was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DropReason {
    /// No interface holds the connection's address.
    NoAddress,
    /// The interface that should send or receive is not up/running.
    InterfaceDown,
    /// A failover lagg has no usable port (TX: ENETDOWN).
    NoActivePort,
    /// lagg_fail_input refused a frame from a non-active port.
    LaggRxFiltered,
    /// The VF ifnet is not running (driver down) or has no link.
    VfDown,
    /// The VF hardware is gone (surprise removal before the detach).
    VfGone,
    /// The host's synthetic link is down or hn's synthetic part detached.
    HostLinkDown,
    /// The frame reached an interface that does not hold the address.
    WrongInterface,
    /// The VF's MTU is smaller than the sender's.
    MtuMismatch,
}

impl DropReason {
    /// The JSON key.
    pub fn key(self) -> &'static str {
        match self {
            DropReason::NoAddress => "no_address",
            DropReason::InterfaceDown => "interface_down",
            DropReason::NoActivePort => "no_active_port",
            DropReason::LaggRxFiltered => "lagg_rx_filtered",
            DropReason::VfDown => "vf_down",
            DropReason::VfGone => "vf_gone",
            DropReason::HostLinkDown => "host_link_down",
            DropReason::WrongInterface => "wrong_interface",
            DropReason::MtuMismatch => "mtu_mismatch",
        }
    }
}

/// What happens to a packet sent now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fate {
    Delivered(Path),
    Dropped(DropReason),
}

impl Fate {
    pub fn is_delivered(self) -> bool {
        matches!(self, Fate::Delivered(_))
    }

    pub fn path(self) -> Option<Path> {
        match self {
            Fate::Delivered(p) => Some(p),
            Fate::Dropped(_) => None,
        }
    }
}

impl fmt::Display for Fate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fate::Delivered(p) => p.fmt(f),
            Fate::Dropped(r) => write!(f, "drop({})", r.key()),
        }
    }
}

/// What the connection to one address meets in one state of the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathState {
    pub fate_in: Fate,
    pub fate_out: Fate,
    /// Some interface holds the address.
    pub held: bool,
}

impl World {
    /// The connection's fates right now.
    pub fn path_state(&self, addr: IpAddr) -> PathState {
        PathState {
            fate_in: self.inbound_fate(addr),
            fate_out: self.outbound_fate(addr),
            held: !self.holders(addr).is_empty(),
        }
    }

    /// Interfaces holding `addr`, in ifindex order.
    pub fn holders(&self, addr: IpAddr) -> Vec<String> {
        self.by_index()
            .into_iter()
            .filter(|i| match addr {
                IpAddr::V4(a) => i.ipv4.iter().any(|n| n.addr == a),
                IpAddr::V6(a) => i.ipv6.iter().any(|n| n.addr == a),
            })
            .map(|i| i.name.clone())
            .collect()
    }

    /// A packet from the VM, sourced from `addr`, to the peer.
    pub fn outbound_fate(&self, addr: IpAddr) -> Fate {
        match self.holders(addr).first() {
            None => Fate::Dropped(DropReason::NoAddress),
            Some(h) => self.tx_fate(h),
        }
    }

    /// Transmit on interface `name` (lagg failover, hn transparent TX).
    pub fn tx_fate(&self, name: &str) -> Fate {
        let Some(ifp) = self.ifnets.get(name) else {
            return Fate::Dropped(DropReason::NoAddress);
        };
        if !ifp.up || !ifp.running {
            return Fate::Dropped(DropReason::InterfaceDown);
        }
        match ifp.class {
            IfClass::Lagg => {
                let Some(port) = self.lagg_active_port(name) else {
                    return Fate::Dropped(DropReason::NoActivePort);
                };
                if self.ifnets[&port].mtu < ifp.mtu {
                    return Fate::Dropped(DropReason::MtuMismatch);
                }
                self.tx_fate(&port)
            }
            IfClass::Hn => {
                let st = &self.hns[name];
                if self.vf_transparent && st.xpnt_enabled {
                    if let Some(vf) = st.vf.as_deref() {
                        if self.ifnets[vf].mtu < ifp.mtu {
                            return Fate::Dropped(DropReason::MtuMismatch);
                        }
                        return self.vf_tx(vf);
                    }
                }
                if !st.synth_attached || self.host.get(name).is_some_and(|h| !h.link) {
                    return Fate::Dropped(DropReason::HostLinkDown);
                }
                Fate::Delivered(Path::Hn)
            }
            IfClass::Vf => self.vf_tx(name),
            IfClass::Loopback => Fate::Dropped(DropReason::WrongInterface),
        }
    }

    fn vf_tx(&self, vf: &str) -> Fate {
        let v = &self.ifnets[vf];
        if v.vf.as_ref().is_some_and(|h| !h.hw_ok) {
            return Fate::Dropped(DropReason::VfGone);
        }
        if !v.running || !v.link {
            return Fate::Dropped(DropReason::VfDown);
        }
        Fate::Delivered(Path::Vf)
    }

    /// A packet from the peer to the VM's `addr`.
    pub fn inbound_fate(&self, addr: IpAddr) -> Fate {
        let holders = self.holders(addr);
        let Some(holder) = holders.first() else {
            return Fate::Dropped(DropReason::NoAddress);
        };
        // The peer resolves the address to the holder's MAC; the host NIC
        // with that MAC carries it.
        let mac = self.ifnets[holder].mac;
        let Some(nic) = self.host.values().find(|h| h.mac == mac && !mac.is_zero()) else {
            return Fate::Dropped(DropReason::NoAddress);
        };
        if !nic.link {
            return Fate::Dropped(DropReason::HostLinkDown);
        }
        let Some(st) = self.hns.get(&nic.hn) else {
            return Fate::Dropped(DropReason::HostLinkDown);
        };
        let via_vf = st.datapath_vf && nic.vf_allocated;
        if via_vf {
            let Some(vf) = nic
                .vf_ifnet
                .as_deref()
                .filter(|v| self.ifnets.contains_key(*v))
            else {
                return Fate::Dropped(DropReason::VfGone);
            };
            let v = &self.ifnets[vf];
            if v.vf.as_ref().is_some_and(|h| !h.hw_ok) {
                return Fate::Dropped(DropReason::VfGone);
            }
            if !v.running || !v.link {
                return Fate::Dropped(DropReason::VfDown);
            }
            return self.rx_on(vf, addr, Path::Vf);
        }
        if !st.synth_attached {
            return Fate::Dropped(DropReason::HostLinkDown);
        }
        if !self.vf_transparent && st.rxvf {
            // hn_rxpkt with RXVF: rcvif becomes the VF, even if hn is down.
            let vf = st.vf.as_deref().expect("rxvf implies vf");
            if !self.ifnets[vf].running {
                return Fate::Dropped(DropReason::VfDown);
            }
            return self.rx_on(vf, addr, Path::Hn);
        }
        if !self.ifnets[&nic.hn].running {
            return Fate::Dropped(DropReason::InterfaceDown);
        }
        self.rx_on(&nic.hn, addr, Path::Hn)
    }

    /// A frame enters the stack on `rcvif`: transparent VF input becomes
    /// hn input, lagg ports go through lagg_fail_input, ether_input drops
    /// on interfaces that are not up, and the address must be local to the
    /// receiving interface.
    fn rx_on(&self, rcvif: &str, addr: IpAddr, path: Path) -> Fate {
        let mut cur = rcvif.to_string();
        if self.vf_transparent && self.ifnets[&cur].class == IfClass::Vf {
            if let Some(hn) = self.hn_of_vf(&cur) {
                cur = hn.to_string();
            }
        }
        if let Some(lagg) = self.ifnets[&cur].member_of.clone() {
            if !self.lagg_accepts_rx(&lagg, &cur) {
                return Fate::Dropped(DropReason::LaggRxFiltered);
            }
            cur = lagg;
        }
        let ifp = &self.ifnets[&cur];
        if !ifp.up {
            return Fate::Dropped(DropReason::InterfaceDown);
        }
        let local = match addr {
            IpAddr::V4(a) => ifp.ipv4.iter().any(|n| n.addr == a),
            IpAddr::V6(a) => ifp.ipv6.iter().any(|n| n.addr == a),
        };
        if !local {
            return Fate::Dropped(DropReason::WrongInterface);
        }
        Fate::Delivered(path)
    }
}
