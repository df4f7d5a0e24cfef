//! devd rules hosted inside the daemon: each devctl line the backend delivers is matched by
//! the hvnet-devd engine; the matching rule's actions (event values quoted for the shell
//! chosen at start, as `hvnet devd run` chooses it, so event data never reaches the shell as
//! syntax; an action with a value that cannot be quoted is refused and logged) run one after
//! another on a worker thread through `sh -c`, exactly as `hvnet devd run` runs them, so a
//! slow action never stalls the reconciler.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use hvnet_devd::{Config, Engine, Event, LoadOptions, MediaProbe, NoMedia};

use crate::metrics::Metrics;
use crate::report::{DevdAction, DevdReport};
use hvnet_devd_daemon::action;
use hvnet_devd_daemon::media::SystemMedia;
use hvnet_devd_daemon::shell::{self, ActionShell};

/// How many finished actions the report keeps.
const RECENT: usize = 16;

/// Hosted rules and the queue to their action runner.
pub struct Hosted {
    path: PathBuf,
    engine: Engine,
    /// Probe real interfaces (false in the simulator: its interfaces are not the host's).
    system_media: bool,
    shell: ActionShell,
    jobs: Sender<Job>,
    report: Arc<Mutex<DevdReport>>,
    metrics: Metrics,
}

fn load(path: &Path) -> anyhow::Result<Engine> {
    let cfg = Config::load(path, &LoadOptions::default()).map_err(|e| anyhow::anyhow!("{e}"))?;
    for w in cfg.warnings() {
        tracing::warn!("{w}");
    }
    Ok(Engine::new(cfg))
}

/// Load `path` as `hvnet run --check` does (errors are `FILE:LINE: message`).
pub fn check(path: &Path) -> anyhow::Result<()> {
    load(path).map(|_| ())
}

/// The shell hosted actions run with (`devd_shell`, else chosen as `devd run` chooses).
pub fn choose_shell(configured: Option<&Path>) -> anyhow::Result<ActionShell> {
    shell::choose(configured).context("devd_shell")
}

/// What the action thread does next, in event order.
enum Job {
    Run(Vec<u8>),
    /// An action that was not run, and why (already logged).
    Refused(String),
}

