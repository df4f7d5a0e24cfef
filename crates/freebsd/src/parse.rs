//! Parsers for the output of FreeBSD commands: `ifconfig`, `ifconfig -l`,
//! the hn(4) sysctls, dhclient pid files. Bad output gives a
//! [`ParseError`] naming the command and line; nothing here panics.

use std::net::{Ipv4Addr, Ipv6Addr};

/// Output that does not have the expected shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{command}: line {line}: {message}")]
pub struct ParseError {
    /// The command (or file) whose output this was, e.g. `ifconfig -a`.
    pub command: String,
    /// 1-based line of the output.
    pub line: usize,
    pub message: String,
}

fn err(command: &str, line: usize, message: String) -> ParseError {
    ParseError {
        command: command.to_string(),
        line,
        message,
    }
}

/// Longest interface name FreeBSD allows (IFNAMSIZ 16 with the NUL).
pub const MAX_IFNAME: usize = 15;

/// Whether `name` can be a FreeBSD interface name.
pub fn valid_ifname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_IFNAME
        && name
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b':' && b != b'/')
}

fn check_ifname(command: &str, line: usize, name: &str) -> Result<String, ParseError> {
    if valid_ifname(name) {
        Ok(name.to_string())
    } else {
        Err(err(
            command,
            line,
            format!(
                "expected an interface name (1-{MAX_IFNAME} printable characters, no `:` or `/`), found `{}`",
                name.escape_debug()
            ),
        ))
    }
}

/// `HEX<NAME,NAME>` as ifconfig prints flags and options.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BitFlags {
    pub bits: u64,
    pub names: Vec<String>,
}

impl BitFlags {
    pub fn has(&self, name: &str) -> bool {
        self.names.iter().any(|n| n == name)
    }
}

fn parse_bitflags(command: &str, line: usize, s: &str) -> Result<BitFlags, ParseError> {
    let (hex, rest) = match s.find('<') {
        Some(i) => (&s[..i], Some(&s[i..])),
        None => (s, None),
    };
    let bits = u64::from_str_radix(hex, 16).map_err(|_| {
        err(
            command,
            line,
            format!("expected hexadecimal flags, found `{}`", hex.escape_debug()),
        )
    })?;
    let names = match rest {
        None => Vec::new(),
        Some(r) => {
            let inner = r
                .strip_prefix('<')
                .and_then(|r| r.strip_suffix('>'))
                .ok_or_else(|| {
                    err(
                        command,
                        line,
                        format!(
                            "expected `<NAMES>` after flags, found `{}`",
                            r.escape_debug()
                        ),
                    )
                })?;
            inner
                .split(',')
                .filter(|n| !n.is_empty())
                .map(str::to_string)
                .collect()
        }
    };
    Ok(BitFlags { bits, names })
}

/// An IPv4 address line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InetAddr {
    pub addr: Ipv4Addr,
    pub prefix_len: u8,
    pub broadcast: Option<Ipv4Addr>,
    /// Point-to-point destination (`-->`).
    pub dest: Option<Ipv4Addr>,
    pub vhid: Option<u32>,
}

/// An IPv6 address line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inet6Addr {
    pub addr: Ipv6Addr,
    /// Zone after `%` (e.g. `hn0` for link-local addresses).
    pub zone: Option<String>,
    pub prefix_len: u8,
    /// Words like `autoconf`, `tentative`, `deprecated`, `detached`.
    pub flags: Vec<String>,
    pub scope_id: Option<u32>,
}

/// One `laggport:` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaggPort {
    pub name: String,
    pub flags: BitFlags,
}

impl LaggPort {
    /// MASTER: the failover primary.
    pub fn is_primary(&self) -> bool {
        self.flags.has("MASTER") || self.flags.bits & 0x1 != 0
    }
    /// ACTIVE: currently carrying traffic.
    pub fn is_active(&self) -> bool {
        self.flags.has("ACTIVE") || self.flags.bits & 0x4 != 0
    }
}

