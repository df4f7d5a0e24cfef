//! Property tests: parsers never panic, the indexed engine always agrees with devd's linear
//! scan, and expansion never lets event text reach the shell unquoted.

use hvnet_devd::expand::{expand, Quoting, Template};
use hvnet_devd::{
    Config, Engine, Event, EventOptions, LinearMatcher, LoadOptions, MediaType, NoMedia,
    StaticMedia,
};
use proptest::prelude::*;

fn devd_ish_text() -> impl Strategy<Value = String> {
    let tok = prop_oneof![
        Just("options".to_string()),
        Just("set".into()),
        Just("directory".into()),
        Just("pid-file".into()),
        Just("attach".into()),
        Just("detach".into()),
        Just("nomatch".into()),
        Just("notify".into()),
        Just("match".into()),
        Just("device-name".into()),
        Just("class".into()),
        Just("subdevice".into()),
        Just("media-type".into()),
        Just("action".into()),
        Just("{".into()),
        Just("}".into()),
        Just(";".into()),
        Just("\"".into()),
        Just("\\\n".into()),
        Just("/*".into()),
        Just("*/".into()),
        Just("//".into()),
        Just("#".into()),
        Just("\n".into()),
        Just(" ".into()),
        "[0-9]{1,12}",
        "\"[ -~]{0,12}\"",
        "[a-z_-]{1,6}",
        "\\PC{0,3}",
    ];
    prop::collection::vec(tok, 0..60).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn config_parsing_never_panics(text in devd_ish_text()) {
        let opts = LoadOptions { no_directories: true, ..Default::default() };
        let _ = Config::parse_str("p.conf", &text, &opts);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let opts = LoadOptions { no_directories: true, ..Default::default() };
        let _ = Config::parse_str("p.conf", &String::from_utf8_lossy(&bytes), &opts);
        let _ = hvnet_devd::ere::translate(&bytes);
        for o in [EventOptions::default(), EventOptions { fix_empty_location: true, fix_backslash_quote: true, timestamp: None }] {
            if let Ok(e) = Event::parse_with(&bytes, &o) {
                let _ = e.variables().count();
            }
        }
    }

    #[test]
    fn ere_translation_never_panics_and_compiles_or_errs(p in "[-a-c()|*+?.^$\\[\\]{},0-9:\\\\]{0,16}") {
        let _ = hvnet_devd::ere::compile(format!("^{p}$").as_bytes());
    }
}

// Differential: engine == linear scan -------------------------------------------------------

const VARS: &[&str] = &[
    "system",
    "subsystem",
    "type",
    "cdev",
    "vendor",
    "product",
    "bus",
    "device-name",
    "_",
    "nosuch",
];
const VALUES: &[&str] = &[
    "IFNET", "ifnet", "em0", "hn0", "LINK_UP", "0x05ac", "0x05AC", "0x1290", "uhub0", "pci0", "a",
    "b", "",
];
const PATTERNS: &[&str] = &[
    "IFNET",
    "ifnet",
    "em0",
    "(em0|hn0)",
    "(EM0|x)",
    "0x05ac",
    "0x1290",
    "uhub[0-9]+",
    "LINK_.*",
    "a|b",
    "!em0",
    "!(em0|hn0)",
    "(",
    "!(",
    "()",
    ".*",
    "!.+",
    "$v",
    "!$v",
    "x\\.y",
    "[[:alpha:]]+[0-9]",
    "a",
];

fn rule_strategy() -> impl Strategy<Value = String> {
    let stmt = prop_oneof![
        4 => (prop::sample::select(VARS), prop::sample::select(PATTERNS)).prop_map(|(v, p)| format!("match \"{v}\" \"{p}\";")),
        1 => prop::sample::select(&["ethernet", "802.11", "unknown"][..]).prop_map(|m| format!("media-type \"{m}\";")),
        2 => Just("action \"run $subsystem $*\";".to_string()),
    ];
    (
        prop::sample::select(&["attach", "detach", "nomatch", "notify"][..]),
        0..4i32,
        prop::collection::vec(stmt, 0..5),
    )
        .prop_map(|(k, p, stmts)| format!("{k} {p} {{ {} }};\n", stmts.join(" ")))
}

