//! devd's two client sockets (spec §4.3): `devd.seqpacket.pipe` (SOCK_SEQPACKET, one record
//! per event) and `devd.pipe` (SOCK_STREAM). Raw events are forwarded to every client before
//! rules run; a client whose send fails or is short is dropped at once; hung-up clients are
//! reaped; at the client limit the listeners leave the poll set and their backlog drops to 0.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

pub const SEQPACKET_NAME: &str = "devd.seqpacket.pipe";
pub const STREAM_NAME: &str = "devd.pipe";
/// devd's send buffer per client (a 450-vdev ZFS pool creation burst fits).
pub const CLIENT_SNDBUF: libc::c_int = 262_144;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    SeqPacket,
    Stream,
}

pub struct Listener {
    pub kind: Kind,
    fd: OwnedFd,
}

pub struct Client {
    pub kind: Kind,
    fd: OwnedFd,
}

/// What happened while forwarding one event.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Forwarded {
    pub delivered: usize,
    pub dropped: usize,
}

pub(crate) fn sockaddr_un(path: &[u8]) -> std::io::Result<(libc::sockaddr_un, libc::socklen_t)> {
    // SAFETY: sockaddr_un is plain old data; all-zero is a valid value.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    if path.len() >= addr.sun_path.len() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "socket path too long",
        ));
    }
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (d, s) in addr.sun_path.iter_mut().zip(path) {
        *d = *s as libc::c_char;
    }
    let len = std::mem::size_of::<libc::sa_family_t>() + path.len() + 1;
    Ok((addr, len as libc::socklen_t))
}

