//! Running one action the way devd's `my_system` does (spec §3.7): `/bin/sh -c CMD`, every
//! descriptor from 3 up closed, environment inherited (event variables are never exported),
//! SIGPIPE left ignored, SIGINT/SIGQUIT back to default, and the caller waits for it. While
//! the action runs devd itself ignores SIGINT and SIGQUIT.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

/// How one action ended.
#[derive(Debug)]
pub struct Outcome {
    /// None when the shell could not be started.
    pub status: Option<ExitStatus>,
    pub elapsed: Duration,
    /// It ran past the time limit and was killed.
    pub timed_out: bool,
}

impl Outcome {
    pub fn failed(&self) -> bool {
        !matches!(self.status, Some(s) if s.success())
    }
}

/// Mark every descriptor from 3 up close-on-exec, so exec closes them (closefrom(3)) while
/// std's own exec-error pipe keeps working until then. Async-signal-safe.
fn cloexec_from_3() {
    #[cfg(target_os = "linux")]
    {
        const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
        // SAFETY: close_range only changes descriptor flags.
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
    // SAFETY: getrlimit/fcntl are async-signal-safe.
    let max = unsafe {
        let mut rl: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) == 0 && rl.rlim_cur != libc::RLIM_INFINITY
        {
            (rl.rlim_cur as i64).min(1 << 20) as i32
        } else {
            65536
        }
    };
    for fd in 3..max {
        // SAFETY: fcntl on an arbitrary number: EBADF for unused ones.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
}

fn set_disposition(sig: libc::c_int, handler: libc::sighandler_t) -> libc::sighandler_t {
    // SAFETY: signal(3) with SIG_IGN/SIG_DFL or a previously returned handler.
    unsafe { libc::signal(sig, handler) }
}

/// devd's default shell.
pub const DEFAULT_SHELL: &str = "/bin/sh";

/// Whether `shell` understands `$'…'` (ANSI-C) quoting, which devd uses for every expanded
/// value since 2020. FreeBSD's sh does; Debian's dash (before 0.5.13) does not, and there an
/// event value `md0` would reach the command as `$md0`.
pub fn supports_ansi_c_quoting(shell: &Path) -> bool {
    Command::new(shell)
        .args(["-c", r#"[ $'a\'b' = "a'b" ]"#])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Run `cmd` with `SHELL -c` and wait for it (at most `limit`, then it is killed).
pub fn run(shell: &Path, cmd: &[u8], limit: Option<Duration>) -> Outcome {
    let start = Instant::now();
    let old_int = set_disposition(libc::SIGINT, libc::SIG_IGN);
    let old_quit = set_disposition(libc::SIGQUIT, libc::SIG_IGN);
    let mut command = Command::new(shell);
    command.arg0("sh").arg("-c").arg(OsStr::from_bytes(cmd));
    // SAFETY: the closure only calls async-signal-safe functions.
    unsafe {
        command.pre_exec(|| {
            // std resets SIGPIPE to default in the child; devd's actions inherit it ignored.
            libc::signal(libc::SIGPIPE, libc::SIG_IGN);
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            libc::signal(libc::SIGQUIT, libc::SIG_DFL);
            cloexec_from_3();
            Ok(())
        });
    }
    let outcome = match command.spawn() {
        Err(_) => Outcome {
            status: None,
            elapsed: start.elapsed(),
            timed_out: false,
        },
        Ok(mut child) => match limit {
            None => {
                let status = child.wait().ok();
                Outcome {
                    status,
                    elapsed: start.elapsed(),
                    timed_out: false,
                }
            }
            Some(limit) => wait_with_limit(&mut child, start, limit),
        },
    };
    set_disposition(libc::SIGINT, old_int);
    set_disposition(libc::SIGQUIT, old_quit);
    outcome
}

fn wait_with_limit(child: &mut std::process::Child, start: Instant, limit: Duration) -> Outcome {
    let mut nap = Duration::from_micros(200);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                return Outcome {
                    status: Some(status),
                    elapsed: start.elapsed(),
                    timed_out: false,
                };
            }
            Ok(None) => {}
            Err(_) => {
                return Outcome {
                    status: None,
                    elapsed: start.elapsed(),
                    timed_out: false,
                };
            }
        }
        if start.elapsed() >= limit {
            // SIGTERM first so the shell can clean up; SIGKILL if it lingers.
            // SAFETY: kill on our own child's pid, not yet reaped.
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
            let grace = Instant::now();
            loop {
                if let Ok(Some(status)) = child.try_wait() {
                    return Outcome {
                        status: Some(status),
                        elapsed: start.elapsed(),
                        timed_out: true,
                    };
                }
                if grace.elapsed() > Duration::from_secs(1) {
                    let _ = child.kill();
                    let status = child.wait().ok();
                    return Outcome {
                        status,
                        elapsed: start.elapsed(),
                        timed_out: true,
                    };
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        std::thread::sleep(nap);
        nap = (nap * 2).min(Duration::from_millis(20));
    }
}

/// A short human description of an exit status for logs.
pub fn describe(status: &Option<ExitStatus>) -> String {
    match status {
        None => "could not be started".into(),
        Some(s) => match (s.code(), s.signal()) {
            (Some(c), _) => format!("exit status {c}"),
            (None, Some(sig)) => format!("killed by signal {sig}"),
            _ => "unknown status".into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh() -> &'static Path {
        Path::new(DEFAULT_SHELL)
    }

    #[test]
    fn ansi_c_probe_tells_bash_from_dash() {
        if Path::new("/bin/bash").exists() {
            assert!(supports_ansi_c_quoting(Path::new("/bin/bash")));
        }
        assert!(!supports_ansi_c_quoting(Path::new("/nonexistent/sh")));
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
