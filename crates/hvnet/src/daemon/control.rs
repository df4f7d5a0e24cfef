//! The control socket: a Unix stream socket, root-only. Its directory is created 0700 when
//! missing, the socket itself is 0600, and every connection is checked with the peer's
//! credentials (SO_PEERCRED / getpeereid): only root or the daemon's own uid get an answer.
//!
//! Protocol ([`super::protocol`]): one request line (`status`), one JSON answer line, then the
//! daemon closes. Errors are `{"error": "..."}`.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixStream as StdUnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader as TokioBufReader};
use tokio::net::UnixListener;

use super::manager::{lock, SharedReport};
use super::protocol::{self, error_line, MAX_REQUEST};
use super::report::Report;

/// The bound socket; removes its file when dropped.
pub struct ControlSocket {
    pub listener: UnixListener,
    path: PathBuf,
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Bind `path`: create a missing parent directory 0700, refuse to replace anything but a
/// stale socket, and make the socket 0600 (created under umask 0177, so never wider).
pub fn bind(path: &Path) -> anyhow::Result<ControlSocket> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .with_context(|| format!("creating {}", dir.display()))?;
        }
    }
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
    // SAFETY: umask only changes the process's file creation mask; restored at once.
    let old = unsafe { libc::umask(0o177) };
    let bound = std::os::unix::net::UnixListener::bind(path);
    // SAFETY: as above.
    unsafe { libc::umask(old) };
    let std_listener = bound.with_context(|| format!("binding {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("chmod 0600 {}", path.display()))?;
    std_listener.set_nonblocking(true)?;
    Ok(ControlSocket {
        listener: UnixListener::from_std(std_listener)?,
        path: path.to_path_buf(),
    })
}

/// Whether a peer with `uid` may talk to a daemon running as `own`.
pub fn peer_allowed(uid: u32, own: u32) -> bool {
    uid == 0 || uid == own
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Answer connections forever.
pub async fn serve(sock: &ControlSocket, report: SharedReport) {
    // SAFETY: geteuid has no preconditions.
    let own = unsafe { libc::geteuid() };
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
            let answer = if !peer_allowed(uid, own) {
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

/// Ask the daemon at `path` for its report.
pub fn query(path: &Path) -> anyhow::Result<Report> {
    let mut s = StdUnixStream::connect(path).with_context(|| {
        format!(
            "{}: cannot reach the hvnet daemon (is `hvnet run` running, and are you root?)",
            path.display()
        )
    })?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(b"status\n")
        .with_context(|| format!("{}: sending the request", path.display()))?;
    let mut line = String::new();
    BufReader::new(&s)
        .read_line(&mut line)
        .with_context(|| format!("{}: reading the answer", path.display()))?;
    protocol::parse_answer(&line).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_root_or_the_same_user() {
        assert!(peer_allowed(0, 0));
        assert!(peer_allowed(0, 1000));
        assert!(peer_allowed(1000, 1000));
        assert!(!peer_allowed(65534, 0));
        assert!(!peer_allowed(1001, 1000));
    }

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
            // A live socket is not taken over.
            assert!(bind(&path).is_err());
            drop(s);
            assert!(!path.exists());
        });
        std::fs::write(&path, "x").unwrap();
        let e = rt.block_on(async { bind(&path).err().unwrap().to_string() });
        assert!(e.contains("not a socket"), "{e}");
    }
}
