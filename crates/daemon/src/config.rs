//! `hvnet.conf`: the daemon's configuration file (TOML).
//!
//! Every key is optional; a missing default file means "all defaults". Unknown keys and bad
//! values are errors reported as `FILE:LINE: message` (the TOML parser gives byte spans).
//! The option list is documented in docs/CONFIGURATION.md.

use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hvnet_metrics::parse_listen;
use hvnet_vf::{Backoff, FlapDamping, ModeSetting};
use serde::Deserialize;
use toml::Spanned;

use crate::limits;

/// The default configuration file of this OS.
pub fn default_path() -> &'static str {
    if cfg!(target_os = "freebsd") {
        "/usr/local/etc/hvnet.conf"
    } else {
        "/etc/hvnet.conf"
    }
}

/// The directory of hvnet's runtime files: the control socket, and `hvnet devd run`'s
/// sockets, pid and status files. On Linux it is `/run/hvnet`, the directory the systemd
/// unit's `RuntimeDirectory=hvnet` makes (mode 0700; the rest of the file system is read-only
/// to the service); on FreeBSD devd's `/var/run`.
pub const RUN_DIR: &str = if cfg!(target_os = "linux") {
    "/run/hvnet"
} else {
    "/var/run"
};

/// The default control socket, in [`RUN_DIR`].
pub const DEFAULT_SOCKET: &str = if cfg!(target_os = "linux") {
    "/run/hvnet/hvnet.sock"
} else {
    "/var/run/hvnet.sock"
};

/// Something that says "the system is ready for the VF" earlier than the VF delay (e.g. the
/// cloud agent finished provisioning); checked beside the manager's steps ([`crate::gate`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadinessGate {
    /// Ready once this file exists.
    File(String),
    /// Ready once this command (argv, no shell) exits 0.
    Command(Vec<String>),
}

/// Where events come from and where changes go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackendKind {
    /// FreeBSD: devd's seqpacket socket, ifconfig/sysctl/dhclient.
    Freebsd,
    /// Linux: rtnetlink link notifications, rtnetlink and tc changes.
    Linux,
    /// The built-in simulator (a scenario in virtual time).
    Sim,
}

impl BackendKind {
    /// The backend of the OS hvnet runs on.
    pub fn native() -> BackendKind {
        if cfg!(target_os = "linux") {
            BackendKind::Linux
        } else {
            BackendKind::Freebsd
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Freebsd => "freebsd",
            BackendKind::Linux => "linux",
            BackendKind::Sim => "sim",
        }
    }
}

/// `[freebsd]`: devd's socket and where the guest's files are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FreebsdSettings {
    pub devd_socket: PathBuf,
    /// `root`: read pid files and /dev under this directory (a simulated guest).
    pub root: Option<PathBuf>,
}

impl Default for FreebsdSettings {
    fn default() -> Self {
        FreebsdSettings {
            devd_socket: PathBuf::from("/var/run/devd.seqpacket.pipe"),
            root: None,
        }
    }
}

/// `[linux]`: which interfaces are synthetic NICs and VFs, and where sysfs is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinuxSettings {
    pub synthetic: Vec<String>,
    pub vf: Vec<String>,
    pub sysfs: PathBuf,
}

impl Default for LinuxSettings {
    fn default() -> Self {
        LinuxSettings {
            synthetic: vec!["hn*".into()],
            vf: vec!["vf*".into()],
            sysfs: PathBuf::from("/sys"),
        }
    }
}

/// `[sim]`: the simulated run.
#[derive(Debug, Clone, PartialEq)]
pub struct SimSettings {
    /// A built-in scenario name or a scenario file.
    pub scenario: String,
    pub seed: u64,
    /// Virtual seconds per wall-clock second.
    pub speed: f64,
}

impl Default for SimSettings {
    fn default() -> Self {
        SimSettings {
            scenario: "demo".into(),
            seed: 1,
            speed: 1.0,
        }
    }
}

/// The backend the daemon runs, with its own settings.
#[derive(Debug, Clone, PartialEq)]
pub enum Backend {
    Freebsd(FreebsdSettings),
    Linux(LinuxSettings),
    Sim(SimSettings),
}

impl Backend {
    pub fn kind(&self) -> BackendKind {
        match self {
            Backend::Freebsd(_) => BackendKind::Freebsd,
            Backend::Linux(_) => BackendKind::Linux,
            Backend::Sim(_) => BackendKind::Sim,
        }
    }

