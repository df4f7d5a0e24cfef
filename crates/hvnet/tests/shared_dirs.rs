//! Files, sockets and instances in directories others could write, and the daemons' input
//! defects of issue 14, as real processes: `hvnet devd run` and `hvnet run` against real
//! sockets in temp dirs, symlinks really planted, directories really owned by another uid
//! (tests run as root), a race window held open by an LD_PRELOAD shim around bind(2).
//! Every wait is bounded; every process started is killed at the end.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, Signal};
use nix::sys::socket::{
    accept, bind, connect, listen, recv, send, setsockopt, socket, sockopt, AddressFamily, Backlog,
    MsgFlags, SockFlag, SockType, UnixAddr,
};
use nix::sys::stat::Mode;
use nix::sys::time::TimeVal;
use nix::unistd::Pid;

const BIN: &str = env!("CARGO_BIN_EXE_hvnet");
const WAIT: Duration = Duration::from_secs(10);
/// A uid nobody on the test machine uses.
const OTHER_UID: u32 = 4321;

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < WAIT, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().mode() & 0o7777
}

fn mkfifo(p: &Path) {
    nix::unistd::mkfifo(p, Mode::from_bits_truncate(0o600)).unwrap();
}

/// A FIFO opened read-write, so it never reports EOF and writes never block on open.
fn fifo(p: &Path) -> File {
    mkfifo(p);
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(p)
        .unwrap()
}

/// A child process killed (and reaped) when dropped.
struct Proc(Child);

impl Proc {
    fn pid(&self) -> i32 {
        self.0.id() as i32
    }

