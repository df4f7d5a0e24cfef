//! Steered mode: for pairs the kernel does not join, hvnet keeps the IP configuration on the
//! synthetic NIC and moves the data path with tc redirects on clsact qdiscs:
//! synthetic egress → VF (out), VF ingress → synthetic (in).
//!
//! The fast path is a netlink event handled in-process: the first notice that a VF went
//! down or away closes the synthetic NIC's steering gate (a BPF map write, see
//! [`crate::gate`]; it does not wait for the RTNL lock the kernel holds while it
//! unregisters the VF), then deletes its egress filters with one netlink request. A planned
//! switch (the host announces it) removes the redirect first and holds it off until the VF
//! has gone. A returning VF gets its filters back once usable and the delay has passed.
//! After each switch a gratuitous ARP from the new egress port teaches switches where the
//! shared MAC lives now.

use crate::gate::Gate;
use crate::netlink::{Hook, Link, Netlink, NetlinkError};
use crate::roles::{glob_match, RolePatterns};
use futures::StreamExt;
use netlink_packet_core::NetlinkPayload;
use netlink_packet_route::RouteNetlinkMessage;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// Steering settings.
#[derive(Debug, Clone)]
pub struct SteerConfig {
    pub patterns: RolePatterns,
    /// Wait this long after a VF becomes usable before steering to it.
    pub return_delay: Duration,
}

/// Requests to a running steerer.
#[derive(Debug)]
pub enum Request {
    /// The host announced that VFs will go: move traffic to the synthetic NICs now and keep
    /// it there until the VFs have gone. Answered when done.
    PlannedSwitch(oneshot::Sender<()>),
    /// Stop: remove every filter hvnet installed and return.
    Stop,
}

/// Where traffic moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    ToSynthetic,
    ToVf,
}

/// One data-path switch: when the trigger was noticed (netlink event received or request
/// taken) and when the kernel had confirmed the new filters.
#[derive(Debug, Clone)]
pub struct SwitchRecord {
    pub synthetic: String,
    pub vf: String,
    pub direction: Direction,
    pub trigger: &'static str,
    pub noticed: Instant,
    pub done: Instant,
}

impl SwitchRecord {
    pub fn switch_ms(&self) -> f64 {
        self.done.duration_since(self.noticed).as_secs_f64() * 1e3
    }
}

/// Shared log of switches, readable while the steerer runs.
pub type Journal = Arc<Mutex<Vec<SwitchRecord>>>;

#[derive(Debug, Default)]
struct PairState {
    /// The VF link currently paired (by MAC), if present.
    vf: Option<Link>,
    /// Filters installed towards this VF ifindex.
    steered_to: Option<u32>,
    /// A planned switch holds the redirect off until the VF goes.
    held: bool,
    /// VF became usable at this time; steer once the delay has passed.
    usable_since: Option<Instant>,
}

/// The steering engine for one network namespace.
pub struct Steerer {
    nl: Netlink,
    cfg: SteerConfig,
    links: BTreeMap<u32, Link>,
    pairs: BTreeMap<String, PairState>,
    /// Kernel-joined VFs (netvsc/net_failover) already guarded, by ifindex.
    guarded: std::collections::BTreeSet<u32>,
    /// The steering gate of each synthetic NIC (see [`crate::gate`]), made on first use.
    gates: BTreeMap<String, Gate>,
    /// Set once BPF turned out to be unavailable: steer with the filters alone.
    no_gates: bool,
    journal: Journal,
}

