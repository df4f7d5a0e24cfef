//! `hvnet simulate` contract: JSON summary fields, determinism, listing,
//! errors as FILE:LINE, plots.

use std::process::Command;

fn hvnet() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_hvnet"));
    c.env("HVNET_SIM_WALL", "0");
    c
}

fn last_json(out: &[u8]) -> serde_json::Value {
    let s = String::from_utf8_lossy(out);
    serde_json::from_str(s.lines().last().expect("output")).expect("last line is JSON")
}

#[test]
fn demo_json_summary_has_the_contract_fields() {
    let out = hvnet().args(["simulate", "--json"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = last_json(&out.stdout);
    assert_eq!(v["scenario"], "demo");
    // With no arguments the demo runs with the VF manager in the guest.
    assert_eq!(v["agent"], "hvnet");
    assert_eq!(v["seed"], 0);
    assert_eq!(v["virtual_seconds"], 120.0);
    assert_eq!(v["wall_ms"], 0.0);
    let p = &v["packets"];
    let sent = p["sent"].as_u64().unwrap();
    assert_eq!(
        sent,
        p["delivered"].as_u64().unwrap() + p["lost"].as_u64().unwrap()
    );
    assert_eq!(
        p["delivered"].as_u64().unwrap(),
        p["by_path"]["hn"].as_u64().unwrap() + p["by_path"]["vf"].as_u64().unwrap()
    );
    assert!(p["lost_by_reason"].is_object());
    assert!(v["vf_up_latency_ms"]["median"].is_number());
    assert!(v["back_to_hn_ms"]["max"].is_number());
    for k in ["connections_broken", "failovers", "invariant_violations"] {
        assert!(v[k].is_u64(), "{k}");
    }
    assert!(v["expectations"]["passed"].as_u64().unwrap() > 0);
    assert_eq!(v["expectations"]["failed"], 0);
    assert_eq!(v["passed"], true);
}

#[test]
fn same_scenario_and_seed_give_identical_output() {
    let run = || {
        hvnet()
            .args(["simulate", "flapping", "--seed", "42", "--json"])
            .output()
            .unwrap()
            .stdout
    };
    let a = run();
    assert!(!a.is_empty());
    assert_eq!(a, run());
    assert_eq!(last_json(&a)["seed"], 42);
}

#[test]
fn list_names_the_builtins() {
    let out = hvnet()
        .args(["simulate", "--list", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    for n in [
        "demo",
        "live-migration",
        "mlx4-to-mlx5",
        "vf-before-hn",
        "hour-60-migrations",
    ] {
        assert!(names.contains(&n), "{n}");
    }
    let text = hvnet().args(["simulate", "--list"]).output().unwrap();
    assert!(String::from_utf8_lossy(&text.stdout).contains("demo "));
}

#[test]
fn bad_scenario_file_reports_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("bad.scn");
    std::fs::write(&f, "duration 10s\nat 5s offer-vf hn0 family\n").unwrap();
    let out = hvnet()
        .args(["simulate", f.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with(&format!("{}:2: expected a driver family", f.display())),
        "{err}"
    );
    let out = hvnet()
        .args(["simulate", "no-such-thing"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn scenario_file_runs_and_failing_expectations_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("s.scn");
    std::fs::write(
        &f,
        "duration 30s\nrc ifconfig_hn0=\"DHCP\"\nat 5s offer-vf hn0\nexpect at 20s path vf\nexpect at 20s path hn\n",
    )
    .unwrap();
    let out = hvnet()
        .args(["simulate", f.to_str().unwrap(), "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v = last_json(&out.stdout);
    assert_eq!(v["expectations"]["passed"], 1);
    assert_eq!(v["expectations"]["failed"], 1);
    assert_eq!(v["passed"], false);
}

#[test]
fn plot_writes_an_svg() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("p.svg");
    let out = hvnet()
        .args(["simulate", "demo", "--plot", f.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success());
    let svg = std::fs::read_to_string(&f).unwrap();
    assert!(svg.starts_with("<svg") || svg.contains("<svg"));
    assert!(svg.contains("revoked"));
}

#[test]
fn unknown_agent_is_an_error() {
    let out = hvnet()
        .args(["simulate", "demo", "--agent", "bogus"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown agent"));
}

/// Issue 15 item 5: in non-transparent mode hvnet moves hn0's configuration to the lagg
/// without a moment where an address is absent. At 10,000 packets a second each way (one
/// command's millisecond is 10 packets) no non-transparent built-in loses a packet to what
/// hvnet does. What remains is the kernel's: after a VF detaches, lagg0 has no active port
/// until hn0's link query answers 10 ms later (spec hn.md §1.5, §5), whoever built the lagg.
#[test]
fn non_transparent_scenarios_lose_nothing_to_hvnet_even_at_10000_pps() {
    let list = hvnet()
        .args(["simulate", "--list", "--json"])
        .output()
        .unwrap();
    let list: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    let mut checked = Vec::new();
    for name in list
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
    {
        let out = hvnet()
            .args(["simulate", name, "--rate", "10000", "--json"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let s = last_json(&out.stdout);
        if s["mode"] != "non-transparent" {
            continue;
        }
        let detaches = text
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|e| e["source"] == "host" && e["text"].as_str().unwrap().ends_with("detaches"))
            .count() as u64;
        let mut lost = s["packets"]["lost_by_reason"].as_object().unwrap().clone();
        let kernel = lost
            .remove("no_active_port")
            .map_or(0, |n| n.as_u64().unwrap());
        assert!(lost.is_empty(), "{name}: {lost:?}");
        assert_eq!(
            kernel,
            100 * detaches,
            "{name}: the kernel's 10 ms per detach"
        );
        assert_eq!(s["connections_broken"], 0, "{name}");
        assert_eq!(s["invariant_violations"], 0, "{name}: {}", s["violations"]);
        checked.push(name.to_string());
    }
    assert!(checked.len() >= 6, "{checked:?}");
}
