//! Variable expansion (spec §3.5) and devd's shell quoting of inserted values (§3.6).

use crate::context::{inert, Context, Lexer};

/// How a variable's value is inserted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Quoting {
    /// devd since 2020: every value becomes `$'…'` with `'` and `\` backslash-escaped, so no
    /// byte of a value can act as shell syntax. Unset variables give `$''`.
    #[default]
    Shell,
    /// POSIX single quotes: every value becomes `'…'` with each `'` written `'\''`; unset
    /// variables give `''`. For shells that do not read `$'…'` (dash), which would otherwise
    /// see devd's form as `$` followed by an ordinary single-quoted string that a `\'` ends.
    SingleQuotes,
    /// Before 2020: values inserted verbatim (shell injection possible). Compatibility only.
    Legacy,
}

impl Quoting {
    /// How the mode writes a value, for logs and status output.
    pub fn describe(self) -> &'static str {
        match self {
            Quoting::Shell => "$'...' (devd's quoting)",
            Quoting::SingleQuotes => "'...' (POSIX single quotes)",
            Quoting::Legacy => "none (legacy, values inserted verbatim)",
        }
    }

    /// Append `value` as this mode inserts it.
    pub fn insert_into(self, out: &mut Vec<u8>, value: &[u8]) {
        match self {
            Quoting::Shell => shell_quote_into(out, value),
            Quoting::SingleQuotes => single_quote_into(out, value),
            Quoting::Legacy => out.extend_from_slice(value),
        }
    }

    /// Why `value` cannot be inserted so that the shell reads it back byte for byte, if it
    /// cannot. A command line is a C string, so a NUL can never reach the shell, whatever
    /// the mode. Every other byte can: `$'…'` escapes the only two bytes it treats
    /// specially, and inside `'…'` every byte but `'` is literal (the shell is probed at
    /// start with every byte from 1 to 255 before a mode is chosen for it).
    pub fn unquotable(self, value: &[u8]) -> Option<Unquotable> {
        memchr::memchr(0, value).map(|_| Unquotable::Nul)
    }
}

/// Why a value would reach the shell unquoted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotingPlace {
    /// The action's text around it defeats the quotes.
    Template(Context),
    /// [`Quoting::Legacy`] inserts it verbatim.
    Legacy,
}

impl QuotingPlace {
    fn describe(self) -> &'static str {
        match self {
            QuotingPlace::Template(c) => c.describe(),
            QuotingPlace::Legacy => "inserted verbatim (legacy quoting)",
        }
    }
}

/// Why a value cannot be carried into a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Unquotable {
    #[error("holds a NUL byte, which no command line can carry")]
    Nul,
}

/// An action that is not run: what in it cannot be handed to the shell.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// The value of `$name`.
    #[error("${} {why}", String::from_utf8_lossy(name))]
    Value { name: Box<[u8]>, why: Unquotable },
    /// `$name` sits where the action's own text defeats the quoting (or the mode does not
    /// quote), and its value holds more than [`inert`] bytes.
    #[error("${} is {}, where its quotes do not hold, and its value has bytes the shell would read as syntax (only letters, digits and _.,:/+-@% are passed there)", String::from_utf8_lossy(name), where_.describe())]
    Unquoted {
        name: Box<[u8]>,
        where_: QuotingPlace,
    },
    /// `$name` follows a backslash: the escaped opening quote of `'…'` would leave its
    /// closing quote opening a new string.
    #[error("${} is right after a backslash in the action, where POSIX single quotes cannot be balanced", String::from_utf8_lossy(name))]
    Unbalanced { name: Box<[u8]> },
    /// The action's own text (a configuration file may hold a NUL inside a string).
    #[error("the action's text holds a NUL byte, which no command line can carry")]
    TextNul,
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
    quote_value_into(out, value);
}

/// Append `value` as one POSIX single-quoted word: `'…'`, each `'` written `'\''` (close,
/// an escaped quote, reopen). Inside `'…'` no byte but `'` means anything to sh.
pub fn single_quote_into(out: &mut Vec<u8>, value: &[u8]) {
    out.reserve(value.len() + 2);
    out.push(b'\'');
    let mut rest = value;
    while let Some(i) = memchr::memchr(b'\'', rest) {
        out.extend_from_slice(&rest[..i]);
        out.extend_from_slice(b"'\\''");
        rest = &rest[i + 1..];
    }
    out.extend_from_slice(rest);
    out.push(b'\'');
}