/// lagg(4) details of an interface.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LaggInfo {
    pub proto: hvnet_vf::AggregateProto,
    pub hash: Option<String>,
    pub ports: Vec<LaggPort>,
}

/// Link status from the `status:` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkStatus {
    Active,
    NoCarrier,
    Other(String),
}

/// One interface as `ifconfig` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Interface {
    pub name: String,
    pub flags: BitFlags,
    pub metric: Option<u32>,
    pub mtu: Option<u32>,
    pub options: Option<BitFlags>,
    pub ether: Option<String>,
    pub hwaddr: Option<String>,
    pub inet: Vec<InetAddr>,
    pub inet6: Vec<Inet6Addr>,
    pub media: Option<String>,
    pub status: Option<LinkStatus>,
    pub lagg: Option<LaggInfo>,
    pub description: Option<String>,
    pub groups: Vec<String>,
    pub nd6: Option<BitFlags>,
}

impl Interface {
    /// IFF_UP (administratively up).
    pub fn is_up(&self) -> bool {
        self.flags.has("UP") || self.flags.bits & 0x1 != 0
    }
    /// IFF_DRV_RUNNING.
    pub fn is_running(&self) -> bool {
        self.flags.has("RUNNING") || self.flags.bits & 0x40 != 0
    }
    /// Link up as far as ifconfig shows it: `status: active`, or no
    /// status line at all with LOWER_UP set.
    pub fn link_up(&self) -> bool {
        match &self.status {
            Some(LinkStatus::Active) => true,
            Some(_) => false,
            None => self.flags.has("LOWER_UP"),
        }
    }
    /// `nd6 options=...IFDISABLED...`.
    pub fn inet6_disabled(&self) -> bool {
        self.nd6.as_ref().is_some_and(|n| n.has("IFDISABLED"))
    }
}

fn parse_mac(command: &str, line: usize, s: &str) -> Result<String, ParseError> {
    let parts: Vec<&str> = s.split(':').collect();
    let ok = parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()));
    if ok {
        Ok(s.to_ascii_lowercase())
    } else {
        Err(err(
            command,
            line,
            format!(
                "expected a MAC address like 00:15:5d:01:02:03, found `{}`",
                s.escape_debug()
            ),
        ))
    }
}

fn parse_u32(command: &str, line: usize, what: &str, s: Option<&str>) -> Result<u32, ParseError> {
    let s = s.ok_or_else(|| {
        err(
            command,
            line,
            format!("expected a number after `{what}`, found end of line"),
        )
    })?;
    let parsed = if let Some(h) = s.strip_prefix("0x") {
        u32::from_str_radix(h, 16).ok()
    } else {
        s.parse().ok()
    };
    parsed.ok_or_else(|| {
        err(
            command,
            line,
            format!(
                "expected a number after `{what}`, found `{}`",
                s.escape_debug()
            ),
        )
    })
}

/// A netmask as `0xffffff00` or dotted quad, to a prefix length.
fn mask_to_prefix(command: &str, line: usize, s: &str) -> Result<u8, ParseError> {
    let bits = if let Some(h) = s.strip_prefix("0x") {
        u32::from_str_radix(h, 16).ok()
    } else {
        s.parse::<Ipv4Addr>().ok().map(u32::from)
    };
    let Some(bits) = bits else {
        return Err(err(
            command,
            line,
            format!(
                "expected a netmask like 0xffffff00, found `{}`",
                s.escape_debug()
            ),
        ));
    };
    let ones = bits.leading_ones();
    if bits.checked_shl(ones).unwrap_or(0) != 0 {
        return Err(err(
            command,
            line,
            format!("expected a contiguous netmask, found `{s}`"),
        ));
    }
    Ok(ones as u8)
}

