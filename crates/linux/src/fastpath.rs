//! The fast path for "the steered VF is going": the reconciler re-observes the whole system
//! before it acts, and deleting the redirect waits for the RTNL lock that the kernel holds
//! while it unregisters the VF. So the daemon's netlink reader hands every link
//! notification to [`FastPath::on_link`] first: the first notice that a steered VF is not
//! running (or gone) closes that pair's steering gate at once (a BPF map write, no lock),
//! and a VF seen for the first time gets its IPv6 autoconfiguration switched off before
//! anything can configure it. Everything else (removing the filters, the status) is the
//! reconciler's next step. No decisions are made here beyond "this gate must close now".

use crate::gate::Gate;
use crate::netlink::Link;
use crate::roles::{driver_of, role, Role, RolePatterns};
use netlink_packet_route::RouteNetlinkMessage;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// A link notification, as the fast path needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkChange {
    /// RTM_NEWLINK: the link as it is now.
    Changed(Link),
    /// RTM_DELLINK: the link with this index is gone.
    Gone(u32),
}

impl LinkChange {
    /// The change a netlink message announces, if it is a link notification.
    pub fn from_message(msg: &RouteNetlinkMessage) -> Option<LinkChange> {
        match msg {
            RouteNetlinkMessage::NewLink(m) => Link::from_message(m).map(LinkChange::Changed),
            RouteNetlinkMessage::DelLink(m) => Some(LinkChange::Gone(m.header.index)),
            _ => None,
        }
    }
}

/// What the fast path did for one notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FastAction {
    /// The gate in front of `synthetic`'s redirect to `vf` closed: traffic is on the
    /// synthetic NIC.
    GateClosed { synthetic: String, vf: String },
    /// A new VF's IPv6 autoconfiguration was switched off.
    Guarded { vf: String },
}

#[derive(Debug)]
struct Steered {
    synthetic: String,
    vf: String,
    gate: Option<Arc<Gate>>,
}

#[derive(Debug)]
struct Inner {
    /// By the VF's ifindex: the pair steered to it, and its gate.
    steered: BTreeMap<u32, Steered>,
    /// Links seen so far (so a VF is guarded once, when it first appears).
    seen: BTreeSet<u32>,
    patterns: RolePatterns,
    sysfs: PathBuf,
}

/// Shared by the backend (which records what it steered) and the netlink reader.
#[derive(Debug, Clone)]
pub struct FastPath {
    inner: Arc<Mutex<Inner>>,
}