    /// Its exit status, or `None` if it is still running after `within`.
    fn exit_within(&mut self, within: Duration) -> Option<ExitStatus> {
        let start = Instant::now();
        loop {
            if let Some(s) = self.0.try_wait().unwrap() {
                return Some(s);
            }
            if start.elapsed() >= within {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A daemonised process (not our child): killed through its pid file when dropped.
struct PidFileKill(PathBuf);

impl Drop for PidFileKill {
    fn drop(&mut self) {
        if let Some(pid) = read_pid(&self.0) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

fn read_pid(p: &Path) -> Option<i32> {
    std::fs::read_to_string(p).ok()?.trim().parse().ok()
}

fn alive(pid: i32) -> bool {
    // No signal is sent: kill only checks that the process exists.
    kill(Pid::from_raw(pid), None).is_ok()
}

fn stderr_of(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

// ---------------------------------------------------------------------------------------
// hvnet devd run

/// A devd configuration with its pid file at `pid` and `rules`.
fn devd_conf(dir: &Path, pid: &Path, rules: &str) -> PathBuf {
    let conf = dir.join("devd.conf");
    std::fs::write(
        &conf,
        format!("options {{ pid-file \"{}\"; }};\n{rules}\n", pid.display()),
    )
    .unwrap();
    conf
}

/// `hvnet devd run -f CONF --devctl DEVCTL --socket-dir SOCKETS EXTRA...`, stderr to `err`.
fn devd(conf: &Path, devctl: &Path, sockets: &Path, err: &Path, extra: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.args(["devd", "run", "-f"])
        .arg(conf)
        .arg("--devctl")
        .arg(devctl)
        .arg("--socket-dir")
        .arg(sockets)
        .arg("--shell")
        .arg("/bin/sh")
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(err).unwrap());
    c
}

fn seqpacket_socket() -> OwnedFd {
    socket(
        AddressFamily::Unix,
        SockType::SeqPacket,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .unwrap()
}

/// A SOCK_SEQPACKET client of `path`, with a receive timeout.
fn seqpacket_connect(path: &Path) -> std::io::Result<OwnedFd> {
    let fd = seqpacket_socket();
    connect(fd.as_raw_fd(), &UnixAddr::new(path)?)?;
    setsockopt(&fd, sockopt::ReceiveTimeout, &TimeVal::new(5, 0))?;
    Ok(fd)
}

/// One record (None on timeout or EOF).
fn recv_record(fd: &OwnedFd) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 1023];
    let n = recv(fd.as_raw_fd(), &mut buf, MsgFlags::empty()).ok()?;
    buf.truncate(n);
    (n > 0).then_some(buf)
}

fn send_record(fd: &OwnedFd, rec: &[u8]) {
    assert_eq!(send(fd.as_raw_fd(), rec, MsgFlags::MSG_EOR), Ok(rec.len()));
}

fn status_json(p: &Path) -> Option<serde_json::Value> {
    serde_json::from_str(&std::fs::read_to_string(p).ok()?).ok()
}

#[test]
fn a_planted_status_temporary_is_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let victim = d.join("victim");
    std::fs::write(&victim, "precious\n").unwrap();
    chmod(&victim, 0o644);
    // The temporary names the status file used to be written through.
    std::os::unix::fs::symlink(&victim, d.join("hvnet-devd.status.json.tmp")).unwrap();
    std::os::unix::fs::symlink(&victim, d.join("hvnet-devd.status.tmp")).unwrap();
    let mut f = fifo(&d.join("devctl"));
    let conf = devd_conf(d, &d.join("devd.pid"), "");
    let mut p = Proc(
        devd(&conf, &d.join("devctl"), d, &d.join("err"), &["-d"])
            .spawn()
            .unwrap(),
    );
    f.write_all(b"!system=A subsystem=b type=c\n").unwrap();
    let status = d.join("hvnet-devd.status.json");
    wait_for("the event in the status file", || {
        status_json(&status).is_some_and(|v| v["events_received"] == 1)
    });
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    assert_eq!(mode(&victim), 0o644);
    assert!(std::fs::symlink_metadata(&status).unwrap().is_file());
    assert_eq!(mode(&status), 0o600);
    let _ = kill(Pid::from_raw(p.pid()), Signal::SIGTERM);
    assert!(p.exit_within(WAIT).unwrap().success());
    // Nothing but the planted links is left of the temporaries.
    let leftovers: Vec<String> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp"))
        .collect();
    assert_eq!(leftovers.len(), 2, "{leftovers:?}");
}

/// A shared object that plays a local user who can write $SWAP_DIR: whenever a Unix socket
/// appears there (a bind(2) at that path, or a rename(2) onto it), it moves the socket aside
/// (to PATH.moved) and puts a symlink to $SWAP_VICTIM at its path, which is what such a user
/// can do between a bind and a chmod or chown by path. Paths elsewhere (a private staging
/// directory) are out of that user's reach and left alone.
fn swap_shim(dir: &Path) -> PathBuf {
    let src = dir.join("swap.c");
    std::fs::write(
        &src,
        r#"#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

typedef int (*rename_fn)(const char *, const char *);

static int real_rename(const char *from, const char *to) {
    return ((rename_fn)dlsym(RTLD_NEXT, "rename"))(from, to);
}

static void swap(const char *path) {
    const char *victim = getenv("SWAP_VICTIM");
    const char *dir = getenv("SWAP_DIR");
    const char *slash = strrchr(path, '/');
    struct stat st;
    if (!victim || !dir || !slash || (size_t)(slash - path) != strlen(dir)
        || strncmp(path, dir, strlen(dir)) != 0)
        return;
    if (lstat(path, &st) != 0 || !S_ISSOCK(st.st_mode))
        return;
    char moved[4096];
    snprintf(moved, sizeof moved, "%s.moved", path);
    real_rename(path, moved);
    symlink(victim, path);
}

int bind(int fd, const struct sockaddr *addr, socklen_t len) {
    int (*real)(int, const struct sockaddr *, socklen_t) =
        (int (*)(int, const struct sockaddr *, socklen_t))dlsym(RTLD_NEXT, "bind");
    int rc = real(fd, addr, len);
    if (rc == 0 && addr->sa_family == AF_UNIX)
        swap(((const struct sockaddr_un *)addr)->sun_path);
    return rc;
}

int rename(const char *from, const char *to) {
    int rc = real_rename(from, to);
    if (rc == 0)
        swap(to);
    return rc;
}
"#,
    )
    .unwrap();
    let so = dir.join("swap.so");
    let out = Command::new("cc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(&so)
        .arg(&src)
        .arg("-ldl")
        .output()
        .expect("cc (the C compiler cargo links with)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    so
}

/// A root-only file of another user: what a chown/chmod by path would change.
fn victim(dir: &Path) -> PathBuf {
    let v = dir.join("victim");
    std::fs::write(&v, "secret\n").unwrap();
    std::os::unix::fs::chown(&v, Some(OTHER_UID), Some(OTHER_UID)).unwrap();
    chmod(&v, 0o640);
    v
}

#[test]
fn devd_sockets_get_their_mode_at_bind_and_are_never_chmoded_by_path() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let so = swap_shim(d);
    let victim = victim(d);
    let _f = fifo(&d.join("devctl"));
    let conf = devd_conf(d, &d.join("devd.pid"), "");
    let mut cmd = devd(&conf, &d.join("devctl"), d, &d.join("err"), &["-d"]);
    cmd.env("LD_PRELOAD", &so)
        .env("SWAP_VICTIM", &victim)
        .env("SWAP_DIR", d);
    // A restrictive umask inherited: the sockets' 0666 must not depend on it.
    // SAFETY: the closure runs in the forked child before exec; umask is async-signal-safe
    // and allocates nothing, so it cannot wait on a lock another thread held at fork.
    unsafe {
        cmd.pre_exec(|| {
            libc::umask(0o077);
            Ok(())
        });
    }
    let _p = Proc(cmd.spawn().unwrap());
    // The status file is written on the first pass of the loop, after both binds.
    wait_for("the status file", || {
        d.join("hvnet-devd.status.json").exists()
    });
    let m = std::fs::metadata(&victim).unwrap();
    assert_eq!(
        (m.uid(), m.mode() & 0o7777),
        (OTHER_UID, 0o640),
        "the victim was chowned or chmoded through the symlink"
    );
    for name in ["devd.seqpacket.pipe", "devd.pipe"] {
        let moved = d.join(format!("{name}.moved"));
        assert!(std::fs::symlink_metadata(&moved)
            .unwrap()
            .file_type()
            .is_socket());
        assert_eq!(mode(&moved), 0o666, "{name}");
    }
}

#[test]
fn unsafe_socket_and_status_directories_are_refused_before_anything_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let _f = fifo(&d.join("devctl"));
    let conf = devd_conf(d, &d.join("devd.pid"), "");
    let run = |sockets: &Path, extra: &[&str]| -> (Option<i32>, String) {
        let err = d.join("err");
        let mut p = Proc(
            devd(&conf, &d.join("devctl"), sockets, &err, extra)
                .spawn()
                .unwrap(),
        );
        let code = p.exit_within(WAIT).map(|s| s.code().unwrap_or(-1));
        (code, stderr_of(&err))
    };
    let shared = d.join("shared");
    std::fs::create_dir(&shared).unwrap();
    for (m, problem) in [
        (
            0o777,
            "writable by group or others without the sticky bit (mode 0777",
        ),
        (
            0o775,
            "writable by group or others without the sticky bit (mode 0775",
        ),
    ] {
        chmod(&shared, m);
        let (code, err) = run(&shared, &["-d"]);
        assert_eq!(code, Some(1), "{err}");
        assert!(
            err.contains(&format!(
                "--socket-dir: {}: refusing to create files there: it is {problem}",
                shared.display()
            )),
            "{err}"
        );
        assert_eq!(std::fs::read_dir(&shared).unwrap().count(), 0);
    }
    // Another user's directory, or one inside it.
    chmod(&shared, 0o755);
    std::os::unix::fs::chown(&shared, Some(OTHER_UID), Some(0)).unwrap();
    let inner = shared.join("inner");
    std::fs::create_dir(&inner).unwrap();
    let (code, err) = run(&inner, &["-d"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "{}: refusing to create files there: {} is owned by uid {OTHER_UID}, not by root",
            inner.display(),
            shared.display()
        )),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(&inner).unwrap().count(), 0);
    // The status file's directory and the pid file's obey the same rule.
    std::os::unix::fs::chown(&shared, Some(0), Some(0)).unwrap();
    chmod(&shared, 0o777);
    let sockets = d.join("sockets");
    std::fs::create_dir(&sockets).unwrap();
    let status = shared.join("s.json");
    let (code, err) = run(&sockets, &["-d", "--status-file", status.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("status file: "), "{err}");
    let conf_pid = devd_conf(d, &shared.join("devd.pid"), "");
    let mut p = Proc(
        devd(
            &conf_pid,
            &d.join("devctl"),
            &sockets,
            &d.join("err"),
            &["-n"],
        )
        .spawn()
        .unwrap(),
    );
    assert_eq!(p.exit_within(WAIT).and_then(|s| s.code()), Some(1));
    assert!(stderr_of(&d.join("err")).contains("pid file: "));
    assert_eq!(std::fs::read_dir(&sockets).unwrap().count(), 0);
    assert_eq!(std::fs::read_dir(&shared).unwrap().count(), 1); // inner
                                                                // With the sticky bit (as /tmp) the directory is fine.
    chmod(&shared, 0o1777);
    let mut p = Proc(
        devd(&conf, &d.join("devctl"), &shared, &d.join("err"), &["-d"])
            .spawn()
            .unwrap(),
    );
    wait_for("the sockets in a sticky directory", || {
        shared.join("devd.pipe").exists()
    });
    assert_eq!(p.exit_within(Duration::ZERO), None);
}

#[test]
fn a_refused_second_devd_leaves_the_first_one_serving() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pid_file = d.join("devd.pid");
    let conf = devd_conf(d, &pid_file, "");
    let mut first_fifo = fifo(&d.join("devctl1"));
    let _second_fifo = fifo(&d.join("devctl2"));
    // The first daemonises after its (empty) boot drain.
    let mut first = Proc(
        devd(&conf, &d.join("devctl1"), d, &d.join("err1"), &[])
            .spawn()
            .unwrap(),
    );
    assert!(first.exit_within(WAIT).unwrap().success());
    let _kill = PidFileKill(pid_file.clone());
    wait_for("the pid file", || read_pid(&pid_file).is_some());
    let pid = read_pid(&pid_file).unwrap();
    // The second, same pid file and socket directory, another event source, no -n: it
    // would create its sockets before the boot drain and only then reach the pid file.
    let mut second = Proc(
        devd(&conf, &d.join("devctl2"), d, &d.join("err2"), &[])
            .spawn()
            .unwrap(),
    );
    let status = second.exit_within(WAIT).expect("the second instance runs");
    assert_eq!(status.code(), Some(1));
    let err = stderr_of(&d.join("err2"));
    assert!(
        err.contains(&format!("devd: devd already running, pid: {pid}")),
        "{err}"
    );
    // The first still accepts clients and forwards them its events.
    let client = seqpacket_connect(&d.join("devd.seqpacket.pipe")).expect("connecting");
    std::thread::sleep(Duration::from_millis(50));
    first_fifo
        .write_all(b"!system=STILL subsystem=here type=ok\n")
        .unwrap();
    assert_eq!(
        recv_record(&client).as_deref(),
        Some(&b"!system=STILL subsystem=here type=ok\n"[..])
    );
    assert!(alive(pid));
    assert_eq!(read_pid(&pid_file), Some(pid));
}

#[test]
fn a_second_foreground_devd_does_not_take_over_live_sockets() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let conf = devd_conf(d, &d.join("devd.pid"), "");
    let mut first_fifo = fifo(&d.join("devctl1"));
    let _second_fifo = fifo(&d.join("devctl2"));
    let mut first = Proc(
        devd(&conf, &d.join("devctl1"), d, &d.join("err1"), &["-d"])
            .spawn()
            .unwrap(),
    );
    wait_for("the first one's sockets", || {
        d.join("devd.pipe").exists() && d.join("hvnet-devd.status.json").exists()
    });
    // -d takes no pid file (as devd): the live socket itself stops the second one.
    let mut second = Proc(
        devd(&conf, &d.join("devctl2"), d, &d.join("err2"), &["-d"])
            .spawn()
            .unwrap(),
    );
    assert_eq!(second.exit_within(WAIT).and_then(|s| s.code()), Some(1));
    let err = stderr_of(&d.join("err2"));
    assert!(
        err.contains("devd.seqpacket.pipe: another devd is serving this socket"),
        "{err}"
    );
    let client = seqpacket_connect(&d.join("devd.seqpacket.pipe")).expect("connecting");
    std::thread::sleep(Duration::from_millis(50));
    first_fifo
        .write_all(b"!system=A subsystem=b type=c\n")
        .unwrap();
    assert!(recv_record(&client).is_some());
    assert_eq!(first.exit_within(Duration::ZERO), None);
}

/// A seqpacket listener standing in for /dev/devctl, and the connection hvnet makes to it.
fn seqpacket_source(path: &Path) -> OwnedFd {
    let l = seqpacket_socket();
    bind(l.as_raw_fd(), &UnixAddr::new(path).unwrap()).unwrap();
    listen(&l, Backlog::new(1).unwrap()).unwrap();
    l
}

fn accept_within(l: &OwnedFd, ms: u16) -> OwnedFd {
    let mut p = [PollFd::new(l.as_fd(), PollFlags::POLLIN)];
    assert_eq!(
        poll(&mut p, PollTimeout::from(ms)),
        Ok(1),
        "hvnet did not connect"
    );
    let c = accept(l.as_raw_fd()).unwrap();
    // SAFETY: accept just returned this descriptor: open, and owned by nothing else.
    unsafe { OwnedFd::from_raw_fd(c) }
}

#[test]
fn an_empty_seqpacket_record_is_skipped_and_the_end_of_input_is_logged() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let done = d.join("done");
    let conf = devd_conf(
        d,
        &d.join("devd.pid"),
        &format!(
            "notify 0 {{ match \"system\" \"OK\"; action \"touch {}\"; }};",
            done.display()
        ),
    );
    let source = d.join("devctl.sock");
    let l = seqpacket_source(&source);
    let err = d.join("err");
    let mut p = Proc(devd(&conf, &source, d, &err, &["-d"]).spawn().unwrap());
    let conn = accept_within(&l, 10_000);
    send_record(&conn, b"");
    std::thread::sleep(Duration::from_millis(100));
    send_record(&conn, b"");
    send_record(&conn, b"!system=OK subsystem=s type=t\n");
    wait_for("the action after the empty records", || done.exists());
    assert_eq!(p.exit_within(Duration::ZERO), None, "{}", stderr_of(&err));
    let status = d.join("hvnet-devd.status.json");
    wait_for("the counters", || {
        status_json(&status).is_some_and(|v| v["events_received"] == 3)
    });
    let v = status_json(&status).unwrap();
    assert_eq!(v["events"]["malformed"], 2, "{v}");
    assert_eq!(v["actions_run"], 1, "{v}");
    // The source closing is the end of input: logged, exit 0 (as devd).
    drop(conn);
    assert_eq!(p.exit_within(WAIT).and_then(|s| s.code()), Some(0));
    let text = stderr_of(&err);
    assert!(
        text.contains(&format!(
            "{}: end of file: the event source closed; exiting",
            source.display()
        )),
        "{text}"
    );
}

#[test]
fn the_end_of_a_fifo_source_is_logged() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let conf = devd_conf(d, &d.join("devd.pid"), "");
    let devctl = d.join("devctl");
    mkfifo(&devctl);
    let err = d.join("err");
    let mut p = Proc(devd(&conf, &devctl, d, &err, &["-d"]).spawn().unwrap());
    // Opening for writing waits for hvnet's reader; closing it is the end of input.
    let mut w = std::fs::OpenOptions::new()
        .write(true)
        .open(&devctl)
        .unwrap();
    w.write_all(b"!system=LAST subsystem=s type=t\n").unwrap();
    drop(w);
    assert_eq!(p.exit_within(WAIT).and_then(|s| s.code()), Some(0));
    let text = stderr_of(&err);
    assert!(text.contains("Processing event '!system=LAST"), "{text}");
    assert!(
        text.contains("end of file: the event source closed; exiting"),
        "{text}"
    );
}

