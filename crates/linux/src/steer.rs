//! Steered mode's primitives: for pairs the kernel does not join, hvnet keeps the IP
//! configuration on the synthetic NIC and moves the data path with tc redirects on clsact
//! qdiscs (synthetic egress → VF out, VF ingress → synthetic in), with a steering gate
//! ([`crate::gate`]) in front of the egress redirect, and announces each move with a
//! gratuitous ARP. What to steer and when is the reconciler's (`hvnet_vf`) over
//! [`crate::backend::LinuxBackend`]; the moment a steered VF goes is
//! [`crate::fastpath`]'s.

use crate::gate::Gate;
use crate::netlink::{Hook, Link, Netlink, NetlinkError};
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::time::Instant;

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
    crate::fastpath::guard_autoconf(&vf.name);
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
    use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType};
    let frame = garp_frame(mac, ip);
    let fd = socket(
        AddressFamily::Packet,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    let to = libc::sockaddr_ll {
        sll_family: libc::AF_PACKET as u16,
        sll_protocol: 0,
        sll_ifindex: ifindex as i32,
        sll_hatype: 0,
        sll_pkttype: 0,
        sll_halen: 6,
        sll_addr: [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0],
    };
    // nix can send to a LinkAddr, but has no safe way to make one from an ifindex.
    // SAFETY: sendto reads `frame.len()` bytes from `frame` and one sockaddr_ll of the size
    // given from `to`, both live locals; `fd` is an open socket borrowed for the call.
    let n = unsafe {
        libc::sendto(
            fd.as_raw_fd(),
            frame.as_ptr().cast(),
            frame.len(),
            0,
            (&to as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
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
