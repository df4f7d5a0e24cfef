//! The FreeBSD packaging (packaging/freebsd) and the man pages (docs/hvnet.8,
//! docs/hvnet.conf.5) against the code they describe: the devd rules load and win over
//! hyperv.conf, their actions quote event values and defer to a running daemon, the rc.d
//! script starts `hvnet run` under daemon(8) with the flags in the right place, the port's
//! plist and crate list match the install plan and Cargo.lock, and the man pages cover every
//! subcommand, option and configuration key the binary has.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The repository's devd corpus (testdata/devd/corpus).
fn corpus() -> PathBuf {
    repo().join("testdata/devd/corpus")
}

fn read(rel: &str) -> String {
    let p = repo().join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn hvnet(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hvnet"))
        .args(args)
        .output()
        .expect("running hvnet")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

const DEVD_CONF: &str = "packaging/freebsd/devd/hvnet.conf";
const RC_SCRIPT: &str = "packaging/freebsd/rc.d/hvnet";
const PORT: &str = "packaging/freebsd/port";
const SAMPLE: &str = "packaging/freebsd/hvnet.conf.sample";

// ---------------------------------------------------------------------------------------
// devd rules

/// Say on stderr that a test is skipped, and why; under HVNET_TEST_STRICT (which .ci/run
/// sets) fail instead, so CI never passes a test it did not run.
fn skip(why: &str) {
    if std::env::var_os("HVNET_TEST_STRICT").is_some() {
        panic!("SKIPPED {why} (HVNET_TEST_STRICT is set)");
    }
    eprintln!("SKIPPED {why}");
}
#[test]
fn devd_rules_load_strictly_without_warnings() {
    let f = repo().join(DEVD_CONF);
    let o = hvnet(&[
        "devd",
        "check",
        "--strict",
        "--json",
        "-f",
        f.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["rules"]["notify"], 6, "{v}");
    assert_eq!(v["rules"]["total"], 6, "{v}");
    assert_eq!(v["warnings"].as_array().unwrap().len(), 0, "{v}");
}

/// A FreeBSD system's devd configuration: the corpus devd.conf with every corpus file in
/// /etc/devd and, optionally, hvnet's rules in /usr/local/etc/devd.
struct System {
    _dir: tempfile::TempDir,
    etc_devd: PathBuf,
    local_devd: PathBuf,
}

impl System {
    fn new(with_hvnet: bool) -> System {
        let dir = tempfile::tempdir().unwrap();
        let etc_devd = dir.path().join("etc/devd");
        let local_devd = dir.path().join("usr/local/etc/devd");
        std::fs::create_dir_all(&etc_devd).unwrap();
        std::fs::create_dir_all(&local_devd).unwrap();
        for e in std::fs::read_dir(corpus()).unwrap() {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_str().unwrap().to_string();
            if p.is_file() && name.ends_with(".conf") && name != "devd.conf" {
                std::fs::copy(&p, etc_devd.join(&name)).unwrap();
            }
        }
        if with_hvnet {
            std::fs::copy(repo().join(DEVD_CONF), local_devd.join("hvnet.conf")).unwrap();
        }
        System {
            _dir: dir,
            etc_devd,
            local_devd,
        }
    }

    /// `hvnet devd match --json` for `events`: one decision per event.
    fn decide(&self, events: &[&str]) -> Vec<serde_json::Value> {
        let main = corpus().join("devd.conf");
        let etc = format!("/etc/devd={}", self.etc_devd.display());
        let local = format!("/usr/local/etc/devd={}", self.local_devd.display());
        let mut args = vec![
            "devd",
            "match",
            "--json",
            "-f",
            main.to_str().unwrap(),
            "--dir-map",
            &etc,
            "--dir-map",
            &local,
            "--media",
            "hn0=ethernet",
            "--media",
            "mce0=ethernet",
        ];
        args.extend_from_slice(events);
        let o = hvnet(&args);
        assert!(o.status.success(), "{}", text(&o.stderr));
        let lines: Vec<serde_json::Value> = text(&o.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), events.len());
        lines
    }
}

const VF_UP: &str = "!system=HYPERV_NIC_VF subsystem=hn0 type=VF_UP";
const IFATTACH: &str = "!system=ETHERNET subsystem=mce0 type=IFATTACH";
const KVP_CREATE: &str = "!system=DEVFS subsystem=CDEV type=CREATE cdev=hv_kvp_dev";
const KVP_DESTROY: &str = "!system=DEVFS subsystem=CDEV type=DESTROY cdev=hv_kvp_dev";
const VSS_CREATE: &str = "!system=DEVFS subsystem=CDEV type=CREATE cdev=hv_fsvss_dev";
const VSS_DESTROY: &str = "!system=DEVFS subsystem=CDEV type=DESTROY cdev=hv_fsvss_dev";
const IFNET_ATTACH: &str = "!system=IFNET subsystem=mce0 type=ATTACH";
const LINK_UP: &str = "!system=IFNET subsystem=hn0 type=LINK_UP";

fn matched_file(d: &serde_json::Value) -> String {
    d["matched"]["file"]
        .as_str()
        .unwrap_or("(none)")
        .to_string()
}

fn actions(d: &serde_json::Value) -> Vec<String> {
    d["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn devd_rules_take_the_hyperv_events_from_the_scripts() {
    let events = [
        VF_UP,
        IFATTACH,
        KVP_CREATE,
        KVP_DESTROY,
        VSS_CREATE,
        VSS_DESTROY,
    ];
    // Without hvnet's file: hyperv.conf runs the scripts and daemons.
    let before = System::new(false).decide(&events);
    let script_actions = [
        "/usr/libexec/hyperv/hyperv_vfup $'hn0'",
        "/usr/libexec/hyperv/hyperv_vfattach $'mce0' 0",
        "/usr/sbin/hv_kvp_daemon",
        "pkill -x hv_kvp_daemon",
        "/usr/sbin/hv_vss_daemon",
        "pkill -x hv_vss_daemon",
    ];
    for (d, want) in before.iter().zip(script_actions) {
        assert!(matched_file(d).ends_with("etc/devd/hyperv.conf"), "{d}");
        assert_eq!(actions(d), vec![want.to_string()], "{d}");
    }

    // With it: hvnet's rules win, at priority 20; the network events go to hvnet, and the
    // helper daemons are started as hyperv.conf starts them unless hvnet's daemon runs.
    let after = System::new(true).decide(&events);
    let guard = "pgrep -q -L -F /var/run/hvnet.pid 2>/dev/null || exec ";
    let hvnet_actions = [
        "/usr/local/sbin/hvnet vfup $'hn0'",
        "/usr/local/sbin/hvnet vfattach $'mce0' 0",
        "/usr/sbin/hv_kvp_daemon",
        "pkill -x hv_kvp_daemon",
        "/usr/sbin/hv_vss_daemon",
        "pkill -x hv_vss_daemon",
    ];
    for (d, want) in after.iter().zip(hvnet_actions) {
        assert!(
            matched_file(d).ends_with("usr/local/etc/devd/hvnet.conf"),
            "{d}"
        );
        assert_eq!(d["matched"]["priority"], 20, "{d}");
        assert_eq!(actions(d), vec![format!("{guard}{want}")], "{d}");
        assert!(!actions(d)[0].contains("/usr/libexec/hyperv"), "{d}");
    }

    // Everything else is left alone: devd.conf's pccard_ether and dhclient rules.
    let with = System::new(true).decide(&[IFNET_ATTACH, LINK_UP]);
    let without = System::new(false).decide(&[IFNET_ATTACH, LINK_UP]);
    for (a, b) in with.iter().zip(&without) {
        assert_eq!(actions(a), actions(b));
        assert_eq!(a["matched"]["priority"], b["matched"]["priority"]);
        assert!(!matched_file(a).ends_with("hvnet.conf"), "{a}");
    }
    assert_eq!(
        actions(&with[0]),
        vec!["/etc/pccard_ether $'mce0' start".to_string()]
    );
}

fn find_in_path(prog: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(prog))
            .find(|p| p.is_file())
    })
}