fn parse_inet(command: &str, line: usize, words: &[&str]) -> Result<InetAddr, ParseError> {
    let Some(first) = words.first() else {
        return Err(err(
            command,
            line,
            "expected an address after `inet`, found end of line".into(),
        ));
    };
    let (addr_s, cidr) = match first.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (*first, None),
    };
    let addr: Ipv4Addr = addr_s.parse().map_err(|_| {
        err(
            command,
            line,
            format!(
                "expected an IPv4 address after `inet`, found `{}`",
                first.escape_debug()
            ),
        )
    })?;
    let mut a = InetAddr {
        addr,
        prefix_len: 32,
        broadcast: None,
        dest: None,
        vhid: None,
    };
    if let Some(p) = cidr {
        a.prefix_len = match p.parse::<u8>() {
            Ok(n) if n <= 32 => n,
            _ => {
                return Err(err(
                    command,
                    line,
                    format!(
                        "expected a prefix length 0-32, found `{}`",
                        p.escape_debug()
                    ),
                ))
            }
        };
    }
    let mut i = 1;
    while i < words.len() {
        let next = words.get(i + 1).copied();
        match words[i] {
            "netmask" => {
                let m = next.ok_or_else(|| {
                    err(
                        command,
                        line,
                        "expected a netmask after `netmask`, found end of line".into(),
                    )
                })?;
                a.prefix_len = mask_to_prefix(command, line, m)?;
                i += 2;
            }
            "broadcast" | "-->" => {
                let v = next
                    .and_then(|s| s.parse::<Ipv4Addr>().ok())
                    .ok_or_else(|| {
                        err(
                            command,
                            line,
                            format!("expected an IPv4 address after `{}`", words[i]),
                        )
                    })?;
                if words[i] == "broadcast" {
                    a.broadcast = Some(v);
                } else {
                    a.dest = Some(v);
                }
                i += 2;
            }
            "vhid" => {
                a.vhid = Some(parse_u32(command, line, "vhid", next)?);
                i += 2;
            }
            _ => i += 1,
        }
    }
    Ok(a)
}

fn parse_inet6(command: &str, line: usize, words: &[&str]) -> Result<Inet6Addr, ParseError> {
    let Some(first) = words.first() else {
        return Err(err(
            command,
            line,
            "expected an address after `inet6`, found end of line".into(),
        ));
    };
    let (addr_zone, cidr) = match first.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (*first, None),
    };
    let (addr_s, zone) = match addr_zone.split_once('%') {
        Some((a, z)) => (a, Some(z.to_string())),
        None => (addr_zone, None),
    };
    let addr: Ipv6Addr = addr_s.parse().map_err(|_| {
        err(
            command,
            line,
            format!(
                "expected an IPv6 address after `inet6`, found `{}`",
                first.escape_debug()
            ),
        )
    })?;
    let mut a = Inet6Addr {
        addr,
        zone,
        prefix_len: 128,
        flags: Vec::new(),
        scope_id: None,
    };
    let plen = |p: &str| match p.parse::<u8>() {
        Ok(n) if n <= 128 => Ok(n),
        _ => Err(err(
            command,
            line,
            format!(
                "expected a prefix length 0-128, found `{}`",
                p.escape_debug()
            ),
        )),
    };
    if let Some(p) = cidr {
        a.prefix_len = plen(p)?;
    }
    let mut i = 1;
    while i < words.len() {
        let next = words.get(i + 1).copied();
        match words[i] {
            "prefixlen" => {
                let p = next.ok_or_else(|| {
                    err(
                        command,
                        line,
                        "expected a number after `prefixlen`, found end of line".into(),
                    )
                })?;
                a.prefix_len = plen(p)?;
                i += 2;
            }
            "scopeid" => {
                a.scope_id = Some(parse_u32(command, line, "scopeid", next)?);
                i += 2;
            }
            "-->" | "pltime" | "vltime" | "vhid" => i += 2,
            w => {
                a.flags.push(w.to_string());
                i += 1;
            }
        }
    }
    Ok(a)
}

