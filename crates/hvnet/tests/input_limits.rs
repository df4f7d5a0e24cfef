//! Numbers and names at and past their limits, as a user gives them to the real binary: every
//! duration or factor in hvnet.conf or on the command line that is out of range is a clean
//! error (exit 1, the setting and its range), never a panic (exit 101); chaos runs exactly the
//! seeds it reports; `media-type` looks up an interface by its first 15 bytes, as devd does.

use std::path::Path;
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_hvnet");

fn hvnet(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("running hvnet")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Exit 1 with `needle` on stderr, and no panic.
fn refused(o: &Output, needle: &str) {
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.contains(needle), "expected {needle:?} in: {err}");
}

fn write(dir: &Path, name: &str, body: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    p.display().to_string()
}

#[test]
fn every_duration_and_speed_in_hvnet_conf_is_range_checked_by_check_and_by_run() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("run/hvnet.sock");
    // Each setting on line 3 (after the sim backend and a private control socket).
    for (table, key, shown, range) in [
        ("", "vf_delay", "vf_delay", "from 2 to 86400"),
        ("", "resync", "resync", "above 0 and at most 86400"),
        (
            "",
            "action_timeout",
            "action_timeout",
            "above 0 and at most 86400",
        ),
        (
            "[hold_down]",
            "window",
            "hold_down.window",
            "from 0 to 86400",
        ),
        ("[hold_down]", "hold", "hold_down.hold", "from 0 to 86400"),
        (
            "[hold_down]",
            "max_hold",
            "hold_down.max_hold",
            "from 0 to 86400",
        ),
        ("[retry]", "initial", "retry.initial", "from 0.001 to 86400"),
        ("[retry]", "max", "retry.max", "from 0.001 to 86400"),
        ("[sim]", "speed", "sim.speed", "above 0 and at most 1000000"),
    ] {
        let (line, table) = if table.is_empty() {
            (3, String::new())
        } else {
            (4, format!("{table}\n"))
        };
        let conf = write(
            dir.path(),
            "hvnet.conf",
            &format!(
                "backend = \"sim\"\ncontrol_socket = \"{}\"\n{table}{key} = 1e300\n",
                sock.display()
            ),
        );
        let what = if key == "speed" {
            "a number"
        } else {
            "a number of seconds"
        };
        let want = format!("{conf}:{line}: {shown}: expected {what} {range}, found 1e300");
        refused(&hvnet(&["run", "--check", "-c", &conf]), &want);
        refused(&hvnet(&["run", "-c", &conf]), &want);
        assert!(!sock.exists(), "{key}: the daemon started");
    }
}

#[test]
fn speed_and_timeout_flags_are_range_checked() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("hvnet.sock");
    let sock = sock.to_str().unwrap();
    for speed in ["1e300", "inf", "NaN", "0", "-1", "1000001"] {
        refused(
            &hvnet(&[
                "run",
                "--backend",
                "sim",
                "--socket",
                sock,
                &format!("--speed={speed}"),
                "--check",
            ]),
            "--speed: expected a number above 0 and at most 1000000, found",
        );
        let serve = dir.path().join("serve");
        refused(
            &hvnet(&[
                "simulate",
                "demo",
                "--serve",
                serve.to_str().unwrap(),
                &format!("--speed={speed}"),
            ]),
            "--speed: expected a number above 0 and at most 1000000, found",
        );
    }
    let conf = write(
        dir.path(),
        "devd.conf",
        "notify 0 { match \"system\" \"X\"; action \"true\"; };\n",
    );
    let devctl = write(dir.path(), "events", "");
    for t in ["1e300", "inf", "0", "-5", "86401"] {
        refused(
            &hvnet(&[
                "devd",
                "run",
                "-d",
                "-f",
                &conf,
                "--devctl",
                &devctl,
                "--socket-dir",
                dir.path().to_str().unwrap(),
                &format!("--action-timeout={t}"),
            ]),
            "--action-timeout: expected a number of seconds above 0 and at most 86400, found",
        );
    }
    for s in ["1e300", "inf", "0.001", "-1"] {
        refused(
            &hvnet(&["devd", "bench", "-f", &conf, &format!("--seconds={s}")]),
            "--seconds: expected a number of seconds from 0.01 to 86400, found",
        );
    }
}

/// Refused before any namespace is built, so this needs no root: a huge duration overflowed the
/// lab's deadline arithmetic, and pps × duration packet records could exhaust memory.
#[cfg(target_os = "linux")]
#[test]
fn lab_duration_and_packet_count_are_bounded() {
    refused(
        &hvnet(&["lab", "--duration", "18446744073709551615"]),
        "--duration: expected a number of seconds from 1 to 3600, found 18446744073709551615",
    );
    refused(&hvnet(&["lab", "--duration", "0"]), "--duration: expected");
    refused(
        &hvnet(&["lab", "--pps", "4294967295", "--duration", "3600"]),
        "--pps 4294967295 --duration 3600: expected 1 to 10000000 packets per direction in all, found 15461882262000",
    );
    refused(
        &hvnet(&["lab", "--pps", "0"]),
        "expected 1 to 10000000 packets",
    );
}

#[test]
fn chaos_runs_exactly_the_seeds_it_reports() {
    let max = u64::MAX.to_string();
    refused(
        &hvnet(&["chaos", "--from", &max, "--seeds", "2"]),
        &format!("--from {max} --seeds 2: seeds end at {max}; the largest --seeds from {max} is 1"),
    );
    refused(
        &hvnet(&["chaos", "--from", &max]),
        "the largest --seeds from",
    );
    // The last seed there is runs, and is reported once.
    let o = hvnet(&["chaos", "--from", &max, "--seeds", "1", "--json"]);
    assert!(!text(&o.stderr).contains("panicked"), "{}", text(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("one JSON line");
    assert_eq!(v["seeds"], 1, "{v}");
    assert_eq!(v["from"].as_u64(), Some(u64::MAX), "{v}");
}

#[test]
fn media_type_matches_a_long_name_by_its_first_15_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let conf = write(
        dir.path(),
        "media.conf",
        "notify 1 { match \"type\" \"LINK_UP\"; media-type \"ethernet\"; action \"eth $subsystem\"; };\n\
         notify 0 { match \"type\" \"LINK_UP\"; action \"other\"; };\n",
    );
    let decide = |name: &str| -> serde_json::Value {
        let o = hvnet(&[
            "devd",
            "match",
            "-f",
            &conf,
            "--json",
            "--media",
            "vtnet0123456789=ethernet",
            &format!("!system=IFNET subsystem={name} type=LINK_UP"),
        ]);
        assert!(o.status.success(), "{}", text(&o.stderr));
        serde_json::from_slice(&o.stdout).unwrap()
    };
    assert_eq!(
        decide("vtnet0123456789")["actions"][0],
        "eth $'vtnet0123456789'"
    );
    // 16+ bytes: the kernel sees vtnet0123456789, an Ethernet interface.
    assert_eq!(
        decide("vtnet0123456789xyz")["actions"][0],
        "eth $'vtnet0123456789xyz'"
    );
    assert_eq!(decide("vtnet012345678")["actions"][0], "other");
    // A --media name the kernel could never look up is refused.
    refused(
        &hvnet(&[
            "devd",
            "match",
            "-f",
            &conf,
            "--media",
            "vtnet0123456789x=ethernet",
            "!system=IFNET subsystem=x type=LINK_UP",
        ]),
        "expected an interface name of 1 to 15 bytes without NUL (IFNAMSIZ), found 16 bytes",
    );
}
