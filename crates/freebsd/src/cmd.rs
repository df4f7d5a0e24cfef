//! Argument vectors for every external command the FreeBSD backend runs.
//! Never shell strings: each argument is passed to execve as is. The
//! `Display` form quotes arguments only for logs.

use std::fmt;

/// Programs, by absolute path (devd and rc run with a minimal PATH).
pub mod prog {
    pub const IFCONFIG: &str = "/sbin/ifconfig";
    pub const SYSCTL: &str = "/sbin/sysctl";
    pub const DHCLIENT: &str = "/sbin/dhclient";
    pub const ROUTE: &str = "/sbin/route";
    pub const DAEMON: &str = "/usr/sbin/daemon";
    pub const KILL: &str = "/bin/kill";
    pub const RC_D: &str = "/etc/rc.d";
    pub const NETSTAT: &str = "/usr/bin/netstat";
    pub const PS: &str = "/bin/ps";
    pub const PGREP: &str = "/bin/pgrep";
}

/// One command: a program and its arguments.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Command {
    pub program: String,
    pub args: Vec<String>,
}

impl Command {
    pub fn new<P: Into<String>, I, S>(program: P, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Command {
            program: program.into(),
            args: args.into_iter().map(Into::into).collect(),
        }
    }

    /// The program's file name (`ifconfig` for `/sbin/ifconfig`), for
    /// error messages and for matching in fakes.
    pub fn name(&self) -> &str {
        self.program.rsplit('/').next().unwrap_or(&self.program)
    }

    /// `name arg1 arg2` without quoting: a short label for errors.
    pub fn label(&self) -> String {
        let mut s = self.name().to_string();
        for a in &self.args {
            s.push(' ');
            s.push_str(a);
        }
        s
    }

    /// Program and arguments as one vector (argv).
    pub fn argv(&self) -> Vec<&str> {
        std::iter::once(self.program.as_str())
            .chain(self.args.iter().map(String::as_str))
            .collect()
    }
}

/// Quote one argument for display, sh-style, only when needed.
pub fn display_quote(arg: &str) -> String {
    let safe = !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:,=+%@".contains(c));
    if safe {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', "'\\''"))
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", display_quote(&self.program))?;
        for a in &self.args {
            write!(f, " {}", display_quote(a))?;
        }
        Ok(())
    }
}

fn ifconfig<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    Command::new(prog::IFCONFIG, args)
}

/// `ifconfig -l`: names of all interfaces.
pub fn ifconfig_list() -> Command {
    ifconfig(["-l"])
}

/// `ifconfig -a`: every interface in detail.
pub fn ifconfig_all() -> Command {
    ifconfig(["-a"])
}

/// `ifconfig IF`: one interface (fails if it does not exist).
pub fn ifconfig_show(ifname: &str) -> Command {
    ifconfig([ifname])
}

/// `ifconfig IF up`.
pub fn ifconfig_up(ifname: &str) -> Command {
    ifconfig([ifname, "up"])
}

/// `ifconfig IF down`.
pub fn ifconfig_down(ifname: &str) -> Command {
    ifconfig([ifname, "down"])
}

/// `ifconfig IF ARGS...` (e.g. arguments from `ifconfig_getargs`).
pub fn ifconfig_args(ifname: &str, args: &[String]) -> Command {
    let mut v = vec![ifname.to_string()];
    v.extend(args.iter().cloned());
    ifconfig(v)
}

/// `ifconfig IF mtu N`.
pub fn ifconfig_mtu(ifname: &str, mtu: u32) -> Command {
    ifconfig([ifname.to_string(), "mtu".into(), mtu.to_string()])
}

/// `ifconfig IF GROUP... alias` (one alias group from rc.conf).
pub fn ifconfig_alias(ifname: &str, group: &[String]) -> Command {
    let mut v = vec![ifname.to_string()];
    v.extend(group.iter().cloned());
    v.push("alias".into());
    ifconfig(v)
}

/// `ifconfig IF -alias`: remove the first IPv4 address (hyperv_vfup's loop).
pub fn ifconfig_remove_first_inet(ifname: &str) -> Command {
    ifconfig([ifname, "-alias"])
}

/// `ifconfig IF inet ADDR delete` (ipv4_down).
pub fn ifconfig_inet_delete(ifname: &str, addr: &str) -> Command {
    ifconfig([ifname, "inet", addr, "delete"])
}

/// `ifconfig IF inet6 ADDR -alias` (ipv6_down).
pub fn ifconfig_inet6_delete(ifname: &str, addr: &str) -> Command {
    ifconfig([ifname, "inet6", addr, "-alias"])
}

