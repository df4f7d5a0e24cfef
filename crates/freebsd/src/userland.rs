//! FreeBSD's own userland for Hyper-V networking, as one model (spec hn.md §3): devd with
//! hyperv.conf and devd.conf's `IFNET LINK_UP` dhclient rule — hvnet-devd's engine decides
//! which rule fires and expands its action, as `hvnet devd run` does — and the programs the
//! actions run: `hyperv_vfattach` and the shipped `hyperv_vfup` ([`crate::scripts`], the
//! faithful variant, known defects included), rc.d/dhclient through `service`, and daemon(8).
//! Every other program (the Hyper-V daemons, `pkill`, ...) and every command the scripts run
//! goes to the [`CommandRunner`] as it is. `hvnet simulate --agent scripts` and `hvnet compare
//! --original emulated` run it with the simulator answering the commands.
//!
//! Time is the caller's: a program that sleeps waits with its wake-up time until
//! [`Userland::on_timer`]. Unlike devd, the model does not wait for an action to end before the
//! next event (a foreground `dhclient` or a sleeping action would hold a real devd up).

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use hvnet_devd::expand::Refused;
use hvnet_devd::{Config, ConfigError, Engine, Event, LoadOptions, MediaProbe, Quoting};
use hvnet_rcconf::RcConf;

use crate::cmd::{self, Command};
use crate::runner::{CommandRunner, Output, RunError};
use crate::scripts::{self, Resume, ScriptResult, Step, VfupOptions};

/// The rules of FreeBSD's `/etc/devd/hyperv.conf` (comments shortened).
pub const HYPERV_CONF: &str = r#"# Hyper-V specific events (sbin/devd/hyperv.conf)
notify 10 {
	match "system"		"DEVFS";
	match "subsystem"	"CDEV";
	match "type"		"CREATE";
	match "cdev"		"hv_kvp_dev";
	action "/usr/sbin/hv_kvp_daemon";
};

notify 10 {
	match "system"		"DEVFS";
	match "subsystem"	"CDEV";
	match "type"		"DESTROY";
	match "cdev"		"hv_kvp_dev";
	action "pkill -x hv_kvp_daemon";
};

notify 11 {
	match "system"		"DEVFS";
	match "subsystem"	"CDEV";
	match "type"		"CREATE";
	match "cdev"		"hv_fsvss_dev";
	action "/usr/sbin/hv_vss_daemon";
};

notify 11 {
	match "system"		"DEVFS";
	match "subsystem"	"CDEV";
	match "type"		"DESTROY";
	match "cdev"		"hv_fsvss_dev";
	action "pkill -x hv_vss_daemon";
};

notify 10 {
	match "system"		"HYPERV_NIC_VF";
	match "type"		"VF_UP";
	action "/usr/libexec/hyperv/hyperv_vfup $subsystem";
};

notify 10 {
	match "system"		"ETHERNET";
	match "type"		"IFATTACH";
	action "/usr/libexec/hyperv/hyperv_vfattach $subsystem 0";
};
"#;

/// FreeBSD's `/etc/devd/dhclient.conf` Ethernet rule.
pub const DHCLIENT_CONF: &str = r#"# dhclient on link up (sbin/devd/dhclient.conf)
notify 0 {
	match "system"		"IFNET";
	match "type"		"LINK_UP";
	media-type		"ethernet";
	action "service dhclient quietstart $subsystem";
};
"#;

/// devd's rules through hvnet-devd's engine.
pub struct DevdRules {
    engine: Engine,
}

impl DevdRules {
    /// hyperv.conf and dhclient.conf as FreeBSD ships them ([`HYPERV_CONF`], [`DHCLIENT_CONF`]).
    pub fn hyperv() -> DevdRules {
        DevdRules::from_files(&[
            ("hyperv.conf", HYPERV_CONF),
            ("dhclient.conf", DHCLIENT_CONF),
        ])
        .expect("the built-in devd rules parse")
    }

    /// Rules from devd configuration texts, `(name, text)`, read as one file.
    pub fn from_files(files: &[(&str, &str)]) -> Result<DevdRules, ConfigError> {
        let opts = LoadOptions {
            no_directories: true,
            ..Default::default()
        };
        let mut text = String::new();
        for (_, t) in files {
            text.push_str(t);
            text.push('\n');
        }
        let name = files.iter().map(|(n, _)| *n).collect::<Vec<_>>().join("+");
        let cfg = Config::parse_str(&name, &text, &opts)?;
        Ok(DevdRules {
            engine: Engine::new(cfg),
        })
    }