/// [`shell_quote_into`], telling whether `value` was all ASCII (so the caller need not
/// validate the output as UTF-8 again).
fn quote_value_into(out: &mut Vec<u8>, value: &[u8]) -> bool {
    out.reserve(value.len() + 3);
    out.extend_from_slice(b"$'");
    let ascii = escape_into(out, value);
    out.push(b'\'');
    ascii
}

/// Whether `b` needs a backslash inside `$'…'`.
fn needs_escape(b: u8) -> bool {
    b == b'\'' || b == b'\\'
}

/// Copy `value` with `'` and `\` backslash-escaped; `true` when every byte was ASCII.
fn escape_into(out: &mut Vec<u8>, value: &[u8]) -> bool {
    let mut high = 0u8;
    let mut rest = value;
    while let Some(i) = find_escape(rest, &mut high) {
        out.extend_from_slice(&rest[..i]);
        out.extend_from_slice(&[b'\\', rest[i]]);
        rest = &rest[i + 1..];
    }
    out.extend_from_slice(rest);
    high & 0x80 == 0
}

/// The index of the first byte of `bytes` that needs a backslash. Every byte looked at is
/// also ORed into `high`, so the caller learns whether the value had a non-ASCII byte
/// without a second pass.
#[cfg(target_arch = "x86_64")]
fn find_escape(bytes: &[u8], high: &mut u8) -> Option<usize> {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
    };
    /// Byte i all ones when byte i of `v` needs a backslash.
    #[inline(always)]
    fn marks(v: __m128i) -> __m128i {
        // SAFETY: these intrinsics are unsafe only because the CPU might lack SSE2; SSE2 is
        // part of the x86_64 baseline, so every x86_64 CPU has it. They touch no memory.
        unsafe {
            _mm_or_si128(
                _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\'' as i8)),
                _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8)),
            )
        }
    }
    let mut i = 0;
    // 64 bytes per step: one test for the whole block, the exact index only on a hit.
    while let Some(block) = bytes[i..].first_chunk::<64>() {
        // SAFETY: `block` is a [u8; 64]: the four unaligned loads (loadu needs no alignment)
        // at 16-byte steps from its start read exactly its 64 bytes. SSE2 is x86_64 baseline.
        let (hit, top) = unsafe {
            let p = block.as_ptr().cast::<__m128i>();
            let v = [
                _mm_loadu_si128(p),
                _mm_loadu_si128(p.add(1)),
                _mm_loadu_si128(p.add(2)),
                _mm_loadu_si128(p.add(3)),
            ];
            let m = [marks(v[0]), marks(v[1]), marks(v[2]), marks(v[3])];
            let any = _mm_or_si128(_mm_or_si128(m[0], m[1]), _mm_or_si128(m[2], m[3]));
            let top = _mm_or_si128(_mm_or_si128(v[0], v[1]), _mm_or_si128(v[2], v[3]));
            let hit = if _mm_movemask_epi8(any) == 0 {
                0u64
            } else {
                m.iter().enumerate().fold(0u64, |acc, (k, &mk)| {
                    acc | (u64::from(_mm_movemask_epi8(mk) as u16) << (16 * k))
                })
            };
            (hit, _mm_movemask_epi8(top))
        };
        *high |= if top != 0 { 0x80 } else { 0 };
        if hit != 0 {
            return Some(i + hit.trailing_zeros() as usize);
        }
        i += 64;
    }
    let scan16 = |chunk: &[u8; 16], high: &mut u8| {
        // SAFETY: `chunk` is a [u8; 16]: the one unaligned load reads exactly its bytes. SSE2
        // is x86_64 baseline.
        let (hit, top) = unsafe {
            let v = _mm_loadu_si128(chunk.as_ptr().cast::<__m128i>());
            (_mm_movemask_epi8(marks(v)), _mm_movemask_epi8(v))
        };
        *high |= if top != 0 { 0x80 } else { 0 };
        hit as u32
    };
    while let Some(chunk) = bytes[i..].first_chunk::<16>() {
        let hit = scan16(chunk, high);
        if hit != 0 {
            return Some(i + hit.trailing_zeros() as usize);
        }
        i += 16;
    }
    let n = bytes.len();
    if i == n {
        return None;
    }
    if n >= 16 {
        // The last 1–15 bytes: one load of the final 16, the bytes already seen masked off
        // (seeing them again for `high` changes nothing).
        let seen = 16 - (n - i);
        let hit = scan16(bytes[n - 16..].first_chunk().expect("16 bytes"), high) >> seen;
        return (hit != 0).then(|| i + hit.trailing_zeros() as usize);
    }
    find_escape_bytewise(&bytes[i..], high).map(|j| i + j)
}

