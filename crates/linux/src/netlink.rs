//! A thin layer over rtnetlink: links, addresses, routes and the tc pieces steering needs.
//!
//! Every error names the interface and the operation; EPERM/EACCES say that root
//! (CAP_NET_ADMIN) is needed.

use futures::stream::{StreamExt, TryStreamExt};
use netlink_packet_core::{
    NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REPLACE,
    NLM_F_REQUEST,
};
use netlink_packet_route::address::AddressAttribute;
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage, State};
use netlink_packet_route::tc::{
    TcAction, TcActionAttribute, TcActionGeneric, TcActionMirrorOption, TcActionOption,
    TcActionType, TcAttribute, TcFilterU32Option, TcHandle, TcMessage, TcMirror,
    TcMirrorActionType, TcOption, TcU32Key, TcU32Selector, TcU32SelectorFlags,
};
use netlink_packet_route::RouteNetlinkMessage;
use rtnetlink::{Handle, LinkUnspec};
use std::net::IpAddr;

/// A netlink operation failed.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    /// The kernel refused for lack of privilege.
    #[error("{op} on {iface}: permission denied: root (CAP_NET_ADMIN) is needed")]
    NotPermitted { op: &'static str, iface: String },
    /// The kernel answered with an error.
    #[error("{op} on {iface}: {source}")]
    Kernel {
        op: &'static str,
        iface: String,
        source: std::io::Error,
    },
    /// The kernel's reply was not what the request expects.
    #[error("{op} on {iface}: unexpected kernel reply: {detail}")]
    Unexpected {
        op: &'static str,
        iface: String,
        detail: String,
    },
    /// No interface of that name exists.
    #[error("{op}: no interface named {iface}")]
    NoSuchInterface { op: &'static str, iface: String },
    /// The netlink socket could not be opened.
    #[error("opening a netlink socket: {0}")]
    Socket(std::io::Error),
}

impl NetlinkError {
    fn from_rt(op: &'static str, iface: &str, e: rtnetlink::Error) -> Self {
        let iface = iface.to_string();
        match e {
            rtnetlink::Error::NetlinkError(m) => {
                let io = m.to_io();
                match io.raw_os_error() {
                    Some(libc::EPERM) | Some(libc::EACCES) => {
                        NetlinkError::NotPermitted { op, iface }
                    }
                    _ => NetlinkError::Kernel {
                        op,
                        iface,
                        source: io,
                    },
                }
            }
            other => NetlinkError::Unexpected {
                op,
                iface,
                detail: other.to_string(),
            },
        }
    }

    /// The kernel's errno, if the kernel answered with one.
    pub fn errno(&self) -> Option<i32> {
        match self {
            NetlinkError::Kernel { source, .. } => source.raw_os_error(),
            NetlinkError::NotPermitted { .. } => Some(libc::EPERM),
            _ => None,
        }
    }
}

/// What hvnet needs to know about one link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    pub mac: [u8; 6],
    pub mtu: u32,
    /// Administratively up (IFF_UP).
    pub admin_up: bool,
    /// IFF_LOWER_UP / operstate up: usable for traffic.
    pub carrier: bool,
    /// IFF_SLAVE: enslaved by a kernel aggregate (netvsc, net_failover, bond).
    pub slave: bool,
    /// The `master` link's index, if any.
    pub master: Option<u32>,
}

