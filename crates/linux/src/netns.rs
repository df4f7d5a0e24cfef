//! Named network namespaces for the lab and the tests: created with `ip netns` (setup only,
//! never on a failover path), entered per thread with setns(2), always deleted on drop.

use std::fs::File;
use std::process::Command;

/// A lab/test setup step failed.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    #[error("running `{cmd}`: {detail}")]
    Command { cmd: String, detail: String },
    #[error("entering network namespace {name}: {source}")]
    Enter {
        name: String,
        source: std::io::Error,
    },
}

/// Run `ip ARGS` (optionally `-n NS`), failing with its stderr.
pub fn ip(ns: Option<&str>, args: &[&str]) -> Result<String, NetnsError> {
    let mut full: Vec<&str> = Vec::new();
    if let Some(n) = ns {
        full.extend(["-n", n]);
    }
    full.extend_from_slice(args);
    run("ip", &full)
}

/// Run a program with arguments (no shell), returning stdout or an error naming the command.
pub fn run(program: &str, args: &[&str]) -> Result<String, NetnsError> {
    let cmd = format!("{program} {}", args.join(" "));
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| NetnsError::Command {
            cmd: cmd.clone(),
            detail: e.to_string(),
        })?;
    if !out.status.success() {
        return Err(NetnsError::Command {
            cmd,
            detail: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Whether the real-kernel lab can run here: root and `ip`/`tc` present. `Err` says why not.
pub fn lab_available() -> Result<(), String> {
    if !nix::unistd::geteuid().is_root() {
        return Err("not root: root (CAP_NET_ADMIN) is needed".into());
    }
    if !has_cap_net_admin() {
        return Err("CAP_NET_ADMIN missing: root (CAP_NET_ADMIN) is needed".into());
    }
    for tool in ["ip", "tc"] {
        if run(tool, &["-V"]).is_err() {
            return Err(format!("`{tool}` (iproute2) not found"));
        }
    }
    Ok(())
}

/// capability(7) number of CAP_NET_ADMIN.
pub const CAP_NET_ADMIN: u32 = 12;

/// Whether the calling process has CAP_NET_ADMIN in its effective set (`CapEff` in
/// /proc/self/status; false if that cannot be read).
pub fn has_cap_net_admin() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .as_deref()
        .and_then(cap_eff)
        .is_some_and(|caps| caps & (1 << CAP_NET_ADMIN) != 0)
}

/// The `CapEff:` mask of a /proc/PID/status text.
fn cap_eff(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
}

/// A set of namespaces deleted when dropped (also while unwinding from a panic).
#[derive(Debug, Default)]
pub struct Namespaces {
    names: Vec<String>,
}

impl Namespaces {
    pub fn new() -> Self {
        Namespaces::default()
    }

    /// Create namespace `name` (lo up); it is deleted with this guard.
    pub fn add(&mut self, name: &str) -> Result<(), NetnsError> {
        ip(None, &["netns", "add", name])?;
        self.names.push(name.to_string());
        ip(Some(name), &["link", "set", "lo", "up"])?;
        Ok(())
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Delete them all now (idempotent).
    pub fn teardown(&mut self) {
        for n in self.names.drain(..).rev() {
            let _ = ip(None, &["netns", "del", &n]);
        }
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        self.teardown();
    }
}

/// Move the calling thread into namespace `name` (affects this thread only).
pub fn enter(name: &str) -> Result<(), NetnsError> {
    let err = |source| NetnsError::Enter {
        name: name.to_string(),
        source,
    };
    let f = File::open(format!("/run/netns/{name}")).map_err(err)?;
    // CLONE_NEWNET only changes the calling thread's namespace.
    nix::sched::setns(&f, nix::sched::CloneFlags::CLONE_NEWNET).map_err(|e| err(e.into()))
}

/// Where the network sysctls are: the only place outside netlink the Linux backend writes
/// (the systemd unit must leave it writable).
pub const NET_SYSCTL_DIR: &str = "/proc/sys/net";

/// Write a sysctl under [`NET_SYSCTL_DIR`] as seen from the calling thread's namespace.
pub fn write_net_sysctl(path: &str, value: &str) -> std::io::Result<()> {
    std::fs::write(format!("{NET_SYSCTL_DIR}/{path}"), value)
}

#[cfg(test)]
mod tests {
    use super::{cap_eff, CAP_NET_ADMIN};

    #[test]
    fn reads_the_effective_capability_mask() {
        let status = "Name:\tx\nCapInh:\t0000000000000000\nCapEff:\t000001ffffffefff\n";
        let caps = cap_eff(status).unwrap();
        assert_eq!(caps & (1 << CAP_NET_ADMIN), 0);
        assert_ne!(caps & 1, 0);
        assert_eq!(cap_eff("CapEff:\tzz\n"), None);
        assert_eq!(cap_eff(""), None);
    }
}
