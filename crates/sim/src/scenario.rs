//! Scenario files: a line-based text format (docs/SCENARIOS.md). Errors are
//! `FILE:LINE: what was expected, what was found`.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use hvnet_vf::Mac;

use crate::faults::FaultConfig;
use crate::host::VfOffer;
use crate::traffic::Path;

/// A bad scenario line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct ScenarioError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

/// A synthetic NIC the host gives the VM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NicSpec {
    pub name: String,
    pub mac: Mac,
    /// When hn attaches during boot.
    pub attach: Duration,
}

/// The DHCP server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DhcpSpec {
    pub enabled: bool,
    pub first: Ipv4Addr,
    pub prefix: u8,
    pub router: Option<Ipv4Addr>,
    pub lease: Duration,
    pub delay: Duration,
}

impl Default for DhcpSpec {
    fn default() -> Self {
        DhcpSpec {
            enabled: true,
            first: Ipv4Addr::new(10, 0, 0, 4),
            prefix: 24,
            router: Some(Ipv4Addr::new(10, 0, 0, 1)),
            lease: Duration::from_secs(3600),
            delay: Duration::from_millis(1500),
        }
    }
}

/// The peer's traffic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrafficSpec {
    /// Packets per second in each direction (0: no traffic).
    pub rate: u64,
    /// The VM address the connection uses (default: the first address the
    /// VM gets).
    pub address: Option<IpAddr>,
    /// A connection breaks when nothing gets through for this long.
    pub timeout: Duration,
    /// When the peer starts (default: when the address first appears).
    pub start: Option<Duration>,
}

impl Default for TrafficSpec {
    fn default() -> Self {
        TrafficSpec {
            rate: 100,
            address: None,
            timeout: Duration::from_secs(3),
            start: None,
        }
    }
}

/// Something that happens at a scenario time.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// The host offers a VF to `hn`'s NIC.
    OfferVf { hn: String, offer: VfOffer },
    /// Planned revocation (live migration, servicing): datapath to
    /// synthetic, VF detach after `detach_after`, and a new VF after
    /// `return_after` if given.
    Revoke {
        hn: String,
        detach_after: Duration,
        return_after: Option<Duration>,
        offer: VfOffer,
    },
    /// Surprise removal: the VF dies, detaches after `detach_after`, and a
    /// new VF comes after `return_after` if given.
    Remove {
        hn: String,
        detach_after: Duration,
        return_after: Option<Duration>,
        offer: VfOffer,
    },
    /// The host's synthetic link goes up or down.
    HostLink { hn: String, up: bool },
    /// A Hyper-V utility device (`hv_kvp_dev`, `hv_fsvss_dev`) is rescinded
    /// (DEVFS CDEV DESTROY) and offered again after `return_after`.
    Rescind {
        cdev: String,
        return_after: Option<Duration>,
    },
    /// A command run in the guest (ifconfig, sysctl, dhclient, kill).
    Guest(Vec<String>),
    /// The guest agent is killed and started again.
    RestartAgent,
    /// Fault probabilities from now on.
    Faults(FaultConfig),
}

/// A scheduled action, possibly repeated.
#[derive(Debug, Clone, PartialEq)]
pub struct TimedAction {
    pub at: Duration,
    pub every: Option<Duration>,
    pub count: u32,
    pub action: Action,
    pub line: usize,
}

/// Comparison in a metric expectation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    Le,
    Lt,
    Eq,
    Ge,
    Gt,
}

impl Cmp {
    pub fn holds(self, a: f64, b: f64) -> bool {
        match self {
            Cmp::Le => a <= b,
            Cmp::Lt => a < b,
            Cmp::Eq => a == b,
            Cmp::Ge => a >= b,
            Cmp::Gt => a > b,
        }
    }

    pub fn symbol(self) -> &'static str {
        match self {
            Cmp::Le => "<=",
            Cmp::Lt => "<",
            Cmp::Eq => "==",
            Cmp::Ge => ">=",
            Cmp::Gt => ">",
        }
    }
}