impl Steerer {
    /// Run until `Stop` (or the request channel closes): dump, subscribe, steer.
    /// Must be called inside a tokio runtime on a thread in the target namespace.
    pub async fn run(
        cfg: SteerConfig,
        mut requests: mpsc::UnboundedReceiver<Request>,
        journal: Journal,
    ) -> Result<(), NetlinkError> {
        // Subscribe before the dump, so no change falls between the two.
        let (_sub, mut events) = crate::netlink::subscribe_links()?;
        let nl = Netlink::connect()?;
        let mut s = Steerer {
            nl,
            cfg,
            links: BTreeMap::new(),
            pairs: BTreeMap::new(),
            guarded: Default::default(),
            gates: BTreeMap::new(),
            no_gates: false,
            journal,
        };
        for l in s.nl.links().await? {
            s.links.insert(l.index, l);
        }
        s.reconcile(Instant::now(), "start").await;
        loop {
            let tick = s
                .next_deadline()
                .map(|d| d.saturating_duration_since(Instant::now()));
            tokio::select! {
                ev = events.next() => {
                    let Some((msg, _)) = ev else { break };
                    let noticed = Instant::now();
                    match msg.payload {
                        NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(m)) => {
                            if let Some(l) = Link::from_message(&m) {
                                s.links.insert(l.index, l);
                            }
                        }
                        NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelLink(m)) => {
                            s.links.remove(&m.header.index);
                        }
                        NetlinkPayload::Overrun(_) => {
                            // Lost events: level-triggered, so re-dump.
                            s.links = s.nl.links().await?.into_iter().map(|l| (l.index, l)).collect();
                        }
                        _ => continue,
                    }
                    s.reconcile(noticed, "netlink").await;
                }
                req = requests.recv() => match req {
                    Some(Request::PlannedSwitch(done)) => {
                        let noticed = Instant::now();
                        for st in s.pairs.values_mut() {
                            st.held = true;
                        }
                        s.reconcile(noticed, "planned").await;
                        let _ = done.send(());
                    }
                    Some(Request::Stop) | None => break,
                },
                _ = sleep_opt(tick) => {
                    s.reconcile(Instant::now(), "delay").await;
                }
            }
        }
        s.remove_all().await;
        Ok(())
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.pairs
            .values()
            .filter(|p| p.steered_to.is_none() && !p.held)
            .filter_map(|p| p.usable_since.map(|t| t + self.cfg.return_delay))
            .min()
    }

    /// Kernel-transparent pairs (the VF's master is the synthetic NIC, or a failover master
    /// it shares a MAC with): the kernel steers; hvnet only guards the VF, once per VF.
    async fn guard_kernel_pairs(&mut self) {
        let joined: Vec<(Link, Link)> = self
            .links
            .values()
            .filter_map(|vf| {
                let master = self.links.get(&vf.master?)?;
                (master.mac == vf.mac && vf.mac != [0; 6]).then(|| (vf.clone(), master.clone()))
            })
            .collect();
        self.guarded.retain(|i| self.links.contains_key(i));
        for (vf, master) in joined {
            if self.guarded.insert(vf.index) {
                tracing::info!(vf = %vf.name, master = %master.name, "kernel-transparent VF: guarding");
                guard_vf(&self.nl, &vf, &master).await;
            }
        }
    }

    /// Compare what is with what should be; act on the difference.
    async fn reconcile(&mut self, noticed: Instant, trigger: &'static str) {
        self.guard_kernel_pairs().await;
        let synthetics: Vec<Link> = self
            .links
            .values()
            .filter(|l| {
                self.cfg
                    .patterns
                    .synthetic
                    .iter()
                    .any(|p| glob_match(p, &l.name))
            })
            .cloned()
            .collect();
        for hn in synthetics {
            let vf = self
                .links
                .values()
                .find(|l| {
                    l.index != hn.index
                        && l.mac == hn.mac
                        && l.mac != [0; 6]
                        && l.master.is_none()
                        && self.cfg.patterns.vf.iter().any(|p| glob_match(p, &l.name))
                })
                .cloned();
            let st = self.pairs.entry(hn.name.clone()).or_default();
            let usable = vf.as_ref().is_some_and(|v| v.admin_up && v.carrier);
            if vf.as_ref().map(|v| v.index) != st.vf.as_ref().map(|v| v.index) {
                if let Some(v) = &vf {
                    tracing::info!(synthetic = %hn.name, vf = %v.name, "VF appeared");
                    guard_vf(&self.nl, v, &hn).await;
                } else {
                    tracing::info!(synthetic = %hn.name, "VF gone");
                }
                st.usable_since = None;
            }
            if vf.is_none() || !usable {
                st.held = false; // the planned switch is complete once the VF has gone
                st.usable_since = None;
            } else if st.usable_since.is_none() {
                st.usable_since = Some(noticed);
            }
            st.vf = vf.clone();
            let ready = st
                .usable_since
                .is_some_and(|t| noticed >= t + self.cfg.return_delay || trigger == "start");
            let want = match &vf {
                Some(v) if usable && !st.held && ready => Some(v.index),
                _ => None,
            };
            if want == st.steered_to {
                continue;
            }
            let vf_name = vf.as_ref().map(|v| v.name.clone()).unwrap_or_default();
            if want.is_some() && !self.no_gates && !self.gates.contains_key(&hn.name) {
                match Gate::new() {
                    Ok(g) => {
                        self.gates.insert(hn.name.clone(), g);
                    }
                    Err(e) => {
                        tracing::warn!(
                            "no BPF steering gate ({e}): switching by filter changes only, \
                             which wait for the kernel's RTNL lock"
                        );
                        self.no_gates = true;
                    }
                }
            }
            let gate = self.gates.get(&hn.name);
            let result = match (&vf, want) {
                (Some(v), Some(_)) => steer_on(&self.nl, &hn, v, gate).await,
                _ => steer_off(&self.nl, &hn, gate).await,
            };
            match result {
                Ok(done) => {
                    let direction = if want.is_some() {
                        Direction::ToVf
                    } else {
                        Direction::ToSynthetic
                    };
                    st.steered_to = want;
                    let out_port = if want.is_some() {
                        vf.as_ref().unwrap().index
                    } else {
                        hn.index
                    };
                    let ip = first_ipv4(&self.nl, &hn).await;
                    if let Err(e) = announce(out_port, hn.mac, ip) {
                        tracing::warn!(iface = %hn.name, "gratuitous ARP failed: {e}");
                    }
                    let rec = SwitchRecord {
                        synthetic: hn.name.clone(),
                        vf: vf_name,
                        direction,
                        trigger,
                        noticed,
                        done,
                    };
                    tracing::info!(
                        synthetic = %rec.synthetic, vf = %rec.vf, ?direction, trigger,
                        switch_ms = rec.switch_ms(), "data path switched"
                    );
                    self.journal.lock().unwrap().push(rec);
                }
                Err(e) => tracing::error!("steering {}: {e}", hn.name),
            }
        }
    }

    async fn remove_all(&mut self) {
        for (name, st) in &mut self.pairs {
            if st.steered_to.take().is_some() {
                if let Some(hn) = self.links.values().find(|l| &l.name == name) {
                    if let Err(e) = steer_off(&self.nl, hn, self.gates.get(name)).await {
                        tracing::warn!("removing steering on {name}: {e}");
                    }
                }
            }
        }
    }
}

