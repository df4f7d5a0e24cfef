//! A client of devd's seqpacket socket (`/var/run/devd.seqpacket.pipe`):
//! one event per packet. Plain Unix socket calls, so it also works (and
//! is tested) on Linux against any SOCK_SEQPACKET server.

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{
    connect, recv, socket, AddressFamily, MsgFlags, SockFlag, SockType, UnixAddr,
};

/// devd's socket that delivers each event as one packet.
pub const DEVD_SEQPACKET: &str = "/var/run/devd.seqpacket.pipe";

/// A connection to devd's seqpacket socket: one event per `recv`.
pub struct DevdSocket {
    fd: OwnedFd,
}

impl DevdSocket {
    /// Connect to `path` (normally [`DEVD_SEQPACKET`]).
    pub fn connect(path: &str) -> io::Result<Self> {
        let fd = socket(
            AddressFamily::Unix,
            SockType::SeqPacket,
            SockFlag::SOCK_CLOEXEC,
            None,
        )?;
        connect(fd.as_raw_fd(), &UnixAddr::new(path)?)?;
        Ok(DevdSocket { fd })
    }

    /// Block for the next event (without its trailing newline). `None`
    /// when devd closed the connection.
    pub fn recv_event(&mut self) -> io::Result<Option<String>> {
        let mut buf = vec![0u8; 8192];
        let n = loop {
            match recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::empty()) {
                Err(Errno::EINTR) => continue,
                r => break r?,
            }
        };
        if n == 0 {
            return Ok(None);
        }
        let s = String::from_utf8_lossy(&buf[..n]);
        Ok(Some(s.trim_end_matches(['\n', '\0']).to_string()))
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
        let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        let mut fds = [PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)];
        let ready = poll(
            &mut fds,
            PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
        )?;
        if ready == 0 {
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

    use nix::sys::socket::{accept, bind, listen as listen_on, send, Backlog};
    use std::os::fd::FromRawFd;

    /// A minimal SOCK_SEQPACKET server at `path`, returning its fd.
    fn listen(path: &str) -> OwnedFd {
        let fd = socket(
            AddressFamily::Unix,
            SockType::SeqPacket,
            SockFlag::empty(),
            None,
        )
        .unwrap();
        bind(fd.as_raw_fd(), &UnixAddr::new(path).unwrap()).unwrap();
        listen_on(&fd, Backlog::new(4).unwrap()).unwrap();
        fd
    }

    #[test]
    fn one_event_per_packet_then_close() {
        let dir = std::env::temp_dir().join(format!("hvnet-devd-sock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("devd.seqpacket.pipe");
        let path_s = path.to_str().unwrap().to_string();
        let server = listen(&path_s);
        let t = std::thread::spawn(move || {
            let c = accept(server.as_raw_fd()).unwrap();
            // SAFETY: accept just returned this descriptor: open and owned by nothing else.
            let c = unsafe { OwnedFd::from_raw_fd(c) };
            for ev in [
                "!system=IFNET subsystem=hn0 type=LINK_UP\n",
                "!system=HYPERV_NIC_VF subsystem=hn0 type=VF_UP\n",
            ] {
                let n = send(c.as_raw_fd(), ev.as_bytes(), MsgFlags::empty()).unwrap();
                assert_eq!(n, ev.len());
            }
            std::thread::sleep(Duration::from_millis(100));
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
