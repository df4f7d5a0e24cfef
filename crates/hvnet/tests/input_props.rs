//! Property tests of what the daemons read from outside, run by `cargo test` with a bounded
//! number of cases (a few seconds each): hvnet.conf (`hvnet run`), the control socket's
//! requests and answers (`hvnet run`, `hvnet status`), devctl records (`hvnet devd run`).
//! Whatever the input: no panic, errors are clean values (a file and line, a JSON error
//! line), and what has a model or a second path agrees with it. The cargo-fuzz targets in
//! `crates/hvnet/fuzz` drive the same functions with coverage guidance.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use hvnet::inputs::{
    answer, classify, decide, event_line, parse_answer, parse_request, ActionRecord, AnswerError,
    Backend, BackendKind, Config, DataPath, DevdAction, DevdReport, LineSplitter, Mode, Outcome,
    PairReport, PairStatus, Record, Report, SimReport, VfState, MAX_RECORD,
};
use hvnet::limits;
use hvnet_devd::{Engine, Event, EventOptions, LoadOptions, MediaType, Quoting, StaticMedia};
use proptest::prelude::*;

// ---------------------------------------------------------------------------------------
// hvnet.conf

/// Text made of TOML and hvnet.conf pieces, in any order.
fn conf_soup() -> impl Strategy<Value = String> {
    let tok = prop_oneof![
        Just("backend".to_string()),
        Just("mode".into()),
        Just("vf_delay".into()),
        Just("resync".into()),
        Just("action_timeout".into()),
        Just("metrics".into()),
        Just("readiness_command".into()),
        Just("[hold_down]".into()),
        Just("[retry]".into()),
        Just("[sim]".into()),
        Just("[linux]".into()),
        Just("speed".into()),
        Just("initial".into()),
        Just("max_hold".into()),
        Just(" = ".into()),
        Just("\n".into()),
        Just("\"".into()),
        Just("'''".into()),
        Just("[".into()),
        Just("]".into()),
        Just("{".into()),
        Just("}".into()),
        Just(",".into()),
        Just("#".into()),
        Just("nan".into()),
        Just("-inf".into()),
        Just("1e300".into()),
        Just("\"sim\"".into()),
        "-?[0-9]{1,25}(\\.[0-9]{0,5})?(e-?[0-9]{1,3})?",
        "\"[ -~]{0,10}\"",
        "[a-z_]{1,8}",
        any::<char>().prop_map(|c| c.to_string()),
    ];
    prop::collection::vec(tok, 0..40).prop_map(|v| v.concat())
}

/// Any f64 a TOML file can hold, with extra weight on the edges of the ranges.
fn toml_number() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>(),
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(0.0),
        Just(-0.0),
        Just(0.001),
        Just(0.01),
        Just(2.0),
        Just(86_400.0),
        Just(86_400.000_001),
        Just(1e6),
        -10.0f64..100_000.0,
        0.0f64..0.01,
    ]
}

fn toml_literal(v: f64) -> String {
    if v.is_nan() {
        "nan".into()
    } else if v.is_infinite() {
        if v > 0.0 { "inf" } else { "-inf" }.into()
    } else {
        // `{:?}` keeps every digit and always has a `.` or an exponent: a TOML float.
        format!("{v:?}")
    }
}

/// The numeric settings: (table, key, name in messages, range).
const NUMERIC: [(&str, &str, &str, limits::Range); 9] = [
    ("", "vf_delay", "vf_delay", limits::VF_DELAY),
    ("", "resync", "resync", limits::POSITIVE_SECONDS),
    (
        "",
        "action_timeout",
        "action_timeout",
        limits::POSITIVE_SECONDS,
    ),
    ("hold_down", "window", "hold_down.window", limits::HOLD_DOWN),
    ("hold_down", "hold", "hold_down.hold", limits::HOLD_DOWN),
    (
        "hold_down",
        "max_hold",
        "hold_down.max_hold",
        limits::HOLD_DOWN,
    ),
    ("retry", "initial", "retry.initial", limits::RETRY),
    ("retry", "max", "retry.max", limits::RETRY),
    ("sim", "speed", "sim.speed", limits::SPEED),
];

