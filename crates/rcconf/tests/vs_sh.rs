//! Differential test: random assignment-only files evaluated by this
//! crate and by the system's /bin/sh must give the same variables.
//! Skipped (passes trivially) when /bin/sh is missing.

use std::io::Write;
use std::process::Command;

use hvnet_rcconf::RcConf;
use proptest::prelude::*;

const UNSET: &str = "\u{1}UNSET";

fn sh_eval(text: &str) -> Option<Vec<String>> {
    if !std::path::Path::new("/bin/sh").exists() {
        return None;
    }
    let mut f = tempfile::NamedTempFile::new().ok()?;
    f.write_all(text.as_bytes()).ok()?;
    let out = Command::new("/bin/sh")
        .arg("-c")
        .arg(format!(
            ". \"$1\"; printf '%s\\0' \"${{a-{UNSET}}}\" \"${{b-{UNSET}}}\" \"${{c-{UNSET}}}\""
        ))
        .arg("sh")
        .arg(f.path())
        .env_clear()
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?;
    Some(s.split('\0').take(3).map(str::to_string).collect())
}

fn ours(text: &str) -> Vec<String> {
    let c = RcConf::from_text("f", text);
    assert!(c.diagnostics().is_empty(), "{:?}\n{text}", c.diagnostics());
    ["a", "b", "c"]
        .iter()
        .map(|n| c.get(n).unwrap_or(UNSET).to_string())
        .collect()
}

fn dq_piece() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9 .:/-]{0,5}",
        Just("$a".to_string()),
        Just("${b}".to_string()),
        Just("${c:-x y}".to_string()),
        Just("${a-}".to_string()),
        Just("${b:+alt}".to_string()),
        Just("${a%.*}".to_string()),
        Just("${b##*/}".to_string()),
        Just("\\$".to_string()),
        Just("\\\"".to_string()),
        Just("\\\\".to_string()),
        Just("\\n".to_string()),
        Just("\\\n".to_string()),
        Just("\n".to_string()),
        Just("'".to_string()),
        Just("#".to_string()),
    ]
}

fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z0-9_./:,-]{1,6}",
        proptest::collection::vec(dq_piece(), 0..5).prop_map(|v| format!("\"{}\"", v.concat())),
        "[a-z $\"\\\\\n]{0,6}".prop_map(|s| format!("'{s}'")),
        Just("$a".to_string()),
        Just("${b:-w}".to_string()),
        Just("${c%/*}".to_string()),
        Just("\\ ".to_string()),
    ]
}

fn line() -> impl Strategy<Value = String> {
    (
        prop_oneof![Just("a"), Just("b"), Just("c")],
        proptest::collection::vec(segment(), 0..4),
        prop_oneof![Just(""), Just(" # note"), Just(";")],
    )
        .prop_map(|(n, segs, tail)| format!("{n}={}{tail}\n", segs.concat()))
}

/// A generated line without its newline, comment or `;` (for one-line ifs).
fn bare(l: &str) -> String {
    let l = l.strip_suffix('\n').unwrap_or(l);
    let l = l.strip_suffix(" # note").unwrap_or(l);
    l.strip_suffix(';').unwrap_or(l).to_string()
}

fn condition() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("[ -z \"$a\" ]".to_string()),
        Just("[ -n \"$b\" ]".to_string()),
        Just("[ \"$a\" = \"$b\" ]".to_string()),
        Just("[ \"$c\" != x ]".to_string()),
        Just("test -z \"$c\"".to_string()),
        Just("[ ! -n \"$a\" ]".to_string()),
        Just("! [ \"$b\" = x ]".to_string()),
    ]
}

fn statement() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => line(),
        1 => (condition(), line(), proptest::option::of(line()), any::<bool>()).prop_map(
            |(c, then, els, one_line)| match (els, one_line) {
                (Some(e), false) => format!("if {c}\nthen\n  {then}else\n  {e}fi\n"),
                (Some(e), true) => format!("if {c}; then {}; else {}; fi\n", bare(&then), bare(&e)),
                (None, _) => format!("if {c}; then\n\t{then}fi\n"),
            }
        ),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]
    #[test]
    fn assignments_match_bin_sh(lines in proptest::collection::vec(statement(), 1..6)) {
        let text = lines.concat();
        let got = sh_eval(&text);
        let have_sh = std::path::Path::new("/bin/sh").exists();
        prop_assert!(got.is_some() || !have_sh, "sh failed on {}", text);
        if let Some(expected) = got {
            prop_assert_eq!(ours(&text), expected, "{}", text);
        }
    }
}

#[test]
fn harness_really_runs_sh() {
    if !std::path::Path::new("/bin/sh").exists() {
        return;
    }
    assert_eq!(sh_eval("a=1\nb=\"x\\\ny\"\n").unwrap(), ["1", "xy", UNSET]);
}
