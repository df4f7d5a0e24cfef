//! End to end on Linux: the VF manager over the FreeBSD backend against the simulator's
//! FreeBSD userland (`hvnet simulate NAME --agent freebsd`). Every observation and change is
//! a real `ifconfig`/`sysctl`/`netstat`/`ps`/`pgrep`/`route`/`dhclient`/`kill` process
//! found through PATH, answered by the simulator and parsed by the backend; devctl events
//! come as devd delivers them. Each built-in scenario must pass with the same expectations
//! as the in-process manager (`--agent hvnet`), and the run must be deterministic.

use std::process::Command;

use serde_json::Value;

fn hvnet() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_hvnet"));
    c.env("HVNET_SIM_WALL", "0");
    c
}

/// `hvnet simulate NAME --agent AGENT --json`: (exit code, timeline lines, summary).
fn simulate(name: &str, agent: &str) -> (i32, Vec<Value>, Value) {
    let out = hvnet()
        .args(["simulate", name, "--agent", agent, "--json"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{name}: {e}: {l}")))
        .collect();
    let summary = lines.pop().unwrap_or_else(|| {
        panic!(
            "{name}: no output; stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), lines, summary)
}

fn builtins() -> Vec<String> {
    let out = hvnet()
        .args(["simulate", "--list", "--json"])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect()
}

/// Why scenario `name` does not pass the same way with the FreeBSD backend ("" if it does).
fn check(name: &str) -> String {
    let (code, timeline, fb) = simulate(name, "freebsd");
    let (_, _, inproc) = simulate(name, "hvnet");
    let mut why = Vec::new();
    if code != 0 || fb["passed"] != true {
        why.push(format!(
            "failed: {} {}",
            fb["failed_expectations"], fb["violations"]
        ));
    }
    // The same expectations held as with the in-process manager.
    if fb["expectations"] != inproc["expectations"] {
        why.push(format!(
            "expectations {} vs in-process {}",
            fb["expectations"], inproc["expectations"]
        ));
    }
    if fb["agent"] != "hvnet (freebsd backend)" {
        why.push(format!("agent {}", fb["agent"]));
    }
    // The manager really worked through commands: every step observes with ifconfig -a.
    let guest: Vec<&str> = timeline
        .iter()
        .filter(|l| l["source"] == "guest")
        .filter_map(|l| l["text"].as_str())
        .collect();
    for c in ["$ ifconfig -a", "$ netstat -rn", "$ sysctl -n hw.hn.vfmap"] {
        if !guest.contains(&c) {
            why.push(format!("never ran `{c}`"));
        }
    }
    if why.is_empty() {
        String::new()
    } else {
        format!("{name}: {}", why.join("; "))
    }
}

fn check_all(names: &[String]) {
    let failed: Vec<String> = names
        .iter()
        .map(|n| check(n))
        .filter(|w| !w.is_empty())
        .collect();
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

/// The long scenario runs in its own test so the harness can run it beside the others.
const LONG: &str = "hour-60-migrations";

#[test]
fn every_builtin_scenario_passes_with_the_freebsd_backend() {
    let names: Vec<String> = builtins().into_iter().filter(|n| n != LONG).collect();
    assert!(names.len() >= 20, "{names:?}");
    check_all(&names);
}

#[test]
fn an_hour_of_migrations_passes_with_the_freebsd_backend() {
    assert!(builtins().iter().any(|n| n == LONG));
    check_all(&[LONG.to_string()]);
}

#[test]
fn freebsd_runs_are_deterministic_and_use_the_backends_commands() {
    let (code, a, sa) = simulate("live-migration-nt", "freebsd");
    let (_, b, sb) = simulate("live-migration-nt", "freebsd");
    assert_eq!(code, 0, "{sa}");
    assert_eq!(a, b);
    assert_eq!(sa, sb);
    let guest: Vec<&str> = a
        .iter()
        .filter(|l| l["source"] == "guest")
        .filter_map(|l| l["text"].as_str())
        .collect();
    // The backend's own command lines, in the order the lagg is built.
    let pos = |c: &str| {
        guest
            .iter()
            .position(|g| *g == c)
            .unwrap_or_else(|| panic!("never ran `{c}`: {guest:#?}"))
    };
    let create = pos("$ ifconfig lagg0 create");
    let proto = pos("$ ifconfig lagg0 laggproto failover");
    let hn = pos("$ ifconfig lagg0 laggport hn0");
    let vf = pos("$ ifconfig lagg0 laggport mce0");
    assert!(create < proto && proto < hn && hn < vf, "{guest:#?}");
    pos("$ route -n delete default 10.0.0.1");
    pos("$ route -n add default 10.0.0.1");
    pos("$ dhclient -b lagg0");
    assert!(guest.iter().any(|g| g.starts_with("$ kill -TERM ")));
    assert!(guest.iter().any(|g| g.starts_with("$ ps -p ")));
    // The timeline says how much work it was.
    let last = a
        .iter()
        .rev()
        .find(|l| l["source"] == "agent")
        .and_then(|l| l["text"].as_str())
        .unwrap();
    assert!(last.starts_with("freebsd backend: "), "{last}");
}

#[test]
fn freebsd_agent_is_refused_with_serve() {
    let dir = tempfile::tempdir().unwrap();
    let out = hvnet()
        .args(["simulate", "demo", "--agent", "freebsd", "--serve"])
        .arg(dir.path().join("s"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--agent freebsd cannot be combined with --serve"),
        "{err}"
    );
}