#[test]
fn a_fifo_named_conf_hangs_neither_the_start_nor_a_reload() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let rules = d.join("rules.d");
    std::fs::create_dir(&rules).unwrap();
    mkfifo(&rules.join("a.conf"));
    let conf = devd_conf(
        d,
        &d.join("devd.pid"),
        &format!("options {{ directory \"{}\"; }};", rules.display()),
    );
    let err = d.join("err");
    let _f = fifo(&d.join("devctl"));
    let mut p = Proc(
        devd(
            &conf,
            &d.join("devctl"),
            d,
            &err,
            &["-d", "--reload-on-hup"],
        )
        .spawn()
        .unwrap(),
    );
    let status = d.join("hvnet-devd.status.json");
    wait_for("the start", || status.exists());
    assert!(
        stderr_of(&err).contains(&format!(
            "{}: not a regular file; skipped",
            rules.join("a.conf").display()
        )),
        "{}",
        stderr_of(&err)
    );
    mkfifo(&rules.join("b.conf"));
    let _ = kill(Pid::from_raw(p.pid()), Signal::SIGHUP);
    wait_for("the reload", || {
        status_json(&status).is_some_and(|v| v["reloads"] == 1)
    });
    assert!(stderr_of(&err).contains("b.conf: not a regular file; skipped"));
    assert_eq!(p.exit_within(Duration::ZERO), None);
}

