//! Named network namespaces for the lab and the tests: created with `ip netns` (setup only,
//! never on a failover path), entered per thread with setns(2), always deleted on drop.

use std::fs::File;
use std::os::fd::AsRawFd;
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
    if unsafe { libc::geteuid() } != 0 {
        return Err("not root (CAP_NET_ADMIN is needed)".into());
    }
    for tool in ["ip", "tc"] {
        if run(tool, &["-V"]).is_err() {
            return Err(format!("`{tool}` (iproute2) not found"));
        }
    }
    Ok(())
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
    // SAFETY: setns on a valid fd we own; CLONE_NEWNET only changes this thread's netns.
    if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(err(std::io::Error::last_os_error()));
    }
    Ok(())
}

/// Write a sysctl under /proc/sys/net as seen from the calling thread's namespace.
pub fn write_net_sysctl(path: &str, value: &str) -> std::io::Result<()> {
    std::fs::write(format!("/proc/sys/net/{path}"), value)
}
