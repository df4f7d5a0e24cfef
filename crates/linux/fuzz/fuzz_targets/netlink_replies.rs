//! Arbitrary bytes as what the kernel sends on a netlink socket: hvnet's hand-written
//! framing of notification datagrams and its walks over decoded link and tc-filter
//! messages must never panic.
#![no_main]

use hvnet_linux::monitor::{parse_notifications, Notification};
use hvnet_linux::netlink::{redirects_in, Link};
use libfuzzer_sys::fuzz_target;
use netlink_packet_core::{NetlinkMessage, NetlinkPayload};
use netlink_packet_route::RouteNetlinkMessage;

fuzz_target!(|data: &[u8]| {
    for n in parse_notifications(data) {
        if let Notification::Link { name, .. } = n {
            assert!(!name.is_empty(), "a link notification always has a name");
        }
    }
    if let Ok(m) = NetlinkMessage::<RouteNetlinkMessage>::deserialize(data) {
        if let NetlinkPayload::InnerMessage(inner) = m.payload {
            let _ = redirects_in(&inner);
            if let RouteNetlinkMessage::NewLink(l) | RouteNetlinkMessage::DelLink(l) = &inner {
                if let Some(link) = Link::from_message(l) {
                    assert_eq!(link.index, l.header.index);
                }
            }
        }
    }
});
