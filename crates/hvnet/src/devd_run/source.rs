//! The event source: `/dev/devctl` or a Linux stand-in for it.
//!
//! On FreeBSD every `read` of `/dev/devctl` returns exactly one record of at most 1015 bytes
//! (spec §4.1). The path may be:
//! * a character device: read as devctl (one record per read);
//! * a unix socket: connected with SOCK_SEQPACKET, one record per `recv`, like devctl;
//! * a FIFO (or a regular file): a byte stream, split into records after each `\n`.
//!
//! Records longer than 1015 bytes are reported as [`Record::Oversized`] and skipped, as the
//! kernel would never have delivered them ([`super::framing`]).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::FileTypeExt;
use std::path::Path;

use anyhow::Context;

use super::framing::{classify, LineSplitter};
pub use super::framing::{Record, MAX_RECORD};

/// devd's read buffer (DEVCTL_MAXBUF).
const READ_BUF: usize = 8192;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// One record per read (char device, seqpacket socket).
    Datagram,
    /// Split on newlines (FIFO, regular file).
    Lines,
}

pub struct Source {
    fd: OwnedFd,
    framing: Framing,
    /// Lines mode: the unfinished line.
    lines: LineSplitter,
    eof: bool,
}

/// Result of one read step.
pub enum Read {
    Records(Vec<Record>),
    /// Nothing available now (EAGAIN / EINTR).
    Nothing,
    /// End of input or a read error: devd leaves its loop.
    End(Option<std::io::Error>),
}

impl Source {
    pub fn open(path: &Path) -> anyhow::Result<Source> {
        let meta = std::fs::metadata(path)
            .with_context(|| format!("Can't open devctl device {}", path.display()))?;
        let ft = meta.file_type();
        let (fd, framing) = if ft.is_socket() {
            (
                connect_seqpacket(path)
                    .with_context(|| format!("Can't open devctl device {}", path.display()))?,
                Framing::Datagram,
            )
        } else {
            let framing = if ft.is_char_device() {
                Framing::Datagram
            } else {
                Framing::Lines
            };
            let file = std::fs::OpenOptions::new()
                .read(true)
                .custom_flags_nonblock()
                .open(path)
                .with_context(|| format!("Can't open devctl device {}", path.display()))?;
            (OwnedFd::from(file), framing)
        };
        Ok(Source {
            fd,
            framing,
            lines: LineSplitter::default(),
            eof: false,
        })
    }

    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Whether complete records are already buffered (so polling the fd is not enough).
    pub fn has_buffered(&self) -> bool {
        self.framing == Framing::Lines && self.lines.has_complete()
    }

    /// Read once and return what is complete. Datagram framing returns at most one record.
    pub fn read(&mut self) -> Read {
        if self.has_buffered() {
            return Read::Records(self.lines.take_lines());
        }
        if self.eof {
            return Read::End(None);
        }
        let mut buf = vec![0u8; READ_BUF];
        // SAFETY: reading into a buffer we own, at most its length − 1 as devd does.
        let n = unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), READ_BUF - 1) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::EINTR) | Some(libc::EAGAIN) => Read::Nothing,
                _ => Read::End(Some(e)),
            };
        }
        let n = n as usize;
        if n == 0 {
            self.eof = true;
            // A last line without a newline is still a record.
            if self.framing == Framing::Lines {
                if let Some(last) = self.lines.finish() {
                    return Read::Records(vec![last]);
                }
            }
            return Read::End(None);
        }
        buf.truncate(n);
        match self.framing {
            Framing::Datagram => Read::Records(vec![classify(buf)]),
            Framing::Lines => Read::Records(self.lines.push(&buf)),
        }
    }
}

trait NonBlock {
    fn custom_flags_nonblock(&mut self) -> &mut Self;
}

impl NonBlock for std::fs::OpenOptions {
    fn custom_flags_nonblock(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt;
        // Non-blocking so that opening a FIFO does not wait for a writer; close-on-exec so
        // actions do not inherit it (they get fds >= 3 closed anyway).
        self.custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
    }
}

fn connect_seqpacket(path: &Path) -> std::io::Result<OwnedFd> {
    use std::os::unix::ffi::OsStrExt;
    // SAFETY: socket(2) then ownership of the new descriptor.
    let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fd was just created and is owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let (addr, len) = super::clients::sockaddr_un(path.as_os_str().as_bytes())?;
    // SAFETY: addr is a valid sockaddr_un of length len.
    if unsafe {
        libc::connect(
            fd.as_raw_fd(),
            (&addr as *const libc::sockaddr_un).cast(),
            len,
        )
    } != 0
    {
        return Err(std::io::Error::last_os_error());
    }
    super::clients::set_nonblock(fd.as_raw_fd())?;
    Ok(fd)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_source(data: &[u8]) -> Source {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("events");
        std::fs::write(&p, data).unwrap();
        let s = Source::open(&p).unwrap();
        drop(dir);
        s
    }

    fn drain(s: &mut Source) -> Vec<Record> {
        let mut all = Vec::new();
        loop {
            match s.read() {
                Read::Records(r) => all.extend(r),
                Read::Nothing => continue,
                Read::End(_) => return all,
            }
        }
    }

    #[test]
    fn lines_keep_newlines_and_split_records() {
        let mut s = lines_source(b"!system=A subsystem=b type=c\n+em0 at  on pci0\nlast");
        let r = drain(&mut s);
        assert_eq!(
            r,
            vec![
                Record::Event(b"!system=A subsystem=b type=c\n".to_vec()),
                Record::Event(b"+em0 at  on pci0\n".to_vec()),
                Record::Event(b"last".to_vec()),
            ]
        );
    }

    #[test]
    fn oversized_lines_are_reported_and_the_next_line_survives() {
        let mut data = vec![b'x'; 3000];
        data.push(b'\n');
        data.extend_from_slice(b"!ok\n");
        let mut s = lines_source(&data);
        assert_eq!(
            drain(&mut s),
            vec![Record::Oversized(3001), Record::Event(b"!ok\n".to_vec())]
        );
        let mut exact = vec![b'y'; MAX_RECORD - 1];
        exact.push(b'\n');
        let mut s = lines_source(&exact);
        assert_eq!(drain(&mut s), vec![Record::Event(exact.clone())]);
    }

    #[test]
    fn an_over_long_last_line_without_a_newline_is_reported() {
        let mut data = b"!ok\n".to_vec();
        data.extend(vec![b'q'; 9000]);
        let mut s = lines_source(&data);
        assert_eq!(
            drain(&mut s),
            vec![Record::Event(b"!ok\n".to_vec()), Record::Oversized(9000)]
        );
    }

    #[test]
    fn lines_longer_than_the_read_buffer_are_skipped() {
        let mut data = vec![b'z'; 20_000];
        data.push(b'\n');
        data.extend_from_slice(b"-da0 at  on umass0\n");
        let mut s = lines_source(&data);
        assert_eq!(
            drain(&mut s),
            vec![
                Record::Oversized(20_001),
                Record::Event(b"-da0 at  on umass0\n".to_vec())
            ]
        );
    }
}
