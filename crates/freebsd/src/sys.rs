//! FreeBSD-only system glue: sysctl(3) by name, and devd's seqpacket
//! socket as an event source. Compiled only on FreeBSD.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// devd's socket that delivers each event as one packet.
pub const DEVD_SEQPACKET: &str = "/var/run/devd.seqpacket.pipe";

fn cname(name: &str) -> io::Result<CString> {
    CString::new(name)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in sysctl name"))
}

/// Read a sysctl as raw bytes via sysctlbyname(3).
pub fn sysctl_bytes(name: &str) -> io::Result<Vec<u8>> {
    let c = cname(name)?;
    let mut len: libc::size_t = 0;
    // SAFETY: a NULL old pointer asks only for the size.
    let r = unsafe {
        libc::sysctlbyname(
            c.as_ptr(),
            std::ptr::null_mut(),
            &mut len,
            std::ptr::null(),
            0,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    // The value may grow between the two calls; leave room.
    let mut buf = vec![0u8; len + 64];
    let mut len2: libc::size_t = buf.len();
    // SAFETY: buf has len2 writable bytes; sysctlbyname writes at most len2.
    let r = unsafe {
        libc::sysctlbyname(
            c.as_ptr(),
            buf.as_mut_ptr().cast(),
            &mut len2,
            std::ptr::null(),
            0,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(len2);
    Ok(buf)
}

/// A string sysctl (trailing NUL removed).
pub fn sysctl_string(name: &str) -> io::Result<String> {
    let mut b = sysctl_bytes(name)?;
    while b.last() == Some(&0) {
        b.pop();
    }
    Ok(String::from_utf8_lossy(&b).into_owned())
}

/// An int sysctl.
pub fn sysctl_int(name: &str) -> io::Result<i32> {
    let b = sysctl_bytes(name)?;
    let arr: [u8; 4] = b
        .get(..4)
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("{name}: not an int")))?;
    Ok(i32::from_ne_bytes(arr))
}

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

/// The running kernel's major version (`kern.osreldate` / 100000).
pub fn freebsd_major() -> io::Result<u32> {
    Ok((sysctl_int("kern.osreldate")? / 100_000) as u32)
}
