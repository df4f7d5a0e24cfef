//! `hvnet compare`: the original scripts (real processes) and hvnet side by side. hvnet passes
//! every scenario; the original fails where shared/spec/hn.md predicts, with the problem kinds
//! the spec's defects produce; the real-process run agrees with the in-process emulation.

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
    // Where no devd action waits and no script leaves a gap between two of its commands,
    // the real scripts and the emulation give the same result.
    for (x, y) in original_both_ways(&["boot-vf", "boot-vf-nt", "aliases-nt", "live-migration"]) {
        assert_eq!(y["original"]["agent"], "scripts (emulated)");
        for k in SAME {
            assert_eq!(x["original"][k], y["original"][k], "{}: {k}", x["scenario"]);
        }
        assert_eq!(x["hvnet"], y["hvnet"]);
    }
}

#[test]
fn real_scripts_show_what_the_emulation_folds_into_one_step() {
    // static-nt: between `ifconfig hn0 -alias` and `ifconfig lagg0 inet 10.0.0.4/24` the real
    // hyperv_vfup leaves the address on no interface (§3.3 4d before 4f); the emulation applies
    // both in one step. Everything else agrees.
    let v = original_both_ways(&["static-nt"]);
    let (x, y) = (&v[0].0["original"], &v[0].1["original"]);
    for k in SAME
        .iter()
        .filter(|k| !["problems", "connections_broken"].contains(k))
    {
        assert_eq!(x[k], y[k], "{k}");
    }
    let mut emulated = y["problems"].as_array().unwrap().clone();
    emulated.insert(
        0,
        serde_json::json!({"kind": "connection-broken", "detail": "at 7.000s: address left the VM"}),
    );
    assert_eq!(x["problems"].as_array().unwrap(), &emulated);
    assert_eq!(x["connections_broken"], 1);
    assert_eq!(y["connections_broken"], 0);
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
    assert!(err.contains("no-such: not a built-in scenario"), "{err}");
}
