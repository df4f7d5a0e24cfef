//! rc.conf reading: assignment syntax, quoting, expansion, diagnostics.

use hvnet_rcconf::{RcConf, Severity};

fn conf(text: &str) -> RcConf {
    RcConf::from_text("/etc/rc.conf", text)
}

#[test]
fn three_quoting_styles() {
    let c = conf("a=\"x y\"\nb='p q'\nc=bare\n");
    assert_eq!(c.get("a"), Some("x y"));
    assert_eq!(c.get("b"), Some("p q"));
    assert_eq!(c.get("c"), Some("bare"));
    assert!(c.diagnostics().is_empty());
}

#[test]
fn comments_and_blank_lines() {
    let c = conf("# comment\n\n   \na=1 # trailing\n\t# indented\nb=x#notcomment\n");
    assert_eq!(c.get("a"), Some("1"));
    assert_eq!(c.get("b"), Some("x#notcomment"));
    assert!(c.diagnostics().is_empty());
}

#[test]
fn later_assignment_overrides_and_origin_is_last() {
    let c = conf("a=1\nb=2\na=3\n");
    assert_eq!(c.get("a"), Some("3"));
    assert_eq!(c.var("a").unwrap().origin.as_ref().unwrap().line, 3);
}

#[test]
fn empty_is_set_unset_is_none() {
    let c = conf("a=\nb=\"\"\n");
    assert_eq!(c.get("a"), Some(""));
    assert_eq!(c.get("b"), Some(""));
    assert_eq!(c.get("zz"), None);
}

#[test]
fn expansion_in_double_quotes_and_bare_not_single() {
    let c = conf("x=hn0\na=\"if_${x}_y\"\nb=$x.z\nc='$x'\nd=\"$x$x\"\ne=${undefined}\n");
    assert_eq!(c.get("a"), Some("if_hn0_y"));
    assert_eq!(c.get("b"), Some("hn0.z"));
    assert_eq!(c.get("c"), Some("$x"));
    assert_eq!(c.get("d"), Some("hn0hn0"));
    assert_eq!(c.get("e"), Some(""));
}

#[test]
fn expansion_sees_earlier_value_only() {
    let c = conf("a=1\nb=\"$a\"\na=2\n");
    assert_eq!(c.get("b"), Some("1"));
}

#[test]
fn several_assignments_on_one_line_apply_in_order() {
    let c = conf("a=1 b=\"$a$a\"\n");
    assert_eq!(c.get("b"), Some("11"));
}

#[test]
fn backslash_newline_continuation_in_double_quotes() {
    let c = conf("ifconfig_em0_aliases=\"inet 127.0.0.251 netmask 0xffffffff \\\n\tinet 127.0.0.252 netmask 0xffffffff\"\nnext=1\n");
    assert_eq!(
        c.get("ifconfig_em0_aliases"),
        Some("inet 127.0.0.251 netmask 0xffffffff \tinet 127.0.0.252 netmask 0xffffffff")
    );
    assert_eq!(c.var("next").unwrap().origin.as_ref().unwrap().line, 3);
}

#[test]
fn newline_inside_quotes_is_kept() {
    let c = conf("a=\"x\ny\"\nb='p\nq'\n");
    assert_eq!(c.get("a"), Some("x\ny"));
    assert_eq!(c.get("b"), Some("p\nq"));
}