/// Parse the output of `ifconfig`, `ifconfig -a` or `ifconfig IF`.
/// `command` names the command in errors.
pub fn parse_ifconfig(command: &str, text: &str) -> Result<Vec<Interface>, ParseError> {
    let mut out: Vec<Interface> = Vec::new();
    for (idx, raw) in text.lines().enumerate() {
        let line = idx + 1;
        if raw.trim().is_empty() {
            continue;
        }
        if !raw.starts_with([' ', '\t']) {
            out.push(parse_header(command, line, raw)?);
            continue;
        }
        let Some(iface) = out.last_mut() else {
            return Err(err(
                command,
                line,
                "expected an interface header `NAME: flags=...`, found an indented line".into(),
            ));
        };
        let body = raw.trim();
        let words: Vec<&str> = body.split_whitespace().collect();
        let rest_after = |prefix: &str| body[prefix.len()..].trim().to_string();
        match words[0] {
            "ether" => {
                let m = words.get(1).copied().unwrap_or("");
                iface.ether = Some(parse_mac(command, line, m)?);
            }
            "hwaddr" => {
                let m = words.get(1).copied().unwrap_or("");
                iface.hwaddr = Some(parse_mac(command, line, m)?);
            }
            "inet" => iface.inet.push(parse_inet(command, line, &words[1..])?),
            "inet6" => iface.inet6.push(parse_inet6(command, line, &words[1..])?),
            "media:" => iface.media = Some(rest_after("media:")),
            "status:" => {
                let s = rest_after("status:");
                iface.status = Some(match s.as_str() {
                    "active" => LinkStatus::Active,
                    "no carrier" => LinkStatus::NoCarrier,
                    _ => LinkStatus::Other(s),
                });
            }
            "description:" => iface.description = Some(rest_after("description:")),
            "groups:" => iface.groups = words[1..].iter().map(|s| s.to_string()).collect(),
            "laggproto" => {
                let proto = words.get(1).ok_or_else(|| {
                    err(
                        command,
                        line,
                        "expected a protocol after `laggproto`, found end of line".into(),
                    )
                })?;
                let lagg = iface.lagg.get_or_insert_with(LaggInfo::default);
                lagg.proto = hvnet_vf::AggregateProto::from_name(proto);
                if let Some(i) = words.iter().position(|w| *w == "lagghash") {
                    lagg.hash = words.get(i + 1).map(|s| s.to_string());
                }
            }
            "laggport:" => {
                let name = words.get(1).copied().unwrap_or("");
                let name = check_ifname(command, line, name)?;
                let flags = match words.get(2) {
                    Some(f) => match f.strip_prefix("flags=") {
                        Some(v) => parse_bitflags(command, line, v)?,
                        None => {
                            return Err(err(
                                command,
                                line,
                                format!(
                                    "expected `flags=` after the port name, found `{}`",
                                    f.escape_debug()
                                ),
                            ))
                        }
                    },
                    None => BitFlags::default(),
                };
                iface
                    .lagg
                    .get_or_insert_with(LaggInfo::default)
                    .ports
                    .push(LaggPort { name, flags });
            }
            "nd6" => {
                if let Some(v) = words.get(1).and_then(|w| w.strip_prefix("options=")) {
                    iface.nd6 = Some(parse_bitflags(command, line, v)?);
                }
            }
            w if w.starts_with("options=") => {
                iface.options = Some(parse_bitflags(command, line, &w["options=".len()..])?);
            }
            // Many other lines (capabilities, plugged:, vendor:, ...) are
            // not needed here.
            _ => {}
        }
    }
    Ok(out)
}

