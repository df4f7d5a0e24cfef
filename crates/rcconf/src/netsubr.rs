//! The per-interface rules of network.subr and rc.subr, on a loaded
//! configuration. Function names follow the shell functions they mirror.

use crate::conf::RcConf;
use crate::expand::{self, split_fields, Env};
use crate::pattern::glob;
use crate::syntax;

/// Pseudo-arguments of `ifconfig_IF` that are not ifconfig(8) arguments.
pub const PSEUDO_ARGS: &[&str] = &["DHCP", "NOAUTO", "NOSYNCDHCP", "SYNCDHCP", "WPA", "HOSTAP"];

/// Upper bound on `netif_ipexpand_max` (rc has none; a 16-bit range of
/// addresses is far beyond any real alias list).
pub const IPEXPAND_HARD_MAX: u64 = 65_536;

/// Interfaces that never get address-family configuration (`noafif`).
const NOAF_PATTERNS: &[&str] = &[
    "pflog[0-9]*",
    "pfsync[0-9]*",
    "usbus[0-9]*",
    "an[0-9]*",
    "ath[0-9]*",
    "ipw[0-9]*",
    "ipfw[0-9]*",
    "iwi[0-9]*",
    "iwn[0-9]*",
    "ral[0-9]*",
    "wi[0-9]*",
    "wl[0-9]*",
    "wpi[0-9]*",
];

/// Interfaces that are never DHCP-configured, besides no-AF ones.
const NODHCP_PATTERNS: &[&str] = &["lo[0-9]*", "stf[0-9]*", "lp[0-9]*", "sl[0-9]*"];

/// `ltr IF ".-/+" "_"`: the interface name as used in variable names.
/// ltr splits on those characters as IFS and rejoins with `_`, so (as in
/// rc) a leading or trailing one disappears: `.a.` becomes `a`.
pub fn mangle_ifname(ifname: &str) -> String {
    let mut fields: Vec<&str> = ifname.split(['.', '-', '/', '+']).collect();
    // IFS splitting makes no empty field after a final delimiter.
    if fields.len() > 1 && fields.last() == Some(&"") {
        fields.pop();
    }
    if ifname.is_empty() {
        fields.clear();
    }
    let mut out = String::new();
    for f in fields {
        if out.is_empty() {
            out = f.to_string();
        } else {
            out.push('_');
            out.push_str(f);
        }
    }
    out
}

/// The variable name `get_if_var IF PATTERN` reads: the text before the
/// first `IF` of the pattern, the mangled name, the text after the last `IF`.
pub fn if_var_name(ifname: &str, pattern: &str) -> String {
    let prefix = pattern.find("IF").map_or(pattern, |i| &pattern[..i]);
    let suffix = pattern.rfind("IF").map_or(pattern, |i| &pattern[i + 2..]);
    format!("{prefix}{}{suffix}", mangle_ifname(ifname))
}

/// `noafif IF`: pflog, pfsync, usbus and some wireless parents.
pub fn noafif(ifname: &str) -> bool {
    NOAF_PATTERNS.iter().any(|p| glob(p, ifname))
}

/// Whole-word, case-insensitive keyword test.
fn is_keyword(word: &str, kw: &str) -> bool {
    word.eq_ignore_ascii_case(kw)
}

/// `echo $value`: split into fields and join with single spaces.
fn echo(value: &str) -> String {
    split_fields(value).join(" ")
}

/// Read-only view used to evaluate `eval`-style argument lists.
struct ReadOnly<'a>(&'a RcConf);

impl Env for ReadOnly<'_> {
    fn var(&self, name: &str) -> Option<&str> {
        self.0.get(name)
    }
    fn set_var(&mut self, _name: &str, _value: String) {
        // `${x:=y}` inside an ifconfig_IF value would assign in rc's shell;
        // the loaded configuration is not changed by reading it.
    }
}

impl RcConf {
    /// `get_if_var IF PATTERN`: `None` if the variable is unset. The value
    /// is echoed unquoted by the shell function, so runs of blanks and
    /// newlines become single spaces.
    pub fn get_if_var(&self, ifname: &str, pattern: &str) -> Option<String> {
        self.get(&if_var_name(ifname, pattern)).map(echo)
    }

