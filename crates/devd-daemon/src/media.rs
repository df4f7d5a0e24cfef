//! `media-type` answers for the running daemon. FreeBSD's SIOCGIFMEDIA has no Linux
//! equivalent, so on Linux the kernel's view in sysfs stands in: a `wireless` directory means
//! 802.11, ARPHRD_ETHER means Ethernet; anything else (or another OS) reports no media, which
//! devd treats as "unknown".

use hvnet_devd::{MediaProbe, MediaType};

pub struct SystemMedia;

impl MediaProbe for SystemMedia {
    fn media(&self, ifname: &str) -> Option<MediaType> {
        if ifname.is_empty() || ifname.contains('/') || ifname.starts_with('.') {
            return None;
        }
        let base = std::path::Path::new("/sys/class/net").join(ifname);
        if base.join("wireless").is_dir() {
            return Some(MediaType::Ieee80211);
        }
        let ty = std::fs::read_to_string(base.join("type")).ok()?;
        match ty.trim() {
            "1" => Some(MediaType::Ethernet),
            _ => None,
        }
    }
}
