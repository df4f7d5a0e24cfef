//! Which shell runs actions, and how event values are quoted for it.
//!
//! devd quotes every value as `$'…'`, which FreeBSD's sh reads; a shell that does not
//! (Debian's dash) reads `$'a\'b'` as `$`, `'a\'` and then shell syntax, so event data would
//! run as commands. At start the shell is therefore probed, by running it exactly as actions
//! run, with a value holding every byte from 1 to 255 (and multibyte lead bytes before `\`
//! and `'`) quoted the way devd quotes it; the shell must print that value back byte for
//! byte. Names are never trusted.
//!
//! The choice:
//! 1. A shell that was configured (`--shell`, `devd_shell`) is used as configured: with
//!    `$'…'` if it passes the probe, else with POSIX single quotes if it passes that probe.
//! 2. Otherwise `/bin/sh`, if it passes the `$'…'` probe; else the first of [`SEARCH`] that
//!    is a root-owned executable nobody else may write and passes it; else `/bin/sh` with
//!    POSIX single quotes.
//!
//! A shell that passes neither probe is an error at start. With either quoting a value with a
//! NUL is refused when an action is expanded ([`hvnet_devd::expand::Quoting::unquotable`]).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hvnet_devd::Quoting;

use crate::action;

/// devd's shell.
pub const DEFAULT_SHELL: &str = "/bin/sh";

/// Shells that read `$'…'`, tried in this order when `/bin/sh` does not: bash first (the
/// most widely installed, in POSIX mode when run as `sh`), then mksh and ksh93, busybox (its
/// `sh` applet reads `$'…'` when built with bash compatibility), zsh last (its sh emulation
/// strays furthest from POSIX sh). Fixed system directories only, never `$PATH`: the daemon
/// runs as root.
pub const SEARCH: &[&str] = &[
    "/bin/bash",
    "/usr/bin/bash",
    "/usr/local/bin/bash",
    "/bin/mksh",
    "/usr/bin/mksh",
    "/usr/local/bin/mksh",
    "/bin/ksh93",
    "/usr/bin/ksh93",
    "/usr/local/bin/ksh93",
    "/bin/busybox",
    "/usr/bin/busybox",
    "/usr/local/bin/busybox",
    "/bin/zsh",
    "/usr/bin/zsh",
    "/usr/local/bin/zsh",
];

/// A probe that has not answered by then counts as failed.
const PROBE_LIMIT: Duration = Duration::from_secs(5);

/// The shell actions run with and how values are quoted for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionShell {
    pub path: PathBuf,
    pub quoting: Quoting,
    /// Why this one, for the start-up log line.
    pub reason: String,
}

impl ActionShell {
    /// One line for logs and `--check`.
    pub fn describe(&self) -> String {
        format!(
            "actions run with {} and event values quoted as {}, because {}",
            self.path.display(),
            self.quoting.describe(),
            self.reason
        )
    }
}

/// No shell can be trusted with event values.
#[derive(Debug, thiserror::Error)]
pub enum ShellError {
    #[error("{}: reads neither $'...' nor POSIX '...' quoting back intact (or cannot be run), so event values cannot be passed to actions safely", .path.display())]
    Unusable { path: PathBuf },
}

/// Choose the shell for actions (see the module documentation).
pub fn choose(configured: Option<&Path>) -> Result<ActionShell, ShellError> {
    let search: Vec<PathBuf> = SEARCH.iter().map(PathBuf::from).collect();
    choose_among(configured, &search)
}

/// [`choose`] with the list to search.
pub fn choose_among(
    configured: Option<&Path>,
    search: &[PathBuf],
) -> Result<ActionShell, ShellError> {
    let first = configured.unwrap_or(Path::new(DEFAULT_SHELL));
    let pick = |path: &Path, quoting, reason: String| ActionShell {
        path: path.to_path_buf(),
        quoting,
        reason,
    };
    if reads_back(first, Quoting::Shell) {
        return Ok(pick(first, Quoting::Shell, "it reads $'...'".into()));
    }
    let lacks = format!("{} does not read $'...' correctly", first.display());
    if configured.is_none() {
        let mut seen = Vec::new();
        for candidate in search {
            // One probe per file however many names lead to it (/bin is often /usr/bin).
            let Ok(real) = std::fs::canonicalize(candidate) else {
                continue;
            };
            if seen.contains(&real) || !trusted(&real) {
                continue;
            }
            seen.push(real);
            if reads_back(candidate, Quoting::Shell) {
                return Ok(pick(
                    candidate,
                    Quoting::Shell,
                    format!("{lacks}; {} does", candidate.display()),
                ));
            }
        }
    }
    if reads_back(first, Quoting::SingleQuotes) {
        let why = if configured.is_some() {
            format!("{lacks}; it was configured")
        } else {
            format!("{lacks}, nor does any shell in the search list")
        };
        return Ok(pick(first, Quoting::SingleQuotes, why));
    }
    Err(ShellError::Unusable {
        path: first.to_path_buf(),
    })
}

/// A root-owned (or our own) regular executable that no one else may write: a shell the
/// daemon may run as root.
fn trusted(path: &Path) -> bool {
    let Ok(m) = std::fs::metadata(path) else {
        return false;
    };
    let euid = nix::unistd::geteuid().as_raw();
    m.is_file()
        && m.mode() & 0o111 != 0
        && m.mode() & 0o022 == 0
        && (m.uid() == 0 || m.uid() == euid)
}