fn write_script(path: &Path, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, body).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// The expanded actions, run as devd runs them (`sh -c`), with pgrep and hvnet replaced by
/// fakes that record their arguments: a hostile interface name reaches hvnet as one
/// argument, and nothing runs while the daemon's pid file is locked.
#[test]
fn devd_actions_quote_event_values_and_defer_to_a_running_daemon() {
    // devd quotes values as $'…', which FreeBSD's sh and bash understand (dash before
    // 0.5.13 does not), so the actions are run with bash here.
    let Some(bash) = find_in_path("bash") else {
        skip("devd_actions_quote_event_values...: no bash on PATH");
        return;
    };
    let hostile = "x';touch${IFS}pwned;'$(touch${IFS}pwned2)`touch${IFS}pwned3`";
    let event = format!("!system=ETHERNET subsystem={hostile} type=IFATTACH");
    let d = System::new(true).decide(&[VF_UP, &event]);
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let log = dir.path().join("log");
    write_script(
        &bin.join("pgrep"),
        &format!(
            "#!/bin/sh\necho \"pgrep $*\" >> '{}'\necho 'pgrep: no pid file' >&2\nexit \"$FAKE_PGREP_STATUS\"\n",
            log.display()
        ),
    );
    let fake_hvnet = bin.join("hvnet");
    write_script(
        &fake_hvnet,
        &format!(
            "#!/bin/sh\nfor a in \"$@\"; do echo \"arg:$a\"; done >> '{}'\n",
            log.display()
        ),
    );
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let run = |action: &str, pgrep_status: &str| -> Vec<String> {
        let _ = std::fs::remove_file(&log);
        let action = action.replace("/usr/local/sbin/hvnet", fake_hvnet.to_str().unwrap());
        let o = Command::new(&bash)
            .args(["-c", &action])
            .current_dir(dir.path())
            .env("PATH", &path)
            .env("FAKE_PGREP_STATUS", pgrep_status)
            .output()
            .unwrap();
        assert!(o.status.success(), "{action}: {}", text(&o.stderr));
        // pgrep's complaint about a missing pid file does not reach devd's output.
        assert_eq!(text(&o.stderr), "", "{action}");
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    };
    let pgrep = "pgrep -q -L -F /var/run/hvnet.pid".to_string();
    // No daemon (pgrep finds no locked pid file): hvnet runs, with the exact arguments.
    assert_eq!(
        run(&actions(&d[0])[0], "1"),
        vec![pgrep.clone(), "arg:vfup".into(), "arg:hn0".into()]
    );
    assert_eq!(
        run(&actions(&d[1])[0], "2"),
        vec![
            pgrep.clone(),
            "arg:vfattach".into(),
            format!("arg:{hostile}"),
            "arg:0".into()
        ]
    );
    for f in ["pwned", "pwned2", "pwned3"] {
        assert!(!dir.path().join(f).exists(), "the event value ran: {f}");
    }
    // The daemon runs: the rule does nothing else.
    assert_eq!(run(&actions(&d[0])[0], "0"), vec![pgrep.clone()]);
    assert_eq!(run(&actions(&d[1])[0], "0"), vec![pgrep]);
}