fn event_strategy() -> impl Strategy<Value = String> {
    let pair = (
        prop::sample::select(&VARS[..8]),
        prop::sample::select(VALUES),
    )
        .prop_map(|(k, v)| {
            if v.is_empty() {
                format!("{k}=\"\"")
            } else {
                format!("{k}={v}")
            }
        });
    let pairs = prop::collection::vec(pair, 0..6).prop_map(|v| v.join(" "));
    (
        prop::sample::select(&["!", "+em0 at ", "-hn0 at ", "? at ", "+em0 at  "][..]),
        pairs,
        prop::sample::select(&["", " on uhub0", " on pci0"][..]),
    )
        .prop_map(|(head, pairs, tail)| format!("{head}{pairs}{tail}"))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn engine_agrees_with_linear_scan(rules in prop::collection::vec(rule_strategy(), 0..25), events in prop::collection::vec(event_strategy(), 1..20)) {
        let text = format!("options {{ set v \"(em0|IFNET)\"; }};\n{}", rules.concat());
        let cfg = Config::parse_str("d.conf", &text, &LoadOptions::default()).unwrap();
        let engine = Engine::new(cfg.clone());
        let linear = LinearMatcher::new(&cfg);
        let mut media = StaticMedia::new();
        media.insert("em0", MediaType::Ethernet);
        for line in &events {
            let e = Event::parse(line).unwrap();
            prop_assert_eq!(engine.decide(&e, &media), linear.decide(&e, &media), "event {}", line);
            prop_assert_eq!(engine.decide(&e, &NoMedia), linear.decide(&e, &NoMedia), "event {}", line);
        }
    }
}

// Quoting: a mini-interpreter of sh's $'…' ------------------------------------------------------

/// Split an expanded action into unquoted text and decoded `$'…'` spans. Fails on any
/// backslash sequence other than `\\` and `\'` (sh would interpret it) and on an
/// unterminated span.
fn interpret(out: &[u8]) -> Result<(Vec<u8>, Vec<Vec<u8>>), String> {
    let mut plain = Vec::new();
    let mut spans = Vec::new();
    let mut i = 0;
    while i < out.len() {
        if out[i..].starts_with(b"$'") {
            i += 2;
            let mut val = Vec::new();
            loop {
                match out.get(i) {
                    None => return Err("unterminated $'".into()),
                    Some(b'\'') => {
                        i += 1;
                        break;
                    }
                    Some(b'\\') => match out.get(i + 1) {
                        Some(&c @ (b'\\' | b'\'')) => {
                            val.push(c);
                            i += 2;
                        }
                        other => return Err(format!("unexpected escape \\{other:?}")),
                    },
                    Some(&c) => {
                        val.push(c);
                        i += 1;
                    }
                }
            }
            spans.push(val);
        } else {
            plain.push(out[i]);
            i += 1;
        }
    }
    Ok((plain, spans))
}

