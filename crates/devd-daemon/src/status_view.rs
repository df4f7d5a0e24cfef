//! How `hvnet status --devd` shows the status file: whether the daemon that wrote it still
//! runs, and its counters as a table.

use std::fmt::Write as _;

use crate::counters::Counters;

/// Whether a process with this pid exists (EPERM: it does, owned by someone else).
pub fn alive(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    // No signal is sent: kill only checks that the process exists.
    pid > 0
        && matches!(
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None),
            Ok(()) | Err(nix::errno::Errno::EPERM)
        )
}

/// The counters as `hvnet status --devd` prints them; `age`: seconds since the file was written.
pub fn render(c: &Counters, running: bool, age: Option<u64>) -> String {
    let e = &c.events;
    let mut s = String::new();
    let state = if running { "running" } else { "not running" };
    let age = age.map_or_else(String::new, |a| format!(", counters written {a}s ago"));
    let _ = writeln!(s, "hvnet devd run: pid {} ({state}){age}", c.pid);
    let rows: [(&str, String); 11] = [
        (
            "events",
            format!(
                "{} received, {} matched a rule",
                c.events_received, c.events_matched
            ),
        ),
        (
            "  by kind",
            format!(
                "notify {}, attach {}, detach {}, nomatch {}, unknown {}",
                e.notify, e.attach, e.detach, e.nomatch, e.unknown
            ),
        ),
        (
            "  skipped",
            format!("malformed {}, oversized {}", e.malformed, e.oversized),
        ),
        (
            "actions",
            format!(
                "{} run, {} failed, {} timed out, {} refused",
                c.actions_run, c.actions_failed, c.actions_timed_out, c.actions_refused
            ),
        ),
        (
            "  shell",
            if c.shell.is_empty() {
                "not recorded (an older hvnet)".into()
            } else {
                format!("{}, values quoted as {}", c.shell, c.quoting)
            },
        ),
        (
            "action time",
            format!("{:.3}s", c.action_time_ms as f64 / 1000.0),
        ),
        (
            "clients",
            format!(
                "{} connected, {} accepted",
                c.clients_connected, c.clients_accepted
            ),
        ),
        (
            "  dropped",
            format!("{} (failed or short send)", c.clients_dropped),
        ),
        ("  reaped", format!("{} (hung up)", c.clients_reaped)),
        ("bytes forwarded", c.bytes_forwarded.to_string()),
        (
            "reloads",
            format!("{} ok, {} failed", c.reloads, c.reload_failures),
        ),
    ];
    for (k, v) in rows {
        let _ = writeln!(s, "  {k:<16} {v}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_devd_table_shows_every_counter() {
        let mut c = Counters {
            pid: 42,
            events_received: 9,
            events_matched: 3,
            actions_run: 4,
            actions_failed: 1,
            actions_refused: 6,
            shell: "/usr/bin/bash".into(),
            quoting: "$'...' (devd's quoting)".into(),
            action_time_ms: 2500,
            clients_dropped: 2,
            ..Default::default()
        };
        c.events.attach = 5;
        let t = render(&c, false, Some(3));
        for want in [
            "pid 42 (not running), counters written 3s ago",
            "9 received, 3 matched a rule",
            "attach 5,",
            "4 run, 1 failed, 0 timed out, 6 refused",
            "  shell          /usr/bin/bash, values quoted as $'...' (devd's quoting)",
            "2.500s",
            "  dropped        2 (failed or short send)",
        ] {
            assert!(t.contains(want), "{want:?} not in\n{t}");
        }
    }
}
