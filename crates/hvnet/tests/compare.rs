//! `hvnet compare`: the original scripts (real processes) and hvnet side by side. hvnet passes
//! every scenario; the original fails where the hn(4) failover analysis predicts, with the problem kinds
//! its defects produce; the real-process run agrees with the in-process emulation.

use std::collections::BTreeSet;
use std::process::Command;

use serde_json::Value;

fn compare(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hvnet"))
        .arg("compare")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn rows(args: &[&str]) -> Vec<Value> {
    let mut a = vec!["--json"];
    a.extend_from_slice(args);
    let (code, out, err) = compare(&a);
    assert_eq!(code, 0, "{err}");
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn row<'a>(rows: &'a [Value], name: &str) -> &'a Value {
    rows.iter().find(|r| r["scenario"] == name).unwrap()
}

fn kinds(side: &Value) -> BTreeSet<String> {
    side["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["kind"].as_str().unwrap().to_string())
        .collect()
}

fn details(side: &Value, kind: &str) -> Vec<String> {
    side["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["kind"] == kind)
        .map(|p| p["detail"].as_str().unwrap().to_string())
        .collect()
}

const SCENARIOS: &[&str] = &[
    "boot-vf",
    "boot-vf-nt",
    "live-migration-nt",
    "syncdhcp-nt",
    "ipv6-nt",
    "aliases-nt",
    "static-nt",
];

fn args(original: &str) -> Vec<&str> {
    let mut a = vec!["--original", original];
    for s in SCENARIOS {
        a.push("--scenario");
        a.push(s);
    }
    a
}

#[test]
fn hvnet_passes_and_the_original_fails_where_the_spec_predicts() {
    let r = rows(&args("real"));
    assert_eq!(r.len(), SCENARIOS.len());
    for x in &r {
        assert_eq!(x["hvnet"]["passed"], true, "{x}");
        assert_eq!(kinds(&x["hvnet"]), BTreeSet::new(), "{x}");
        assert_eq!(x["original"]["agent"], "scripts (real processes)");
        for k in ["passed", "lost", "problems"] {
            assert!(x["original"].get(k).is_some() && x["hvnet"].get(k).is_some());
        }
    }

    // Transparent mode: the kernel does everything, hyperv_vfattach exits at once (§3.2 step 1).
    let b = row(&r, "boot-vf");
    assert_eq!(b["original"]["passed"], true);
    assert_eq!(b["original"]["lost"], b["hvnet"]["lost"]);
    assert_eq!(kinds(&b["original"]), BTreeSet::new());

    // §3.3 4d + 4f: the address leaves hn0 before dhclient on lagg0 has the lease again.
    let nt = row(&r, "boot-vf-nt");
    assert!(nt["original"]["lost"].as_u64().unwrap() > 0);
    assert_eq!(nt["hvnet"]["lost"], 0);
    assert!(kinds(&nt["original"]).contains("connection-broken"));

    // §3.1 (devd.conf LINK_UP → rc.d/dhclient; devd waits) + §1.8 (hn0's link returns when
    // the VF goes): dhclient on hn0, a lagg port, which never gets a lease and holds devd;
    // lagg0's dhclient died with its link and nothing restarts it (§3.3 step 5).
    let lm = row(&r, "live-migration-nt");
    assert_eq!(lm["original"]["passed"], false);
    let k = kinds(&lm["original"]);
    for want in [
        "dhcp-on-lagg-port",
        "no-dhcp-client",
        "devd-blocked",
        "connection-broken",
    ] {
        assert!(k.contains(want), "{want} not in {k:?}");
    }
    assert!(details(&lm["original"], "devd-blocked")[0].contains("service dhclient quietstart"));

    // §3.3 4f: SYNCDHCP runs dhclient in the foreground inside hyperv_vfup: devd waits.
    let sy = row(&r, "syncdhcp-nt");
    let blocked = details(&sy["original"], "devd-blocked");
    assert!(
        blocked.iter().any(|d| d.contains("hyperv_vfup")),
        "{blocked:?}"
    );

    // §3.3 4e/4f (+ §5: adding hn0 as a port purges its inet6): IPv6 is lost.
    let v6 = row(&r, "ipv6-nt");
    assert_eq!(v6["original"]["passed"], false);
    assert!(details(&v6["original"], "address-missing")
        .iter()
        .any(|d| d.starts_with("2001:db8::4 ")));

    // §3.3 4d + 4f "Not transferred: ifconfig_hnX_aliasN": the alias is gone.
    let al = row(&r, "aliases-nt");
    assert_eq!(al["original"]["passed"], false);
    assert!(details(&al["original"], "address-missing")
        .iter()
        .any(|d| d.starts_with("10.0.0.5 ")));

    // §3.3 4f "Not transferred: static routes / defaultrouter re-adding".
    let st = row(&r, "static-nt");
    assert!(details(&st["original"], "route-missing")
        .iter()
        .any(|d| d.contains("via 10.0.0.1")));
}

fn original_both_ways(scenarios: &[&str]) -> Vec<(Value, Value)> {
    let mut sel = Vec::new();
    for s in scenarios {
        sel.push("--scenario");
        sel.push(s);
    }
    let mut real = vec!["--original", "real"];
    real.extend_from_slice(&sel);
    let mut emu = vec!["--original", "emulated"];
    emu.extend_from_slice(&sel);
    let (r, e) = (rows(&real), rows(&emu));
    assert_eq!(r.len(), e.len());
    r.into_iter().zip(e).collect()
}

const SAME: &[&str] = &[
    "passed",
    "lost",
    "problems",
    "time_to_vf_ms",
    "back_to_hn_ms",
    "connections_broken",
    "invariant_violations",
    "failed_expectations",
];

#[test]
fn real_scripts_agree_with_the_in_process_emulation() {
    // Where no devd action waits, the real scripts and the emulation give the same result:
    // both apply a script's commands one after another, each taking the simulator's
    // command time.
    let v = original_both_ways(&[
        "boot-vf",
        "boot-vf-nt",
        "aliases-nt",
        "live-migration",
        "static-nt",
    ]);
    for (x, y) in &v {
        assert_eq!(y["original"]["agent"], "scripts (emulated)");
        for k in SAME {
            assert_eq!(x["original"][k], y["original"][k], "{}: {k}", x["scenario"]);
        }
        assert_eq!(x["hvnet"], y["hvnet"]);
    }
    // static-nt: between `ifconfig hn0 -alias` and `ifconfig lagg0 inet 10.0.0.4/24`
    // hyperv_vfup leaves the address on no interface (§3.3 4d before 4f); both ways see it.
    let st = &v.last().unwrap().0;
    assert_eq!(st["scenario"], "static-nt");
    assert_eq!(st["original"]["connections_broken"], 1);
    assert!(details(&st["original"], "connection-broken")
        .contains(&"at 7.000s: address left the VM".to_string()));
    assert_eq!(st["hvnet"]["connections_broken"], 0);
}

#[test]
fn real_runs_are_deterministic_and_the_table_reads() {
    let a = ["--scenario", "live-migration-nt", "--scenario", "demo"];
    let mut j = vec!["--json"];
    j.extend_from_slice(&a);
    let (c1, o1, _) = compare(&j);
    let (c2, o2, _) = compare(&j);
    assert_eq!((c1, c2), (0, 0));
    assert_eq!(o1, o2);

    let (code, table, _) = compare(&a);
    assert_eq!(code, 0);
    let first = table.lines().next().unwrap();
    for col in ["scenario", "original", "lost", "to VF", "to hn", "hvnet"] {
        assert!(first.contains(col), "{first}");
    }
    assert!(
        table.contains("original passed 1/2, hvnet passed 2/2"),
        "{table}"
    );
    assert!(table.contains("left wrong:"));
    assert!(table.contains("live-migration-nt    original dhcp-on-lagg-port"));
}

#[test]
fn unknown_scenario_is_a_clear_error() {
    let (code, _, err) = compare(&["--scenario", "no-such"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("no-such: expected a built-in scenario"),
        "{err}"
    );
    // A scenario file with an error: FILE:LINE.
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("bad.scn");
    std::fs::write(&f, "duration 10s\nat 1s frobnicate hn0\n").unwrap();
    let (code, _, err) = compare(&["--scenario", f.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains(&format!("{}:2:", f.display())), "{err}");
}

#[test]
fn a_scenario_file_runs_on_both_sides() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("nt.scn");
    std::fs::write(
        &f,
        "mode non-transparent\nduration 40s\nrc ifconfig_hn0=\"DHCP\"\nat 5s offer-vf hn0\nexpect at 30s path vf\n",
    )
    .unwrap();
    let r = rows(&["--scenario", f.to_str().unwrap()]);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0]["mode"], "non-transparent");
    assert_eq!(r[0]["hvnet"]["passed"], true);
    assert_eq!(r[0]["original"]["passed"], true);
    assert!(r[0]["original"]["lost"].as_u64().unwrap() > 0);
}

/// packaging/baseline/hyperv_vfup, run with stub commands under a test root: the steps of
/// spec hn.md §3.3, in order, and its exit statuses.
mod baseline_vfup {
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;
    use std::process::Command;

    const VFUP: &str = include_str!("../../../packaging/baseline/hyperv_vfup");
    const RC_SUBR: &str = include_str!("../../../packaging/baseline/rc.subr");
    const NETWORK_SUBR: &str = include_str!("../../../packaging/baseline/network.subr");

    /// `ifconfig`: logs its arguments; `ifconfig IF` succeeds iff state/IF exists (printing
    /// it); `create` fails iff state/create-fails exists; `-alias` succeeds while
    /// state/aliases has lines left; `laggport` exits with state/laggport-status (default 0).
    const IFCONFIG: &str = r#"#!/bin/sh
echo "ifconfig $*" >> "$ROOT/log"
if [ $# -eq 1 ]; then [ -f "$ROOT/state/$1" ] && cat "$ROOT/state/$1"; exit $?; fi
case $2 in
create) [ -f "$ROOT/state/create-fails" ] && exit 1; touch "$ROOT/state/$1"; exit 0 ;;
-alias) n=`wc -l < "$ROOT/state/aliases"`; [ "$n" -gt 0 ] || exit 1
	sed -i 1d "$ROOT/state/aliases"; exit 0 ;;
laggport) [ -f "$ROOT/state/laggport-status" ] && exit `cat "$ROOT/state/laggport-status"`; exit 0 ;;
esac
exit 0
"#;
    const SYSCTL: &str =
        "#!/bin/sh\necho \"sysctl $*\" >> \"$ROOT/log\"\ncat \"$ROOT/state/vf\" 2>/dev/null\n";
    const LOGGER: &str = "#!/bin/sh\necho \"${0##*/} $*\" >> \"$ROOT/log\"\n";

    fn put(path: &Path, text: &str, mode: u32) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    struct Root(tempfile::TempDir);

    impl Root {
        fn new(rc_conf: &str, vf: &str) -> Root {
            let t = tempfile::tempdir().unwrap();
            let d = t.path().to_str().unwrap().to_string();
            let rw = |s: &str| {
                s.replace("/etc/", &format!("{d}/etc/"))
                    .replace("/usr/libexec/hyperv/", &format!("{d}/usr/libexec/hyperv/"))
                    .replace("/var/run/", &format!("{d}/var/run/"))
            };
            let p = |r: &str| t.path().join(r);
            put(&p("etc/rc.conf"), rc_conf, 0o644);
            put(
                &p("etc/defaults/rc.conf"),
                "synchronous_dhclient=\"NO\"\n",
                0o644,
            );
            put(&p("etc/rc.subr"), &rw(RC_SUBR), 0o644);
            put(&p("etc/network.subr"), &rw(NETWORK_SUBR), 0o644);
            put(&p("usr/libexec/hyperv/hyperv_vfup"), &rw(VFUP), 0o755);
            put(&p("bin/ifconfig"), IFCONFIG, 0o755);
            put(&p("bin/sysctl"), SYSCTL, 0o755);
            put(&p("bin/dhclient"), LOGGER, 0o755);
            put(&p("state/vf"), vf, 0o644);
            put(&p("state/aliases"), "", 0o644);
            std::fs::create_dir_all(p("var/run")).unwrap();
            Root(t)
        }

        fn path(&self, r: &str) -> std::path::PathBuf {
            self.0.path().join(r)
        }

        /// (exit status, stdout, the commands run).
        fn vfup(&self, hn: &str) -> (i32, String, Vec<String>) {
            let d = self.0.path();
            let out = Command::new(d.join("usr/libexec/hyperv/hyperv_vfup"))
                .arg(hn)
                .env(
                    "PATH",
                    format!("{}/bin:{}", d.display(), std::env::var("PATH").unwrap()),
                )
                .env("ROOT", d)
                .output()
                .unwrap();
            let log = std::fs::read_to_string(d.join("log")).unwrap_or_default();
            (
                out.status.code().unwrap_or(-1),
                String::from_utf8_lossy(&out.stdout).into_owned(),
                log.lines().map(String::from).collect(),
            )
        }
    }

    #[test]
    fn creates_the_lagg_moves_dhcp_and_ends_with_the_last_status() {
        let r = Root::new("ifconfig_hn0=\"DHCP\"\n", "mce0\n");
        put(&r.path("state/aliases"), "a\nb\n", 0o644);
        let (code, _, log) = r.vfup("hn0");
        assert_eq!(code, 0);
        assert_eq!(
            log,
            [
                "sysctl -n dev.hn.0.vf",
                "ifconfig lagg0",
                "ifconfig lagg0 create",
                "ifconfig lagg0 laggproto failover laggport hn0 laggport mce0",
                "ifconfig lagg0 inet6 no_dad",
                "ifconfig hn0 -alias",
                "ifconfig hn0 -alias",
                "ifconfig hn0 -alias",
                "ifconfig lagg0 up",
                "dhclient -b lagg0",
            ]
        );
    }

    #[test]
    fn static_syncdhcp_pidfile_and_unit_digits() {
        // Static: `ifconfig laggN $(ifconfig_getargs hnX)`, keywords stripped, no eval.
        let r = Root::new("ifconfig_hn12=\"inet 10.0.0.4/24 NOAUTO\"\n", "mce3\n");
        let (_, _, log) = r.vfup("hn12");
        assert_eq!(log[0], "sysctl -n dev.hn.12.vf");
        assert_eq!(log.last().unwrap(), "ifconfig lagg12 inet 10.0.0.4/24");
        // SYNCDHCP: dhclient in the foreground. The pre-12 pid file is honoured (step 4c).
        // (`kill` is the shell's builtin: a process of the test's own stands in for dhclient.)
        let r = Root::new("ifconfig_hn0=\"SYNCDHCP\"\n", "mce0\n");
        let mut dhclient = Command::new("sleep").arg("60").spawn().unwrap();
        put(
            &r.path("var/run/dhclient.hn0.pid"),
            &format!("{}\n", dhclient.id()),
            0o644,
        );
        let (_, _, log) = r.vfup("hn0");
        let st = dhclient.wait().unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&st),
            Some(15),
            "SIGTERM"
        );
        assert_eq!(log.last().unwrap(), "dhclient lagg0");
        // All non-digits go: `sed 's/[^0-9]*//g'`.
        let r = Root::new("", "\n");
        let (_, out, log) = r.vfup("hn1a2");
        assert_eq!(log, ["sysctl -n dev.hn.12.vf"]);
        assert_eq!(out, "hn1a2: VF was detached\n");
    }

    #[test]
    fn existing_lagg_detached_vf_create_failure_and_override() {
        // The lagg exists without the VF: only `laggport VF`, and its status is the script's.
        let r = Root::new("ifconfig_hn0=\"DHCP\"\n", "mce0\n");
        put(&r.path("state/lagg0"), "\tlaggport: hn0 flags=0<>\n", 0o644);
        put(&r.path("state/laggport-status"), "3\n", 0o644);
        let (code, _, log) = r.vfup("hn0");
        assert_eq!(code, 3, "no final exit 0");
        assert_eq!(log.last().unwrap(), "ifconfig lagg0 laggport mce0");
        // ... with the VF already a port: nothing.
        put(
            &r.path("state/lagg0"),
            "\tlaggport: hn0 flags=1<MASTER>\n\tlaggport: mce0 flags=4<ACTIVE>\n",
            0o644,
        );
        std::fs::remove_file(r.path("log")).unwrap();
        let (code, _, log) = r.vfup("hn0");
        assert_eq!((code, log.len()), (0, 3), "{log:?}");
        assert_eq!(log[2], "ifconfig lagg0");
        // No VF any more: the race message, exit 0.
        let r = Root::new("", "\n");
        assert_eq!(r.vfup("hn0").0, 0);
        // lagg creation fails: exit 1.
        let r = Root::new("", "mce0\n");
        put(&r.path("state/create-fails"), "", 0o644);
        let (code, out, _) = r.vfup("hn0");
        assert_eq!((code, out.as_str()), (1, "lagg0 creation failed\n"));
        // The per-interface override runs when the file exists (-f, not -x), with no
        // arguments, and the script exits with its status.
        let r = Root::new("", "mce0\n");
        let hook = r.path("usr/libexec/hyperv/hyperv_vfup.hn0");
        put(&hook, "#!/bin/sh\necho \"hook [$*]\"\nexit 7\n", 0o755);
        let (code, out, log) = r.vfup("hn0");
        assert_eq!((code, out.as_str()), (7, "hook []\n"));
        assert!(log.is_empty());
        std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(
            r.vfup("hn0").0,
            126,
            "a non-executable override is still run"
        );
    }
}
