//! Hostile event values through the real action runner: `hvnet devd run` reads events from a
//! seqpacket socket (so a value may even hold a newline), and actions write the expanded
//! values to files with `printf '%s'`. Under dash (POSIX single quotes) and under bash
//! (devd's `$'…'`), a value in plain action text must arrive byte for byte; a value where the
//! action's own text defeats the quotes (its single quotes, a backslash, backquotes, a
//! comment) must arrive as the shell reads it when it is harmless and be refused otherwise;
//! and nothing else may happen: the action's working directory holds only the files the
//! actions write.

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hvnet_devd::{Event, EventOptions};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{
    accept, bind, listen, send, socket, AddressFamily, Backlog, MsgFlags, SockFlag, SockType,
    UnixAddr,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

const BIN: &str = env!("CARGO_BIN_EXE_hvnet");
/// Longest wait for one action (the daemon kills an action after 2 s).
const WAIT: Duration = Duration::from_secs(5);
/// Cases per shell: a few seconds in all.
const CASES: u32 = 256;

/// The first of `names` that exists.
fn find(names: &[&str]) -> Option<PathBuf> {
    names.iter().map(PathBuf::from).find(|p| p.exists())
}

/// A SOCK_SEQPACKET listener at `path` (std has none).
fn seqpacket_listener(path: &Path) -> OwnedFd {
    let fd = socket(
        AddressFamily::Unix,
        SockType::SeqPacket,
        SockFlag::empty(),
        None,
    )
    .unwrap();
    bind(fd.as_raw_fd(), &UnixAddr::new(path).unwrap()).unwrap();
    listen(&fd, Backlog::new(1).unwrap()).unwrap();
    fd
}

/// `hvnet devd run -d --shell SHELL` fed through a seqpacket connection; killed on drop.
struct Runner {
    dir: tempfile::TempDir,
    child: Child,
    conn: OwnedFd,
    next: u32,
}

/// Files the daemon and the action make in the directory; anything else is a side effect.
const EXPECTED: &[&str] = &[
    "v",
    "star",
    "done",
    "devd.conf",
    "devd.pid",
    "devctl.sock",
    "devd.pipe",
    "devd.seqpacket.pipe",
    "stderr",
    "hvnet-devd.status.json",
];

/// The status file's unplantable temporary (`.hvnet-devd.status.json.<random>.tmp`), there
/// for a moment while the daemon rewrites the status file.
fn is_status_temporary(name: &str) -> bool {
    name.starts_with(".hvnet-devd.status.json.") && name.ends_with(".tmp")
}

/// Where the rule for each `ctx=` puts `$v`; each writes what the shell made of it to `v`.
const CONTEXTS: &[(&str, &str)] = &[
    ("plain", "printf '%s' $v > v; printf '%s' $* > star"),
    ("single", "printf '%s' 'x $v y' > v"),
    ("escaped", "printf '%s' \\$v > v"),
    ("back", "printf '%s' `printf '%s' $v` > v"),
    ("comment", "printf '%s' x > v # $v"),
];

impl Runner {
    fn start(shell: &Path) -> Runner {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display();
        let mut conf = format!("options {{ pid-file \"{d}/devd.pid\"; }};\n");
        for (ctx, action) in CONTEXTS {
            // The second action runs whether or not the first was refused or failed.
            conf.push_str(&format!(
                "notify 0 {{ match \"system\" \"Q\"; match \"ctx\" \"{ctx}\"; action \"{action}\"; action \": > done\"; }};\n"
            ));
        }
        std::fs::write(dir.path().join("devd.conf"), conf).unwrap();
        let sock = dir.path().join("devctl.sock");
        let listener = seqpacket_listener(&sock);
        let child = Command::new(BIN)
            .args(["devd", "run", "-d", "-f"])
            .arg(dir.path().join("devd.conf"))
            .arg("--devctl")
            .arg(&sock)
            .arg("--socket-dir")
            .arg(dir.path())
            .arg("--shell")
            .arg(shell)
            // An action that went wrong must not hold up the next event.
            .args(["--action-timeout", "2"])
            // A value that escaped its quotes would act here, where the test looks.
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("stderr")).unwrap())
            .spawn()
            .unwrap();
        let mut p = [PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
        let ready = poll(&mut p, PollTimeout::from(10_000u16));
        assert_eq!(ready, Ok(1), "hvnet did not connect");
        let c = accept(listener.as_raw_fd()).unwrap();
        // SAFETY: accept just returned this descriptor: open, and owned by nothing else.
        let conn = unsafe { OwnedFd::from_raw_fd(c) };
        Runner {
            dir,
            child,
            conn,
            next: 0,
        }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr")).unwrap_or_default()
    }

    /// Send one event for rule `ctx` with `v` set to `value`. Returns the event as devd's
    /// parser reads it (None: it refuses the line, and the daemon skips it) and what the
    /// actions wrote to `v` and `star` (None: not written).
    #[allow(clippy::type_complexity)]
    fn round_trip(
        &mut self,
        ctx: &str,
        value: &[u8],
    ) -> Result<Option<(Event, Option<Vec<u8>>, Option<Vec<u8>>)>, String> {
        self.next += 1;
        let n = self.next;
        let mut line = format!("!system=Q ctx={ctx} n={n} v=\"").into_bytes();
        for &b in value {
            if b == b'"' {
                line.push(b'\\');
            }
            line.push(b);
        }
        line.extend_from_slice(b"\"\n");
        let Ok(event) = Event::parse_with(&line, &EventOptions::default()) else {
            return Ok(None);
        };
        let path = |name: &str| self.dir.path().join(name);
        for name in ["v", "star", "done"] {
            let _ = std::fs::remove_file(path(name));
        }
        let sent = send(self.conn.as_raw_fd(), &line, MsgFlags::MSG_EOR);
        assert_eq!(sent, Ok(line.len()));
        let done = path("done");
        let start = Instant::now();
        while !done.exists() {
            if start.elapsed() > WAIT {
                return Err(format!(
                    "event {n} ({:?}): the actions did not finish; log:\n{}",
                    String::from_utf8_lossy(&line),
                    self.stderr()
                ));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let read = |name: &str| std::fs::read(path(name)).ok();
        Ok(Some((event, read("v"), read("star"))))
    }

    /// Files in the directory that neither the daemon nor the action made.
    fn strays(&self) -> Vec<String> {
        std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| !EXPECTED.contains(&name.as_str()) && !is_status_temporary(name))
            .collect()
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Pieces of hostile values: shell syntax, quoting of every kind, escapes that `$'…'` or
/// printf would read, control bytes, newlines, bytes that are not UTF-8.
fn hostile_value() -> impl Strategy<Value = Vec<u8>> {
    let words: Vec<&'static [u8]> = vec![
        b"'",
        b"\"",
        b"\\",
        b"$",
        b"`",
        b";",
        b"|",
        b"&",
        b"#",
        b" ",
        b"\t",
        b"\n",
        b"*",
        b"?",
        b"~",
        b"!",
        b"{",
        b"}",
        b"(",
        b")",
        b"<",
        b">",
        b"=",
        b"%",
        b"'\\''",
        b"$'",
        b"\\'",
        b"$(touch PWNED)",
        b"`touch PWNED`",
        b"${HOME}",
        b"$HOME",
        b"$1",
        b"$*",
        b"\\x41",
        b"\\n",
        b"\\0",
        b"\\\\",
        b"';touch PWNED #",
        b"\";touch PWNED #",
        b"'\\'';touch PWNED;'",
        b"\\';touch PWNED #",
        b"\xff\xfe",
        b"\xc3\xa9",
        b"\xe2\x82",
        b"\x82\\",
        b"\x81'",
        b"\\c",
        b"%s%n",
        b"\r",
        b"\x1b[31m",
        b"\x7f",
        b"\x01",
    ];
    let piece = prop_oneof![
        3 => (1u8..=255).prop_map(|b| vec![b]),
        3 => proptest::sample::select(words).prop_map(<[u8]>::to_vec),
        1 => "[a-z0-9]{1,4}".prop_map(String::into_bytes),
    ];
    proptest::collection::vec(piece, 0..16).prop_map(|p| p.concat())
}

/// The bytes hvnet passes where the action's own text defeats the quotes.
fn inert(v: &[u8]) -> bool {
    v.iter()
        .all(|&b| b.is_ascii_alphanumeric() || b"_.,:/+-@%".contains(&b))
}

/// What the `ctx` rule's first action must write to `v` for value `v` (None: refused),
/// with values quoted as `$'…'` (`dollar`) or `'…'`.
fn expected(ctx: &str, v: &[u8], dollar: bool) -> Option<Vec<u8>> {
    if ctx == "plain" {
        return Some(v.to_vec());
    }
    if !inert(v) {
        return None;
    }
    let v = String::from_utf8_lossy(v);
    Some(
        match (ctx, dollar) {
            // `'x $'v' y'` (devd's own result, as on FreeBSD) or `'x 'v' y'`.
            ("single", true) => format!("x ${v} y"),
            ("single", false) => format!("x {v} y"),
            // `\$'v'`; `\'v'` would leave a quote open, so it is refused.
            ("escaped", true) => format!("${v}"),
            ("escaped", false) => return None,
            ("back", _) => v.into_owned(),
            ("comment", _) => "x".into(),
            _ => unreachable!("{ctx}"),
        }
        .into_bytes(),
    )
}

/// One case: what each action received is what the shell must make of the value where the
/// rule puts it, and nothing else happens.
fn check_one(
    runner: &mut Runner,
    ctx: &str,
    value: &[u8],
    dollar: bool,
    parsed: &std::cell::Cell<u32>,
) -> Result<(), TestCaseError> {
    let Some((event, v, star)) = runner.round_trip(ctx, value).map_err(TestCaseError::fail)? else {
        return Ok(());
    };
    parsed.set(parsed.get() + 1);
    let want = expected(ctx, event.get(b"v").unwrap_or(b""), dollar);
    let shown = |b: &Option<Vec<u8>>| b.as_ref().map(|b| String::from_utf8_lossy(b).into_owned());
    prop_assert_eq!(
        shown(&v),
        shown(&want),
        "{} value {:?}",
        ctx,
        String::from_utf8_lossy(value)
    );
    prop_assert_eq!(&v, &want);
    if ctx == "plain" {
        prop_assert_eq!(star, event.get(b"*").map(<[u8]>::to_vec));
    }
    let strays = runner.strays();
    prop_assert!(
        strays.is_empty(),
        "side effects {strays:?} after {ctx} {value:?}"
    );
    Ok(())
}

/// Values for the cases: hostile ones, and ones made only of bytes hvnet passes where the
/// action's text defeats the quotes (so that both outcomes are seen there).
fn value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => hostile_value(),
        1 => "[A-Za-z0-9_.,:/+@%-]{0,12}".prop_map(String::into_bytes),
    ]
}

