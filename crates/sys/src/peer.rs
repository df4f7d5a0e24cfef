//! Who is at the other end of a Unix socket, and whether a client may believe it: a server
//! that is neither root nor the client's own user may be anyone's (a socket in a directory
//! others could write, a stale path reused), so its answer is not shown.

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

/// A server a client refuses to believe.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error("{}: reading the server's credentials", .path.display())]
    Credentials {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: the server runs as uid {uid}, neither root nor you (uid {own}); not trusting it", .path.display())]
    Untrusted { path: PathBuf, uid: u32, own: u32 },
}

/// The effective uid of the socket's peer (SO_PEERCRED on Linux, getpeereid elsewhere).
pub fn peer_uid(fd: impl AsFd) -> std::io::Result<u32> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
        Ok(getsockopt(&fd, PeerCredentials)?.uid())
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let (uid, _gid) = nix::unistd::getpeereid(fd)?;
        Ok(uid.as_raw())
    }
}

/// Whether a peer with `uid` may be trusted by (or talk to) a process running as `own`.
pub fn allowed(uid: u32, own: u32) -> bool {
    uid == 0 || uid == own
}

/// Refuse a server at `path` that runs as neither root nor our own user.
pub fn check_server(fd: impl AsFd, path: &Path) -> Result<(), PeerError> {
    let uid = peer_uid(fd).map_err(|source| PeerError::Credentials {
        path: path.to_path_buf(),
        source,
    })?;
    let own = nix::unistd::geteuid().as_raw();
    if !allowed(uid, own) {
        return Err(PeerError::Untrusted {
            path: path.to_path_buf(),
            uid,
            own,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_root_or_the_same_user() {
        assert!(allowed(0, 0));
        assert!(allowed(0, 1000));
        assert!(allowed(1000, 1000));
        assert!(!allowed(65534, 0));
        assert!(!allowed(1001, 1000));
    }

    #[test]
    fn a_socket_pair_is_our_own() {
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        assert_eq!(peer_uid(&a).unwrap(), nix::unistd::geteuid().as_raw());
        check_server(&a, Path::new("pair")).unwrap();
    }
}
