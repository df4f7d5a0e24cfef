//! `hvnet devd ...`: the devd-compatible rule engine from the command line.
//!
//! * `check`: load a configuration and report its rules, `set` variables and warnings;
//! * `match`: show, without running anything, what devd would do for events;
//! * `bench`: time hvnet's indexed matcher against devd's linear scan on one workload.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use hvnet_devd::{
    kernel_ifname, Config, Decision, DirOrder, Engine, Event, EventError, EventKind, EventOptions,
    LoadOptions, MediaType, Quoting, StaticMedia, IFNAMSIZ,
};
use serde_json::json;

#[derive(Subcommand)]
pub enum DevdCommand {
    /// Load a configuration; print rules per kind, `set` variables and warnings.
    Check(CheckArgs),
    /// Show which rule each event matches and the exact commands devd would run.
    Match(MatchArgs),
    /// Time hvnet's matcher against a linear scan on the same events.
    Bench(BenchArgs),
    /// Run as a drop-in devd: devctl events, client sockets, actions.
    Run(super::devd_run::RunArgs),
}

pub fn run(cmd: DevdCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        DevdCommand::Check(a) => check(a),
        DevdCommand::Match(a) => match_events(a),
        DevdCommand::Bench(a) => bench(a),
        DevdCommand::Run(a) => super::devd_run::run(a),
    }
}

/// How to load the configuration (shared by every subcommand).
#[derive(Args, Debug, Clone)]
pub struct ConfigArgs {
    /// Main configuration file.
    #[arg(short = 'f', long = "file", default_value = "/etc/devd.conf")]
    pub file: PathBuf,
    /// Read a `directory` from elsewhere: FROM=TO (e.g. /etc/devd=./etc/devd). Repeatable.
    #[arg(long = "dir-map", value_name = "FROM=TO")]
    pub dir_map: Vec<String>,
    /// Do not load the `directory` statements' files.
    #[arg(long)]
    pub no_directories: bool,
    /// Load directory files in readdir order (upstream) instead of sorted by name.
    #[arg(long)]
    pub readdir_order: bool,
    /// Insert values into actions unquoted, as devd did before 2020 (unsafe).
    #[arg(long)]
    pub legacy_quoting: bool,
    /// Reject stray characters and regexes that do not compile instead of warning.
    #[arg(long)]
    pub strict: bool,
}

impl ConfigArgs {
    fn options(&self) -> anyhow::Result<LoadOptions> {
        let mut opts = LoadOptions {
            dir_order: if self.readdir_order {
                DirOrder::Readdir
            } else {
                DirOrder::Sorted
            },
            no_directories: self.no_directories,
            quoting: if self.legacy_quoting {
                Quoting::Legacy
            } else {
                Quoting::Shell
            },
            strict: self.strict,
            ..Default::default()
        };
        for m in &self.dir_map {
            let (from, to) = m
                .split_once('=')
                .with_context(|| format!("--dir-map {m:?}: expected FROM=TO"))?;
            opts = opts.remap_dir(from, to);
        }
        Ok(opts)
    }

    /// Load, or print `FILE:LINE: message` and return the exit code.
    fn load(&self) -> anyhow::Result<Result<Config, ExitCode>> {
        let opts = self.options()?;
        match Config::load(&self.file, &opts) {
            Ok(cfg) => Ok(Ok(cfg)),
            Err(e) => {
                eprintln!("{e}");
                Ok(Err(ExitCode::from(1)))
            }
        }
    }
}

#[derive(Args, Debug)]
pub struct CheckArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// One JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

