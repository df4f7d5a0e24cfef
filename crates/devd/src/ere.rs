//! POSIX extended regular expressions (FreeBSD libc `regcomp`, spec §2.1) translated to the
//! syntax of the `regex` crate.
//!
//! The translator parses the ERE with the same rules as libc (no GNU extensions, since devd
//! uses libc's strict parser) and emits an equivalent `regex` pattern, or the error libc would
//! report. Differences it takes care of:
//! * `\c` outside brackets always means the literal `c` (`\d` is a `d`, not a digit);
//! * inside brackets `\` is an ordinary character, `]` first is literal, `[:class:]`,
//!   `[.c.]` and `[=c=]` are understood, `[[:<:]]`/`[[:>:]]` are word boundaries;
//! * `{` is a bound only when a digit follows; otherwise it is a literal;
//! * empty branches (`a|`, `(|a)`), a repetition at the start or after `^`, and a
//!   repetition of a repetition are errors;
//! * every byte is emitted as a hex escape, and the result is meant to be compiled as a
//!   byte regex without Unicode, so matching is byte-wise like the C locale.

use std::fmt::Write;

/// Why libc's `regcomp` would reject a pattern (the names follow `regerror`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EreError {
    #[error("unmatched parenthesis (REG_EPAREN)")]
    Paren,
    #[error("unmatched '[' (REG_EBRACK)")]
    Bracket,
    #[error("invalid range in bracket expression (REG_ERANGE)")]
    Range,
    #[error("invalid character class (REG_ECTYPE)")]
    CharClass,
    #[error("invalid collating element (REG_ECOLLATE)")]
    Collate,
    #[error("trailing backslash (REG_EESCAPE)")]
    Escape,
    #[error("repetition operator without operand (REG_BADRPT)")]
    BadRepeat,
    #[error("invalid repetition count (REG_BADBR)")]
    BadBound,
    #[error("unmatched '{{' (REG_EBRACE)")]
    Brace,
    #[error("empty (sub)expression (REG_EMPTY)")]
    Empty,
    #[error("rejected by the regex engine: {0}")]
    Engine(String),
}

/// Largest repetition count libc accepts (`RE_DUP_MAX`).
const DUP_MAX: u32 = 255;

const CLASSES: &[&str] = &[
    "alnum", "alpha", "blank", "cntrl", "digit", "graph", "lower", "print", "punct", "space",
    "upper", "xdigit",
];

/// Translate an ERE into `regex`-crate syntax (to be compiled with Unicode off,
/// case-insensitive, `.` matching newline).
pub fn translate(ere: &[u8]) -> Result<String, EreError> {
    let mut p = Parser {
        s: ere,
        i: 0,
        out: String::with_capacity(ere.len() * 4),
    };
    p.alternation(None)?;
    Ok(p.out)
}

/// Compile a pattern as devd does: ERE, case-insensitive, byte-wise.
pub fn compile(ere: &[u8]) -> Result<regex::bytes::Regex, EreError> {
    let translated = translate(ere)?;
    compile_translated(&translated)
}

/// Compile an already translated pattern.
pub fn compile_translated(translated: &str) -> Result<regex::bytes::Regex, EreError> {
    regex::bytes::RegexBuilder::new(translated)
        .unicode(false)
        .case_insensitive(true)
        .dot_matches_new_line(true)
        .build()
        .map_err(|e| EreError::Engine(e.to_string()))
}

/// Characters with a meaning in an ERE outside brackets (a `{` not followed by a digit is
/// literal to libc, but the recognisers below treat it as an operator to stay on the safe side).
fn is_operator(c: u8) -> bool {
    matches!(
        c,
        b'.' | b'[' | b']' | b'(' | b')' | b'*' | b'+' | b'?' | b'{' | b'}' | b'|' | b'^' | b'$'
    )
}

/// One unit of a pattern as the literal recognisers read it.
enum Atom {
    /// A character that stands for itself (lowercased); a backslash escape counts as the
    /// escaped character.
    Literal(u8),
    /// An unescaped operator character.
    Operator(u8),
}

/// The atom at `pattern[i]` and its length in bytes; `None` for a trailing lone backslash.
fn atom_at(pattern: &[u8], i: usize) -> Option<(Atom, usize)> {
    match pattern[i] {
        b'\\' => Some((Atom::Literal(pattern.get(i + 1)?.to_ascii_lowercase()), 2)),
        c if is_operator(c) => Some((Atom::Operator(c), 1)),
        c => Some((Atom::Literal(c.to_ascii_lowercase()), 1)),
    }
}