#[test]
fn backslash_escapes() {
    let c = conf(
        r#"a="q\"d\$x\\ \n"
b=x\ y
c='a\b'
"#,
    );
    assert_eq!(c.get("a"), Some(r#"q"d$x\ \n"#));
    assert_eq!(c.get("b"), Some("x y"));
    assert_eq!(c.get("c"), Some(r"a\b"));
}

#[test]
fn parameter_operators() {
    let c = conf(
        "d=/usr/local/etc/rc.d\n\
         a=${d%/rc.d}\n\
         b=${unset:-dflt}\n\
         e=\"${empty:-x}\"\n\
         empty=\n\
         f=${empty-kept}\n\
         g=${empty:-used}\n\
         h=${d:+alt}\n\
         i=${#d}\n\
         : ${k:=2048}\n\
         j=${d##*/}\n",
    );
    assert_eq!(c.get("a"), Some("/usr/local/etc"));
    assert_eq!(c.get("b"), Some("dflt"));
    assert_eq!(c.get("e"), Some("x"));
    assert_eq!(c.get("f"), Some(""));
    assert_eq!(c.get("g"), Some("used"));
    assert_eq!(c.get("h"), Some("alt"));
    assert_eq!(c.get("i"), Some("19"));
    assert_eq!(c.get("k"), Some("2048"));
    assert_eq!(c.get("j"), Some("rc.d"));
    assert!(c.diagnostics().is_empty(), "{:?}", c.diagnostics());
}

fn only_error(c: &RcConf) -> (usize, String) {
    let errs: Vec<_> = c.errors().collect();
    assert_eq!(errs.len(), 1, "{:?}", c.diagnostics());
    (errs[0].line, errs[0].to_string())
}

#[test]
fn command_substitution_is_reported_not_guessed() {
    let c = conf("a=1\nhostname=\"$(hostname -s)\"\nb=`uname`\nc=2\n");
    assert_eq!(c.get("hostname"), None);
    assert_eq!(c.get("b"), None);
    assert_eq!(c.get("c"), Some("2"));
    let errs: Vec<_> = c.errors().collect();
    assert_eq!(errs.len(), 2);
    assert_eq!(errs[0].line, 2);
    assert!(errs[0].to_string().starts_with("/etc/rc.conf:2: "));
    assert!(errs[0].message.contains("command substitution"));
    assert_eq!(errs[1].line, 3);
}

#[test]
fn arithmetic_and_special_parameters_are_reported() {
    let c = conf("a=$((1+2))\nb=$1\nc=${@}\n");
    assert_eq!(c.errors().count(), 3);
    assert_eq!(c.get("a"), None);
}

#[test]
fn conditional_is_skipped_whole_and_reported() {
    let c = conf("a=1\nif [ -f /x ]; then\n  a=2\n  b=3\nfi\nc=4\n");
    assert_eq!(c.get("a"), Some("1"));
    assert_eq!(c.get("b"), None);
    assert_eq!(c.get("c"), Some("4"));
    let (line, msg) = only_error(&c);
    assert_eq!(line, 2);
    assert!(msg.contains("`if`"), "{msg}");
    assert!(msg.contains("lines 2-5"), "{msg}");
}

#[test]
fn nested_and_one_line_compounds_are_skipped() {
    let c = conf(
        "for i in a b; do if x; then y=1; fi; done\n\
         case $x in a) z=1;; *) z=2;; esac\n\
         while true; do\n  case a in\n  b) ;;\n  esac\ndone\nok=1\n",
    );
    assert_eq!(c.get("y"), None);
    assert_eq!(c.get("z"), None);
    assert_eq!(c.get("ok"), Some("1"));
    assert_eq!(c.errors().count(), 3, "{:?}", c.diagnostics());
}

#[test]
fn function_definition_is_a_note() {
    let c = conf("f() {\n  x=1\n}\ng() { y=1; }\na=2\n");
    assert_eq!(c.get("x"), None);
    assert_eq!(c.get("a"), Some("2"));
    assert_eq!(c.errors().count(), 0);
    let notes: Vec<_> = c
        .diagnostics()
        .iter()
        .filter(|d| d.severity == Severity::Note)
        .collect();
    assert_eq!(notes.len(), 2);
    assert!(notes[0].message.contains("f()"));
}

#[test]
fn export_and_commands_are_reported() {
    let c = conf("export a=1\necho hi\na=2 cmd\nb=1 | cat\n");
    assert_eq!(c.get("a"), None);
    assert_eq!(c.get("b"), None);
    let errs: Vec<_> = c.errors().collect();
    assert_eq!(errs.len(), 4);
    assert!(errs[0].message.contains("`export`"));
    assert!(errs[1].message.contains("`echo`"));
    assert!(errs[3].message.contains("`|`"));
}

#[test]
fn unterminated_quote_stops_with_error_at_open_line() {
    let c = conf("a=1\nb=\"open\nc=2\n");
    assert_eq!(c.get("a"), Some("1"));
    assert_eq!(c.get("c"), None);
    let (line, msg) = only_error(&c);
    assert_eq!(line, 2);
    assert!(msg.contains("expected `\"`"), "{msg}");
}

#[test]
fn unterminated_if_is_an_error() {
    let c = conf("a=1\nif true; then\nb=2\n");
    assert_eq!(c.get("a"), Some("1"));
    let (line, _) = only_error(&c);
    assert_eq!(line, 2);
}

#[test]
fn semicolons_separate_assignments() {
    let c = conf("a=1; b=2;c=3\n");
    assert_eq!(c.get("a"), Some("1"));
    assert_eq!(c.get("b"), Some("2"));
    assert_eq!(c.get("c"), Some("3"));
}

#[test]
fn crlf_line_endings_are_tolerated() {
    let c = conf("a=\"1\"\r\nb=2\r\n");
    assert_eq!(c.get("a"), Some("1"));
    assert_eq!(c.get("b"), Some("2"));
}

#[test]
fn checkyesno_values() {
    let c = conf("a=YES\nb=On\nc=1\nd=nO\ne=off\nf=maybe\ng=\" yes\"\n");
    assert!(c.checkyesno("a") && c.checkyesno("b") && c.checkyesno("c"));
    assert_eq!(c.yesno("d"), hvnet_rcconf::YesNo::No);
    assert_eq!(c.yesno("e"), hvnet_rcconf::YesNo::No);
    assert_eq!(c.yesno("f"), hvnet_rcconf::YesNo::Invalid);
    assert_eq!(c.yesno("g"), hvnet_rcconf::YesNo::Invalid);
    assert_eq!(c.yesno("unset"), hvnet_rcconf::YesNo::Invalid);
    assert!(!c.checkyesno("f"));
}

#[test]
fn check_lists_errors_as_file_line() {
    let c = conf("a=$(x)\n");
    let e = c.check().unwrap_err().to_string();
    assert!(e.starts_with("/etc/rc.conf:1: "), "{e}");
    assert!(conf("a=1\n").check().is_ok());
}

#[test]
fn if_on_string_tests_evaluates_without_a_root() {
    let c = conf("v=YES\nif [ \"$v\" = YES ]; then\n  ifconfig_hn0=DHCP\nelse\n  ifconfig_hn0=\"inet 10.0.0.4/24\"\nfi\n");
    assert_eq!(c.get("ifconfig_hn0"), Some("DHCP"));
    assert!(c.diagnostics().is_empty());
    let d = conf(". /etc/other\n");
    assert_eq!(d.errors().count(), 1);
}

#[test]
fn deep_nesting_is_bounded() {
    let deep_param = format!("a={}x{}\n", "${b:-".repeat(500), "}".repeat(500));
    let c = conf(&deep_param);
    assert_eq!(c.get("a"), None);
    assert_eq!(c.errors().count(), 1);
    let deep_if = format!(
        "{}a=1\n{}",
        "if true; then\n".repeat(300),
        "fi\n".repeat(300)
    );
    let c = conf(&deep_if);
    assert_eq!(c.get("a"), None);
    assert!(c.errors().count() >= 1);
    let ok = format!("a={}x{}\n", "${b:-".repeat(10), "}".repeat(10));
    assert_eq!(conf(&ok).get("a"), Some("x"));
}

#[test]
fn tilde_at_value_start_is_reported_but_quoted_or_inner_tilde_is_literal() {
    let c = conf("a=~/x\nb=\"~/x\"\nc=x~y\nd='~'\n");
    assert_eq!(c.get("a"), None);
    assert_eq!(c.get("b"), Some("~/x"));
    assert_eq!(c.get("c"), Some("x~y"));
    assert_eq!(c.get("d"), Some("~"));
    let (line, msg) = only_error(&c);
    assert_eq!(line, 1);
    assert!(msg.contains("tilde"), "{msg}");
}