fn kind_counts(cfg: &Config) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    for k in EventKind::RULE_KINDS {
        m.insert(k.as_str().into(), json!(cfg.rules(k).len()));
    }
    m.insert("total".into(), json!(cfg.rule_count()));
    serde_json::Value::Object(m)
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn check(a: CheckArgs) -> anyhow::Result<ExitCode> {
    let cfg = match a.config.load()? {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let stats = Engine::new(cfg.clone()).index_stats();
    // A closed stdout (`| head`) ends the output quietly.
    quiet_pipe(print_check(&a, &cfg, &stats, &mut std::io::stdout().lock()))?;
    Ok(ExitCode::SUCCESS)
}

fn print_check(
    a: &CheckArgs,
    cfg: &Config,
    stats: &hvnet_devd::IndexStats,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    if a.json {
        let vars: serde_json::Map<String, serde_json::Value> = cfg
            .variables()
            .map(|(k, v)| (lossy(k), json!(lossy(v))))
            .collect();
        let v = json!({
            "file": a.config.file.display().to_string(),
            "files": cfg.files().iter().map(|f| f.to_string()).collect::<Vec<_>>(),
            "rules": kind_counts(cfg),
            "discarded_empty_blocks": cfg.discarded_empty_blocks(),
            "variables": vars,
            "directories": cfg.directories(),
            "pid_file": cfg.pid_file(),
            "warnings": cfg.warnings(),
            "index": stats,
        });
        writeln!(out, "{v}")?;
    } else {
        writeln!(
            out,
            "{}: {} files, {} rules",
            a.config.file.display(),
            cfg.files().len(),
            cfg.rule_count()
        )?;
        for k in EventKind::RULE_KINDS {
            writeln!(out, "  {:<8} {}", k.as_str(), cfg.rules(k).len())?;
        }
        if cfg.discarded_empty_blocks() > 0 {
            writeln!(
                out,
                "  ({} empty blocks discarded)",
                cfg.discarded_empty_blocks()
            )?;
        }
        writeln!(
            out,
            "indexed: {} rules, {} always checked",
            stats.indexed_rules, stats.unindexed_rules
        )?;
        writeln!(out, "set variables:")?;
        for (k, v) in cfg.variables() {
            writeln!(out, "  {} = \"{}\"", lossy(k), lossy(v))?;
        }
        if let Some(p) = cfg.pid_file() {
            writeln!(out, "pid-file: {p}")?;
        }
        for d in cfg.directories() {
            writeln!(out, "directory: {d}")?;
        }
        writeln!(out, "warnings: {}", cfg.warnings().len())?;
        for w in cfg.warnings() {
            writeln!(out, "  {w}")?;
        }
    }
    Ok(())
}

#[derive(Args, Debug)]
pub struct MatchArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Media of an interface for `media-type`: IF=TYPE (ethernet, 802.11, atm). Repeatable;
    /// interfaces not listed have no media (the ioctl fails). As in devd, an event's interface
    /// name is looked up by its first 15 bytes (IFNAMSIZ), so IF has at most 15.
    #[arg(long = "media", value_name = "IF=TYPE")]
    pub media: Vec<String>,
    /// Fix devd's empty-location parsing bug.
    #[arg(long)]
    pub fix_empty_location: bool,
    /// One JSON object per event.
    #[arg(long)]
    pub json: bool,
    /// Events (devctl lines); read from stdin, one per line, when none are given.
    pub events: Vec<String>,
}

fn parse_media(specs: &[String]) -> anyhow::Result<StaticMedia> {
    let mut media = StaticMedia::new();
    for spec in specs {
        let (ifname, ty) = spec
            .split_once('=')
            .with_context(|| format!("--media {spec:?}: expected IF=TYPE"))?;
        let ty = MediaType::from_name(ty).with_context(|| {
            format!("--media {spec:?}: expected TYPE ethernet, 802.11 or atm, found {ty:?}")
        })?;
        // An interface the kernel could have: devd looks up only the first 15 bytes of an
        // event's name (hvnet_devd::kernel_ifname), so a longer IF could never be found.
        if ifname.is_empty() || kernel_ifname(ifname.as_bytes()) != ifname.as_bytes() {
            anyhow::bail!(
                "--media {spec:?}: expected an interface name of 1 to {} bytes without NUL (IFNAMSIZ), found {} bytes",
                IFNAMSIZ - 1,
                ifname.len()
            );
        }
        media.insert(ifname, ty);
    }
    Ok(media)
}

/// One `match --json` line; field order as documented.
#[derive(serde::Serialize)]
struct MatchLine<'a> {
    event: &'a str,
    kind: EventKind,
    matched: &'a Option<hvnet_devd::RuleRef>,
    actions: &'a [String],
}

fn decision_json(line: &str, d: &Decision) -> anyhow::Result<String> {
    Ok(serde_json::to_string(&MatchLine {
        event: line,
        kind: d.kind,
        matched: &d.matched,
        actions: &d.actions,
    })?)
}

