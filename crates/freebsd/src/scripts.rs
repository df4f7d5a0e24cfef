//! The two Hyper-V scripts, `hyperv_vfattach` and `hyperv_vfup`, as
//! library functions over a [`CommandRunner`] (spec hn.md §3.2, §3.3).
//!
//! [`vfattach`] returns a [`Step`]: its detached run sleeps, and the
//! caller owns time. [`VfupMode::Faithful`] does exactly what the shipped script does,
//! command for command, including its known defects (pre-12 dhclient pid
//! file, IPv4 only, no aliases or routes, `grep` substring test for the
//! port). [`VfupMode::Improved`] fixes those (§3.5, §7). Both are
//! retry-safe: VF_UP fires on every VF up transition.

use hvnet_rcconf::{Af, RcConf};

use crate::cmd::{self, Command};
use crate::parse;
use crate::runner::{CommandRunner, Output, RunError};
use crate::system;

/// What a script run ended with.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScriptResult {
    /// The exit status the shell script would have had.
    pub exit_code: i32,
    /// Lines the script prints on stdout.
    pub messages: Vec<String>,
}

impl ScriptResult {
    fn exit(code: i32) -> Self {
        ScriptResult {
            exit_code: code,
            messages: Vec::new(),
        }
    }
}

/// The status of a command that could not even be started (sh: 127).
fn status(r: Result<Output, RunError>) -> (i32, Output) {
    match r {
        Ok(o) => (o.status, o),
        Err(e) => (127, Output::failed(127, &e.to_string())),
    }
}

/// An integer as `[ $x -gt 0 ]` reads an unquoted variable: exactly one
/// field, optional sign and blanks; anything else makes test fail.
fn test_int(s: &str) -> Option<i64> {
    let fields: Vec<&str> = s.split_whitespace().collect();
    let [w] = fields.as_slice() else { return None };
    let digits = w.strip_prefix(['+', '-']).unwrap_or(w);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    w.parse().ok()
}

/// Where a script run is: ended, or asleep. Time is the caller's: `hvnet vfattach` sleeps,
/// the simulator's userland wakes the script at a virtual time ([`crate::userland`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Exit(ScriptResult),
    /// `sleep SECS`, then [`Resume::run`].
    Sleep {
        secs: u64,
        then: Resume,
    },
}

/// What a sleeping script does when it wakes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resume {
    /// hyperv_vfattach's detached run: `ifconfig IFACE up`, exit with its status.
    BringUp { iface: String },
}

impl Resume {
    pub fn run<R: CommandRunner + ?Sized>(self, r: &mut R) -> Step {
        match self {
            Resume::BringUp { iface } => {
                let (st, _) = status(r.run(&cmd::ifconfig_up(&iface)));
                Step::Exit(ScriptResult::exit(st))
            }
        }
    }
}

impl Step {
    /// Run the script to its end, calling `sleep` (seconds) where it sleeps.
    pub fn finish<R: CommandRunner + ?Sized>(
        mut self,
        r: &mut R,
        sleep: &mut dyn FnMut(u64),
    ) -> ScriptResult {
        loop {
            match self {
                Step::Exit(res) => return res,
                Step::Sleep { secs, then } => {
                    sleep(secs);
                    self = then.run(r);
                }
            }
        }
    }
}

