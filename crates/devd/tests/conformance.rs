//! Every line of testdata/devd/conformance/*.jsonl must agree, for the indexed engine and for
//! the linear reference.

mod common;

use hvnet_devd::{Engine, Event, EventOptions, LinearMatcher, NoMedia};

fn check(file: &str, with_devmatch: bool, blocks: usize) {
    let (cfg, _dir) = common::conformance_config(with_devmatch);
    assert_eq!(cfg.rule_count(), blocks, "block count for {file}");
    let engine = Engine::new(cfg.clone());
    let linear = LinearMatcher::new(&cfg);
    let cases = common::conformance_cases(file);
    assert_eq!(cases.len(), 2500);
    let mut failures = Vec::new();
    for (line, expected) in &cases {
        let ev = Event::parse_with(
            line.as_bytes(),
            &EventOptions {
                timestamp: Some((1, 0)),
                ..Default::default()
            },
        )
        .unwrap();
        let got = engine.decide(&ev, &NoMedia);
        let lin = linear.decide(&ev, &NoMedia);
        if got.actions[..] != expected[..] || got != lin {
            failures.push(format!(
                "event {line:?}\n  expected {expected:?}\n  engine   {:?}\n  linear   {:?}",
                got.actions, lin.actions
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} events disagree in {file}; first:\n{}",
        failures.len(),
        cases.len(),
        failures
            .iter()
            .take(5)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn full_corpus_conformance() {
    check("full.jsonl", true, 657);
}

#[test]
fn no_devmatch_conformance() {
    check("no-devmatch.jsonl", false, 654);
}
