//! Who is at the other end of a Unix socket, and whether a client may believe it: a server
//! that is neither root nor the client's own user may be anyone's (a socket in a directory
//! others could write, a stale path reused), so its answer is not shown.

use std::os::fd::AsFd;
use std::path::Path;

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
pub fn check_server(fd: impl AsFd, path: &Path) -> anyhow::Result<()> {
    let uid = peer_uid(fd).map_err(|e| {
        anyhow::anyhow!("{}: reading the server's credentials: {e}", path.display())
    })?;
    let own = nix::unistd::geteuid().as_raw();
    if !allowed(uid, own) {
        anyhow::bail!(
            "{}: the server runs as uid {uid}, neither root nor you (uid {own}); not trusting it",
            path.display()
        );
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
