//! Running commands: the [`CommandRunner`] trait, the real runner, and a
//! scripted fake for tests.

use std::collections::{HashMap, VecDeque};
use std::process::Stdio;

use crate::cmd::Command;

/// What a command printed and how it ended.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Output {
    /// Exit status; -1 when killed by a signal.
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn ok(stdout: &str) -> Self {
        Output {
            status: 0,
            stdout: stdout.to_string(),
            stderr: String::new(),
        }
    }

    pub fn failed(status: i32, stderr: &str) -> Self {
        Output {
            status,
            stdout: String::new(),
            stderr: stderr.to_string(),
        }
    }

    pub fn success(&self) -> bool {
        self.status == 0
    }
}

/// A command could not be started at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{command}: cannot run: {reason}")]
pub struct RunError {
    pub command: String,
    pub reason: String,
}

/// Runs commands. Implemented by [`SystemRunner`] and by fakes.
pub trait CommandRunner {
    fn run(&mut self, cmd: &Command) -> Result<Output, RunError>;

    /// Whether a path exists (device nodes under /dev).
    fn exists(&mut self, path: &str) -> bool {
        std::path::Path::new(path).exists()
    }

    /// Read a small file (pid files); `Ok(None)` if it does not exist.
    fn read_file(&mut self, path: &str) -> Result<Option<String>, RunError> {
        match std::fs::read(path) {
            Ok(b) => Ok(Some(String::from_utf8_lossy(&b).into_owned())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(RunError {
                command: format!("read {path}"),
                reason: e.to_string(),
            }),
        }
    }
}

/// Runs commands with std::process, waiting for them to finish.
#[derive(Debug, Clone, Default)]
pub struct SystemRunner {
    /// Run programs by file name through `PATH` instead of their absolute
    /// path (so fake FreeBSD commands first on PATH are used).
    pub path_lookup: bool,
    /// Read files (pid files, /dev nodes) under this directory instead of
    /// `/` (a simulated guest's file tree).
    pub file_root: Option<std::path::PathBuf>,
}

impl SystemRunner {
    /// Programs by absolute path (`/sbin/ifconfig`).
    pub fn new() -> Self {
        SystemRunner::default()
    }

    /// Programs by name through `PATH` (`ifconfig`).
    pub fn with_path_lookup() -> Self {
        SystemRunner {
            path_lookup: true,
            file_root: None,
        }
    }

    fn host_path(&self, path: &str) -> std::path::PathBuf {
        match &self.file_root {
            Some(root) => root.join(path.trim_start_matches('/')),
            None => std::path::PathBuf::from(path),
        }
    }
}

impl CommandRunner for SystemRunner {
    fn exists(&mut self, path: &str) -> bool {
        self.host_path(path).exists()
    }