/// Split an expanded action into unquoted text and decoded POSIX single-quoted words, as sh
/// reads them: `'…'` holds every byte up to the next `'`, and a `\'` right after a closing
/// quote is a literal quote that joins the next `'…'` to the same word. Fails on any other
/// backslash and on an unterminated quote.
fn interpret_single(out: &[u8]) -> Result<(Vec<u8>, Vec<Vec<u8>>), String> {
    let mut plain = Vec::new();
    let mut words = Vec::new();
    let mut i = 0;
    while i < out.len() {
        match out[i] {
            b'\'' => {
                let mut word = Vec::new();
                loop {
                    let len = out[i + 1..]
                        .iter()
                        .position(|&b| b == b'\'')
                        .ok_or("unterminated '")?;
                    word.extend_from_slice(&out[i + 1..i + 1 + len]);
                    i += len + 2;
                    if out[i..].starts_with(b"\\''") {
                        word.push(b'\'');
                        i += 2;
                    } else {
                        break;
                    }
                }
                words.push(word);
            }
            b'\\' => return Err(format!("unexpected backslash at {i}")),
            c => {
                plain.push(c);
                i += 1;
            }
        }
    }
    Ok((plain, words))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    /// POSIX single quoting: every value is one word that sh reads back byte for byte, and
    /// the text outside the words is exactly the template's own text. `command` gives the
    /// same bytes, or refuses exactly the values with a NUL.
    #[test]
    fn every_value_is_one_single_quoted_word(
        parts in prop::collection::vec(("[a-z /|;&<>(){}.=-]{0,6}", 0..4usize), 1..6),
        values in prop::collection::vec(
            prop::collection::vec(prop_oneof![3 => any::<u8>(), 1 => Just(b'\''), 1 => Just(b'\\')], 0..20),
            4,
        ),
    ) {
        let names = ["a", "b-c", "d_e", "f9"];
        let mut template = Vec::new();
        let mut literal = Vec::new();
        let mut expected = Vec::new();
        for (text, var) in &parts {
            template.extend_from_slice(text.as_bytes());
            literal.extend_from_slice(text.as_bytes());
            template.push(b'$');
            template.extend_from_slice(names[*var].as_bytes());
            expected.push(values[*var].clone());
            template.push(b' ');
            literal.push(b' ');
        }
        let value_of = |n: &[u8]| {
            let i = names.iter().position(|x| x.as_bytes() == n).expect("known name");
            &values[i][..]
        };
        let out = expand(&template, Some(Quoting::SingleQuotes), value_of);
        let (plain, words) = interpret_single(&out).map_err(|e| TestCaseError::fail(format!("{e} in {:?}", String::from_utf8_lossy(&out))))?;
        prop_assert_eq!(plain, literal);
        prop_assert_eq!(&words, &expected);

        let mut command = Vec::new();
        let checked = Template::parse(&template).command(&mut command, Quoting::SingleQuotes, |_, n| value_of(n));
        if expected.iter().any(|v| v.contains(&0)) {
            prop_assert!(checked.is_err());
            prop_assert!(command.is_empty());
        } else {
            prop_assert_eq!(checked, Ok(()));
            prop_assert_eq!(command, out);
        }
    }

    /// Every inserted value decodes back to exactly the value, and the text outside quoted
    /// spans is exactly the template's own text.
    #[test]
    fn every_value_is_one_quoted_span(
        parts in prop::collection::vec(("[a-z /|;&<>(){}.=-]{0,6}", 0..4usize), 1..6),
        values in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..20), 4),
    ) {
        let names = ["a", "b-c", "d_e", "f9"];
        let mut template = Vec::new();
        let mut literal = Vec::new();
        let mut expected = Vec::new();
        for (text, var) in &parts {
            template.extend_from_slice(text.as_bytes());
            literal.extend_from_slice(text.as_bytes());
            template.push(b'$');
            template.extend_from_slice(names[*var].as_bytes());
            expected.push(values[*var].clone());
            // A separator that cannot continue a variable name.
            template.push(b' ');
            literal.push(b' ');
        }
        let out = expand(&template, Some(Quoting::Shell), |n: &[u8]| {
            let i = names.iter().position(|x| x.as_bytes() == n).expect("known name");
            &values[i][..]
        });
        let (plain, spans) = interpret(&out).map_err(|e| TestCaseError::fail(format!("{e} in {:?}", String::from_utf8_lossy(&out))))?;
        prop_assert_eq!(plain, literal);
        prop_assert_eq!(spans, expected);
    }

    /// The same end to end: values taken from an event line.
    #[test]
    fn event_values_reach_actions_quoted(value in "[ -~]{0,30}") {
        // A quoted event value cannot contain an unescaped quote; use the bare form for the
        // rest and check through the engine.
        let bare: String = value.chars().filter(|c| !c.is_whitespace()).collect();
        let line = format!("!system=X v={bare}");
        let cfg = Config::parse_str("q.conf", "notify 0 { action \"cmd $v; other $*\"; };", &LoadOptions::default()).unwrap();
        let e = Event::parse(&line).unwrap();
        let d = Engine::new(cfg).decide(&e, &NoMedia);
        let (plain, spans) = interpret(d.actions[0].as_bytes()).map_err(TestCaseError::fail)?;
        prop_assert_eq!(plain, b"cmd ; other ".to_vec());
        prop_assert_eq!(&spans[0], &e.get(b"v").unwrap_or(b"").to_vec());
        prop_assert_eq!(&spans[1], &e.get(b"*").unwrap().to_vec());
    }
}

