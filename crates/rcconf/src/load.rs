//! Reading rc.conf files from a file system root, the way rc.subr's
//! `load_rc_config` does. The only I/O in this crate: reading files and
//! listing `rc.conf.d/<service>` directories.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use crate::conf::RcConf;
use crate::diag::Severity;
use crate::expand::split_fields;
use crate::pattern;

/// The defaults file rc.subr reads first.
pub const DEFAULTS_FILE: &str = "/etc/defaults/rc.conf";

/// Map a guest path (absolute, or relative to `/` where rc runs) into `root`.
pub fn host_path(root: &Path, guest: &str) -> PathBuf {
    root.join(guest.trim_start_matches('/'))
}

impl RcConf {
    /// `load_rc_config` for each service in `services` (none: only the
    /// rc.conf files): `/etc/defaults/rc.conf`, then every file of
    /// `rc_conf_files` once, re-scanning the list once in case a file
    /// redefined it; without a defaults file, `/etc/rc.conf` alone. Then
    /// for each service `<d>/rc.conf.d/<service>` (a file, or every file of
    /// a directory of that name) for `d` in `/etc` and each `local_startup`
    /// directory with `/rc.d` removed.
    ///
    /// Like rc.subr, `_localbase` is set to `/usr/local` before the
    /// defaults are read (newer defaults files use it in `local_startup`).
    pub fn load(root: &Path, services: &[&str]) -> RcConf {
        let mut conf = RcConf::new();
        conf.set_trusted("_localbase", "/usr/local");
        if conf.source_file(root, DEFAULTS_FILE) {
            conf.source_rc_confs(root);
        } else {
            conf.source_file(root, "/etc/rc.conf");
        }
        for svc in services {
            conf.load_service(root, svc);
        }
        conf
    }

    /// Read one file alone, like `. /etc/rc.conf` in hyperv_vfattach
    /// (no defaults, no rc.conf.local). A missing file gives an empty
    /// configuration.
    pub fn load_file(root: &Path, guest: &str) -> RcConf {
        let mut conf = RcConf::new();
        conf.source_file(root, guest);
        conf
    }

    /// `[ -r FILE ] && . FILE`. Returns whether the file was read.
    pub fn source_file(&mut self, root: &Path, guest: &str) -> bool {
        self.source_file_at(root, guest, 0)
    }

    pub(crate) fn source_file_at(&mut self, root: &Path, guest: &str, depth: usize) -> bool {
        let path = host_path(root, guest);
        match fs::read(&path) {
            Ok(bytes) => {
                let text = match String::from_utf8(bytes) {
                    Ok(t) => t,
                    Err(e) => {
                        self.diag(
                            guest,
                            0,
                            Severity::Error,
                            "expected UTF-8 text, found invalid bytes (replaced by U+FFFD)".into(),
                        );
                        String::from_utf8_lossy(e.as_bytes()).into_owned()
                    }
                };
                self.source_text_in(guest, &text, Some(root), depth);
                true
            }
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::PermissionDenied) => {
                false
            }
            Err(e) => {
                // Readable per `[ -r ]` (e.g. a directory) but `.` fails.
                if path.is_dir() {
                    self.diag(
                        guest,
                        0,
                        Severity::Error,
                        "expected a file to source, found a directory".into(),
                    );
                } else {
                    self.diag(guest, 0, Severity::Error, format!("cannot read: {e}"));
                }
                false
            }
        }
    }

    /// `source_rc_confs` from /etc/defaults/rc.conf: two passes over
    /// `rc_conf_files`, each file sourced at most once.
    fn source_rc_confs(&mut self, root: &Path) {
        let mut done: Vec<String> = Vec::new();
        for _pass in 0..2 {
            let list = split_fields(self.get("rc_conf_files").unwrap_or(""));
            for f in list {
                if done.contains(&f) {
                    continue;
                }
                done.push(f.clone());
                self.source_file(root, &f);
            }
        }
    }

    /// The service part of `load_rc_config <service>`.
    pub fn load_service(&mut self, root: &Path, service: &str) {
        let mut dirs = vec!["/etc".to_string()];
        // Unset `local_startup` (no defaults file) means no extra directory.
        dirs.extend(split_fields(self.get("local_startup").unwrap_or("")));
        for d in dirs {
            let d = pattern::trim_suffix(&d, &pattern::compile("/rc.d"), false);
            let guest = format!("{d}/rc.conf.d/{service}");
            let host = host_path(root, &guest);
            if host.is_file() {
                self.source_file(root, &guest);
            } else if host.is_dir() {
                let Ok(rd) = fs::read_dir(&host) else {
                    continue;
                };
                let mut names: Vec<String> = rd
                    .filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| !n.starts_with('.'))
                    .collect();
                names.sort();
                for n in names {
                    let g = format!("{guest}/{n}");
                    if host_path(root, &g).is_file() {
                        self.source_file(root, &g);
                    }
                }
            }
        }
    }
}