/// `hyperv_vfattach IFACE DELAY`.
///
/// * transparent kernel (`hw.hn.vf_transparent` readable and non-zero):
///   nothing, exit 0;
/// * `DELAY` > 0 (the detached second run): sleep, then `ifconfig IFACE up`
///   ([`Resume::BringUp`]), exit with its status;
/// * otherwise, if IFACE is listed in `hw.hn.vflist`: run `daemon -f
///   REEXEC... IFACE D` where D is rc.conf's `hyperv_vf_delay` (at least
///   2), and exit 0. `rc_conf` is called only in this case (the script
///   sources `/etc/rc.conf` alone there).
///
/// `reexec` is the program (and leading arguments) the daemonized copy
/// runs, e.g. `["/usr/libexec/hyperv/hyperv_vfattach"]` or
/// `["/usr/local/sbin/hvnet", "vfattach"]`.
pub fn vfattach<R, F>(r: &mut R, iface: &str, delay: &str, reexec: &[String], rc_conf: F) -> Step
where
    R: CommandRunner + ?Sized,
    F: FnOnce() -> RcConf,
{
    let exit = |code| Step::Exit(ScriptResult::exit(code));
    let (st, out) = status(r.run(&cmd::sysctl_read("hw.hn.vf_transparent")));
    // Old kernel (no sysctl) means non-transparent; a value test(1)
    // cannot compare is not "non-zero" either.
    let transparent = st == 0 && test_int(&out.stdout).is_some_and(|v| v != 0);
    if transparent {
        return exit(0);
    }
    if let Some(d) = test_int(delay).filter(|d| *d > 0) {
        return Step::Sleep {
            secs: d.unsigned_abs(),
            then: Resume::BringUp {
                iface: iface.to_string(),
            },
        };
    }
    let conf = rc_conf();
    let (st, out) = status(r.run(&cmd::sysctl_read("hw.hn.vflist")));
    if st != 0 {
        return exit(0);
    }
    if !iface.is_empty() && out.stdout.split_whitespace().any(|vf| vf == iface) {
        // The script passes the variable on as written when test(1)
        // accepts it (`007` stays `007`), else 2.
        let word = conf.get("hyperv_vf_delay").unwrap_or("").trim().to_string();
        let d = if test_int(&word).is_some_and(|v| v >= 2) {
            word
        } else {
            conf.hyperv_vf_delay().to_string()
        };
        let Some((prog, lead)) = reexec.split_first() else {
            return exit(0);
        };
        let mut args: Vec<String> = lead.to_vec();
        args.push(iface.to_string());
        args.push(d);
        // The script ignores daemon's status (`break` follows).
        let _ = r.run(&cmd::daemon(prog, &args));
    }
    exit(0)
}

/// Which `hyperv_vfup` to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VfupMode {
    /// The shipped script, defects included.
    Faithful,
    /// Fixed: current dhclient pid file (checked to be dhclient), IPv4
    /// removal by address, `eval`-style arguments, aliases, IPv6, static
    /// routes and `defaultrouter` moved too, dhclient never blocking,
    /// exact port check.
    Improved,
}

/// Options of [`vfup`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VfupOptions {
    pub mode: VfupMode,
    /// Directory of the per-interface override `hyperv_vfup.hnX`.
    pub override_dir: String,
    /// FreeBSD major version (dhclient pid file location, Improved mode).
    pub freebsd_major: u32,
}

impl Default for VfupOptions {
    fn default() -> Self {
        VfupOptions {
            mode: VfupMode::Faithful,
            override_dir: "/usr/libexec/hyperv".into(),
            freebsd_major: 14,
        }
    }
}

/// Upper bound of the `ifconfig hnX -alias` loop (the script has none; an
/// `-alias` that keeps succeeding would loop forever).
pub const MAX_ALIAS_REMOVALS: usize = 1024;

/// `hyperv_vfup hnX`: put hnX and its VF into a failover `laggN` and move
/// hnX's configuration there (first time), or make sure the VF is a port
/// (later times). `rc` is rc.conf as `load_rc_config netif` gives it.
pub fn vfup<R: CommandRunner + ?Sized>(
    r: &mut R,
    rc: &RcConf,
    hn: &str,
    opts: &VfupOptions,
) -> ScriptResult {
    let improved = opts.mode == VfupMode::Improved;
    let hook = format!(
        "{}/hyperv_vfup.{hn}",
        opts.override_dir.trim_end_matches('/')
    );
    if r.exists(&hook) {
        let (st, _) = status(r.run(&Command::new(hook, Vec::<String>::new())));
        return ScriptResult::exit(st);
    }
    let mut res = ScriptResult::default();
    let unit: String = hn.chars().filter(char::is_ascii_digit).collect();
    let (st, out) = status(r.run(&cmd::sysctl_read(&format!("dev.hn.{unit}.vf"))));
    let vf = if st == 0 {
        out.stdout.trim().to_string()
    } else {
        String::new()
    };
    if vf.is_empty() {
        res.messages.push(format!("{hn}: VF was detached"));
        return res;
    }
    let lagg = format!("lagg{unit}");
    let (exists, shown) = status(r.run(&cmd::ifconfig_show(&lagg)));
    if exists == 0 {
        let present = if improved {
            parse::parse_ifconfig(&format!("ifconfig {lagg}"), &shown.stdout)
                .ok()
                .and_then(|v| v.into_iter().next())
                .and_then(|i| i.lagg)
                .is_some_and(|l| l.ports.iter().any(|p| p.name == vf))
        } else {
            // `ifconfig laggN | grep "laggport: VF"`: a substring test.
            shown.stdout.contains(&format!("laggport: {vf}"))
        };
        if !present {
            let (st, _) = status(r.run(&cmd::lagg_add_port(&lagg, &vf)));
            res.exit_code = st;
        }
        return res;
    }
    let (st, _) = status(r.run(&cmd::ifconfig_create(&lagg)));
    if st != 0 {
        res.messages.push(format!("{lagg} creation failed"));
        res.exit_code = 1;
        return res;
    }
    if improved {
        res.exit_code = move_improved(r, rc, hn, &vf, &lagg, opts);
        return res;
    }
    let _ = r.run(&cmd::lagg_setup(&lagg, "failover", &[hn, vf.as_str()]));
    let _ = r.run(&cmd::ifconfig_inet6_no_dad(&lagg));
    stop_dhclient(r, hn, opts, improved);
    remove_ipv4(r, hn, improved);
    res.exit_code = transfer_faithful(r, rc, hn, &lagg);
    res
}

