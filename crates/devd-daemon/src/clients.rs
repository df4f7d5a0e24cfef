//! devd's two client sockets (spec §4.3): `devd.seqpacket.pipe` (SOCK_SEQPACKET, one record
//! per event) and `devd.pipe` (SOCK_STREAM). Raw events are forwarded to every client before
//! rules run; a client whose send fails or is short is dropped at once; hung-up clients are
//! reaped; at the client limit the listeners leave the poll set and their backlog drops to 0.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{
    accept4, bind, connect, listen, send, setsockopt, shutdown, socket, sockopt, AddressFamily,
    Backlog, MsgFlags, Shutdown, SockFlag, SockType, UnixAddr,
};

pub const SEQPACKET_NAME: &str = "devd.seqpacket.pipe";
pub const STREAM_NAME: &str = "devd.pipe";
/// devd's send buffer per client (a 450-vdev ZFS pool creation burst fits).
pub const CLIENT_SNDBUF: usize = 262_144;

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

/// Make `fd` non-blocking (its other status flags kept).
pub(crate) fn set_nonblock(fd: BorrowedFd) -> nix::Result<()> {
    let flags = OFlag::from_bits_retain(fcntl(fd, FcntlArg::F_GETFL)?);
    fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK)).map(drop)
}

/// A SOCK_SEQPACKET socket connected to `path`, blocking while it connects.
pub(crate) fn connect_seqpacket(path: &Path) -> nix::Result<OwnedFd> {
    let fd = socket(
        AddressFamily::Unix,
        SockType::SeqPacket,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    connect(fd.as_raw_fd(), &UnixAddr::new(path)?)?;
    Ok(fd)
}

/// Whether `fd` has something to report: the `wanted` events or, whatever was asked, a
/// hang-up or error. Does not wait.
pub(crate) fn poll_now(fd: BorrowedFd, wanted: PollFlags) -> PollFlags {
    let mut fds = [PollFd::new(fd, wanted)];
    match poll(&mut fds, PollTimeout::ZERO) {
        Ok(n) if n > 0 => fds[0].revents().unwrap_or(PollFlags::empty()),
        _ => PollFlags::empty(),
    }
}

/// `backlog` as listen(2) takes it: the kernel clamps a larger one to its maximum anyway.
fn backlog(n: i32) -> Backlog {
    Backlog::new(n.clamp(0, i32::from(Backlog::MAXCONN))).unwrap_or(Backlog::MAXCONN)
}

/// Whether a listener of `kind` answers at `path` (a connection is accepted or pending).
/// The connection is closed at once; the server sees a client that hung up.
fn serving(path: &Path, kind: Kind) -> bool {
    let ty = kind.socket_type();
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

    fn socket_type(self) -> SockType {
        match self {
            Kind::SeqPacket => SockType::SeqPacket,
            Kind::Stream => SockType::Stream,
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
    /// socket is bound and given its mode in a private staging directory, then renamed into
    /// place ([`hvnet_sys::shared_dir::bind_socket`]): a chmod (or devd's chown to
    /// root:wheel) by path after bind would follow whatever was swapped in at that path
    /// meanwhile, so the socket keeps the daemon's owner and group. Check [`served`] first.
    /// Any failure but `listen`'s is fatal.
    pub fn create(dir: &Path, kind: Kind, backlog_len: i32) -> Result<Listener, SocketError> {
        let path = dir.join(kind.file_name());
        let ctx = |e: Errno| SocketError {
            path: path.clone(),
            source: e.into(),
        };
        let _ = std::fs::remove_file(&path);
        let fd = socket(
            AddressFamily::Unix,
            kind.socket_type(),
            SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
            None,
        )
        .map_err(ctx)?;
        let bound = hvnet_sys::shared_dir::bind_socket(&path, 0o666, |staged| {
            let addr = UnixAddr::new(staged)?;
            Ok(bind(fd.as_raw_fd(), &addr)?)
        });
        bound.map_err(|source| SocketError {
            path: path.clone(),
            source,
        })?;
        // devd ignores listen's failure.
        let _ = listen(&fd, backlog(backlog_len));
        Ok(Listener { kind, fd })
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    pub fn set_backlog(&self, n: i32) {
        let _ = listen(&self.fd, backlog(n));
    }

    /// Accept one pending connection: non-blocking, 256 KiB send buffer, read side shut down.
    /// `Ok(None)` when nothing is pending.
    pub fn accept(&self) -> std::io::Result<Option<Client>> {
        let raw = match accept4(
            self.fd.as_raw_fd(),
            SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        ) {
            Ok(raw) => raw,
            Err(Errno::EAGAIN | Errno::EINTR | Errno::ECONNABORTED) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        // SAFETY: accept4 just returned this descriptor: it is open and nothing else owns it,
        // so the OwnedFd is its only owner and closes it once.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        setsockopt(&fd, sockopt::SndBuf, &CLIENT_SNDBUF)?;
        // Whatever the client writes is discarded.
        let _ = shutdown(fd.as_raw_fd(), Shutdown::Read);
        Ok(Some(Client {
            kind: self.kind,
            fd,
        }))
    }
}

impl Client {
    /// One non-blocking send of the whole record; true only when all of it went out.
    fn send(&self, record: &[u8]) -> bool {
        let mut flags = MsgFlags::MSG_DONTWAIT;
        #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
        {
            flags |= MsgFlags::MSG_NOSIGNAL;
        }
        if self.kind == Kind::SeqPacket {
            flags |= MsgFlags::MSG_EOR;
        }
        send(self.fd.as_raw_fd(), record, flags) == Ok(record.len())
    }

    /// Whether the peer has hung up (poll with no requested events reports POLLHUP).
    fn hung_up(&self) -> bool {
        poll_now(self.fd.as_fd(), PollFlags::empty())
            .intersects(PollFlags::POLLHUP | PollFlags::POLLERR | PollFlags::POLLNVAL)
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
        let peer = connect_seqpacket(&dir.path().join(SEQPACKET_NAME)).unwrap();
        let c = l.accept().unwrap().expect("a pending client");
        let size = nix::sys::socket::getsockopt(&c.fd, sockopt::SndBuf).unwrap();
        let expected = if cfg!(target_os = "linux") {
            // Capped at net.core.wmem_max (4 MiB here; 208 KiB on some systems).
            let max: usize = std::fs::read_to_string("/proc/sys/net/core/wmem_max")
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(CLIENT_SNDBUF);
            2 * CLIENT_SNDBUF.min(max)
        } else {
            CLIENT_SNDBUF
        };
        assert_eq!(size, expected);
        let flags = OFlag::from_bits_retain(fcntl(&c.fd, FcntlArg::F_GETFL).unwrap());
        assert!(flags.contains(OFlag::O_NONBLOCK));
        assert!(c.send(b"!system=X\n"));
        drop(peer);
    }
}
