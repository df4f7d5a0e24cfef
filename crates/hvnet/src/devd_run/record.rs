//! What `devd run` decides for one devctl record before anything runs: the event line is the
//! record without its trailing newlines; it is parsed, and the first matching rule's actions
//! are expanded with devd's quoting.

use hvnet_devd::{Engine, Event, EventError, EventKind, EventOptions, MediaProbe};

/// The decision for one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Not an event devd would parse; skipped with a warning.
    Malformed(EventError),
    /// No rule matched.
    Unmatched(EventKind),
    /// A rule matched: its expanded actions, in order (none: the event is swallowed).
    Matched {
        kind: EventKind,
        actions: Vec<Vec<u8>>,
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

/// Parse `record` and find what `engine` runs for it.
pub fn decide(
    engine: &Engine,
    record: &[u8],
    opts: &EventOptions,
    media: &dyn MediaProbe,
) -> Outcome {
    let event = match Event::parse_with(event_line(record), opts) {
        Ok(ev) => ev,
        Err(e) => return Outcome::Malformed(e),
    };
    let kind = event.kind();
    match engine.find(&event, media) {
        Some(rule) => Outcome::Matched {
            kind,
            actions: engine.expand_actions(rule, &event),
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
            actions: vec![b"up $'hn0'".to_vec()],
        };
        let e = engine();
        for r in [
            &b"!system=IFNET subsystem=hn0"[..],
            b"!system=IFNET subsystem=hn0\n",
        ] {
            assert_eq!(decide(&e, r, &EventOptions::default(), &NoMedia), want);
        }
        assert_eq!(
            decide(&e, b"!system=DEVFS\n", &EventOptions::default(), &NoMedia),
            Outcome::Unmatched(EventKind::Notify)
        );
        assert!(matches!(
            decide(&e, b"\n", &EventOptions::default(), &NoMedia),
            Outcome::Malformed(_)
        ));
    }
}
