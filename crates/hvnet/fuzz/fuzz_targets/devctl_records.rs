//! Any bytes as what `hvnet devd run` reads from a FIFO: the records are the same however
//! the reads cut the stream and account for every byte; each record, and the whole input as
//! one devctl record, decides cleanly and as `hvnet devd match` (Engine::decide) does.
#![no_main]

use std::sync::OnceLock;

use hvnet::inputs::{classify, decide, event_line, LineSplitter, Outcome, Record};
use hvnet_devd::{Config, Engine, Event, EventOptions, LoadOptions, MediaType, Quoting, StaticMedia};
use libfuzzer_sys::fuzz_target;

const RULES: &str = concat!(
    include_str!("../../../../testdata/devd/corpus/hyperv.conf"),
    include_str!("../../../../testdata/devd/corpus/dhclient.conf"),
    include_str!("../../../../testdata/devd/corpus/devd.conf"),
);

fn engine() -> &'static Engine {
    static E: OnceLock<Engine> = OnceLock::new();
    E.get_or_init(|| {
        let opts = LoadOptions {
            no_directories: true,
            ..Default::default()
        };
        Engine::new(Config::parse_str("fuzz.conf", RULES, &opts).unwrap())
    })
}

fn media() -> &'static StaticMedia {
    static M: OnceLock<StaticMedia> = OnceLock::new();
    M.get_or_init(|| {
        let mut m = StaticMedia::new();
        m.insert("hn0", MediaType::Ethernet);
        m.insert("vtnet0123456789", MediaType::Ethernet);
        m.insert("wlan0", MediaType::Ieee80211);
        m
    })
}

fn check(record: &[u8]) {
    let opts = EventOptions::default();
    let got = decide(engine(), record, &opts, media(), Quoting::Shell);
    match (&got, Event::parse_with(event_line(record), &opts)) {
        (Outcome::Malformed(e), Err(want)) => assert_eq!(e, &want),
        (Outcome::Unmatched(kind), Ok(ev)) => {
            let d = engine().decide(&ev, media());
            assert!(d.matched.is_none() && d.kind == *kind);
        }
        (Outcome::Matched { kind, place, actions }, Ok(ev)) => {
            let d = engine().decide(&ev, media());
            let rule = d.matched.as_ref().expect("devd match found no rule");
            assert!(d.kind == *kind && *place == format!("{}:{}", rule.file, rule.line));
            // Each action is what devd would hand to sh, or refused: never something else.
            assert_eq!(actions.len(), d.actions.len());
            for (got, want) in actions.iter().zip(&d.actions) {
                if let Ok(cmd) = got {
                    assert_eq!(&String::from_utf8_lossy(cmd), want);
                }
            }
        }
        (got, parsed) => panic!("{got:?} but parse gave {parsed:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    // The first byte picks where the reads cut the rest.
    let (step, bytes) = match data.split_first() {
        Some((s, rest)) => (usize::from(*s).max(1), rest),
        None => (1, data),
    };
    let mut whole = LineSplitter::default();
    let mut want = whole.push(bytes);
    want.extend(whole.finish());
    let mut cut = LineSplitter::default();
    let mut got: Vec<Record> = bytes.chunks(step).flat_map(|c| cut.push(c)).collect();
    got.extend(cut.finish());
    assert_eq!(got, want);
    let total: usize = got
        .iter()
        .map(|r| match r {
            Record::Event(b) => b.len(),
            Record::Oversized(n) => *n,
        })
        .sum();
    assert_eq!(total, bytes.len());
    for r in &got {
        if let Record::Event(b) = r {
            check(b);
        }
    }
    if let Record::Event(b) = classify(bytes.to_vec()) {
        check(&b);
    }
});