/// The improved move of hnX's configuration to a new laggN, make before break: laggN
/// holds it (hnX's leased addresses included) before hnX becomes its port (which purges
/// hnX's inet6) and before it leaves hnX, and routes move with one `route change` each,
/// so no address or IPv4 route is ever absent. The status is the last configuring
/// command's (dhclient's with DHCP).
fn move_improved<R: CommandRunner + ?Sized>(
    r: &mut R,
    rc: &RcConf,
    hn: &str,
    vf: &str,
    lagg: &str,
    opts: &VfupOptions,
) -> i32 {
    let _ = r.run(&cmd::ifconfig_inet6_no_dad(lagg));
    stop_dhclient(r, hn, opts, true);
    let ic = rc.interface(hn);
    if ic.dhcp {
        // The lease goes with the client: the new one on laggN (same MAC) renews it.
        if let Ok(Some(i)) = system::interface(r, hn) {
            for a in &i.inet {
                let addr = format!("{}/{}", a.addr, a.prefix_len);
                let _ = r.run(&cmd::ifconfig_args(
                    lagg,
                    &["inet".into(), addr, "alias".into()],
                ));
            }
        }
    }
    let mut last = transfer_improved(r, rc, hn, lagg);
    let (v6, v4): (Vec<_>, Vec<_>) = ic
        .routes
        .iter()
        .partition(|route| route.family == hvnet_rcconf::RouteFamily::Inet6);
    // A new port's IPv6 routes go with its inet6: move them first.
    for route in v6 {
        move_route(r, &route.add_args(), hn, lagg);
    }
    // One command: the VF is up already (VF_UP ran this), and its frames reach the
    // stack only once it is a port.
    let _ = r.run(&cmd::lagg_setup(lagg, "failover", &[hn, vf]));
    if let Some(gw) = rc.default_router() {
        move_route(r, &["add".into(), "default".into(), gw], hn, lagg);
    }
    for route in v4 {
        move_route(r, &route.add_args(), hn, lagg);
    }
    remove_ipv4(r, hn, true);
    if ic.dhcp {
        // Never block devd: background either way.
        let flags = rc.dhclient_flags(hn);
        last = status(r.run(&cmd::dhclient(lagg, true, &flags))).0;
    }
    last
}

/// Put the route `add_args` describes (through hnX) on laggN with one `route change`
/// (`-ifp laggN` for a route through a gateway), or add it there when it is not installed.
fn move_route<R: CommandRunner + ?Sized>(r: &mut R, add_args: &[String], hn: &str, lagg: &str) {
    let on_lagg: Vec<String> = add_args
        .iter()
        .map(|w| if w == hn { lagg.to_string() } else { w.clone() })
        .collect();
    let mut change: Vec<String> = std::iter::once("change".to_string())
        .chain(on_lagg.iter().skip(1).cloned())
        .collect();
    if !on_lagg.iter().any(|w| w == "-interface" || w == "-iface") {
        change.extend(["-ifp".to_string(), lagg.to_string()]);
    }
    let changed = r
        .run(&cmd::route(&prefixed(&change)))
        .is_ok_and(|o| o.success());
    if !changed {
        let _ = r.run(&cmd::route(&prefixed(&on_lagg)));
    }
}

