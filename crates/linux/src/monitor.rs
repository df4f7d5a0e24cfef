//! An independent observer of the kernel's link and tc notifications, for measuring
//! failover: it timestamps each notification as it arrives (kernel notice of a VF going or
//! becoming usable, redirect filters removed or installed), whoever reacted to it: hvnet's
//! steerer or a shell baseline. It shares no code path with the steerer's own event loop.
//!
//! The datagram parsing ([`parse_notifications`]) is hand-written framing over
//! netlink-packet-route's message decoder; it takes untrusted kernel bytes, never panics,
//! and has a property test and a fuzz target (`crates/linux/fuzz`).

use crate::netlink::{Hook, Link};
use netlink_packet_core::{NetlinkMessage, NetlinkPayload};
use netlink_packet_route::RouteNetlinkMessage;
use nix::sys::socket::{recv, setsockopt, sockopt, MsgFlags};
use nix::sys::time::TimeVal;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// One notification the lab cares about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notification {
    /// RTM_NEWLINK: a link appeared or changed; `usable` = admin up, lower up and
    /// operationally up (the test hvnet's steerer uses).
    Link {
        index: u32,
        name: String,
        usable: bool,
    },
    /// RTM_DELLINK: a link is gone.
    LinkGone { index: u32, name: String },
    /// RTM_NEWTFILTER / RTM_DELTFILTER on a clsact hook of `ifindex`.
    Filter {
        ifindex: u32,
        hook: Option<Hook>,
        added: bool,
    },
}

const NLMSG_HDRLEN: usize = 16;

/// Split one netlink datagram into messages and keep the link and tc-filter notifications.
/// Malformed or truncated input ends the walk; it never panics.
pub fn parse_notifications(buf: &[u8]) -> Vec<Notification> {
    split_messages(buf)
        .iter()
        .filter_map(notification)
        .collect()
}

/// Split one netlink datagram into its route messages. Malformed or truncated input ends
/// the walk; it never panics.
pub fn split_messages(buf: &[u8]) -> Vec<RouteNetlinkMessage> {
    let mut out = Vec::new();
    let mut off = 0usize;
    while buf.len().saturating_sub(off) >= NLMSG_HDRLEN {
        let len = u32::from_ne_bytes([buf[off], buf[off + 1], buf[off + 2], buf[off + 3]]) as usize;
        if len < NLMSG_HDRLEN || len > buf.len() - off {
            break;
        }
        if let Ok(msg) = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&buf[off..off + len]) {
            if let NetlinkPayload::InnerMessage(inner) = msg.payload {
                out.push(inner);
            }
        }
        // NLMSG_ALIGN; a final unaligned message simply ends the datagram.
        off = match len.checked_add(3) {
            Some(l) => off + (l & !3),
            None => break,
        };
    }
    out
}

fn notification(msg: &RouteNetlinkMessage) -> Option<Notification> {
    let hook_of = |m: &netlink_packet_route::tc::TcMessage| {
        [Hook::Ingress, Hook::Egress]
            .into_iter()
            .find(|h| h.parent() == m.header.parent)
    };
    match msg {
        RouteNetlinkMessage::NewLink(m) => Link::from_message(m).map(|l| Notification::Link {
            index: l.index,
            usable: l.admin_up && l.carrier,
            name: l.name,
        }),
        RouteNetlinkMessage::DelLink(m) => Some(Notification::LinkGone {
            index: m.header.index,
            name: Link::from_message(m).map(|l| l.name).unwrap_or_default(),
        }),
        RouteNetlinkMessage::NewTrafficFilter(m) | RouteNetlinkMessage::DelTrafficFilter(m) => {
            Some(Notification::Filter {
                ifindex: u32::try_from(m.header.index).ok()?,
                hook: hook_of(m),
                added: matches!(msg, RouteNetlinkMessage::NewTrafficFilter(_)),
            })
        }
        _ => None,
    }
}

/// Timestamped notifications, in arrival order.
pub type Record = Arc<Mutex<Vec<(Instant, Notification)>>>;

/// A running monitor thread (in one network namespace); stops and joins on drop.
pub struct Monitor {
    record: Record,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<(), String>>>,
    /// Whether the thread got a real-time priority (its timestamps are then prompt even on
    /// a loaded machine).
    pub realtime: bool,
}

/// Monitor errors.
#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    #[error("netlink monitor in namespace {ns}: {detail}")]
    Start { ns: String, detail: String },
}

