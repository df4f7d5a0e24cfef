//! Creating files and sockets in directories other users might write (/var/run, /tmp, a
//! directory given on the command line).
//!
//! The rule for a directory hvnet creates files in: it and every directory above it (after
//! resolving symlinks) is owned by root or by the daemon's own user, and is not writable by
//! group or others unless the sticky bit is set (as /tmp). Anyone else who could write one
//! of them could rename our directory away and put theirs in its place, or plant a symlink
//! where we are about to create a file. In a directory that passes (the sticky /tmp
//! included), files are created under names nobody can plant ([`write_atomic`]) and sockets
//! get their mode from the umask at bind time ([`with_umask`]), never by path afterwards.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::sys::stat::Mode;

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

/// Run `f` (a bind) with the process umask set to `mask`, then restore it. The umask is
/// process-wide: call this only while no other thread creates files.
pub fn with_umask<T>(mask: u32, f: impl FnOnce() -> T) -> T {
    let old = nix::sys::stat::umask(Mode::from_bits_truncate(mask as libc::mode_t));
    let out = f();
    nix::sys::stat::umask(old);
    out
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

    #[test]
    fn the_mode_comes_from_the_descriptor_not_the_umask() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        with_umask(0o777, || write_atomic(&p, b"x", 0o644)).unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().mode() & 0o777, 0o644);
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