// ---------------------------------------------------------------------------------------
// hvnet run and hvnet status

fn hvnet_run(socket: &Path, err: &Path, extra: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.args(["run", "--backend", "sim", "--scenario", "demo", "--socket"])
        .arg(socket)
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(err).unwrap());
    c
}

fn status(args: &[&str]) -> Output {
    Command::new(BIN).arg("status").args(args).output().unwrap()
}

#[test]
fn the_control_socket_is_never_chmoded_by_path() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let so = swap_shim(d);
    let victim = victim(d);
    let socket = d.join("run/hvnet.sock");
    let mut cmd = hvnet_run(&socket, &d.join("err"), &[]);
    cmd.env("LD_PRELOAD", &so)
        .env("SWAP_VICTIM", &victim)
        .env("SWAP_DIR", d.join("run"));
    // SAFETY: the closure runs in the forked child before exec; umask is async-signal-safe
    // and allocates nothing, so it cannot wait on a lock another thread held at fork.
    unsafe {
        cmd.pre_exec(|| {
            libc::umask(0);
            Ok(())
        });
    }
    let mut p = Proc(cmd.spawn().unwrap());
    let moved = d.join("run/hvnet.sock.moved");
    wait_for("the bind", || moved.exists());
    // Give a chmod by path after bind every chance to happen.
    std::thread::sleep(Duration::from_millis(300));
    let m = std::fs::metadata(&victim).unwrap();
    assert_eq!(
        (m.uid(), m.mode() & 0o7777),
        (OTHER_UID, 0o640),
        "the victim was chmoded through the symlink: {}",
        stderr_of(&d.join("err"))
    );
    assert_eq!(mode(&moved), 0o600);
    assert_eq!(p.exit_within(Duration::ZERO), None);
}

