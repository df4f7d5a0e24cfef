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

/// Answers "what media does interface X have?" for `media-type` statements.
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
    fn truth_table() {
        assert!(MediaKind::Ethernet.matches(Some(MediaType::Ethernet)));
        assert!(!MediaKind::Ethernet.matches(Some(MediaType::Ieee80211)));
        assert!(!MediaKind::Ethernet.matches(None));
        assert!(MediaKind::Unknown.matches(None));
        assert!(!MediaKind::Unknown.matches(Some(MediaType::Other(0x40))));
        assert_eq!(MediaType::from_ifm_type(0x20 | 0x5), MediaType::Ethernet);
    }
}