    /// The commands devd hands to the shell for devctl line `line` (without its newline),
    /// values quoted as `quoting` writes them; an action that cannot reach the shell intact is
    /// refused, as in `hvnet devd run`. Empty when the line is no event or no rule matches.
    pub fn commands(
        &self,
        line: &str,
        media: &dyn MediaProbe,
        quoting: Quoting,
    ) -> Vec<Result<String, Refused>> {
        let Ok(event) = Event::parse(line) else {
            return Vec::new();
        };
        let Some(rule) = self.engine.find(&event, media) else {
            return Vec::new();
        };
        self.engine
            .commands(rule, &event, quoting)
            .into_iter()
            .map(|c| c.map(|bytes| String::from_utf8_lossy(&bytes).into_owned()))
            .collect()
    }
}

/// The words a shell gives an action: POSIX quotes removed, anything a shell would run as
/// more than one simple command (`;`, `|`, `$(...)`, ...) refused. The split is hvnet-rcconf's
/// reading of sh; devd's values arrive in POSIX single quotes ([`Quoting::SingleQuotes`]).
pub fn action_words(action: &str) -> Result<Vec<String>, String> {
    hvnet_rcconf::netsubr::eval_words(&RcConf::new(), action)
}

/// Something to run now: an action devd starts, a program daemon(8) starts, a program whose
/// sleep is over.
enum Job {
    /// `by` is `devd` or `daemon`, for the transcript.
    Start {
        by: &'static str,
        argv: Vec<String>,
    },
    Wake(Sleeper),
}

/// A sleeping program: what it is, and what it does when it wakes.
#[derive(Debug, Clone)]
struct Sleeper {
    label: String,
    then: Resume,
}

/// devd, the two scripts and the few programs around them, over a [`CommandRunner`].
pub struct Userland {
    rules: DevdRules,
    /// rc.conf as `load_rc_config` reads it (defaults first).
    rc: RcConf,
    /// `/etc/rc.conf` alone, as hyperv_vfattach sources it.
    rc_file: RcConf,
    /// Sleeping programs by wake-up time (and start order).
    sleeping: BTreeMap<(Duration, u64), Sleeper>,
    seq: u64,
    log: Vec<String>,
}

impl Userland {
    /// FreeBSD's rules ([`DevdRules::hyperv`]) over the guest's rc.conf: `rc` as
    /// `load_rc_config` reads it, `rc_file` `/etc/rc.conf` alone.
    pub fn new(rc: RcConf, rc_file: RcConf) -> Userland {
        Userland::with_rules(DevdRules::hyperv(), rc, rc_file)
    }

    pub fn with_rules(rules: DevdRules, rc: RcConf, rc_file: RcConf) -> Userland {
        Userland {
            rules,
            rc,
            rc_file,
            sleeping: BTreeMap::new(),
            seq: 0,
            log: Vec::new(),
        }
    }

    /// devd reads devctl line `line` at `now`: the matching rule's actions run, each to its
    /// end or its first sleep.
    pub fn on_devctl<R: CommandRunner + ?Sized>(
        &mut self,
        now: Duration,
        line: &str,
        media: &dyn MediaProbe,
        r: &mut R,
    ) {
        for action in self.rules.commands(line, media, Quoting::SingleQuotes) {
            let words = action
                .map_err(|why| why.to_string())
                .and_then(|a| action_words(&a).map_err(|e| format!("{a}: {e}")));
            match words {
                Ok(argv) if !argv.is_empty() => self.run(now, Job::Start { by: "devd", argv }, r),
                Ok(_) => {}
                Err(why) => self.log.push(format!("devd: action not run: {why}")),
            }
        }
    }

