//! Timing hvnet's indexed [`Engine`] against devd's linear scan ([`LinearMatcher`]) on the
//! same events, in the same run (used by `hvnet devd bench`).

use std::time::Duration;

use crate::config::Config;
use crate::engine::{Decision, Engine, LinearMatcher};
use crate::event::{Event, EventOptions};
use crate::media::{MediaProbe, StaticMedia};

/// Results of [`compare`]. Field names are part of the `hvnet devd bench --json` contract.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BenchReport {
    /// Number of events in the workload.
    pub events: usize,
    /// Number of rules loaded.
    pub rules: usize,
    /// Rule selection plus action expansion, hvnet's engine.
    pub hvnet_events_per_sec: f64,
    /// Rule selection plus action expansion, devd's linear scan.
    pub linear_events_per_sec: f64,
    /// `hvnet_events_per_sec / linear_events_per_sec`.
    pub speedup: f64,
    /// Rule selection only (no expansion), hvnet.
    pub hvnet_match_only_events_per_sec: f64,
    /// Rule selection only (no expansion), linear scan.
    pub linear_match_only_events_per_sec: f64,
    /// Ratio of the two match-only figures.
    pub match_only_speedup: f64,
    /// hvnet including parsing each event line.
    pub hvnet_parse_and_decide_events_per_sec: f64,
    /// Events for which some rule matched.
    pub matched_events: usize,
    /// Rule selection plus action expansion, devd's linear scan with the C library's
    /// `regcomp`/`regexec` (devd's own regex engine); `None` where there is no POSIX regex
    /// library or it decides some event differently from hvnet (see `regexec_disagreements`).
    pub regexec_linear_events_per_sec: Option<f64>,
    /// `hvnet_events_per_sec / regexec_linear_events_per_sec`.
    pub speedup_vs_regexec: Option<f64>,
    /// Events on which the C library's regex engine and hvnet's ERE translation disagree.
    pub regexec_disagreements: usize,
}

/// Why a comparison could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BenchError {
    #[error("no events to benchmark")]
    NoEvents,
    #[error("matchers disagree on {event:?}: hvnet {hvnet}, linear {linear}")]
    Disagree {
        event: String,
        hvnet: String,
        linear: String,
    },
}

/// CPU time consumed by the calling thread. The machine may be shared: time spent waiting
/// for a core is not the matcher's, so rates are per second of CPU on one core.
#[cfg(unix)]
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec through its pointer, which points at `ts`, a
    // live local timespec. (The engine crate does not depend on nix for this one clock.)
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Without a thread CPU clock: wall time since the first call.
#[cfg(not(unix))]
fn thread_cpu_time() -> Duration {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    START.get_or_init(std::time::Instant::now).elapsed()
}

/// Repeat `pass` over `events` events until `min` of the thread's CPU time has been used;
/// events per CPU second.
fn measure(events: usize, min: Duration, mut pass: impl FnMut() -> usize) -> f64 {
    std::hint::black_box(pass()); // warm-up
    let start = thread_cpu_time();
    let mut done = 0usize;
    loop {
        std::hint::black_box(pass());
        done += events;
        let elapsed = thread_cpu_time().saturating_sub(start);
        if elapsed >= min {
            return done as f64 / elapsed.as_secs_f64();
        }
    }
}

