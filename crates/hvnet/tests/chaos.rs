//! `hvnet chaos`: a thousand seeds of random faults hold the VF manager's invariants, as the
//! binary runs them (the checks are hvnet-simlab's, the agent the daemon's manager).

use std::process::Command;

use serde_json::Value;

fn chaos(args: &[&str]) -> (i32, Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hvnet"))
        .arg("chaos")
        .args(args)
        .arg("--json")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {err}"));
    (out.status.code().unwrap_or(-1), v, err)
}

#[test]
fn a_thousand_chaos_seeds_hold_the_invariants() {
    let (code, v, err) = chaos(&["--seeds", "1000"]);
    assert_eq!(code, 0, "{v}\n{err}");
    assert_eq!(v["seeds"], 1000);
    assert_eq!(v["from"], 0);
    assert_eq!(v["failed_seeds"], Value::Array(Vec::new()), "{v}");
    assert_eq!(v["invariant_violations"], 0);
    // Back on hn within the second the invariants allow.
    assert!(v["back_to_hn_max_ms"].as_f64().unwrap() <= 1000.0, "{v}");
}

#[test]
fn one_seed_runs_alone_as_in_the_range() {
    let (code, v, _) = chaos(&["--from", "417", "--seeds", "1"]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(
        (v["seeds"].as_u64(), v["from"].as_u64()),
        (Some(1), Some(417))
    );
}
