//! Address aliases: `ifconfig_IF_aliasN`, `ifconfig_IF_aliases`,
//! `ipv6_ifconfig_IF_aliasN`, `ipv4_addrs_IF`, and address ranges, as
//! network.subr's `ifalias_af_common` computes them for `ifalias IF AF alias`.

use crate::conf::RcConf;
use crate::expand::split_fields;
use crate::netsubr::mangle_ifname;
use crate::pattern::glob;

/// Address families `ifalias` handles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Af {
    Inet,
    Inet6,
    Link,
    Ether,
}

impl Af {
    pub fn keyword(self) -> &'static str {
        match self {
            Af::Inet => "inet",
            Af::Inet6 => "inet6",
            Af::Link => "link",
            Af::Ether => "ether",
        }
    }

    fn from_keyword(w: &str) -> Option<Af> {
        Some(match w {
            "inet" => Af::Inet,
            "inet6" => Af::Inet6,
            "link" => Af::Link,
            "ether" => Af::Ether,
            _ => return None,
        })
    }
}

/// The leading number of `name[prefix_len..]`, for `sort -n`.
fn numeric_key(name: &str, prefix_len: usize) -> u128 {
    let digits: String = name[prefix_len..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().unwrap_or(u128::MAX)
}

/// Variables `PREFIX[0-9]*`, sorted numerically on the number after
/// PREFIX (ties by name, the order of `set`).
fn numbered_vars<'a>(conf: &'a RcConf, prefix: &str) -> Vec<&'a str> {
    let mut names: Vec<&str> = conf
        .names_with_prefix(prefix)
        .filter(|n| n[prefix.len()..].starts_with(|c: char| c.is_ascii_digit()))
        .collect();
    names.sort_by_key(|n| (numeric_key(n, prefix.len()), n.to_string()));
    names
}

impl RcConf {
    /// Names of `ifconfig_IF_aliasN` variables in the order rc applies them.
    pub fn alias_var_names(&self, ifname: &str) -> Vec<String> {
        let prefix = format!("ifconfig_{}_alias", mangle_ifname(ifname));
        numbered_vars(self, &prefix)
            .into_iter()
            .map(str::to_string)
            .collect()
    }

    /// The argument groups `ifalias IF AF alias` applies, each one command
    /// `ifconfig IF <group...> alias` (the trailing `alias` is not
    /// included). Ranges are expanded.
    pub fn aliases(&self, ifname: &str, af: Af) -> Vec<Vec<String>> {
        let mut aliasn: Vec<String> = Vec::new();
        for name in self.alias_var_names(ifname) {
            let v = self.get(&name).unwrap_or("");
            let iaf = ["inet", "inet6", "link", "ether"]
                .into_iter()
                .find(|k| v.starts_with(&format!("{k} ")));
            match iaf {
                Some(k) if k == af.keyword() => aliasn.push(v.to_string()),
                None if v.is_empty() => break,
                None if af == Af::Inet => aliasn.push(format!("inet {v}")),
                _ => {}
            }
        }
        if af == Af::Inet6 {
            let prefix = format!("ipv6_ifconfig_{}_alias", mangle_ifname(ifname));
            for name in numbered_vars(self, &prefix) {
                let v = self.get(name).unwrap_or("");
                if v.is_empty() {
                    break;
                }
                aliasn.push(format!("inet6 {v}"));
            }
        }
        for w in split_fields(&self.get_if_var(ifname, "ipv4_addrs_IF").unwrap_or_default()) {
            aliasn.push(format!("inet {w}"));
        }

        let mut words = split_fields(
            &self
                .get_if_var(ifname, "ifconfig_IF_aliases")
                .unwrap_or_default(),
        );
        for a in &aliasn {
            words.extend(split_fields(a));
        }

        // Group words by address-family keyword; keep groups of `af` that
        // have at least one argument.
        let mut groups: Vec<Vec<String>> = Vec::new();
        let mut cur: Vec<String> = Vec::new();
        for w in words {
            if Af::from_keyword(&w).is_some() {
                if cur.len() > 1 && cur[0] == af.keyword() {
                    groups.push(std::mem::take(&mut cur));
                }
                cur = vec![w];
            } else {
                cur.push(w);
            }
        }
        if cur.len() > 1 && cur[0] == af.keyword() {
            groups.push(cur);
        }

        let max = self.netif_ipexpand_max();
        groups
            .into_iter()
            .flat_map(|g| expand_group(af, g, max))
            .collect()
    }
}

/// `ifalias_af_common_handler` for one group: expand ranges.
fn expand_group(af: Af, group: Vec<String>, max: u64) -> Vec<Vec<String>> {
    let joined = group.join(" ");
    if !glob(&format!("{} *[0-9a-fA-F]-*", af.keyword()), &joined) {
        return vec![group];
    }
    let arg = &group[1];
    let exargs = &group[2..];
    match af {
        Af::Inet => expand_inet(arg, exargs, max, true),
        Af::Inet6 => expand_inet6(arg, exargs, max),
        // There is no range expander for link/ether in network.subr: the
        // call fails and nothing is configured.
        Af::Link | Af::Ether => Vec::new(),
    }
    // A group whose `-` is not an address range comes back formatted but
    // otherwise unchanged; rc would recurse on it forever, here it is
    // applied as written.
}

fn with_exargs(af: &str, addr: String, exargs: &[String]) -> Vec<String> {
    let mut v = vec![af.to_string(), addr];
    v.extend(exargs.iter().cloned());
    v
}