#[test]
fn the_instance_lock_stops_a_second_daemon_even_when_the_socket_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let socket = d.join("run/hvnet.sock");
    let mut first = Proc(hvnet_run(&socket, &d.join("err1"), &[]).spawn().unwrap());
    wait_for("the control socket", || socket.exists());
    let lock = d.join("run/hvnet.sock.lock");
    assert_eq!(read_pid(&lock), Some(first.pid()));
    // Someone removes the socket (a tmp cleaner, a careless rm): the first daemon still
    // runs and manages the system, so a second one must not start.
    std::fs::remove_file(&socket).unwrap();
    let mut second = Proc(hvnet_run(&socket, &d.join("err2"), &[]).spawn().unwrap());
    let code = second.exit_within(WAIT).map(|s| s.code());
    let err = stderr_of(&d.join("err2"));
    assert_eq!(code, Some(Some(1)), "{err}");
    assert!(
        err.contains(&format!(
            "{}: another hvnet daemon is running (pid {})",
            lock.display(),
            first.pid()
        )),
        "{err}"
    );
    assert!(!socket.exists());
    assert_eq!(first.exit_within(Duration::ZERO), None);
    // At exit the first removes its lock.
    let _ = kill(Pid::from_raw(first.pid()), Signal::SIGTERM);
    assert!(first.exit_within(WAIT).unwrap().success());
    assert!(!lock.exists());
}