/// What an expectation checks.
#[derive(Debug, Clone, PartialEq)]
pub enum ExpectKind {
    /// Both directions delivered via this path at `at` (`None`: traffic
    /// is not getting through).
    PathAt { at: Duration, path: Option<Path> },
    /// A summary metric at the end.
    Metric {
        metric: String,
        cmp: Cmp,
        value: f64,
    },
    /// An address is (or is not) on an interface.
    Address {
        at: Option<Duration>,
        addr: IpAddr,
        iface: String,
        present: bool,
    },
    /// A sysctl has this value.
    Sysctl {
        at: Option<Duration>,
        name: String,
        value: String,
    },
    /// An interface's link state.
    Link {
        at: Option<Duration>,
        iface: String,
        up: bool,
    },
    /// A devctl line was (or was not) emitted.
    Devctl { line: String, present: bool },
}

/// One `expect` line.
#[derive(Debug, Clone, PartialEq)]
pub struct Expectation {
    pub line: usize,
    pub text: String,
    pub kind: ExpectKind,
}

impl Expectation {
    /// When it is checked (`None`: at the end of the run).
    pub fn at(&self) -> Option<Duration> {
        match &self.kind {
            ExpectKind::PathAt { at, .. } => Some(*at),
            ExpectKind::Address { at, .. }
            | ExpectKind::Sysctl { at, .. }
            | ExpectKind::Link { at, .. } => *at,
            ExpectKind::Metric { .. } | ExpectKind::Devctl { .. } => None,
        }
    }
}

/// The VF manager's readiness gate in the simulated guest (`readiness ...`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadinessSpec {
    /// A check answers `takes` after it starts; it says ready once virtual time is `at`.
    ReadyAt { at: Duration, takes: Duration },
    /// A check never answers.
    Hangs,
}

/// A parsed scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    pub name: String,
    pub description: String,
    pub file: String,
    pub duration: Duration,
    pub seed: Option<u64>,
    /// Boot-time tunables (loader.conf), e.g. `hw.hn.vf_transparent`.
    pub tunables: Vec<(String, String)>,
    /// sysctls set at boot.
    pub sysctls: Vec<(String, String)>,
    pub rc_conf: String,
    pub nics: Vec<NicSpec>,
    pub dhcp: DhcpSpec,
    pub traffic: TrafficSpec,
    /// When rc's netif runs (and the agent starts).
    pub rc_at: Duration,
    pub actions: Vec<TimedAction>,
    pub expects: Vec<Expectation>,
    /// The VF manager's readiness gate (`None`: no gate).
    pub readiness: Option<ReadinessSpec>,
}

impl Scenario {
    /// `hw.hn.vf_transparent` as the scenario sets it (default 1).
    pub fn vf_transparent(&self) -> bool {
        self.tunables
            .iter()
            .rev()
            .find(|(k, _)| k == "hw.hn.vf_transparent")
            .is_none_or(|(_, v)| v.trim() != "0")
    }
}

/// Format a virtual time as `12.345s`.
pub fn fmt_time(d: Duration) -> String {
    format!("{}.{:03}s", d.as_secs(), d.subsec_millis())
}

/// Parse `10s`, `100ms`, `1.5s`, `2m`, `1h`, or a bare number of seconds.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let (num, mult_ns): (&str, f64) = if let Some(n) = s.strip_suffix("ms") {
        (n, 1e6)
    } else if let Some(n) = s.strip_suffix("us") {
        (n, 1e3)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1e9)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60e9)
    } else if let Some(n) = s.strip_suffix('h') {
        (n, 3600e9)
    } else {
        (s, 1e9)
    };
    if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    let v: f64 = num.parse().ok()?;
    let ns = v * mult_ns;
    (ns.is_finite() && ns < 1e18).then(|| Duration::from_nanos(ns.round() as u64))
}

/// A quote that is never closed (see [`words`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("an unterminated quote")]
pub struct UnterminatedQuote;

/// Split a line into words; `"..."` and `'...'` group words.
pub fn words(s: &str) -> Result<Vec<String>, UnterminatedQuote> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' | '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some(q) if q == c => break,
                        Some('\\') if c == '"' => match chars.next() {
                            Some(n) => cur.push(n),
                            None => return Err(UnterminatedQuote),
                        },
                        Some(x) => cur.push(x),
                        None => return Err(UnterminatedQuote),
                    }
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

struct P<'a> {
    file: &'a str,
    line: usize,
}