impl FastPath {
    pub fn new(patterns: RolePatterns, sysfs: PathBuf) -> FastPath {
        FastPath {
            inner: Arc::new(Mutex::new(Inner {
                steered: BTreeMap::new(),
                seen: BTreeSet::new(),
                patterns,
                sysfs,
            })),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `synthetic`'s egress now redirects to `vf` behind `gate` (the backend steered it).
    pub fn steered(&self, synthetic: &str, vf: &Link, gate: Option<Arc<Gate>>) {
        let mut g = self.lock();
        g.steered.retain(|_, s| s.synthetic != synthetic);
        g.steered.insert(
            vf.index,
            Steered {
                synthetic: synthetic.to_string(),
                vf: vf.name.clone(),
                gate,
            },
        );
    }

    /// `synthetic` is no longer steered.
    pub fn unsteered(&self, synthetic: &str) {
        self.lock().steered.retain(|_, s| s.synthetic != synthetic);
    }

    /// React to one link notification; says what it did.
    pub fn on_link(&self, change: &LinkChange) -> Vec<FastAction> {
        let mut g = self.lock();
        let mut done = Vec::new();
        let (index, running) = match change {
            LinkChange::Changed(l) => (l.index, l.admin_up && l.carrier),
            LinkChange::Gone(i) => (*i, false),
        };
        if !running {
            if let Some(s) = g.steered.remove(&index) {
                match s.gate.as_deref().map(|gate| gate.set(false)) {
                    Some(Ok(())) => done.push(FastAction::GateClosed {
                        synthetic: s.synthetic,
                        vf: s.vf,
                    }),
                    Some(Err(e)) => tracing::warn!(vf = %s.vf, "closing the steering gate: {e}"),
                    None => {}
                }
            }
        }
        match change {
            LinkChange::Changed(l) if g.seen.insert(l.index) => {
                let driver = driver_of(&g.sysfs, &l.name);
                if role(&l.name, driver.as_deref(), &g.patterns) == Role::Vf && l.master.is_none() {
                    guard_autoconf(&l.name);
                    done.push(FastAction::Guarded { vf: l.name.clone() });
                }
            }
            LinkChange::Gone(i) => {
                g.seen.remove(i);
            }
            _ => {}
        }
        done
    }
}

/// Read link notifications on a thread of its own (a blocking netlink socket in the calling
/// thread's namespace): each datagram's links go to the fast path, then `after` is called
/// with what it did (the daemon wakes its reconciler there; returning false ends the
/// thread). A lost datagram (socket overrun) still calls `after`: the reconciler re-observes.
pub fn spawn_reader(
    fast: FastPath,
    after: impl Fn(Vec<FastAction>) -> bool + Send + 'static,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    use rtnetlink::sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
    let mut s = Socket::new(NETLINK_ROUTE)?;
    s.bind(&SocketAddr::new(0, rtnetlink::constants::RTMGRP_LINK))?;
    let _ = s.set_rx_buf_sz(1 << 20);
    std::thread::Builder::new()
        .name("link-events".into())
        .spawn(move || {
            // Prompt even on a loaded machine; this thread only wakes for link changes.
            let _ = crate::monitor::set_realtime();
            let mut buf = vec![0u8; 1 << 16];
            loop {
                let n = match s.recv(&mut &mut buf[..], 0) {
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        tracing::debug!("link notifications: {e}");
                        0
                    }
                };
                let done: Vec<FastAction> = crate::monitor::split_messages(&buf[..n])
                    .iter()
                    .filter_map(LinkChange::from_message)
                    .flat_map(|c| fast.on_link(&c))
                    .collect();
                if !after(done) {
                    return;
                }
            }
        })
}

/// No IPv6 addresses, router advertisements or generated link-local address on a VF: its
/// configuration lives on the synthetic NIC. Best effort (the planner removes addresses).
pub fn guard_autoconf(vf: &str) {
    for (key, value) in [
        ("disable_ipv6", "1"),
        ("accept_ra", "0"),
        ("addr_gen_mode", "1"),
    ] {
        let path = format!("ipv6/conf/{vf}/{key}");
        if let Err(e) = crate::netns::write_net_sysctl(&path, value) {
            tracing::debug!("sysctl net.{path}: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(index: u32, name: &str, running: bool) -> Link {
        Link {
            index,
            name: name.into(),
            mac: [2, 0, 0, 0, 0, 1],
            mtu: 1500,
            admin_up: running,
            carrier: running,
            slave: false,
            master: None,
        }
    }

    fn fast() -> FastPath {
        FastPath::new(RolePatterns::default(), PathBuf::from("/nonexistent"))
    }

    #[test]
    fn only_the_steered_vf_going_acts_and_only_once() {
        let f = fast();
        let vf = link(7, "vf0", true);
        f.steered("hn0", &vf, None);
        // Another link going down, or the VF still running: nothing.
        assert!(f
            .on_link(&LinkChange::Changed(link(3, "hn0", false)))
            .is_empty());
        assert!(!f
            .on_link(&LinkChange::Changed(vf.clone()))
            .iter()
            .any(|a| matches!(a, FastAction::GateClosed { .. })));
        // Without a gate (no BPF) there is nothing to close; the reconciler removes filters.
        assert!(f.on_link(&LinkChange::Gone(7)).is_empty());
        f.unsteered("hn0");
        assert!(f.lock().steered.is_empty());
    }

    #[test]
    fn a_vf_is_guarded_when_first_seen() {
        let f = fast();
        let got = f.on_link(&LinkChange::Changed(link(9, "vf1", false)));
        assert_eq!(got, vec![FastAction::Guarded { vf: "vf1".into() }]);
        assert!(f
            .on_link(&LinkChange::Changed(link(9, "vf1", true)))
            .is_empty());
        assert!(f
            .on_link(&LinkChange::Changed(link(4, "lo", true)))
            .is_empty());
        // A VF that comes back with the same index is new again.
        f.on_link(&LinkChange::Gone(9));
        assert_eq!(
            f.on_link(&LinkChange::Changed(link(9, "vf1", true))).len(),
            1
        );
    }
}
