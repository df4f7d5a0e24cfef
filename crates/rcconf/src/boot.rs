//! What rc does to bring an interface up (`ifn_start`: `ifconfig_up`,
//! `ipv4_up`, `ipv6_up`), as a list of actions instead of commands run —
//! for simulators and for comparing hvnet with the original system.
//! Follows network.subr of 12.1 (spec hn.md §4.3), assuming the kernel
//! has both inet and inet6.

use crate::alias::Af;
use crate::conf::RcConf;
use crate::netsubr::noafif;
use crate::pattern::glob;

/// One step rc would take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RcAction {
    /// Run `ifconfig` with these arguments (interface name first).
    Ifconfig(Vec<String>),
    /// `/etc/rc.d/wpa_supplicant start IF`.
    StartWpaSupplicant,
    /// `/etc/rc.d/hostapd start IF`.
    StartHostapd,
    /// `/etc/rc.d/dhclient start IF`, run synchronously at boot (SYNCDHCP
    /// or `synchronous_dhclient`); otherwise devd's LINK_UP rule starts it.
    StartDhclient,
    /// A warning rc prints.
    Warn(String),
}

fn ifc(ifname: &str, words: &[&str]) -> RcAction {
    let mut v = vec![ifname.to_string()];
    v.extend(words.iter().map(|w| w.to_string()));
    RcAction::Ifconfig(v)
}

fn ifc_words(ifname: &str, words: &[String]) -> RcAction {
    let mut v = vec![ifname.to_string()];
    v.extend(words.iter().cloned());
    RcAction::Ifconfig(v)
}

impl RcConf {
    /// `ifconfig_up IF`: the actions, and whether rc counts the interface
    /// as configured (its return status 0).
    pub fn ifconfig_up_plan(&self, ifname: &str) -> (Vec<RcAction>, bool) {
        let mut acts = Vec::new();
        let mut cfg = ifname == "lo0";
        let inet6 = !noafif(ifname);
        if inet6 {
            let mut opts: Vec<&str> = Vec::new();
            if self.ipv6_activate_all_interfaces() {
                opts.push("-ifdisabled");
            } else if ifname != "lo0" {
                opts.push("ifdisabled");
            }
            if crate::conf::YesNo::parse(self.get("ipv6_enable").unwrap_or("")).is_yes()
                && !glob("bridge[0-9]*", ifname)
                && !self.checkyesno("ipv6_gateway_enable")
            {
                opts.push("accept_rtadv");
            }
            if self.get("ipv6_cpe_wanif") == Some(ifname) {
                opts.extend(["-no_radr", "accept_rtadv"]);
            }
            if !opts.is_empty() {
                let mut w = vec!["inet6"];
                w.extend(opts);
                acts.push(ifc(ifname, &w));
            }
        }
        let args = match self.ifconfig_args_eval(ifname, None) {
            Ok(a) => a,
            Err(e) => {
                acts.push(RcAction::Warn(format!("ifconfig_{ifname}: {e}")));
                self.ifconfig_args(ifname, None)
            }
        };
        if !args.is_empty() {
            acts.push(ifc_words(ifname, &args));
            cfg = true;
        }
        if inet6 {
            let (v6, prepended) = self.ipv6_args(ifname);
            if !v6.is_empty() {
                if prepended {
                    acts.push(RcAction::Warn(format!(
                        "$ifconfig_{ifname}_ipv6 needs leading \"inet6\" keyword for an IPv6 address."
                    )));
                }
                acts.push(ifc(ifname, &["inet6", "-ifdisabled"]));
                acts.push(ifc_words(ifname, &v6));
                cfg = true;
            }
            if !self.ipv6_prefixes(ifname).is_empty() {
                acts.push(ifc(ifname, &["inet6", "-ifdisabled"]));
                cfg = true;
            }
            let obsolete = self.ipv6_ifconfig_args(ifname);
            if !obsolete.is_empty() {
                acts.push(RcAction::Warn(format!(
                    "$ipv6_ifconfig_{ifname} is obsolete.  Use ifconfig_{ifname}_ipv6 instead."
                )));
                acts.push(ifc(ifname, &["inet6", "-ifdisabled"]));
                acts.push(ifc_words(ifname, &obsolete));
                cfg = true;
            }
        }
        for af in [Af::Link, Af::Ether] {
            for g in self.aliases(ifname, af) {
                let mut w = g.clone();
                w.push("alias".into());
                acts.push(ifc_words(ifname, &w));
            }
        }
        if let Some(d) = self.description(ifname) {
            acts.push(ifc(ifname, &["description", &d]));
        }
        if self.wpaif(ifname) {
            acts.push(RcAction::StartWpaSupplicant);
            cfg = true;
        } else if self.hostapif(ifname) {
            acts.push(RcAction::StartHostapd);
            cfg = true;
        } else if cfg {
            acts.push(ifc(ifname, &["up"]));
        }
        if self.dhcpif(ifname) {
            if !cfg {
                acts.push(ifc(ifname, &["up"]));
            }
            if self.syncdhcpif(ifname) {
                acts.push(RcAction::StartDhclient);
            }
            cfg = true;
        }
        (acts, cfg)
    }

    /// `ipv4_up IF`: `127.0.0.1/8` on an unconfigured lo0, then the inet
    /// aliases.
    pub fn ipv4_up_plan(&self, ifname: &str) -> Vec<RcAction> {
        let mut acts = Vec::new();
        if ifname == "lo0"
            && self
                .get_if_var(ifname, "ifconfig_IF")
                .unwrap_or_default()
                .is_empty()
        {
            acts.push(ifc(ifname, &["inet", "127.0.0.1/8", "alias"]));
        }
        for g in self.aliases(ifname, Af::Inet) {
            let mut w = g.clone();
            w.push("alias".into());
            acts.push(ifc_words(ifname, &w));
        }
        acts
    }

    /// `ipv6_up IF`: nothing unless `ipv6if`; then inet6 aliases and the
    /// `ipv6_prefix_IF` addresses.
    pub fn ipv6_up_plan(&self, ifname: &str) -> Vec<RcAction> {
        if !self.ipv6if(ifname) {
            return Vec::new();
        }
        let mut acts = Vec::new();
        for g in self.aliases(ifname, Af::Inet6) {
            let mut w = g.clone();
            w.push("alias".into());
            acts.push(ifc_words(ifname, &w));
        }
        for p in self.ipv6_prefix_commands(ifname) {
            acts.push(ifc_words(ifname, &p));
        }
        acts
    }

    /// `ifn_start IF` (without `/etc/start_if.IF` and child interfaces):
    /// the actions and whether anything was configured.
    pub fn ifn_start_plan(&self, ifname: &str) -> (Vec<RcAction>, bool) {
        let (mut acts, mut cfg) = self.ifconfig_up_plan(ifname);
        if !noafif(ifname) {
            let v4 = self.ipv4_up_plan(ifname);
            let v6 = self.ipv6_up_plan(ifname);
            cfg |= !v4.is_empty() || !v6.is_empty();
            acts.extend(v4);
            acts.extend(v6);
        }
        (acts, cfg)
    }
}