#[test]
fn devd_rules_test_the_pid_file_the_rc_script_writes() {
    let vars = rc_vars();
    let devd = read(DEVD_CONF);
    let guard = format!("pgrep -q -L -F {} 2>/dev/null || exec ", vars["pidfile"]);
    let actions: Vec<&str> = devd
        .lines()
        .filter_map(|l| l.trim().strip_prefix("action \""))
        .collect();
    assert_eq!(actions.len(), 6);
    for a in actions {
        assert!(a.starts_with(&guard), "{a}");
    }
    // The program the rc.d script runs (rc_vars replaces it to run the real binary).
    let rc = read(RC_SCRIPT);
    let command = rc
        .lines()
        .find_map(|l| l.strip_prefix("command=\""))
        .and_then(|l| l.strip_suffix('"'))
        .expect("command= in the rc.d script");
    assert_eq!(command, "/usr/local/sbin/hvnet");
    assert!(devd.contains(&format!("exec {command} vfup $subsystem\"")));
    assert!(devd.contains(&format!("exec {command} vfattach $subsystem 0\"")));
}

// ---------------------------------------------------------------------------------------
// rc.d script

#[test]
fn rc_script_is_valid_sh_and_the_port_carries_the_same_script() {
    let rc = read(RC_SCRIPT);
    let o = Command::new("sh")
        .args(["-n", repo().join(RC_SCRIPT).to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "sh -n: {}", text(&o.stderr));
    for needle in [
        "# PROVIDE: hvnet\n",
        "# REQUIRE: netif devd\n",
        "# KEYWORD: nojail shutdown\n",
        "\nname=hvnet\n",
        "\nrcvar=hvnet_enable\n",
        ": ${hvnet_flags:=\"\"}",
        "\nrun_rc_command \"$1\"\n",
    ] {
        assert!(rc.contains(needle), "rc.d script lacks {needle:?}");
    }
    // USE_RC_SUBR installs files/hvnet.in with %%PREFIX%% substituted.
    let port_copy = read(&format!("{PORT}/files/hvnet.in"));
    assert!(
        port_copy.replace("%%PREFIX%%", "/usr/local") == rc,
        "files/hvnet.in is not packaging/freebsd/rc.d/hvnet with /usr/local as %%PREFIX%%: \
         regenerate it with sed 's|/usr/local|%%PREFIX%%|g'"
    );
    assert!(!port_copy.contains("/usr/local"));
}

/// The rc.d script under a minimal stand-in for rc.subr, with daemon(8) replaced by a fake
/// that records its arguments. Returns the recorded argv (None if daemon was not run), the
/// exit status and stderr.
fn rc_start(vars: &str, arg: &str) -> (Option<Vec<String>>, bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let subr = dir.path().join("rc.subr");
    std::fs::write(
        &subr,
        r#"
load_rc_config() { if [ -n "$FAKE_RC_CONF" ]; then . "$FAKE_RC_CONF"; fi; }
check_startmsgs() { return 0; }
check_pidfile() { return 0; }
run_rc_command() {
	eval rc_flags=\$${name}_flags
	case "$1" in
	start) eval "$start_precmd" || return 1; eval "$start_cmd" ;;
	configtest) eval "$configtest_cmd" ;;
	vars) echo "name=$name"; echo "rcvar=$rcvar"; echo "pidfile=$pidfile";
	      echo "procname=$procname"; echo "command=$command";
	      echo "child=$hvnet_child_pidfile"; echo "extra=$extra_commands" ;;
	*) echo "fake rc.subr: $1" >&2; return 2 ;;
	esac
}
"#,
    )
    .unwrap();
    let out = dir.path().join("daemon.argv");
    let daemon = dir.path().join("daemon");
    write_script(
        &daemon,
        &format!("#!/bin/sh\nprintf '%s\\n' \"$@\" > '{}'\n", out.display()),
    );
    let rc_conf = dir.path().join("rc.conf");
    std::fs::write(&rc_conf, vars).unwrap();
    let script = read(RC_SCRIPT)
        .replace(". /etc/rc.subr", &format!(". '{}'", subr.display()))
        .replace("/usr/sbin/daemon", daemon.to_str().unwrap())
        .replace("/usr/local/sbin/hvnet", env!("CARGO_BIN_EXE_hvnet"));
    let script_path = dir.path().join("hvnet");
    write_script(&script_path, &script);
    let o = Command::new("sh")
        .arg(&script_path)
        .arg(arg)
        .env("FAKE_RC_CONF", &rc_conf)
        .output()
        .unwrap();
    let argv = std::fs::read_to_string(&out)
        .ok()
        .map(|s| s.lines().map(str::to_string).collect());
    let argv = if arg == "vars" {
        Some(text(&o.stdout).lines().map(str::to_string).collect())
    } else {
        argv
    };
    (argv, o.status.success(), text(&o.stderr))
}

