//! A compiled `match` pattern for the indexed engine: a small, fully built DFA where one fits,
//! the `regex` crate otherwise.
//!
//! devd's patterns are short (`ums[0-9]+`, ` +at +on .*`) and tested against values that fail
//! within a few bytes, so most of a `regex` call is its set-up (choosing a strategy, borrowing
//! a cache). A dense DFA built once at load time answers with a table walk. Both come from the
//! same translated pattern with the same syntax options, so they accept the same values; the
//! differential tests (engine == linear scan with the `regex` crate) hold that up.

use regex_automata::dfa::{dense, Automaton, StartKind};
use regex_automata::util::primitives::StateID;
use regex_automata::util::{start, syntax};
use regex_automata::Anchored;

use crate::ere::{self, EreError};

/// A DFA larger than this is not kept: the pattern falls back to the `regex` crate, which
/// builds its automaton lazily (keeps the engine small for unusual patterns).
const DFA_SIZE_LIMIT: usize = 16 * 1024;

/// One compiled pattern (the translation of devd's `^…$` form).
// Always behind an `Arc`, and the DFA is the usual variant: boxing it would only add a
// pointer to follow on every match.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(crate) enum Pattern {
    Dfa {
        dfa: dense::DFA<Vec<u32>>,
        /// The state a value is read from. A value is always searched from its own start,
        /// so the start state is fixed at build time. When every branch starts with `^` it is
        /// the anchored one: the walk stops as soon as the value can no longer match from its
        /// start instead of scanning all of it.
        start: StateID,
    },
    Regex(regex::bytes::Regex),
}

/// The syntax options of [`ere::compile_translated`]: byte-wise, case-insensitive, `.`
/// matching every byte.
fn syntax_config() -> syntax::Config {
    syntax::Config::new()
        .unicode(false)
        .utf8(false)
        .case_insensitive(true)
        .dot_matches_new_line(true)
}

/// Whether every match must begin at the start of the value.
fn anchored_at_start(translated: &str) -> bool {
    regex_syntax::ParserBuilder::new()
        .unicode(false)
        .utf8(false)
        .case_insensitive(true)
        .dot_matches_new_line(true)
        .build()
        .parse(translated)
        .is_ok_and(|hir| {
            hir.properties()
                .look_set_prefix()
                .contains(regex_syntax::hir::Look::Start)
        })
}

fn build_dfa(translated: &str, anchored: bool) -> Option<dense::DFA<Vec<u32>>> {
    let start = if anchored {
        StartKind::Anchored
    } else {
        StartKind::Unanchored
    };
    dense::Builder::new()
        .syntax(syntax_config())
        .thompson(regex_automata::nfa::thompson::Config::new().utf8(false))
        .configure(
            dense::DFA::config()
                .start_kind(start)
                .dfa_size_limit(Some(DFA_SIZE_LIMIT))
                .determinize_size_limit(Some(4 * DFA_SIZE_LIMIT)),
        )
        .build(translated)
        .ok()
}

impl Pattern {
    /// Compile a translated pattern. Fails exactly when [`ere::compile_translated`] does.
    pub(crate) fn new(translated: &str) -> Result<Pattern, EreError> {
        let regex = ere::compile_translated(translated)?;
        let anchored = anchored_at_start(translated);
        let mode = if anchored {
            Anchored::Yes
        } else {
            Anchored::No
        };
        let dfa = build_dfa(translated, anchored).and_then(|dfa| {
            // No look-behind: the state for the start of a haystack.
            let start = dfa.start_state(&start::Config::new().anchored(mode)).ok()?;
            Some((dfa, start))
        });
        Ok(match dfa {
            Some((dfa, start)) => Pattern::Dfa { dfa, start },
            None => Pattern::Regex(regex),
        })
    }

    /// Whether `value` matches.
    #[inline]
    pub(crate) fn is_match(&self, value: &[u8]) -> bool {
        match self {
            Pattern::Dfa { dfa, start } => {
                // The table walk of an earliest search, without its per-call set-up. Matches
                // are reported one byte late, so a match state means some prefix matched.
                // No quit bytes are configured (no Unicode word boundaries).
                let mut state = *start;
                for &b in value {
                    state = dfa.next_state(state, b);
                    if dfa.is_special_state(state) {
                        if dfa.is_match_state(state) {
                            return true;
                        }
                        if dfa.is_dead_state(state) {
                            return false;
                        }
                    }
                }
                dfa.is_match_state(dfa.next_eoi_state(state))
            }
            Pattern::Regex(r) => r.is_match(value),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compiled(ere: &str) -> (Pattern, regex::bytes::Regex) {
        let t = ere::translate(ere.as_bytes()).unwrap();
        (
            Pattern::new(&t).unwrap(),
            ere::compile_translated(&t).unwrap(),
        )
    }

    #[test]
    fn dfa_agrees_with_the_regex_crate_on_devd_shapes() {
        let values = [
            "",
            "ums0",
            "UMS12",
            "ums",
            "xums0",
            "ums0x",
            " at on x",
            "  at  on ",
            "a",
            "b",
            "ab",
            "xb",
            "ax",
            "acpi0",
            "é",
            "\u{ff}",
            "line\nbreak",
            "word a",
            "a word",
        ];
        for ere in [
            "^ums[0-9]+$",
            "^ +at +on .*$",
            "^a|b$",
            "^(a|b)$",
            "^acpi[0-9]+$",
            "^[[:<:]]a.*$",
            "^.*[[:>:]]$",
            "^.*$",
            "^line.break$",
            "^$",
        ] {
            let (p, r) = compiled(ere);
            assert!(matches!(p, Pattern::Dfa { .. }), "{ere} kept a DFA");
            for v in values {
                assert_eq!(
                    p.is_match(v.as_bytes()),
                    r.is_match(v.as_bytes()),
                    "{ere} on {v:?}"
                );
            }
        }
    }

    #[test]
    fn unanchored_alternation_keeps_devd_meaning() {
        // `^a|b$`: starts with a, or ends with b.
        let (p, _) = compiled("^a|b$");
        assert!(matches!(p, Pattern::Dfa { .. }));
        assert!(!anchored_at_start(&ere::translate(b"^a|b$").unwrap()));
        assert!(p.is_match(b"axx"));
        assert!(p.is_match(b"xxb"));
        assert!(!p.is_match(b"xbx"));
    }

    #[test]
    fn patterns_too_large_for_a_dfa_use_the_regex_crate() {
        let (p, _) = compiled("^(a|b)*a(a|b){12}$");
        assert!(matches!(p, Pattern::Regex(_)));
        assert!(p.is_match(b"baaaaaaaaaaaaa"));
        assert!(!p.is_match(b"bbbbbbbbbbbbbb"));
    }

    proptest::proptest! {
        /// The table walk accepts exactly what the `regex` crate accepts, for patterns with
        /// anchors, alternation, classes and word boundaries in any position.
        #[test]
        fn dfa_walk_agrees_with_the_regex_crate(
            ere in "[-ab. ^$|()*+?]{0,10}|\\[\\[:<:]\\]a[ab]*|[ab]*\\[\\[:>:]\\]",
            values in proptest::collection::vec("[-ab \n\\xff]{0,8}", 1..12),
        ) {
            let Ok(t) = ere::translate(ere.as_bytes()) else { return Ok(()) };
            let Ok(p) = Pattern::new(&t) else { return Ok(()) };
            let r = ere::compile_translated(&t).unwrap();
            for v in &values {
                proptest::prop_assert_eq!(p.is_match(v.as_bytes()), r.is_match(v.as_bytes()), "{} on {:?}", ere, v);
            }
        }
    }
}