async fn sleep_opt(d: Option<Duration>) {
    match d {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}

/// Install the redirects of a pair (VF ingress first, so replies have a way in), then, with
/// a gate, open it and attach it in front of the egress redirect. Returns when the data
/// path switched (the egress redirect confirmed).
pub async fn steer_on(
    nl: &Netlink,
    hn: &Link,
    vf: &Link,
    gate: Option<&Gate>,
) -> Result<Instant, NetlinkError> {
    nl.ensure_clsact(vf).await?;
    nl.add_redirect(vf, Hook::Ingress, hn, true).await?;
    nl.ensure_clsact(hn).await?;
    nl.add_redirect(hn, Hook::Egress, vf, false).await?;
    let switched = Instant::now();
    if let Some(g) = gate {
        match g.set(true) {
            Ok(()) => nl.add_gate(hn, g).await?,
            Err(e) => tracing::warn!(iface = %hn.name, "opening the steering gate: {e}"),
        }
    }
    Ok(switched)
}

/// Move the synthetic NIC's egress off the VF: close the gate (a BPF map write, effective
/// at once even while the kernel holds RTNL to unregister a vanishing VF), then remove the
/// egress filters. The VF's ingress redirect stays (harmless, and gone with the VF).
/// Returns when the data path switched (the gate closed, or the filters removed).
pub async fn steer_off(
    nl: &Netlink,
    hn: &Link,
    gate: Option<&Gate>,
) -> Result<Instant, NetlinkError> {
    let mut switched = None;
    if let Some(g) = gate {
        match g.set(false) {
            Ok(()) => switched = Some(Instant::now()),
            Err(e) => tracing::warn!(iface = %hn.name, "closing the steering gate: {e}"),
        }
    }
    nl.del_filters(hn.index, &hn.name, Hook::Egress).await?;
    Ok(switched.unwrap_or_else(Instant::now))
}

/// Keep the VF unconfigured: no addresses, no IPv6 autoconfiguration, the synthetic NIC's MTU.
pub async fn guard_vf(nl: &Netlink, vf: &Link, hn: &Link) {
    for (key, value) in [
        ("disable_ipv6", "1"),
        ("accept_ra", "0"),
        ("addr_gen_mode", "1"),
    ] {
        let path = format!("ipv6/conf/{}/{key}", vf.name);
        if let Err(e) = crate::netns::write_net_sysctl(&path, value) {
            tracing::debug!("sysctl net.{path}: {e}");
        }
    }
    match nl.addresses(vf).await {
        Ok(addrs) => {
            for (ip, p) in addrs {
                tracing::warn!(vf = %vf.name, %ip, "removing address from VF");
                if let Err(e) = nl.del_address(vf, ip, p).await {
                    tracing::warn!("{e}");
                }
            }
        }
        Err(e) => tracing::warn!("{e}"),
    }
    if hn.mtu != 0 && vf.mtu != hn.mtu {
        if let Err(e) = nl.set_mtu(vf, hn.mtu).await {
            tracing::warn!("{e}");
        }
    }
}

async fn first_ipv4(nl: &Netlink, hn: &Link) -> Option<Ipv4Addr> {
    nl.addresses(hn)
        .await
        .ok()?
        .into_iter()
        .find_map(|(ip, _)| match ip {
            std::net::IpAddr::V4(v4) => Some(v4),
            _ => None,
        })
}

/// The gratuitous ARP frame (or, with no IPv4 address, an ARP probe from 0.0.0.0) that
/// makes learning switches move `mac` to the port it is sent from.
pub fn garp_frame(mac: [u8; 6], ip: Option<Ipv4Addr>) -> [u8; 42] {
    let ip = ip.map(|i| i.octets()).unwrap_or([0; 4]);
    let mut f = [0u8; 42];
    f[0..6].copy_from_slice(&[0xff; 6]);
    f[6..12].copy_from_slice(&mac);
    f[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
    f[14..22].copy_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]); // Ethernet/IPv4, request
    f[22..28].copy_from_slice(&mac);
    f[28..32].copy_from_slice(&ip);
    f[32..38].copy_from_slice(&[0; 6]);
    f[38..42].copy_from_slice(&ip);
    f
}