#[test]
fn unsafe_control_socket_directories_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let shared = d.join("shared");
    std::fs::create_dir(&shared).unwrap();
    chmod(&shared, 0o777);
    // The socket's directory itself, and a missing one under it (never created).
    for socket in [shared.join("hvnet.sock"), shared.join("new/hvnet.sock")] {
        let mut p = Proc(hvnet_run(&socket, &d.join("err"), &[]).spawn().unwrap());
        assert_eq!(p.exit_within(WAIT).and_then(|s| s.code()), Some(1));
        let err = stderr_of(&d.join("err"));
        assert!(
            err.contains("writable by group or others without the sticky bit"),
            "{err}"
        );
        assert!(err.contains(&shared.display().to_string()), "{err}");
        assert_eq!(std::fs::read_dir(&shared).unwrap().count(), 0, "{err}");
    }
}

#[test]
fn configuration_errors_stop_hvnet_run_before_it_creates_anything() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let socket = d.join("run/sub/hvnet.sock");
    let bad_rules = d.join("bad-devd.conf");
    std::fs::write(&bad_rules, "notify 0 {\n match \"system\" ;\n};\n").unwrap();
    let conf = d.join("hvnet.conf");
    std::fs::write(&conf, format!("devd_rules = \"{}\"\n", bad_rules.display())).unwrap();
    // A scenario that parses but does not start (a read-only sysctl set).
    let bad_scenario = d.join("bad.scenario");
    std::fs::write(
        &bad_scenario,
        "name bad\nduration 10s\nsysctl kern.vm_guest=none\n",
    )
    .unwrap();
    for (args, want) in [
        (
            vec!["-c", conf.to_str().unwrap()],
            format!("{}:2:", bad_rules.display()),
        ),
        (
            vec!["--scenario", "no-such-scenario"],
            "no-such-scenario".to_string(),
        ),
        (
            vec!["--scenario", bad_scenario.to_str().unwrap()],
            "sysctl kern.vm_guest=none".to_string(),
        ),
    ] {
        let mut c = Command::new(BIN);
        c.args(["run", "--backend", "sim", "--socket"])
            .arg(&socket)
            .args(&args);
        let out = c.output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains(&want), "{want:?} not in {err}");
        assert!(
            !d.join("run").exists(),
            "{args:?} created the socket's directory"
        );
    }
}

