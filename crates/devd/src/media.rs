//! `media-type` statements (spec §2.3) through an injectable probe.

/// The active media type of an interface, as SIOCGIFMEDIA reports it (`IFM_TYPE` bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaType {
    /// `IFM_ETHER`
    Ethernet,
    /// `IFM_IEEE80211`
    Ieee80211,
    /// `IFM_ATM`
    Atm,
    /// Any other `IFM_TYPE` value.
    Other(u32),
}

impl MediaType {
    /// From the `IFM_TYPE` bits of an active media word.
    pub fn from_ifm_type(bits: u32) -> MediaType {
        match bits & 0xe0 {
            0x20 => MediaType::Ethernet,
            0x80 => MediaType::Ieee80211,
            0xa0 => MediaType::Atm,
            other => MediaType::Other(other),
        }
    }

    /// Parse a user-facing name (`ethernet`, `802.11`, `atm`), case-insensitively.
    pub fn from_name(name: &str) -> Option<MediaType> {
        match MediaKind::from_name(name.as_bytes()) {
            MediaKind::Ethernet => Some(MediaType::Ethernet),
            MediaKind::Ieee80211 => Some(MediaType::Ieee80211),
            MediaKind::Atm => Some(MediaType::Atm),
            MediaKind::Unknown => None,
        }
    }
}

/// Size of the kernel's interface name field (`IFNAMSIZ`): 15 bytes and the NUL.
pub const IFNAMSIZ: usize = 16;

/// The name the kernel looks up when devd asks for `name`'s media: devd copies the name into
/// the 16-byte `ifm_name` field of SIOCGIFMEDIA's request (strlcpy), so only its first 15
/// bytes count, and a NUL ends it earlier, as in any C string. A name cut inside a UTF-8
/// character is no longer UTF-8; no interface has such a name.
pub fn kernel_ifname(name: &[u8]) -> &[u8] {
    let end = name
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(name.len())
        .min(IFNAMSIZ - 1);
    &name[..end]
}

/// Answers "what media does interface X have?" for `media-type` statements.
///
/// The engine asks with the name the kernel would look up ([`kernel_ifname`]).
///
/// Return `None` when devd's ioctl would fail or report no valid media (no such interface,
/// no media support, `IFM_AVALID` clear); `Some(type)` otherwise.
pub trait MediaProbe {
    fn media(&self, ifname: &str) -> Option<MediaType>;
}

/// A probe for which every interface lookup fails (what the conformance data assumes).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoMedia;

impl MediaProbe for NoMedia {
    fn media(&self, _ifname: &str) -> Option<MediaType> {
        None
    }
}

/// A fixed table of interface media, e.g. from `--media IF=TYPE` arguments.
#[derive(Debug, Clone, Default)]
pub struct StaticMedia {
    entries: Vec<(String, MediaType)>,
}

impl StaticMedia {
    pub fn new() -> StaticMedia {
        StaticMedia::default()
    }

    /// Add or replace an interface's media.
    pub fn insert(&mut self, ifname: impl Into<String>, media: MediaType) {
        let ifname = ifname.into();
        self.entries.retain(|(n, _)| *n != ifname);
        self.entries.push((ifname, media));
    }
}

impl MediaProbe for StaticMedia {
    fn media(&self, ifname: &str) -> Option<MediaType> {
        self.entries
            .iter()
            .find(|(n, _)| n == ifname)
            .map(|(_, m)| *m)
    }
}

/// The type named by a `media-type` statement. Unrecognised names behave as `Unknown`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    Ethernet,
    Ieee80211,
    Atm,
    Unknown,
}

impl MediaKind {
    /// Case-insensitive lookup in devd's table; anything else is `Unknown`.
    pub fn from_name(name: &[u8]) -> MediaKind {
        if name.eq_ignore_ascii_case(b"ethernet") {
            MediaKind::Ethernet
        } else if name.eq_ignore_ascii_case(b"802.11") {
            MediaKind::Ieee80211
        } else if name.eq_ignore_ascii_case(b"atm") {
            MediaKind::Atm
        } else {
            MediaKind::Unknown
        }
    }

    /// Whether the statement holds for an interface whose probe answered `media`.
    pub fn matches(self, media: Option<MediaType>) -> bool {
        match (self, media) {
            (MediaKind::Unknown, None) => true,
            (_, None) | (MediaKind::Unknown, Some(_)) => false,
            (MediaKind::Ethernet, Some(m)) => m == MediaType::Ethernet,
            (MediaKind::Ieee80211, Some(m)) => m == MediaType::Ieee80211,
            (MediaKind::Atm, Some(m)) => m == MediaType::Atm,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_case_insensitive_and_unknown_by_default() {
        assert_eq!(MediaKind::from_name(b"EtherNet"), MediaKind::Ethernet);
        assert_eq!(MediaKind::from_name(b"802.11"), MediaKind::Ieee80211);
        assert_eq!(MediaKind::from_name(b"Tokenring"), MediaKind::Unknown);
        assert_eq!(MediaKind::from_name(b"etherent"), MediaKind::Unknown);
    }

    #[test]
    fn the_kernel_sees_at_most_15_bytes_up_to_a_nul() {
        assert_eq!(kernel_ifname(b"em0"), b"em0");
        assert_eq!(kernel_ifname(b"abcdefghijklmno"), b"abcdefghijklmno");
        assert_eq!(kernel_ifname(b"abcdefghijklmnop"), b"abcdefghijklmno");
        assert_eq!(
            kernel_ifname(b"abcdefghijklmnopqrstuvwxyz"),
            b"abcdefghijklmno"
        );
        assert_eq!(kernel_ifname(b"em0\0junk"), b"em0");
        assert_eq!(kernel_ifname(b"\0em0"), b"");
        assert_eq!(kernel_ifname(b""), b"");
        // 14 ASCII bytes then a two-byte character: the cut leaves half of it.
        let cut = kernel_ifname("abcdefghijklmné".as_bytes());
        assert_eq!(cut.len(), 15);
        assert!(std::str::from_utf8(cut).is_err());
    }

    #[test]
    fn truth_table() {
        assert!(MediaKind::Ethernet.matches(Some(MediaType::Ethernet)));
        assert!(!MediaKind::Ethernet.matches(Some(MediaType::Ieee80211)));
        assert!(!MediaKind::Ethernet.matches(None));
        assert!(MediaKind::Unknown.matches(None));
        assert!(!MediaKind::Unknown.matches(Some(MediaType::Other(0x40))));
        assert_eq!(MediaType::from_ifm_type(0x20 | 0x5), MediaType::Ethernet);
    }
}