impl Link {
    /// Parse a link message; `None` when it carries no name (never from a sane kernel).
    pub fn from_message(msg: &LinkMessage) -> Option<Link> {
        let mut link = Link {
            index: msg.header.index,
            name: String::new(),
            mac: [0; 6],
            mtu: 0,
            admin_up: msg.header.flags.contains(LinkFlags::Up),
            carrier: msg.header.flags.contains(LinkFlags::LowerUp),
            slave: msg.header.flags.contains(LinkFlags::Port),
            master: None,
        };
        let mut oper_up = None;
        for a in &msg.attributes {
            match a {
                LinkAttribute::IfName(n) => link.name = n.clone(),
                LinkAttribute::Address(m) if m.len() == 6 => link.mac.copy_from_slice(m),
                LinkAttribute::Mtu(m) => link.mtu = *m,
                LinkAttribute::Controller(m) => link.master = Some(*m),
                LinkAttribute::OperState(s) => {
                    oper_up = Some(matches!(s, State::Up | State::Unknown))
                }
                _ => {}
            }
        }
        if let Some(up) = oper_up {
            link.carrier = link.carrier && up;
        }
        (!link.name.is_empty()).then_some(link)
    }
}

/// Which hook of a clsact qdisc.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    Ingress,
    Egress,
}

impl Hook {
    /// The clsact parent handle of this hook (ffff:fff2 ingress, ffff:fff3 egress).
    pub fn parent(self) -> TcHandle {
        TcHandle {
            major: 0xffff,
            minor: match self {
                Hook::Ingress => TcHandle::MIN_INGRESS,
                Hook::Egress => TcHandle::MIN_EGRESS,
            },
        }
    }
}

/// A redirect filter as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    /// Target ifindex of the mirred action.
    pub to: u32,
    /// Redirected into the target's ingress (true) or out of its egress (false).
    pub to_ingress: bool,
    /// The filter's priority ([`STEER_PRIORITY`] for hvnet's).
    pub priority: u16,
}

/// The steering filters on one hook of a link, as the kernel reports them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HookFilters {
    pub redirects: Vec<Redirect>,
    /// A BPF classifier at [`GATE_PRIORITY`] (hvnet's steering gate) is attached.
    pub gate: bool,
}

/// The priority hvnet's steering filters use, so they can be told apart.
pub const STEER_PRIORITY: u16 = 49;
/// The priority of the steering gate, evaluated before the redirect.
pub const GATE_PRIORITY: u16 = 48;
const ETH_P_ALL: u16 = 0x0003;

/// An rtnetlink handle with hvnet's operations.
#[derive(Clone)]
pub struct Netlink {
    handle: Handle,
}

impl Netlink {
    /// Open a connection in the calling thread's network namespace; the connection task is
    /// spawned on the current tokio runtime.
    pub fn connect() -> Result<Netlink, NetlinkError> {
        let (conn, handle, _) = rtnetlink::new_connection().map_err(NetlinkError::Socket)?;
        tokio::spawn(conn);
        Ok(Netlink { handle })
    }