/// What a configuration holds for a setting (`None`: not set).
fn setting(c: &Config, name: &str) -> Option<f64> {
    let d = |d: Duration| Some(d.as_secs_f64());
    match name {
        "vf_delay" => c.vf_delay.map(|d| d.as_secs_f64()),
        "resync" => d(c.resync),
        "action_timeout" => c.action_timeout.map(|d| d.as_secs_f64()),
        "hold_down.window" => d(c.damping.window),
        "hold_down.hold" => d(c.damping.hold),
        "hold_down.max_hold" => d(c.damping.max_hold),
        "retry.initial" => d(c.retry.initial),
        "retry.max" => d(c.retry.max),
        "sim.speed" => match &c.backend {
            Backend::Sim(sim) => Some(sim.speed),
            _ => None,
        },
        other => unreachable!("{other}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// Any text: a configuration or a `FILE:LINE: message` error inside the file.
    #[test]
    fn any_text_is_a_configuration_or_a_file_line_error(text in conf_soup()) {
        match Config::parse("p.conf", &text) {
            Ok(c) => {
                for (_, _, name, range) in NUMERIC {
                    if let Some(v) = setting(&c, name) {
                        prop_assert!(range.contains(v), "{} = {}", name, v);
                    }
                }
                prop_assert!(c.damping.max_hold >= c.damping.hold);
                prop_assert!(c.retry.max >= c.retry.initial);
                let _ = c.manager_config(u64::MAX);
            }
            Err(e) => {
                prop_assert_eq!(&e.file, "p.conf");
                prop_assert!(e.line >= 1 && e.line <= text.lines().count() + 1, "{e} in {text:?}");
                prop_assert!(!e.message.is_empty());
                let shown = e.to_string();
                let prefix = format!("p.conf:{}: ", e.line);
                prop_assert!(shown.starts_with(&prefix), "{}", shown);
            }
        }
    }

    /// Every numeric setting with any number: the file loads exactly when every value is in
    /// its range and the pairs are ordered (max_hold >= hold, retry.max >= retry.initial),
    /// and then holds exactly those values; otherwise the error names an offending setting
    /// on its line.
    #[test]
    fn numeric_settings_load_exactly_when_in_range(
        values in prop::collection::vec(prop::option::weighted(0.6, toml_number()), NUMERIC.len()),
    ) {
        let mut top = String::from("# generated\n");
        let mut tables: Vec<(&str, String)> = Vec::new();
        let mut line_of = Vec::new();
        for ((table, key, name, _), v) in NUMERIC.iter().zip(&values) {
            let Some(v) = v else { continue };
            let l = format!("{key} = {}\n", toml_literal(*v));
            if table.is_empty() {
                top.push_str(&l);
            } else {
                match tables.iter_mut().find(|(t, _)| t == table) {
                    Some((_, body)) => body.push_str(&l),
                    None => tables.push((table, format!("[{table}]\n{l}"))),
                }
            }
            line_of.push((*name, l));
        }
        let mut text = top;
        for (_, body) in &tables {
            text.push_str(body);
        }
        let defaults = Config::parse_for("defaults", "", Some(BackendKind::Sim)).unwrap();
        let value = |name: &str| -> Option<f64> {
            NUMERIC.iter().zip(&values).find(|((_, _, n, _), _)| *n == name).and_then(|(_, v)| *v)
        };
        // A pair's order as the loader sees it: a value in range, else the default.
        let effective = |name: &str| -> Duration {
            let range = NUMERIC.iter().find(|(_, _, n, _)| *n == name).unwrap().3;
            match value(name) {
                Some(v) if range.contains(v) => Duration::from_secs_f64(v),
                _ => Duration::from_secs_f64(setting(&defaults, name).unwrap()),
            }
        };
        let out_of_range: Vec<&str> = NUMERIC
            .iter()
            .zip(&values)
            .filter(|((_, _, _, range), v)| v.is_some_and(|v| !range.contains(v)))
            .map(|((_, _, name, _), _)| *name)
            .collect();
        let misordered = effective("hold_down.max_hold") < effective("hold_down.hold")
            || effective("retry.max") < effective("retry.initial");
        // The simulator's backend: its table ([sim] speed) is the one in use.
        match Config::parse_for("n.conf", &text, Some(BackendKind::Sim)) {
            Ok(c) => {
                prop_assert!(out_of_range.is_empty() && !misordered, "{text}");
                for (_, _, name, range) in NUMERIC {
                    if let Some(v) = value(name) {
                        let got = setting(&c, name).unwrap();
                        let want = if name == "sim.speed" {
                            v
                        } else {
                            range.seconds(name, v).unwrap().as_secs_f64()
                        };
                        prop_assert_eq!(got, want, "{}", name);
                    }
                }
            }
            Err(e) => {
                prop_assert!(!out_of_range.is_empty() || misordered, "{e} for {text}");
                let line = text.lines().nth(e.line - 1).unwrap_or("");
                match out_of_range.iter().find(|n| e.message.starts_with(&format!("{n}: expected "))) {
                    // The range error is on the offending key's line.
                    Some(name) => {
                        let key = name.rsplit('.').next().unwrap();
                        prop_assert!(line.starts_with(&format!("{key} = ")), "{e}: line {line:?}");
                    }
                    None => prop_assert!(misordered && e.message.contains("must be at least"), "{e} for {text}"),
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// The control socket

fn text_with_anything() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ -~]{0,12}",
        any::<String>(),
        Just("\u{1b}[2J\u{7}\"\\\n\r\t\0".to_string()),
    ]
}

fn report() -> impl Strategy<Value = Report> {
    let vf_state = prop_oneof![
        Just(VfState::Absent),
        Just(VfState::Waiting),
        Just(VfState::HeldDown),
        Just(VfState::Ready),
        Just(VfState::Leaving),
    ];
    let path = prop_oneof![
        Just(DataPath::Synthetic),
        Just(DataPath::Vf),
        Just(DataPath::Dropped)
    ];
    let pair = (
        text_with_anything(),
        prop::option::of(text_with_anything()),
        any::<u64>(),
        any::<bool>(),
        prop::collection::vec(text_with_anything(), 0..3),
        (vf_state, path, prop::option::of(any::<u64>())),
    )
        .prop_map(
            |(synthetic, vf, ms, dhcp, problems, (vf_state, path, vf_ready_in_ms))| PairReport {
                status: PairStatus {
                    synthetic,
                    vf,
                    vf_state,
                    vf_ready_in_ms,
                    path,
                    dhcp,
                    problems,
                    ..Default::default()
                },
                path_since_ms: ms,
                path_since_unix_ms: Some(ms / 2),
                ..Default::default()
            },
        );
    let mode = prop::option::of(prop_oneof![
        Just(Mode::NonTransparent),
        Just(Mode::Transparent),
        Just(Mode::Steered)
    ]);
    let action = (any::<u64>(), text_with_anything(), any::<bool>()).prop_map(|(at_ms, op, ok)| {
        ActionRecord {
            at_ms,
            error: (!ok).then(|| op.clone()),
            op,
            ok,
        }
    });
    (
        (
            text_with_anything(),
            any::<u32>(),
            text_with_anything(),
            any::<u64>(),
        ),
        prop::collection::vec(pair, 0..3),
        prop::collection::vec(action, 0..3),
        prop::option::of((text_with_anything(), any::<u64>())),
        prop::option::of((
            text_with_anything(),
            any::<f64>().prop_filter("finite", |f| f.is_finite()),
        )),
        (any::<bool>(), mode),
    )
        .prop_map(
            |(
                (version, pid, backend, now_ms),
                pairs,
                recent_actions,
                devd,
                sim,
                (converged, mode),
            )| Report {
                version,
                pid,
                backend,
                now_ms,
                mode,
                converged,
                pairs,
                recent_actions,
                devd: devd.map(|(rules, events)| DevdReport {
                    recent: vec![DevdAction {
                        command: rules.clone(),
                        ..Default::default()
                    }],
                    rules,
                    events,
                    ..Default::default()
                }),
                sim: sim.map(|(scenario, speed)| SimReport {
                    scenario,
                    speed,
                    ..Default::default()
                }),
                ..Default::default()
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    /// Any bytes as a request: exactly one JSON line back; the report for `status`, an
    /// error naming the request otherwise.
    #[test]
    fn any_request_gets_one_json_line(
        req in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..1100),
            "[ \t]*status[ \t\r]*\n?".prop_map(String::into_bytes),
        ],
        r in report(),
    ) {
        let a = answer(&req, || r.clone());
        prop_assert!(a.ends_with('\n'));
        prop_assert_eq!(a.matches('\n').count(), 1);
        prop_assert!(serde_json::from_str::<serde_json::Value>(&a).is_ok());
        match parse_request(&req) {
            Ok(_) => prop_assert_eq!(parse_answer(&a), Ok(r)),
            Err(msg) => {
                prop_assert!(msg.starts_with("unknown request "));
                prop_assert_eq!(parse_answer(&a), Err(AnswerError::Daemon(msg)));
            }
        }
    }

    /// Any line from a server: a report or a clean error, never a panic.
    #[test]
    fn any_answer_line_is_a_report_or_a_clean_error(
        line in prop_oneof![
            any::<String>(),
            "\\{\"(error|version|pid|pairs)\": ?(\"[ -~]{0,8}\"|[0-9]{1,22}|null|\\[\\]|\\{\\})\\}\n?",
        ],
    ) {
        match parse_answer(&line) {
            // A report survives the daemon's encoding.
            Ok(r) => prop_assert_eq!(parse_answer(&answer(b"status\n", || r.clone())), Ok(r)),
            Err(e) => {
                let _ = e.to_string();
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// devctl records

/// Bytes rich in newlines and long lines.
fn stream() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b"\n".to_vec()),
        Just(b"!system=IFNET subsystem=hn0 type=LINK_UP\n".to_vec()),
        prop::collection::vec(any::<u8>(), 0..40),
        (1usize..3 * MAX_RECORD).prop_map(|n| vec![b'x'; n]),
        Just(vec![b'y'; MAX_RECORD]),
        Just(vec![b'y'; MAX_RECORD - 1]),
    ];
    prop::collection::vec(piece, 0..12).prop_map(|v| v.concat())
}

/// The records of `data` by definition: each line with its newline, and a last line without.
fn model_records(data: &[u8]) -> Vec<Record> {
    data.split_inclusive(|&b| b == b'\n')
        .map(|l| classify(l.to_vec()))
        .collect()
}

fn corpus() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/devd/corpus")
}

/// devd.conf with its /etc/devd directory: the whole corpus, as `devd run` would load it.
fn engine() -> &'static Engine {
    static E: OnceLock<Engine> = OnceLock::new();
    E.get_or_init(|| {
        let opts = LoadOptions::default()
            .remap_dir("/etc/devd", corpus())
            .remap_dir("/usr/local/etc/devd", corpus().join("does-not-exist"));
        Engine::new(hvnet_devd::Config::load(corpus().join("devd.conf"), &opts).unwrap())
    })
}

fn media() -> StaticMedia {
    let mut m = StaticMedia::new();
    m.insert("hn0", MediaType::Ethernet);
    m.insert("em0", MediaType::Ethernet);
    m.insert("wlan0", MediaType::Ieee80211);
    m
}

/// devctl-like lines, well-formed and not.
fn record() -> impl Strategy<Value = Vec<u8>> {
    let name = "[a-z]{1,6}[0-9]{0,2}";
    prop_oneof![
        (
            "(IFNET|HYPERV_NIC_VF|DEVFS|ETHERNET|ACPI|USB|ZFS|GEOM)",
            name,
            "(LINK_UP|LINK_DOWN|ATTACH|VF_UP|IFATTACH|CREATE)",
            "[ -~]{0,30}"
        )
            .prop_map(|(s, sub, t, rest)| format!(
                "!system={s} subsystem={sub} type={t} {rest}"
            )
            .into_bytes()),
        (name, "[ -~]{0,40}", name)
            .prop_map(|(d, loc, bus)| format!("+{d} at {loc} on {bus}").into_bytes()),
        ("[ -~]{0,60}", name).prop_map(|(loc, bus)| format!("? at {loc} on {bus}").into_bytes()),
        ("[!+?-]", "[ -~]{0,60}").prop_map(|(k, rest)| format!("{k}{rest}").into_bytes()),
        prop::collection::vec(any::<u8>(), 0..200),
    ]
    .prop_flat_map(|r| (Just(r), 0usize..3))
    .prop_map(|(mut r, newlines)| {
        r.extend(std::iter::repeat_n(b'\n', newlines));
        r
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    /// A FIFO's bytes give the same records however the reads cut them, the records are the
    /// stream's lines (over-long ones counted, not kept), and every byte is accounted for.
    #[test]
    fn records_do_not_depend_on_how_reads_cut_the_stream(
        data in stream(),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
    ) {
        let mut cuts: Vec<usize> = cuts.iter().map(|i| i.index(data.len() + 1)).collect();
        cuts.sort_unstable();
        let mut s = LineSplitter::default();
        let mut got = Vec::new();
        let mut from = 0;
        for c in cuts.into_iter().chain([data.len()]) {
            got.extend(s.push(&data[from..c]));
            from = c;
        }
        got.extend(s.finish());
        prop_assert_eq!(&got, &model_records(&data));
        let total: usize = got
            .iter()
            .map(|r| match r {
                Record::Event(b) => b.len(),
                Record::Oversized(n) => *n,
            })
            .sum();
        prop_assert_eq!(total, data.len());
    }

    /// Any record: a clean decision; `devd run` (find, then expand) decides what `devd match`
    /// (Engine::decide) does; trailing newlines change nothing.
    #[test]
    fn any_record_decides_as_devd_match_does(r in record()) {
        let e = engine();
        let m = media();
        let opts = EventOptions::default();
        let got = decide(e, &r, &opts, &m, Quoting::Shell);
        prop_assert_eq!(&decide(e, event_line(&r), &opts, &m, Quoting::Shell), &got);
        match (&got, Event::parse_with(event_line(&r), &opts)) {
            (Outcome::Malformed(err), Err(want)) => {
                prop_assert_eq!(err, &want);
                prop_assert!(!err.to_string().is_empty());
            }
            (Outcome::Unmatched(kind), Ok(ev)) => {
                let d = e.decide(&ev, &m);
                prop_assert_eq!(d.kind, *kind);
                prop_assert!(d.matched.is_none());
            }
            (Outcome::Matched { kind, place, actions }, Ok(ev)) => {
                let d = e.decide(&ev, &m);
                prop_assert_eq!(d.kind, *kind);
                let rule = d.matched.as_ref().expect("devd match found no rule");
                prop_assert_eq!(place, &format!("{}:{}", rule.file, rule.line));
                // Each action is what devd would hand to sh, or refused (a value where the
                // action's own text defeats its quotes, a NUL): never something else.
                prop_assert_eq!(actions.len(), d.actions.len());
                for (got, want) in actions.iter().zip(&d.actions) {
                    if let Ok(cmd) = got {
                        prop_assert_eq!(&String::from_utf8_lossy(cmd), want);
                    }
                }
            }
            (got, parsed) => prop_assert!(false, "{got:?} but parse gave {parsed:?}"),
        }
    }
}