/// Run one action and say how it went.
fn run_one(shell: &Path, cmd: &[u8], timeout: Option<Duration>, m: &Metrics) -> DevdAction {
    let out = action::run(shell, cmd, timeout);
    let text = String::from_utf8_lossy(cmd).into_owned();
    let result = if out.timed_out {
        format!(
            "timed out, killed with its process group, {}",
            out.describe()
        )
    } else {
        out.describe()
    };
    m.devd_actions_run.inc();
    if out.failed() {
        m.devd_actions_failed.inc();
        tracing::warn!("devd action failed ({result}): {text}");
    } else {
        tracing::info!("devd action: {text}");
    }
    DevdAction {
        unix_ms: unix_ms(),
        command: text,
        ok: !out.failed(),
        result,
        elapsed_ms: out.elapsed.as_millis() as u64,
    }
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Hosted {
    /// Load `path`, choose the shell and start the action runner.
    pub fn start(
        path: &Path,
        shell: Option<&Path>,
        timeout: Option<Duration>,
        system_media: bool,
        metrics: Metrics,
    ) -> anyhow::Result<Hosted> {
        let engine = load(path).with_context(|| "devd_rules")?;
        let shell = choose_shell(shell)?;
        tracing::info!("devd_rules: {}", shell.describe());
        let report = Arc::new(Mutex::new(DevdReport {
            rules: path.display().to_string(),
            shell: shell.path.display().to_string(),
            quoting: shell.quoting.describe().to_string(),
            ..Default::default()
        }));
        let (jobs, rx) = channel::<Job>();
        let (rep, m, shell_path) = (report.clone(), metrics.clone(), shell.path.clone());
        std::thread::Builder::new()
            .name("devd-actions".into())
            .spawn(move || {
                for job in rx {
                    let (done, refused) = match job {
                        Job::Run(cmd) => (run_one(&shell_path, &cmd, timeout, &m), false),
                        Job::Refused(why) => (
                            DevdAction {
                                unix_ms: unix_ms(),
                                command: String::new(),
                                ok: false,
                                result: format!("refused: {why}"),
                                elapsed_ms: 0,
                            },
                            true,
                        ),
                    };
                    let mut r = rep.lock().unwrap_or_else(|p| p.into_inner());
                    if refused {
                        r.actions_refused += 1;
                    } else {
                        r.actions_run += 1;
                        r.actions_failed += u64::from(!done.ok);
                    }
                    r.recent.push(done);
                    let excess = r.recent.len().saturating_sub(RECENT);
                    r.recent.drain(..excess);
                }
            })
            .context("starting the devd action thread")?;
        Ok(Hosted {
            path: path.to_path_buf(),
            engine,
            system_media,
            shell,
            jobs,
            report,
            metrics,
        })
    }

    /// Re-read the rules; on error the old ones stay.
    pub fn reload(&mut self) {
        match load(&self.path) {
            Ok(e) => {
                self.engine = e;
                tracing::info!("reloaded {}", self.path.display());
            }
            Err(e) => tracing::error!("reload failed, keeping the previous rules: {e:#}"),
        }
    }

    /// Match one devctl line and queue the actions of the rule that matches.
    pub fn event(&self, line: &str) {
        self.metrics.devd_events.inc();
        let event = match Event::parse(line) {
            Ok(e) => e,
            Err(e) => {
                tracing::debug!("devd: unparsable event {line:?}: {e}");
                self.bump(false);
                return;
            }
        };
        let media: &dyn MediaProbe = if self.system_media {
            &SystemMedia
        } else {
            &NoMedia
        };
        let Some(rule) = self.engine.find(&event, media) else {
            self.bump(false);
            return;
        };
        self.bump(true);
        for cmd in self.engine.commands(rule, &event, self.shell.quoting) {
            let job = cmd.map(Job::Run).unwrap_or_else(|why| {
                tracing::error!(
                    "devd: rule at {}:{}: action not run: {why} (event {line:?})",
                    rule.file(),
                    rule.line()
                );
                Job::Refused(why.to_string())
            });
            if self.jobs.send(job).is_err() {
                tracing::error!("devd action runner is gone");
            }
        }
    }

    fn bump(&self, matched: bool) {
        let mut r = self.report.lock().unwrap_or_else(|p| p.into_inner());
        r.events += 1;
        r.matched += u64::from(matched);
    }

    /// The counters and latest actions.
    pub fn report(&self) -> DevdReport {
        self.report
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// Hosted rules at DIR/rules.conf whose USB action writes `$sernum` to DIR/out.
    fn hosted(dir: &Path, shell: Option<&Path>) -> Hosted {
        let rules = dir.join("rules.conf");
        std::fs::write(
            &rules,
            format!(
                "notify 0 {{\n\tmatch \"system\" \"USB\";\n\taction \"printf '%s\\n' $sernum >> {}\";\n}};\n",
                dir.join("out").display()
            ),
        )
        .unwrap();
        Hosted::start(&rules, shell, None, false, Metrics::default()).unwrap()
    }

    fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
        let t = Instant::now();
        while !cond() {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "timed out waiting for {what}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// The event of issue 14 through the hosted runner, under the default shell and under
    /// dash: the value arrives as one literal argument, a NUL refuses the action.
    #[test]
    fn hosted_actions_get_hostile_values_literally_and_refuse_a_nul() {
        let mut shells = vec![None];
        if Path::new("/bin/dash").exists() {
            shells.push(Some(Path::new("/bin/dash")));
        }
        for shell in shells {
            let dir = tempfile::tempdir().unwrap();
            let h = hosted(dir.path(), shell);
            let pwned = dir.path().join("PWNED");
            let value = format!("';touch {} #", pwned.display());
            h.event(&format!("!system=USB sernum=\"{value}\""));
            h.event("!system=USB sernum=a\0b");
            h.event("!system=USB sernum=last");
            wait_for("the actions", || h.report().recent.len() == 3);
            let out = std::fs::read_to_string(dir.path().join("out")).unwrap();
            assert_eq!(out, format!("{value}\nlast\n"), "{shell:?}");
            assert!(!pwned.exists(), "{shell:?}: the value ran as a command");
            let r = h.report();
            assert_eq!((r.actions_run, r.actions_refused), (2, 1), "{r:?}");
            assert!(!r.recent[1].ok);
            assert_eq!(
                r.recent[1].result,
                "refused: $sernum holds a NUL byte, which no command line can carry"
            );
            assert_eq!(r.shell, h.shell.path.display().to_string());
            assert_eq!(r.quoting, h.shell.quoting.describe());
            if let Some(sh) = shell {
                assert_eq!(h.shell.path, sh);
                assert_eq!(h.shell.quoting, hvnet_devd::Quoting::SingleQuotes);
            }
        }
    }
}