    /// Time reached [`Userland::next_wakeup`]: programs whose sleep is over go on.
    pub fn on_timer<R: CommandRunner + ?Sized>(&mut self, now: Duration, r: &mut R) {
        while let Some(entry) = self.sleeping.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let sleeper = entry.remove();
            self.run(now, Job::Wake(sleeper), r);
        }
    }

    /// When the first sleeping program wakes.
    pub fn next_wakeup(&self) -> Option<Duration> {
        self.sleeping.keys().next().map(|(t, _)| *t)
    }

    /// The transcript since the last call: what devd ran (`devd: ...`), every command the
    /// programs ran (`$ ...`), what they printed (`  | ...`) and a failing exit.
    pub fn take_log(&mut self) -> Vec<String> {
        std::mem::take(&mut self.log)
    }

    /// Run `job` and every program it starts through daemon(8), each to its end or sleep.
    fn run<R: CommandRunner + ?Sized>(&mut self, now: Duration, job: Job, r: &mut R) {
        let mut queue = VecDeque::from([job]);
        while let Some(job) = queue.pop_front() {
            let mut launcher = Launcher::new(r);
            let (label, step) = match job {
                Job::Start { by, argv } => {
                    let label = label(&argv);
                    self.log.push(format!("{by}: {label}"));
                    (label, self.program(&argv, &mut launcher))
                }
                Job::Wake(s) => (s.label, s.then.run(&mut launcher)),
            };
            let started = launcher.started.drain(..);
            queue.extend(started.map(|argv| Job::Start { by: "daemon", argv }));
            self.log.append(&mut launcher.log);
            self.settle(now, label, step);
        }
    }

    /// Where a program got to: its output and a failing status to the log, or asleep.
    fn settle(&mut self, now: Duration, label: String, step: Step) {
        match step {
            Step::Exit(res) => {
                for m in &res.messages {
                    self.log.push(format!("  | {m}"));
                }
                if res.exit_code != 0 {
                    self.log
                        .push(format!("  `{label}` exited {}", res.exit_code));
                }
            }
            Step::Sleep { secs, then } => {
                self.log.push(format!("$ sleep {secs}"));
                self.seq += 1;
                let at = now + Duration::from_secs(secs);
                self.sleeping
                    .insert((at, self.seq), Sleeper { label, then });
            }
        }
    }

    /// One program, by its file name.
    fn program<R: CommandRunner + ?Sized>(&self, argv: &[String], r: &mut R) -> Step {
        let arg = |i: usize| argv.get(i).map_or("", String::as_str);
        let name = argv[0].rsplit('/').next().unwrap_or(&argv[0]);
        match name {
            "hyperv_vfattach" => {
                let reexec = [argv[0].clone()];
                scripts::vfattach(r, arg(1), arg(2), &reexec, || self.rc_file.clone())
            }
            "hyperv_vfup" => {
                Step::Exit(scripts::vfup(r, &self.rc, arg(1), &VfupOptions::default()))
            }
            "service" if arg(1) == "dhclient" && matches!(arg(2), "start" | "quietstart") => {
                Step::Exit(service_dhclient(r, &self.rc, arg(2), arg(3)))
            }
            _ => {
                let code = match r.run(&Command::new(argv[0].clone(), argv[1..].to_vec())) {
                    Ok(out) => out.status,
                    Err(_) => 127,
                };
                Step::Exit(ScriptResult {
                    exit_code: code,
                    messages: Vec::new(),
                })
            }
        }
    }
}

/// The program and its arguments, quoted for the log.
fn label(argv: &[String]) -> String {
    Command::new(argv[0].clone(), argv[1..].to_vec()).to_string()
}

/// `service dhclient start|quietstart IF` (rc.d/dhclient): dhclient only on an interface
/// rc.conf configures for DHCP, in the background when `background_dhclient[_IF]` says so.
fn service_dhclient<R: CommandRunner + ?Sized>(
    r: &mut R,
    rc: &RcConf,
    action: &str,
    iface: &str,
) -> ScriptResult {
    if !rc.dhcpif(iface) {
        let messages = if action == "start" {
            vec![format!("'{iface}' is not a DHCP-enabled interface")]
        } else {
            Vec::new()
        };
        return ScriptResult {
            exit_code: 1,
            messages,
        };
    }
    let background = rc.background_dhclient(iface);
    let code = match r.run(&cmd::dhclient(iface, background, &[])) {
        Ok(out) => out.status,
        Err(_) => 127,
    };
    ScriptResult {
        exit_code: code,
        messages: Vec::new(),
    }
}

/// A runner that starts what `daemon` is asked to run as a program of the model (after the
/// current one) instead of passing `daemon` on; everything else goes to the inner runner.
/// Every command goes to the transcript.
struct Launcher<'a, R: ?Sized> {
    inner: &'a mut R,
    started: Vec<Vec<String>>,
    log: Vec<String>,
}

impl<'a, R: CommandRunner + ?Sized> Launcher<'a, R> {
    fn new(inner: &'a mut R) -> Self {
        Launcher {
            inner,
            started: Vec::new(),
            log: Vec::new(),
        }
    }
}

impl<R: CommandRunner + ?Sized> CommandRunner for Launcher<'_, R> {
    fn run(&mut self, c: &Command) -> Result<Output, RunError> {
        self.log.push(format!("$ {c}"));
        if c.name() != "daemon" {
            return self.inner.run(c);
        }
        let argv: Vec<String> = c.argv().into_iter().map(String::from).collect();
        match cmd::daemon_command(&argv) {
            Some(child) => {
                self.started.push(child.to_vec());
                Ok(Output::ok(""))
            }
            None => Ok(Output::failed(
                1,
                "usage: daemon [-f] command arguments ...\n",
            )),
        }
    }

    fn exists(&mut self, path: &str) -> bool {
        self.inner.exists(path)
    }

    fn read_file(&mut self, path: &str) -> Result<Option<String>, RunError> {
        self.inner.read_file(path)
    }
}
