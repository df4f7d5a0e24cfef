//! The static addresses an interface's rc.conf configuration assigns,
//! parsed from its ifconfig argument words, for planners that work with
//! addresses rather than command lines.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::iface::InterfaceConfig;

/// Where in rc.conf an address comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddressSource {
    /// `ifconfig_IF`.
    Main,
    /// `ifconfig_IF_ipv6`.
    Ipv6Main,
    /// `ipv6_ifconfig_IF` (obsolete form).
    Ipv6Obsolete,
    /// `ifconfig_IF_aliasN`, `ifconfig_IF_aliases`, `ipv4_addrs_IF`, ...
    Alias,
}

/// One configured address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfiguredAddress {
    pub addr: IpAddr,
    /// From `/N`, `netmask`, or `prefixlen`; `None` when the words do not
    /// say (ifconfig then applies its own default).
    pub prefix: Option<u8>,
    pub source: AddressSource,
    /// The address group's other words (e.g. `vhid 1`, `broadcast ...`).
    pub extra: Vec<String>,
}

/// Why a group of ifconfig words does not give an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressError {
    pub words: String,
    pub message: String,
}

fn mask_prefix(m: &str) -> Option<u8> {
    let bits = if let Some(h) = m.strip_prefix("0x").or_else(|| m.strip_prefix("0X")) {
        u32::from_str_radix(h, 16).ok()?
    } else {
        u32::from(m.parse::<Ipv4Addr>().ok()?)
    };
    let ones = bits.leading_ones();
    (bits.checked_shl(ones).unwrap_or(0) == 0).then_some(ones as u8)
}

/// Parse address groups out of ifconfig words: each `inet`/`inet6`
/// keyword starts a group whose first word is the address. Words before
/// the first keyword (e.g. `mtu 9000`, `up`) are not addresses.
pub fn parse_address_words(
    words: &[String],
    source: AddressSource,
) -> Result<Vec<ConfiguredAddress>, AddressError> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let fam6 = match words[i].as_str() {
            "inet" => false,
            "inet6" => true,
            _ => {
                i += 1;
                continue;
            }
        };
        let start = i;
        i += 1;
        let mut end = i;
        while end < words.len()
            && !matches!(words[end].as_str(), "inet" | "inet6" | "link" | "ether")
        {
            end += 1;
        }
        let group = &words[start..end];
        let bad = |message: String| AddressError {
            words: group.join(" "),
            message,
        };
        let Some(first) = group.get(1) else {
            // `inet6 -ifdisabled`-style words carry no address.
            i = end;
            continue;
        };
        let (a, p) = match first.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (first.as_str(), None),
        };
        let a = a.split('%').next().unwrap_or(a);
        let addr: Option<IpAddr> = if fam6 {
            a.parse::<Ipv6Addr>().ok().map(IpAddr::V6)
        } else {
            a.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
        };
        let Some(addr) = addr else {
            // Flags like `inet6 accept_rtadv` or `inet6 auto_linklocal`.
            if fam6 && !first.contains(':') {
                i = end;
                continue;
            }
            return Err(bad(format!(
                "expected an {} address after `{}`, found `{first}`",
                if fam6 { "IPv6" } else { "IPv4" },
                group[0]
            )));
        };
        let max = if fam6 { 128 } else { 32 };
        let mut prefix = match p {
            Some(p) => match p.parse::<u8>() {
                Ok(n) if n <= max => Some(n),
                _ => {
                    return Err(bad(format!(
                        "expected a prefix length 0-{max}, found `{p}`"
                    )))
                }
            },
            None => None,
        };
        let mut extra = Vec::new();
        let mut j = 2;
        while j < group.len() {
            match (group[j].as_str(), group.get(j + 1)) {
                ("netmask", Some(m)) if !fam6 => {
                    prefix = Some(
                        mask_prefix(m)
                            .ok_or_else(|| bad(format!("expected a netmask, found `{m}`")))?,
                    );
                    j += 2;
                }
                ("prefixlen", Some(n)) if fam6 => {
                    prefix = Some(match n.parse::<u8>() {
                        Ok(v) if v <= 128 => v,
                        _ => {
                            return Err(bad(format!("expected a prefix length 0-128, found `{n}`")))
                        }
                    });
                    j += 2;
                }
                (w, _) => {
                    extra.push(w.to_string());
                    j += 1;
                }
            }
        }
        out.push(ConfiguredAddress {
            addr,
            prefix,
            source,
            extra,
        });
        i = end;
    }
    Ok(out)
}

impl InterfaceConfig {
    /// Every static address the configuration assigns: `ifconfig_IF`,
    /// `ifconfig_IF_ipv6`, obsolete `ipv6_ifconfig_IF`, then IPv4 and IPv6
    /// aliases (ranges already expanded). Empty for DHCP-only setups.
    pub fn addresses(&self) -> Result<Vec<ConfiguredAddress>, AddressError> {
        let mut out = parse_address_words(&self.args, AddressSource::Main)?;
        out.extend(parse_address_words(
            &self.ipv6.args,
            AddressSource::Ipv6Main,
        )?);
        out.extend(parse_address_words(
            &self.ipv6.obsolete_args,
            AddressSource::Ipv6Obsolete,
        )?);
        for g in self.ipv4_aliases.iter().chain(&self.ipv6.aliases) {
            out.extend(parse_address_words(g, AddressSource::Alias)?);
        }
        Ok(out)
    }
}