/// Serve one connection on `path` with `answer` (from this process: root).
fn fake_server(path: &Path, answer: impl Into<String>) -> std::thread::JoinHandle<()> {
    let (l, answer) = (UnixListener::bind(path).unwrap(), answer.into());
    std::thread::spawn(move || {
        let (s, _) = l.accept().unwrap();
        let mut line = String::new();
        BufReader::new(&s).read_line(&mut line).unwrap();
        (&s).write_all(answer.as_bytes()).unwrap();
    })
}

fn has_controls(b: &[u8]) -> bool {
    String::from_utf8_lossy(b)
        .chars()
        .any(|c| c.is_control() && c != '\n')
}

#[test]
fn status_prints_no_terminal_escapes_from_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let sock = d.join("s.sock");
    let t = fake_server(
        &sock,
        "{\"error\": \"\\u001b]0;pwned\\u0007\\u001b[2J\\u009b1mgone\\nforged line\"}\n",
    );
    let out = status(&["--socket", sock.to_str().unwrap()]);
    t.join().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = &out.stderr;
    assert!(!has_controls(err), "{:?}", String::from_utf8_lossy(err));
    let text = String::from_utf8_lossy(err);
    assert!(
        text.contains("\\u{1b}]0;pwned\\u{7}\\u{1b}[2J\\u{9b}1mgone\\nforged line"),
        "{text}"
    );
    // The mode is one of vf's modes, not free text: a value outside them (here with a
    // carriage return) is refused, and the error shows it escaped.
    let report = |mode: &str| {
        format!(
            "{{\"version\":\"1\\u001b[8m\",\"pid\":7,\"backend\":\"sim\\u001b]2;x\\u0007\",\
\"clock\":\"monotonic\",\"now_ms\":0,\"started_unix_ms\":0,\"mode\":\"{mode}\",\"converged\":true,\
\"steps\":0,\"pairs\":[],\"unpaired_vfs\":[\"vf\\u009b0\"],\"daemons\":[],\"errors\":[],\
\"recent_actions\":[],\"actions_applied\":0,\"actions_failed\":0,\"devd\":null,\"sim\":null}}\n"
        )
    };
    std::fs::remove_file(&sock).unwrap();
    let t = fake_server(&sock, report("auto\\r"));
    let out = status(&["--socket", sock.to_str().unwrap()]);
    t.join().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        !has_controls(&out.stderr),
        "{:?}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("unknown variant `auto\\r`"), "{text}");
    // A report whose strings carry escapes: the table and the JSON are clean too.
    for json in [false, true] {
        std::fs::remove_file(&sock).unwrap();
        let t = fake_server(&sock, report("steered"));
        let mut args = vec!["--socket", sock.to_str().unwrap()];
        if json {
            args.push("--json");
        }
        let out = status(&args);
        t.join().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !has_controls(&out.stdout),
            "json={json}: {:?}",
            String::from_utf8_lossy(&out.stdout)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        if json {
            // The same strings as sent, as JSON escapes.
            let v: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(v["backend"], "sim\u{1b}]2;x\u{7}");
            assert_eq!(v["unpaired_vfs"][0], "vf\u{9b}0");
        } else {
            assert!(text.contains("backend sim\\u{1b}]2;x\\u{7}"), "{text}");
        }
    }
}