/// Send a gratuitous ARP out of `ifindex` with an AF_PACKET socket (no process spawn).
pub fn announce(ifindex: u32, mac: [u8; 6], ip: Option<Ipv4Addr>) -> std::io::Result<()> {
    let frame = garp_frame(mac, ip);
    // SAFETY: plain socket calls with correctly sized, initialised buffers.
    unsafe {
        let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut addr: libc::sockaddr_ll = std::mem::zeroed();
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_ifindex = ifindex as i32;
        addr.sll_halen = 6;
        addr.sll_addr[..6].copy_from_slice(&[0xff; 6]);
        let n = libc::sendto(
            fd,
            frame.as_ptr().cast(),
            frame.len(),
            0,
            (&addr as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as u32,
        );
        let err = std::io::Error::last_os_error();
        libc::close(fd);
        if n < 0 {
            return Err(err);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garp_layout() {
        let f = garp_frame([2, 0, 0, 0, 0, 1], Some(Ipv4Addr::new(198, 18, 0, 2)));
        assert_eq!(&f[0..6], &[0xff; 6]);
        assert_eq!(&f[6..12], &[2, 0, 0, 0, 0, 1]);
        assert_eq!(&f[12..14], &[8, 6]);
        assert_eq!(&f[20..22], &[0, 1]);
        assert_eq!(&f[28..32], &[198, 18, 0, 2]);
        assert_eq!(&f[38..42], &[198, 18, 0, 2]);
    }
}
