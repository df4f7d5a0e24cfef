//! `hvnet vfattach` / `hvnet vfup` drop-ins against fake FreeBSD tools on
//! PATH: arguments and exit codes as the shell scripts have them.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

/// A fake tool that logs its argv to `log` and answers from a table.
fn tool(bin: &Path, name: &str, body: &str) {
    let p = bin.join(name);
    fs::write(
        &p,
        format!("#!/bin/sh\necho \"{name} $*\" >> \"$FAKE_LOG\"\n{body}\n"),
    )
    .unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
}

struct Guest {
    dir: tempfile::TempDir,
}

impl Guest {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("bin")).unwrap();
        fs::create_dir_all(dir.path().join("etc")).unwrap();
        Guest { dir }
    }
    fn bin(&self) -> std::path::PathBuf {
        self.dir.path().join("bin")
    }
    fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }
    fn run(&self, args: &[&str]) -> (i32, String) {
        let path = format!("{}:/usr/bin:/bin", self.bin().display());
        let out = Command::new(env!("CARGO_BIN_EXE_hvnet"))
            .args(args)
            .arg("--root")
            .arg(self.dir.path())
            .env("PATH", path)
            .env("FAKE_LOG", self.dir.path().join("log"))
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }
}

#[test]
fn vfattach_does_nothing_on_a_transparent_kernel() {
    let g = Guest::new();
    tool(&g.bin(), "sysctl", "echo 1");
    tool(&g.bin(), "daemon", "exit 0");
    let (code, _) = g.run(&["vfattach", "mce0", "0"]);
    assert_eq!(code, 0);
    assert!(!g.log().contains("daemon"), "{}", g.log());
}

#[test]
fn vfattach_daemonizes_a_delayed_copy_for_a_listed_vf() {
    let g = Guest::new();
    fs::write(g.dir.path().join("etc/rc.conf"), "hyperv_vf_delay=\"7\"\n").unwrap();
    tool(
        &g.bin(),
        "sysctl",
        "case \"$2\" in hw.hn.vf_transparent) echo 0;; hw.hn.vflist) echo 'mce0 mce1';; esac",
    );
    tool(&g.bin(), "daemon", "exit 0");
    let (code, _) = g.run(&["vfattach", "mce1", "0"]);
    assert_eq!(code, 0);
    let log = g.log();
    let d = log
        .lines()
        .find(|l| l.starts_with("daemon"))
        .expect("daemon ran");
    assert!(d.starts_with("daemon -f "), "{d}");
    assert!(d.ends_with("vfattach mce1 7"), "{d}");
    // Not a VF: nothing.
    let g2 = Guest::new();
    tool(
        &g2.bin(),
        "sysctl",
        "case \"$2\" in hw.hn.vf_transparent) echo 0;; hw.hn.vflist) echo 'mce0';; esac",
    );
    tool(&g2.bin(), "daemon", "exit 0");
    assert_eq!(g2.run(&["vfattach", "em0", "0"]).0, 0);
    assert!(!g2.log().contains("daemon"));
}

#[test]
fn vfup_reports_a_detached_vf_and_exits_zero() {
    let g = Guest::new();
    tool(&g.bin(), "sysctl", "echo");
    tool(&g.bin(), "ifconfig", "exit 1");
    let (code, out) = g.run(&["vfup", "hn0"]);
    assert_eq!(code, 0);
    assert!(out.contains("hn0: VF was detached"), "{out}");
}

#[test]
fn vfup_exits_one_when_the_lagg_cannot_be_created() {
    let g = Guest::new();
    tool(&g.bin(), "sysctl", "echo mce0");
    tool(&g.bin(), "ifconfig", "exit 1");
    let (code, out) = g.run(&["vfup", "hn0"]);
    assert_eq!(code, 1, "{out}\n{}", g.log());
    assert!(out.contains("lagg0 creation failed"), "{out}");
    assert!(g.log().contains("ifconfig lagg0 create"), "{}", g.log());
}

#[test]
fn vfup_runs_the_override_with_its_status() {
    let g = Guest::new();
    let dir = g.dir.path().join("hooks");
    fs::create_dir_all(&dir).unwrap();
    // The override is looked up under the root, run by its guest path.
    tool(&g.bin(), "sysctl", "echo mce0");
    let hook = dir.join("hyperv_vfup.hn0");
    fs::write(&hook, "#!/bin/sh\nexit 3\n").unwrap();
    fs::set_permissions(&hook, fs::Permissions::from_mode(0o755)).unwrap();
    let (code, _) = g.run(&["vfup", "hn0", "--override-dir", "/hooks"]);
    // With a file root the runner resolves the hook under it or fails to
    // start it (127); either way the script's status is passed through.
    assert_eq!(
        code, 127,
        "the guest path does not exist on the host: {code}"
    );
}