fn weight(d: Decision) -> usize {
    d.actions.iter().map(String::len).sum::<usize>() + usize::from(d.matched.is_some())
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Time both matchers on `lines` (unparsable lines are skipped), about `min` each, as the
/// best of five alternating rounds.
/// First checks that both decide every event identically.
pub fn compare(
    config: &Config,
    lines: &[String],
    min: Duration,
) -> Result<BenchReport, BenchError> {
    let opts = EventOptions {
        timestamp: Some((1_700_000_000, 0)),
        ..Default::default()
    };
    let events: Vec<Event> = lines
        .iter()
        .filter_map(|l| Event::parse_with(l.as_bytes(), &opts).ok())
        .collect();
    if events.is_empty() {
        return Err(BenchError::NoEvents);
    }
    let media = StaticMedia::new();
    let media: &dyn MediaProbe = &media;
    let engine = Engine::new(config.clone());
    let linear = LinearMatcher::new(config);
    for ev in &events {
        let (x, y) = (engine.decide(ev, media), linear.decide(ev, media));
        if x != y {
            return Err(BenchError::Disagree {
                event: String::from_utf8_lossy(ev.line()).into_owned(),
                hvnet: format!("{x:?}"),
                linear: format!("{y:?}"),
            });
        }
    }
    let regexec = RegexecBaseline::new(config, &events, media);
    let n = events.len();
    // The machine may be shared: alternate the contenders over several rounds and keep each
    // one's best rate, so a burst of load elsewhere does not decide the comparison.
    let rounds = 5;
    let slice = min / rounds;
    let (mut hvnet, mut linear_eps, mut hvnet_find, mut linear_find, mut with_parse) =
        (0f64, 0f64, 0f64, 0f64, 0f64);
    let mut regexec_eps = 0f64;
    for _ in 0..rounds {
        if let Some(rate) = regexec.measure(&events, media, n, slice) {
            regexec_eps = regexec_eps.max(rate);
        }
        hvnet = hvnet.max(measure(n, slice, || {
            events.iter().map(|e| weight(engine.decide(e, media))).sum()
        }));
        linear_eps = linear_eps.max(measure(n, slice, || {
            events.iter().map(|e| weight(linear.decide(e, media))).sum()
        }));
        hvnet_find = hvnet_find.max(measure(n, slice, || {
            events
                .iter()
                .filter(|e| engine.find(e, media).is_some())
                .count()
        }));
        linear_find = linear_find.max(measure(n, slice, || {
            events
                .iter()
                .filter(|e| linear.find(e, media).is_some())
                .count()
        }));
        with_parse = with_parse.max(measure(n, slice, || {
            lines
                .iter()
                .filter_map(|l| Event::parse_with(l.as_bytes(), &opts).ok())
                .map(|e| weight(engine.decide(&e, media)))
                .sum()
        }));
    }
    Ok(BenchReport {
        events: n,
        rules: config.rule_count(),
        hvnet_events_per_sec: hvnet.round(),
        linear_events_per_sec: linear_eps.round(),
        speedup: round2(hvnet / linear_eps),
        hvnet_match_only_events_per_sec: hvnet_find.round(),
        linear_match_only_events_per_sec: linear_find.round(),
        match_only_speedup: round2(hvnet_find / linear_find),
        hvnet_parse_and_decide_events_per_sec: with_parse.round(),
        regexec_linear_events_per_sec: (regexec_eps > 0.0).then(|| regexec_eps.round()),
        speedup_vs_regexec: (regexec_eps > 0.0).then(|| round2(hvnet / regexec_eps)),
        regexec_disagreements: regexec.disagreements,
        matched_events: events
            .iter()
            .filter(|e| engine.find(e, media).is_some())
            .count(),
    })
}

/// The devd-faithful baseline: [`crate::PosixLinearMatcher`], timed only when it decides the
/// whole workload exactly as hvnet does.
struct RegexecBaseline<'c> {
    #[cfg(unix)]
    matcher: Option<crate::PosixLinearMatcher<'c>>,
    #[cfg(not(unix))]
    matcher: Option<std::marker::PhantomData<&'c ()>>,
    disagreements: usize,
}

impl<'c> RegexecBaseline<'c> {
    #[cfg(unix)]
    fn new(config: &'c Config, events: &[Event], media: &dyn MediaProbe) -> Self {
        let engine = Engine::new(config.clone());
        let posix = crate::PosixLinearMatcher::new(config);
        let disagreements = events
            .iter()
            .filter(|e| posix.decide(e, media) != engine.decide(e, media))
            .count();
        RegexecBaseline {
            matcher: (disagreements == 0).then_some(posix),
            disagreements,
        }
    }

    #[cfg(not(unix))]
    fn new(_config: &'c Config, _events: &[Event], _media: &dyn MediaProbe) -> Self {
        RegexecBaseline {
            matcher: None,
            disagreements: 0,
        }
    }

    /// One timed round, or `None` without a usable baseline.
    #[cfg(unix)]
    fn measure(
        &self,
        events: &[Event],
        media: &dyn MediaProbe,
        n: usize,
        min: Duration,
    ) -> Option<f64> {
        let m = self.matcher.as_ref()?;
        Some(measure(n, min, || {
            events.iter().map(|e| weight(m.decide(e, media))).sum()
        }))
    }

    #[cfg(not(unix))]
    fn measure(&self, _: &[Event], _: &dyn MediaProbe, _: usize, _: Duration) -> Option<f64> {
        None
    }
}