fn rc_vars() -> BTreeMap<String, String> {
    let (lines, ok, err) = rc_start("", "vars");
    assert!(ok, "{err}");
    lines
        .unwrap()
        .iter()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn rc_script_runs_hvnet_run_under_daemon_with_the_flags_after_run() {
    let vars = rc_vars();
    assert_eq!(vars["name"], "hvnet");
    assert_eq!(vars["rcvar"], "hvnet_enable");
    assert_eq!(vars["pidfile"], "/var/run/hvnet.pid");
    assert_eq!(vars["child"], "/var/run/hvnet.child.pid");
    assert_eq!(vars["command"], env!("CARGO_BIN_EXE_hvnet"));
    assert!(vars["procname"].ends_with("/daemon"), "{vars:?}");
    assert_eq!(vars["extra"], "configtest reload");

    let bin = env!("CARGO_BIN_EXE_hvnet");
    let supervisor = [
        "-f",
        "-r",
        "-S",
        "-T",
        "hvnet",
        "-t",
        "hvnet",
        "-P",
        "/var/run/hvnet.pid",
        "-p",
        "/var/run/hvnet.child.pid",
        bin,
        "run",
    ];
    let expect = |extra: &[&str]| -> Vec<String> {
        supervisor
            .iter()
            .chain(extra)
            .map(|s| s.to_string())
            .collect()
    };

    // Defaults: hvnet's own default configuration, no extra flags.
    let (argv, ok, err) = rc_start("", "start");
    assert!(ok, "{err}");
    assert_eq!(argv.unwrap(), expect(&[]));

    // hvnet_config and hvnet_flags go to `hvnet run`, not to daemon(8); the configuration
    // is checked first with the real binary.
    let sample = repo().join(SAMPLE);
    let (argv, ok, err) = rc_start(
        &format!(
            "hvnet_config=\"{}\"\nhvnet_flags=\"--metrics 9477\"\n",
            sample.display()
        ),
        "start",
    );
    assert!(ok, "{err}");
    assert_eq!(
        argv.unwrap(),
        expect(&["-c", sample.to_str().unwrap(), "--metrics", "9477"])
    );

    // A bad configuration stops the start before daemon(8) runs.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("hvnet.conf");
    std::fs::write(&bad, "resync = 10\nno_such_key = 1\n").unwrap();
    let (argv, ok, err) = rc_start(&format!("hvnet_config=\"{}\"\n", bad.display()), "start");
    assert!(!ok);
    assert!(argv.is_none(), "daemon ran with a bad configuration");
    assert!(err.contains(&format!("{}:2:", bad.display())), "{err}");
    let (_, ok, err) = rc_start(
        &format!("hvnet_config=\"{}\"\n", bad.display()),
        "configtest",
    );
    assert!(!ok && err.contains("no_such_key"), "{err}");
}

// ---------------------------------------------------------------------------------------
// The port

/// `post-install` lines of the port Makefile, continuation lines joined.
fn post_install() -> Vec<String> {
    let mk = read(&format!("{PORT}/Makefile"));
    let mut cmds = Vec::new();
    let mut in_target = false;
    let mut cur = String::new();
    for line in mk.lines() {
        if line.starts_with("post-install:") {
            in_target = true;
            continue;
        }
        if !in_target {
            continue;
        }
        if !line.starts_with('\t') {
            break;
        }
        cur.push_str(line.trim().trim_end_matches('\\'));
        cur.push(' ');
        if !line.ends_with('\\') {
            cmds.push(cur.split_whitespace().collect::<Vec<_>>().join(" "));
            cur.clear();
        }
    }
    cmds
}

fn makefile_var(name: &str) -> String {
    let mk = read(&format!("{PORT}/Makefile"));
    mk.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("port Makefile has no {name}"))
        .trim()
        .to_string()
}

