//! Creating files and sockets in directories other users might write (/var/run, /tmp, a
//! directory given on the command line).
//!
//! The rule for a directory hvnet creates files in: it and every directory above it (after
//! resolving symlinks) is owned by root or by the daemon's own user, and is not writable by
//! group or others unless the sticky bit is set (as /tmp). Anyone else who could write one
//! of them could rename our directory away and put theirs in its place, or plant a symlink
//! where we are about to create a file. In a directory that passes (the sticky /tmp
//! included), files are created under names nobody can plant ([`write_atomic`]) and sockets
//! are bound in a private directory, given their mode there and renamed into place
//! ([`bind_socket`]), never chmod'ed where others could swap something in. Neither touches
//! the umask, which every thread of the process shares.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// What is wrong with a directory.
#[derive(Debug)]
pub enum Problem {
    /// Not there, or its metadata cannot be read.
    Unreadable(std::io::Error),
    NotADirectory,
    /// Group or others may write it and it has no sticky bit.
    WritableByOthers {
        mode: u32,
    },
    /// Owned by someone who is neither root nor the daemon's user.
    ForeignOwner {
        uid: u32,
        own: u32,
    },
}

/// A directory hvnet refuses to create files in: `dir` as asked, `at` the directory (it or
/// one above it) that fails the rule.
#[derive(Debug)]
pub struct UnsafeDir {
    pub dir: PathBuf,
    pub at: PathBuf,
    pub problem: Problem,
}

impl std::fmt::Display for UnsafeDir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: refusing to create files there: ",
            self.dir.display()
        )?;
        let at = if self.at == self.dir {
            "it".to_string()
        } else {
            self.at.display().to_string()
        };
        match &self.problem {
            Problem::Unreadable(e) => write!(f, "{at}: {e}"),
            Problem::NotADirectory => write!(f, "{at} is not a directory"),
            Problem::WritableByOthers { mode } => write!(
                f,
                "{at} is writable by group or others without the sticky bit (mode {:04o}; chmod go-w or +t)",
                mode & 0o7777
            ),
            Problem::ForeignOwner { uid, own } => {
                write!(f, "{at} is owned by uid {uid}, not by root")?;
                if *own != 0 {
                    write!(f, " or the daemon's user (uid {own})")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for UnsafeDir {}

/// The daemon's user: its effective uid.
fn own_uid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

/// Check `dir` and every directory above it against the rule (module docs).
pub fn check_dir(dir: &Path) -> Result<(), UnsafeDir> {
    let fail = |at: &Path, problem| UnsafeDir {
        dir: dir.to_path_buf(),
        at: at.to_path_buf(),
        problem,
    };
    let real = std::fs::canonicalize(dir).map_err(|e| fail(dir, Problem::Unreadable(e)))?;
    let own = own_uid();
    for at in real.ancestors() {
        // canonicalize resolved every symlink; lstat so one swapped in since is refused.
        let m = std::fs::symlink_metadata(at).map_err(|e| fail(at, Problem::Unreadable(e)))?;
        if !m.is_dir() {
            return Err(fail(at, Problem::NotADirectory));
        }
        if m.uid() != 0 && m.uid() != own {
            return Err(fail(at, Problem::ForeignOwner { uid: m.uid(), own }));
        }
        let mode = m.mode();
        if mode & 0o022 != 0 && mode & 0o1000 == 0 {
            return Err(fail(at, Problem::WritableByOthers { mode }));
        }
    }
    Ok(())
}

/// Bind a Unix socket at `path` with exactly `mode`, whatever the umask and whatever the
/// other threads are doing: `bind` is called with a path inside a new directory next to
/// `path` (mode 0700, an unguessable name, so nobody else can reach into it), the socket is
/// chmod'ed there, then renamed over `path` (rename replaces whatever is at `path`, a
/// planted symlink included, and never follows it). The staging directory is removed
/// whatever happens. The staging path is 13 bytes longer than `path`, which must fit a
/// socket address with them.
pub fn bind_socket<T>(
    path: &Path,
    mode: u32,
    bind: impl FnOnce(&Path) -> std::io::Result<T>,
) -> std::io::Result<T> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let stage = make_private_dir(dir)?;
    let inner = stage.join("s");
    let bound = bind(&inner).and_then(|v| {
        std::fs::set_permissions(&inner, std::fs::Permissions::from_mode(mode))?;
        std::fs::rename(&inner, path)?;
        Ok(v)
    });
    let _ = std::fs::remove_file(&inner);
    let _ = std::fs::remove_dir(&stage);
    bound
}

/// A new directory in `dir`, mode 0700, under a name nobody could have planted.
fn make_private_dir(dir: &Path) -> std::io::Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    const ATTEMPTS: usize = 16;
    for _ in 0..ATTEMPTS {
        // Short: it is part of a socket address (at most 104 bytes on FreeBSD).
        let stage = dir.join(format!(".hv{:08x}", random_suffix() as u32));
        match std::fs::DirBuilder::new().mode(0o700).create(&stage) {
            Ok(()) => return Ok(stage),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::AlreadyExists,
        format!("{ATTEMPTS} staging names in {} were taken", dir.display()),
    ))
}

/// A name part for a temporary file or directory that another user cannot guess in advance.
pub fn random_suffix() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    // RandomState is keyed from the OS's random source once per process, and differently
    // for each instance after that.
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

/// Replace `path` with `data`, mode `mode`, so that readers see the old or the new contents
/// and nothing planted in the directory is followed: a new temporary file (O_CREAT|O_EXCL|
/// O_NOFOLLOW, an unguessable name, retried on EEXIST), its mode set on the descriptor,
/// written, fsynced, then renamed over `path`.
pub fn write_atomic(path: &Path, data: &[u8], mode: u32) -> std::io::Result<()> {
    write_atomic_named(path, data, mode, random_suffix)
}

fn write_atomic_named(
    path: &Path,
    data: &[u8],
    mode: u32,
    mut suffix: impl FnMut() -> u64,
) -> std::io::Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "no file name"))?
        .to_string_lossy()
        .into_owned();
    let dir = path.parent().unwrap_or(Path::new(""));
    const ATTEMPTS: usize = 16;
    for _ in 0..ATTEMPTS {
        let tmp = dir.join(format!(".{name}.{:016x}.tmp", suffix()));
        let file = match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp)
        {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        };
        let written = fill(file, data, mode).and_then(|()| std::fs::rename(&tmp, path));
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        return written;
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::AlreadyExists,
        format!("{ATTEMPTS} temporary names next to {name} were taken"),
    ))
}

