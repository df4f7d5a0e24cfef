//! The lab's report as JSON: one run (`hvnet lab --json`), several runs as medians and
//! worsts, and the shell baseline's ratios to hvnet.

use crate::lab::{LabReport, Phase};

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

fn phase_json(p: &Phase) -> serde_json::Value {
    serde_json::json!({
        "name": p.name,
        "lost": p.lost,
        "gap_ms": round3(p.gap_ms),
        "switch_ms": p.switch_ms.map(round3),
        "back_ms": p.back_ms.map(round3),
        "hn_egress_redirects": p.hn_egress_redirects,
        "lost_to_vm": p.lost_to_vm,
        "lost_to_peer": p.lost_to_peer,
        "lost_before_trigger": p.lost_before_trigger,
        "status_ok": p.status_ok,
        "status": p.status,
    })
}

/// The median (the mean of the middle two for an even count) and the worst of `v`.
fn median_max(mut v: Vec<f64>) -> Option<(f64, f64)> {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let median = match n {
        0 => return None,
        _ if n % 2 == 1 => v[n / 2],
        _ => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    };
    Some((round3(median), round3(v[n - 1])))
}

/// Several runs in the shape of one: each figure is the median over the runs, with its
/// worst beside it (`*_max`); `status_ok` and `tcp_survived` hold in every run.
pub fn summary_json(runs: &[LabReport]) -> serde_json::Value {
    let figure = |out: &mut serde_json::Value, key: &str, v: Vec<f64>| {
        let (m, x) = median_max(v).unzip();
        out[key] = m.into();
        out[format!("{key}_max")] = x.into();
    };
    let phase_names: Vec<&str> = runs[0]
        .phases
        .iter()
        .chain(std::iter::once(&runs[0].reattach))
        .map(|p| p.name)
        .collect();
    let phases: Vec<serde_json::Value> = phase_names
        .iter()
        .map(|name| {
            let ps: Vec<&Phase> = runs
                .iter()
                .flat_map(|r| r.phases.iter().chain(std::iter::once(&r.reattach)))
                .filter(|p| p.name == *name)
                .collect();
            let mut out = serde_json::json!({ "name": name });
            figure(&mut out, "lost", ps.iter().map(|p| p.lost as f64).collect());
            figure(&mut out, "gap_ms", ps.iter().map(|p| p.gap_ms).collect());
            figure(
                &mut out,
                "switch_ms",
                ps.iter().filter_map(|p| p.switch_ms).collect(),
            );
            figure(
                &mut out,
                "back_ms",
                ps.iter().filter_map(|p| p.back_ms).collect(),
            );
            figure(
                &mut out,
                "lost_before_trigger",
                ps.iter().map(|p| p.lost_before_trigger as f64).collect(),
            );
            out["lost_per_run"] = ps.iter().map(|p| p.lost).collect::<Vec<_>>().into();
            out["status_ok"] = ps
                .iter()
                .map(|p| p.status_ok)
                .try_fold(true, |all, ok| ok.map(|ok| all && ok))
                .into();
            out
        })
        .collect();
    let mut out = serde_json::json!({
        "runs": runs.len(),
        "pps": runs[0].pps,
        "reactor": runs[0].reactor,
        "phases": phases,
        "tcp_survived": runs.iter().all(|r| r.tcp_survived),
    });
    figure(
        &mut out,
        "quiet_lost",
        runs.iter().map(|r| r.quiet_lost as f64).collect(),
    );
    out
}

pub fn report_json(r: &LabReport) -> serde_json::Value {
    let mut reattach = phase_json(&r.reattach);
    reattach["name"] = "reattach".into();
    serde_json::json!({
        "pps": r.pps,
        "reactor": r.reactor,
        "vf_delay_ms": r.vf_delay.as_millis() as u64,
        "phases": r.phases.iter().map(phase_json).collect::<Vec<_>>(),
        "quiet_lost": r.quiet_lost,
        "tcp_survived": r.tcp_survived,
        "tcp_error": r.tcp_error,
        "tcp_rounds": r.tcp_rounds,
        "reattach": reattach,
        "sent": r.sent,
        "received": r.received,
        "vf_redirected_pkts": r.vf_redirected_pkts,
        "monitor_realtime": r.monitor_realtime,
    })
}

/// Per phase, baseline ÷ this run, for loss and switch time (null when undefined).
pub fn ratios(r: &LabReport, b: &LabReport) -> serde_json::Value {
    let div = |x: f64, y: f64| (y > 0.0).then(|| round3(x / y));
    r.phases
        .iter()
        .zip(&b.phases)
        .map(|(p, q)| {
            serde_json::json!({
                "name": p.name,
                "lost": div(q.lost as f64, p.lost as f64),
                "switch_ms": p.switch_ms.zip(q.switch_ms).and_then(|(a, b)| div(b, a)),
                "back_ms": p.back_ms.zip(q.back_ms).and_then(|(a, b)| div(b, a)),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_is_the_middle_or_the_mean_of_the_middle_two() {
        assert_eq!(median_max(vec![]), None);
        assert_eq!(median_max(vec![3.0, 1.0, 2.0]), Some((2.0, 3.0)));
        assert_eq!(median_max(vec![4.0, 1.0, 2.0, 3.0]), Some((2.5, 4.0)));
        assert_eq!(median_max(vec![0.0004, 1.23456]), Some((0.617, 1.235)));
    }
}