/// Drive [`CASES`] values through `hvnet devd run --shell SHELL`, each into one of the
/// [`CONTEXTS`]; returns how many events devd's parser accepted.
fn every_value_arrives_as_the_shell_must_read_it(shell: &Path, quoting: &str) -> u32 {
    // `TestRunner::run` takes a `Fn`: the daemon and the count sit in cells.
    let runner = std::cell::RefCell::new(Runner::start(shell));
    let parsed = std::cell::Cell::new(0);
    // The first failure as it happened: after it the daemon's state (and so what shrinking
    // reports) may be disturbed.
    let first = std::cell::RefCell::new(None::<String>);
    let dollar = quoting.starts_with('$');
    let mut tests = TestRunner::new(Config {
        cases: CASES,
        failure_persistence: None,
        max_shrink_iters: 32,
        ..Config::default()
    });
    let ctx = proptest::sample::select(CONTEXTS.iter().map(|c| c.0).collect::<Vec<_>>());
    let result = tests.run(&(ctx, value()), |(ctx, value)| {
        let checked = check_one(&mut runner.borrow_mut(), ctx, &value, dollar, &parsed);
        if let Err(e) = &checked {
            first.borrow_mut().get_or_insert_with(|| e.to_string());
        }
        checked
    });
    let log = runner.borrow().stderr();
    if let Err(e) = result {
        panic!(
            "{}: first failure: {}\nafter shrinking: {e}\nlog:\n{log}",
            shell.display(),
            first.borrow().as_deref().unwrap_or("")
        );
    }
    assert!(log.contains(&format!("quoted as {quoting}")), "{log}");
    parsed.get()
}

