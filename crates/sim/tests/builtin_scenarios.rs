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

#[test]
fn transparent_builtins_pass_on_the_kernel_alone() {
    for n in builtin::names() {
        let sc = builtin::get(n).unwrap();
        if !sc.vf_transparent() {
            continue;
        }
        let r = run(
            sc,
            RunOptions {
                seed: 3,
                ..Default::default()
            },
            no_agent(),
        )
        .unwrap();
        assert!(r.summary.passed, "{n}: {:#?}", r.summary);
        let p = &r.summary.packets;
        assert_eq!(p.sent, p.delivered + p.lost, "{n}");
        assert_eq!(p.delivered, p.by_path.hn + p.by_path.vf, "{n}");
    }
}

#[test]
fn non_transparent_builtins_need_an_agent() {
    // Nothing brings the VF up: traffic stays on hn0 and no lagg appears.
    let r = run_builtin("live-migration-nt");
    assert!(!r.summary.passed);
    assert_eq!(r.summary.packets.by_path.vf, 0);
    assert!(r.world.ifnet("lagg0").is_none());
    assert_eq!(r.summary.invariant_violations, 0);
}

#[test]
fn surprise_removal_loses_packets_planned_migration_does_not() {
    let planned = run_builtin("live-migration");
    assert_eq!(planned.summary.packets.lost, 0);
    let surprise = run_builtin("surprise-removal");
    let lost = surprise.summary.packets.lost;
    assert!(lost > 0, "the dead VF drops packets until it detaches");
    assert!(surprise
        .summary
        .packets
        .lost_by_reason
        .contains_key("vf_gone"));
    // 1000 pps, 50 ms until detach, both directions: about 100 packets.
    assert!(lost <= 110, "{lost}");
    assert!(surprise.summary.back_to_hn_ms.is_some());
}

#[test]
fn mlx4_to_mlx5_renames_the_vf() {
    let r = run_builtin("mlx4-to-mlx5");
    assert!(r.summary.passed, "{:#?}", r.summary);
    assert!(r
        .devctl
        .iter()
        .any(|(_, l)| l == "!system=ETHERNET subsystem=mlxen0 type=IFATTACH"));
    assert!(r
        .devctl
        .iter()
        .any(|(_, l)| l == "!system=ETHERNET subsystem=mce0 type=IFATTACH"));
}

#[test]
fn runs_are_deterministic() {
    for n in ["demo", "flapping", "surprise-removal"] {
        let a = run_builtin(n);
        let b = run_builtin(n);
        let mut sa = a.summary.clone();
        let mut sb = b.summary.clone();
        sa.wall_ms = 0.0;
        sb.wall_ms = 0.0;
        assert_eq!(sa, sb, "{n}");
        assert_eq!(a.timeline, b.timeline, "{n}");
    }
}

#[test]
fn hour_with_60_migrations_counts_every_packet() {
    let r = run_builtin("hour-60-migrations");
    assert!(r.summary.passed, "{:#?}", r.summary);
    let p = &r.summary.packets;
    assert!(p.sent > 6_000_000);
    assert_eq!(p.sent, p.delivered + p.lost);
    assert_eq!(r.summary.back_to_hn_ms.map(|_| ()), Some(()));
    let migrations = r
        .timeline
        .iter()
        .filter(|e| e.text.contains("revokes VF"))
        .count();
    assert_eq!(migrations, 60);
}

/// `hvnet compare`'s scenario list: every built-in when none is named, else each named one
/// (a built-in or a file); an unknown name is an error naming it.
#[test]
fn load_each_gives_every_builtin_or_the_named_ones() {
    let all = builtin::load_each(&[]).unwrap();
    let names: Vec<String> = all.iter().map(|s| s.name.clone()).collect();
    assert_eq!(names, builtin::names());
    let two = builtin::load_each(&["servicing".into(), "demo".into()]).unwrap();
    assert_eq!(
        (two[0].name.as_str(), two[1].name.as_str()),
        ("servicing", "demo")
    );
    let e = builtin::load_each(&["demo".into(), "no-such-scenario".into()]).unwrap_err();
    assert!(
        e.starts_with("no-such-scenario: expected a built-in scenario"),
        "{e}"
    );
}
