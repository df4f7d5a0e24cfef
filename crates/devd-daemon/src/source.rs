//! The event source: `/dev/devctl` or a Linux stand-in for it.
//!
//! On FreeBSD every `read` of `/dev/devctl` returns exactly one record of at most 1015 bytes
//! (spec §4.1). The path may be:
//! * a character device: read as devctl (one record per read);
//! * a unix socket: connected with SOCK_SEQPACKET, one record per `recv`, like devctl;
//! * a FIFO (or a regular file): a byte stream, split into records after each `\n`.
//!
//! Records longer than 1015 bytes are reported as [`Record::Oversized`] and skipped, as the
//! kernel would never have delivered them ([`super::framing`]). A zero-length record from a
//! socket is returned as an empty [`Record::Event`] (the daemon counts it as malformed and
//! skips it), not taken for the end of input, which a socket reports with the same
//! zero-length read.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;

use crate::clients::set_nonblock;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use super::framing::{classify, LineSplitter};
pub use super::framing::{Record, MAX_RECORD};

/// devd's read buffer (DEVCTL_MAXBUF).
const READ_BUF: usize = 8192;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// One record per read (a devctl character device).
    Datagram,
    /// One record per message (a seqpacket socket); a message may be empty.
    Seqpacket,
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

/// The event source cannot be opened (devd's words).
#[derive(Debug, thiserror::Error)]
#[error("Can't open devctl device {}", .path.display())]
pub struct OpenError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

impl Source {
    pub fn open(path: &Path) -> Result<Source, OpenError> {
        let fail = |source| OpenError {
            path: path.to_path_buf(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(fail)?;
        let ft = meta.file_type();
        let (fd, framing) = if ft.is_socket() {
            (
                connect_seqpacket(path).map_err(|e| fail(e.into()))?,
                Framing::Seqpacket,
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
                .map_err(fail)?;
            (OwnedFd::from(file), framing)
        };
        Ok(Source {
            fd,
            framing,
            lines: LineSplitter::default(),
            eof: false,
        })
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
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
        // At most READ_BUF − 1 bytes, as devd reads.
        let mut buf = vec![0u8; READ_BUF - 1];
        let n = match nix::unistd::read(&self.fd, &mut buf) {
            Ok(n) => n,
            Err(Errno::EINTR | Errno::EAGAIN) => return Read::Nothing,
            Err(e) => return Read::End(Some(e.into())),
        };
        if n == 0 && self.framing == Framing::Seqpacket && !self.peer_finished() {
            return Read::Records(vec![Record::Event(Vec::new())]);
        }
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
            Framing::Datagram | Framing::Seqpacket => Read::Records(vec![classify(buf)]),
            Framing::Lines => Read::Records(self.lines.push(&buf)),
        }
    }

    /// After a zero-length read from the socket: whether that was the end of input (the peer
    /// closed or shut down its side, and no record is left) rather than an empty record.
    fn peer_finished(&self) -> bool {
        let hung_up = hung_up_now(self.fd.as_fd());
        hung_up && queued_bytes(self.fd.as_fd()).is_none_or(|n| n == 0)
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

/// devd's socket, connected (blocking), then non-blocking like the other sources.
fn connect_seqpacket(path: &Path) -> nix::Result<OwnedFd> {
    let fd = crate::clients::connect_seqpacket(path)?;
    set_nonblock(fd.as_fd())?;
    Ok(fd)
}

/// Whether poll(2) reports that the peer of `fd` hung up or shut down its writing side.
/// Raw poll: nix's PollFlags has no POLLRDHUP, and its revents() drops the whole answer when
/// the kernel sets a bit it does not know.
fn hung_up_now(fd: BorrowedFd) -> bool {
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN | libc::POLLRDHUP,
        revents: 0,
    };
    // SAFETY: poll reads and writes exactly the one pollfd it is given (count 1), `p`, a live
    // local; timeout 0, so it does not wait. The descriptor is borrowed, so it stays open.
    let n = unsafe { libc::poll(&mut p, 1, 0) };
    n > 0 && p.revents & (libc::POLLHUP | libc::POLLRDHUP) != 0
}

/// The bytes waiting to be read on `fd` (FIONREAD); None if the ioctl fails. nix has no
/// wrapper for it (its ioctl macros generate unsafe functions).
fn queued_bytes(fd: BorrowedFd) -> Option<usize> {
    let mut queued: libc::c_int = 0;
    // SAFETY: FIONREAD writes one c_int through its pointer argument, which points at
    // `queued`, a live local c_int; the descriptor is borrowed, so it stays open.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::FIONREAD, &mut queued) };
    (rc == 0).then(|| usize::try_from(queued).unwrap_or(0))
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
