//! `hvnet lab` stopped by SIGINT or SIGTERM mid-run: exits promptly with an error and leaves
//! no namespace and no baseline shell behind. Needs root (CAP_NET_ADMIN); says when skipped.
#![cfg(target_os = "linux")]

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn skip_unless_root(test: &str) -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let net_admin = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .is_some_and(|c| c & (1 << 12) != 0);
    let have_ip = Command::new("ip").arg("-V").output().is_ok();
    if !net_admin || !have_ip {
        if std::env::var_os("HVNET_TEST_STRICT").is_some() {
            panic!("SKIPPED {test}: root (CAP_NET_ADMIN) and iproute2 are needed (HVNET_TEST_STRICT is set)");
        }
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED {test}: root (CAP_NET_ADMIN) and iproute2 are needed"
        );
    }
    !(net_admin && have_ip)
}

fn stop_mid_run(reactor: &str, signal: libc::c_int, after: Duration) {
    let child = Command::new(env!("CARGO_BIN_EXE_hvnet"))
        .args([
            "lab",
            "--pps",
            "2000",
            "--duration",
            "20",
            "--reactor",
            reactor,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    std::thread::sleep(after);
    let netns = Command::new("ip").args(["netns", "list"]).output().unwrap();
    let tag = format!("-{pid}");
    assert!(
        String::from_utf8_lossy(&netns.stdout).contains(&tag),
        "the lab was running"
    );
    let sent = Instant::now();
    let signal = nix::sys::signal::Signal::try_from(signal).unwrap();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), signal).unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(sent.elapsed() < Duration::from_secs(5), "stopped promptly");
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    let netns = Command::new("ip").args(["netns", "list"]).output().unwrap();
    let left = String::from_utf8_lossy(&netns.stdout);
    assert!(!left.contains(&tag), "namespaces left behind: {left}");
    let ps = Command::new("ps").args(["-eo", "args"]).output().unwrap();
    let ps = String::from_utf8_lossy(&ps.stdout);
    assert!(!ps.contains("hvnet-lab-shell"), "shell reactor left: {ps}");
    assert!(
        !ps.contains(&format!("hvnet-lab-{pid}")),
        "daemon reactor left: {ps}"
    );
}

#[test]
fn sigint_mid_run_tears_everything_down() {
    if skip_unless_root("sigint_mid_run_tears_everything_down") {
        return;
    }
    stop_mid_run("hvnet", libc::SIGINT, Duration::from_millis(2500));
}

#[test]
fn sigterm_during_the_shell_baseline_tears_everything_down() {
    if skip_unless_root("sigterm_during_the_shell_baseline_tears_everything_down") {
        return;
    }
    stop_mid_run("shell", libc::SIGTERM, Duration::from_millis(2500));
}