fn parse_header(command: &str, line: usize, raw: &str) -> Result<Interface, ParseError> {
    let Some((name, rest)) = raw.split_once(": ") else {
        return Err(err(
            command,
            line,
            format!("expected `NAME: flags=...`, found `{}`", raw.escape_debug()),
        ));
    };
    let name = check_ifname(command, line, name)?;
    let words: Vec<&str> = rest.split_whitespace().collect();
    let flags = match words.first().and_then(|w| w.strip_prefix("flags=")) {
        Some(f) => parse_bitflags(command, line, f)?,
        None => {
            return Err(err(
                command,
                line,
                format!(
                    "expected `flags=` after `{name}:`, found `{}`",
                    rest.escape_debug()
                ),
            ))
        }
    };
    let mut iface = Interface {
        name,
        flags,
        ..Interface::default()
    };
    let mut i = 1;
    while i < words.len() {
        match words[i] {
            "metric" => {
                iface.metric = Some(parse_u32(
                    command,
                    line,
                    "metric",
                    words.get(i + 1).copied(),
                )?);
                i += 2;
            }
            "mtu" => {
                iface.mtu = Some(parse_u32(command, line, "mtu", words.get(i + 1).copied())?);
                i += 2;
            }
            _ => i += 1,
        }
    }
    Ok(iface)
}

/// Parse `ifconfig -l`: interface names separated by blanks.
pub fn parse_ifconfig_list(command: &str, text: &str) -> Result<Vec<String>, ParseError> {
    let mut names = Vec::new();
    for (idx, l) in text.lines().enumerate() {
        for w in l.split_whitespace() {
            names.push(check_ifname(command, idx + 1, w)?);
        }
    }
    Ok(names)
}

/// Parse `sysctl -n hw.hn.vflist`: VF names separated by single spaces;
/// empty when no VF is registered.
pub fn parse_vflist(command: &str, text: &str) -> Result<Vec<String>, ParseError> {
    let t = single_line(command, text)?;
    t.split_whitespace()
        .map(|w| check_ifname(command, 1, w))
        .collect()
}

/// Parse `sysctl -n hw.hn.vfmap`: `VF:HN` pairs separated by spaces.
pub fn parse_vfmap(command: &str, text: &str) -> Result<Vec<(String, String)>, ParseError> {
    let t = single_line(command, text)?;
    t.split_whitespace()
        .map(|pair| {
            let (vf, hn) = pair.split_once(':').ok_or_else(|| {
                err(
                    command,
                    1,
                    format!("expected `VF:HN`, found `{}`", pair.escape_debug()),
                )
            })?;
            Ok((check_ifname(command, 1, vf)?, check_ifname(command, 1, hn)?))
        })
        .collect()
}

/// Parse `sysctl -n dev.hn.N.vf` (or `.rxvf`): the VF name, or `None`
/// when empty.
pub fn parse_dev_vf(command: &str, text: &str) -> Result<Option<String>, ParseError> {
    let t = single_line(command, text)?;
    let words: Vec<&str> = t.split_whitespace().collect();
    match words.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(check_ifname(command, 1, one)?)),
        _ => Err(err(
            command,
            1,
            format!(
                "expected one interface name or nothing, found `{}`",
                t.escape_debug()
            ),
        )),
    }
}

/// Parse an integer sysctl (`hw.hn.vf_transparent`, ...).
pub fn parse_sysctl_int(command: &str, text: &str) -> Result<i64, ParseError> {
    let t = single_line(command, text)?.trim();
    t.parse().map_err(|_| {
        err(
            command,
            1,
            format!("expected an integer, found `{}`", t.escape_debug()),
        )
    })
}

/// sysctl -n output: one line (a final newline allowed).
fn single_line<'a>(command: &str, text: &'a str) -> Result<&'a str, ParseError> {
    let t = text.strip_suffix('\n').unwrap_or(text);
    if let Some(i) = t.find('\n') {
        let line = t[..i].matches('\n').count() + 2;
        return Err(err(
            command,
            line,
            "expected a single line of output, found more".into(),
        ));
    }
    Ok(t)
}

/// Where dhclient keeps its pid file for `ifname`: under
/// `/var/run/dhclient/` since FreeBSD 12, directly in `/var/run` before.
pub fn dhclient_pidfile(ifname: &str, freebsd_major: u32) -> String {
    if freebsd_major >= 12 {
        format!("/var/run/dhclient/dhclient.{ifname}.pid")
    } else {
        format!("/var/run/dhclient.{ifname}.pid")
    }
}

