//! Running one action the way devd's `my_system` does (spec §3.7): `SHELL -c CMD` (`argv[0]`
//! `sh`), every descriptor from 3 up closed, environment inherited (event variables are never
//! exported), SIGPIPE left ignored, SIGINT/SIGQUIT back to default, and the caller waits for
//! it. While the action runs devd itself ignores SIGINT and SIGQUIT. Unlike devd, each
//! action starts a session of its own, so a time limit kills everything it started.

use std::ffi::OsStr;
use std::io::Read as _;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::sys::wait::{waitid, Id, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

/// How one action ended.
#[derive(Debug)]
pub struct Outcome {
    /// None when the shell could not be started or waited for.
    pub status: Option<ExitStatus>,
    pub elapsed: Duration,
    /// It ran past the time limit and its process group was killed.
    pub timed_out: bool,
    /// Why there is no status (the OS error).
    pub error: Option<String>,
}

impl Outcome {
    fn ended(waited: std::io::Result<ExitStatus>, start: Instant) -> Outcome {
        let (status, error) = match waited {
            Ok(s) => (Some(s), None),
            Err(e) => (None, Some(e.to_string())),
        };
        Outcome {
            status,
            elapsed: start.elapsed(),
            timed_out: false,
            error,
        }
    }

    pub fn failed(&self) -> bool {
        !matches!(self.status, Some(s) if s.success())
    }

    /// A short human description of how it ended, for logs.
    pub fn describe(&self) -> String {
        match (&self.status, &self.error) {
            (None, Some(e)) => format!("could not be run: {e}"),
            (None, None) => "could not be run".into(),
            (Some(s), _) => match (s.code(), s.signal()) {
                (Some(c), _) => format!("exit status {c}"),
                (None, Some(sig)) => format!("killed by signal {sig}"),
                _ => "unknown status".into(),
            },
        }
    }
}

/// Mark every descriptor from 3 up close-on-exec, so exec closes them (closefrom(3)) while
/// std's own exec-error pipe keeps working until then. Async-signal-safe.
fn cloexec_from_3() {
    #[cfg(target_os = "linux")]
    {
        const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
        // SAFETY: close_range takes three integers (no pointers) and with CLOSE_RANGE_CLOEXEC
        // only sets close-on-exec flags: no descriptor is closed under a Rust owner.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_close_range,
                3 as libc::c_uint,
                libc::c_uint::MAX,
                CLOSE_RANGE_CLOEXEC,
            )
        };
        if rc == 0 {
            return;
        }
    }
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit through its pointer, which points at `rl`, a live
    // local of that type; it is async-signal-safe (this runs between fork and exec).
    let got = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) } == 0;
    let max = if got && rl.rlim_cur != libc::RLIM_INFINITY {
        i32::try_from(rl.rlim_cur.min(1 << 20)).unwrap_or(65536)
    } else {
        65536
    };
    for fd in 3..max {
        // SAFETY: F_SETFD takes integers only; a number that is not open gets EBADF, an open
        // one only gains FD_CLOEXEC, which closes nothing before exec. nix's fcntl needs a
        // BorrowedFd, which cannot be made for a number that may not be open.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
}

/// Set `sig`'s disposition to `handler`; returns the previous one, raw, so that it can be
/// put back whatever it was (nix's signal() refuses to return an SA_SIGINFO handler).
fn set_disposition(sig: libc::c_int, handler: libc::sighandler_t) -> libc::sighandler_t {
    // SAFETY: installing a handler is unsafe because it runs at any point. Callers pass
    // SIG_IGN, which runs nothing, or the value an earlier call returned for the same
    // signal, which puts back a handler that was already installed.
    unsafe { libc::signal(sig, handler) }
}

/// Build `SHELL -c CMD` as devd's `my_system` runs it, in a session of its own: the action
/// and everything it starts share one process group, which a time limit kills as a whole
/// (and, having no controlling terminal, an action never stops on terminal job control).
fn command(shell: &Path, cmd: &[u8]) -> Command {
    let mut command = Command::new(shell);
    command.arg0("sh").arg("-c").arg(OsStr::from_bytes(cmd));
    // SAFETY: pre_exec's closure runs in the forked child, where another thread may have
    // held a lock (malloc's too) at fork. This one allocates nothing and calls only
    // async-signal-safe functions (setsid, signal, close_range/getrlimit/fcntl), so it
    // cannot wait on such a lock.
    unsafe {
        command.pre_exec(|| {
            libc::setsid();
            // std resets SIGPIPE to default in the child; devd's actions inherit it ignored.
            libc::signal(libc::SIGPIPE, libc::SIG_IGN);
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            libc::signal(libc::SIGQUIT, libc::SIG_DFL);
            cloexec_from_3();
            Ok(())
        });
    }
    command
}

