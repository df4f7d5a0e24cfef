//! What `devd run` decides for one devctl record before anything runs: the event line is the
//! record without its trailing newlines; it is parsed, and the first matching rule's actions
//! are expanded with the quoting the chosen shell reads (an action whose values cannot be
//! carried safely is refused, not run).

use hvnet_devd::{
    Engine, Event, EventError, EventKind, EventOptions, MediaProbe, Quoting, Refused,
};

/// The decision for one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Not an event devd would parse; skipped with a warning.
    Malformed(EventError),
    /// No rule matched.
    Unmatched(EventKind),
    /// A rule matched (at `place`, `FILE:LINE`): its actions, in order, each expanded or
    /// refused (none: the event is swallowed).
    Matched {
        kind: EventKind,
        place: String,
        actions: Vec<Result<Vec<u8>, Refused>>,
    },
}

/// The event line of a record: its bytes without the trailing newlines.
pub fn event_line(record: &[u8]) -> &[u8] {
    let mut line = record;
    while let [rest @ .., b'\n'] = line {
        line = rest;
    }
    line
}

/// Parse `record` and find what `engine` runs for it, its values quoted with `quoting`.
pub fn decide(
    engine: &Engine,
    record: &[u8],
    opts: &EventOptions,
    media: &dyn MediaProbe,
    quoting: Quoting,
) -> Outcome {
    let event = match Event::parse_with(event_line(record), opts) {
        Ok(ev) => ev,
        Err(e) => return Outcome::Malformed(e),
    };
    let kind = event.kind();
    match engine.find(&event, media) {
        Some(rule) => Outcome::Matched {
            kind,
            place: format!("{}:{}", rule.file(), rule.line()),
            actions: engine.commands(rule, &event, quoting),
        },
        None => Outcome::Unmatched(kind),
    }
}

#[cfg(test)]
mod tests {
    use hvnet_devd::{Config, LoadOptions, NoMedia};

    use super::*;

    fn engine() -> Engine {
        let cfg = Config::parse_str(
            "t.conf",
            "notify 0 { match \"system\" \"IFNET\"; action \"up $subsystem\"; };",
            &LoadOptions::default(),
        )
        .unwrap();
        Engine::new(cfg)
    }

    #[test]
    fn trailing_newlines_are_not_part_of_the_event() {
        assert_eq!(event_line(b"!a=b\n\n"), b"!a=b");
        assert_eq!(event_line(b"\n"), b"");
        let want = Outcome::Matched {
            kind: EventKind::Notify,
            place: "t.conf:1".into(),
            actions: vec![Ok(b"up $'hn0'".to_vec())],
        };
        let e = engine();
        for r in [
            &b"!system=IFNET subsystem=hn0"[..],
            b"!system=IFNET subsystem=hn0\n",
        ] {
            assert_eq!(
                decide(&e, r, &EventOptions::default(), &NoMedia, Quoting::Shell),
                want
            );
        }
        assert_eq!(
            decide(
                &e,
                b"!system=DEVFS\n",
                &EventOptions::default(),
                &NoMedia,
                Quoting::Shell
            ),
            Outcome::Unmatched(EventKind::Notify)
        );
        assert!(matches!(
            decide(
                &e,
                b"\n",
                &EventOptions::default(),
                &NoMedia,
                Quoting::Shell
            ),
            Outcome::Malformed(_)
        ));
    }

    #[test]
    fn single_quotes_and_refusals_are_per_action() {
        let e = engine();
        let ev = b"!system=IFNET subsystem=it's";
        let got = decide(
            &e,
            ev,
            &EventOptions::default(),
            &NoMedia,
            Quoting::SingleQuotes,
        );
        let Outcome::Matched { actions, .. } = got else {
            panic!("{got:?}")
        };
        assert_eq!(actions, vec![Ok(b"up 'it'\\''s'".to_vec())]);
        let nul = b"!system=IFNET subsystem=a\0b";
        let got = decide(&e, nul, &EventOptions::default(), &NoMedia, Quoting::Shell);
        let Outcome::Matched { actions, .. } = got else {
            panic!("{got:?}")
        };
        assert!(actions[0].is_err(), "{actions:?}");
    }
}