    /// Send one request and collect the replies (errors become `rtnetlink::Error`).
    async fn raw(
        &self,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> Result<Vec<RouteNetlinkMessage>, rtnetlink::Error> {
        let mut req = NetlinkMessage::from(msg);
        req.header.flags = flags;
        let mut handle = self.handle.clone();
        let mut replies = handle.request(req)?;
        let mut out = Vec::new();
        while let Some(m) = replies.next().await {
            match m.payload {
                NetlinkPayload::Error(e) if e.code.is_some() => {
                    return Err(rtnetlink::Error::NetlinkError(e))
                }
                NetlinkPayload::InnerMessage(inner) => out.push(inner),
                _ => {}
            }
        }
        Ok(out)
    }

    /// All links.
    pub async fn links(&self) -> Result<Vec<Link>, NetlinkError> {
        let mut out = Vec::new();
        let mut s = self.handle.link().get().execute();
        while let Some(m) = s
            .try_next()
            .await
            .map_err(|e| NetlinkError::from_rt("dump links", "*", e))?
        {
            out.extend(Link::from_message(&m));
        }
        Ok(out)
    }

    /// The link called `name`.
    pub async fn link(&self, name: &str) -> Result<Link, NetlinkError> {
        let mut s = self
            .handle
            .link()
            .get()
            .match_name(name.to_string())
            .execute();
        match s.try_next().await {
            Ok(Some(m)) => Link::from_message(&m).ok_or_else(|| NetlinkError::Unexpected {
                op: "get link",
                iface: name.into(),
                detail: "link message without a name".into(),
            }),
            Ok(None) => Err(NetlinkError::NoSuchInterface {
                op: "get link",
                iface: name.into(),
            }),
            Err(e) => match NetlinkError::from_rt("get link", name, e) {
                NetlinkError::Kernel { source, .. }
                    if source.raw_os_error() == Some(libc::ENODEV) =>
                {
                    Err(NetlinkError::NoSuchInterface {
                        op: "get link",
                        iface: name.into(),
                    })
                }
                e => Err(e),
            },
        }
    }

    /// Set administrative state.
    pub async fn set_admin(&self, link: &Link, up: bool) -> Result<(), NetlinkError> {
        let b = LinkUnspec::new_with_index(link.index);
        let msg = if up { b.up() } else { b.down() }.build();
        self.handle.link().set(msg).execute().await.map_err(|e| {
            NetlinkError::from_rt(
                if up { "set link up" } else { "set link down" },
                &link.name,
                e,
            )
        })
    }

    /// Set the MTU.
    pub async fn set_mtu(&self, link: &Link, mtu: u32) -> Result<(), NetlinkError> {
        let msg = LinkUnspec::new_with_index(link.index).mtu(mtu).build();
        self.handle
            .link()
            .set(msg)
            .execute()
            .await
            .map_err(|e| NetlinkError::from_rt("set mtu", &link.name, e))
    }

    /// Addresses (with prefix length) on link `index`.
    pub async fn addresses(&self, link: &Link) -> Result<Vec<(IpAddr, u8)>, NetlinkError> {
        let mut out = Vec::new();
        let mut s = self
            .handle
            .address()
            .get()
            .set_link_index_filter(link.index)
            .execute();
        while let Some(m) = s
            .try_next()
            .await
            .map_err(|e| NetlinkError::from_rt("dump addresses", &link.name, e))?
        {
            if m.header.index != link.index {
                continue;
            }
            for a in &m.attributes {
                if let AddressAttribute::Address(ip) = a {
                    out.push((*ip, m.header.prefix_len));
                }
            }
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// Add an address; an existing identical address is success.
    pub async fn add_address(
        &self,
        link: &Link,
        ip: IpAddr,
        prefix: u8,
    ) -> Result<(), NetlinkError> {
        match self
            .handle
            .address()
            .add(link.index, ip, prefix)
            .execute()
            .await
        {
            Ok(()) => Ok(()),
            Err(e) => match NetlinkError::from_rt("add address", &link.name, e) {
                e if e.errno() == Some(libc::EEXIST) => Ok(()),
                e => Err(e),
            },
        }
    }

    /// Remove an address; an absent address is success.
    pub async fn del_address(
        &self,
        link: &Link,
        ip: IpAddr,
        prefix: u8,
    ) -> Result<(), NetlinkError> {
        let mut s = self
            .handle
            .address()
            .get()
            .set_link_index_filter(link.index)
            .execute();
        while let Some(m) = s
            .try_next()
            .await
            .map_err(|e| NetlinkError::from_rt("remove address", &link.name, e))?
        {
            let hit = m.header.index == link.index
                && m.header.prefix_len == prefix
                && m.attributes
                    .iter()
                    .any(|a| matches!(a, AddressAttribute::Address(a) if *a == ip));
            if hit {
                return self
                    .handle
                    .address()
                    .del(m)
                    .execute()
                    .await
                    .map_err(|e| NetlinkError::from_rt("remove address", &link.name, e));
            }
        }
        Ok(())
    }

    /// Ensure a clsact qdisc on the link (existing one is success).
    pub async fn ensure_clsact(&self, link: &Link) -> Result<(), NetlinkError> {
        let mut msg = TcMessage::with_index(link.index as i32);
        msg.header.parent = TcHandle::CLSACT;
        msg.header.handle = TcHandle {
            major: 0xffff,
            minor: 0,
        };
        msg.attributes.push(TcAttribute::Kind("clsact".into()));
        let flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
        match self
            .raw(RouteNetlinkMessage::NewQueueDiscipline(msg), flags)
            .await
            .map(drop)
        {
            Ok(()) => Ok(()),
            Err(e) => match NetlinkError::from_rt("add clsact qdisc", &link.name, e) {
                e if e.errno() == Some(libc::EEXIST) => Ok(()),
                e => Err(e),
            },
        }
    }

    /// Add a match-all (u32 0/0) redirect on `hook` of `from` to `to`, into `to`'s ingress or
    /// out of its egress. Replaces whatever filters the hook had (idempotent).
    pub async fn add_redirect(
        &self,
        from: &Link,
        hook: Hook,
        to: &Link,
        to_ingress: bool,
    ) -> Result<(), NetlinkError> {
        let mut sel = TcU32Selector::default();
        sel.flags = TcU32SelectorFlags::Terminal;
        sel.nkeys = 1;
        sel.keys = vec![TcU32Key::default()];
        let mut mirror = TcMirror::default();
        mirror.generic = TcActionGeneric::default();
        mirror.generic.action = TcActionType::Stolen;
        mirror.eaction = if to_ingress {
            TcMirrorActionType::IngressRedir
        } else {
            TcMirrorActionType::EgressRedir
        };
        mirror.ifindex = to.index;
        let mut action = TcAction::default();
        action.attributes = vec![
            TcActionAttribute::Kind("mirred".into()),
            TcActionAttribute::Options(vec![TcActionOption::Mirror(TcActionMirrorOption::Parms(
                mirror,
            ))]),
        ];
        let opts = [
            TcFilterU32Option::Selector(sel),
            TcFilterU32Option::Action(vec![action]),
        ];
        let op = match hook {
            Hook::Ingress => "add ingress redirect filter",
            Hook::Egress => "add egress redirect filter",
        };
        // u32 would add a second key on "replace" without a handle: clear the hook first.
        self.del_filters(from.index, &from.name, hook).await?;
        let req = self
            .handle
            .traffic_filter(from.index as i32)
            .replace()
            .parent(hook.parent().into())
            .priority(STEER_PRIORITY)
            .protocol(ETH_P_ALL.to_be())
            .u32(&opts)
            .map_err(|e| NetlinkError::from_rt(op, &from.name, e))?;
        req.execute()
            .await
            .map_err(|e| NetlinkError::from_rt(op, &from.name, e))
    }

    /// Attach the steering gate (see [`crate::gate`]) on the link's egress, in front of the
    /// redirect (a lower priority number is evaluated first). The hook must have a clsact
    /// qdisc; an existing gate is replaced.
    pub async fn add_gate(
        &self,
        link: &Link,
        gate: &crate::gate::Gate,
    ) -> Result<(), NetlinkError> {
        use netlink_packet_route::tc::{TcBpfFlags, TcFilterBpfOption};
        let mut msg = TcMessage::with_index(link.index as i32);
        msg.header.parent = Hook::Egress.parent();
        msg.header.info = (u32::from(GATE_PRIORITY) << 16) | u32::from(ETH_P_ALL.to_be());
        // A fixed handle, so that a second attach replaces the first.
        msg.header.handle = TcHandle { major: 0, minor: 1 };
        msg.attributes.push(TcAttribute::Kind("bpf".into()));
        msg.attributes.push(TcAttribute::Options(vec![
            TcOption::Bpf(TcFilterBpfOption::ProgFd(gate.prog_fd() as u32)),
            TcOption::Bpf(TcFilterBpfOption::ProgName("hvnet_gate".into())),
            TcOption::Bpf(TcFilterBpfOption::Flags(TcBpfFlags::DirectAction)),
        ]));
        let flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE;
        self.raw(RouteNetlinkMessage::NewTrafficFilter(msg), flags)
            .await
            .map(drop)
            .map_err(|e| NetlinkError::from_rt("add egress steering gate", &link.name, e))
    }

    /// Delete every filter on `hook` of the link; no qdisc or no filters is success.
    /// One netlink request: this is the failover fast path.
    pub async fn del_filters(
        &self,
        ifindex: u32,
        name: &str,
        hook: Hook,
    ) -> Result<(), NetlinkError> {
        let mut req = self.handle.traffic_filter(ifindex as i32).del();
        req = match hook {
            Hook::Ingress => req.ingress(),
            Hook::Egress => req.egress(),
        };
        match req.execute().await {
            Ok(()) => Ok(()),
            Err(e) => match NetlinkError::from_rt("delete redirect filters", name, e) {
                e if matches!(
                    e.errno(),
                    Some(libc::ENOENT) | Some(libc::EINVAL) | Some(libc::ENODEV)
                ) =>
                {
                    Ok(())
                }
                e => Err(e),
            },
        }
    }

    /// The redirect filters on `hook` of the link, as the kernel reports them.
    pub async fn redirects(&self, link: &Link, hook: Hook) -> Result<Vec<Redirect>, NetlinkError> {
        Ok(self.filters(link, hook).await?.redirects)
    }

    /// The redirects and the steering gate on `hook` of the link (one dump).
    pub async fn filters(&self, link: &Link, hook: Hook) -> Result<HookFilters, NetlinkError> {
        let mut msg = TcMessage::with_index(link.index as i32);
        msg.header.parent = hook.parent();
        let replies = match self
            .raw(
                RouteNetlinkMessage::GetTrafficFilter(msg),
                NLM_F_REQUEST | NLM_F_DUMP,
            )
            .await
        {
            Ok(r) => r,
            Err(e) => match NetlinkError::from_rt("dump filters", &link.name, e) {
                e if matches!(
                    e.errno(),
                    Some(libc::EINVAL) | Some(libc::ENOENT) | Some(libc::ENODEV)
                ) =>
                {
                    Vec::new()
                }
                e => return Err(e),
            },
        };
        Ok(HookFilters {
            redirects: replies.iter().flat_map(redirects_in).collect(),
            gate: replies.iter().any(is_gate),
        })
    }
}

/// Whether a tc filter message (a dump reply) is a BPF classifier at the gate's priority.
pub fn is_gate(reply: &RouteNetlinkMessage) -> bool {
    let RouteNetlinkMessage::NewTrafficFilter(m) = reply else {
        return false;
    };
    (m.header.info >> 16) as u16 == GATE_PRIORITY
        && m.attributes
            .iter()
            .any(|a| matches!(a, TcAttribute::Kind(k) if k == "bpf"))
}

/// The mirred redirects of one tc filter message (a dump reply); anything else has none.
pub fn redirects_in(reply: &RouteNetlinkMessage) -> Vec<Redirect> {
    let RouteNetlinkMessage::NewTrafficFilter(m) = reply else {
        return Vec::new();
    };
    let priority = (m.header.info >> 16) as u16;
    let mut out = Vec::new();
    for a in &m.attributes {
        let TcAttribute::Options(opts) = a else {
            continue;
        };
        for o in opts {
            let TcOption::U32(TcFilterU32Option::Action(actions)) = o else {
                continue;
            };
            for act in actions {
                for aa in &act.attributes {
                    let TcActionAttribute::Options(aopts) = aa else {
                        continue;
                    };
                    for ao in aopts {
                        if let TcActionOption::Mirror(TcActionMirrorOption::Parms(p)) = ao {
                            out.push(Redirect {
                                priority,
                                to: p.ifindex,
                                to_ingress: matches!(
                                    p.eaction,
                                    TcMirrorActionType::IngressRedir
                                        | TcMirrorActionType::IngressMirror
                                ),
                            });
                        }
                    }
                }
            }
        }
    }
    out
}

/// The stream of link-change notifications.
pub type LinkEvents = futures::channel::mpsc::UnboundedReceiver<(
    NetlinkMessage<RouteNetlinkMessage>,
    rtnetlink::sys::SocketAddr,
)>;

/// Open a subscription socket for link changes (RTMGRP_LINK) in the calling thread's
/// network namespace. Returns the handle too, so callers can act on the same runtime.
pub fn subscribe_links() -> Result<(Netlink, LinkEvents), NetlinkError> {
    use rtnetlink::sys::{AsyncSocket, SocketAddr};
    let (mut conn, handle, messages) = rtnetlink::new_connection().map_err(NetlinkError::Socket)?;
    let addr = SocketAddr::new(0, rtnetlink::constants::RTMGRP_LINK);
    conn.socket_mut()
        .socket_mut()
        .bind(&addr)
        .map_err(NetlinkError::Socket)?;
    tokio::spawn(conn);
    Ok((Netlink { handle }, messages))
}

/// An IPv4 route of the main table, as hvnet models it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route4 {
    pub dest: std::net::Ipv4Addr,
    pub prefix: u8,
    pub gateway: Option<std::net::Ipv4Addr>,
    pub oif: Option<u32>,
}

impl Netlink {
    /// IPv4 routes of the main table.
    pub async fn routes4(&self) -> Result<Vec<Route4>, NetlinkError> {
        use netlink_packet_route::route::{RouteAddress, RouteAttribute};
        let msg = rtnetlink::RouteMessageBuilder::<std::net::Ipv4Addr>::new().build();
        let mut s = self.handle.route().get(msg).execute();
        let mut out = Vec::new();
        while let Some(m) = s
            .try_next()
            .await
            .map_err(|e| NetlinkError::from_rt("dump routes", "*", e))?
        {
            if m.header.table != 254 {
                continue;
            }
            let mut r = Route4 {
                dest: std::net::Ipv4Addr::UNSPECIFIED,
                prefix: m.header.destination_prefix_length,
                gateway: None,
                oif: None,
            };
            for a in &m.attributes {
                match a {
                    RouteAttribute::Destination(RouteAddress::Inet(d)) => r.dest = *d,
                    RouteAttribute::Gateway(RouteAddress::Inet(g)) => r.gateway = Some(*g),
                    RouteAttribute::Oif(i) => r.oif = Some(*i),
                    _ => {}
                }
            }
            out.push(r);
        }
        Ok(out)
    }

    fn route_message(r: &Route4) -> netlink_packet_route::route::RouteMessage {
        let mut b = rtnetlink::RouteMessageBuilder::<std::net::Ipv4Addr>::new()
            .destination_prefix(r.dest, r.prefix);
        if let Some(g) = r.gateway {
            b = b.gateway(g);
        }
        if let Some(o) = r.oif {
            b = b.output_interface(o);
        }
        b.build()
    }

    /// Add an IPv4 route; an existing one is success.
    pub async fn add_route4(&self, r: &Route4, iface: &str) -> Result<(), NetlinkError> {
        match self
            .handle
            .route()
            .add(Self::route_message(r))
            .execute()
            .await
        {
            Ok(()) => Ok(()),
            Err(e) => match NetlinkError::from_rt("add route", iface, e) {
                e if e.errno() == Some(libc::EEXIST) => Ok(()),
                e => Err(e),
            },
        }
    }

    /// Delete an IPv4 route; an absent one is success.
    pub async fn del_route4(&self, r: &Route4, iface: &str) -> Result<(), NetlinkError> {
        match self
            .handle
            .route()
            .del(Self::route_message(r))
            .execute()
            .await
        {
            Ok(()) => Ok(()),
            Err(e) => match NetlinkError::from_rt("delete route", iface, e) {
                e if e.errno() == Some(libc::ESRCH) => Ok(()),
                e => Err(e),
            },
        }
    }
}
