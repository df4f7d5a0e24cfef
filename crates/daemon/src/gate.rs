//! The readiness gate hvnet.conf configures (`readiness_file`, `readiness_command`) as a
//! [`GateProbe`]: a file test, or a command started in its own process group and polled
//! without waiting. The manager stops a command that has not exited within its time limit
//! ([`hvnet_vf::manager::GATE_TIME_LIMIT`]); stopping kills its whole process group.

use std::path::PathBuf;
use std::process::Child;
use std::time::Duration;

use hvnet_vf::GateProbe;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

use crate::config::ReadinessGate;

/// The probe for a configured gate.
pub fn probe(gate: &ReadinessGate) -> Box<dyn GateProbe> {
    match gate {
        ReadinessGate::File(f) => Box::new(FileGate {
            path: PathBuf::from(f),
            answer: None,
        }),
        ReadinessGate::Command(argv) => Box::new(CommandGate {
            argv: argv.clone(),
            child: None,
            failed: false,
            last_error: None,
        }),
    }
}

/// Ready once a file exists.
pub struct FileGate {
    path: PathBuf,
    answer: Option<bool>,
}

impl GateProbe for FileGate {
    fn start(&mut self, _now: Duration) {
        self.answer = Some(self.path.exists());
    }

    fn poll(&mut self, _now: Duration) -> Option<bool> {
        self.answer.take()
    }

    fn stop(&mut self) {
        self.answer = None;
    }

    fn describe(&self) -> String {
        format!("readiness_file {}", self.path.display())
    }
}

/// Ready once a command (argv, no shell) exits 0.
pub struct CommandGate {
    argv: Vec<String>,
    child: Option<Child>,
    /// The running check could not start: it answers "not ready".
    failed: bool,
    /// The last start error, logged once until it changes.
    last_error: Option<String>,
}

impl CommandGate {
    fn spawn(&self) -> std::io::Result<Child> {
        let (program, args) = self
            .argv
            .split_first()
            .ok_or_else(|| std::io::Error::other("an empty command"))?;
        // Its own group: stopping it reaches whatever it started.
        hvnet_sys::process::spawn_in_own_group(program, args)
    }

    /// The running command's pid.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }
}

impl GateProbe for CommandGate {
    fn start(&mut self, _now: Duration) {
        match self.spawn() {
            Ok(c) => {
                self.child = Some(c);
                self.failed = false;
                self.last_error = None;
            }
            Err(e) => {
                let e = e.to_string();
                if self.last_error.as_deref() != Some(e.as_str()) {
                    tracing::warn!("readiness_command {:?}: {e}; not ready", self.argv);
                }
                self.last_error = Some(e);
                self.failed = true;
            }
        }
    }

    fn poll(&mut self, _now: Duration) -> Option<bool> {
        if std::mem::take(&mut self.failed) {
            return Some(false);
        }
        let child = self.child.as_mut()?;
        match child.try_wait() {
            Ok(Some(status)) => {
                self.child = None;
                Some(status.success())
            }
            Ok(None) => None,
            Err(e) => {
                tracing::warn!("readiness_command {:?}: {e}; not ready", self.argv);
                self.stop();
                Some(false)
            }
        }
    }

    fn stop(&mut self) {
        self.failed = false;
        if let Some(mut child) = self.child.take() {
            if let Ok(pid) = i32::try_from(child.id()) {
                let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn describe(&self) -> String {
        format!("readiness_command {:?}", self.argv)
    }
}

impl Drop for CommandGate {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests;
