//! `hvnet devd check|match|bench` as a user runs them.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn hvnet() -> Command {
    Command::new(env!("CARGO_BIN_EXE_hvnet"))
}

/// The repository's devd corpus (testdata/devd/corpus).
fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/devd/corpus")
}

fn corpus(name: &str) -> String {
    corpus_dir().join(name).display().to_string()
}

/// The keys of a JSON object, sorted.
fn keys(v: &serde_json::Value) -> Vec<&str> {
    let mut k: Vec<&str> = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .map(String::as_str)
        .collect();
    k.sort_unstable();
    k
}

fn run(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = hvnet()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let input = stdin.unwrap_or("").to_string();
    let mut pipe = child.stdin.take().unwrap();
    std::thread::spawn(move || {
        let _ = pipe.write_all(input.as_bytes());
    });
    child.wait_with_output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn json_lines(o: &Output) -> Vec<serde_json::Value> {
    stdout(o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A directory with every top-level corpus file except devd.conf (and optionally devmatch.conf).
fn etc_devd(with_devmatch: bool) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(corpus_dir()).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_str().unwrap().to_string();
        if p.is_file()
            && name.ends_with(".conf")
            && name != "devd.conf"
            && (with_devmatch || name != "devmatch.conf")
        {
            std::fs::copy(&p, d.path().join(&name)).unwrap();
        }
    }
    d
}

#[test]
fn check_reports_counts_variables_and_warnings() {
    let dir = etc_devd(true);
    let map = format!("/etc/devd={}", dir.path().display());
    let o = run(
        &[
            "devd",
            "check",
            "-f",
            &corpus("devd.conf"),
            "--dir-map",
            &map,
            "--json",
        ],
        None,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v = &json_lines(&o)[0];
    assert_eq!(v["rules"]["total"], 657);
    assert_eq!(
        v["rules"]["nomatch"].as_u64().unwrap()
            + v["rules"]["notify"].as_u64().unwrap()
            + v["rules"]["attach"].as_u64().unwrap()
            + v["rules"]["detach"].as_u64().unwrap(),
        657
    );
    assert!(v["variables"]["wifi-driver-regex"]
        .as_str()
        .unwrap()
        .starts_with("(ath|"));
    assert_eq!(v["warnings"][0]["line"], 82);
    let text = run(
        &[
            "devd",
            "check",
            "-f",
            &corpus("devd.conf"),
            "--dir-map",
            &map,
        ],
        None,
    );
    let t = stdout(&text);
    assert!(
        t.contains("657 rules") && t.contains("wifi-driver-regex") && t.contains("warnings: 1"),
        "{t}"
    );
}

#[test]
fn check_syntax_error_is_file_line_message_exit_1() {
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("bad.conf");
    std::fs::write(&f, "notify 0 {\n  match \"system\" \"IFNET\"\n};\n").unwrap();
    let o = run(&["devd", "check", "-f", f.to_str().unwrap()], None);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(
        err.trim(),
        format!("{}:3: expected ';', found '}}'", f.display())
    );
    let o = run(&["devd", "check", "-f", "/nonexistent/devd.conf"], None);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr)
        .starts_with("/nonexistent/devd.conf: cannot open config file"));
}

#[test]
fn match_json_one_object_per_event_from_args_and_stdin() {
    let conf = corpus("hyperv.conf");
    let o = run(
        &[
            "devd",
            "match",
            "-f",
            &conf,
            "--json",
            "!system=HYPERV_NIC_VF subsystem=hn0 type=VF_UP",
            "!system=IFNET subsystem=hn0 type=LINK_UP",
        ],
        None,
    );
    let lines = json_lines(&o);
    assert_eq!(lines.len(), 2);
    // Exactly the DESIGN.md contract: {"event","kind","matched":{"file","line","priority"}|null,"actions"}.
    for l in &lines {
        assert_eq!(keys(l), ["actions", "event", "kind", "matched"], "{l}");
        assert!(l["event"].is_string() && l["kind"].is_string() && l["actions"].is_array());
        assert!(l["matched"].is_null() || keys(&l["matched"]) == ["file", "line", "priority"]);
    }
    assert_eq!(
        lines[0]["event"],
        "!system=HYPERV_NIC_VF subsystem=hn0 type=VF_UP"
    );
    assert!(lines[0]["matched"]["line"].is_u64() && lines[0]["matched"]["priority"].is_i64());
    assert_eq!(lines[0]["kind"], "notify");
    assert_eq!(lines[0]["matched"]["priority"], 10);
    assert_eq!(lines[0]["matched"]["line"], 97);
    assert!(lines[0]["matched"]["file"]
        .as_str()
        .unwrap()
        .ends_with("hyperv.conf"));
    assert_eq!(
        lines[0]["actions"],
        serde_json::json!(["/usr/libexec/hyperv/hyperv_vfup $'hn0'"])
    );
    assert_eq!(lines[1]["matched"], serde_json::Value::Null);
    assert_eq!(lines[1]["actions"], serde_json::json!([]));

    let events = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/examples/hyperv-events.txt"),
    )
    .unwrap();
    let o = run(&["devd", "match", "-f", &conf, "--json"], Some(&events));
    let lines = json_lines(&o);
    assert_eq!(lines.len(), events.lines().count());
    for l in &lines {
        assert_eq!(keys(l), ["actions", "event", "kind", "matched"], "{l}");
    }
    let kinds: std::collections::BTreeSet<&str> =
        lines.iter().map(|l| l["kind"].as_str().unwrap()).collect();
    assert!(
        kinds.is_subset(&["attach", "detach", "nomatch", "notify", "unknown"].into()),
        "{kinds:?}"
    );
    let run_for = |needle: &str| -> Vec<String> {
        lines
            .iter()
            .filter(|l| l["event"].as_str().unwrap().contains(needle))
            .flat_map(|l| {
                l["actions"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|a| a.as_str().unwrap().to_string())
            })
            .collect()
    };
    assert_eq!(
        run_for("subsystem=mce0 type=IFATTACH"),
        ["/usr/libexec/hyperv/hyperv_vfattach $'mce0' 0"]
    );
    assert_eq!(
        run_for("type=CREATE cdev=hv_kvp_dev"),
        ["/usr/sbin/hv_kvp_daemon"]
    );
    assert_eq!(
        run_for("type=DESTROY cdev=hv_kvp_dev"),
        ["pkill -x hv_kvp_daemon"]
    );
}