/// [`find_escape`] without SIMD.
#[cfg(not(target_arch = "x86_64"))]
fn find_escape(bytes: &[u8], high: &mut u8) -> Option<usize> {
    find_escape_bytewise(bytes, high)
}

/// Byte-wise [`find_escape`], for short values and the tail of long ones.
fn find_escape_bytewise(bytes: &[u8], high: &mut u8) -> Option<usize> {
    for (i, &b) in bytes.iter().enumerate() {
        *high |= b;
        if needs_escape(b) {
            return Some(i);
        }
    }
    None
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
                    Some(q) => q.insert_into(out, value),
                    None => out.extend_from_slice(value),
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
    /// Whether the action's own text is ASCII: then an expansion whose values are ASCII
    /// needs no UTF-8 check.
    ascii_text: bool,
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
            ascii_text: template.is_ascii(),
            raw: template.into(),
            pieces: pieces.into(),
            text_len,
        }
    }

    /// Bytes the expansion has besides the values (text and, when quoted, `$''`).
    pub fn text_len(&self) -> usize {
        self.text_len
    }

    /// The variable names the action refers to, in order (a name may repeat).
    pub fn variables(&self) -> impl Iterator<Item = &[u8]> {
        self.pieces.iter().filter_map(|p| match *p {
            Piece::Var(a, b) => Some(&self.raw[a as usize..b as usize]),
            Piece::Text(..) => None,
        })
    }

    /// Expand like [`expand_into`].
    pub fn expand_into<'v>(
        &self,
        out: &mut Vec<u8>,
        quoting: Option<Quoting>,
        mut lookup: impl FnMut(&[u8]) -> &'v [u8],
    ) {
        self.expand_resolved(out, quoting, |_, name| lookup(name));
    }

    /// Expand with `lookup(i, name)` giving the value of the `i`-th reference of
    /// [`Template::variables`] (callers that resolved the names beforehand use `i`). Returns
    /// whether everything appended is ASCII.
    pub fn expand_resolved<'v>(
        &self,
        out: &mut Vec<u8>,
        quoting: Option<Quoting>,
        mut lookup: impl FnMut(usize, &[u8]) -> &'v [u8],
    ) -> bool {
        let mut ascii = self.ascii_text;
        let mut var = 0;
        for p in self.pieces.iter() {
            match *p {
                Piece::Text(a, b) => out.extend_from_slice(&self.raw[a as usize..b as usize]),
                Piece::Var(a, b) => {
                    let value = lookup(var, &self.raw[a as usize..b as usize]);
                    var += 1;
                    ascii &= match quoting {
                        Some(Quoting::Shell) => quote_value_into(out, value),
                        Some(q @ Quoting::SingleQuotes) => {
                            q.insert_into(out, value);
                            value.is_ascii()
                        }
                        Some(Quoting::Legacy) | None => {
                            out.extend_from_slice(value);
                            value.is_ascii()
                        }
                    };
                }
            }
        }
        ascii
    }

    /// The command to hand to the shell: like [`Template::expand_resolved`] with `quoting`,
    /// but an action that cannot reach the shell as written is refused instead: one whose
    /// own text or any of whose values holds what `quoting` cannot carry
    /// ([`Quoting::unquotable`]), or with a value whose quotes the action's text defeats
    /// (inside its single quotes, after a backslash, in backquotes or a comment:
    /// [`crate::context`]) that holds more than [`inert`] bytes. Nothing is appended to
    /// `out` when it is refused.
    pub fn command<'v>(
        &self,
        out: &mut Vec<u8>,
        quoting: Quoting,
        mut lookup: impl FnMut(usize, &[u8]) -> &'v [u8],
    ) -> Result<(), Refused> {
        if memchr::memchr(0, &self.raw).is_some() {
            return Err(Refused::TextNul);
        }
        let start = out.len();
        let mut lexer = Lexer::default();
        let mut var = 0;
        for p in self.pieces.iter() {
            match *p {
                Piece::Text(a, b) => {
                    let text = &self.raw[a as usize..b as usize];
                    lexer.text(text);
                    out.extend_from_slice(text);
                }
                Piece::Var(a, b) => {
                    let name = &self.raw[a as usize..b as usize];
                    let value = lookup(var, name);
                    var += 1;
                    if let Err(e) = check_value(quoting, lexer.insert(), name, value) {
                        out.truncate(start);
                        return Err(e);
                    }
                    quoting.insert_into(out, value);
                }
            }
        }
        Ok(())
    }
}