impl P<'_> {
    fn err<T>(&self, msg: impl fmt::Display) -> Result<T, ScenarioError> {
        Err(ScenarioError {
            file: self.file.to_string(),
            line: self.line,
            message: msg.to_string(),
        })
    }

    fn dur(&self, what: &str, s: Option<&String>) -> Result<Duration, ScenarioError> {
        match s {
            Some(s) => match parse_duration(s) {
                Some(d) => Ok(d),
                None => self.err(format!(
                    "expected a duration for {what} (like 10s, 250ms, 2m), found {s:?}"
                )),
            },
            None => self.err(format!(
                "expected a duration for {what}, found the end of the line"
            )),
        }
    }

    fn num<T: std::str::FromStr>(
        &self,
        what: &str,
        s: Option<&String>,
    ) -> Result<T, ScenarioError> {
        match s.map(|s| (s, s.parse::<T>())) {
            Some((_, Ok(v))) => Ok(v),
            Some((s, Err(_))) => self.err(format!("expected a number for {what}, found {s:?}")),
            None => self.err(format!(
                "expected a number for {what}, found the end of the line"
            )),
        }
    }

    fn word<'w>(&self, what: &str, s: Option<&'w String>) -> Result<&'w str, ScenarioError> {
        match s {
            Some(s) => Ok(s),
            None => self.err(format!("expected {what}, found the end of the line")),
        }
    }

    fn ip(&self, s: Option<&String>) -> Result<IpAddr, ScenarioError> {
        let w = self.word("an IP address", s)?;
        w.parse()
            .or_else(|_| self.err(format!("expected an IP address, found {w:?}")))
    }

    fn kv(&self, s: &str) -> Result<(String, String), ScenarioError> {
        match s.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => self.err(format!("expected NAME=VALUE, found {s:?}")),
        }
    }

    /// VF offer options: family F, if-start, max-mtu N, mac M.
    fn offer(&self, w: &[String], offer: &mut VfOffer) -> Result<(), ScenarioError> {
        let mut i = 0;
        while i < w.len() {
            match w[i].as_str() {
                "family" | "driver" => {
                    offer.family = self.word("a driver family", w.get(i + 1))?.to_string();
                    i += 2;
                }
                "if-start" => {
                    offer.uses_if_start = true;
                    i += 1;
                }
                "max-mtu" => {
                    offer.max_mtu = self.num("max-mtu", w.get(i + 1))?;
                    i += 2;
                }
                "mac" => {
                    let m = self.word("a MAC", w.get(i + 1))?;
                    offer.mac = Some(m.parse().or_else(|e| self.err(e))?);
                    i += 2;
                }
                other => {
                    return self.err(format!(
                        "expected a VF option (family, if-start, max-mtu, mac), found {other:?}"
                    ))
                }
            }
        }
        Ok(())
    }
}

/// `readiness ready-at TIME [takes TIME]` or `readiness hangs`.
fn parse_readiness(p: &P, w: &[String]) -> Result<ReadinessSpec, ScenarioError> {
    match w.first().map(String::as_str) {
        Some("hangs") => match w.get(1) {
            None => Ok(ReadinessSpec::Hangs),
            Some(o) => p.err(format!("expected the end of the line, found {o:?}")),
        },
        Some("ready-at") => {
            let at = p.dur("ready-at", w.get(1))?;
            let takes = match w.get(2).map(String::as_str) {
                None => Duration::ZERO,
                Some("takes") => p.dur("takes", w.get(3))?,
                Some(o) => return p.err(format!("expected takes TIME, found {o:?}")),
            };
            match w.get(4) {
                None => Ok(ReadinessSpec::ReadyAt { at, takes }),
                Some(o) => p.err(format!("expected the end of the line, found {o:?}")),
            }
        }
        o => p.err(format!(
            "expected readiness ready-at TIME [takes TIME] or readiness hangs, found {o:?}"
        )),
    }
}

const SCENARIO_KEYWORDS: &str = "name, description, duration, seed, mode, tunable, sysctl, rc, \
nic, dhcp, traffic, boot, readiness, at, expect";

