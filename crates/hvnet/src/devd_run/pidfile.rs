//! A pid file locked the way pidfile(3) does it: open with O_NONBLOCK|O_CLOEXEC, mode 0600,
//! `flock(LOCK_EX|LOCK_NB)`; a held lock means another instance runs.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

#[derive(Debug)]
pub enum PidFileError {
    AlreadyRunning(i32),
    Io {
        path: String,
        source: std::io::Error,
    },
}

impl std::fmt::Display for PidFileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PidFileError::AlreadyRunning(pid) => write!(f, "devd already running, pid: {pid}"),
            PidFileError::Io { path, source } => write!(f, "{path}: {source}"),
        }
    }
}

/// An open, locked pid file; removed when [`PidFile::remove`] is called.
#[derive(Debug)]
pub struct PidFile {
    path: PathBuf,
    file: File,
}

impl PidFile {
    pub fn open(path: &Path) -> Result<PidFile, PidFileError> {
        let io = |source| PidFileError::Io {
            path: path.display().to_string(),
            source,
        };
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .mode(0o600)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(path)
            .map_err(io)?;
        // SAFETY: flock on a descriptor we own.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
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
                return Err(PidFileError::AlreadyRunning(pid));
            }
            return Err(io(e));
        }
        Ok(PidFile {
            path: path.to_path_buf(),
            file,
        })
    }

    /// Write our (current) pid, replacing the contents.
    pub fn write_pid(&mut self) -> std::io::Result<()> {
        self.file.set_len(0)?;
        let text = format!("{}\n", std::process::id());
        // SAFETY: pwrite on our own descriptor from a valid buffer.
        let n = unsafe { libc::pwrite(self.file.as_raw_fd(), text.as_ptr().cast(), text.len(), 0) };
        if n != text.len() as isize {
            return Err(std::io::Error::last_os_error());
        }
        self.file.flush()
    }

    /// Unlink and close (pidfile_remove).
    pub fn remove(self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