pub(crate) fn set_nonblock(fd: RawFd) -> std::io::Result<()> {
    // SAFETY: fcntl on a descriptor the caller owns.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

fn check(rc: libc::c_int) -> std::io::Result<()> {
    if rc < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Whether a listener of `kind` answers at `path` (a connection is accepted or pending).
/// The connection is closed at once; the server sees a client that hung up.
fn serving(path: &Path, kind: Kind) -> bool {
    use nix::errno::Errno;
    use nix::sys::socket::{connect, socket, AddressFamily, SockFlag, SockType, UnixAddr};
    let ty = match kind {
        Kind::SeqPacket => SockType::SeqPacket,
        Kind::Stream => SockType::Stream,
    };
    let flags = SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK;
    let (Ok(fd), Ok(addr)) = (
        socket(AddressFamily::Unix, ty, flags, None),
        UnixAddr::new(path),
    ) else {
        return false;
    };
    matches!(
        connect(fd.as_raw_fd(), &addr),
        Ok(()) | Err(Errno::EAGAIN | Errno::EINPROGRESS)
    )
}

/// The first of the two sockets in `dir` that another process still serves (replacing it
/// would cut that daemon off from its clients).
pub fn served(dir: &Path) -> Option<PathBuf> {
    [Kind::SeqPacket, Kind::Stream]
        .into_iter()
        .find_map(|kind| {
            let path = dir.join(kind.file_name());
            serving(&path, kind).then_some(path)
        })
}

impl Kind {
    fn file_name(self) -> &'static str {
        match self {
            Kind::SeqPacket => SEQPACKET_NAME,
            Kind::Stream => STREAM_NAME,
        }
    }

    fn socket_type(self) -> libc::c_int {
        match self {
            Kind::SeqPacket => libc::SOCK_SEQPACKET,
            Kind::Stream => libc::SOCK_STREAM,
        }
    }
}

/// A client socket could not be made.
#[derive(Debug, thiserror::Error)]
#[error("socket {}", .path.display())]
pub struct SocketError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

impl Listener {
    /// As devd's `create_socket`: unlink, socket, non-blocking, bind, listen, mode 0666. The
    /// mode comes from the umask at bind time: a chmod (or devd's chown to root:wheel) by
    /// path after bind would follow whatever was swapped in at that path meanwhile, so the
    /// socket keeps the daemon's owner and group. Check [`served`] first. Any failure but
    /// `listen`'s is fatal.
    pub fn create(dir: &Path, kind: Kind, backlog: i32) -> Result<Listener, SocketError> {
        let path = dir.join(kind.file_name());
        let ctx = |source| SocketError {
            path: path.clone(),
            source,
        };
        let ty = kind.socket_type();
        let bytes = path.as_os_str().as_bytes();
        let _ = std::fs::remove_file(&path);
        // SAFETY: socket(2); the descriptor is wrapped immediately.
        let raw = unsafe { libc::socket(libc::AF_UNIX, ty | libc::SOCK_CLOEXEC, 0) };
        check(raw).map_err(ctx)?;
        // SAFETY: raw is a fresh descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        set_nonblock(raw).map_err(ctx)?;
        let (addr, len) = sockaddr_un(bytes).map_err(ctx)?;
        // Mode 0666 from the umask; the loop is single-threaded, nothing else creates files.
        let bound = hvnet_sys::shared_dir::with_umask(0o111, || {
            // SAFETY: valid sockaddr_un and length.
            check(unsafe { libc::bind(raw, (&addr as *const libc::sockaddr_un).cast(), len) })
        });
        bound.map_err(ctx)?;
        // SAFETY: listen on our socket; devd ignores its failure.
        unsafe { libc::listen(raw, backlog) };
        Ok(Listener { kind, fd })
    }

    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    pub fn set_backlog(&self, backlog: i32) {
        // SAFETY: listen on our socket.
        unsafe { libc::listen(self.fd.as_raw_fd(), backlog) };
    }

    /// Accept one pending connection: non-blocking, 256 KiB send buffer, read side shut down.
    /// `Ok(None)` when nothing is pending.
    pub fn accept(&self) -> std::io::Result<Option<Client>> {
        // SAFETY: accept4 on our listening socket; the new descriptor is wrapped at once.
        let raw = unsafe {
            libc::accept4(
                self.fd.as_raw_fd(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            )
        };
        if raw < 0 {
            let e = std::io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::EAGAIN) | Some(libc::EINTR) | Some(libc::ECONNABORTED) => Ok(None),
                _ => Err(e),
            };
        }
        // SAFETY: raw is a fresh descriptor.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let size = CLIENT_SNDBUF;
        // SAFETY: setsockopt with a c_int value.
        check(unsafe {
            libc::setsockopt(
                raw,
                libc::SOL_SOCKET,
                libc::SO_SNDBUF,
                (&size as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        })?;
        // SAFETY: shutdown on our socket: whatever the client writes is discarded.
        unsafe { libc::shutdown(raw, libc::SHUT_RD) };
        Ok(Some(Client {
            kind: self.kind,
            fd,
        }))
    }
}

impl Client {
    /// One non-blocking send of the whole record; true only when all of it went out.
    fn send(&self, record: &[u8]) -> bool {
        let mut flags = libc::MSG_DONTWAIT;
        #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
        {
            flags |= libc::MSG_NOSIGNAL;
        }
        if self.kind == Kind::SeqPacket {
            flags |= libc::MSG_EOR;
        }
        // SAFETY: send from a valid buffer on our socket.
        let n = unsafe {
            libc::send(
                self.fd.as_raw_fd(),
                record.as_ptr().cast(),
                record.len(),
                flags,
            )
        };
        n == record.len() as isize
    }

    /// Whether the peer has hung up (poll with no requested events reports POLLHUP).
    fn hung_up(&self) -> bool {
        let mut p = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: 0,
            revents: 0,
        };
        // SAFETY: one pollfd, zero timeout.
        let n = unsafe { libc::poll(&mut p, 1, 0) };
        n > 0 && p.revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0
    }
}

/// The connected clients of both sockets (the limit counts them together).
#[derive(Default)]
pub struct Clients {
    list: Vec<Client>,
}

impl Clients {
    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn add(&mut self, c: Client) {
        self.list.push(c);
    }

    /// Send `record` to every client; drop those whose send failed or was short.
    pub fn forward(&mut self, record: &[u8]) -> Forwarded {
        let before = self.list.len();
        self.list.retain(|c| c.send(record));
        let dropped = before - self.list.len();
        Forwarded {
            delivered: self.list.len(),
            dropped,
        }
    }

    /// Drop clients that hung up; returns how many.
    pub fn reap(&mut self) -> usize {
        let before = self.list.len();
        self.list.retain(|c| !c.hung_up());
        before - self.list.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An accepted client gets devd's 256 KiB send buffer (Linux reports twice the value set,
    /// for its bookkeeping) and is non-blocking.
    #[test]
    fn accepted_clients_get_a_256k_nonblocking_send_buffer() {
        let dir = tempfile::tempdir().unwrap();
        let l = Listener::create(dir.path(), Kind::SeqPacket, 10).unwrap();
        let path = dir.path().join(SEQPACKET_NAME);
        let (addr, len) = sockaddr_un(path.as_os_str().as_bytes()).unwrap();
        // SAFETY: a fresh socket, connected to our listener with a valid address.
        let peer = unsafe {
            let fd = libc::socket(libc::AF_UNIX, libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC, 0);
            assert!(fd >= 0);
            let peer = OwnedFd::from_raw_fd(fd);
            let rc = libc::connect(fd, (&addr as *const libc::sockaddr_un).cast(), len);
            assert_eq!(rc, 0, "{}", std::io::Error::last_os_error());
            peer
        };
        let c = l.accept().unwrap().expect("a pending client");
        let mut size: libc::c_int = 0;
        let mut sl = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: getsockopt into a c_int of the given length.
        let rc = unsafe {
            libc::getsockopt(
                c.fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_SNDBUF,
                (&mut size as *mut libc::c_int).cast(),
                &mut sl,
            )
        };
        assert_eq!(rc, 0);
        let expected = if cfg!(target_os = "linux") {
            // Capped at net.core.wmem_max (4 MiB here; 208 KiB on some systems).
            let max: libc::c_int = std::fs::read_to_string("/proc/sys/net/core/wmem_max")
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(CLIENT_SNDBUF);
            2 * CLIENT_SNDBUF.min(max)
        } else {
            CLIENT_SNDBUF
        };
        assert_eq!(size, expected);
        // SAFETY: F_GETFL on our descriptor.
        let flags = unsafe { libc::fcntl(c.fd.as_raw_fd(), libc::F_GETFL) };
        assert_ne!(flags & libc::O_NONBLOCK, 0);
        assert!(c.send(b"!system=X\n"));
        drop(peer);
    }
}
