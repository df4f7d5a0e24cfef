//! What goes over the socket, and the wrappers' side of it.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{HarnessError, SOCKET};

/// The environment variable naming a guest program's task (its children inherit it), so a
/// scheduler knows whose command it is.
pub const TASK_ENV: &str = "HVNET_HARNESS_TASK";

/// One command from a wrapper: `{"task": N, "argv": [...]}`, one line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// [`TASK_ENV`] of the program that ran the wrapper (0 when not set).
    #[serde(default)]
    pub task: u32,
    pub argv: Vec<String>,
}

/// The command's result: `{"status", "stdout", "stderr"}`, one line.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<hvnet_sim::guestcmd::CmdOutput> for Response {
    fn from(o: hvnet_sim::guestcmd::CmdOutput) -> Self {
        Response {
            status: o.status,
            stdout: o.stdout,
            stderr: o.stderr,
        }
    }
}

impl Response {
    /// A failed command with a usage or error message.
    pub fn failed(stderr: &str) -> Response {
        Response {
            status: 1,
            stderr: stderr.to_string(),
            ..Default::default()
        }
    }

    /// Print the output as the command would have, and give its exit status (0 to 255).
    pub fn relay(&self) -> u8 {
        print!("{}", self.stdout);
        eprint!("{}", self.stderr);
        u8::try_from(self.status.clamp(0, 255)).unwrap_or(1)
    }
}

/// A wrapper's side: send `argv` to the harness serving `root` (which must run as root or as
/// our own user) and return its answer.
pub fn client(root: &Path, argv: &[String]) -> Result<Response, HarnessError> {
    let sock = root.join(SOCKET);
    let mut s = UnixStream::connect(&sock).map_err(|source| HarnessError::Connect {
        path: sock.clone(),
        source,
    })?;
    hvnet_sys::peer::check_server(&s, &sock)?;
    let req = Request {
        task: std::env::var(TASK_ENV)
            .ok()
            .and_then(|t| t.parse().ok())
            .unwrap_or(0),
        argv: argv.to_vec(),
    };
    let text = serde_json::to_string(&req).map_err(HarnessError::BadAnswer)?;
    writeln!(s, "{text}").map_err(HarnessError::Answer)?;
    let mut line = String::new();
    BufReader::new(&s)
        .read_line(&mut line)
        .map_err(HarnessError::Answer)?;
    serde_json::from_str(&line).map_err(HarnessError::BadAnswer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harness::{Move, Root};

    #[test]
    fn a_command_goes_to_the_server_and_its_answer_back() {
        let tmp = tempfile::tempdir().unwrap();
        let root = Root::keep_at(&tmp.path().join("g")).unwrap();
        let server = root.listen().unwrap();
        assert!(server.try_next().unwrap().is_none(), "nobody asked yet");
        let dir = root.dir().to_path_buf();
        let t = std::thread::spawn(move || client(&dir, &["sysctl".into(), "-n".into()]));
        let p = server.next().unwrap();
        assert_eq!(
            p.request,
            Request {
                task: 0,
                argv: vec!["sysctl".into(), "-n".into()]
            }
        );
        p.answer(&Response {
            status: 3,
            stdout: "out\n".into(),
            stderr: "err\n".into(),
        });
        let r = t.join().unwrap().unwrap();
        assert_eq!((r.status, r.stdout.as_str()), (3, "out\n"));
        // A request without a task is task 0; one that is not JSON is an error.
        let parsed: Request = serde_json::from_str(r#"{"argv":["x"]}"#).unwrap();
        assert_eq!(parsed.task, 0);
        let mut s = UnixStream::connect(root.path(crate::harness::SOCKET)).unwrap();
        writeln!(s, "not json").unwrap();
        assert!(matches!(
            server.next().unwrap_err(),
            HarnessError::Request(_)
        ));
    }

    #[test]
    fn a_client_without_a_server_says_where_it_looked() {
        let tmp = tempfile::tempdir().unwrap();
        let e = client(tmp.path(), &["x".into()]).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "connecting to the harness at {}",
                tmp.path().join(SOCKET).display()
            )
        );
    }

    #[test]
    fn a_program_is_watched_until_it_asks_or_exits() {
        let tmp = tempfile::tempdir().unwrap();
        let root = Root::keep_at(&tmp.path().join("g")).unwrap();
        let server = root.listen().unwrap();
        let mut quiet = root.command("true").spawn().unwrap();
        let m = server
            .next_move(&mut quiet, "true", std::time::Duration::from_secs(20))
            .unwrap();
        assert!(matches!(m, Move::Exited(s) if s.success()));
        let mut stuck = root.command("sleep").arg("5").spawn().unwrap();
        let e = server
            .next_move(&mut stuck, "sleep 5", std::time::Duration::from_millis(50))
            .unwrap_err();
        assert_eq!(e.to_string(), "sleep 5: no command and no exit for 50ms");
        let _ = stuck.kill();
        let _ = stuck.wait();
    }

    #[test]
    fn clients_of_another_user_are_refused() {
        use nix::sys::socket::{connect, socket, AddressFamily, SockFlag, SockType, UnixAddr};
        use nix::sys::wait::{waitpid, WaitStatus};
        use nix::unistd::{fork, setuid, ForkResult, Uid};
        use std::os::fd::AsRawFd;
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let root = Root::keep_at(&tmp.path().join("g")).unwrap();
        let server = root.listen().unwrap();
        let sock = root.path(crate::harness::SOCKET);
        // The socket is 0600 in a 0700 root: open both, so only the peer check stops them.
        for (p, m) in [
            (tmp.path(), 0o755),
            (root.dir(), 0o755),
            (sock.as_path(), 0o666),
        ] {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
        }
        // A client as nobody: a forked child that connects after setuid. Everything it
        // needs is made before the fork, so the child only makes system calls.
        let fd = socket(
            AddressFamily::Unix,
            SockType::Stream,
            SockFlag::SOCK_CLOEXEC,
            None,
        )
        .unwrap();
        let addr = UnixAddr::new(&sock).unwrap();
        // SAFETY: the child makes only async-signal-safe system calls (setuid, connect,
        // _exit) on what the parent prepared: it allocates nothing and takes no lock.
        let child = match unsafe { fork() }.unwrap() {
            ForkResult::Child => {
                let connected =
                    setuid(Uid::from_raw(65534)).is_ok() && connect(fd.as_raw_fd(), &addr).is_ok();
                // SAFETY: _exit ends the child without the parent's destructors or atexit
                // handlers, which are not the child's to run.
                unsafe { nix::libc::_exit(if connected { 0 } else { 1 }) }
            }
            ForkResult::Parent { child } => child,
        };
        drop(fd);
        let e = server.next().unwrap_err();
        assert!(
            matches!(e, HarnessError::ForeignClient { uid: 65534, .. }),
            "{e}"
        );
        assert_eq!(waitpid(child, None).unwrap(), WaitStatus::Exited(child, 0));
    }
}