/// The shell `name` from /bin or /usr/bin; missing, the test is skipped with a note (under
/// HVNET_TEST_STRICT, which .ci/run sets, it fails instead).
fn shell_or_skip(name: &str) -> Option<PathBuf> {
    let found = find(&[&format!("/bin/{name}"), &format!("/usr/bin/{name}")]);
    if found.is_none() {
        if std::env::var_os("HVNET_TEST_STRICT").is_some() {
            panic!("SKIPPED: {name} is not installed (HVNET_TEST_STRICT is set)");
        }
        eprintln!("SKIPPED: {name} is not installed (.ci/run installs it)");
    }
    found
}

#[test]
fn hostile_values_reach_actions_literally_under_dash_with_single_quotes() {
    let Some(dash) = shell_or_skip("dash") else {
        return;
    };
    let parsed =
        every_value_arrives_as_the_shell_must_read_it(&dash, "'...' (POSIX single quotes)");
    eprintln!("dash: {parsed} of {CASES} events parsed and checked");
    assert!(
        parsed >= CASES / 2,
        "only {parsed} of {CASES} events parsed"
    );
}

#[test]
fn hostile_values_reach_actions_literally_under_bash_with_dollar_quotes() {
    let Some(bash) = shell_or_skip("bash") else {
        return;
    };
    let parsed = every_value_arrives_as_the_shell_must_read_it(&bash, "$'...' (devd's quoting)");
    eprintln!("bash: {parsed} of {CASES} events parsed and checked");
    assert!(
        parsed >= CASES / 2,
        "only {parsed} of {CASES} events parsed"
    );
}