    pub fn name(&self) -> &'static str {
        self.kind().name()
    }
}

/// Every backend's settings as a file gives them; the one chosen becomes [`Backend`].
#[derive(Debug, Clone, Default)]
struct BackendTables {
    freebsd: FreebsdSettings,
    linux: LinuxSettings,
    sim: SimSettings,
}

impl BackendTables {
    fn select(self, kind: BackendKind) -> Backend {
        match kind {
            BackendKind::Freebsd => Backend::Freebsd(self.freebsd),
            BackendKind::Linux => Backend::Linux(self.linux),
            BackendKind::Sim => Backend::Sim(self.sim),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum RawMode {
    Auto,
    NonTransparent,
    Transparent,
    Steered,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum RawLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHoldDown {
    threshold: Option<u32>,
    window: Option<Spanned<f64>>,
    hold: Option<Spanned<f64>>,
    max_hold: Option<Spanned<f64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRetry {
    initial: Option<Spanned<f64>>,
    max: Option<Spanned<f64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFreebsd {
    devd_socket: Option<PathBuf>,
    root: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLinux {
    synthetic: Option<Vec<String>>,
    vf: Option<Vec<String>>,
    sysfs: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSim {
    scenario: Option<String>,
    seed: Option<u64>,
    speed: Option<Spanned<f64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    backend: Option<BackendKind>,
    mode: Option<RawMode>,
    vf_delay: Option<Spanned<f64>>,
    readiness_file: Option<Spanned<String>>,
    readiness_command: Option<Spanned<Vec<String>>>,
    resync: Option<Spanned<f64>>,
    manage_daemons: Option<bool>,
    vfup_dir: Option<String>,
    rc_conf: Option<PathBuf>,
    control_socket: Option<PathBuf>,
    metrics: Option<Spanned<String>>,
    devd_rules: Option<PathBuf>,
    devd_shell: Option<PathBuf>,
    action_timeout: Option<Spanned<f64>>,
    log_level: Option<RawLevel>,
    #[serde(default)]
    hold_down: RawHoldDown,
    #[serde(default)]
    retry: RawRetry,
    #[serde(default)]
    freebsd: RawFreebsd,
    #[serde(default)]
    linux: RawLinux,
    #[serde(default)]
    sim: RawSim,
}

/// A configuration error with its place in the file (`line` 0: the file as a whole).
#[derive(Debug)]
pub struct ConfigError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(f, "{}:{}: {}", self.file, self.line, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

/// The daemon's settings (file values over defaults; the command line overrides some).
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The file it came from (`None`: defaults only).
    pub file: Option<PathBuf>,
    pub backend: Backend,
    pub mode: ModeSetting,
    /// `None`: from rc.conf's `hyperv_vf_delay` (at least 2 s).
    pub vf_delay: Option<Duration>,
    pub gate: Option<ReadinessGate>,
    pub resync: Duration,
    pub manage_daemons: bool,
    pub vfup_dir: Option<String>,
    /// `None`: `/etc/rc.conf` as rc reads it on FreeBSD, nothing on Linux.
    pub rc_conf: Option<PathBuf>,
    pub control_socket: PathBuf,
    pub metrics: Option<SocketAddr>,
    pub devd_rules: Option<PathBuf>,
    /// `None`: chosen at start (`devd_run::shell::choose`).
    pub devd_shell: Option<PathBuf>,
    pub action_timeout: Option<Duration>,
    pub log_level: &'static str,
    pub damping: FlapDamping,
    pub retry: Backoff,
}

impl Default for Config {
    fn default() -> Self {
        let m = hvnet_vf::ManagerConfig::default();
        Config {
            file: None,
            backend: BackendTables::default().select(BackendKind::native()),
            mode: ModeSetting::Auto,
            vf_delay: None,
            gate: None,
            resync: m.resync,
            manage_daemons: true,
            vfup_dir: None,
            rc_conf: None,
            control_socket: PathBuf::from(DEFAULT_SOCKET),
            metrics: None,
            devd_rules: None,
            devd_shell: None,
            action_timeout: None,
            log_level: "info",
            damping: m.damping,
            retry: m.retry,
        }
    }
}

fn line_of(text: &str, span: Option<Range<usize>>) -> usize {
    span.map_or(1, |r| {
        text.as_bytes()[..r.start.min(text.len())]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1
    })
}

impl Config {
    /// Read `path`. With `must_exist == false` a missing file gives the defaults.
    pub fn load(path: &Path, must_exist: bool) -> Result<Config, ConfigError> {
        Config::load_for(path, must_exist, None)
    }

    /// Read `path` for `backend` (default: the file's `backend`): that backend's table gives
    /// its settings; the other tables are checked, then left aside.
    pub fn load_for(
        path: &Path,
        must_exist: bool,
        backend: Option<BackendKind>,
    ) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        match std::fs::read_to_string(path) {
            Ok(text) => Config::parse_for(&file, &text, backend).map(|mut c| {
                c.file = Some(path.to_path_buf());
                c
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !must_exist => {
                Ok(Config::parse_for(&file, "", backend)?)
            }
            Err(e) => Err(ConfigError {
                file,
                line: 0,
                message: e.to_string(),
            }),
        }
    }

    /// Parse the text of a configuration file named `file` (for messages).
    pub fn parse(file: &str, text: &str) -> Result<Config, ConfigError> {
        Config::parse_for(file, text, None)
    }

    /// [`Config::parse`] for `backend` (default: the file's `backend`).
    pub fn parse_for(
        file: &str,
        text: &str,
        backend: Option<BackendKind>,
    ) -> Result<Config, ConfigError> {
        let err = |span: Option<Range<usize>>, message: String| ConfigError {
            file: file.to_string(),
            line: line_of(text, span),
            message,
        };
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let msg = e.message().trim().to_string();
            err(e.span(), msg)
        })?;
        // Every duration goes through its range (crate::limits) before it becomes one.
        let dur = |v: &Option<Spanned<f64>>,
                   key: &str,
                   range: limits::Range|
         -> Result<Option<Duration>, ConfigError> {
            v.as_ref()
                .map(|s| {
                    range
                        .seconds(key, *s.get_ref())
                        .map_err(|e| err(Some(s.span()), e))
                })
                .transpose()
        };
        let mut c = Config::default();
        let mut tables = BackendTables::default();
        if let Some(m) = raw.mode {
            c.mode = match m {
                RawMode::Auto => ModeSetting::Auto,
                RawMode::NonTransparent => ModeSetting::NonTransparent,
                RawMode::Transparent => ModeSetting::Transparent,
                RawMode::Steered => ModeSetting::Steered,
            };
        }
        c.vf_delay = dur(&raw.vf_delay, "vf_delay", limits::VF_DELAY)?;
        c.gate =
            match (raw.readiness_file, raw.readiness_command) {
                (Some(f), Some(_)) => {
                    return Err(err(
                        Some(f.span()),
                        "readiness_file and readiness_command: give at most one".into(),
                    ))
                }
                (Some(f), None) if f.get_ref().is_empty() => {
                    return Err(err(Some(f.span()), "readiness_file: empty path".into()))
                }
                (Some(f), None) => Some(ReadinessGate::File(f.into_inner())),
                (None, Some(c)) if c.get_ref().is_empty() => return Err(err(
                    Some(c.span()),
                    "readiness_command: expected [\"PROGRAM\", \"ARG\", ...], found an empty list"
                        .into(),
                )),
                (None, Some(c)) => Some(ReadinessGate::Command(c.into_inner())),
                (None, None) => None,
            };
        if let Some(r) = dur(&raw.resync, "resync", limits::POSITIVE_SECONDS)? {
            c.resync = r;
        }
        if let Some(m) = raw.manage_daemons {
            c.manage_daemons = m;
        }
        c.vfup_dir = raw.vfup_dir;
        c.rc_conf = raw.rc_conf;
        if let Some(s) = raw.control_socket {
            c.control_socket = s;
        }
        if let Some(m) = raw.metrics {
            c.metrics = Some(parse_listen(m.get_ref()).map_err(|e| err(Some(m.span()), e))?);
        }
        c.devd_rules = raw.devd_rules;
        c.devd_shell = raw.devd_shell;
        c.action_timeout = dur(
            &raw.action_timeout,
            "action_timeout",
            limits::POSITIVE_SECONDS,
        )?;
        if let Some(l) = raw.log_level {
            c.log_level = match l {
                RawLevel::Error => "error",
                RawLevel::Warn => "warn",
                RawLevel::Info => "info",
                RawLevel::Debug => "debug",
                RawLevel::Trace => "trace",
            };
        }
        let h = &raw.hold_down;
        if let Some(t) = h.threshold {
            c.damping.threshold = t;
        }
        if let Some(d) = dur(&h.window, "hold_down.window", limits::HOLD_DOWN)? {
            c.damping.window = d;
        }
        if let Some(d) = dur(&h.hold, "hold_down.hold", limits::HOLD_DOWN)? {
            c.damping.hold = d;
        }
        if let Some(d) = dur(&h.max_hold, "hold_down.max_hold", limits::HOLD_DOWN)? {
            c.damping.max_hold = d;
        }
        if c.damping.max_hold < c.damping.hold {
            let span = h.max_hold.as_ref().or(h.hold.as_ref()).map(Spanned::span);
            return Err(err(
                span,
                "hold_down: max_hold must be at least hold".to_string(),
            ));
        }
        if let Some(d) = dur(&raw.retry.initial, "retry.initial", limits::RETRY)? {
            c.retry.initial = d;
        }
        if let Some(d) = dur(&raw.retry.max, "retry.max", limits::RETRY)? {
            c.retry.max = d;
        }
        if c.retry.max < c.retry.initial {
            let span = raw
                .retry
                .max
                .as_ref()
                .or(raw.retry.initial.as_ref())
                .map(Spanned::span);
            return Err(err(span, "retry: max must be at least initial".into()));
        }
        if let Some(s) = raw.freebsd.devd_socket {
            tables.freebsd.devd_socket = s;
        }
        if let Some(r) = raw.freebsd.root {
            tables.freebsd.root = Some(r);
        }
        if let Some(v) = raw.linux.synthetic {
            tables.linux.synthetic = v;
        }
        if let Some(v) = raw.linux.vf {
            tables.linux.vf = v;
        }
        if let Some(s) = raw.linux.sysfs {
            tables.linux.sysfs = s;
        }
        if let Some(s) = raw.sim.scenario {
            tables.sim.scenario = s;
        }
        if let Some(s) = raw.sim.seed {
            tables.sim.seed = s;
        }
        if let Some(s) = &raw.sim.speed {
            tables.sim.speed = limits::SPEED
                .check("sim.speed", *s.get_ref())
                .map_err(|e| err(Some(s.span()), e))?;
        }
        c.backend = tables.select(backend.or(raw.backend).unwrap_or_else(BackendKind::native));
        Ok(c)
    }

    /// The manager's options (rc.conf's `hyperv_vf_delay` when `vf_delay` is not set).
    pub fn manager_config(&self, rc_vf_delay_secs: u64) -> hvnet_vf::ManagerConfig {
        let mut m = hvnet_vf::ManagerConfig::default().with_vf_delay_secs(rc_vf_delay_secs);
        if let Some(d) = self.vf_delay {
            m.vf_delay = d.max(hvnet_vf::config::MIN_VF_DELAY);
        }
        m.mode = self.mode;
        m.damping = self.damping;
        m.retry = self.retry;
        m.manage_daemons = self.manage_daemons;
        if let Some(d) = &self.vfup_dir {
            m.vfup_dir = d.clone();
        }
        m.resync = self.resync;
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_defaults() {
        let c = Config::parse("x.conf", "").unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.metrics, None);
        assert_eq!(c.control_socket, PathBuf::from(DEFAULT_SOCKET));
    }

    #[test]
    fn the_default_socket_is_in_the_run_directory_of_the_os() {
        assert_eq!(Path::new(DEFAULT_SOCKET).parent(), Some(Path::new(RUN_DIR)));
        if cfg!(target_os = "linux") {
            assert_eq!(DEFAULT_SOCKET, "/run/hvnet/hvnet.sock");
        } else {
            assert_eq!(DEFAULT_SOCKET, "/var/run/hvnet.sock");
        }
    }

    #[test]
    fn full_file_parses() {
        let text = r#"
backend = "sim"
mode = "non-transparent"
vf_delay = 5
readiness_command = ["/usr/bin/test", "-e", "/run/ready"]
resync = 2.5
manage_daemons = false
vfup_dir = "/etc/hyperv"
rc_conf = "/etc/rc.conf.test"
control_socket = "/tmp/h.sock"
metrics = "9477"
devd_rules = "/etc/devd/hyperv.conf"
action_timeout = 30
log_level = "debug"
[hold_down]
threshold = 3
window = 30
hold = 5
max_hold = 60
[retry]
initial = 0.1
max = 2
[sim]
scenario = "live-migration"
seed = 7
speed = 10
"#;
        let c = Config::parse("x.conf", text).unwrap();
        assert_eq!(
            c.backend,
            Backend::Sim(SimSettings {
                scenario: "live-migration".into(),
                seed: 7,
                speed: 10.0
            })
        );
        assert_eq!(c.mode, ModeSetting::NonTransparent);
        assert_eq!(c.vf_delay, Some(Duration::from_secs(5)));
        assert!(matches!(c.gate, Some(ReadinessGate::Command(ref v)) if v.len() == 3));
        assert_eq!(c.resync, Duration::from_millis(2500));
        assert_eq!(c.metrics, Some("127.0.0.1:9477".parse().unwrap()));
        assert_eq!(c.damping.threshold, 3);
        assert_eq!(c.retry.max, Duration::from_secs(2));
        let m = c.manager_config(120);
        assert_eq!(m.vf_delay, Duration::from_secs(5));
        assert_eq!(m.vfup_dir, "/etc/hyperv");
        assert!(!m.manage_daemons);
    }

    #[test]
    fn errors_name_file_and_line() {
        for (text, line, needle) in [
            ("backend = \"sim\"\nbogus = 1\n", 2, "unknown field `bogus`"),
            (
                "\n\nvf_delay = 1\n",
                3,
                "vf_delay: expected a number of seconds from 2 to 86400, found 1",
            ),
            ("mode = \"sideways\"\n", 1, "unknown variant"),
            ("\nmetrics = \"nowhere\"\n", 2, "metrics: expected PORT"),
            (
                "readiness_file = \"/a\"\nreadiness_command = [\"b\"]\n",
                1,
                "at most one",
            ),
            ("[sim]\nspeed = 0\n", 2, "sim.speed"),
            ("[hold_down]\nhold = 20\nmax_hold = 10\n", 3, "max_hold"),
            ("x = [\n", 1, ""),
        ] {
            let e = Config::parse("/etc/hvnet.conf", text).unwrap_err();
            let s = e.to_string();
            assert!(
                s.starts_with(&format!("/etc/hvnet.conf:{line}: ")),
                "{text:?}: {s}"
            );
            assert!(s.contains(needle), "{text:?}: {s}");
        }
    }

    /// Every number that becomes a duration or a factor, whatever its value: a clean
    /// `FILE:LINE: key: expected RANGE, found VALUE`, never a panic (1e300 used to abort
    /// `hvnet run` in `Duration::from_secs_f64`).
    #[test]
    fn numbers_out_of_range_are_errors_naming_file_line_key_and_range() {
        let keys = [
            ("", "vf_delay", "from 2 to 86400"),
            ("", "resync", "above 0 and at most 86400"),
            ("", "action_timeout", "above 0 and at most 86400"),
            ("[hold_down]\n", "window", "from 0 to 86400"),
            ("[hold_down]\n", "hold", "from 0 to 86400"),
            ("[hold_down]\n", "max_hold", "from 0 to 86400"),
            ("[retry]\n", "initial", "from 0.001 to 86400"),
            ("[retry]\n", "max", "from 0.001 to 86400"),
            ("[sim]\n", "speed", "above 0 and at most 1000000"),
        ];
        for (table, key, range) in keys {
            let name = match table {
                "" => key.to_string(),
                t => format!("{}.{key}", &t[1..t.len() - 2]),
            };
            for value in ["1e300", "-1", "nan", "inf", "-inf", "1e7", "86401e3"] {
                let text = format!("# comment\n{table}{key} = {value}\n");
                let e = Config::parse("/etc/hvnet.conf", &text)
                    .expect_err(&text)
                    .to_string();
                let line = 2 + usize::from(!table.is_empty());
                let what = if key == "speed" {
                    "a number"
                } else {
                    "a number of seconds"
                };
                let found = match value {
                    "nan" => "NaN",
                    "1e7" => "10000000",
                    "86401e3" => "86401000",
                    v => v,
                };
                assert_eq!(
                    e,
                    format!(
                        "/etc/hvnet.conf:{line}: {name}: expected {what} {range}, found {found}"
                    ),
                    "{text:?}"
                );
            }
        }
    }

    #[test]
    fn the_ends_of_the_ranges_load() {
        let c = Config::parse(
            "x.conf",
            "vf_delay = 86400\nresync = 86400\naction_timeout = 0.001\n\
             [hold_down]\nwindow = 0\nhold = 0\nmax_hold = 86400\n\
             [retry]\ninitial = 0.001\nmax = 86400\n[sim]\nspeed = 1000000\n",
        )
        .unwrap();
        assert_eq!(c.vf_delay, Some(Duration::from_secs(86_400)));
        assert_eq!(c.damping.max_hold, Duration::from_secs(86_400));
        assert_eq!(c.retry.initial, Duration::from_millis(1));
        let sim = Config::parse_for("x.conf", "[sim]\nspeed = 1000000\n", Some(BackendKind::Sim))
            .unwrap();
        assert!(matches!(sim.backend, Backend::Sim(SimSettings { speed, .. }) if speed == 1e6));
    }

    #[test]
    fn the_shipped_example_is_valid_and_all_defaults() {
        let text = include_str!("../../../packaging/hvnet.conf.example");
        let c = Config::parse("hvnet.conf.example", text).unwrap();
        assert_eq!(c, Config::default());
        // Every commented-out setting is valid too.
        let uncommented: String = text
            .lines()
            .map(|l| match l.strip_prefix('#') {
                Some(rest) if rest.contains(" = ") && !rest.starts_with(' ') => rest,
                _ => l,
            })
            .filter(|l| !l.starts_with("readiness_command"))
            .collect::<Vec<_>>()
            .join("\n");
        let c = Config::parse("uncommented", &uncommented).unwrap();
        assert_eq!(c.metrics, Some("127.0.0.1:9477".parse().unwrap()));
        assert!(matches!(c.gate, Some(ReadinessGate::File(_))));
        assert_eq!(c.damping, FlapDamping::default());
    }

    /// The chosen backend carries its own table; the others are checked, not used; a backend
    /// chosen on the command line takes its table from the same file.
    #[test]
    fn each_backend_takes_its_own_table() {
        let text = "backend = \"linux\"\n[linux]\nsynthetic = [\"eth0\"]\nsysfs = \"/tmp/sys\"\n\
                    [freebsd]\nroot = \"/guest\"\n[sim]\nscenario = \"servicing\"\nseed = 3\n";
        let c = Config::parse("x.conf", text).unwrap();
        assert_eq!(
            c.backend,
            Backend::Linux(LinuxSettings {
                synthetic: vec!["eth0".into()],
                sysfs: PathBuf::from("/tmp/sys"),
                ..Default::default()
            })
        );
        let c = Config::parse_for("x.conf", text, Some(BackendKind::Sim)).unwrap();
        assert_eq!(
            c.backend,
            Backend::Sim(SimSettings {
                scenario: "servicing".into(),
                seed: 3,
                ..Default::default()
            })
        );
        let c = Config::parse_for("x.conf", text, Some(BackendKind::Freebsd)).unwrap();
        assert_eq!(
            c.backend,
            Backend::Freebsd(FreebsdSettings {
                root: Some(PathBuf::from("/guest")),
                ..Default::default()
            })
        );
        // A table of a backend not in use is still checked.
        let e = Config::parse("x.conf", "backend = \"linux\"\n[sim]\nspeed = -1\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "x.conf:3: sim.speed: expected a number above 0 and at most 1000000, found -1"
        );
        // Without a file, a backend from the command line gets its defaults.
        let p = Path::new("/nonexistent/hvnet.conf");
        let c = Config::load_for(p, false, Some(BackendKind::Sim)).unwrap();
        assert_eq!(c.backend, Backend::Sim(SimSettings::default()));
        assert_eq!(Config::default().backend.kind(), BackendKind::native());
    }

    #[test]
    fn missing_default_file_is_fine_missing_explicit_file_is_not() {
        let p = Path::new("/nonexistent/hvnet.conf");
        assert_eq!(Config::load(p, false).unwrap(), Config::default());
        assert!(Config::load(p, true).is_err());
    }
}