#[test]
fn port_plist_is_the_install_plan_and_its_sources_exist() {
    for var in [
        "PORTNAME",
        "DISTVERSION",
        "CATEGORIES",
        "MAINTAINER",
        "COMMENT",
        "WWW",
        "LICENSE",
    ] {
        assert!(!makefile_var(var).is_empty(), "{var}");
    }
    assert_eq!(makefile_var("USES"), "cargo");
    assert!(
        makefile_var("COMMENT").len() <= 70,
        "portlint: COMMENT too long"
    );
    assert_eq!(makefile_var("SUB_FILES"), "pkg-message");
    assert!(repo().join(PORT).join("files/pkg-message.in").is_file());
    assert_eq!(makefile_var("CATEGORIES"), "net");
    assert_eq!(
        makefile_var("DISTVERSION"),
        env!("CARGO_PKG_VERSION"),
        "the port's DISTVERSION is not the crate version"
    );
    // cargo install builds the crate CARGO_INSTALL_PATH names, whose binary is hvnet.
    let install_path = makefile_var("CARGO_INSTALL_PATH");
    let cargo_toml = read(&format!("{install_path}/Cargo.toml"));
    assert!(
        cargo_toml.contains("[[bin]]\nname = \"hvnet\""),
        "{install_path}"
    );
    // USE_RC_SUBR=hvnet installs files/hvnet.in as etc/rc.d/hvnet.
    assert_eq!(makefile_var("USE_RC_SUBR"), "hvnet");
    assert!(repo().join(PORT).join("files/hvnet.in").is_file());

    // What post-install puts in the stage directory, and from where.
    let stage = "${STAGEDIR}${PREFIX}/";
    let mut installed: BTreeMap<String, String> = BTreeMap::new();
    for cmd in post_install() {
        let words: Vec<&str> = cmd.split(' ').collect();
        match words[0] {
            "${INSTALL_DATA}" | "${INSTALL_MAN}" | "${INSTALL_SCRIPT}" => {
                let src = words[1].strip_prefix("${WRKSRC}/").expect(&cmd);
                let dst = words[2].strip_prefix(stage).expect(&cmd);
                let file = Path::new(src).file_name().unwrap().to_str().unwrap();
                let dst = if dst.starts_with("share/man/") && !dst.ends_with(file) {
                    format!("{dst}/{file}")
                } else {
                    dst.to_string()
                };
                installed.insert(dst, src.to_string());
            }
            "${MV}" => {
                let from = words[1].strip_prefix(stage).expect(&cmd);
                let to = words[2].strip_prefix(stage).expect(&cmd);
                assert_eq!(from, "bin/hvnet", "cargo install puts the binary in bin/");
                installed.insert(to.to_string(), format!("{install_path} (cargo install)"));
            }
            "${MKDIR}" | "${STRIP_CMD}" => {}
            other => panic!("post-install: unexpected command {other}"),
        }
    }
    for (dst, src) in &installed {
        if !src.ends_with("(cargo install)") {
            assert!(
                repo().join(src).is_file(),
                "post-install installs {dst} from {src}, which is not in the tree"
            );
        }
    }
    // pkg-plist: exactly those files (man pages gzipped by the framework).
    let plist: BTreeSet<String> = read(&format!("{PORT}/pkg-plist"))
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f = l.strip_prefix("@sample ").unwrap_or(l);
            if f.starts_with("share/man/") {
                f.strip_suffix(".gz")
                    .expect("man pages are listed .gz")
                    .to_string()
            } else {
                f.to_string()
            }
        })
        .collect();
    let planned: BTreeSet<String> = installed.keys().cloned().collect();
    assert_eq!(plist, planned, "pkg-plist and post-install disagree");
    // The rc.d script, devd rules and sample are what this tree ships.
    assert_eq!(installed["etc/devd/hvnet.conf"], DEVD_CONF);
    assert_eq!(installed["etc/hvnet.conf.sample"], SAMPLE);
    assert_eq!(installed["share/man/man8/hvnet.8"], "docs/hvnet.8");
    assert_eq!(
        installed["share/man/man5/hvnet.conf.5"],
        "docs/hvnet.conf.5"
    );
    assert!(installed.contains_key("sbin/hvnet"));
    // The files post-patch rewrites for PREFIX exist.
    let mk = read(&format!("{PORT}/Makefile"));
    for w in mk.split_whitespace() {
        if let Some(rel) = w.strip_prefix("${WRKSRC}/") {
            assert!(repo().join(rel).is_file(), "Makefile names {rel}");
        }
    }
    for f in ["pkg-descr", "README.md", "Makefile.crates"] {
        assert!(repo().join(PORT).join(f).is_file(), "{f}");
    }
}

