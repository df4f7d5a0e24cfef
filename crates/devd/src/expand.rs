//! Variable expansion (spec §3.5) and devd's shell quoting of inserted values (§3.6).

/// How a variable's value is inserted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Quoting {
    /// devd since 2020: every value becomes `$'…'` with `'` and `\` backslash-escaped, so no
    /// byte of a value can act as shell syntax. Unset variables give `$''`.
    #[default]
    Shell,
    /// Before 2020: values inserted verbatim (shell injection possible). Compatibility only.
    Legacy,
}

/// Characters that continue a variable name.
pub(crate) fn is_id_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// Characters that may start a variable name after `$`.
fn starts_name(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b == b'-' || b == b'*'
}

/// Append `value` quoted as one `$'…'` shell fragment.
pub fn shell_quote_into(out: &mut Vec<u8>, value: &[u8]) {
    out.reserve(value.len() + 3);
    out.extend_from_slice(b"$'");
    let mut rest = value;
    // Copy runs between the two bytes that need a backslash.
    while let Some(i) = memchr::memchr2(b'\'', b'\\', rest) {
        out.extend_from_slice(&rest[..i]);
        out.push(b'\\');
        out.push(rest[i]);
        rest = &rest[i + 1..];
    }
    out.extend_from_slice(rest);
    out.push(b'\'');
}

/// Length of the `$(…)` passthrough starting at `template[start]` (the `$`): up to and
/// including the matching `)`, or to the end if the parentheses never balance.
fn paren_span(template: &[u8], start: usize) -> usize {
    let mut depth = 0usize;
    for (i, &b) in template[start + 1..].iter().enumerate() {
        match b {
            b'(' => depth += 1,
            b')' => {
                depth -= 1;
                if depth == 0 {
                    return i + 2;
                }
            }
            _ => {}
        }
    }
    template.len() - start
}

/// Expand `template`, calling `lookup` for each variable reference. Returns nothing unset
/// specially: `lookup` decides what a missing variable is (devd: the empty string).
pub fn expand_into<'v>(
    out: &mut Vec<u8>,
    template: &[u8],
    quoting: Option<Quoting>,
    mut lookup: impl FnMut(&[u8]) -> &'v [u8],
) {
    let mut i = 0;
    let n = template.len();
    while i < n {
        let Some(off) = template[i..].iter().position(|&b| b == b'$') else {
            out.extend_from_slice(&template[i..]);
            break;
        };
        out.extend_from_slice(&template[i..i + off]);
        i += off;
        match template.get(i + 1).copied() {
            Some(b'$') => {
                out.push(b'$');
                i += 2;
            }
            Some(b'(') => {
                let len = paren_span(template, i);
                out.extend_from_slice(&template[i..i + len]);
                i += len;
            }
            Some(c) if starts_name(c) => {
                let start = i + 1;
                let mut end = start + 1;
                while end < n && is_id_char(template[end]) {
                    end += 1;
                }
                let value = lookup(&template[start..end]);
                match quoting {
                    Some(Quoting::Shell) => shell_quote_into(out, value),
                    Some(Quoting::Legacy) | None => out.extend_from_slice(value),
                }
                i = end;
            }
            // `$` at the end or before any other character stays a literal `$`.
            _ => {
                out.push(b'$');
                i += 1;
            }
        }
    }
}

/// An action split once into text and variable references: expanding it for an event does
/// not rescan it. [`Template::expand_into`] gives exactly what [`expand_into`] gives.
#[derive(Debug, Clone)]
pub struct Template {
    raw: Box<[u8]>,
    pieces: Box<[Piece]>,
    text_len: usize,
}

/// A span of `raw`: text copied as is, or the name of a variable to insert.
#[derive(Debug, Clone, Copy)]
enum Piece {
    Text(u32, u32),
    Var(u32, u32),
}

impl Template {
    /// Split `template` the way [`expand_into`] reads it.
    pub fn parse(template: &[u8]) -> Template {
        let mut pieces = Vec::new();
        let n = template.len();
        let mut text_start = 0;
        let mut i = 0;
        let push_text = |pieces: &mut Vec<Piece>, a: usize, b: usize| {
            if a < b {
                pieces.push(Piece::Text(a as u32, b as u32));
            }
        };
        while let Some(off) = memchr::memchr(b'$', &template[i..]) {
            i += off;
            match template.get(i + 1).copied() {
                // `$$` is one `$`: keep the first, skip the second.
                Some(b'$') => {
                    push_text(&mut pieces, text_start, i + 1);
                    i += 2;
                    text_start = i;
                }
                Some(b'(') => i += paren_span(template, i),
                Some(c) if starts_name(c) => {
                    push_text(&mut pieces, text_start, i);
                    let start = i + 1;
                    let mut end = start + 1;
                    while end < n && is_id_char(template[end]) {
                        end += 1;
                    }
                    pieces.push(Piece::Var(start as u32, end as u32));
                    i = end;
                    text_start = i;
                }
                _ => i += 1,
            }
        }
        push_text(&mut pieces, text_start, n);
        let text_len = pieces
            .iter()
            .map(|p| match p {
                Piece::Text(a, b) => (b - a) as usize,
                Piece::Var(..) => 3,
            })
            .sum();
        Template {
            raw: template.into(),
            pieces: pieces.into(),
            text_len,
        }
    }

