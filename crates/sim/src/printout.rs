//! A run as `hvnet simulate` prints it: the timeline and the summary as text, or as JSON
//! lines with the summary last.

use crate::runner::RunResult;
use crate::summary::{Latency, Summary};

/// The whole printout of `r`; `json`: one object per timeline entry, then the summary.
pub fn run(r: &RunResult, json: bool) -> Result<String, serde_json::Error> {
    let mut out = String::new();
    if json {
        for e in &r.timeline {
            let line = serde_json::json!({
                "t_ms": (e.at.as_secs_f64() * 1e6).round() / 1e3,
                "source": e.source,
                "text": e.text,
            });
            out.push_str(&line.to_string());
            out.push('\n');
        }
        out.push_str(&serde_json::to_string(&r.summary)?);
        out.push('\n');
    } else {
        for e in &r.timeline {
            out.push_str(&e.to_string());
            out.push('\n');
        }
        out.push_str(&human_summary(&r.summary));
    }
    Ok(out)
}

fn lat(l: &Option<Latency>) -> String {
    match l {
        Some(l) => format!("median {} ms, max {} ms", l.median, l.max),
        None => "none".into(),
    }
}

/// The summary as text, after the timeline.
fn human_summary(s: &Summary) -> String {
    let p = &s.packets;
    let reasons: Vec<String> = p
        .lost_by_reason
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    let mut t = format!(
        "\nscenario {} (seed {}, agent {}, {}): {}\n  virtual {} s in {} ms wall\n  packets: sent {}, delivered {} (hn {}, vf {}), lost {}{}\n  connections broken {}, failovers {}\n  VF up latency: {}\n  back to hn: {}\n  invariant violations {}, expectations passed {} failed {}\n",
        s.scenario,
        s.seed,
        s.agent,
        s.mode,
        if s.passed { "PASSED" } else { "FAILED" },
        s.virtual_seconds,
        s.wall_ms,
        p.sent,
        p.delivered,
        p.by_path.hn,
        p.by_path.vf,
        p.lost,
        if reasons.is_empty() {
            String::new()
        } else {
            format!(" ({})", reasons.join(", "))
        },
        s.connections_broken,
        s.failovers,
        lat(&s.vf_up_latency_ms),
        lat(&s.back_to_hn_ms),
        s.invariant_violations,
        s.expectations.passed,
        s.expectations.failed,
    );
    for f in &s.failed_expectations {
        t.push_str(&format!("  failed: {f}\n"));
    }
    for v in &s.violations {
        t.push_str(&format!("  violation: {v}\n"));
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{builtin, no_agent, RunOptions};

    #[test]
    fn json_is_one_line_per_entry_then_the_summary_and_text_ends_with_the_verdict() {
        let sc = builtin::get("boot-no-vf").unwrap();
        let r = crate::run(sc, RunOptions::default(), no_agent()).unwrap();
        let json = run(&r, true).unwrap();
        let lines: Vec<serde_json::Value> = json
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), r.timeline.len() + 1);
        assert_eq!(lines[0]["source"], r.timeline[0].source);
        assert_eq!(lines.last().unwrap()["scenario"], "boot-no-vf");
        let text = run(&r, false).unwrap();
        assert!(text.starts_with(&r.timeline[0].to_string()), "{text}");
        assert!(
            text.contains("\nscenario boot-no-vf (seed 0, agent none,"),
            "{text}"
        );
    }
}