    /// `get_if_var IF PATTERN DEFAULT`: the default if unset (set but
    /// empty stays empty).
    pub fn get_if_var_or(&self, ifname: &str, pattern: &str, default: &str) -> String {
        self.get_if_var(ifname, pattern)
            .unwrap_or_else(|| echo(default))
    }

    /// The exact value of the variable `get_if_var` would read.
    pub fn get_if_var_raw(&self, ifname: &str, pattern: &str) -> Option<&str> {
        self.get(&if_var_name(ifname, pattern))
    }

    /// `_ifconfig_getargs IF [AF]`: `ifconfig_IF` (or `ifconfig_IF_AF`),
    /// falling back to `$ifconfig_DEFAULT` when unset, for the AF variant
    /// too. Empty for an empty interface name.
    pub fn ifconfig_raw_args(&self, ifname: &str, af: Option<&str>) -> String {
        if ifname.is_empty() {
            return String::new();
        }
        let pattern = match af {
            Some(af) => format!("ifconfig_IF_{af}"),
            None => "ifconfig_IF".to_string(),
        };
        self.get_if_var_or(ifname, &pattern, self.get("ifconfig_DEFAULT").unwrap_or(""))
    }

    fn raw_words(&self, ifname: &str, af: Option<&str>) -> Vec<String> {
        split_fields(&self.ifconfig_raw_args(ifname, af))
    }

    /// `ifconfig_getargs IF [AF]` as words: the pseudo-arguments DHCP,
    /// NOAUTO, NOSYNCDHCP, SYNCDHCP, WPA, HOSTAP (any case) and `vnet JAIL`
    /// pairs removed, order kept.
    pub fn ifconfig_args(&self, ifname: &str, af: Option<&str>) -> Vec<String> {
        let mut out = Vec::new();
        let mut after_vnet = false;
        for w in self.raw_words(ifname, af) {
            if after_vnet {
                after_vnet = false;
                continue;
            }
            if PSEUDO_ARGS.iter().any(|k| is_keyword(&w, k)) {
                continue;
            }
            if w == "vnet" {
                after_vnet = true;
                continue;
            }
            out.push(w);
        }
        out
    }

    /// `ifconfig_getargs IF [AF]` as the shell prints it.
    pub fn ifconfig_getargs(&self, ifname: &str, af: Option<&str>) -> String {
        self.ifconfig_args(ifname, af).join(" ")
    }

    /// The arguments rc's `eval ifconfig IF $(ifconfig_getargs IF)` passes:
    /// quotes inside the value are honoured and `$var` is expanded from
    /// this configuration. Err names what could not be evaluated.
    pub fn ifconfig_args_eval(
        &self,
        ifname: &str,
        af: Option<&str>,
    ) -> Result<Vec<String>, String> {
        eval_words(self, &self.ifconfig_getargs(ifname, af))
    }

    fn has_keyword(&self, ifname: &str, kw: &str) -> bool {
        self.raw_words(ifname, None)
            .iter()
            .any(|w| is_keyword(w, kw))
    }

    /// `autoif IF`: false iff NOAUTO is present.
    pub fn autoif(&self, ifname: &str) -> bool {
        !self.has_keyword(ifname, "NOAUTO")
    }

    /// `wpaif IF`.
    pub fn wpaif(&self, ifname: &str) -> bool {
        self.has_keyword(ifname, "WPA")
    }

    /// `hostapif IF`.
    pub fn hostapif(&self, ifname: &str) -> bool {
        self.has_keyword(ifname, "HOSTAP")
    }

    /// `vnetif IF`: the jail named after the `vnet` keyword.
    pub fn vnetif(&self, ifname: &str) -> Option<String> {
        let words = self.raw_words(ifname, None);
        let i = words.iter().position(|w| w == "vnet")?;
        words.get(i + 1).cloned()
    }

    /// `dhcpif IF`: never for lo/stf/lp/sl and no-AF interfaces; otherwise
    /// true iff DHCP, SYNCDHCP or NOSYNCDHCP is present (after the
    /// `ifconfig_DEFAULT` fallback).
    pub fn dhcpif(&self, ifname: &str) -> bool {
        if NODHCP_PATTERNS.iter().any(|p| glob(p, ifname)) || noafif(ifname) {
            return false;
        }
        self.raw_words(ifname, None).iter().any(|w| {
            is_keyword(w, "DHCP") || is_keyword(w, "SYNCDHCP") || is_keyword(w, "NOSYNCDHCP")
        })
    }