/// A closed stdout (`| head`) ends the output quietly.
fn quiet_pipe(r: anyhow::Result<()>) -> anyhow::Result<bool> {
    match r {
        Ok(()) => Ok(true),
        Err(e)
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

fn match_events(a: MatchArgs) -> anyhow::Result<ExitCode> {
    let media = parse_media(&a.media)?;
    let cfg = match a.config.load()? {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    for w in cfg.warnings() {
        eprintln!("warning: {w}");
    }
    let engine = Engine::new(cfg);
    let opts = EventOptions {
        fix_empty_location: a.fix_empty_location,
        ..Default::default()
    };
    let mut out = std::io::stdout().lock();
    let handle = |line: &str, out: &mut std::io::StdoutLock| -> anyhow::Result<()> {
        let ev = match Event::parse_with(line.as_bytes(), &opts) {
            Ok(ev) => ev,
            // devd skips empty lines silently.
            Err(EventError::Empty) => return Ok(()),
            Err(e) => {
                eprintln!("warning: event skipped: {e}");
                return Ok(());
            }
        };
        let d = engine.decide(&ev, &media);
        if a.json {
            writeln!(out, "{}", decision_json(line, &d)?)?;
        } else {
            writeln!(out, "{line}")?;
            match &d.matched {
                Some(r) => writeln!(
                    out,
                    "  {} rule {}:{} (priority {})",
                    d.kind.as_str(),
                    r.file,
                    r.line,
                    r.priority
                )?,
                None => writeln!(out, "  {}: no rule matched", d.kind.as_str())?,
            }
            if d.matched.is_some() && d.actions.is_empty() {
                writeln!(out, "  (no actions: the event is swallowed)")?;
            }
            for action in &d.actions {
                writeln!(out, "  action: {action}")?;
            }
        }
        Ok(())
    };
    if a.events.is_empty() {
        for line in std::io::stdin().lock().lines() {
            let line = line.context("reading events from stdin")?;
            if !quiet_pipe(handle(&line, &mut out))? {
                break;
            }
        }
    } else {
        for line in &a.events {
            if !quiet_pipe(handle(line, &mut out))? {
                break;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Args, Debug)]
pub struct BenchArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Events, one per line (default: a built-in mixed workload).
    #[arg(long)]
    pub events: Option<PathBuf>,
    /// Size of the built-in workload.
    #[arg(long, default_value_t = 10_000)]
    pub count: usize,
    /// Minimum measuring time per matcher, in seconds.
    #[arg(long, default_value_t = 1.0)]
    pub seconds: f64,
    /// One JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

fn bench(a: BenchArgs) -> anyhow::Result<ExitCode> {
    let cfg = match a.config.load()? {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let lines: Vec<String> = match &a.events {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("reading events from {}", path.display()))?
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect(),
        None => hvnet_devd::workload::mixed(&cfg, a.count, 0x5eed),
    };
    let seconds = crate::limits::BENCH_SECONDS
        .seconds("--seconds", a.seconds)
        .map_err(anyhow::Error::msg)?;
    let r = hvnet_devd::bench::compare(&cfg, &lines, seconds)?;
    if a.json {
        println!("{}", serde_json::to_string(&r)?);
    } else {
        println!(
            "{} events ({} matched a rule), {} rules",
            r.events, r.matched_events, r.rules
        );
        println!(
            "hvnet:  {:>12.0} events/s  ({:.0} ns/event)",
            r.hvnet_events_per_sec,
            1e9 / r.hvnet_events_per_sec
        );
        println!(
            "linear: {:>12.0} events/s  ({:.0} ns/event)",
            r.linear_events_per_sec,
            1e9 / r.linear_events_per_sec
        );
        println!("speedup: {:.1}x", r.speedup);
        match (r.regexec_linear_events_per_sec, r.speedup_vs_regexec) {
            (Some(rate), Some(x)) => println!(
                "linear with the C library's regexec (devd's regex engine): {rate:.0} events/s, hvnet {x:.1}x"
            ),
            _ => println!(
                "linear with regexec: not measured ({} events decided differently by the C library)",
                r.regexec_disagreements
            ),
        }
        println!(
            "rule selection only (no expansion): hvnet {:.0}/s, linear {:.0}/s, {:.1}x",
            r.hvnet_match_only_events_per_sec,
            r.linear_match_only_events_per_sec,
            r.match_only_speedup
        );
        println!(
            "hvnet incl. event parsing: {:.0} events/s",
            r.hvnet_parse_and_decide_events_per_sec
        );
    }
    Ok(ExitCode::SUCCESS)
}