/// Every crates.io package of Cargo.lock, as `name-version` (what `make cargo-crates`
/// lists).
fn lock_crates() -> BTreeSet<String> {
    let lock = read("Cargo.lock");
    let mut out = BTreeSet::new();
    for pkg in lock.split("[[package]]").skip(1) {
        let field = |k: &str| {
            pkg.lines()
                .find_map(|l| l.strip_prefix(&format!("{k} = \"")))
                .map(|v| v.trim_end_matches('"').to_string())
        };
        if field("source").is_some_and(|s| s.starts_with("registry+")) {
            out.insert(format!(
                "{}-{}",
                field("name").unwrap(),
                field("version").unwrap()
            ));
        }
    }
    out
}

#[test]
fn port_crates_are_the_crates_io_packages_of_cargo_lock() {
    let mk = read(&format!("{PORT}/Makefile.crates"));
    let body = mk
        .strip_prefix("CARGO_CRATES=")
        .expect("Makefile.crates starts with CARGO_CRATES=");
    let listed: Vec<String> = body
        .split_whitespace()
        .filter(|w| *w != "\\")
        .map(str::to_string)
        .collect();
    let set: BTreeSet<String> = listed.iter().cloned().collect();
    assert_eq!(set.len(), listed.len(), "duplicates in CARGO_CRATES");
    let lock = lock_crates();
    let missing: Vec<_> = lock.difference(&set).collect();
    let extra: Vec<_> = set.difference(&lock).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "packaging/freebsd/port/Makefile.crates is out of date with Cargo.lock \
         (regenerate it as packaging/freebsd/port/README.md says): \
         missing {missing:?}, not in Cargo.lock {extra:?}"
    );
}

// ---------------------------------------------------------------------------------------
// Man pages

/// Subcommands `hvnet [PREFIX] --help` lists (without `help`).
fn subcommands(prefix: &[&str]) -> Vec<String> {
    let mut args = prefix.to_vec();
    args.push("--help");
    let o = hvnet(&args);
    assert!(o.status.success());
    let help = text(&o.stdout);
    let mut out = Vec::new();
    let mut inside = false;
    for line in help.lines() {
        if line == "Commands:" {
            inside = true;
            continue;
        }
        if inside {
            let Some(name) = line
                .strip_prefix("  ")
                .and_then(|l| l.split_whitespace().next())
            else {
                break;
            };
            if name != "help" {
                out.push(name.to_string());
            }
        }
    }
    assert!(!out.is_empty(), "no commands in {help}");
    out
}

