//! sh(1) pattern matching (`*`, `?`, `[...]`), used for `${var%pattern}`
//! and `${var#pattern}` and for the `case` patterns network.subr uses.

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatChar {
    Literal(char),
    AnyString,
    AnyChar,
    Class {
        negated: bool,
        items: Vec<ClassItem>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClassItem {
    Char(char),
    Range(char, char),
}

/// Compile unquoted pattern text. A `[` without a closing `]` is literal.
pub fn compile(s: &str) -> Vec<PatChar> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' => out.push(PatChar::AnyString),
            '?' => out.push(PatChar::AnyChar),
            '\\' if i + 1 < chars.len() => {
                i += 1;
                out.push(PatChar::Literal(chars[i]));
            }
            '[' => {
                if let Some((class, next)) = class(&chars, i + 1) {
                    out.push(class);
                    i = next;
                    continue;
                }
                out.push(PatChar::Literal('['));
            }
            c => out.push(PatChar::Literal(c)),
        }
        i += 1;
    }
    out
}

fn class(chars: &[char], mut i: usize) -> Option<(PatChar, usize)> {
    let mut negated = false;
    if matches!(chars.get(i), Some('!' | '^')) {
        negated = true;
        i += 1;
    }
    let mut items = Vec::new();
    let mut first = true;
    loop {
        let c = *chars.get(i)?;
        if c == ']' && !first {
            return Some((PatChar::Class { negated, items }, i + 1));
        }
        first = false;
        if chars.get(i + 1) == Some(&'-') && chars.get(i + 2).is_some_and(|&e| e != ']') {
            items.push(ClassItem::Range(c, chars[i + 2]));
            i += 3;
        } else {
            items.push(ClassItem::Char(c));
            i += 1;
        }
    }
}

fn class_matches(negated: bool, items: &[ClassItem], c: char) -> bool {
    let hit = items.iter().any(|it| match *it {
        ClassItem::Char(x) => x == c,
        ClassItem::Range(a, b) => a <= c && c <= b,
    });
    hit != negated
}

/// Whole-string match.
pub fn matches(pat: &[PatChar], s: &str) -> bool {
    let chars: Vec<char> = s.chars().collect();
    matches_chars(pat, &chars)
}

/// Convenience: compile and match.
pub fn glob(pattern: &str, s: &str) -> bool {
    matches(&compile(pattern), s)
}

fn matches_chars(pat: &[PatChar], s: &[char]) -> bool {
    // Iterative matcher with single-star backtracking (linear-ish).
    let (mut p, mut i) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while i < s.len() {
        let ok = match pat.get(p) {
            Some(PatChar::Literal(c)) => *c == s[i],
            Some(PatChar::AnyChar) => true,
            Some(PatChar::Class { negated, items }) => class_matches(*negated, items, s[i]),
            Some(PatChar::AnyString) => {
                star = Some((p, i));
                p += 1;
                continue;
            }
            None => false,
        };
        if ok {
            p += 1;
            i += 1;
        } else if let Some((sp, si)) = star {
            p = sp + 1;
            i = si + 1;
            star = Some((sp, si + 1));
        } else {
            return false;
        }
    }
    pat[p.min(pat.len())..]
        .iter()
        .all(|x| *x == PatChar::AnyString)
}

/// `${v%pat}` (shortest) / `${v%%pat}` (longest).
pub fn trim_suffix(v: &str, pat: &[PatChar], longest: bool) -> String {
    let chars: Vec<char> = v.chars().collect();
    let starts: Box<dyn Iterator<Item = usize>> = if longest {
        Box::new(0..=chars.len())
    } else {
        Box::new((0..=chars.len()).rev())
    };
    for start in starts {
        if matches_chars(pat, &chars[start..]) {
            return chars[..start].iter().collect();
        }
    }
    v.to_string()
}

/// `${v#pat}` (shortest) / `${v##pat}` (longest).
pub fn trim_prefix(v: &str, pat: &[PatChar], longest: bool) -> String {
    let chars: Vec<char> = v.chars().collect();
    let ends: Box<dyn Iterator<Item = usize>> = if longest {
        Box::new((0..=chars.len()).rev())
    } else {
        Box::new(0..=chars.len())
    };
    for end in ends {
        if matches_chars(pat, &chars[..end]) {
            return chars[end..].iter().collect();
        }
    }
    v.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob("lo[0-9]*", "lo0"));
        assert!(glob("lo[0-9]*", "lo12x"));
        assert!(!glob("lo[0-9]*", "lagg0"));
        assert!(!glob("lo[0-9]*", "lo"));
        assert!(glob("*:*--*:*", "alias:2001:db8--1::1:"));
        assert!(glob("[!a]b", "xb"));
        assert!(!glob("[!a]b", "ab"));
        assert!(glob("a[b", "a[b"));
        assert!(glob("*", ""));
        assert!(glob("*a*b*", "xxaxxbxx"));
    }

    #[test]
    fn trims() {
        let p = compile("/rc.d");
        assert_eq!(
            trim_suffix("/usr/local/etc/rc.d", &p, false),
            "/usr/local/etc"
        );
        assert_eq!(trim_suffix("a.b.c", &compile(".*"), false), "a.b");
        assert_eq!(trim_suffix("a.b.c", &compile(".*"), true), "a");
        assert_eq!(trim_prefix("a.b.c", &compile("*."), false), "b.c");
        assert_eq!(trim_prefix("a.b.c", &compile("*."), true), "c");
        assert_eq!(trim_prefix("abc", &compile("x"), true), "abc");
    }
}
