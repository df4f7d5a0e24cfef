//! packaging/systemd/hvnet.service against the daemon it starts.
//!
//! The unit runs `hvnet run` with its defaults under `ProtectSystem=strict` and a reduced
//! capability set. Two checks, both reading the unit file:
//! - on paper: every path the daemon writes with its default configuration (the control
//!   socket's directory, the network sysctls) is one the unit leaves writable;
//! - for real (root, a network namespace): the daemon runs with its default paths inside
//!   the unit's file-system sandbox (rebuilt with mount(8) from the unit's directives) and its
//!   capability sets (setpriv(1)), and steers a VF: control socket, tc filters, the BPF gate
//!   and the VF's sysctls all work, with no permission error in its log; and with any one of
//!   the unit's capabilities taken away something stops working, so each one is needed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_hvnet");
const UNIT: &str = "packaging/systemd/hvnet.service";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

// ---------------------------------------------------------------------------------------
// The unit file

/// A systemd unit file: section → key → the assignments in order.
struct Unit(BTreeMap<String, BTreeMap<String, Vec<String>>>);

impl Unit {
    fn load() -> Unit {
        let p = repo().join(UNIT);
        Unit::parse(&std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{UNIT}: {e}")))
    }

    /// systemd.syntax(7): `[Section]`, `Key=Value`, comments with `#` or `;`, a trailing
    /// backslash continues the line.
    fn parse(text: &str) -> Unit {
        let mut sections: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
        let mut section = String::new();
        let mut pending = String::new();
        for (n, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if pending.is_empty() && (line.is_empty() || line.starts_with(['#', ';'])) {
                continue;
            }
            if let Some(cont) = line.strip_suffix('\\') {
                pending.push_str(cont);
                pending.push(' ');
                continue;
            }
            pending.push_str(line);
            let full = std::mem::take(&mut pending);
            if let Some(name) = full.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                section = name.to_string();
                sections.entry(section.clone()).or_default();
                continue;
            }
            let (k, v) = full
                .split_once('=')
                .unwrap_or_else(|| panic!("{UNIT}:{}: not Key=Value: {raw}", n + 1));
            assert!(
                !section.is_empty(),
                "{UNIT}:{}: key before a section",
                n + 1
            );
            sections
                .get_mut(&section)
                .unwrap()
                .entry(k.trim().to_string())
                .or_default()
                .push(v.trim().to_string());
        }
        Unit(sections)
    }

