//! The VF manager's readiness gate in the simulated guest (`readiness` in a scenario): the
//! simulator runs the manager the daemon runs, gate and time limit included, in virtual time.

use std::time::Duration;

use hvnet_sim::{manager_agent, parse, run, RunOptions, RunResult};

fn simulate(text: &str) -> RunResult {
    let sc = parse("readiness.scn", text).unwrap();
    run(sc, RunOptions::default(), manager_agent()).unwrap()
}

/// The agent lines of the timeline that contain `needle`, with their virtual times.
fn agent_lines(r: &RunResult, needle: &str) -> Vec<Duration> {
    r.timeline
        .iter()
        .filter(|e| e.source == "agent" && e.text.contains(needle))
        .map(|e| e.at)
        .collect()
}

fn show(r: &RunResult) -> String {
    r.timeline
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

const NT: &str = "mode non-transparent
rc ifconfig_hn0=\"DHCP\"
rc hyperv_vf_delay=\"60\"
at 10s offer-vf hn0
expect no-broken-connections
expect no-invariant-violations
";

/// A gate that says ready releases the VF long before its 60 s delay (at the gate's time),
/// never before the 2 s minimum.
#[test]
fn a_ready_gate_releases_the_vf_early_in_virtual_time() {
    let r = simulate(&format!(
        "duration 40s\nreadiness ready-at 20s takes 300ms\n{NT}expect at 25s path vf\n"
    ));
    assert!(r.summary.passed, "{}", show(&r));
    let up = r
        .summary
        .vf_up_latency_ms
        .as_ref()
        .expect("the VF was used");
    assert!(
        (9_000.0..=11_000.0).contains(&up.max),
        "{up:?}\n{}",
        show(&r)
    );
}

/// A check that never answers is stopped at its 10 s time limit (a line on the timeline,
/// in virtual time) and counts as not ready: the VF is used after its full delay.
#[test]
fn a_hung_gate_is_stopped_at_its_time_limit_in_virtual_time() {
    let r = simulate(&format!(
        "duration 100s\nreadiness hangs\n{NT}expect at 65s path hn\nexpect at 80s path vf\n"
    ));
    assert!(r.summary.passed, "{}", show(&r));
    let stopped = agent_lines(&r, "no answer within 10 s; stopped it");
    // The VF attaches just after 10 s; checks run back to back, each stopped after 10 s,
    // until the delay releases the VF (at about 70 s).
    assert!(
        (4..=6).contains(&stopped.len()),
        "{stopped:?}\n{}",
        show(&r)
    );
    assert!(
        stopped[0] >= Duration::from_secs(20) && stopped[0] < Duration::from_secs(21),
        "{stopped:?}"
    );
}

/// While hn1's VF waits on a gate whose check hangs, hn0's VF is taken away by a live
/// migration: hn0's traffic is back on hn0 as fast as without a gate.
#[test]
fn failover_does_not_wait_for_a_hung_gate() {
    let scenario = |gate: &str| {
        format!(
            "duration 120s
{gate}
mode non-transparent
nic hn0
nic hn1
rc ifconfig_hn0=\"DHCP\"
rc ifconfig_hn1=\"inet 10.1.0.4/24\"
traffic address 10.0.0.4
rc hyperv_vf_delay=\"30\"
at 5s offer-vf hn0
at 60s offer-vf hn1
at 70s migrate hn0 detach-after 200ms return-after 15s
expect at 50s path vf
expect at 75s path hn
expect no-broken-connections
expect no-invariant-violations
"
        )
    };
    let plain = simulate(&scenario(""));
    let hung = simulate(&scenario("readiness hangs"));
    assert!(plain.summary.passed, "{}", show(&plain));
    assert!(hung.summary.passed, "{}", show(&hung));
    // The check for hn1's VF was running when hn0's VF went.
    assert!(
        !agent_lines(&hung, "no answer within 10 s").is_empty(),
        "{}",
        show(&hung)
    );
    assert_eq!(
        hung.summary.back_to_hn_ms,
        plain.summary.back_to_hn_ms,
        "{}",
        show(&hung)
    );
    assert_eq!(hung.summary.packets.lost, plain.summary.packets.lost);
}