// The index's key shapes: partitions, wildcard literals, literal prefixes ----------------------

/// Patterns that the engine files under a literal set, a wildcard literal (`.` = one byte),
/// a literal prefix, or not at all, with near misses of each among the values. The pools are
/// small so that several rules share a key and the engine indexes it.
const INDEX_PATTERNS: &[&str] = &[
    "ab", "(ab|abc)", "a.c", ".bc", "a\\.c", "ab[0-9]+", "ab*", "abc?", "ab+c", "ab{0,1}", "ab{2}",
    "a\\.b.*", "ab|cd", "!ab.*", "(ab)+", ".*", "abc", "ab\\[", "AB.",
];
const INDEX_VALUES: &[&str] = &[
    "ab", "AB", "abc", "aBc", "a.c", "axc", "xbc", "ab1", "a", "abb", "abbb", "ac", "a.bq", "a.b",
    "cd", "\"\"", "ab12", "ab[", "abx",
];

fn indexed_rule_strategy() -> impl Strategy<Value = String> {
    let system = prop::sample::select(&["s1", "s2", "S3", "(s1|s2)", "s1.*"][..])
        .prop_map(|s| format!("match \"system\" \"{s}\";"));
    let other = (
        prop::sample::select(&["type", "cdev"][..]),
        prop::sample::select(INDEX_PATTERNS),
    )
        .prop_map(|(v, p)| format!("match \"{v}\" \"{p}\";"));
    (
        0..3i32,
        prop::option::weighted(0.9, system),
        prop::collection::vec(other, 0..3),
        prop::bool::weighted(0.9),
    )
        .prop_map(|(p, sys, others, act)| {
            let action = if act { "action \"run $type\";" } else { "" };
            format!(
                "notify {p} {{ {} {} {action} }};\n",
                sys.unwrap_or_default(),
                others.join(" ")
            )
        })
}

fn indexed_event_strategy() -> impl Strategy<Value = String> {
    (
        prop::sample::select(&["s1", "s2", "s3", "s4"][..]),
        prop::sample::select(INDEX_VALUES),
        prop::sample::select(INDEX_VALUES),
    )
        .prop_map(|(sys, t, c)| format!("!system={sys} type={t} cdev={c}"))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Enough rules on a shared `system` key for the engine to partition by it, with
    /// patterns of every shape the index understands: the engine still picks devd's rule.
    #[test]
    fn partitioned_index_agrees_with_linear_scan(
        rules in prop::collection::vec(indexed_rule_strategy(), 10..60),
        events in prop::collection::vec(indexed_event_strategy(), 1..40),
    ) {
        let cfg = Config::parse_str("i.conf", &rules.concat(), &LoadOptions::default()).unwrap();
        let engine = Engine::new(cfg.clone());
        let linear = LinearMatcher::new(&cfg);
        for line in &events {
            let e = Event::parse(line).unwrap();
            prop_assert_eq!(engine.decide(&e, &NoMedia), linear.decide(&e, &NoMedia), "event {}", line);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// An action parsed once ([`Template`]) expands to exactly what devd's scan of the action
    /// gives, for any mix of `$$`, `$(…)`, names, a lone `$` and text, in both quoting modes.
    #[test]
    fn parsed_templates_expand_like_the_scan(t in "[$()a-c*_ \\-x]{0,24}", legacy in any::<bool>()) {
        let lookup = |n: &[u8]| -> &'static [u8] {
            match n {
                b"a" => b"it's",
                b"b" => b"",
                b"*" => b"\\x",
                _ => b"v-v",
            }
        };
        let quoting = if legacy { None } else { Some(Quoting::Shell) };
        let scanned = expand(t.as_bytes(), quoting, lookup);
        let mut parsed = Vec::new();
        Template::parse(t.as_bytes()).expand_into(&mut parsed, quoting, lookup);
        prop_assert_eq!(parsed, scanned);
    }
}