impl Monitor {
    /// Start watching link and tc notifications in namespace `ns`. Returns once subscribed.
    /// The thread ends when the monitor is dropped, and at the latest after `max_run`.
    pub fn start(ns: &str, max_run: Duration) -> Result<Monitor, MonitorError> {
        let record: Record = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (r, s, name) = (record.clone(), stop.clone(), ns.to_string());
        let thread = std::thread::spawn(move || {
            let socket = match subscribe(&name) {
                Ok(sock) => {
                    let _ = ready_tx.send(Ok(set_realtime()));
                    sock
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e.clone()));
                    return Err(e);
                }
            };
            let end = Instant::now() + max_run;
            let mut buf = vec![0u8; 1 << 16];
            while !s.load(Ordering::Relaxed) && Instant::now() < end {
                let n = recv(socket.as_raw_fd(), &mut buf, MsgFlags::empty());
                let at = Instant::now();
                let Ok(n @ 1..) = n else {
                    continue; // timeout (SO_RCVTIMEO), EINTR or ENOBUFS: look again
                };
                let got = parse_notifications(&buf[..n]);
                if !got.is_empty() {
                    let mut rec = r.lock().unwrap();
                    rec.extend(got.into_iter().map(|x| (at, x)));
                }
            }
            Ok(())
        });
        let fail = |detail: String| MonitorError::Start {
            ns: ns.to_string(),
            detail,
        };
        match ready_rx.recv_timeout(Duration::from_secs(5)) {
            Ok(Ok(realtime)) => Ok(Monitor {
                record,
                stop,
                thread: Some(thread),
                realtime,
            }),
            Ok(Err(e)) => Err(fail(e)),
            Err(_) => Err(fail("did not start".into())),
        }
    }

    /// A copy of everything seen so far.
    pub fn snapshot(&self) -> Vec<(Instant, Notification)> {
        self.record.lock().unwrap().clone()
    }

    /// Wait (bounded) until `pred` holds for a notification seen at or after `since`;
    /// returns its arrival time.
    pub fn wait_for(
        &self,
        since: Instant,
        timeout: Duration,
        pred: impl Fn(&Notification) -> bool,
    ) -> Option<Instant> {
        let end = Instant::now() + timeout;
        loop {
            let hit = self
                .record
                .lock()
                .unwrap()
                .iter()
                .find(|(t, n)| *t >= since && pred(n))
                .map(|(t, _)| *t);
            if hit.is_some() || Instant::now() > end {
                return hit;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn subscribe(ns: &str) -> Result<rtnetlink::sys::Socket, String> {
    use rtnetlink::constants::{RTMGRP_LINK, RTMGRP_TC};
    use rtnetlink::sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
    crate::netns::enter(ns).map_err(|e| e.to_string())?;
    let mut s = Socket::new(NETLINK_ROUTE).map_err(|e| format!("socket: {e}"))?;
    s.bind(&SocketAddr::new(0, RTMGRP_LINK | RTMGRP_TC))
        .map_err(|e| format!("bind: {e}"))?;
    let _ = s.set_rx_buf_sz(1 << 20);
    // A receive timeout, so the loop sees the stop flag.
    setsockopt(&s, sockopt::ReceiveTimeout, &TimeVal::new(0, 50_000))
        .map_err(|e| format!("SO_RCVTIMEO: {}", std::io::Error::from(e)))?;
    Ok(s)
}

/// Give the calling thread a modest real-time priority (SCHED_FIFO 10), so it wakes as soon
/// as a notification arrives. Best effort: false if not permitted.
pub fn set_realtime() -> bool {
    let param = libc::sched_param { sched_priority: 10 };
    // SAFETY: sched_setscheduler reads one sched_param through its pointer, which points at
    // `param`, a live local; pid 0 is the calling thread. (nix has no wrapper for it.)
    unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_core::NetlinkHeader;
    use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
    use netlink_packet_route::tc::TcMessage;
    use proptest::prelude::*;

    fn emit(msg: RouteNetlinkMessage) -> Vec<u8> {
        let mut m = NetlinkMessage::new(NetlinkHeader::default(), NetlinkPayload::from(msg));
        m.finalize();
        let mut buf = vec![0u8; m.buffer_len()];
        m.serialize(&mut buf);
        buf
    }

    fn link(index: u32, name: &str, up: bool) -> RouteNetlinkMessage {
        let mut m = LinkMessage::default();
        m.header.index = index;
        if up {
            m.header.flags = LinkFlags::Up | LinkFlags::LowerUp;
        }
        m.attributes.push(LinkAttribute::IfName(name.into()));
        RouteNetlinkMessage::NewLink(m)
    }

    fn filter(ifindex: i32, hook: Hook, added: bool) -> RouteNetlinkMessage {
        let mut m = TcMessage::with_index(ifindex);
        m.header.parent = hook.parent();
        if added {
            RouteNetlinkMessage::NewTrafficFilter(m)
        } else {
            RouteNetlinkMessage::DelTrafficFilter(m)
        }
    }

    #[test]
    fn several_messages_in_one_datagram() {
        let mut buf = emit(link(7, "vf0", true));
        let mut gone = LinkMessage::default();
        gone.header.index = 7;
        gone.attributes.push(LinkAttribute::IfName("vf0".into()));
        buf.extend(emit(RouteNetlinkMessage::DelLink(gone)));
        buf.extend(emit(filter(3, Hook::Egress, false)));
        buf.extend(emit(filter(3, Hook::Ingress, true)));
        assert_eq!(
            parse_notifications(&buf),
            vec![
                Notification::Link {
                    index: 7,
                    name: "vf0".into(),
                    usable: true
                },
                Notification::LinkGone {
                    index: 7,
                    name: "vf0".into()
                },
                Notification::Filter {
                    ifindex: 3,
                    hook: Some(Hook::Egress),
                    added: false
                },
                Notification::Filter {
                    ifindex: 3,
                    hook: Some(Hook::Ingress),
                    added: true
                },
            ]
        );
    }

    #[test]
    fn truncated_and_bogus_lengths_end_the_walk() {
        let buf = emit(link(2, "hn0", false));
        assert_eq!(parse_notifications(&buf[..buf.len() - 1]), vec![]);
        let mut bogus = buf.clone();
        bogus[..4].copy_from_slice(&u32::MAX.to_ne_bytes());
        assert_eq!(parse_notifications(&bogus), vec![]);
        let mut short = buf.clone();
        short[..4].copy_from_slice(&3u32.to_ne_bytes());
        assert_eq!(parse_notifications(&short), vec![]);
        assert_eq!(parse_notifications(&[]), vec![]);
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(buf in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse_notifications(&buf);
        }

        #[test]
        fn valid_messages_survive_trailing_garbage(
            index in 1u32..10_000,
            up: bool,
            tail in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let mut buf = emit(link(index, "vf0", up));
            buf.extend(tail);
            let got = parse_notifications(&buf);
            prop_assert_eq!(
                got.first(),
                Some(&Notification::Link { index, name: "vf0".into(), usable: up })
            );
        }
    }
}