/// `-n` first, as the backend's route commands.
fn prefixed(args: &[String]) -> Vec<String> {
    std::iter::once("-n".to_string())
        .chain(args.iter().cloned())
        .collect()
}

fn stop_dhclient<R: CommandRunner + ?Sized>(
    r: &mut R,
    hn: &str,
    opts: &VfupOptions,
    improved: bool,
) {
    if !improved {
        let path = parse::dhclient_pidfile(hn, 11);
        if let Ok(Some(text)) = r.read_file(&path) {
            // `kill -TERM \`cat pidfile\``: whatever the file holds.
            let mut args = vec!["-TERM".to_string()];
            args.extend(text.split_whitespace().map(str::to_string));
            let _ = r.run(&Command::new(cmd::prog::KILL, args));
        }
        return;
    }
    let mut majors = vec![opts.freebsd_major];
    if opts.freebsd_major >= 12 {
        majors.push(11);
    }
    for m in majors {
        if let Ok(Some(pid)) = system::dhclient_pid(r, hn, m) {
            let out = r.run(&cmd::ps_comm(pid));
            let is_dhclient = out.is_ok_and(|o| {
                o.success() && o.stdout.trim().rsplit('/').next() == Some("dhclient")
            });
            if is_dhclient {
                let _ = r.run(&cmd::kill("TERM", pid));
            }
        }
    }
}

fn remove_ipv4<R: CommandRunner + ?Sized>(r: &mut R, hn: &str, improved: bool) {
    if improved {
        if let Ok(Some(i)) = system::interface(r, hn) {
            for a in &i.inet {
                let _ = r.run(&cmd::ifconfig_inet_delete(hn, &a.addr.to_string()));
            }
            return;
        }
    }
    for _ in 0..MAX_ALIAS_REMOVALS {
        let (st, _) = status(r.run(&cmd::ifconfig_remove_first_inet(hn)));
        if st != 0 {
            break;
        }
    }
}

fn transfer_faithful<R: CommandRunner + ?Sized>(
    r: &mut R,
    rc: &RcConf,
    hn: &str,
    lagg: &str,
) -> i32 {
    if rc.dhcpif(hn) {
        let _ = r.run(&cmd::ifconfig_up(lagg));
        let c = cmd::dhclient(lagg, !rc.syncdhcpif(hn), &[]);
        return status(r.run(&c)).0;
    }
    let args = rc.ifconfig_args(hn, None);
    if args.is_empty() {
        return 0;
    }
    status(r.run(&cmd::ifconfig_args(lagg, &args))).0
}

/// hnX's rc.conf configuration (addresses, aliases, IPv6, link aliases, description) on
/// laggN, and laggN up; the status is the last command's.
fn transfer_improved<R: CommandRunner + ?Sized>(
    r: &mut R,
    rc: &RcConf,
    hn: &str,
    lagg: &str,
) -> i32 {
    let ic = rc.interface(hn);
    let mut last = 0;
    let mut run = |r: &mut R, c: Command| {
        last = status(r.run(&c)).0;
    };
    let args = rc
        .ifconfig_args_eval(hn, None)
        .unwrap_or_else(|_| ic.args.clone());
    if !args.is_empty() {
        run(r, cmd::ifconfig_args(lagg, &args));
    }
    for g in &ic.ipv4_aliases {
        run(r, cmd::ifconfig_alias(lagg, g));
    }
    if ic.ipv6.enabled {
        run(r, cmd::ifconfig_inet6_disabled(lagg, false));
        if !ic.ipv6.args.is_empty() {
            run(r, cmd::ifconfig_args(lagg, &ic.ipv6.args));
        }
        if !ic.ipv6.obsolete_args.is_empty() {
            run(r, cmd::ifconfig_args(lagg, &ic.ipv6.obsolete_args));
        }
        for g in &ic.ipv6.aliases {
            run(r, cmd::ifconfig_alias(lagg, g));
        }
        for p in &ic.ipv6.prefix_commands {
            run(r, cmd::ifconfig_args(lagg, p));
        }
    }
    for g in rc
        .aliases(hn, Af::Link)
        .iter()
        .chain(&rc.aliases(hn, Af::Ether))
    {
        run(r, cmd::ifconfig_alias(lagg, g));
    }
    if let Some(d) = &ic.description {
        run(r, cmd::ifconfig_description(lagg, d));
    }
    run(r, cmd::ifconfig_up(lagg));
    last
}