/// If `pattern` (the part between devd's `^` and `$`) can only match one of a fixed set of
/// strings, return them lowercased: a plain literal, or a parenthesised alternation of
/// non-empty literals. Backslash escapes count as the escaped character.
pub fn literal_alternatives(pattern: &[u8]) -> Option<Vec<Vec<u8>>> {
    fn literal_run(s: &[u8], allow_bar: bool) -> Option<Vec<Vec<u8>>> {
        let mut alts = vec![Vec::new()];
        let mut i = 0;
        while i < s.len() {
            let (atom, len) = atom_at(s, i)?;
            match atom {
                Atom::Operator(b'|') if allow_bar => alts.push(Vec::new()),
                Atom::Operator(_) => return None,
                Atom::Literal(c) => alts.last_mut()?.push(c),
            }
            i += len;
        }
        Some(alts)
    }
    if pattern.len() >= 2 && pattern[0] == b'(' && pattern[pattern.len() - 1] == b')' {
        let alts = literal_run(&pattern[1..pattern.len() - 1], true)?;
        // An empty branch is a compile error in libc: not a literal set.
        if alts.iter().any(|a| a.is_empty()) {
            return None;
        }
        let mut alts = alts;
        alts.sort();
        alts.dedup();
        Some(alts)
    } else {
        literal_run(pattern, false)
    }
}

/// A pattern of literal characters and unescaped `.` (any one byte), like
/// `ereport.fs.zfs.checksum`: it matches exactly the values of its length that agree with it,
/// case-insensitively, everywhere but at the wildcards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WildcardLiteral {
    /// The pattern lowercased, with `.` at each wildcard position.
    pub text: Vec<u8>,
    /// Positions of the wildcards, ascending (never empty).
    pub wildcards: Vec<u16>,
}

impl WildcardLiteral {
    /// Whether `value` matches: the same length, and equal (ASCII case-insensitively) at
    /// every position that is not a wildcard.
    pub fn matches(&self, value: &[u8]) -> bool {
        if value.len() != self.text.len() {
            return false;
        }
        // Compare the literal runs between the wildcards.
        let mut start = 0;
        for &w in &self.wildcards {
            let w = usize::from(w);
            if !crate::casefold::eq_lower(&self.text[start..w], &value[start..w]) {
                return false;
            }
            start = w + 1;
        }
        crate::casefold::eq_lower(&self.text[start..], &value[start..])
    }

    /// Write into `key` what a value must equal for the pattern to match it: the value
    /// lowercased with `.` at the wildcard positions. `false` when the value is shorter than
    /// the last wildcard (so it cannot match any pattern with these wildcards).
    pub fn key_of(wildcards: &[u16], value: &[u8], key: &mut [u8]) -> bool {
        if wildcards
            .last()
            .is_some_and(|&w| usize::from(w) >= value.len())
        {
            return false;
        }
        crate::casefold::lower_into(value, &mut key[..value.len()]);
        for &w in wildcards {
            key[usize::from(w)] = b'.';
        }
        true
    }
}

/// Recognise a [`WildcardLiteral`] in `pattern` (the part between devd's `^` and `$`): only
/// literal characters, backslash escapes (the escaped character) and at least one unescaped
/// `.`; no alternation, bracket, group, repetition or anchor.
pub fn wildcard_literal(pattern: &[u8]) -> Option<WildcardLiteral> {
    let mut text = Vec::with_capacity(pattern.len());
    let mut wildcards = Vec::new();
    let mut i = 0;
    while i < pattern.len() {
        let (atom, len) = atom_at(pattern, i)?;
        match atom {
            Atom::Operator(b'.') => {
                wildcards.push(u16::try_from(text.len()).ok()?);
                text.push(b'.');
            }
            Atom::Operator(_) => return None,
            Atom::Literal(c) => text.push(c),
        }
        i += len;
    }
    (!wildcards.is_empty()).then_some(WildcardLiteral { text, wildcards })
}