/// The probe value: every byte but NUL, then multibyte-encoding lead bytes right before the
/// two bytes `$'…'` escapes (a shell that took `\x82\` as one character would end the quote
/// early).
pub fn probe_value() -> Vec<u8> {
    let mut v: Vec<u8> = (1..=255).collect();
    for lead in [0x81, 0x82, 0x8e, 0xa1, 0xc3, 0xe0, 0xfe] {
        v.extend_from_slice(&[lead, b'\\', lead, b'\'', lead, b'\\', b'\'']);
    }
    v.extend_from_slice(b"'\\'' \\n \\x41 \\u00e9 \\c $HOME `id` $(id)");
    v
}

/// Whether `shell`, run as actions run, prints [`probe_value`] back intact when it is
/// inserted with `quoting`.
pub fn reads_back(shell: &Path, quoting: Quoting) -> bool {
    let value = probe_value();
    let mut cmd = b"printf '%s' ".to_vec();
    quoting.insert_into(&mut cmd, &value);
    let (outcome, out) = action::capture(shell, &cmd, PROBE_LIMIT);
    !outcome.failed() && out == value
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Say on stderr that a test is skipped, and why; under HVNET_TEST_STRICT (which .ci/run
    /// sets) fail instead, so CI never passes a test it did not run.
    fn skip(why: &str) {
        if std::env::var_os("HVNET_TEST_STRICT").is_some() {
            panic!("SKIPPED {why} (HVNET_TEST_STRICT is set)");
        }
        eprintln!("SKIPPED {why}");
    }

    fn have(p: &str) -> bool {
        Path::new(p).exists()
    }

    #[test]
    fn the_probe_tells_what_a_shell_reads() {
        if have("/bin/bash") {
            assert!(reads_back(Path::new("/bin/bash"), Quoting::Shell));
            assert!(reads_back(Path::new("/bin/bash"), Quoting::SingleQuotes));
        }
        if have("/bin/dash") {
            assert!(!reads_back(Path::new("/bin/dash"), Quoting::Shell));
            assert!(reads_back(Path::new("/bin/dash"), Quoting::SingleQuotes));
        }
        assert!(!reads_back(Path::new("/nonexistent/sh"), Quoting::Shell));
        assert!(!reads_back(
            Path::new("/nonexistent/sh"),
            Quoting::SingleQuotes
        ));
        // Runs, but does not print the value back.
        assert!(!reads_back(Path::new("/bin/true"), Quoting::SingleQuotes));
    }

    #[test]
    fn a_configured_shell_is_kept_and_quoted_as_it_reads() {
        if !have("/bin/dash") || !have("/bin/bash") {
            skip("needs /bin/dash and /bin/bash");
            return;
        }
        let search = [PathBuf::from("/bin/bash")];
        let dash = choose_among(Some(Path::new("/bin/dash")), &search).unwrap();
        assert_eq!(dash.path, Path::new("/bin/dash"));
        assert_eq!(dash.quoting, Quoting::SingleQuotes);
        assert!(dash.reason.contains("configured"), "{}", dash.reason);
        let bash = choose_among(Some(Path::new("/bin/bash")), &[]).unwrap();
        assert_eq!(
            (bash.path.as_path(), bash.quoting),
            (Path::new("/bin/bash"), Quoting::Shell)
        );
        let e = choose_among(Some(Path::new("/bin/true")), &search).unwrap_err();
        assert!(e.to_string().starts_with("/bin/true: reads neither"), "{e}");
    }

    /// The default is searched from `/bin/sh`; here through a directory standing in for it.
    #[test]
    fn without_a_configured_shell_the_search_finds_one_that_reads_dollar_quotes() {
        if !have("/bin/dash") || !have("/bin/bash") {
            skip("needs /bin/dash and /bin/bash");
            return;
        }
        // `choose_among(None, …)` starts from /bin/sh: on this system that is dash or not,
        // and either way the answer must read $'…'.
        let chosen = choose_among(None, &[PathBuf::from("/bin/bash")]).unwrap();
        assert_eq!(chosen.quoting, Quoting::Shell, "{chosen:?}");
        if !reads_back(Path::new(DEFAULT_SHELL), Quoting::Shell) {
            assert_eq!(chosen.path, Path::new("/bin/bash"));
            assert!(
                chosen
                    .reason
                    .starts_with("/bin/sh does not read $'...' correctly; /bin/bash does"),
                "{}",
                chosen.reason
            );
            // Nothing in the list that reads $'…': /bin/sh with single quotes.
            let fallback = choose_among(None, &[PathBuf::from("/bin/dash")]).unwrap();
            assert_eq!(
                (fallback.path.as_path(), fallback.quoting),
                (Path::new("/bin/sh"), Quoting::SingleQuotes)
            );
            assert!(fallback
                .reason
                .contains("nor does any shell in the search list"));
        }
    }

    #[test]
    fn a_shell_others_may_write_is_not_picked() {
        if !have("/bin/bash") {
            skip("needs /bin/bash");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let copy = dir.path().join("bash");
        std::fs::copy("/bin/bash", &copy).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(!trusted(&copy));
        std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(trusted(&copy));
        std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o757)).unwrap();
        if !reads_back(Path::new(DEFAULT_SHELL), Quoting::Shell) {
            let chosen = choose_among(None, std::slice::from_ref(&copy)).unwrap();
            assert_eq!(chosen.path, Path::new(DEFAULT_SHELL), "{chosen:?}");
        }
    }
}