    /// Bytes the expansion has besides the values (text and, when quoted, `$''`).
    pub fn text_len(&self) -> usize {
        self.text_len
    }

    /// Expand like [`expand_into`].
    pub fn expand_into<'v>(
        &self,
        out: &mut Vec<u8>,
        quoting: Option<Quoting>,
        mut lookup: impl FnMut(&[u8]) -> &'v [u8],
    ) {
        for p in self.pieces.iter() {
            match *p {
                Piece::Text(a, b) => out.extend_from_slice(&self.raw[a as usize..b as usize]),
                Piece::Var(a, b) => {
                    let value = lookup(&self.raw[a as usize..b as usize]);
                    match quoting {
                        Some(Quoting::Shell) => shell_quote_into(out, value),
                        Some(Quoting::Legacy) | None => out.extend_from_slice(value),
                    }
                }
            }
        }
    }
}

/// Convenience wrapper around [`expand_into`] returning a new buffer.
pub fn expand<'v>(
    template: &[u8],
    quoting: Option<Quoting>,
    lookup: impl FnMut(&[u8]) -> &'v [u8],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(template.len() + 32);
    expand_into(&mut out, template, quoting, lookup);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(name: &[u8]) -> &'static [u8] {
        match name {
            b"device-name" => b"em0",
            b"cdev" => b"da0",
            b"q" => b"it's a\\b",
            b"*" => b"!system=X",
            b"_" => b"system=X",
            b"-" => b"dash",
            _ => b"",
        }
    }

    /// Expand with both the scanning expander and a parsed [`Template`]; they must agree.
    fn both(t: &str, quoting: Option<Quoting>) -> String {
        let scanned = expand(t.as_bytes(), quoting, vars);
        let mut parsed = Vec::new();
        Template::parse(t.as_bytes()).expand_into(&mut parsed, quoting, vars);
        assert_eq!(
            String::from_utf8_lossy(&parsed),
            String::from_utf8_lossy(&scanned),
            "template {t:?}"
        );
        String::from_utf8(scanned).unwrap()
    }

    fn shell(t: &str) -> String {
        both(t, Some(Quoting::Shell))
    }

    fn raw(t: &str) -> String {
        both(t, None)
    }

    #[test]
    fn quoting_of_values() {
        assert_eq!(shell("ifconfig $device-name up"), "ifconfig $'em0' up");
        assert_eq!(shell("echo $q"), "echo $'it\\'s a\\\\b'");
        assert_eq!(shell("logger a $nosuch b"), "logger a $'' b");
        assert_eq!(shell("/dev/$cdev"), "/dev/$'da0'");
        assert_eq!(
            String::from_utf8(expand(b"x $q", Some(Quoting::Legacy), vars)).unwrap(),
            "x it's a\\b"
        );
    }

    #[test]
    fn dollar_rules() {
        assert_eq!(shell("echo $$HOME"), "echo $HOME");
        assert_eq!(shell("$1 ${x} $? $ $/ $."), "$1 ${x} $? $ $/ $.");
        assert_eq!(shell("end$"), "end$");
        assert_eq!(shell("$cdev.foo"), "$'da0'.foo");
        assert_eq!(shell("$device-name-x"), "$''");
        assert_eq!(shell("$*"), "$'!system=X'");
        assert_eq!(shell("$*x"), "$''");
        assert_eq!(shell("$**"), "$'!system=X'*");
        assert_eq!(shell("$_"), "$'system=X'");
        assert_eq!(shell("$-"), "$'dash'");
    }

    #[test]
    fn paren_passthrough_nested_and_unbalanced() {
        assert_eq!(shell("$(date) $cdev"), "$(date) $'da0'");
        assert_eq!(
            shell("a=$(expr $(x $cdev) + 1) $cdev"),
            "a=$(expr $(x $cdev) + 1) $'da0'"
        );
        assert_eq!(shell("$(echo $cdev"), "$(echo $cdev");
    }

    #[test]
    fn no_recursion() {
        let out = expand(b"$a", Some(Quoting::Shell), |n: &[u8]| -> &[u8] {
            if n == b"a" {
                b"$b"
            } else {
                b"SHOULD-NOT-APPEAR"
            }
        });
        assert_eq!(out, b"$'$b'");
    }

    #[test]
    fn raw_mode_for_patterns() {
        assert_eq!(raw("$cdev[0-9]+"), "da0[0-9]+");
        assert_eq!(raw("foo$"), "foo$");
        assert_eq!(raw("a$$b"), "a$b");
    }
}