/// The literal text every value matching `pattern` (the part between devd's `^` and `$`)
/// must start with, lowercased: the literal characters before the first operator, without
/// the last one when a repetition that allows zero follows it. `None` when there is no such
/// text or the pattern has a `|` anywhere (a top-level `a|b` is not anchored at both ends).
pub fn literal_prefix(pattern: &[u8]) -> Option<Vec<u8>> {
    if pattern.contains(&b'|') {
        return None;
    }
    let mut out = Vec::new();
    let mut i = 0;
    while i < pattern.len() {
        match atom_at(pattern, i)? {
            (Atom::Operator(_), _) => break,
            (Atom::Literal(c), len) => {
                out.push(c);
                i += len;
            }
        }
    }
    if matches!(pattern.get(i), Some(b'*' | b'?' | b'{')) {
        out.pop();
    }
    (!out.is_empty()).then_some(out)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    out: String,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn peek2(&self) -> Option<u8> {
        self.s.get(self.i + 1).copied()
    }

    fn lit(&mut self, b: u8) {
        let _ = write!(self.out, "\\x{b:02X}");
    }

    /// branch ('|' branch)*, up to `stop` (')' inside a group) or the end.
    fn alternation(&mut self, stop: Option<u8>) -> Result<(), EreError> {
        loop {
            let start = self.i;
            while let Some(c) = self.peek() {
                if c == b'|' || Some(c) == stop {
                    break;
                }
                self.expression()?;
            }
            if self.i == start {
                return Err(EreError::Empty);
            }
            if self.peek() == Some(b'|') {
                self.i += 1;
                self.out.push('|');
            } else {
                return Ok(());
            }
        }
    }

    /// One atom and at most one repetition operator.
    fn expression(&mut self) -> Result<(), EreError> {
        let c = self.peek().ok_or(EreError::Empty)?;
        self.i += 1;
        let atom_start = self.out.len();
        let mut was_caret = false;
        match c {
            b'(' => {
                if self.peek().is_none() {
                    return Err(EreError::Paren);
                }
                self.out.push_str("(?:");
                if self.peek() != Some(b')') {
                    self.alternation(Some(b')'))?;
                }
                if self.peek() != Some(b')') {
                    return Err(EreError::Paren);
                }
                self.i += 1;
                self.out.push(')');
            }
            b')' => return Err(EreError::Paren),
            b'^' => {
                self.out.push('^');
                was_caret = true;
            }
            b'$' => self.out.push('$'),
            b'|' => return Err(EreError::Empty),
            b'*' | b'+' | b'?' => return Err(EreError::BadRepeat),
            b'{' => {
                if self.peek().is_some_and(|d| d.is_ascii_digit()) {
                    return Err(EreError::BadRepeat);
                }
                self.lit(b'{');
            }
            b'.' => self.out.push('.'),
            b'[' => self.bracket()?,
            b'\\' => {
                let next = self.peek().ok_or(EreError::Escape)?;
                self.i += 1;
                self.lit(next);
            }
            other => self.lit(other),
        }
        let Some(c) = self.peek() else { return Ok(()) };
        let is_bound = c == b'{' && self.peek2().is_some_and(|d| d.is_ascii_digit());
        if !(c == b'*' || c == b'+' || c == b'?' || is_bound) {
            return Ok(());
        }
        if was_caret {
            return Err(EreError::BadRepeat);
        }
        self.i += 1;
        // Wrap the atom so that the operator applies to all of it (anchors, classes, groups).
        self.out.insert_str(atom_start, "(?:");
        self.out.push(')');
        match c {
            b'*' | b'+' | b'?' => self.out.push(c as char),
            _ => {
                let min = self.count()?;
                let max = if self.peek() == Some(b',') {
                    self.i += 1;
                    if self.peek().is_some_and(|d| d.is_ascii_digit()) {
                        let max = self.count()?;
                        if min > max {
                            return Err(EreError::BadBound);
                        }
                        Some(max)
                    } else {
                        None
                    }
                } else {
                    Some(min)
                };
                if self.peek() != Some(b'}') {
                    while self.peek().is_some_and(|b| b != b'}') {
                        self.i += 1;
                    }
                    return Err(if self.peek().is_none() {
                        EreError::Brace
                    } else {
                        EreError::BadBound
                    });
                }
                self.i += 1;
                let _ = match max {
                    Some(max) if max == min => write!(self.out, "{{{min}}}"),
                    Some(max) => write!(self.out, "{{{min},{max}}}"),
                    None => write!(self.out, "{{{min},}}"),
                };
            }
        }
        let Some(c) = self.peek() else { return Ok(()) };
        let is_bound = c == b'{' && self.peek2().is_some_and(|d| d.is_ascii_digit());
        if c == b'*' || c == b'+' || c == b'?' || is_bound {
            return Err(EreError::BadRepeat);
        }
        Ok(())
    }

    fn count(&mut self) -> Result<u32, EreError> {
        let mut n: u32 = 0;
        let mut digits = 0;
        while let Some(d) = self.peek().filter(|d| d.is_ascii_digit()) {
            if n > DUP_MAX {
                break;
            }
            n = n * 10 + u32::from(d - b'0');
            digits += 1;
            self.i += 1;
        }
        if digits == 0 || n > DUP_MAX {
            return Err(EreError::BadBound);
        }
        Ok(n)
    }

    /// A bracket expression; the opening `[` has been consumed.
    fn bracket(&mut self) -> Result<(), EreError> {
        let rest = &self.s[self.i..];
        if rest.starts_with(b"[:<:]]") {
            self.i += 6;
            self.out.push_str(r"\b{start}");
            return Ok(());
        }
        if rest.starts_with(b"[:>:]]") {
            self.i += 6;
            self.out.push_str(r"\b{end}");
            return Ok(());
        }
        let mut class = String::from("[");
        if self.peek() == Some(b'^') {
            self.i += 1;
            class.push('^');
        }
        let mut items = 0;
        if self.peek() == Some(b']') {
            self.i += 1;
            push_byte(&mut class, b']');
            items += 1;
        } else if self.peek() == Some(b'-') {
            self.i += 1;
            push_byte(&mut class, b'-');
            items += 1;
        }
        while let Some(c) = self.peek() {
            if c == b']' || (c == b'-' && self.peek2() == Some(b']')) {
                break;
            }
            self.bracket_term(&mut class)?;
            items += 1;
        }
        if self.peek() == Some(b'-') {
            self.i += 1;
            push_byte(&mut class, b'-');
            items += 1;
        }
        if self.peek() != Some(b']') {
            return Err(EreError::Bracket);
        }
        self.i += 1;
        debug_assert!(items > 0);
        class.push(']');
        self.out.push_str(&class);
        Ok(())
    }

    fn bracket_term(&mut self, class: &mut String) -> Result<(), EreError> {
        let c = self.peek().ok_or(EreError::Bracket)?;
        if c == b'-' {
            return Err(EreError::Range);
        }
        if c == b'[' && self.peek2() == Some(b':') {
            self.i += 2;
            let c = self.peek().ok_or(EreError::Bracket)?;
            if c == b'-' || c == b']' {
                return Err(EreError::CharClass);
            }
            let start = self.i;
            while self.peek().is_some_and(|b| b.is_ascii_alphabetic()) {
                self.i += 1;
            }
            let name = &self.s[start..self.i];
            let name = std::str::from_utf8(name).map_err(|_| EreError::CharClass)?;
            if !CLASSES.contains(&name) {
                return Err(EreError::CharClass);
            }
            if self.peek().is_none() {
                return Err(EreError::Bracket);
            }
            if self.peek() != Some(b':') || self.peek2() != Some(b']') {
                return Err(EreError::CharClass);
            }
            self.i += 2;
            let _ = write!(class, "[:{name}:]");
            return Ok(());
        }
        if c == b'[' && self.peek2() == Some(b'=') {
            self.i += 2;
            let c = self.peek().ok_or(EreError::Bracket)?;
            if c == b'-' || c == b']' {
                return Err(EreError::Collate);
            }
            let b = self.collating_element(b'=')?;
            push_byte(class, b);
            return Ok(());
        }
        let start = self.symbol()?;
        let finish = if self.peek() == Some(b'-') && self.peek2().is_some_and(|b| b != b']') {
            self.i += 1;
            if self.peek() == Some(b'-') {
                self.i += 1;
                b'-'
            } else {
                self.symbol()?
            }
        } else {
            start
        };
        if start > finish {
            return Err(EreError::Range);
        }
        push_byte(class, start);
        if finish != start {
            class.push('-');
            push_byte(class, finish);
        }
        Ok(())
    }

    /// An ordinary character or a `[.c.]` collating symbol.
    fn symbol(&mut self) -> Result<u8, EreError> {
        if self.peek() == Some(b'[') && self.peek2() == Some(b'.') {
            self.i += 2;
            return self.collating_element(b'.');
        }
        let c = self.peek().ok_or(EreError::Bracket)?;
        self.i += 1;
        Ok(c)
    }

    /// The body of `[.x.]` / `[=x=]` after the opening two characters: a single character.
    /// (Multi-character names such as `[.hyphen.]` are not supported and fail to compile.)
    fn collating_element(&mut self, delim: u8) -> Result<u8, EreError> {
        let c = self.peek().ok_or(EreError::Bracket)?;
        self.i += 1;
        if self.peek() == Some(delim) && self.peek2() == Some(b']') {
            self.i += 2;
            Ok(c)
        } else if self.peek().is_none() {
            Err(EreError::Bracket)
        } else {
            Err(EreError::Collate)
        }
    }
}

