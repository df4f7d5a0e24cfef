//! sysctl(8) view of the model, in the exact formats of spec hn.md §1.2.

use crate::world::{KernelError, World};

impl World {
    /// `sysctl -n NAME`.
    pub fn sysctl_get(&self, name: &str) -> Result<String, KernelError> {
        let b = |v: bool| if v { "1" } else { "0" }.to_string();
        match name {
            "hw.hn.vf_transparent" => return Ok(b(self.vf_transparent)),
            "hw.hn.vf_xpnt_attwait" => return Ok(self.attwait.to_string()),
            "hw.hn.vf_xpnt_accbpf" => return Ok(b(self.accbpf_default)),
            "hw.hn.vflist" => return Ok(self.vflist()),
            "hw.hn.vfmap" => return Ok(self.vfmap_string()),
            "net.link.lagg.failover_rx_all" => return Ok(b(self.failover_rx_all)),
            "kern.vm_guest" => return Ok("hv".into()),
            _ => {}
        }
        if let Some((hn, leaf)) = self.dev_hn_oid(name) {
            let st = &self.hns[&hn];
            let active = if self.vf_transparent {
                st.vf.is_some()
            } else {
                st.rxvf
            };
            match (leaf, self.vf_transparent) {
                ("vf", _) => return Ok(st.vf.clone().unwrap_or_default()),
                ("rxvf", false) => {
                    return Ok(if st.rxvf {
                        st.vf.clone().unwrap_or_default()
                    } else {
                        String::new()
                    })
                }
                ("vf_xpnt_enabled", true) => return Ok(b(st.xpnt_enabled)),
                ("vf_xpnt_accbpf", true) => return Ok(b(st.xpnt_accbpf)),
                ("rxfilter", _) => {
                    return Ok(if !self.vf_transparent && st.rxvf {
                        "0x20".into() // NDIS_PACKET_TYPE_PROMISCUOUS
                    } else {
                        "0xd".into() // directed | multicast | broadcast
                    });
                }
                ("rss_key", _) => {
                    return Ok(if active {
                        "vf-key".into()
                    } else {
                        "hn-key".into()
                    })
                }
                _ => {}
            }
        }
        self.sysctls
            .get(name)
            .cloned()
            .ok_or_else(|| KernelError::NoSuchOid(name.to_string()))
    }

    /// `sysctl NAME=VALUE` at run time.
    pub fn sysctl_set(&mut self, name: &str, value: &str) -> Result<(), KernelError> {
        let int = |v: &str| -> Result<i64, KernelError> {
            v.trim()
                .parse::<i64>()
                .map_err(|_| KernelError::Invalid(format!("{name}={v}")))
        };
        match name {
            // Boot-time tunables and read-only strings.
            "hw.hn.vf_transparent"
            | "hw.hn.vf_xpnt_accbpf"
            | "hw.hn.vflist"
            | "hw.hn.vfmap"
            | "kern.vm_guest" => Err(KernelError::NotPermitted(name.to_string())),
            // RWTUN; the >= 2 clamp is boot-time only.
            "hw.hn.vf_xpnt_attwait" => {
                self.attwait = u32::try_from(int(value)?.max(0)).unwrap_or(u32::MAX);
                Ok(())
            }
            "net.link.lagg.failover_rx_all" => {
                self.failover_rx_all = int(value)? != 0;
                Ok(())
            }
            _ => {
                if let Some((hn, leaf)) = self.dev_hn_oid(name) {
                    let transparent = self.vf_transparent;
                    let st = self.hns.get_mut(&hn).expect("hn");
                    return match (leaf, transparent) {
                        ("vf_xpnt_accbpf", true) => {
                            st.xpnt_accbpf = int(value)? != 0;
                            Ok(())
                        }
                        ("rss_key", _) => {
                            let active = if transparent {
                                st.vf.is_some()
                            } else {
                                st.rxvf
                            };
                            if active {
                                Err(KernelError::Busy(name.to_string()))
                            } else {
                                Ok(())
                            }
                        }
                        _ => Err(KernelError::NotPermitted(name.to_string())),
                    };
                }
                self.sysctls.insert(name.to_string(), value.to_string());
                Ok(())
            }
        }
    }

    /// Boot-time tunable (loader.conf): may set what is read-only later.
    pub fn set_tunable(&mut self, name: &str, value: &str) -> Result<(), KernelError> {
        let int = |v: &str| -> Result<i64, KernelError> {
            v.trim()
                .parse::<i64>()
                .map_err(|_| KernelError::Invalid(format!("{name}={v}")))
        };
        match name {
            "hw.hn.vf_transparent" => self.vf_transparent = int(value)? != 0,
            "hw.hn.vf_xpnt_accbpf" => self.accbpf_default = int(value)? != 0,
            // hn_sysinit clamps the attach wait to at least 2 seconds.
            "hw.hn.vf_xpnt_attwait" => {
                self.attwait = u32::try_from(int(value)?.max(2)).unwrap_or(u32::MAX)
            }
            _ => return self.sysctl_set(name, value),
        }
        Ok(())
    }

    /// `hw.hn.vflist`: VF names in ifindex order, single spaces.
    pub fn vflist(&self) -> String {
        self.vf_entries()
            .into_iter()
            .map(|(vf, _)| vf)
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// `hw.hn.vfmap`: `VF:HN` pairs in ifindex order.
    pub fn vfmap_string(&self) -> String {
        self.vf_entries()
            .into_iter()
            .map(|(vf, hn)| format!("{vf}:{hn}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn vf_entries(&self) -> Vec<(String, String)> {
        // The map is keyed by if_index, so iteration is ifindex order.
        self.vfmap
            .iter()
            .filter_map(|(idx, hn)| {
                let vf = self.ifnets.values().find(|i| i.index == *idx)?;
                Some((vf.name.clone(), hn.clone()))
            })
            .collect()
    }

    /// Split `dev.hn.N.LEAF` into (hn name, leaf) for an attached hn.
    fn dev_hn_oid<'a>(&self, name: &'a str) -> Option<(String, &'a str)> {
        let rest = name.strip_prefix("dev.hn.")?;
        let (unit, leaf) = rest.split_once('.')?;
        let hn = format!("hn{}", unit.parse::<u32>().ok()?);
        self.hns.contains_key(&hn).then_some((hn, leaf))
    }

    /// Every sysctl the model serves, `NAME: VALUE` (for `sysctl -a`-like dumps).
    pub fn sysctl_all(&self) -> Vec<(String, String)> {
        let mut names: Vec<String> = [
            "hw.hn.vf_transparent",
            "hw.hn.vf_xpnt_attwait",
            "hw.hn.vf_xpnt_accbpf",
            "hw.hn.vflist",
            "hw.hn.vfmap",
            "net.link.lagg.failover_rx_all",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for st in self.hns.values() {
            let leaves: &[&str] = if self.vf_transparent {
                &["vf", "vf_xpnt_enabled", "vf_xpnt_accbpf"]
            } else {
                &["vf", "rxvf"]
            };
            for l in leaves {
                names.push(format!("dev.hn.{}.{l}", st.unit));
            }
        }
        names.extend(self.sysctls.keys().cloned());
        names
            .into_iter()
            .filter_map(|n| self.sysctl_get(&n).ok().map(|v| (n, v)))
            .collect()
    }
}