/// `ifconfig IF inet6 ifdisabled` / `-ifdisabled`.
pub fn ifconfig_inet6_disabled(ifname: &str, disabled: bool) -> Command {
    ifconfig([
        ifname,
        "inet6",
        if disabled {
            "ifdisabled"
        } else {
            "-ifdisabled"
        },
    ])
}

/// `ifconfig IF inet6 -accept_rtadv`.
pub fn ifconfig_no_accept_rtadv(ifname: &str) -> Command {
    ifconfig([ifname, "inet6", "-accept_rtadv"])
}

/// `ifconfig IF inet6 no_dad` (hyperv_vfup on the new lagg).
pub fn ifconfig_inet6_no_dad(ifname: &str) -> Command {
    ifconfig([ifname, "inet6", "no_dad"])
}

/// `ifconfig IF description TEXT`.
pub fn ifconfig_description(ifname: &str, text: &str) -> Command {
    ifconfig([ifname, "description", text])
}

/// `ifconfig NAME create`.
pub fn ifconfig_create(ifname: &str) -> Command {
    ifconfig([ifname, "create"])
}

/// `ifconfig NAME destroy`.
pub fn ifconfig_destroy(ifname: &str) -> Command {
    ifconfig([ifname, "destroy"])
}

/// `ifconfig LAGG laggproto PROTO laggport P1 laggport P2 ...`: ports are
/// added in order, so the first becomes the failover primary.
pub fn lagg_setup(lagg: &str, proto: &str, ports: &[&str]) -> Command {
    let mut v = vec![lagg.to_string(), "laggproto".into(), proto.to_string()];
    for p in ports {
        v.push("laggport".into());
        v.push((*p).to_string());
    }
    ifconfig(v)
}

/// `ifconfig LAGG laggport PORT`.
pub fn lagg_add_port(lagg: &str, port: &str) -> Command {
    ifconfig([lagg, "laggport", port])
}

/// `ifconfig LAGG -laggport PORT`.
pub fn lagg_remove_port(lagg: &str, port: &str) -> Command {
    ifconfig([lagg, "-laggport", port])
}

/// `sysctl -n NAME`: read one value.
pub fn sysctl_read(name: &str) -> Command {
    Command::new(prog::SYSCTL, ["-n", name])
}

/// `sysctl NAME=VALUE`: write one value.
pub fn sysctl_write(name: &str, value: &str) -> Command {
    Command::new(prog::SYSCTL, [format!("{name}={value}")])
}

/// `dhclient [-b] [FLAGS...] IF`. `background` adds `-b` (go to the
/// background at once instead of waiting for a lease).
pub fn dhclient(ifname: &str, background: bool, flags: &[String]) -> Command {
    let mut v: Vec<String> = Vec::new();
    if background {
        v.push("-b".into());
    }
    v.extend(flags.iter().cloned());
    v.push(ifname.to_string());
    Command::new(prog::DHCLIENT, v)
}

/// `/etc/rc.d/SCRIPT ACTION [ARGS...]` (e.g. `dhclient start hn0`,
/// `netif start lagg0`, `routing start any lagg0`).
pub fn rc_script(script: &str, action: &str, args: &[&str]) -> Command {
    let mut v = vec![action.to_string()];
    v.extend(args.iter().map(|s| s.to_string()));
    Command::new(format!("{}/{script}", prog::RC_D), v)
}

/// `daemon -f PROGRAM ARGS...`: run detached, stdio to /dev/null.
pub fn daemon(program: &str, args: &[String]) -> Command {
    let mut v = vec!["-f".to_string(), program.to_string()];
    v.extend(args.iter().cloned());
    Command::new(prog::DAEMON, v)
}

/// The command a daemon(8) command line `daemon [options] command ...` runs: the words past
/// the options (and the arguments of those that take one); `None` when nothing is left.
pub fn daemon_command(argv: &[String]) -> Option<&[String]> {
    let mut i = 1;
    while i < argv.len() && argv[i].starts_with('-') {
        if matches!(
            argv[i].as_str(),
            "-p" | "-P" | "-o" | "-t" | "-u" | "-l" | "-m" | "-s" | "-T" | "-R"
        ) {
            i += 1;
        }
        i += 1;
    }
    argv.get(i..).filter(|c| !c.is_empty())
}

/// `kill -SIGNAL PID`.
pub fn kill(signal: &str, pid: u32) -> Command {
    Command::new(prog::KILL, [format!("-{signal}"), pid.to_string()])
}

