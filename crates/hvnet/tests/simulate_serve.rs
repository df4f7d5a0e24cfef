//! Server mode: an unmodified FreeBSD shell script (the original
//! hyperv_vfattach, paths rewritten as the baseline harness does) runs
//! against the simulator with the fake commands first on PATH.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const HYPERV_VFATTACH: &str = r#"#!/bin/sh
sysctl -n hw.hn.vf_transparent > /dev/null 2>&1
if [ $? -ne 0 ]
then
	vf_transparent=0
else
	vf_transparent=`sysctl -n hw.hn.vf_transparent`
fi
if [ $vf_transparent -ne 0 ]
then
	exit 0
fi
iface=$1
delay=$2
if [ $delay -gt 0 ]
then
	sleep $delay
	ifconfig $iface up
	exit $?
fi
. /etc/rc.conf
sysctl -n hw.hn.vflist > /dev/null 2>&1
if [ $? -ne 0 ]
then
	exit 0
fi
vf_list=`sysctl -n hw.hn.vflist`
for vf in $vf_list
do
	if [ $vf = $iface ]
	then
		test $hyperv_vf_delay -ge 2 > /dev/null 2>&1
		if [ $? -ne 0 ]
		then
			hyperv_vf_delay=2
		fi
		daemon -f /usr/libexec/hyperv/hyperv_vfattach \
		    $iface $hyperv_vf_delay
		break
	fi
done
"#;

fn sh(dir: &Path, script: &str) -> (i32, String) {
    let path = format!(
        "{}/bin:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("sh")
        .arg("-c")
        .arg(script)
        .env("PATH", path)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn original_vfattach_script_runs_against_the_simulator() {
    let tmp = tempfile::tempdir().unwrap();
    let scn = tmp.path().join("nt.scn");
    std::fs::write(
        &scn,
        "mode non-transparent\nduration 600s\nrc ifconfig_hn0=\"DHCP\"\nat 5s offer-vf hn0\n",
    )
    .unwrap();
    let rc = tmp.path().join("rc.conf");
    std::fs::write(&rc, "hyperv_vf_delay=\"3\"\n").unwrap();
    let script = tmp.path().join("hyperv_vfattach");
    let text = HYPERV_VFATTACH
        .replace("/etc/rc.conf", &rc.to_string_lossy())
        .replace(
            "/usr/libexec/hyperv/hyperv_vfattach",
            &script.to_string_lossy(),
        );
    std::fs::write(&script, text).unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();

    let dir = tmp.path().join("sim");
    let server = Command::new(env!("CARGO_BIN_EXE_hvnet"))
        .args([
            "simulate",
            scn.to_str().unwrap(),
            "--serve",
            dir.to_str().unwrap(),
        ])
        .env("HVNET_SIM_WALL", "0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while !dir.join("sim.sock").exists() {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "server did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    assert_eq!(sh(&dir, "sysctl -n hw.hn.vflist"), (0, "\n".into()));
    assert_eq!(
        sh(&dir, "sleep 6; sysctl -n hw.hn.vflist"),
        (0, "mce0\n".into())
    );
    let (_, show) = sh(&dir, "ifconfig hn0");
    assert!(show.starts_with("hn0: flags="), "{show}");
    // devd would run: hyperv_vfattach mce0 0 -> daemon -f ... mce0 3.
    let (code, _) = sh(&dir, &format!("{} mce0 0", script.display()));
    assert_eq!(code, 0);
    let t0 = Instant::now();
    loop {
        let (_, rxvf) = sh(&dir, "sysctl -n dev.hn.0.rxvf");
        if rxvf == "mce0\n" {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(20), "VF never came up");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (_, now) = sh(&dir, "sysctl -n hw.hn.vflist; ifconfig mce0");
    assert!(
        now.contains("mce0: flags=8843<UP,BROADCAST,RUNNING"),
        "{now}"
    );
    let events = std::fs::read_to_string(dir.join("devctl")).unwrap();
    assert!(events.contains("!system=ETHERNET subsystem=mce0 type=IFATTACH\n"));
    assert!(events.contains("!system=HYPERV_NIC_VF subsystem=hn0 type=VF_UP\n"));

    // Virtual time moves only with sleep.
    assert_eq!(sh(&dir, "sleep 5").0, 0);
    let stop = Command::new(env!("CARGO_BIN_EXE_hvnet"))
        .args(["simulate", "--client", dir.to_str().unwrap(), "--", "stop"])
        .status()
        .unwrap();
    assert!(stop.success());
    let out = server.wait_with_output().unwrap();
    let v: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().last().unwrap()).unwrap();
    // The VF is up but no hyperv_vfup built a lagg: hn0 holds the address,
    // so frames the VF receives are dropped.
    assert!(v["packets"]["sent"].as_u64().unwrap() > 0);
    assert!(
        v["packets"]["lost_by_reason"]["wrong_interface"]
            .as_u64()
            .unwrap()
            > 0
    );
    assert!(dir.join("summary.json").exists());
}

/// `hvnet ARGS`, stopped after `limit` if still running: (exit code or None, stderr).
fn run_bounded(args: &[&std::ffi::OsStr], limit: Duration) -> (Option<i32>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hvnet"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    let code = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s.code();
        }
        if t0.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    (code, err)
}

#[test]
fn serve_refuses_a_directory_another_user_could_change() {
    // Tests run as root: chown makes a directory of another user.
    let tmp = tempfile::tempdir().unwrap();
    let theirs = tmp.path().join("theirs");
    std::fs::create_dir(&theirs).unwrap();
    std::os::unix::fs::chown(&theirs, Some(4321), Some(4321)).unwrap();
    let guest = theirs.join("guest");
    for speed in [None, Some("10")] {
        let mut args: Vec<&std::ffi::OsStr> = vec![
            "simulate".as_ref(),
            "demo".as_ref(),
            "--serve".as_ref(),
            guest.as_os_str(),
        ];
        if let Some(s) = speed {
            args.push("--speed".as_ref());
            args.push(s.as_ref());
        }
        let (code, err) = run_bounded(&args, Duration::from_secs(20));
        assert_eq!(code, Some(1), "{speed:?}: {err}");
        assert!(err.contains("owned by uid 4321, not by root"), "{err}");
        assert!(
            !guest.exists(),
            "{speed:?}: nothing is created in their directory"
        );
    }
}