/// Options of `hvnet CMD... --help`: (short letter, long name) without -h/-V.
fn options(cmd: &[&str]) -> Vec<(Option<char>, Option<String>)> {
    let mut args = cmd.to_vec();
    args.push("--help");
    let help = text(&hvnet(&args).stdout);
    let mut out = Vec::new();
    let mut inside = false;
    for line in help.lines() {
        if line == "Options:" {
            inside = true;
            continue;
        }
        if !inside {
            continue;
        }
        let t = line.trim_start();
        if !t.starts_with('-') || line.len() - t.len() > 6 {
            if !line.starts_with(' ') && !line.is_empty() {
                break;
            }
            continue;
        }
        let mut short = None;
        let mut long = None;
        for w in t.split_whitespace() {
            let w = w.trim_end_matches(',');
            if let Some(l) = w.strip_prefix("--") {
                long = Some(l.to_string());
            } else if w.len() == 2 && w.starts_with('-') {
                short = w.chars().nth(1);
            } else {
                break;
            }
        }
        if long.as_deref() == Some("help") || long.as_deref() == Some("version") {
            continue;
        }
        out.push((short, long));
    }
    out
}

/// The items of the list under `.Ss Commands` in hvnet.8, by command name ("devd check",
/// "vfup", ...): the mdoc source of each item.
fn man_command_items() -> BTreeMap<String, String> {
    let man = read("docs/hvnet.8");
    let start = man.find(".Ss Commands").expect(".Ss Commands in hvnet.8");
    let mut items: BTreeMap<String, String> = BTreeMap::new();
    let mut depth = 0;
    let mut current: Option<String> = None;
    let mut lines = man[start..].lines().skip(1).peekable();
    while let Some(line) = lines.next() {
        if line.starts_with(".Bl") {
            depth += 1;
        } else if line.starts_with(".El") {
            depth -= 1;
            if depth == 0 {
                break;
            }
        } else if depth == 1 && line.starts_with(".It") {
            let head = if line == ".It Xo" {
                lines.peek().copied().unwrap_or_default()
            } else {
                line.strip_prefix(".It ").unwrap_or_default()
            };
            let name: Vec<&str> = head
                .strip_prefix(".Cm ")
                .or_else(|| head.strip_prefix("Cm "))
                .unwrap_or_else(|| panic!("hvnet.8: command item without .Cm: {head}"))
                .split_whitespace()
                .take_while(|w| w.chars().all(|c| c.is_ascii_lowercase() || c == '-'))
                .collect();
            current = Some(name.join(" "));
        }
        if let Some(c) = &current {
            let e = items.entry(c.clone()).or_default();
            e.push_str(line);
            e.push('\n');
        }
    }
    items
}

/// Whether mdoc source documents long option `--name` (`Fl Fl name`).
fn has_long(src: &str, name: &str) -> bool {
    let needle = format!("Fl Fl {name}");
    src.match_indices(&needle).any(|(i, _)| {
        src[i + needle.len()..]
            .chars()
            .next()
            .is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '-'))
    })
}

/// Whether mdoc source documents short flag `-c` (`Fl c` or a group like `Fl dnq`).
fn has_short(src: &str, c: char) -> bool {
    src.split("Fl ").skip(1).any(|rest| {
        let w = rest.split_whitespace().next().unwrap_or("");
        w.chars().all(|x| x.is_ascii_alphabetic()) && w.contains(c)
    })
}

#[test]
fn hvnet_8_documents_every_subcommand_and_option() {
    let items = man_command_items();
    let man = read("docs/hvnet.8");
    let synopsis = &man[man.find(".Sh SYNOPSIS").unwrap()..man.find(".Sh DESCRIPTION").unwrap()];
    let mut commands: Vec<Vec<String>> = Vec::new();
    for c in subcommands(&[]) {
        if c == "devd" {
            for s in subcommands(&["devd"]) {
                commands.push(vec![c.clone(), s]);
            }
        } else {
            commands.push(vec![c]);
        }
    }
    for cmd in &commands {
        let name = cmd.join(" ");
        let item = items
            .get(&name)
            .unwrap_or_else(|| panic!("hvnet.8: no item for `hvnet {name}` under Commands"));
        assert!(
            synopsis.contains(&format!(".Cm {name}\n")),
            "hvnet.8: `hvnet {name}` is not in the SYNOPSIS"
        );
        // devd check's item documents the options check, match and bench share.
        let shared = if cmd[0] == "devd" && cmd[1] != "run" {
            items["devd check"].as_str()
        } else {
            ""
        };
        let args: Vec<&str> = cmd.iter().map(String::as_str).collect();
        for (short, long) in options(&args) {
            let ok = match (&long, short) {
                (Some(l), _) => has_long(item, l) || has_long(shared, l),
                (None, Some(c)) => has_short(item, c),
                (None, None) => true,
            };
            assert!(
                ok,
                "hvnet.8: `hvnet {name}` option {} is not documented in its item",
                long.map(|l| format!("--{l}"))
                    .unwrap_or_else(|| format!("-{}", short.unwrap()))
            );
        }
    }
}