fn push_byte(class: &mut String, b: u8) {
    let _ = write!(class, "\\x{b:02X}");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, value: &str) -> bool {
        let full = format!("^{pattern}$");
        compile(full.as_bytes()).unwrap().is_match(value.as_bytes())
    }

    fn err(pattern: &str) -> EreError {
        compile(format!("^{pattern}$").as_bytes()).unwrap_err()
    }

    #[test]
    fn corpus_shapes() {
        assert!(m("uhub[0-9]+", "uhub12"));
        assert!(!m("uhub[0-9]+", "uhub"));
        assert!(m(
            "ereport.fs.zfs.vdev\\..*",
            "ereport.fs.zfs.vdev.bad_label"
        ));
        assert!(!m("ereport.fs.zfs.vdev\\..*", "ereport.fs.zfs.vdevXbad"));
        assert!(m("(ath|iwn)[0-9]+", "IWN0"));
        assert!(m(" +at +on .*", "  at  on acpi0"));
    }

    #[test]
    fn case_insensitive_ascii_only() {
        assert!(m("ifnet", "IFNET"));
        assert!(m("[a-c]", "B"));
        assert!(!m("[^a]", "A"));
        assert!(!m("\u{e9}", "\u{c9}")); // é vs É: C locale, no folding beyond ASCII
    }

    #[test]
    fn unparenthesised_alternation_keeps_anchor_split() {
        // ^a|b$ : starts with a, or ends with b
        assert!(m("a|b", "axxx"));
        assert!(m("a|b", "xxxb"));
        assert!(!m("a|b", "xax"));
    }

    #[test]
    fn backslash_is_literal_outside_brackets() {
        assert!(m("\\d", "d"));
        assert!(!m("\\d", "1"));
        assert!(m("\\w", "w"));
        assert!(m("a\\+", "a+"));
        // devd appends `$` after the pattern, so a trailing backslash escapes it.
        assert!(m("a\\", "a$"));
        assert_eq!(compile(b"a\\").unwrap_err(), EreError::Escape);
    }

    #[test]
    fn bracket_expressions() {
        assert!(m("[]a]", "]"));
        assert!(m("[^]a]", "b"));
        assert!(!m("[^]a]", "]"));
        assert!(m("[a-]", "-"));
        assert!(m("[-a]", "-"));
        assert!(m("[\\]", "\\"));
        assert!(m("[[:alpha:]]+", "AbC"));
        assert!(m("[[:digit:][:space:]]+", "1 2"));
        assert!(m("[[.-.]]", "-"));
        assert!(m("[[=a=]]", "A"));
        assert!(m("[.]", "."));
        assert!(!m("[.]", "x"));
        assert!(m("[^a]", "\n"));
        assert_eq!(err("[[:foo:]]"), EreError::CharClass);
        assert_eq!(err("[z-a]"), EreError::Range);
        assert_eq!(err("[a-c-e]"), EreError::Range);
        assert_eq!(err("[abc"), EreError::Bracket);
    }

    #[test]
    fn word_boundaries() {
        assert!(compile(b"^.*[[:<:]]em0[[:>:]].*$")
            .unwrap()
            .is_match(b"if em0 up"));
        assert!(!compile(b"^.*[[:<:]]em0[[:>:]].*$")
            .unwrap()
            .is_match(b"ifem0 up"));
    }

    #[test]
    fn braces() {
        assert!(m("a{2}", "aa"));
        assert!(!m("a{2}", "aaa"));
        assert!(m("a{1,}", "aaaa"));
        assert!(m("a{1,2}b", "aab"));
        assert!(m("a{x", "a{x"));
        assert!(m("{", "{"));
        assert!(m("a{,3}", "a{,3}"));
        assert_eq!(err("a{3,2}"), EreError::BadBound);
        assert_eq!(err("a{256}"), EreError::BadBound);
        assert_eq!(err("a{2"), EreError::Brace);
        assert_eq!(err("{1}"), EreError::BadRepeat);
    }

    #[test]
    fn repetition_errors() {
        assert_eq!(err("*a"), EreError::BadRepeat);
        assert_eq!(err("a**"), EreError::BadRepeat);
        assert_eq!(err("a+?"), EreError::BadRepeat);
        assert_eq!(err("(*a)"), EreError::BadRepeat);
    }

    #[test]
    fn group_errors_and_empty_branches() {
        assert_eq!(err("("), EreError::Paren);
        assert_eq!(err("a)"), EreError::Paren);
        assert_eq!(err("(a"), EreError::Paren);
        assert_eq!(err("a||b"), EreError::Empty);
        assert_eq!(compile(b"a|").unwrap_err(), EreError::Empty);
        assert_eq!(err("(|a)"), EreError::Empty);
        assert!(m("()a", "a"));
    }

    #[test]
    fn dot_matches_newline_and_any_byte() {
        assert!(m("a.b", "a\nb"));
        assert!(m("..", "\u{e9}")); // one two-byte character is two C-locale characters
    }

    #[test]
    fn trailing_dollar_anchor() {
        // "foo$" becomes ^foo$$ : equivalent to ^foo$
        assert!(compile(b"^foo$$").unwrap().is_match(b"foo"));
        assert!(compile(b"^$$").unwrap().is_match(b""));
    }

    #[test]
    fn literal_sets() {
        assert_eq!(
            literal_alternatives(b"IFNET"),
            Some(vec![b"ifnet".to_vec()])
        );
        assert_eq!(
            literal_alternatives(b"(B|a|a)"),
            Some(vec![b"a".to_vec(), b"b".to_vec()])
        );
        assert_eq!(literal_alternatives(b"a\\.b"), Some(vec![b"a.b".to_vec()]));
        assert_eq!(literal_alternatives(b""), Some(vec![Vec::new()]));
        assert_eq!(literal_alternatives(b"a|b"), None);
        assert_eq!(literal_alternatives(b"(a|)"), None);
        assert_eq!(literal_alternatives(b"(a)|(b)"), None);
        assert_eq!(literal_alternatives(b"uhub[0-9]+"), None);
        assert_eq!(literal_alternatives(b"a.b"), None);
    }

    #[test]
    fn wildcard_literals_are_literals_with_dots() {
        let w = wildcard_literal(b"eReport.fs\\.X").unwrap();
        assert_eq!(w.text, b"ereport.fs.x");
        assert_eq!(w.wildcards, vec![7]);
        for not in [
            &b"abc"[..],
            b"a.*",
            b"a.|b",
            b"[.]",
            b"a.b+",
            b"(a.b)",
            b"^a.",
            b"a.$",
        ] {
            assert_eq!(
                wildcard_literal(not),
                None,
                "{}",
                String::from_utf8_lossy(not)
            );
        }
        let mut key = [0u8; 12];
        assert!(WildcardLiteral::key_of(
            &w.wildcards,
            b"EREPORTxFS.x",
            &mut key
        ));
        assert_eq!(&key, b"ereport.fs.x");
        let mut short = [0u8; 7];
        assert!(!WildcardLiteral::key_of(
            &w.wildcards,
            b"ereport",
            &mut short
        ));
    }

    #[test]
    fn literal_prefixes_are_what_every_match_starts_with() {
        let cases: &[(&[u8], Option<&[u8]>)] = &[
            (b"ums[0-9]+", Some(b"ums")),
            (b"UMS", Some(b"ums")),
            (b"ab*", Some(b"a")),
            (b"ab?c", Some(b"a")),
            (b"ab{0,1}", Some(b"a")),
            (b"ab+", Some(b"ab")),
            (b"a\\.*", Some(b"a")),
            (b"a\\.b.*", Some(b"a.b")),
            (b"input/event[0-9]+", Some(b"input/event")),
            (b"a*", None),
            (b".*", None),
            (b"(ab)+", None),
            (b"ab|cd", None),
            (b"(ab|cd)x", None),
            (b"", None),
        ];
        for (pattern, want) in cases {
            assert_eq!(
                literal_prefix(pattern).as_deref(),
                *want,
                "{}",
                String::from_utf8_lossy(pattern)
            );
        }
    }
}