/// Whether `value` may be inserted as `$name` with `quoting` where the action's text puts it
/// in `context`.
fn check_value(
    quoting: Quoting,
    context: Context,
    name: &[u8],
    value: &[u8],
) -> Result<(), Refused> {
    if let Some(why) = quoting.unquotable(value) {
        return Err(Refused::Value {
            name: name.into(),
            why,
        });
    }
    if quoting == Quoting::SingleQuotes && context == Context::Escaped {
        return Err(Refused::Unbalanced { name: name.into() });
    }
    let unquoted = match (quoting, context) {
        (Quoting::Legacy, _) => Some(QuotingPlace::Legacy),
        (_, Context::Plain) => None,
        (_, c) => Some(QuotingPlace::Template(c)),
    };
    match unquoted {
        Some(where_) if !inert(value) => Err(Refused::Unquoted {
            name: name.into(),
            where_,
        }),
        _ => Ok(()),
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
    fn posix_single_quoting_of_values() {
        let single = |t: &str| both(t, Some(Quoting::SingleQuotes));
        assert_eq!(single("ifconfig $device-name up"), "ifconfig 'em0' up");
        assert_eq!(single("echo $q"), "echo 'it'\\''s a\\b'");
        assert_eq!(single("logger a $nosuch b"), "logger a '' b");
        assert_eq!(single("/dev/$cdev"), "/dev/'da0'");
        assert_eq!(single("$(date) $$ $1"), "$(date) $ $1");
    }

    fn command(t: &str, quoting: Quoting, value: &'static [u8]) -> Result<Vec<u8>, Refused> {
        let mut out = b"kept".to_vec();
        Template::parse(t.as_bytes())
            .command(
                &mut out,
                quoting,
                |_, n| if n == b"v" { value } else { vars(n) },
            )
            .map(|()| out)
    }

    #[test]
    fn commands_are_the_expansion_unless_refused() {
        for quoting in [Quoting::Shell, Quoting::SingleQuotes] {
            let t = "run $device-name $q $v $nosuch";
            let mut expected = b"kept".to_vec();
            Template::parse(t.as_bytes()).expand_resolved(&mut expected, Some(quoting), |_, n| {
                if n == b"v" {
                    b"x\xffy"
                } else {
                    vars(n)
                }
            });
            assert_eq!(command(t, quoting, b"x\xffy"), Ok(expected), "{quoting:?}");
        }
    }

    #[test]
    fn a_nul_in_a_value_or_the_text_refuses_the_command_in_every_mode() {
        for quoting in [Quoting::Shell, Quoting::SingleQuotes, Quoting::Legacy] {
            assert_eq!(
                command("run $cdev $v", quoting, b"a\0b"),
                Err(Refused::Value {
                    name: (*b"v").into(),
                    why: Unquotable::Nul
                })
            );
            assert_eq!(command("run\0 $cdev", quoting, b""), Err(Refused::TextNul));
        }
        let e = command("x $v", Quoting::Shell, b"\0").unwrap_err();
        assert_eq!(
            e.to_string(),
            "$v holds a NUL byte, which no command line can carry"
        );
    }

    #[test]
    fn values_whose_quotes_the_action_defeats_must_be_inert() {
        use crate::context::Context;
        let refused = |t: &str, q: Quoting, v: &'static [u8]| command(t, q, v).unwrap_err();
        let ok = |t: &str, q: Quoting, v: &'static [u8]| {
            String::from_utf8(command(t, q, v).unwrap()).unwrap()
        };
        // devd.conf(5) BUGS: `'$var'` leaves the value outside any quotes.
        let zfs = "logger 'zpool=$v path=$cdev'";
        assert_eq!(
            ok(zfs, Quoting::Shell, b"tank"),
            "keptlogger 'zpool=$'tank' path=$'da0''"
        );
        assert_eq!(
            ok(zfs, Quoting::SingleQuotes, b"tank"),
            "keptlogger 'zpool='tank' path='da0''"
        );
        for q in [Quoting::Shell, Quoting::SingleQuotes] {
            assert_eq!(
                refused(zfs, q, b"x';touch y;'"),
                Refused::Unquoted {
                    name: (*b"v").into(),
                    where_: QuotingPlace::Template(Context::SingleQuoted)
                }
            );
            assert!(matches!(
                refused("echo `basename $v`", q, b"a`id`"),
                Refused::Unquoted {
                    where_: QuotingPlace::Template(Context::Backquoted),
                    ..
                }
            ));
            assert!(matches!(
                refused("true # $v", q, b"a\nid"),
                Refused::Unquoted {
                    where_: QuotingPlace::Template(Context::Comment),
                    ..
                }
            ));
            // Plain text: anything but a NUL passes, quoted.
            command("echo $v", q, b"x';touch y #\n`id`").unwrap();
        }
        // After a backslash: `\$'v'` still pairs its quotes, `\'v'` cannot.
        assert_eq!(ok("echo \\$v", Quoting::Shell, b"abc"), "keptecho \\$'abc'");
        assert_eq!(
            refused("echo \\$v", Quoting::SingleQuotes, b"abc"),
            Refused::Unbalanced {
                name: (*b"v").into()
            }
        );
        // Legacy quoting inserts every value verbatim: only inert ones are run.
        assert_eq!(ok("echo $v", Quoting::Legacy, b"em0"), "keptecho em0");
        assert_eq!(
            refused("echo $v", Quoting::Legacy, b"em0;id").to_string(),
            "$v is inserted verbatim (legacy quoting), where its quotes do not hold, and its value has bytes the shell would read as syntax (only letters, digits and _.,:/+-@% are passed there)"
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

    /// devd's quoting, one byte at a time: the reference for the SIMD scan.
    fn quoted_reference(value: &[u8]) -> Vec<u8> {
        let mut out = b"$'".to_vec();
        for &b in value {
            if b == b'\'' || b == b'\\' {
                out.push(b'\\');
            }
            out.push(b);
        }
        out.push(b'\'');
        out
    }

    use proptest::strategy::Strategy as _;

    proptest::proptest! {
        /// Long values with quotes, backslashes and non-ASCII bytes anywhere (inside and
        /// across 16- and 64-byte blocks): quoted exactly as byte-wise, and the ASCII answer is right.
        #[test]
        fn quoting_scan_matches_bytewise_and_reports_ascii(
            value in proptest::collection::vec(
                proptest::prop_oneof![
                    4 => proptest::num::u8::ANY.prop_map(|b| b & 0x7f),
                    1 => proptest::strategy::Just(b'\''),
                    1 => proptest::strategy::Just(b'\\'),
                    1 => proptest::num::u8::ANY,
                ],
                0..200,
            ),
            text in "[a-z $]{0,8}",
            legacy in proptest::bool::ANY,
        ) {
            let mut out = Vec::new();
            proptest::prop_assert_eq!(quote_value_into(&mut out, &value), value.is_ascii());
            proptest::prop_assert_eq!(&out, &quoted_reference(&value));

            let template = Template::parse(format!("{text} $v").as_bytes());
            let quoting = if legacy { Quoting::Legacy } else { Quoting::Shell };
            let mut out = Vec::new();
            let ascii = template.expand_resolved(&mut out, Some(quoting), |_, _| &value[..]);
            proptest::prop_assert_eq!(ascii, out.is_ascii());
        }
    }
}