    /// `syncdhcpif IF`: the first NOSYNCDHCP (false) or SYNCDHCP (true)
    /// word decides; otherwise `checkyesno synchronous_dhclient`.
    pub fn syncdhcpif(&self, ifname: &str) -> bool {
        if noafif(ifname) {
            return false;
        }
        for w in self.raw_words(ifname, None) {
            if is_keyword(&w, "NOSYNCDHCP") {
                return false;
            }
            if is_keyword(&w, "SYNCDHCP") {
                return true;
            }
        }
        self.checkyesno("synchronous_dhclient")
    }

    /// `hyperv_vf_delay` as hyperv_vfattach uses it: an integer of at least
    /// 2 (as test(1) reads it: one word, optional sign), else 2.
    pub fn hyperv_vf_delay(&self) -> u64 {
        let words = split_fields(self.get("hyperv_vf_delay").unwrap_or(""));
        match words.as_slice() {
            [w] => match parse_test_integer(w) {
                Some(n) if n >= 2 => n as u64,
                _ => 2,
            },
            _ => 2,
        }
    }

    /// `netif_ipexpand_max` (network.subr: `: ${netif_ipexpand_max:=2048}`),
    /// capped at [`IPEXPAND_HARD_MAX`] so a typo cannot exhaust memory.
    pub fn netif_ipexpand_max(&self) -> u64 {
        match self.get("netif_ipexpand_max") {
            None | Some("") => 2048,
            Some(v) => v
                .trim()
                .parse::<u64>()
                .unwrap_or(2048)
                .min(IPEXPAND_HARD_MAX),
        }
    }

    /// Whether the effective value of `background_dhclient_IF` (falling
    /// back to `background_dhclient`) is yes, as rc.d/dhclient decides.
    pub fn background_dhclient(&self, ifname: &str) -> bool {
        let global = self.get("background_dhclient").unwrap_or("");
        let v = self.get_if_var_or(ifname, "background_dhclient_IF", global);
        crate::conf::YesNo::parse(&v).is_yes()
    }

    /// The dhclient flags rc.d/dhclient uses: `dhclient_flags_IF` when set
    /// and non-empty, else `dhclient_flags`; as words.
    pub fn dhclient_flags(&self, ifname: &str) -> Vec<String> {
        match self.get_if_var(ifname, "dhclient_flags_IF") {
            Some(s) if !s.is_empty() => split_fields(&s),
            _ => split_fields(self.get("dhclient_flags").unwrap_or("")),
        }
    }

    /// The argument vector rc.d/dhclient runs (`dhclient FLAGS [-b] IF`),
    /// without the program name.
    pub fn dhclient_args(&self, ifname: &str) -> Vec<String> {
        let mut args = self.dhclient_flags(ifname);
        if self.background_dhclient(ifname) {
            args.push("-b".into());
        }
        args.push(ifname.to_string());
        args
    }

    /// `ipv6if IF` (assuming the kernel has inet6): lo0 always; otherwise
    /// if listed in `ipv6_network_interfaces` (or it is `auto`) and one of
    /// `ifconfig_IF_ipv6` (with the DEFAULT fallback), `ipv6_prefix_IF`,
    /// `ipv6_ifconfig_IF` is non-empty.
    pub fn ipv6if(&self, ifname: &str) -> bool {
        if ifname == "lo0" {
            return true;
        }
        let list = self.get("ipv6_network_interfaces").unwrap_or("");
        let listed = list == ifname
            || list.starts_with(&format!("{ifname} "))
            || list.ends_with(&format!(" {ifname}"))
            || list.contains(&format!(" {ifname} "))
            || list.eq_ignore_ascii_case("auto");
        if !listed {
            return false;
        }
        !self.ifconfig_raw_args(ifname, Some("ipv6")).is_empty()
            || self
                .get_if_var(ifname, "ipv6_prefix_IF")
                .is_some_and(|v| !v.is_empty())
            || self
                .get_if_var(ifname, "ipv6_ifconfig_IF")
                .is_some_and(|v| !v.is_empty())
    }

