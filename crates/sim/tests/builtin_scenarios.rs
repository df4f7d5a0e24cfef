//! Built-in scenarios run on the kernel-only agent: the transparent ones
//! must pass; the non-transparent ones must fail exactly where a missing
//! lagg shows.

use hvnet_sim::{builtin, no_agent, run, RunOptions};

fn run_builtin(name: &str) -> hvnet_sim::RunResult {
    let sc = builtin::get(name).unwrap();
    run(
        sc,
        RunOptions {
            seed: 1,
            ..Default::default()
        },
        no_agent(),
    )
    .unwrap()
}

#[test]
fn every_builtin_parses() {
    for n in builtin::names() {
        assert!(builtin::get(n).is_some(), "{n}");
        assert!(
            !builtin::description(n).is_empty(),
            "{n} has no description"
        );
    }
}

#[test]
fn demo_timeline() {
    let r = run_builtin("demo");
    if std::env::var("SHOW").is_ok() {
        for l in &r.timeline {
            println!("{l}");
        }
        println!("{}", serde_json::to_string(&r.summary).unwrap());
    }
    assert!(r.summary.passed, "{:#?}", r.summary);
}