/// Run `cmd` with `SHELL -c` and wait for it (at most `limit`, then its process group is
/// killed).
pub fn run(shell: &Path, cmd: &[u8], limit: Option<Duration>) -> Outcome {
    spawn_and_wait(command(shell, cmd), limit, |_| {})
}

/// [`run`] with the action's standard output read back (standard input and error are
/// /dev/null): how the shell is probed at start, exactly as actions will run.
pub fn capture(shell: &Path, cmd: &[u8], limit: Duration) -> (Outcome, Vec<u8>) {
    let mut command = command(shell, cmd);
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut reader = None;
    let outcome = spawn_and_wait(command, Some(limit), |child| {
        let out = child.stdout.take();
        reader = Some(std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut out) = out {
                let _ = out.read_to_end(&mut buf);
            }
            buf
        }));
    });
    // Once the group is gone (killed at the limit) the pipe has no writer left.
    let output = reader.and_then(|r| r.join().ok()).unwrap_or_default();
    (outcome, output)
}

/// Spawn `command` (`started` sees the child first) and wait for it, SIGINT and SIGQUIT
/// ignored meanwhile as devd ignores them.
fn spawn_and_wait(
    mut command: Command,
    limit: Option<Duration>,
    started: impl FnOnce(&mut Child),
) -> Outcome {
    let start = Instant::now();
    let old_int = set_disposition(libc::SIGINT, libc::SIG_IGN);
    let old_quit = set_disposition(libc::SIGQUIT, libc::SIG_IGN);
    let outcome = match command.spawn() {
        Err(e) => Outcome {
            status: None,
            elapsed: start.elapsed(),
            timed_out: false,
            error: Some(e.to_string()),
        },
        Ok(mut child) => {
            started(&mut child);
            match limit {
                None => Outcome::ended(child.wait(), start),
                Some(limit) => wait_with_limit(&mut child, start, limit),
            }
        }
    };
    set_disposition(libc::SIGINT, old_int);
    set_disposition(libc::SIGQUIT, old_quit);
    outcome
}

fn wait_with_limit(child: &mut Child, start: Instant, limit: Duration) -> Outcome {
    let mut nap = Duration::from_micros(200);
    loop {
        match child.try_wait() {
            Ok(None) => {}
            Ok(Some(status)) => return Outcome::ended(Ok(status), start),
            Err(e) => return Outcome::ended(Err(e), start),
        }
        if start.elapsed() >= limit {
            return kill_group(child, start);
        }
        std::thread::sleep(nap);
        nap = (nap * 2).min(Duration::from_millis(20));
    }
}

/// How long the shell gets to exit after SIGTERM before its group is killed outright.
const GRACE: Duration = Duration::from_secs(1);

/// The action ran out of time: SIGTERM to its whole process group (the shell and what it
/// started, background jobs included), SIGKILL to the group once the shell has exited or
/// after [`GRACE`], then reap the shell. Until it is reaped the shell's zombie keeps its
/// pid, which is the group's id, from being reused, so both signals reach only the action.
fn kill_group(child: &mut Child, start: Instant) -> Outcome {
    let group = Pid::from_raw(child.id() as libc::pid_t);
    let _ = killpg(group, Signal::SIGTERM);
    let grace = Instant::now();
    while !exited_unreaped(group) && grace.elapsed() < GRACE {
        std::thread::sleep(Duration::from_millis(5));
    }
    // The shell is still unreaped: the group id is still the action's.
    let _ = killpg(group, Signal::SIGKILL);
    let mut out = Outcome::ended(child.wait(), start);
    out.timed_out = true;
    out
}