fn fill(mut file: File, data: &[u8], mode: u32) -> std::io::Result<()> {
    // fchmod: the mode is exact whatever the umask, and set on what we opened.
    file.set_permissions(std::fs::Permissions::from_mode(mode))?;
    file.write_all(data)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn a_planted_temporary_is_skipped_and_its_target_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let out = dir.path().join("status.json");
        // Someone guessed the first name: it is a symlink to the victim.
        symlink(
            &victim,
            dir.path().join(".status.json.0000000000000001.tmp"),
        )
        .unwrap();
        let mut names = [1u64, 2].into_iter();
        write_atomic_named(&out, b"{}\n", 0o640, || names.next().unwrap()).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "{}\n");
        let m = std::fs::symlink_metadata(&out).unwrap();
        assert!(m.is_file());
        assert_eq!(m.mode() & 0o7777, 0o640);
        // The temporary was renamed; the planted link is still there, unused.
        assert!(!dir
            .path()
            .join(".status.json.0000000000000002.tmp")
            .exists());
        // A symlink at the destination itself is replaced, not followed.
        std::fs::remove_file(&out).unwrap();
        symlink(&victim, &out).unwrap();
        write_atomic(&out, b"new\n", 0o600).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        assert!(std::fs::symlink_metadata(&out).unwrap().is_file());
    }

    #[test]
    fn when_every_name_is_taken_it_gives_up() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".s.0000000000000007.tmp"), "").unwrap();
        let e = write_atomic_named(&dir.path().join("s"), b"x", 0o600, || 7).unwrap_err();
        assert!(e.to_string().contains("temporary names"), "{e}");
        assert!(!dir.path().join("s").exists());
    }

    /// Runs the test named `name` again in a child process with umask `mask`: the umask is
    /// shared by every thread, so changing it here would disturb the tests running beside.
    fn in_child_with_umask(name: &str, mask: u32) -> bool {
        if std::env::var_os("HVNET_SYS_TEST_CHILD").is_some() {
            nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(
                mask as libc::mode_t,
            ));
            return true;
        }
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", name, "--test-threads=1"])
            .env("HVNET_SYS_TEST_CHILD", "1")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        false
    }

    #[test]
    fn the_mode_comes_from_the_descriptor_not_the_umask() {
        let name = "shared_dir::tests::the_mode_comes_from_the_descriptor_not_the_umask";
        if !in_child_with_umask(name, 0o777) {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        write_atomic(&p, b"x", 0o644).unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().mode() & 0o777, 0o644);
    }

    #[test]
    fn a_socket_gets_its_mode_exactly_and_replaces_a_planted_link() {
        let name = "shared_dir::tests::a_socket_gets_its_mode_exactly_and_replaces_a_planted_link";
        if !in_child_with_umask(name, 0o077) {
            return;
        }
        use std::os::unix::fs::FileTypeExt;
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o600)).unwrap();
        let sock = dir.path().join("s.sock");
        symlink(&victim, &sock).unwrap();
        let l = bind_socket(&sock, 0o666, |p| std::os::unix::net::UnixListener::bind(p)).unwrap();
        let m = std::fs::symlink_metadata(&sock).unwrap();
        assert!(m.file_type().is_socket());
        assert_eq!(m.mode() & 0o7777, 0o666);
        assert_eq!(std::fs::metadata(&victim).unwrap().mode() & 0o7777, 0o600);
        // Reachable under its final name; no staging directory left behind.
        std::os::unix::net::UnixStream::connect(&sock).unwrap();
        drop(l);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
        // A failed bind leaves nothing behind either.
        let e = bind_socket(&dir.path().join("t.sock"), 0o600, |_| {
            Err::<(), _>(std::io::Error::other("no"))
        });
        assert!(e.is_err());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    fn chmod(p: &Path, mode: u32) {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn directories_writable_by_others_need_the_sticky_bit() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("run");
        std::fs::create_dir(&sub).unwrap();
        check_dir(&sub).unwrap();
        for mode in [0o777, 0o770, 0o757] {
            chmod(&sub, mode);
            let e = check_dir(&sub).unwrap_err();
            assert!(
                matches!(e.problem, Problem::WritableByOthers { .. }),
                "{mode:o}: {e}"
            );
            assert!(e.to_string().contains("writable by group or others"), "{e}");
        }
        chmod(&sub, 0o1777);
        check_dir(&sub).unwrap();
        // A directory inside a bad one is refused too, naming the bad one.
        chmod(&sub, 0o777);
        let inner = sub.join("inner");
        std::fs::create_dir(&inner).unwrap();
        let e = check_dir(&inner).unwrap_err();
        assert_eq!(e.at, std::fs::canonicalize(&sub).unwrap());
        assert!(e.to_string().starts_with(&format!("{}: ", inner.display())));
        // A symlink to a good directory is judged by where it leads.
        chmod(&sub, 0o755);
        let link = dir.path().join("link");
        symlink(&inner, &link).unwrap();
        check_dir(&link).unwrap();
        // Not a directory, or missing.
        let file = dir.path().join("file");
        std::fs::write(&file, "").unwrap();
        assert!(matches!(
            check_dir(&file).unwrap_err().problem,
            Problem::NotADirectory
        ));
        assert!(matches!(
            check_dir(&dir.path().join("missing")).unwrap_err().problem,
            Problem::Unreadable(_)
        ));
    }

    #[test]
    fn directories_of_other_users_are_refused() {
        // Tests run as root: chown makes a directory of another user.
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("theirs");
        std::fs::create_dir(&sub).unwrap();
        std::os::unix::fs::chown(&sub, Some(4321), Some(4321)).unwrap();
        let e = check_dir(&sub).unwrap_err();
        assert!(
            matches!(e.problem, Problem::ForeignOwner { uid: 4321, .. }),
            "{e}"
        );
        assert!(
            e.to_string().contains("owned by uid 4321, not by root"),
            "{e}"
        );
        // Ours inside theirs: they could rename ours away.
        let ours = sub.join("ours");
        std::fs::create_dir(&ours).unwrap();
        std::os::unix::fs::chown(&ours, Some(0), Some(0)).unwrap();
        assert!(check_dir(&ours).is_err());
    }
}
