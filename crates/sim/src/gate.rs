//! The VF manager's readiness gate in the simulated guest (`readiness` in a scenario): a
//! check that takes virtual time and says ready from a virtual time on, or never answers.

use std::time::Duration;

use hvnet_vf::GateProbe;

use crate::scenario::ReadinessSpec;

/// A [`GateProbe`] answering as the scenario says, in virtual time.
#[derive(Debug, Clone)]
pub struct SimGate {
    spec: ReadinessSpec,
    started: Option<Duration>,
}

impl SimGate {
    pub fn new(spec: ReadinessSpec) -> SimGate {
        SimGate {
            spec,
            started: None,
        }
    }
}

impl GateProbe for SimGate {
    fn start(&mut self, now: Duration) {
        self.started = Some(now);
    }

    fn poll(&mut self, now: Duration) -> Option<bool> {
        let started = self.started?;
        match self.spec {
            ReadinessSpec::Hangs => None,
            ReadinessSpec::ReadyAt { at, takes } => {
                let answered = started + takes;
                (now >= answered).then(|| {
                    self.started = None;
                    answered >= at
                })
            }
        }
    }

    fn stop(&mut self) {
        self.started = None;
    }

    fn describe(&self) -> String {
        match self.spec {
            ReadinessSpec::Hangs => "(simulated: never answers)".into(),
            ReadinessSpec::ReadyAt { at, takes } => format!(
                "(simulated: ready at {}, a check takes {})",
                crate::scenario::fmt_time(at),
                crate::scenario::fmt_time(takes)
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    #[test]
    fn checks_take_their_time_and_say_ready_from_the_ready_time() {
        let mut g = SimGate::new(ReadinessSpec::ReadyAt {
            at: s(5000),
            takes: s(300),
        });
        assert_eq!(g.poll(s(0)), None, "nothing started");
        g.start(s(1000));
        assert_eq!(g.poll(s(1200)), None);
        assert_eq!(g.poll(s(1300)), Some(false));
        g.start(s(4800));
        assert_eq!(g.poll(s(5100)), Some(true));
        let mut h = SimGate::new(ReadinessSpec::Hangs);
        h.start(s(0));
        assert_eq!(h.poll(s(1_000_000)), None);
    }
}