/// Whether child `pid` has exited, leaving it to be reaped (waitid with WNOWAIT). An error
/// (nothing left to wait for) counts as exited.
fn exited_unreaped(pid: Pid) -> bool {
    let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
    !matches!(waitid(Id::Pid(pid), flags), Ok(WaitStatus::StillAlive))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh() -> &'static Path {
        Path::new("/bin/sh")
    }

    #[test]
    fn waits_and_reports_status() {
        let o = run(sh(), b"exit 3", None);
        assert_eq!(o.status.unwrap().code(), Some(3));
        assert!(!o.timed_out);
        assert!(run(sh(), b"true", None).status.unwrap().success());
    }

    #[test]
    fn time_limit_kills_the_shell() {
        let o = run(sh(), b"sleep 5", Some(Duration::from_millis(100)));
        assert!(o.timed_out);
        assert!(o.elapsed < Duration::from_secs(3), "{:?}", o.elapsed);
    }

    /// Whether `pid` still runs (a zombie waiting for an init that does not reap counts as
    /// gone).
    fn alive(pid: u32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
            s.rsplit(')')
                .next()
                .and_then(|r| r.split_whitespace().next())
                != Some("Z")
        })
    }

    fn wait_gone(pid: u32) -> bool {
        let t = Instant::now();
        while alive(pid) {
            if t.elapsed() > Duration::from_secs(3) {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        true
    }

    #[test]
    fn time_limit_kills_what_the_action_started_in_the_background() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("bg");
        let cmd = format!("sleep 30 & echo $! > {}; wait", pid_file.display());
        let o = run(sh(), cmd.as_bytes(), Some(Duration::from_millis(300)));
        assert!(o.timed_out);
        let bg: u32 = std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(
            wait_gone(bg),
            "the background child {bg} outlived the action"
        );
    }

    #[test]
    fn a_shell_that_ignores_sigterm_is_killed_with_its_group_after_the_grace() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("bg");
        let cmd = format!(
            "trap '' TERM; sleep 30 & echo $! > {}; while :; do sleep 1; done",
            pid_file.display()
        );
        let o = run(sh(), cmd.as_bytes(), Some(Duration::from_millis(200)));
        assert!(o.timed_out);
        assert!(o.elapsed >= GRACE, "{:?}", o.elapsed);
        assert!(
            o.elapsed < GRACE + Duration::from_secs(2),
            "{:?}",
            o.elapsed
        );
        assert_eq!(o.describe(), "killed by signal 9");
        let bg: u32 = std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(
            wait_gone(bg),
            "the background child {bg} outlived the action"
        );
    }

    #[test]
    fn actions_run_in_a_session_of_their_own() {
        let (o, out) = capture(sh(), b"cat /proc/$$/stat", Duration::from_secs(5));
        assert!(!o.failed(), "{}", o.describe());
        let text = String::from_utf8(out).unwrap();
        let pid = text.split_whitespace().next().unwrap();
        // After the command name: state, ppid, pgrp, session.
        let after: Vec<&str> = text
            .rsplit(')')
            .next()
            .unwrap()
            .split_whitespace()
            .collect();
        assert_eq!((after[2], after[3]), (pid, pid), "{text}");
    }

    #[test]
    fn capture_reads_the_output_and_a_missing_shell_says_why() {
        let (o, out) = capture(sh(), b"printf '%s' 'a b'", Duration::from_secs(5));
        assert!(!o.failed());
        assert_eq!(out, b"a b");
        let o = run(Path::new("/nonexistent/sh"), b"true", None);
        assert!(o.failed());
        assert!(
            o.describe().starts_with("could not be run: No such file"),
            "{}",
            o.describe()
        );
    }

    #[test]
    fn sigpipe_is_ignored_in_the_action() {
        // With SIGPIPE ignored, `yes` gets EPIPE and exits with an error instead of dying.
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("sig");
        let cmd = format!("grep '^SigIgn' /proc/self/status > {}", out.display());
        run(sh(), cmd.as_bytes(), None);
        let text = std::fs::read_to_string(&out).unwrap();
        let mask = u64::from_str_radix(text.split_whitespace().nth(1).unwrap(), 16).unwrap();
        assert_ne!(
            mask & (1 << (libc::SIGPIPE - 1)),
            0,
            "SIGPIPE not ignored: {text}"
        );
        assert_eq!(
            mask & (1 << (libc::SIGINT - 1)),
            0,
            "SIGINT ignored: {text}"
        );
    }
}
