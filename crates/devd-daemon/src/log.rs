//! devd's logging (spec §5.6): syslog with ident `devd`, facility user, or stderr with `-d`;
//! `-q` keeps only LOG_WARNING and more severe.

use nix::syslog::{syslog, Severity};

/// Syslog priorities devd uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Err = libc::LOG_ERR as isize,
    Warning = libc::LOG_WARNING as isize,
    Notice = libc::LOG_NOTICE as isize,
    Info = libc::LOG_INFO as isize,
    Debug = libc::LOG_DEBUG as isize,
}

/// Where log lines go.
#[derive(Debug, Clone, Copy)]
pub struct Logger {
    to_stderr: bool,
    quiet: bool,
}

static IDENT: &std::ffi::CStr = c"devd";

impl Level {
    fn severity(self) -> Severity {
        match self {
            Level::Err => Severity::LOG_ERR,
            Level::Warning => Severity::LOG_WARNING,
            Level::Notice => Severity::LOG_NOTICE,
            Level::Info => Severity::LOG_INFO,
            Level::Debug => Severity::LOG_DEBUG,
        }
    }
}

impl Logger {
    /// `debug`: `-d` (stderr, every priority); `quiet`: `-q`.
    pub fn new(debug: bool, quiet: bool) -> Logger {
        if !debug {
            // SAFETY: openlog keeps the ident pointer for every later syslog call, so it must
            // stay valid for the process's life: IDENT is a NUL-terminated 'static string.
            // (nix's openlog on FreeBSD passes a temporary copy, which would dangle.)
            unsafe { libc::openlog(IDENT.as_ptr(), 0, libc::LOG_USER) };
        }
        Logger {
            to_stderr: debug,
            quiet,
        }
    }

    pub fn log(&self, level: Level, msg: &str) {
        if self.to_stderr {
            eprintln!("{msg}");
            return;
        }
        if self.quiet && level > Level::Warning {
            return;
        }
        // syslog takes a C string: a NUL would cut the message short.
        let _ = syslog(level.severity(), &msg.replace('\0', "\\0"));
    }

    pub fn err(&self, m: &str) {
        self.log(Level::Err, m)
    }
    pub fn warning(&self, m: &str) {
        self.log(Level::Warning, m)
    }
    pub fn notice(&self, m: &str) {
        self.log(Level::Notice, m)
    }
    pub fn info(&self, m: &str) {
        self.log(Level::Info, m)
    }
    pub fn debug(&self, m: &str) {
        self.log(Level::Debug, m)
    }
}