    /// The `ifconfig_IF_ipv6` arguments ifconfig_up applies: pseudo-args
    /// removed, and `inet6` prepended when the value starts with an
    /// address (`:...` or a hex digit followed somewhere by `:`). Returns
    /// the words and whether `inet6` was prepended (rc warns then).
    pub fn ipv6_args(&self, ifname: &str) -> (Vec<String>, bool) {
        let mut args = self.ifconfig_args(ifname, Some("ipv6"));
        let joined = args.join(" ");
        let needs = glob(":*", &joined) || glob("[0-9a-fA-F]*:*", &joined);
        if needs {
            args.insert(0, "inet6".into());
        }
        (args, needs)
    }

    /// `ipv6_activate_all_interfaces`.
    pub fn ipv6_activate_all_interfaces(&self) -> bool {
        self.checkyesno("ipv6_activate_all_interfaces")
    }

    /// Words of `ipv6_prefix_IF`.
    pub fn ipv6_prefixes(&self, ifname: &str) -> Vec<String> {
        split_fields(
            &self
                .get_if_var(ifname, "ipv6_prefix_IF")
                .unwrap_or_default(),
        )
    }

    /// The ifconfig arguments `ipv6_prefix_hostid_addr_common IF alias`
    /// runs for each prefix: `inet6 P:: prefixlen N eui64 alias` (default
    /// length 64), plus the subnet-router anycast address when
    /// `ipv6_gateway_enable` is yes.
    pub fn ipv6_prefix_commands(&self, ifname: &str) -> Vec<Vec<String>> {
        let gateway = self.checkyesno("ipv6_gateway_enable");
        let mut out = Vec::new();
        for j in self.ipv6_prefixes(ifname) {
            let (mut p, plen) = match j.split_once('/') {
                Some((p, l)) => (p.to_string(), l.to_string()),
                None => (j.clone(), "64".to_string()),
            };
            if let Some(i) = p.rfind("::") {
                p.truncate(i);
            }
            if p.ends_with(':') {
                p.pop();
            }
            let addr = format!("{p}::");
            out.push(
                ["inet6", &addr, "prefixlen", &plen, "eui64", "alias"]
                    .map(String::from)
                    .to_vec(),
            );
            if gateway {
                out.push(
                    ["inet6", &addr, "prefixlen", &plen, "alias", "anycast"]
                        .map(String::from)
                        .to_vec(),
                );
            }
        }
        out
    }

    /// Obsolete `ipv6_ifconfig_IF`: the arguments `inet6 VALUE...`, or
    /// empty when unset or empty.
    pub fn ipv6_ifconfig_args(&self, ifname: &str) -> Vec<String> {
        let words = split_fields(
            &self
                .get_if_var(ifname, "ipv6_ifconfig_IF")
                .unwrap_or_default(),
        );
        if words.is_empty() {
            return words;
        }
        let mut v = vec!["inet6".to_string()];
        v.extend(words);
        v
    }

    /// `ifconfig_IF_descr`.
    pub fn description(&self, ifname: &str) -> Option<String> {
        self.get_if_var(ifname, "ifconfig_IF_descr")
            .filter(|d| !d.is_empty())
    }
}

/// Parse `text` as sh would after `eval`: quotes honoured, `$var`
/// expanded from `conf`, unquoted expansions split.
pub fn eval_words(conf: &RcConf, text: &str) -> Result<Vec<String>, String> {
    let words = syntax::parse_words(text).map_err(|e| e.message)?;
    let mut env = ReadOnly(conf);
    let mut out = Vec::new();
    for w in &words {
        out.extend(expand::expand_fields(w, &mut env).map_err(|e| e.0)?);
    }
    Ok(out)
}

/// An integer as test(1)'s `-ge` reads it: optional leading blanks, sign,
/// digits, optional trailing blanks.
fn parse_test_integer(s: &str) -> Option<i64> {
    let t = s.trim();
    let digits = t.strip_prefix(['+', '-']).unwrap_or(t);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    t.parse::<i64>().ok()
}