#[test]
fn status_refuses_a_server_of_another_user() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    chmod(d, 0o755);
    // A copy of the binary user nobody can run wherever the build tree lives.
    let bin = d.join("hvnet");
    std::fs::copy(BIN, &bin).unwrap();
    chmod(&bin, 0o755);
    let theirs = d.join("theirs");
    std::fs::create_dir(&theirs).unwrap();
    std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
    let socket = theirs.join("hvnet.sock");
    let err = d.join("err");
    let mut server = Command::new(&bin);
    server
        .args(["run", "--backend", "sim", "--scenario", "demo", "--socket"])
        .arg(&socket)
        .uid(65534)
        .gid(65534)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(&err).unwrap());
    let mut p = Proc(server.spawn().unwrap());
    wait_for("nobody's daemon", || {
        socket.exists() || p.exit_within(Duration::ZERO).is_some()
    });
    assert!(socket.exists(), "{}", stderr_of(&err));
    let out = status(&["--socket", socket.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains(&format!(
            "{}: the server runs as uid 65534, neither root nor you (uid 0); not trusting it",
            socket.display()
        )),
        "{text}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn status_devd_refuses_a_file_of_another_user() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("status.json");
    std::fs::write(&file, "{\"pid\":1}").unwrap();
    std::os::unix::fs::chown(&file, Some(OTHER_UID), None).unwrap();
    let out = status(&["--devd", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains(&format!("owned by uid {OTHER_UID}, neither root nor you")),
        "{text}"
    );
}
