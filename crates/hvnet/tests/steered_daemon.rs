//! Steered mode as users run it (issue 15): the daemon binary, `hvnet run` with the Linux
//! backend in steered mode, in a VM network namespace of the lab (a bridge, `hn0` with an
//! address, `vf0` with the same MAC), through a planned switch, surprise removals, returns
//! and a VF that goes before its delay ends, with numbered UDP both ways and a TCP
//! connection. Asserts the loss per phase and the daemon's status (asked on its control
//! socket) after every event. Needs root (CAP_NET_ADMIN) and iproute2; says when skipped.
//! Its namespaces carry the pid and are always deleted; traffic is bounded in count and time.
#![cfg(target_os = "linux")]

use std::io::Write;
use std::process::{Command, Stdio};

fn skip_unless_root(test: &str) -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let net_admin = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .is_some_and(|c| c & (1 << 12) != 0);
    let have_tools = ["ip", "tc"]
        .iter()
        .all(|t| Command::new(t).arg("-V").output().is_ok());
    if !net_admin || !have_tools {
        if std::env::var_os("HVNET_TEST_STRICT").is_some() {
            panic!("SKIPPED {test}: root (CAP_NET_ADMIN) and iproute2 are needed (HVNET_TEST_STRICT is set)");
        }
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED {test}: root (CAP_NET_ADMIN) and iproute2 are needed"
        );
    }
    !(net_admin && have_tools)
}

#[test]
fn the_daemon_keeps_traffic_through_every_vf_event_and_tells_the_truth() {
    if skip_unless_root("the_daemon_keeps_traffic_through_every_vf_event_and_tells_the_truth") {
        return;
    }
    let child = Command::new(env!("CARGO_BIN_EXE_hvnet"))
        .args(["lab", "--pps", "2000", "--duration", "3", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let r: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(r["reactor"], "hvnet", "{r}");
    let phases = r["phases"].as_array().unwrap();
    let names: Vec<_> = phases.iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "planned",
            "surprise",
            "return",
            "surprise_again",
            "early_removal"
        ]
    );
    let phase = |name: &str| phases.iter().find(|p| p["name"] == name).unwrap();
    // The daemon's status matched the kernel after every event (path, VF state, no
    // problem, converged), reattach included.
    for p in phases.iter().chain(std::iter::once(&r["reattach"])) {
        assert_eq!(p["status_ok"], true, "{p}");
    }
    // What the kernel held after each event: the redirect only while a VF is in use. Before
    // the fix a redirect to the vanished VF stayed, and everything the VM sent was dropped.
    let redirects: Vec<_> = phases
        .iter()
        .map(|p| p["hn_egress_redirects"].as_u64().unwrap())
        .collect();
    assert_eq!(redirects, [0, 0, 1, 0, 0], "{r}");
    // Loss: none where the daemon is warned or a VF arrives; a surprise loses only what is
    // in flight around the kernel's notice (before the fix: every VM packet until a VF
    // came back, ~1,000 here), and nothing at all while no VF event happens.
    for name in ["planned", "return", "early_removal"] {
        assert_eq!(phase(name)["lost"], 0, "{name}: {r}");
    }
    for name in ["surprise", "surprise_again"] {
        let p = phase(name);
        assert!(p["lost"].as_u64().unwrap() <= 40, "{name}: {r}");
        // Back on hn0 within a few ms of the kernel's notice (2 ms is the target at full
        // speed; a debug build on a shared machine gets slack).
        assert!(p["back_ms"].as_f64().unwrap() < 20.0, "{name}: {r}");
    }
    assert_eq!(r["reattach"]["lost"], 0, "{r}");
    // While nothing happens, nothing is lost (a loaded shared machine may drop a stray
    // packet in the kernel's backlog; a steering fault loses hundreds).
    assert!(r["quiet_lost"].as_u64().unwrap() <= 3, "{r}");
    assert_eq!(r["tcp_survived"], true, "{r}");
    assert!(r["vf_redirected_pkts"].as_u64().unwrap() > 0, "{r}");
    // Nothing left behind: the lab's namespaces and its daemon (named by the lab's pid).
    let netns = Command::new("ip").args(["netns", "list"]).output().unwrap();
    let left = String::from_utf8_lossy(&netns.stdout);
    assert!(
        !left.contains(&format!("-{pid}")),
        "namespaces left behind: {left}"
    );
    let ps = Command::new("ps").args(["-eo", "args"]).output().unwrap();
    let ps = String::from_utf8_lossy(&ps.stdout);
    assert!(
        !ps.contains(&format!("hvnet-lab-{pid}")),
        "daemon left running: {ps}"
    );
}
