//! The control socket: a Unix stream socket, root-only. Its directory (and every one above
//! it) must be owned by root or the daemon's user and not writable by others unless sticky
//! ([`hvnet_sys::shared_dir`]); a missing one is created 0700. Before anything is bound, the
//! instance lock next to the socket (`SOCKET.lock`, holding the pid) is taken, so a second
//! daemon stops without touching the first one's socket. The socket is bound 0600 in a
//! private staging directory and renamed into place ([`shared_dir::bind_socket`]), and every
//! connection is checked with the peer's credentials (SO_PEERCRED / getpeereid): only root
//! or the daemon's own uid get an answer.
//!
//! Protocol ([`crate::protocol`]): one request line (`status`), one JSON answer line, then the
//! daemon closes. Errors are `{"error": "..."}`.

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt};
use std::os::unix::net::UnixStream as StdUnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader as TokioBufReader};
use tokio::net::UnixListener;

use crate::protocol::{self, error_line, MAX_REQUEST};
use crate::publish::{lock, SharedReport};
use crate::report::Report;
use hvnet_sys::peer;
use hvnet_sys::pidfile::{PidFile, PidFileError};
use hvnet_sys::shared_dir;

/// The bound socket; removes its file, then releases the instance lock, when dropped.
pub struct ControlSocket {
    pub listener: UnixListener,
    path: PathBuf,
    _lock: PidFile,
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The instance lock of the daemon whose control socket is `socket`.
pub fn lock_path(socket: &Path) -> PathBuf {
    let mut p = OsString::from(socket.as_os_str());
    p.push(".lock");
    PathBuf::from(p)
}

/// Check the directory `dir` (absolute) against the rule, creating it 0700 if it is missing
/// (the part that exists is checked first, so nothing is created under a directory others
/// control).
fn prepare_dir(dir: &Path) -> anyhow::Result<()> {
    let check =
        |d: &Path| shared_dir::check_dir(d).map_err(|e| anyhow::anyhow!("control socket: {e}"));
    if !dir.exists() {
        check(
            dir.ancestors()
                .find(|a| a.exists())
                .unwrap_or(Path::new("/")),
        )?;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("creating {}", dir.display()))?;
    }
    check(dir)
}

/// Bind `path`: check (or create) its directory, take the instance lock, refuse to replace
/// anything but a stale socket, and bind it 0600 where nobody else can reach it before it
/// takes its name (a chmod by path afterwards could follow something swapped in).
pub fn bind(path: &Path) -> anyhow::Result<ControlSocket> {
    let path = &std::path::absolute(path).with_context(|| path.display().to_string())?;
    let dir = path.parent().unwrap_or(Path::new("/"));
    prepare_dir(dir)?;
    let lock = lock_path(path);
    let mut instance = match PidFile::open(&lock) {
        Ok(l) => l,
        Err(PidFileError::AlreadyRunning { pid, .. }) => bail!(
            "{}: another hvnet daemon is running (pid {pid}) with this control socket",
            lock.display()
        ),
        Err(e) => return Err(e).context("the instance lock"),
    };
    instance
        .write_pid()
        .with_context(|| format!("{}: writing the pid", lock.display()))?;
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => {
            if StdUnixStream::connect(path).is_ok() {
                bail!(
                    "{}: another hvnet daemon is answering on this socket",
                    path.display()
                );
            }
            std::fs::remove_file(path)
                .with_context(|| format!("removing stale socket {}", path.display()))?;
        }
        Ok(_) => bail!("{}: exists and is not a socket", path.display()),
        Err(_) => {}
    }
    let bound = shared_dir::bind_socket(path, 0o600, |p| std::os::unix::net::UnixListener::bind(p));
    let std_listener = bound.with_context(|| format!("binding {}", path.display()))?;
    std_listener.set_nonblocking(true)?;
    Ok(ControlSocket {
        listener: UnixListener::from_std(std_listener)?,
        path: path.to_path_buf(),
        _lock: instance,
    })
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Answer connections forever.
pub async fn serve(sock: &ControlSocket, report: SharedReport) {
    let own = nix::unistd::geteuid().as_raw();
    loop {
        let (mut conn, _) = match sock.listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("control socket: accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let report = report.clone();
        tokio::spawn(async move {
            let uid = match conn.peer_cred() {
                Ok(c) => c.uid(),
                Err(e) => {
                    tracing::warn!("control socket: peer credentials: {e}");
                    return;
                }
            };
            let (rd, mut wr) = conn.split();
            // Bytes, not a String: a request that is not UTF-8 still gets an answer.
            let mut line = Vec::new();
            let mut rd = TokioBufReader::new(rd).take(MAX_REQUEST as u64);
            let got =
                tokio::time::timeout(Duration::from_secs(5), rd.read_until(b'\n', &mut line)).await;
            if !matches!(got, Ok(Ok(_))) {
                return;
            }
            let answer = if !peer::allowed(uid, own) {
                tracing::warn!("control socket: refused uid {uid}");
                error_line("permission denied: root only")
            } else {
                protocol::answer(&line, || {
                    let mut r = lock(&report).clone();
                    if r.clock == "monotonic" {
                        // Steps may be seconds apart; "now" is now.
                        r.now_ms = r.now_ms.max(unix_ms().saturating_sub(r.started_unix_ms));
                    }
                    r
                })
            };
            let _ = wr.write_all(answer.as_bytes()).await;
        });
    }
}

/// Ask the daemon at `path` for its report. The server must be root or our own user; the
/// report is as it sent it (print it through [`crate::printable`]), an error it sent has its
/// control characters escaped.
pub fn query(path: &Path) -> anyhow::Result<Report> {
    let mut s = StdUnixStream::connect(path).with_context(|| {
        format!(
            "{}: cannot reach the hvnet daemon (is `hvnet run` running, and are you root?)",
            path.display()
        )
    })?;
    peer::check_server(&s, path)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(b"status\n")
        .with_context(|| format!("{}: sending the request", path.display()))?;
    let mut line = String::new();
    BufReader::new(&s)
        .read_line(&mut line)
        .with_context(|| format!("{}: reading the answer", path.display()))?;
    // The daemon's words are printed to a terminal: no control bytes from the server.
    protocol::parse_answer(&line).map_err(|e| {
        anyhow::anyhow!(
            "{}: {}",
            path.display(),
            crate::printable::escape_controls(&e.to_string())
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn bind_makes_a_private_directory_and_socket_and_refuses_files() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("run/hvnet.sock");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let s = bind(&path).unwrap();
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&path), 0o600);
            assert_eq!(mode(path.parent().unwrap()), 0o700);
            // The instance lock holds our pid.
            let lock = lock_path(&path);
            assert_eq!(
                std::fs::read_to_string(&lock).unwrap(),
                format!("{}\n", std::process::id())
            );
            // A live instance is not taken over.
            let e = bind(&path).err().unwrap().to_string();
            assert!(e.contains("another hvnet daemon is running"), "{e}");
            drop(s);
            assert!(!path.exists());
            assert!(!lock.exists());
        });
        std::fs::write(&path, "x").unwrap();
        let e = rt.block_on(async { bind(&path).err().unwrap().to_string() });
        assert!(e.contains("not a socket"), "{e}");
    }
}