/// Parse a scenario. `file` is used in error messages.
pub fn parse(file: &str, text: &str) -> Result<Scenario, ScenarioError> {
    let mut sc = Scenario {
        name: std::path::Path::new(file)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| file.to_string()),
        description: String::new(),
        file: file.to_string(),
        duration: Duration::from_secs(120),
        seed: None,
        tunables: Vec::new(),
        sysctls: Vec::new(),
        rc_conf: String::new(),
        nics: Vec::new(),
        dhcp: DhcpSpec::default(),
        traffic: TrafficSpec::default(),
        rc_at: Duration::from_secs(3),
        actions: Vec::new(),
        expects: Vec::new(),
        readiness: None,
    };
    for (n, raw) in text.lines().enumerate() {
        let p = P { file, line: n + 1 };
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (kw, rest) = line
            .split_once(char::is_whitespace)
            .map(|(a, b)| (a, b.trim()))
            .unwrap_or((line, ""));
        match kw {
            "rc" => {
                sc.rc_conf.push_str(rest);
                sc.rc_conf.push('\n');
                continue;
            }
            "description" => {
                sc.description = rest.to_string();
                continue;
            }
            _ => {}
        }
        let w = match words(rest) {
            Ok(w) => w,
            Err(e) => return p.err(format!("expected closed quotes, found {e}")),
        };
        match kw {
            "name" => sc.name = p.word("a name", w.first())?.to_string(),
            "duration" => sc.duration = p.dur("duration", w.first())?,
            "seed" => sc.seed = Some(p.num("seed", w.first())?),
            "mode" => {
                let v = match p.word("a mode", w.first())? {
                    "transparent" => "1",
                    "non-transparent" => "0",
                    o => {
                        return p.err(format!(
                            "expected mode transparent or non-transparent, found {o:?}"
                        ))
                    }
                };
                sc.tunables.push(("hw.hn.vf_transparent".into(), v.into()));
            }
            "tunable" => sc.tunables.push(p.kv(p.word("NAME=VALUE", w.first())?)?),
            "sysctl" => sc.sysctls.push(p.kv(p.word("NAME=VALUE", w.first())?)?),
            "nic" => {
                let name = p.word("an hn interface name", w.first())?.to_string();
                if !name.starts_with("hn") || name[2..].parse::<u32>().is_err() {
                    return p.err(format!(
                        "expected an hn interface name like hn0, found {name:?}"
                    ));
                }
                let unit: u8 = name[2..].parse().unwrap_or(0);
                let mut spec = NicSpec {
                    name,
                    mac: Mac([0x00, 0x15, 0x5d, 0x00, 0x00, unit.wrapping_add(1)]),
                    attach: Duration::from_millis(500),
                };
                let mut i = 1;
                while i < w.len() {
                    match w[i].as_str() {
                        "mac" => {
                            let m = p.word("a MAC", w.get(i + 1))?;
                            spec.mac = m.parse().or_else(|e| p.err(e))?;
                        }
                        "attach" => spec.attach = p.dur("attach", w.get(i + 1))?,
                        o => return p.err(format!("expected mac or attach, found {o:?}")),
                    }
                    i += 2;
                }
                sc.nics.retain(|x| x.name != spec.name);
                sc.nics.push(spec);
            }
            "dhcp" => {
                if w.first().map(String::as_str) == Some("off") {
                    sc.dhcp.enabled = false;
                    continue;
                }
                let mut i = 0;
                while i < w.len() {
                    match w[i].as_str() {
                        "server" | "pool" => {
                            let v = p.word("ADDR/PREFIX", w.get(i + 1))?;
                            let (a, pl) = v.split_once('/').unwrap_or((v, "24"));
                            sc.dhcp.first = a.parse().or_else(|_| {
                                p.err(format!("expected an IPv4 address, found {a:?}"))
                            })?;
                            sc.dhcp.prefix = pl.parse().ok().filter(|x| *x <= 32).map_or_else(
                                || p.err(format!("expected a prefix length, found {pl:?}")),
                                Ok,
                            )?;
                        }
                        "router" => {
                            let v = p.word("a router address", w.get(i + 1))?;
                            sc.dhcp.router = if v == "none" {
                                None
                            } else {
                                Some(v.parse().or_else(|_| {
                                    p.err(format!("expected an IPv4 address, found {v:?}"))
                                })?)
                            };
                        }
                        "lease" => sc.dhcp.lease = p.dur("lease", w.get(i + 1))?,
                        "delay" => sc.dhcp.delay = p.dur("delay", w.get(i + 1))?,
                        o => {
                            return p.err(format!(
                                "expected server, router, lease, delay or off, found {o:?}"
                            ))
                        }
                    }
                    i += 2;
                }
            }
            "traffic" => {
                let mut i = 0;
                while i < w.len() {
                    match w[i].as_str() {
                        "rate" => sc.traffic.rate = p.num("rate", w.get(i + 1))?,
                        "address" | "to" => sc.traffic.address = Some(p.ip(w.get(i + 1))?),
                        "timeout" => sc.traffic.timeout = p.dur("timeout", w.get(i + 1))?,
                        "start" => sc.traffic.start = Some(p.dur("start", w.get(i + 1))?),
                        o => {
                            return p.err(format!(
                                "expected rate, address, timeout or start, found {o:?}"
                            ))
                        }
                    }
                    i += 2;
                }
            }
            "boot" => match w.first().map(String::as_str) {
                Some("rc") => sc.rc_at = p.dur("boot rc", w.get(1))?,
                o => return p.err(format!("expected boot rc TIME, found {o:?}")),
            },
            "readiness" => sc.readiness = Some(parse_readiness(&p, &w)?),
            "at" => sc.actions.push(parse_at(&p, &w)?),
            "expect" => {
                let kind = parse_expect(&p, &w)?;
                sc.expects.push(Expectation {
                    line: n + 1,
                    text: rest.to_string(),
                    kind,
                });
            }
            other => {
                return p.err(format!(
                    "expected a keyword ({SCENARIO_KEYWORDS}), found {other:?}"
                ))
            }
        }
    }
    if sc.nics.is_empty() {
        sc.nics.push(NicSpec {
            name: "hn0".into(),
            mac: Mac([0x00, 0x15, 0x5d, 0x00, 0x00, 0x01]),
            attach: Duration::from_millis(500),
        });
    }
    for a in &sc.actions {
        let hn = match &a.action {
            Action::OfferVf { hn, .. }
            | Action::Revoke { hn, .. }
            | Action::Remove { hn, .. }
            | Action::HostLink { hn, .. } => hn,
            _ => continue,
        };
        if !sc.nics.iter().any(|n| &n.name == hn) {
            let names: Vec<&str> = sc.nics.iter().map(|n| n.name.as_str()).collect();
            return Err(ScenarioError {
                file: file.to_string(),
                line: a.line,
                message: format!(
                    "expected a synthetic NIC of the scenario ({}), found {hn:?} (declare it with `nic {hn}`)",
                    names.join(", ")
                ),
            });
        }
    }
    Ok(sc)
}

