//! The guest root: a directory the harness owns, its files and its `bin/` wrappers.

use std::ffi::OsStr;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};

use hvnet_sys::shared_dir::{bind_socket, check_dir, random_suffix, write_atomic};

use super::{HarnessError, Server, SOCKET};

/// How a wrapper reaches the harness: a program and its first arguments, to which the
/// wrapper adds `ROOT -- COMMAND ARGS...` (e.g. `/usr/sbin/hvnet simulate --client`).
#[derive(Debug, Clone)]
pub struct ClientCommand {
    exe: PathBuf,
    args: Vec<String>,
}

impl ClientCommand {
    /// `args` are plain words (they go into a shell script unquoted by anyone else); `exe`
    /// may be any path without a single quote.
    pub fn new(exe: &Path, args: &[&str]) -> Result<ClientCommand, HarnessError> {
        if let Some(a) = args.iter().find(|a| !is_word(a)) {
            return Err(HarnessError::NotAWord(a.to_string()));
        }
        if exe.to_string_lossy().contains('\'') {
            return Err(HarnessError::Quoted(exe.to_path_buf()));
        }
        Ok(ClientCommand {
            exe: exe.to_path_buf(),
            args: args.iter().map(|a| a.to_string()).collect(),
        })
    }
}

/// A word a wrapper can hold without quoting: letters, digits, `-`, `_`, `.`.
fn is_word(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// A guest root. A throw-away root ([`Root::temporary`]) is removed on drop; one the user
/// named ([`Root::keep_at`]) stays.
#[derive(Debug)]
pub struct Root {
    dir: PathBuf,
    keep: bool,
}

impl Drop for Root {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

impl Root {
    /// A fresh root in the temporary directory (which must pass [`check_dir`], as the sticky
    /// /tmp does): `PREFIX-PID-N-RANDOM`, mode 0700, made by mkdir alone, so a directory or
    /// a symlink someone planted at a name is never used, only skipped.
    pub fn temporary(prefix: &str) -> Result<Root, HarnessError> {
        Root::temporary_in(&std::env::temp_dir(), prefix, random_suffix)
    }

    fn temporary_in(
        parent: &Path,
        prefix: &str,
        mut suffix: impl FnMut() -> u64,
    ) -> Result<Root, HarnessError> {
        static N: AtomicU32 = AtomicU32::new(0);
        check_dir(parent)?;
        const ATTEMPTS: usize = 16;
        let mut last = None;
        for _ in 0..ATTEMPTS {
            let dir = parent.join(format!(
                "{prefix}-{}-{}-{:016x}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed),
                suffix()
            ));
            match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
                Ok(()) => return Ok(Root { dir, keep: false }),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some((dir, e)),
                Err(e) => return Err(HarnessError::io("creating", dir)(e)),
            }
        }
        let (dir, e) = last.expect("at least one attempt");
        Err(HarnessError::io("creating", dir)(e))
    }

    /// The root at `dir`, kept after the run: created with its parents if missing; it and
    /// every directory above it must pass [`check_dir`] (the part that exists is checked
    /// before anything is created in it); then its mode is 0700.
    pub fn keep_at(dir: &Path) -> Result<Root, HarnessError> {
        let existing = dir
            .ancestors()
            .map(|a| {
                if a.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    a
                }
            })
            .find(|a| a.exists())
            .unwrap_or(Path::new("."));
        check_dir(existing)?;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(HarnessError::io("creating", dir))?;
        check_dir(dir)?;
        // Checked: nobody but root and us can replace it between here and the writes.
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(HarnessError::io("chmod", dir))?;
        Ok(Root {
            dir: dir.to_path_buf(),
            keep: true,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `rel` inside the root.
    pub fn path(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.dir.join(rel)
    }

    /// Create the directory `rel` (and those between) inside the root.
    pub fn mkdir(&self, rel: impl AsRef<Path>) -> Result<PathBuf, HarnessError> {
        let d = self.path(rel);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(&d)
            .map_err(HarnessError::io("creating", &d))?;
        Ok(d)
    }

    /// Write the file `rel` (its directories created) with `mode`, replacing what is there
    /// without following anything planted ([`write_atomic`]).
    pub fn write(
        &self,
        rel: impl AsRef<Path>,
        data: impl AsRef<[u8]>,
        mode: u32,
    ) -> Result<(), HarnessError> {
        let p = self.path(rel);
        if let Some(d) = p.parent() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(d)
                .map_err(HarnessError::io("creating", d))?;
        }
        write_atomic(&p, data.as_ref(), mode).map_err(HarnessError::io("writing", p))
    }

    /// `bin/COMMAND` for each command: `exec CLIENT ROOT -- COMMAND "$@"`.
    pub fn install_wrappers(
        &self,
        client: &ClientCommand,
        commands: &[&str],
    ) -> Result<(), HarnessError> {
        let d = self.dir.to_string_lossy();
        if d.contains('\'') {
            return Err(HarnessError::Quoted(self.dir.clone()));
        }
        if let Some(c) = commands.iter().find(|c| !is_word(c)) {
            return Err(HarnessError::NotAWord(c.to_string()));
        }
        let exe = client.exe.to_string_lossy();
        let args = client.args.join(" ");
        for c in commands {
            let text = format!("#!/bin/sh\nexec '{exe}' {args} '{d}' -- {c} \"$@\"\n");
            self.write(Path::new("bin").join(c), text, 0o755)?;
        }
        Ok(())
    }

    /// `PATH` for a guest program: the wrappers first, then this process's own `PATH`.
    pub fn path_env(&self) -> String {
        format!(
            "{}:{}",
            self.path("bin").display(),
            std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into())
        )
    }

    /// A guest program: found through [`Root::path_env`], run with it, no standard input.
    pub fn command(&self, program: impl AsRef<OsStr>) -> std::process::Command {
        let mut c = std::process::Command::new(program);
        c.env("PATH", self.path_env()).stdin(Stdio::null());
        c
    }

    /// Serve `ROOT/sim.sock` (a stale one is replaced), mode 0600 from the moment it exists.
    pub fn listen(&self) -> Result<Server, HarnessError> {
        let sock = self.path(SOCKET);
        match std::fs::remove_file(&sock) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(HarnessError::io("removing", sock)(e)),
        }
        let listener = bind_socket(&sock, 0o600, |p| std::os::unix::net::UnixListener::bind(p))
            .map_err(HarnessError::io("binding", &sock))?;
        listener
            .set_nonblocking(true)
            .map_err(HarnessError::io("binding", &sock))?;
        Ok(Server::new(listener, sock))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, MetadataExt};

    #[test]
    fn a_temporary_root_skips_planted_names_and_goes_away() {
        let tmp = tempfile::tempdir().unwrap();
        let victim = tmp.path().join("victim");
        std::fs::create_dir(&victim).unwrap();
        // Someone guessed the first name: a symlink to their directory.
        let mut next = [1u64, 2].into_iter();
        let pid = std::process::id();
        // Planted at every counter value the call could use with suffix 1.
        for k in 0..64 {
            let _ = symlink(
                &victim,
                tmp.path().join(format!("r-{pid}-{k}-{:016x}", 1u64)),
            );
        }
        let root = Root::temporary_in(tmp.path(), "r", || next.next().unwrap()).unwrap();
        assert!(
            root.dir()
                .to_string_lossy()
                .ends_with(&format!("-{:016x}", 2u64)),
            "{root:?}"
        );
        let m = std::fs::symlink_metadata(root.dir()).unwrap();
        assert!(m.is_dir());
        assert_eq!(m.mode() & 0o777, 0o700);
        root.write("bin/x", "y", 0o755).unwrap();
        assert_eq!(std::fs::read_dir(&victim).unwrap().count(), 0);
        let dir = root.dir().to_path_buf();
        drop(root);
        assert!(!dir.exists());
        assert!(victim.exists());
    }

    #[test]
    fn when_every_name_is_taken_it_gives_up() {
        let tmp = tempfile::tempdir().unwrap();
        let pid = std::process::id();
        for k in 0..1024 {
            std::fs::create_dir(tmp.path().join(format!("t-{pid}-{k}-{:016x}", 7u64))).ok();
        }
        let e = Root::temporary_in(tmp.path(), "t", || 7).unwrap_err();
        assert!(e.to_string().starts_with("creating "), "{e}");
    }

    #[test]
    fn a_named_root_must_be_safe_and_is_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/guest");
        let root = Root::keep_at(&dir).unwrap();
        assert_eq!(std::fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
        drop(root);
        assert!(dir.exists());
        // Another user's directory: refused, nothing written there.
        let theirs = tmp.path().join("theirs");
        std::fs::create_dir(&theirs).unwrap();
        std::os::unix::fs::chown(&theirs, Some(4321), Some(4321)).unwrap();
        let before = std::fs::metadata(&theirs).unwrap().mode();
        let e = Root::keep_at(&theirs).unwrap_err();
        assert!(e.to_string().contains("owned by uid 4321"), "{e}");
        assert_eq!(
            std::fs::metadata(&theirs).unwrap().mode(),
            before,
            "not chmod'ed"
        );
        // A directory anyone may write: refused.
        let open = tmp.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = Root::keep_at(&open.join("guest")).unwrap_err();
        assert!(e.to_string().contains("writable by group or others"), "{e}");
        assert!(!open.join("guest").exists(), "nothing created in it");
    }

    #[test]
    fn wrappers_exec_the_client_with_the_root_and_the_command() {
        let tmp = tempfile::tempdir().unwrap();
        let root = Root::keep_at(&tmp.path().join("g")).unwrap();
        let client =
            ClientCommand::new(Path::new("/opt/hv net/hvnet"), &["simulate", "--client"]).unwrap();
        root.install_wrappers(&client, &["ifconfig", "sysctl"])
            .unwrap();
        let w = root.path("bin/ifconfig");
        assert_eq!(
            std::fs::read_to_string(&w).unwrap(),
            format!(
                "#!/bin/sh\nexec '/opt/hv net/hvnet' simulate --client '{}' -- ifconfig \"$@\"\n",
                root.dir().display()
            )
        );
        assert_eq!(std::fs::metadata(&w).unwrap().mode() & 0o777, 0o755);
        // A planted symlink at a wrapper's name is replaced, not followed.
        let victim = tmp.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        std::fs::remove_file(root.path("bin/sysctl")).unwrap();
        symlink(&victim, root.path("bin/sysctl")).unwrap();
        root.install_wrappers(&client, &["sysctl"]).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        assert!(std::fs::symlink_metadata(root.path("bin/sysctl"))
            .unwrap()
            .is_file());
        // Nothing that needs quoting gets into a wrapper.
        assert!(matches!(
            ClientCommand::new(Path::new("/x'y"), &[]),
            Err(HarnessError::Quoted(_))
        ));
        assert!(matches!(
            ClientCommand::new(Path::new("/x"), &["a b"]),
            Err(HarnessError::NotAWord(_))
        ));
        assert!(matches!(
            root.install_wrappers(&client, &["rm -rf"]),
            Err(HarnessError::NotAWord(_))
        ));
    }

    #[test]
    fn the_socket_is_private_from_the_start() {
        let tmp = tempfile::tempdir().unwrap();
        let root = Root::keep_at(&tmp.path().join("g")).unwrap();
        // A stale file at the socket's name is replaced.
        std::fs::write(root.path(SOCKET), "stale").unwrap();
        let server = root.listen().unwrap();
        let m = std::fs::symlink_metadata(root.path(SOCKET)).unwrap();
        assert_eq!(m.mode() & 0o777, 0o600);
        drop(server);
        assert!(
            !root.path(SOCKET).exists(),
            "the socket goes with its server"
        );
    }
}
