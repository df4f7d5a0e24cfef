//! A pid file locked the way pidfile(3) does it: open with O_NONBLOCK|O_CLOEXEC, mode 0600,
//! `flock(LOCK_EX|LOCK_NB)`; a held lock means another instance runs. Used by `hvnet devd
//! run` (devd's pid file) and `hvnet run` (the lock next to its control socket), each taking
//! it before it touches any socket.
//!
//! Unlike pidfile(3) it never follows a symlink at the path (O_NOFOLLOW), refuses anything but
//! a regular file with one link owned by root or the daemon's user (a hard link planted in a
//! shared directory would otherwise be truncated), and checks after locking that the path
//! still names the locked file, so that an instance removing its pid file at exit cannot
//! leave the next two instances each holding a lock on a different file.

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

#[derive(Debug, thiserror::Error)]
pub enum PidFileError {
    /// Another process holds the lock; its pid as written in the file (-1: not yet written).
    #[error("{} is locked by a running process, pid {pid}", .path.display())]
    AlreadyRunning { path: PathBuf, pid: i32 },
    /// Something other than a pid file of ours is at the path.
    #[error("{}: refusing to use it as a pid file: {why}", .path.display())]
    Unsafe { path: PathBuf, why: String },
    /// Opening, inspecting or locking it failed (the OS error is part of the message, as
    /// devd logs it: `pidfile_open: PATH: ERROR`).
    #[error("{}: {error}", .path.display())]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
}

/// An open, locked pid file; unlinked when dropped (pidfile_remove).
#[derive(Debug)]
pub struct PidFile {
    path: PathBuf,
    file: Flock<File>,
}

/// How often the path may change under us between open and lock before we give up.
const ATTEMPTS: usize = 8;

impl PidFile {
    pub fn open(path: &Path) -> Result<PidFile, PidFileError> {
        for _ in 0..ATTEMPTS {
            if let Some(p) = PidFile::try_open(path)? {
                return Ok(p);
            }
        }
        Err(PidFileError::Io {
            path: path.to_path_buf(),
            error: std::io::Error::other("the file kept being replaced while locking it"),
        })
    }

    /// `None`: the path no longer names the file we locked; try again.
    fn try_open(path: &Path) -> Result<Option<PidFile>, PidFileError> {
        let io = |error| PidFileError::Io {
            path: path.to_path_buf(),
            error,
        };
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .mode(0o600)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOFOLLOW)
            .open(path)
            .map_err(|e| match e.raw_os_error() {
                Some(libc::ELOOP) => PidFileError::Unsafe {
                    path: path.to_path_buf(),
                    why: "it is a symbolic link".into(),
                },
                _ => io(e),
            })?;
        let meta = file.metadata().map_err(io)?;
        let own = nix::unistd::geteuid().as_raw();
        let why = if !meta.is_file() {
            Some("not a regular file".to_string())
        } else if meta.uid() != 0 && meta.uid() != own {
            Some(format!("owned by uid {}", meta.uid()))
        } else if meta.nlink() != 1 {
            Some(format!("it has {} hard links", meta.nlink()))
        } else {
            None
        };
        if let Some(why) = why {
            return Err(PidFileError::Unsafe {
                path: path.to_path_buf(),
                why,
            });
        }
        let file = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(locked) => locked,
            Err((mut file, Errno::EWOULDBLOCK)) => {
                // The holder may not have written its pid yet; pidfile(3) retries briefly.
                let mut pid = -1;
                for _ in 0..50 {
                    let mut s = String::new();
                    let _ = file.read_to_string(&mut s);
                    if let Ok(p) = s.trim().parse::<i32>() {
                        pid = p;
                        break;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                return Err(PidFileError::AlreadyRunning {
                    path: path.to_path_buf(),
                    pid,
                });
            }
            Err((_, e)) => return Err(io(e.into())),
        };
        // Removed (or replaced) by its previous holder between our open and our lock?
        match std::fs::symlink_metadata(path) {
            Ok(now) if now.dev() == meta.dev() && now.ino() == meta.ino() => {}
            _ => return Ok(None),
        }
        Ok(Some(PidFile {
            path: path.to_path_buf(),
            file,
        }))
    }

    /// Write our (current) pid, replacing the contents.
    pub fn write_pid(&mut self) -> std::io::Result<()> {
        self.file.set_len(0)?;
        let text = format!("{}\n", std::process::id());
        self.file.write_all_at(text.as_bytes(), 0)?;
        self.file.flush()
    }

    /// Unlink and close (pidfile_remove).
    pub fn remove(self) {
        drop(self)
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        // Still ours: nobody else can lock it while we hold it, and we checked after locking
        // that the path names it.
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_reports_the_holder_and_removal_frees_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.pid");
        let mut first = PidFile::open(&path).unwrap();
        first.write_pid().unwrap();
        match PidFile::open(&path) {
            Err(PidFileError::AlreadyRunning { pid, .. }) => {
                assert_eq!(pid, std::process::id() as i32)
            }
            other => panic!("{other:?}"),
        }
        first.remove();
        assert!(!path.exists());
        let again = PidFile::open(&path).unwrap();
        drop(again);
    }

    #[test]
    fn planted_links_are_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let path = dir.path().join("x.pid");
        std::os::unix::fs::symlink(&victim, &path).unwrap();
        let e = PidFile::open(&path).unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        std::fs::remove_file(&path).unwrap();
        std::fs::hard_link(&victim, &path).unwrap();
        let e = PidFile::open(&path).unwrap_err();
        assert!(e.to_string().contains("2 hard links"), "{e}");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        // Tests run as root: chown makes the file another user's.
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, "").unwrap();
        std::os::unix::fs::chown(&path, Some(4321), None).unwrap();
        let e = PidFile::open(&path).unwrap_err();
        assert!(e.to_string().contains("owned by uid 4321"), "{e}");
    }
}