fn parse_at(p: &P, w: &[String]) -> Result<TimedAction, ScenarioError> {
    let at = p.dur("at", w.first())?;
    let mut i = 1;
    let mut every = None;
    let mut count = 1;
    if w.get(i).map(String::as_str) == Some("every") {
        every = Some(p.dur("every", w.get(i + 1))?);
        i += 2;
        if w.get(i).map(String::as_str) != Some("count") {
            return p.err(format!(
                "expected count N after every, found {:?}",
                w.get(i)
                    .map(String::as_str)
                    .unwrap_or("the end of the line")
            ));
        }
        count = p.num("count", w.get(i + 1))?;
        i += 2;
    }
    let verb = p.word("an action", w.get(i))?;
    let args = &w[i + 1..];
    let hn = || -> Result<String, ScenarioError> {
        let h = p.word("an hn interface", args.first())?;
        if !h.starts_with("hn") {
            return p.err(format!("expected an hn interface, found {h:?}"));
        }
        Ok(h.to_string())
    };
    // Options common to revoke/remove/migrate: detach-after, return-after.
    let revoke_opts = |default_detach: Duration,
                       returns: bool|
     -> Result<(Duration, Option<Duration>, VfOffer), ScenarioError> {
        let mut detach = default_detach;
        let mut ret = returns.then(|| Duration::from_secs(10));
        let mut rest = Vec::new();
        let mut j = 1;
        while j < args.len() {
            match args[j].as_str() {
                "detach-after" => {
                    detach = p.dur("detach-after", args.get(j + 1))?;
                    j += 2;
                }
                "return-after" => {
                    ret = Some(p.dur("return-after", args.get(j + 1))?);
                    j += 2;
                }
                _ => {
                    rest.push(args[j].clone());
                    if let Some(v) = args.get(j + 1) {
                        if args[j] != "if-start" {
                            rest.push(v.clone());
                            j += 1;
                        }
                    }
                    j += 1;
                }
            }
        }
        let mut offer = VfOffer::default();
        p.offer(&rest, &mut offer)?;
        Ok((detach, ret, offer))
    };
    let action = match verb {
        "offer-vf" => {
            let mut offer = VfOffer::default();
            p.offer(&args[1.min(args.len())..], &mut offer)?;
            Action::OfferVf { hn: hn()?, offer }
        }
        "migrate" | "revoke-vf" | "service" => {
            let (detach_after, return_after, offer) =
                revoke_opts(Duration::from_millis(100), verb == "migrate")?;
            Action::Revoke {
                hn: hn()?,
                detach_after,
                return_after,
                offer,
            }
        }
        "remove-vf" => {
            let (detach_after, return_after, offer) = revoke_opts(Duration::from_millis(50), false)?;
            Action::Remove {
                hn: hn()?,
                detach_after,
                return_after,
                offer,
            }
        }
        "host-link" => {
            let up = match args.get(1).map(String::as_str) {
                Some("up") => true,
                Some("down") => false,
                o => return p.err(format!("expected up or down, found {o:?}")),
            };
            Action::HostLink { hn: hn()?, up }
        }
        "guest" => {
            if args.is_empty() {
                return p.err("expected a guest command (ifconfig, sysctl, dhclient, kill), found the end of the line");
            }
            match args[0].as_str() {
                "ifconfig" | "sysctl" | "dhclient" | "kill" => {}
                o => {
                    return p.err(format!(
                        "expected a guest command (ifconfig, sysctl, dhclient, kill), found {o:?}"
                    ))
                }
            }
            Action::Guest(args.to_vec())
        }
        "rescind-device" => {
            let cdev = p.word("a device name", args.first())?;
            if cdev != "hv_kvp_dev" && cdev != "hv_fsvss_dev" {
                return p.err(format!(
                    "expected hv_kvp_dev or hv_fsvss_dev, found {cdev:?}"
                ));
            }
            let return_after = match args.get(1).map(String::as_str) {
                Some("return-after") => Some(p.dur("return-after", args.get(2))?),
                None => None,
                Some(o) => return p.err(format!("expected return-after, found {o:?}")),
            };
            Action::Rescind {
                cdev: cdev.to_string(),
                return_after,
            }
        }
        "restart-agent" => Action::RestartAgent,
        "faults" => {
            let mut f = FaultConfig::default();
            let mut j = 0;
            while j < args.len() {
                let v: f64 = p.num("a probability", args.get(j + 1))?;
                if !(0.0..=1.0).contains(&v) {
                    return p.err(format!("expected a probability between 0 and 1, found {v}"));
                }
                match args[j].as_str() {
                    "devctl-loss" => f.devctl_loss = v,
                    "devctl-dup" => f.devctl_dup = v,
                    "devctl-reorder" => f.devctl_reorder = v,
                    "op-fail" => f.op_fail = v,
                    "observe-fail" => f.observe_fail = v,
                    o => {
                        return p.err(format!(
                            "expected devctl-loss, devctl-dup, devctl-reorder, op-fail or observe-fail, found {o:?}"
                        ))
                    }
                }
                j += 2;
            }
            Action::Faults(f)
        }
        o => {
            return p.err(format!(
                "expected an action (offer-vf, migrate, revoke-vf, service, remove-vf, host-link, rescind-device, guest, restart-agent, faults), found {o:?}"
            ))
        }
    };
    if every.is_some_and(|e| e.is_zero()) {
        return p.err("expected a non-zero period after every, found 0");
    }
    Ok(TimedAction {
        at,
        every,
        count,
        action,
        line: p.line,
    })
}