/// `${arg%/[0-9]*}`: drop a trailing `/N...` (shortest match).
fn strip_plen(arg: &str) -> String {
    crate::pattern::trim_suffix(arg, &crate::pattern::compile("/[0-9]*"), false)
}

/// `ifalias_expand_addr_inet alias ARG EXARGS`. `expand` is false for the
/// per-address recursion, where rc only formats.
fn expand_inet(arg: &str, exargs: &[String], max: u64, expand: bool) -> Vec<Vec<String>> {
    let key = format!("alias:{arg}:{}", exargs.join(" "));
    if glob("*:*--*", &key) {
        return Vec::new();
    }
    let has_netmask = exargs.iter().any(|e| e.contains("netmask"));
    if !glob("*:*[0-9]-[0-9]*:*", &key) {
        let a = if has_netmask {
            strip_plen(arg)
        } else {
            arg.to_string()
        };
        return vec![with_exargs("inet", a, exargs)];
    }
    if !expand {
        // Only reachable when EXARGS itself holds `digit-digit`: rc's
        // second-level call finds no range in ARG and prints nothing.
        return Vec::new();
    }
    let ipaddr = arg.split('/').next().unwrap_or(arg);
    let mut plen = match arg.rsplit_once('/') {
        Some((_, p)) => p.to_string(),
        None => "32".to_string(),
    };
    let mut range: Option<&str> = None;
    let (mut head, mut tail) = (String::new(), String::new());
    let mut comps: Vec<&str> = ipaddr.split('.').collect();
    if comps.last() == Some(&"") && comps.len() > 1 {
        comps.pop(); // IFS=. drops a trailing empty field
    }
    for c in comps {
        if range.is_none() && glob("[0-9]*-[0-9]*", c) {
            range = Some(c);
        } else if range.is_none() {
            join_dot(&mut head, c);
        } else {
            join_dot(&mut tail, c);
        }
    }
    let Some(range) = range else {
        return Vec::new();
    };
    let low = range.rsplit_once('-').map_or(range, |(l, _)| l);
    let high = range.split_once('-').map_or(range, |(_, h)| h);
    let (Ok(low), Ok(high)) = (low.parse::<u64>(), high.parse::<u64>()) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut count = low;
    while count <= high {
        let mut addr = head.clone();
        join_dot(&mut addr, &count.to_string());
        if !tail.is_empty() {
            addr.push('.');
            addr.push_str(&tail);
        }
        if !plen.is_empty() {
            addr.push('/');
            addr.push_str(&plen);
        }
        out.extend(expand_inet(&addr, exargs, max, false));
        // rc checks the limit after adding, so up to max+2 addresses.
        if count > low.saturating_add(max) {
            break;
        }
        count += 1;
        plen = "32".to_string();
    }
    out
}

fn join_dot(acc: &mut String, c: &str) {
    if !acc.is_empty() {
        acc.push('.');
    }
    acc.push_str(c);
}

/// `ifalias_expand_addr_inet6 alias ARG EXARGS`.
fn expand_inet6(arg: &str, exargs: &[String], max: u64) -> Vec<Vec<String>> {
    let key = format!("alias:{arg}:{}", exargs.join(" "));
    if glob("*:*--*:*", &key) {
        return Vec::new();
    }
    let has_prefixlen = exargs.iter().any(|e| e.contains("prefixlen"));
    let format_one = |a: &str| {
        let a = if has_prefixlen {
            strip_plen(a)
        } else {
            a.to_string()
        };
        with_exargs("inet6", a, exargs)
    };
    if !glob("*:*[0-9a-zA-Z]-[0-9a-zA-Z]*:*", &key) {
        return vec![format_one(arg)];
    }
    let ipaddr = arg.split('/').next().unwrap_or(arg);
    let has_slash = arg.contains('/');
    let plen = arg.rsplit_once('/').map(|(_, p)| p.to_string());
    if glob("*:*.*.*.*", ipaddr) {
        // v4-mapped/compatible ranges become IPv4 aliases in rc, which the
        // inet6 handler then ignores: nothing is configured.
        return Vec::new();
    }
    let plen = if has_slash { plen } else { Some("64".into()) };
    let ipleft_full = ipaddr.rsplit_once('-').map_or(ipaddr, |(l, _)| l);
    let ipright_full = ipaddr.split_once('-').map_or(ipaddr, |(_, r)| r);
    let iplow = ipleft_full.rsplit_once(':').map_or(ipleft_full, |(_, l)| l);
    let iphigh = ipright_full
        .split_once(':')
        .map_or(ipright_full, |(h, _)| h);
    let ipleft = ipleft_full.rsplit_once(':').map_or(ipleft_full, |(l, _)| l);
    let ipright_rest = ipright_full
        .split_once(':')
        .map_or(ipright_full, |(_, r)| r);
    let ipright = if iphigh == ipright_rest {
        String::new()
    } else {
        format!(":{ipright_rest}")
    };
    let suffix = plen.map(|p| format!("/{p}")).unwrap_or_default();
    let mut out = Vec::new();
    if iplow.is_empty() || iphigh.is_empty() {
        out.push(format_one(&format!("{ipaddr}{suffix}")));
        return out;
    }
    let (Ok(low), Ok(high)) = (
        u64::from_str_radix(iplow, 16),
        u64::from_str_radix(iphigh, 16),
    ) else {
        return Vec::new();
    };
    let mut count = low;
    while count <= high {
        out.push(format_one(&format!(
            "{ipleft}:{count:04x}{ipright}{suffix}"
        )));
        if count > low.saturating_add(max) {
            break;
        }
        count += 1;
    }
    out
}