/// Keys the daemon's configuration accepts: the fields of the `Raw*` structs in
/// crates/daemon/src/config.rs (serde deny_unknown_fields), top level and per section.
fn config_keys() -> BTreeSet<String> {
    let src = read("crates/daemon/src/config.rs");
    let mut keys = BTreeSet::new();
    let mut in_raw = false;
    for line in src.lines() {
        let t = line.trim();
        if t.starts_with("struct Raw") && t.ends_with('{') {
            in_raw = true;
            continue;
        }
        if in_raw && t == "}" {
            in_raw = false;
            continue;
        }
        if in_raw && !t.starts_with('#') && !t.starts_with("//") {
            if let Some((name, _)) = t.split_once(':') {
                keys.insert(name.trim_start_matches("pub ").trim().to_string());
            }
        }
    }
    assert!(
        keys.len() > 20,
        "config keys not found in config.rs: {keys:?}"
    );
    keys
}

#[test]
fn hvnet_conf_5_and_the_sample_document_every_configuration_key() {
    let man = read("docs/hvnet.conf.5");
    let sample = read(SAMPLE);
    for key in config_keys() {
        assert!(
            man.contains(&format!(".It Ic {key}\n")) || man.contains(&format!(".It Ic [{key}]\n")),
            "hvnet.conf.5: configuration key {key} is not documented (.It Ic {key}, or \
             .It Ic [{key}] for a table)"
        );
    }
    // The sample names every top-level and [freebsd] key, and is valid as shipped (all
    // commented out) and with every `#key = value` line uncommented.
    for key in [
        "backend",
        "mode",
        "vf_delay",
        "readiness_file",
        "readiness_command",
        "resync",
        "manage_daemons",
        "vfup_dir",
        "rc_conf",
        "control_socket",
        "metrics",
        "devd_rules",
        "devd_shell",
        "action_timeout",
        "log_level",
        "threshold",
        "initial",
        "devd_socket",
    ] {
        assert!(sample.contains(&format!("{key} = ")), "sample lacks {key}");
    }
    let path = repo().join(SAMPLE);
    let o = hvnet(&["run", "--check", "-c", path.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let uncommented: String = sample
        .lines()
        .map(|l| {
            let rest = l.strip_prefix('#').unwrap_or(l);
            let is_setting =
                rest.starts_with(|c: char| c.is_ascii_lowercase()) && rest.contains(" = ");
            let is_table = rest.starts_with('[') && rest.ends_with(']');
            if l.starts_with('#') && (is_setting || is_table) {
                format!("{rest}\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("hvnet.conf");
    std::fs::write(&f, &uncommented).unwrap();
    let o = hvnet(&["run", "--check", "-c", f.to_str().unwrap()]);
    assert!(
        o.status.success(),
        "the sample with its settings uncommented:\n{uncommented}\n{}",
        text(&o.stderr)
    );
    assert!(
        text(&o.stdout).contains("metrics 127.0.0.1:"),
        "{}",
        text(&o.stdout)
    );
}

#[test]
fn hvnet_8_devd_example_is_what_devd_match_prints() {
    let man = read("docs/hvnet.8");
    let d = System::new(true).decide(&[VF_UP]);
    let line = d[0]["matched"]["line"].as_u64().unwrap();
    let shown = format!(
        "  notify rule /usr/local/etc/devd/hvnet.conf:{line} (priority 20)\n  action: {}\n",
        actions(&d[0])[0]
    );
    assert!(
        man.contains(&shown),
        "hvnet.8's devd match example differs from the output:\n{shown}"
    );
}

#[test]
fn man_pages_pass_mandoc_lint() {
    let Some(mandoc) = find_in_path("mandoc") else {
        skip("man_pages_pass_mandoc_lint: mandoc not installed (.ci/run installs it)");
        return;
    };
    for page in ["docs/hvnet.8", "docs/hvnet.conf.5"] {
        let o = Command::new(&mandoc)
            .args(["-Tlint", "-W", "warning"])
            .arg(repo().join(page))
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "mandoc -Tlint -W warning {page}:\n{}{}",
            text(&o.stdout),
            text(&o.stderr)
        );
    }
}