    fn read_file(&mut self, path: &str) -> Result<Option<String>, RunError> {
        match std::fs::read(self.host_path(path)) {
            Ok(b) => Ok(Some(String::from_utf8_lossy(&b).into_owned())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(RunError {
                command: format!("read {path}"),
                reason: e.to_string(),
            }),
        }
    }

    fn run(&mut self, cmd: &Command) -> Result<Output, RunError> {
        let program = if self.path_lookup {
            cmd.name()
        } else {
            cmd.program.as_str()
        };
        let out = std::process::Command::new(program)
            .args(&cmd.args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| RunError {
                command: cmd.to_string(),
                reason: e.to_string(),
            })?;
        Ok(Output {
            status: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }
}

/// A fake runner: answers commands from a table keyed by
/// [`Command::label`] (`ifconfig -a`, `sysctl -n hw.hn.vflist`), records
/// every command it was asked to run. Unknown commands succeed with no
/// output unless `strict` is set (then they fail with status 127).
#[derive(Debug, Clone, Default)]
pub struct ScriptedRunner {
    answers: HashMap<String, VecDeque<Output>>,
    sticky: HashMap<String, Output>,
    pub strict: bool,
    pub calls: Vec<Command>,
    /// Files `read_file` returns (and `exists` sees), by path.
    pub files: HashMap<String, String>,
}

impl ScriptedRunner {
    pub fn new() -> Self {
        Self::default()
    }

    /// Always answer `label` with `out`.
    pub fn answer(&mut self, label: &str, out: Output) -> &mut Self {
        self.sticky.insert(label.to_string(), out);
        self
    }

    /// Answer `label` once with `out` (queued before any sticky answer).
    pub fn answer_once(&mut self, label: &str, out: Output) -> &mut Self {
        self.answers
            .entry(label.to_string())
            .or_default()
            .push_back(out);
        self
    }

    /// Labels of the commands run, in order.
    pub fn labels(&self) -> Vec<String> {
        self.calls.iter().map(Command::label).collect()
    }
}

impl CommandRunner for ScriptedRunner {
    fn exists(&mut self, path: &str) -> bool {
        self.files.contains_key(path)
    }

    fn read_file(&mut self, path: &str) -> Result<Option<String>, RunError> {
        Ok(self.files.get(path).cloned())
    }

    fn run(&mut self, cmd: &Command) -> Result<Output, RunError> {
        self.calls.push(cmd.clone());
        let label = cmd.label();
        if let Some(q) = self.answers.get_mut(&label) {
            if let Some(o) = q.pop_front() {
                return Ok(o);
            }
        }
        if let Some(o) = self.sticky.get(&label) {
            return Ok(o.clone());
        }
        if self.strict {
            Ok(Output::failed(127, &format!("{label}: not scripted")))
        } else {
            Ok(Output::default())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd;

    #[test]
    fn scripted_runner_answers_and_records() {
        let mut r = ScriptedRunner::new();
        r.answer("ifconfig -l", Output::ok("lo0 hn0\n"));
        r.answer_once("sysctl -n hw.hn.vflist", Output::ok("mce0\n"));
        assert_eq!(r.run(&cmd::ifconfig_list()).unwrap().stdout, "lo0 hn0\n");
        assert_eq!(
            r.run(&cmd::sysctl_read("hw.hn.vflist")).unwrap().stdout,
            "mce0\n"
        );
        assert_eq!(r.run(&cmd::sysctl_read("hw.hn.vflist")).unwrap().stdout, "");
        r.strict = true;
        assert_eq!(r.run(&cmd::ifconfig_up("x")).unwrap().status, 127);
        assert_eq!(r.labels()[0], "ifconfig -l");
        assert_eq!(r.calls.len(), 4);
    }

    #[test]
    fn system_runner_runs_and_reports_missing_programs() {
        let mut r = SystemRunner::with_path_lookup();
        let out = r
            .run(&Command::new("/nonexistent/true", Vec::<String>::new()))
            .unwrap();
        assert!(out.success());
        let mut abs = SystemRunner::new();
        let e = abs
            .run(&Command::new("/nonexistent/definitely-not-here", ["x"]))
            .unwrap_err();
        assert!(e
            .to_string()
            .starts_with("/nonexistent/definitely-not-here x: cannot run"));
    }

    #[test]
    fn system_runner_reads_files_under_its_root() {
        let t = std::env::temp_dir().join(format!("hvnet-freebsd-runner-{}", std::process::id()));
        std::fs::create_dir_all(t.join("var/run/dhclient")).unwrap();
        std::fs::write(t.join("var/run/dhclient/dhclient.hn0.pid"), "42\n").unwrap();
        let mut r = SystemRunner {
            path_lookup: true,
            file_root: Some(t.clone()),
        };
        assert_eq!(
            r.read_file("/var/run/dhclient/dhclient.hn0.pid")
                .unwrap()
                .as_deref(),
            Some("42\n")
        );
        assert!(r.exists("/var/run/dhclient"));
        assert_eq!(r.read_file("/nope").unwrap(), None);
        std::fs::remove_dir_all(t).unwrap();
    }
}