fn parse_expect(p: &P, w: &[String]) -> Result<ExpectKind, ScenarioError> {
    let mut i = 0;
    let mut at = None;
    if w.first().map(String::as_str) == Some("at") {
        at = Some(p.dur("at", w.get(1))?);
        i = 2;
    }
    let mut negate = false;
    if w.get(i).map(String::as_str) == Some("no") {
        negate = true;
        i += 1;
    }
    let what = p.word("an expectation", w.get(i))?;
    let args = &w[i + 1..];
    let kind = match what {
        "path" => {
            let Some(at) = at else {
                return p.err("expected `expect at TIME path ...`, found no time");
            };
            let path = match args.first().map(String::as_str) {
                Some("hn") => Some(Path::Hn),
                Some("vf") => Some(Path::Vf),
                Some("none") => None,
                o => return p.err(format!("expected hn, vf or none, found {o:?}")),
            };
            ExpectKind::PathAt { at, path }
        }
        "broken-connections" if negate => ExpectKind::Metric {
            metric: "connections_broken".into(),
            cmp: Cmp::Eq,
            value: 0.0,
        },
        "no-broken-connections" => ExpectKind::Metric {
            metric: "connections_broken".into(),
            cmp: Cmp::Eq,
            value: 0.0,
        },
        "no-invariant-violations" => ExpectKind::Metric {
            metric: "invariant_violations".into(),
            cmp: Cmp::Eq,
            value: 0.0,
        },
        "ipv4" | "ipv6" | "address" => {
            let addr = p.ip(args.first())?;
            if args.get(1).map(String::as_str) != Some("on") {
                return p.err(format!(
                    "expected `on IFACE` after the address, found {:?}",
                    args.get(1)
                        .map(String::as_str)
                        .unwrap_or("the end of the line")
                ));
            }
            let iface = p.word("an interface", args.get(2))?.to_string();
            ExpectKind::Address {
                at,
                addr,
                iface,
                present: !negate,
            }
        }
        "sysctl" => {
            let (name, value) = match args {
                [kv] if kv.contains('=') => p.kv(kv)?,
                [n, eq, v] if eq == "=" => (n.clone(), v.clone()),
                [n, eq] if eq == "=" => (n.clone(), String::new()),
                _ => {
                    return p.err(format!(
                        "expected sysctl NAME = VALUE, found {:?}",
                        args.join(" ")
                    ))
                }
            };
            ExpectKind::Sysctl { at, name, value }
        }
        "link" => {
            let iface = p.word("an interface", args.first())?.to_string();
            let up = match args.get(1).map(String::as_str) {
                Some("up") => true,
                Some("down") => false,
                o => return p.err(format!("expected up or down, found {o:?}")),
            };
            ExpectKind::Link { at, iface, up }
        }
        "devctl" => ExpectKind::Devctl {
            line: p.word("a devctl line", args.first())?.to_string(),
            present: !negate,
        },
        metric => {
            const METRICS: [&str; 9] = [
                "sent",
                "delivered",
                "lost",
                "connections-broken",
                "failovers",
                "invariant-violations",
                "by-path.hn",
                "by-path.vf",
                "expectations-failed",
            ];
            let known = METRICS.contains(&metric) || metric.starts_with("lost.");
            if !known || negate || at.is_some() {
                return p.err(format!(
                    "expected path, ipv4, ipv6, sysctl, link, devctl, no-broken-connections, no-invariant-violations or a metric ({}, lost.REASON), found {metric:?}",
                    METRICS.join(", ")
                ));
            }
            let cmp = match args.first().map(String::as_str) {
                Some("<=") => Cmp::Le,
                Some("<") => Cmp::Lt,
                Some("==") | Some("=") => Cmp::Eq,
                Some(">=") => Cmp::Ge,
                Some(">") => Cmp::Gt,
                o => return p.err(format!("expected <=, <, ==, >= or >, found {o:?}")),
            };
            let value: f64 = p.num("the bound", args.get(1))?;
            ExpectKind::Metric {
                metric: metric.replace('-', "_"),
                cmp,
                value,
            }
        }
    };
    Ok(kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Some(Duration::from_secs(10)));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_duration("7"), Some(Duration::from_secs(7)));
        assert_eq!(parse_duration("x"), None);
        assert_eq!(parse_duration("-1s"), None);
        assert_eq!(parse_duration(""), None);
    }

    #[test]
    fn errors_name_file_and_line() {
        let e = parse("t.scn", "name x\n\nat 10s frobnicate hn0\n").unwrap_err();
        assert_eq!(e.line, 3);
        assert!(
            e.to_string().starts_with("t.scn:3: expected an action"),
            "{e}"
        );
        let e = parse("t.scn", "duration ten\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "t.scn:1: expected a duration for duration (like 10s, 250ms, 2m), found \"ten\""
        );
        let e = parse("t.scn", "expect lost <== 5\n").unwrap_err();
        assert!(e.to_string().contains("expected <=, <, ==, >= or >"), "{e}");
        let e = parse("t.scn", "bogus\n").unwrap_err();
        assert!(
            e.to_string().starts_with("t.scn:1: expected a keyword"),
            "{e}"
        );
    }

    #[test]
    fn readiness_lines() {
        let r = |t: &str| parse("r.scn", t).map(|s| s.readiness);
        assert_eq!(r("").unwrap(), None);
        assert_eq!(r("readiness hangs\n").unwrap(), Some(ReadinessSpec::Hangs));
        assert_eq!(
            r("readiness ready-at 30s takes 200ms\n").unwrap(),
            Some(ReadinessSpec::ReadyAt {
                at: Duration::from_secs(30),
                takes: Duration::from_millis(200)
            })
        );
        assert_eq!(
            r("readiness ready-at 5s\n").unwrap(),
            Some(ReadinessSpec::ReadyAt {
                at: Duration::from_secs(5),
                takes: Duration::ZERO
            })
        );
        for (text, msg) in [
            (
                "readiness\n",
                "expected readiness ready-at TIME [takes TIME] or readiness hangs, found None",
            ),
            ("readiness soon\n", "found Some(\"soon\")"),
            (
                "readiness hangs now\n",
                "expected the end of the line, found \"now\"",
            ),
            ("readiness ready-at x\n", "expected a duration for ready-at"),
            (
                "readiness ready-at 5s takes\n",
                "expected a duration for takes, found the end",
            ),
            (
                "readiness ready-at 5s after 1s\n",
                "expected takes TIME, found \"after\"",
            ),
            (
                "readiness ready-at 5s takes 1s more\n",
                "expected the end of the line",
            ),
        ] {
            let e = r(text).unwrap_err().to_string();
            assert!(
                e.starts_with("r.scn:1: ") && e.contains(msg),
                "{text:?}: {e}"
            );
        }
    }

    #[test]
    fn actions_must_name_a_declared_nic() {
        let e = parse("n.scn", "at 1s offer-vf hn0\nat 2s offer-vf hn1\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.to_string().contains("found \"hn1\""), "{e}");
        assert!(parse("n.scn", "nic hn0\nnic hn1\nat 2s offer-vf hn1\n").is_ok());
    }

    #[test]
    fn full_scenario_parses() {
        let s = parse(
            "x.scn",
            r#"
name demo
description A demo.
mode non-transparent
rc ifconfig_hn0="DHCP"
rc hyperv_vf_delay="5"
nic hn0 mac 00:15:5d:aa:bb:cc attach 1s
dhcp server 10.1.0.10/16 router 10.1.0.1 lease 600s
traffic rate 50 timeout 2s
at 10s offer-vf hn0 family mlx4en
at 30s every 60s count 3 migrate hn0 return-after 5s family mlx5en
at 40s guest ifconfig mce0 up
expect at 20s path vf
expect lost <= 5
expect ipv4 10.1.0.10 on lagg0
expect no ipv4 10.1.0.10 on hn0
expect sysctl hw.hn.vflist = "mce0"
expect devctl "!system=HYPERV_NIC_VF subsystem=hn0 type=VF_UP"
"#,
        )
        .unwrap();
        assert!(!s.vf_transparent());
        assert_eq!(s.rc_conf, "ifconfig_hn0=\"DHCP\"\nhyperv_vf_delay=\"5\"\n");
        assert_eq!(s.nics[0].attach, Duration::from_secs(1));
        assert_eq!(s.dhcp.prefix, 16);
        assert_eq!(s.traffic.rate, 50);
        assert_eq!(s.actions.len(), 3);
        assert_eq!(s.actions[1].count, 3);
        match &s.actions[1].action {
            Action::Revoke {
                return_after,
                offer,
                ..
            } => {
                assert_eq!(*return_after, Some(Duration::from_secs(5)));
                assert_eq!(offer.family, "mlx5en");
            }
            a => panic!("{a:?}"),
        }
        assert_eq!(s.expects.len(), 6);
        assert_eq!(
            s.expects[4].kind,
            ExpectKind::Sysctl {
                at: None,
                name: "hw.hn.vflist".into(),
                value: "mce0".into()
            }
        );
    }
}