/// A line longer than the engine takes is skipped with a warning naming its length; the
/// events around it are still decided and the exit status stays 0.
#[test]
fn match_skips_an_over_long_line_with_a_warning() {
    let conf = corpus("hyperv.conf");
    let long = format!(
        "!system=IFNET subsystem={} type=LINK_UP",
        "x".repeat(20_000)
    );
    let input = format!(
        "!system=IFNET subsystem=hn0 type=LINK_UP\n{long}\n!system=HYPERV_NIC_VF subsystem=hn0 type=VF_UP\n"
    );
    let o = run(&["devd", "match", "-f", &conf, "--json"], Some(&input));
    assert!(o.status.success());
    let lines = json_lines(&o);
    assert_eq!(lines.len(), 2);
    assert_eq!(
        lines[1]["event"],
        "!system=HYPERV_NIC_VF subsystem=hn0 type=VF_UP"
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&format!(
            "event skipped: event line of {} bytes",
            long.len()
        )),
        "{err}"
    );
}

#[test]
fn match_text_and_media() {
    let conf = corpus("dhclient.conf");
    let ev = "!system=IFNET subsystem=em0 type=LINK_UP";
    let o = run(
        &["devd", "match", "-f", &conf, "--media", "em0=ethernet", ev],
        None,
    );
    let t = stdout(&o);
    assert!(
        t.contains("dhclient.conf:") && t.contains("action: service dhclient quietstart $'em0'"),
        "{t}"
    );
    let o = run(&["devd", "match", "-f", &conf, ev], None);
    assert!(stdout(&o).contains("no rule matched"));
    let o = run(&["devd", "match", "-f", &conf, "--media", "em0", ev], None);
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn bench_json_fields() {
    let dir = etc_devd(false);
    let map = format!("/etc/devd={}", dir.path().display());
    let o = run(
        &[
            "devd",
            "bench",
            "-f",
            &corpus("devd.conf"),
            "--dir-map",
            &map,
            "--count",
            "300",
            "--seconds",
            "0.02",
            "--json",
        ],
        None,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = json_lines(&o);
    assert_eq!(out.len(), 1, "one JSON object");
    let v = &out[0];
    // The DESIGN.md contract fields (more may follow).
    for k in [
        "events",
        "rules",
        "hvnet_events_per_sec",
        "linear_events_per_sec",
        "speedup",
    ] {
        assert!(v.get(k).is_some(), "bench --json lacks {k}: {v}");
    }
    assert_eq!(v["events"], 300);
    assert_eq!(v["rules"], 654);
    for k in ["hvnet_events_per_sec", "linear_events_per_sec", "speedup"] {
        assert!(v[k].as_f64().unwrap() > 0.0, "{k}");
    }
    let ratio =
        v["hvnet_events_per_sec"].as_f64().unwrap() / v["linear_events_per_sec"].as_f64().unwrap();
    assert!(
        (ratio - v["speedup"].as_f64().unwrap()).abs() <= 0.01 * ratio + 0.01,
        "speedup is hvnet/linear: {v}"
    );
    let d = tempfile::tempdir().unwrap();
    let events = d.path().join("ev.txt");
    std::fs::write(&events, "!system=HYPERV_NIC_VF subsystem=hn0 type=VF_UP\n\n!system=ETHERNET subsystem=mce0 type=IFATTACH\n").unwrap();
    let o = run(
        &[
            "devd",
            "bench",
            "-f",
            &corpus("hyperv.conf"),
            "--events",
            events.to_str().unwrap(),
            "--seconds",
            "0.01",
            "--json",
        ],
        None,
    );
    assert_eq!(json_lines(&o)[0]["events"], 2);
}