/// Parse a pid file (a decimal pid, optionally followed by a newline).
pub fn parse_pidfile(path: &str, text: &str) -> Result<u32, ParseError> {
    let t = text.trim_end_matches(['\n', '\r', ' ', '\t']);
    match t.parse::<u32>() {
        Ok(p) if p > 0 && p <= i32::MAX as u32 && !t.starts_with('+') => Ok(p),
        _ => Err(err(
            path,
            1,
            format!("expected a process id, found `{}`", t.escape_debug()),
        )),
    }
}

/// One row of `netstat -rn`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteRow {
    pub inet6: bool,
    /// Destination as printed (`default`, `10.0.0.0/24`, `10.0.0.4`,
    /// `fe80::%lo0/64`).
    pub destination: String,
    /// Gateway as printed (`10.0.0.1`, `link#2`, `fe80::1%hn0`).
    pub gateway: String,
    pub flags: String,
    pub netif: String,
}

/// Parse `netstat -rn` (both `Internet:` and `Internet6:` sections).
/// Columns are found by the header line, so older layouts (with Refs and
/// Use) parse too.
pub fn parse_netstat_routes(command: &str, text: &str) -> Result<Vec<RouteRow>, ParseError> {
    let mut out = Vec::new();
    let mut family: Option<bool> = None;
    let mut cols: Option<(usize, usize, usize, usize)> = None;
    for (idx, l) in text.lines().enumerate() {
        let line = idx + 1;
        let t = l.trim();
        match t {
            "" | "Routing tables" => continue,
            "Internet:" => {
                family = Some(false);
                cols = None;
                continue;
            }
            "Internet6:" => {
                family = Some(true);
                cols = None;
                continue;
            }
            _ => {}
        }
        let words: Vec<&str> = t.split_whitespace().collect();
        if words.first() == Some(&"Destination") {
            let pos = |name: &str| words.iter().position(|w| *w == name);
            match (
                pos("Destination"),
                pos("Gateway"),
                pos("Flags"),
                pos("Netif"),
            ) {
                (Some(d), Some(g), Some(f), Some(n)) => cols = Some((d, g, f, n)),
                _ => {
                    return Err(err(
                        command,
                        line,
                        "expected a header with Destination, Gateway, Flags and Netif".into(),
                    ))
                }
            }
            continue;
        }
        let Some(inet6) = family else {
            // Other address families (e.g. link) and banners are skipped.
            continue;
        };
        let Some((d, g, f, n)) = cols else {
            return Err(err(
                command,
                line,
                format!(
                    "expected a `Destination ...` header before `{}`",
                    t.escape_debug()
                ),
            ));
        };
        let max = d.max(g).max(f).max(n);
        if words.len() <= max {
            return Err(err(
                command,
                line,
                format!(
                    "expected at least {} columns, found {}: `{}`",
                    max + 1,
                    words.len(),
                    t.escape_debug()
                ),
            ));
        }
        out.push(RouteRow {
            inet6,
            destination: words[d].to_string(),
            gateway: words[g].to_string(),
            flags: words[f].to_string(),
            netif: words[n].to_string(),
        });
    }
    Ok(out)
}

/// Parse `pgrep` output: one pid per line (empty when none).
pub fn parse_pids(command: &str, text: &str) -> Result<Vec<u32>, ParseError> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            l.trim().parse::<u32>().map_err(|_| {
                err(
                    command,
                    i + 1,
                    format!("expected a process id, found `{}`", l.trim().escape_debug()),
                )
            })
        })
        .collect()
}

/// The major version in `kern.osrelease` (`14.1-RELEASE-p3` → 14).
pub fn parse_osrelease_major(command: &str, text: &str) -> Result<u32, ParseError> {
    let t = text.trim();
    t.split(['.', '-'])
        .next()
        .and_then(|m| m.parse().ok())
        .ok_or_else(|| {
            err(
                command,
                1,
                format!(
                    "expected a release like 14.1-RELEASE, found `{}`",
                    t.escape_debug()
                ),
            )
        })
}
