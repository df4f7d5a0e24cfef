//! devd rules hosted inside the daemon: each devctl line the backend delivers is matched by
//! the hvnet-devd engine; the matching rule's actions (expanded with devd's `$'…'` quoting,
//! so event data never reaches the shell unquoted) run one after another on a worker thread
//! through `/bin/sh -c`, exactly as `hvnet devd run` runs them, so a slow action never stalls
//! the reconciler.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use hvnet_devd::{Config, Engine, Event, LoadOptions, MediaProbe, NoMedia};

use super::metrics::Metrics;
use super::report::{DevdAction, DevdReport};
use crate::devd_run::action;
use crate::devd_run::media::SystemMedia;

/// How many finished actions the report keeps.
const RECENT: usize = 16;

/// Hosted rules and the queue to their action runner.
pub struct Hosted {
    path: PathBuf,
    engine: Engine,
    /// Probe real interfaces (false in the simulator: its interfaces are not the host's).
    system_media: bool,
    jobs: Sender<Vec<u8>>,
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

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Hosted {
    /// Load `path` and start the action runner.
    pub fn start(
        path: &Path,
        shell: PathBuf,
        timeout: Option<Duration>,
        system_media: bool,
        metrics: Metrics,
    ) -> anyhow::Result<Hosted> {
        let engine = load(path).with_context(|| "devd_rules")?;
        if !action::supports_ansi_c_quoting(&shell) {
            tracing::warn!(
                "{} does not understand $'...' quoting: expanded event values will reach actions with a literal $ (set devd_shell to a shell that does)",
                shell.display()
            );
        }
        let report = Arc::new(Mutex::new(DevdReport {
            rules: path.display().to_string(),
            ..Default::default()
        }));
        let (jobs, rx) = channel::<Vec<u8>>();
        let (rep, m) = (report.clone(), metrics.clone());
        std::thread::Builder::new()
            .name("devd-actions".into())
            .spawn(move || {
                for cmd in rx {
                    let out = action::run(&shell, &cmd, timeout);
                    let text = String::from_utf8_lossy(&cmd).into_owned();
                    let result = if out.timed_out {
                        format!("timed out, {}", action::describe(&out.status))
                    } else {
                        action::describe(&out.status)
                    };
                    m.devd_actions_run.inc();
                    if out.failed() {
                        m.devd_actions_failed.inc();
                        tracing::warn!("devd action failed ({result}): {text}");
                    } else {
                        tracing::info!("devd action: {text}");
                    }
                    let mut r = rep.lock().unwrap_or_else(|p| p.into_inner());
                    r.actions_run += 1;
                    r.actions_failed += u64::from(out.failed());
                    r.recent.push(DevdAction {
                        unix_ms: unix_ms(),
                        command: text,
                        ok: !out.failed(),
                        result,
                        elapsed_ms: out.elapsed.as_millis() as u64,
                    });
                    let excess = r.recent.len().saturating_sub(RECENT);
                    r.recent.drain(..excess);
                }
            })
            .context("starting the devd action thread")?;
        Ok(Hosted {
            path: path.to_path_buf(),
            engine,
            system_media,
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
        for cmd in self.engine.expand_actions(rule, &event) {
            if self.jobs.send(cmd).is_err() {
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
