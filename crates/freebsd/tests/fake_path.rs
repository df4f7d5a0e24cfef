//! The backend against fake FreeBSD commands first on PATH (how the
//! simulator drives it). One test only: it changes this process's PATH.

use std::os::unix::fs::PermissionsExt;

use hvnet_freebsd::{FreeBsdBackend, SystemRunner};
use hvnet_vf::model::{IfKind, Op};
use hvnet_vf::Backend;

fn script(dir: &std::path::Path, name: &str, body: &str) {
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn observe_and_apply_through_fake_commands_on_path() {
    let dir = std::env::temp_dir().join(format!("hvnet-fake-bin-{}", std::process::id()));
    let bin = dir.join("bin");
    let root = dir.join("root");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(root.join("var/run/dhclient")).unwrap();
    std::fs::write(root.join("var/run/dhclient/dhclient.hn0.pid"), "4242\n").unwrap();
    let log = dir.join("log");
    let log_s = log.to_str().unwrap();
    script(
        &bin,
        "ifconfig",
        &format!(
            "echo \"ifconfig $*\" >> {log_s}\n\
             case \"$1\" in\n\
             -a) printf 'hn0: flags=8843<UP,RUNNING> metric 0 mtu 1500\\n\\tether 00:15:5d:00:00:01\\n\\tinet 10.0.0.4 netmask 0xffffff00\\n\\tstatus: active\\nmce0: flags=8802<BROADCAST> metric 0 mtu 1500\\n\\tether 00:15:5d:00:00:01\\n' ;;\n\
             esac"
        ),
    );
    script(&bin, "sysctl", "case \"$2\" in hw.hn.vf_transparent) echo 0;; hw.hn.vfmap) echo mce0:hn0;; kern.osrelease) echo 13.2-RELEASE;; *) exit 1;; esac");
    script(&bin, "netstat", "printf 'Routing tables\\n\\nInternet:\\nDestination Gateway Flags Netif Expire\\ndefault 10.0.0.1 UGS hn0\\n'");
    script(&bin, "pgrep", "exit 1");
    script(&bin, "ps", "[ \"$2\" = 4242 ] && echo dhclient");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    // SAFETY: this test binary has a single test; nothing else reads the
    // environment concurrently.
    unsafe { std::env::set_var("PATH", path) };

    let runner = SystemRunner {
        path_lookup: true,
        file_root: Some(root.clone()),
    };
    let mut b = FreeBsdBackend::new(runner);
    let v = b.observe().unwrap();
    assert_eq!(v.interface("hn0").unwrap().kind, IfKind::Synthetic);
    assert!(v.interface("mce0").unwrap().is_vf());
    assert!(!v.interface("mce0").unwrap().admin_up);
    assert_eq!(v.routes.len(), 1);
    assert_eq!(v.dhcp_clients.len(), 1);
    assert_eq!(v.dhcp_clients[0].pid, 4242);
    b.apply(&Op::SetAdmin {
        iface: "mce0".into(),
        up: true,
    })
    .unwrap();
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.lines().any(|l| l == "ifconfig mce0 up"), "{logged}");
    std::fs::remove_dir_all(dir).unwrap();
}