    fn keys(&self, section: &str) -> Vec<String> {
        self.0
            .get(section)
            .map(|s| s.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// The space-separated words of every assignment of a list setting; an empty
    /// assignment resets the list, as systemd does.
    fn words(&self, section: &str, key: &str) -> Vec<String> {
        let mut out = Vec::new();
        for v in self
            .0
            .get(section)
            .and_then(|s| s.get(key))
            .into_iter()
            .flatten()
        {
            if v.is_empty() {
                out.clear();
            }
            out.extend(v.split_whitespace().map(str::to_string));
        }
        out
    }

    /// The last assignment of a single-valued setting.
    fn value(&self, section: &str, key: &str) -> Option<String> {
        self.0
            .get(section)
            .and_then(|s| s.get(key))
            .and_then(|v| v.last().cloned())
    }

    fn flag(&self, section: &str, key: &str) -> bool {
        matches!(
            self.value(section, key).as_deref(),
            Some("yes" | "true" | "on" | "1")
        )
    }
}

/// `[Service]` settings that do not change what the service may write or which
/// capabilities it has.
const NEUTRAL: &[&str] = &[
    "Type",
    "ExecStart",
    "Restart",
    "RestartSec",
    "Environment",
    "RestrictAddressFamilies",
    "RestrictNamespaces",
    "LockPersonality",
    "MemoryDenyWriteExecute",
    "SystemCallArchitectures",
    // Makes the module directories inaccessible and drops CAP_SYS_MODULE: the daemon
    // reads neither and the capability is not in the bounding set anyway.
    "ProtectKernelModules",
];

/// What the service may write and which capabilities it has, as systemd.exec(5) sets it
/// up for the directives the unit uses. A directive it does not model fails the test, so
/// the model cannot silently fall behind the unit.
#[derive(Debug, Clone)]
struct Sandbox {
    /// `RuntimeDirectory=` as paths under /run, made with `RuntimeDirectoryMode=`.
    runtime_dirs: Vec<PathBuf>,
    runtime_mode: String,
    /// `StateDirectory=`, `CacheDirectory=`, `LogsDirectory=` as full paths.
    other_dirs: Vec<PathBuf>,
    read_write: Vec<PathBuf>,
    private_tmp: bool,
    protect_home: bool,
    protect_kernel_tunables: bool,
    protect_control_groups: bool,
    no_new_privileges: bool,
    /// `CapabilityBoundingSet=` / `AmbientCapabilities=`, lower case without `cap_`.
    bounding: Vec<String>,
    ambient: Vec<String>,
}

fn cap_names(words: Vec<String>) -> Vec<String> {
    words
        .iter()
        .map(|w| {
            w.strip_prefix("CAP_")
                .unwrap_or_else(|| panic!("{UNIT}: capability {w:?} is not CAP_..."))
                .to_ascii_lowercase()
        })
        .collect()
}

impl Sandbox {
    fn of(u: &Unit) -> Sandbox {
        const S: &str = "Service";
        let modelled = [
            "ProtectSystem",
            "ProtectHome",
            "ProtectKernelTunables",
            "ProtectControlGroups",
            "PrivateTmp",
            "RuntimeDirectory",
            "RuntimeDirectoryMode",
            "StateDirectory",
            "CacheDirectory",
            "LogsDirectory",
            "ReadWritePaths",
            "NoNewPrivileges",
            "CapabilityBoundingSet",
            "AmbientCapabilities",
        ];
        for k in u.keys(S) {
            assert!(
                modelled.contains(&k.as_str()) || NEUTRAL.contains(&k.as_str()),
                "{UNIT}: [Service] {k}= is not modelled by this test; teach Sandbox::of \
                 what it does to writable paths or capabilities"
            );
        }
        assert_eq!(
            u.value(S, "ProtectSystem").as_deref(),
            Some("strict"),
            "{UNIT}: the unit is meant to run with ProtectSystem=strict"
        );
        let under = |base: &str, key: &str| -> Vec<PathBuf> {
            u.words(S, key)
                .iter()
                .map(|d| Path::new(base).join(d))
                .collect()
        };
        let mut other_dirs = under("/var/lib", "StateDirectory");
        other_dirs.extend(under("/var/cache", "CacheDirectory"));
        other_dirs.extend(under("/var/log", "LogsDirectory"));
        Sandbox {
            runtime_dirs: under("/run", "RuntimeDirectory"),
            runtime_mode: u
                .value(S, "RuntimeDirectoryMode")
                .unwrap_or_else(|| "0755".into()),
            other_dirs,
            read_write: u
                .words(S, "ReadWritePaths")
                .iter()
                .map(|p| PathBuf::from(p.trim_start_matches(['-', '+'])))
                .collect(),
            private_tmp: u.flag(S, "PrivateTmp"),
            protect_home: u.flag(S, "ProtectHome"),
            protect_kernel_tunables: u.flag(S, "ProtectKernelTunables"),
            protect_control_groups: u.flag(S, "ProtectControlGroups"),
            no_new_privileges: u.flag(S, "NoNewPrivileges"),
            bounding: cap_names(u.words(S, "CapabilityBoundingSet")),
            ambient: cap_names(u.words(S, "AmbientCapabilities")),
        }
    }

    /// Whether the service may write at `path` (ProtectSystem=strict: only the API file
    /// systems and the directories the unit names).
    fn writable(&self, path: &Path) -> bool {
        let under = |base: &str| path.starts_with(base);
        let named = self
            .runtime_dirs
            .iter()
            .chain(&self.other_dirs)
            .chain(&self.read_write)
            .any(|d| path.starts_with(d));
        if named {
            return true;
        }
        if self.private_tmp && (under("/tmp") || under("/var/tmp")) {
            return true;
        }
        if self.protect_kernel_tunables && (under("/proc/sys") || under("/sys")) {
            return false;
        }
        if self.protect_control_groups && under("/sys/fs/cgroup") {
            return false;
        }
        under("/dev") || under("/proc") || under("/sys")
    }
}

fn the_sandbox() -> Sandbox {
    Sandbox::of(&Unit::load())
}

// ---------------------------------------------------------------------------------------
// On paper

/// `hvnet run --check` with an empty configuration file: the daemon's defaults.
fn default_settings() -> BTreeMap<String, String> {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("empty.conf");
    std::fs::write(&conf, "").unwrap();
    let out = Command::new(BIN)
        .args(["run", "--check", "-c"])
        .arg(&conf)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn exec_start_runs_the_daemon_with_its_defaults() {
    let u = Unit::load();
    let exec = u.words("Service", "ExecStart");
    assert_eq!(
        exec,
        ["/usr/sbin/hvnet", "run"],
        "{UNIT}: the checks here assume the daemon's own defaults (no -c, no --socket)"
    );
    assert_eq!(u.value("Service", "Type").as_deref(), Some("simple"));
}

#[cfg(target_os = "linux")]
#[test]
fn every_path_the_daemon_writes_by_default_is_writable_under_the_unit() {
    let sb = the_sandbox();
    let settings = default_settings();
    assert_eq!(settings["backend"], "linux");
    assert_eq!(settings["metrics"], "off");
    // The control socket (and anything else the daemon keeps beside it) is created in its
    // directory, which must exist when the service starts: a RuntimeDirectory, mode 0700,
    // owned by root (the unit sets no User=).
    let socket = PathBuf::from(&settings["control_socket"]);
    let dir = socket.parent().unwrap();
    assert!(
        sb.runtime_dirs.iter().any(|d| d == dir),
        "control socket {} is not in a RuntimeDirectory of {UNIT} ({:?})",
        socket.display(),
        sb.runtime_dirs
    );
    assert!(sb.writable(&socket));
    assert_eq!(
        sb.runtime_mode, "0700",
        "the control socket's directory is root-only"
    );
    assert!(
        Unit::load().value("Service", "User").is_none(),
        "a User= would also need the socket rules changed"
    );
    // The Linux backend's only writes outside netlink.
    let sysctl = Path::new(hvnet_linux::netns::NET_SYSCTL_DIR).join("ipv6/conf/vf0/accept_ra");
    assert!(sb.writable(&sysctl), "{} is read-only", sysctl.display());
}

#[test]
fn the_sandbox_model_reads_systemd_semantics() {
    let u = Unit::parse(
        "[Service]\nProtectSystem=strict\nRuntimeDirectory=a b\nStateDirectory=s\n\
         ReadWritePaths=-/srv/x\nPrivateTmp=yes\nProtectKernelTunables=yes\n\
         CapabilityBoundingSet=CAP_NET_ADMIN\nCapabilityBoundingSet=\\\n  CAP_BPF\n\
         CapabilityBoundingSet=\nCapabilityBoundingSet=CAP_NET_RAW\n",
    );
    let sb = Sandbox::of(&u);
    for (p, w) in [
        ("/run/a/x.sock", true),
        ("/run/b", true),
        ("/run/c", false),
        ("/var/run/hvnet.sock", false),
        ("/var/lib/s/db", true),
        ("/srv/x/y", true),
        ("/tmp/t", true),
        ("/etc/hvnet.conf", false),
        ("/proc/sys/net/ipv4/ip_forward", false),
        ("/dev/null", true),
    ] {
        assert_eq!(sb.writable(Path::new(p)), w, "{p}");
    }
    assert_eq!(
        sb.bounding,
        ["net_raw"],
        "an empty assignment resets the list"
    );
}

#[test]
fn bounding_and_ambient_capabilities_are_the_same_set() {
    let sb = the_sandbox();
    assert!(!sb.bounding.is_empty());
    let (mut b, mut a) = (sb.bounding.clone(), sb.ambient.clone());
    b.sort();
    a.sort();
    assert_eq!(
        b, a,
        "{UNIT}: CapabilityBoundingSet and AmbientCapabilities differ"
    );
    assert!(sb.no_new_privileges);
}

// ---------------------------------------------------------------------------------------
// For real

/// Rebuilds the unit's file-system sandbox in a fresh mount namespace (run under
/// `unshare --mount`), then execs the command. Inputs come in the environment, never in the
/// script text. ProtectSystem=strict: every read-write mount becomes read-only except the
/// API file systems; /run is a fresh tmpfs with the RuntimeDirectory entries;
/// ReadWritePaths, the runtime directories and PrivateTmp's /tmp and /var/tmp are mounted
/// writable on top; ProtectHome hides /home and /root.
const SANDBOX_SH: &str = r#"set -eu
mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /run
for d in $SB_RUNTIME_DIRS; do
    mkdir -p "$d"
    chmod "$SB_RUNTIME_MODE" "$d"
done
awk '$6 !~ /(^|,)ro(,|$)/ { print $5 }' /proc/self/mountinfo | sort -u |
while read -r mp; do
    case "$mp" in
    /dev | /dev/* | /proc | /proc/* | /sys | /sys/*) continue ;;
    esac
    [ -d "$mp" ] || continue
    mount -o remount,bind,ro "$mp"
done
if [ -n "$SB_PROTECT_KERNEL_TUNABLES" ]; then
    mount --bind /proc/sys /proc/sys && mount -o remount,bind,ro /proc/sys
    mount -o remount,bind,ro /sys
fi
for p in $SB_RUNTIME_DIRS $SB_READ_WRITE; do
    mount --bind "$p" "$p"
    mount -o remount,bind,rw "$p"
done
if [ -n "$SB_PRIVATE_TMP" ]; then
    mount -t tmpfs -o mode=1777 tmpfs /tmp
    mount -t tmpfs -o mode=1777 tmpfs /var/tmp
fi
if [ -n "$SB_PROTECT_HOME" ]; then
    for h in /home /root /run/user; do
        [ -d "$h" ] && mount -t tmpfs -o mode=0000 tmpfs "$h"
    done
fi
exec "$@"
"#;

fn tools_available() -> Result<(), String> {
    hvnet_linux::netns::lab_available()?;
    for tool in ["unshare", "setpriv", "mount", "awk"] {
        if Command::new(tool).arg("--version").output().is_err() {
            return Err(format!("`{tool}` not found"));
        }
    }
    Ok(())
}

/// What the daemon managed to do in one run.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Outcome {
    /// `hvnet status` answered on the default control socket.
    control_socket: bool,
    /// The VF carries hn0's traffic (tc redirect filters in place).
    steered: bool,
    /// The BPF steering gate sits in front of the redirect.
    gate: bool,
    /// The VF's IPv6 is off (the backend's sysctl writes).
    vf_sysctls: bool,
    /// Permission errors in the daemon's log (debug level).
    permission_errors: Vec<String>,
}

const PERMISSION_ERRORS: &[&str] = &[
    "Operation not permitted",
    "Permission denied",
    "Read-only file system",
];

/// One daemon run: a namespace with hn0 and, once the daemon is up, a VF (veth pairs with
/// the same MAC, roles by name); the daemon with the unit's sandbox and `caps`.
fn run_in_sandbox(sb: &Sandbox, caps: &[String], tag: &str, conf: &Path) -> (Outcome, String) {
    use hvnet_linux::netns::{self, ip, Namespaces};
    let ns = format!("hvu-{}-{tag}", std::process::id());
    let mut guard = Namespaces::new();
    guard.add(&ns).unwrap();
    let veth = |name: &str, peer: &str| {
        ip(
            Some(&ns),
            &[
                "link",
                "add",
                name,
                "address",
                "02:00:00:00:01:01",
                "type",
                "veth",
                "peer",
                "name",
                peer,
            ],
        )
        .unwrap();
        for l in [name, peer] {
            ip(Some(&ns), &["link", "set", l, "up"]).unwrap();
        }
    };
    veth("hn0", "hhn");
    ip(Some(&ns), &["addr", "add", "198.18.7.2/24", "dev", "hn0"]).unwrap();

    let log_path = conf.with_file_name(format!("daemon-{tag}.log"));
    let set = if caps.is_empty() {
        "-all".to_string()
    } else {
        format!("-all,+{}", caps.join(",+"))
    };
    let ambient: Vec<&String> = sb.ambient.iter().filter(|c| caps.contains(c)).collect();
    let ambient_set = if ambient.is_empty() {
        "-all".to_string()
    } else {
        format!(
            "-all,+{}",
            ambient
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(",+")
        )
    };
    let words = |v: &[PathBuf]| {
        v.iter()
            .map(|p| {
                let s = p.to_str().unwrap();
                assert!(!s.contains(char::is_whitespace), "{s}");
                s.to_string()
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    let yes = |b: bool| if b { "1" } else { "" };
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &ns, "unshare", "--mount", "--propagation"])
        .args(["private", "sh", "-c", SANDBOX_SH, "sandbox", "setpriv"])
        .args(["--bounding-set", &set, "--inh-caps", &set])
        .args(["--ambient-caps", &ambient_set]);
    if sb.no_new_privileges {
        cmd.arg("--no-new-privs");
    }
    cmd.args([BIN, "run", "-c"])
        .arg(conf)
        .env("SB_RUNTIME_DIRS", words(&sb.runtime_dirs))
        .env("SB_RUNTIME_MODE", &sb.runtime_mode)
        .env("SB_READ_WRITE", words(&sb.read_write))
        .env("SB_PRIVATE_TMP", yes(sb.private_tmp))
        .env("SB_PROTECT_HOME", yes(sb.protect_home))
        .env(
            "SB_PROTECT_KERNEL_TUNABLES",
            yes(sb.protect_kernel_tunables),
        )
        // Debug, so that a permission error logged only there is seen too.
        .env("RUST_LOG", "debug")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path).unwrap());
    let child = Daemon(cmd.spawn().expect("ip netns exec ... hvnet run"));
    let log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    // The daemon's default socket, seen through its own mount namespace.
    let socket = PathBuf::from(format!(
        "/proc/{}/root{}",
        child.0.id(),
        hvnet_default_socket()
    ));
    let status = || -> Option<serde_json::Value> {
        let out = Command::new(BIN)
            .args(["status", "--json", "--socket"])
            .arg(&socket)
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| serde_json::from_slice(&out.stdout).ok())
            .flatten()
    };
    let wait = |limit: Duration, pred: &dyn Fn(&serde_json::Value) -> bool| {
        let t = Instant::now();
        while t.elapsed() < limit {
            if let Some(s) = status() {
                if pred(&s) {
                    return Some(s);
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    };
    let pair = |s: &serde_json::Value| s["pairs"][0].clone();
    let up = wait(Duration::from_secs(20), &|s| pair(s)["synthetic"] == "hn0");
    let mut steered = false;
    if up.is_some() {
        veth("vf0", "hvf");
        // The VF waits 2 s (the minimum delay), then carries the traffic.
        steered = wait(Duration::from_secs(12), &|s| pair(s)["path"] == "vf").is_some();
    } else {
        veth("vf0", "hvf");
        std::thread::sleep(Duration::from_secs(4));
    }
    let tc = netns::run(
        "ip",
        &[
            "netns", "exec", &ns, "tc", "filter", "show", "dev", "hn0", "egress",
        ],
    )
    .unwrap_or_default();
    let sysctl = netns::run(
        "ip",
        &[
            "netns",
            "exec",
            &ns,
            "cat",
            "/proc/sys/net/ipv6/conf/vf0/disable_ipv6",
        ],
    )
    .unwrap_or_default();
    drop(child);
    let text = log();
    let outcome = Outcome {
        control_socket: up.is_some(),
        steered: steered && tc.contains("Redirect to device vf0"),
        gate: tc.contains("hvnet_gate"),
        vf_sysctls: sysctl.trim() == "1",
        permission_errors: text
            .lines()
            .filter(|l| PERMISSION_ERRORS.iter().any(|e| l.contains(e)))
            .map(str::to_string)
            .collect(),
    };
    guard.teardown();
    (outcome, text)
}

/// The default control socket of this build (what `hvnet run --check` reports).
fn hvnet_default_socket() -> String {
    default_settings()["control_socket"].clone()
}

/// The daemon process; SIGTERM and reaped when dropped.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.0.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[cfg(target_os = "linux")]
#[test]
fn the_daemon_runs_in_the_units_sandbox_and_needs_each_of_its_capabilities() {
    if let Err(why) = tools_available() {
        if std::env::var_os("HVNET_TEST_STRICT").is_some() {
            panic!("SKIPPED the_daemon_runs_in_the_units_sandbox_and_needs_each_of_its_capabilities: {why}");
        }
        eprintln!("SKIPPED the_daemon_runs_in_the_units_sandbox_and_needs_each_of_its_capabilities: {why}");
        return;
    }
    let sb = the_sandbox();
    // Outside /tmp: PrivateTmp hides it. Only the mode: every path stays the default.
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let conf = dir.path().join("hvnet.conf");
    std::fs::write(&conf, "mode = \"steered\"\n").unwrap();

    // The unit's set, and each one-fewer set, side by side (each in its own namespace).
    let mut sets = vec![("unit".to_string(), sb.bounding.clone())];
    for c in &sb.bounding {
        let fewer: Vec<String> = sb.bounding.iter().filter(|x| *x != c).cloned().collect();
        sets.push((format!("no-{}", c.replace('_', "")), fewer));
    }
    let results: Vec<(String, Outcome, String)> = std::thread::scope(|s| {
        let handles: Vec<_> = sets
            .iter()
            .map(|(tag, caps)| {
                let (sb, conf) = (&sb, &conf);
                s.spawn(move || {
                    let (o, log) = run_in_sandbox(sb, caps, tag, conf);
                    (tag.clone(), o, log)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let (_, full, log) = &results[0];
    assert_eq!(
        *full,
        Outcome {
            control_socket: true,
            steered: true,
            gate: true,
            vf_sysctls: true,
            permission_errors: vec![],
        },
        "under {UNIT} (capabilities {:?}) the daemon could not do all its work; log:\n{log}",
        sb.bounding
    );
    for ((tag, fewer, log), cap) in results[1..].iter().zip(&sb.bounding) {
        assert_ne!(
            fewer,
            full,
            "{tag}: without CAP_{} the daemon does everything it does with it: drop it from \
             {UNIT}; log:\n{log}",
            cap.to_uppercase()
        );
        eprintln!("without CAP_{}: {fewer:?}", cap.to_uppercase());
    }
}