/// `route ARGS...` (e.g. `StaticRoute::add_args()` from hvnet-rcconf).
pub fn route(args: &[String]) -> Command {
    Command::new(prog::ROUTE, args.iter().cloned())
}

/// `netstat -rn`: the routing tables, numeric.
pub fn netstat_routes() -> Command {
    Command::new(prog::NETSTAT, ["-rn"])
}

/// `ps -p PID -o comm=`: the command name of a process (fails if gone).
pub fn ps_comm(pid: u32) -> Command {
    Command::new(
        prog::PS,
        [
            "-p".to_string(),
            pid.to_string(),
            "-o".into(),
            "comm=".into(),
        ],
    )
}

/// `pgrep -x NAME`: pids of processes named exactly NAME.
pub fn pgrep_exact(name: &str) -> Command {
    Command::new(prog::PGREP, ["-x", name])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn daemon_command_skips_daemons_options_and_their_arguments() {
        let c = |v: &[&str]| daemon_command(&s(v)).map(<[String]>::to_vec);
        assert_eq!(
            c(&["daemon", "-f", "/x/hyperv_vfattach", "mce0", "2"]),
            Some(s(&["/x/hyperv_vfattach", "mce0", "2"]))
        );
        assert_eq!(
            c(&["daemon", "-f", "-p", "/run/x.pid", "-t", "title", "prog"]),
            Some(s(&["prog"]))
        );
        assert_eq!(c(&["daemon", "-f"]), None);
        assert_eq!(c(&["daemon", "-p", "/run/x.pid"]), None);
    }

    #[test]
    fn builders_produce_argument_vectors() {
        assert_eq!(ifconfig_list().argv(), ["/sbin/ifconfig", "-l"]);
        assert_eq!(ifconfig_up("mce0").args, s(&["mce0", "up"]));
        assert_eq!(
            lagg_setup("lagg0", "failover", &["hn0", "mce0"]).args,
            s(&[
                "lagg0",
                "laggproto",
                "failover",
                "laggport",
                "hn0",
                "laggport",
                "mce0"
            ])
        );
        assert_eq!(
            lagg_add_port("lagg0", "mce1").args,
            s(&["lagg0", "laggport", "mce1"])
        );
        assert_eq!(
            lagg_remove_port("lagg0", "mce1").args,
            s(&["lagg0", "-laggport", "mce1"])
        );
        assert_eq!(
            ifconfig_alias("lagg0", &s(&["inet", "10.0.0.5/32"])).args,
            s(&["lagg0", "inet", "10.0.0.5/32", "alias"])
        );
        assert_eq!(
            sysctl_read("hw.hn.vflist").argv(),
            ["/sbin/sysctl", "-n", "hw.hn.vflist"]
        );
        assert_eq!(
            sysctl_write("hw.hn.vf_xpnt_attwait", "5").args,
            s(&["hw.hn.vf_xpnt_attwait=5"])
        );
        assert_eq!(
            dhclient("lagg0", true, &s(&["-q"])).args,
            s(&["-b", "-q", "lagg0"])
        );
        assert_eq!(dhclient("lagg0", false, &[]).args, s(&["lagg0"]));
        assert_eq!(
            rc_script("dhclient", "start", &["hn0"]).program,
            "/etc/rc.d/dhclient"
        );
        assert_eq!(
            daemon("/usr/libexec/hyperv/hyperv_vfattach", &s(&["mce0", "120"])).args,
            s(&["-f", "/usr/libexec/hyperv/hyperv_vfattach", "mce0", "120"])
        );
        assert_eq!(kill("TERM", 42).args, s(&["-TERM", "42"]));
        assert_eq!(ifconfig_mtu("hn0", 9000).args, s(&["hn0", "mtu", "9000"]));
        assert_eq!(
            ifconfig_inet6_disabled("hn0", false).args,
            s(&["hn0", "inet6", "-ifdisabled"])
        );
    }

    #[test]
    fn hostile_names_stay_single_arguments() {
        let c = ifconfig_up("x; rm -rf /");
        assert_eq!(c.args.len(), 2);
        assert_eq!(c.to_string(), "/sbin/ifconfig 'x; rm -rf /' up");
        assert_eq!(
            ifconfig_description("hn0", "it's").to_string(),
            "/sbin/ifconfig hn0 description 'it'\\''s'"
        );
        assert_eq!(Command::new("p", [""]).to_string(), "p ''");
    }

    #[test]
    fn names_and_labels() {
        let c = sysctl_read("dev.hn.0.vf");
        assert_eq!(c.name(), "sysctl");
        assert_eq!(c.label(), "sysctl -n dev.hn.0.vf");
    }
}
