//! A client of devd's seqpacket socket (`/var/run/devd.seqpacket.pipe`):
//! one event per packet. Plain Unix socket calls, so it also works (and
//! is tested) on Linux against any SOCK_SEQPACKET server.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// devd's socket that delivers each event as one packet.
pub const DEVD_SEQPACKET: &str = "/var/run/devd.seqpacket.pipe";

/// A connection to devd's seqpacket socket: one event per `recv`.
pub struct DevdSocket {
    fd: OwnedFd,
}

impl DevdSocket {
    /// Connect to `path` (normally [`DEVD_SEQPACKET`]).
    pub fn connect(path: &str) -> io::Result<Self> {
        // SAFETY: plain socket(2) call; the fd is owned below.
        let raw =
            unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: raw is a fresh, valid descriptor.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: zeroed sockaddr_un is a valid initial value.
        let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
        addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
        let bytes = path.as_bytes();
        if bytes.len() >= addr.sun_path.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "socket path too long",
            ));
        }
        for (d, s) in addr.sun_path.iter_mut().zip(bytes) {
            *d = *s as libc::c_char;
        }
        let len = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
        // SAFETY: addr is initialised and len is its size.
        let r = unsafe {
            libc::connect(
                fd.as_raw_fd(),
                (&addr as *const libc::sockaddr_un).cast(),
                len,
            )
        };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(DevdSocket { fd })
    }

    /// Block for the next event (without its trailing newline). `None`
    /// when devd closed the connection.
    pub fn recv_event(&mut self) -> io::Result<Option<String>> {
        let mut buf = vec![0u8; 8192];
        loop {
            // SAFETY: buf is valid for buf.len() bytes.
            let n =
                unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            if n == 0 {
                return Ok(None);
            }
            let s = String::from_utf8_lossy(&buf[..n as usize]);
            return Ok(Some(s.trim_end_matches(['\n', '\0']).to_string()));
        }
    }
}

impl DevdSocket {
    /// Wait up to `timeout` for an event: `Ok(None)` on timeout, otherwise
    /// like [`DevdSocket::recv_event`] (whose `None` means closed, here an
    /// `UnexpectedEof` error so the two cannot be confused).
    pub fn recv_event_timeout(
        &mut self,
        timeout: std::time::Duration,
    ) -> io::Result<Option<String>> {
        let mut pfd = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = timeout.as_millis().min(i32::MAX as u128) as libc::c_int;
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut pfd, 1, ms) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        if n == 0 {
            return Ok(None);
        }
        match self.recv_event()? {
            Some(ev) => Ok(Some(ev)),
            None => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "devd closed the socket",
            )),
        }
    }
}

impl AsRawFd for DevdSocket {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.fd.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A minimal SOCK_SEQPACKET server at `path`, returning its fd.
    fn listen(path: &str) -> OwnedFd {
        // SAFETY: plain socket calls on fresh descriptors and a zeroed
        // sockaddr_un filled with a short path.
        unsafe {
            let fd = libc::socket(libc::AF_UNIX, libc::SOCK_SEQPACKET, 0);
            assert!(fd >= 0);
            let mut addr: libc::sockaddr_un = std::mem::zeroed();
            addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
            for (d, s) in addr.sun_path.iter_mut().zip(path.as_bytes()) {
                *d = *s as libc::c_char;
            }
            let len = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
            assert_eq!(
                libc::bind(fd, (&addr as *const libc::sockaddr_un).cast(), len),
                0
            );
            assert_eq!(libc::listen(fd, 4), 0);
            OwnedFd::from_raw_fd(fd)
        }
    }

    #[test]
    fn one_event_per_packet_then_close() {
        let dir = std::env::temp_dir().join(format!("hvnet-devd-sock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("devd.seqpacket.pipe");
        let path_s = path.to_str().unwrap().to_string();
        let server = listen(&path_s);
        let t = std::thread::spawn(move || {
            // SAFETY: accept/send on valid descriptors with valid buffers.
            unsafe {
                let c = libc::accept(
                    server.as_raw_fd(),
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                );
                assert!(c >= 0);
                let c = OwnedFd::from_raw_fd(c);
                for ev in [
                    "!system=IFNET subsystem=hn0 type=LINK_UP\n",
                    "!system=HYPERV_NIC_VF subsystem=hn0 type=VF_UP\n",
                ] {
                    let n = libc::send(c.as_raw_fd(), ev.as_ptr().cast(), ev.len(), 0);
                    assert_eq!(n as usize, ev.len());
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        let mut s = DevdSocket::connect(&path_s).unwrap();
        assert_eq!(
            s.recv_event().unwrap().as_deref(),
            Some("!system=IFNET subsystem=hn0 type=LINK_UP")
        );
        assert_eq!(
            s.recv_event_timeout(Duration::from_secs(5))
                .unwrap()
                .as_deref(),
            Some("!system=HYPERV_NIC_VF subsystem=hn0 type=VF_UP")
        );
        assert_eq!(
            s.recv_event_timeout(Duration::from_millis(10)).unwrap(),
            None
        );
        t.join().unwrap();
        assert_eq!(s.recv_event().unwrap(), None, "closed");
        std::fs::remove_dir_all(dir).unwrap();
        assert!(DevdSocket::connect("/nonexistent/devd.pipe").is_err());
    }
}
