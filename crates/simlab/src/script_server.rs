//! The simulated guest served to shell scripts (`hvnet simulate SCENARIO --serve DIR`): the
//! wrappers in `DIR/bin` (put it first on the scripts' PATH) send `sysctl`, `ifconfig`,
//! `dhclient`, `pkill`, `kill` and `sleep` to this process, which runs them on the guest;
//! `daemon` runs its command detached, on the client's side. Virtual time moves only
//! through `sleep`, so a script's run is deterministic. Every devctl line goes to
//! `DIR/devctl`; the run ends at the scenario's end or on `stop` (`now` prints the virtual
//! time), and its summary also goes to `DIR/summary.json`.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use hvnet_sim::runner::Sim;
use hvnet_sim::{AgentFactory, RunOptions, RunResult, Scenario};

use crate::harness::{ClientCommand, HarnessError, Response, Root};

/// The commands FreeBSD's network scripts run that the guest answers: the wrappers here and
/// in compare's real run (`crate::original`).
pub const COMMANDS: &[&str] = &[
    "sysctl", "ifconfig", "dhclient", "daemon", "pkill", "kill", "sleep",
];

/// `sleep SECONDS`'s duration, or the answer to a bad one.
pub(crate) fn sleep_duration(argv: &[String]) -> Result<Duration, Response> {
    let secs: f64 = argv.get(1).and_then(|s| s.parse().ok()).unwrap_or(-1.0);
    if (0.0..1e9).contains(&secs) {
        Ok(Duration::from_secs_f64(secs))
    } else {
        Err(Response::failed("usage: sleep seconds\n"))
    }
}

/// Why serving stopped short.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Harness(#[from] HarnessError),
    #[error("writing {}", .0.display())]
    Events(std::path::PathBuf, #[source] std::io::Error),
    #[error("the run's summary")]
    Summary(#[source] serde_json::Error),
}

/// How a served run goes.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    pub seed: u64,
    /// `wall_ms` 0 in the summary (`HVNET_SIM_WALL=0`), so that runs compare byte for byte.
    pub zero_wall: bool,
}

/// Serve scenario `sc` in `dir` until it ends or a client sends `stop`; `agent` acts in the
/// guest beside the scripts (none, usually). `ready` is called with the socket's path once
/// the guest is there.
pub fn serve(
    dir: &Path,
    sc: Scenario,
    o: &ServeOptions,
    agent: AgentFactory,
    client: &ClientCommand,
    ready: impl FnOnce(&Path),
) -> Result<RunResult, ServeError> {
    let root = Root::keep_at(dir)?;
    root.install_wrappers(client, COMMANDS)?;
    let events_path = root.path("devctl");
    let mut events = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(&events_path)
        .map_err(|e| ServeError::Events(events_path.clone(), e))?;
    let server = root.listen()?;
    let wall = Instant::now();
    let opts = RunOptions {
        seed: o.seed,
        ..Default::default()
    };
    let mut sim = Sim::new(sc, opts, agent, Vec::new()).map_err(HarnessError::from)?;
    sim.advance_to(Duration::ZERO);
    let mut written = flush_events(&sim, &mut events, 0)
        .map_err(|e| ServeError::Events(events_path.clone(), e))?;
    ready(&root.path(crate::harness::SOCKET));
    loop {
        let p = match server.next() {
            Ok(p) => p,
            // One bad request is that program's problem, not the guest's.
            Err(HarnessError::Request(_) | HarnessError::Read(_)) => continue,
            Err(HarnessError::ForeignClient { .. }) => continue,
            Err(e) => return Err(e.into()),
        };
        let (resp, stop) = handle(&mut sim, &p.request.argv);
        written = flush_events(&sim, &mut events, written)
            .map_err(|e| ServeError::Events(events_path.clone(), e))?;
        p.answer(&resp);
        if stop || sim.now() >= sim.end() {
            break;
        }
    }
    drop(server);
    let mut r = sim.finish_at_end(wall.elapsed().as_secs_f64() * 1000.0);
    if o.zero_wall {
        r.summary.wall_ms = 0.0;
    }
    let summary = serde_json::to_string(&r.summary).map_err(ServeError::Summary)?;
    root.write("summary.json", format!("{summary}\n"), 0o644)?;
    Ok(r)
}

fn flush_events(sim: &Sim, f: &mut File, from: usize) -> std::io::Result<usize> {
    let log = sim.devctl_log();
    for (_, l) in &log[from.min(log.len())..] {
        writeln!(f, "{l}")?;
    }
    f.flush()?;
    Ok(log.len())
}

/// One command; true when the run should stop.
fn handle(sim: &mut Sim, argv: &[String]) -> (Response, bool) {
    let ok = |stdout: String| Response {
        stdout,
        ..Default::default()
    };
    match argv.first().map(String::as_str) {
        Some("sleep") => match sleep_duration(argv) {
            Ok(d) => {
                let t = sim.now() + d;
                sim.advance_to(t.min(sim.end()));
                (ok(String::new()), false)
            }
            Err(usage) => (usage, false),
        },
        Some("stop") => (ok(String::new()), true),
        Some("now") => (ok(format!("{}\n", sim.now().as_secs_f64())), false),
        _ => (Response::from(sim.command(argv)), false),
    }
}

/// A wrapper's side: `daemon` runs its command here, detached (in its own process group,
/// no standard streams); everything else goes to the server.
pub fn client(dir: &Path, argv: &[String]) -> Result<Response, HarnessError> {
    if argv.first().map(String::as_str) != Some("daemon") {
        return crate::harness::client(dir, argv);
    }
    let Some((prog, args)) = hvnet_freebsd::cmd::daemon_command(argv).and_then(|c| c.split_first())
    else {
        return Ok(Response::failed(
            "usage: daemon [-f] command arguments ...\n",
        ));
    };
    hvnet_sys::process::spawn_in_own_group(prog, args).map_err(|source| HarnessError::Spawn {
        what: format!("daemon: {prog}"),
        source,
    })?;
    Ok(Response::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn sleep_takes_seconds_and_refuses_the_rest() {
        assert_eq!(
            sleep_duration(&argv(&["sleep", "1.5"])),
            Ok(Duration::from_millis(1500))
        );
        for bad in [
            &["sleep"][..],
            &["sleep", "-1"],
            &["sleep", "x"],
            &["sleep", "1e9"],
        ] {
            let e = sleep_duration(&argv(bad)).unwrap_err();
            assert_eq!((e.status, e.stderr.as_str()), (1, "usage: sleep seconds\n"));
        }
    }

    #[test]
    fn virtual_time_moves_only_with_sleep_and_stops_at_the_end() {
        let sc = hvnet_sim::builtin::get("demo").unwrap();
        let mut sim =
            Sim::new(sc, RunOptions::default(), hvnet_sim::no_agent(), Vec::new()).unwrap();
        sim.advance_to(Duration::ZERO);
        let (r, stop) = handle(&mut sim, &argv(&["sysctl", "-n", "hw.hn.vflist"]));
        assert_eq!((r.status, stop, sim.now()), (0, false, Duration::ZERO));
        assert!(!handle(&mut sim, &argv(&["sleep", "2.5"])).1);
        assert_eq!(sim.now(), Duration::from_millis(2500));
        assert_eq!(handle(&mut sim, &argv(&["now"])).0.stdout, "2.5\n");
        handle(&mut sim, &argv(&["sleep", "99999"]));
        assert_eq!(sim.now(), sim.end(), "never past the scenario's end");
        assert!(handle(&mut sim, &argv(&["stop"])).1);
    }
}
