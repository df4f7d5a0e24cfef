//! Where in the shell's reading of an action a value lands.
//!
//! Quoting a value (`$'…'` or `'…'`) keeps it one literal word only where the shell reads
//! the action's own text as ordinary words. Elsewhere the template defeats it: inside the
//! template's single quotes the inserted quotes close and reopen them, so the value itself is
//! unquoted (devd.conf(5) BUGS: `'$var'`); after a backslash the value's opening quote is
//! escaped; inside backquotes the shell strips backslashes and reads the text again; in a
//! comment a newline ends the comment. [`Lexer`] follows the action's text as sh reads it and
//! says which of these holds at each inserted value.

/// The shell's reading of the action where a value is inserted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    /// Ordinary word text: a quoted value stays one literal word fragment.
    Plain,
    /// Inside the action's `'…'` or `$'…'`.
    SingleQuoted,
    /// Inside the action's `"…"` (devd's strings cannot hold one; kept for completeness).
    DoubleQuoted,
    /// Right after a backslash.
    Escaped,
    /// Inside the action's `` `…` ``.
    Backquoted,
    /// In a `#` comment.
    Comment,
}

impl Context {
    /// Where, in words, for refusals.
    pub fn describe(self) -> &'static str {
        match self {
            Context::Plain => "in plain text",
            Context::SingleQuoted => "inside single quotes in the action",
            Context::DoubleQuoted => "inside double quotes in the action",
            Context::Escaped => "right after a backslash in the action",
            Context::Backquoted => "inside backquotes in the action",
            Context::Comment => "in a comment in the action",
        }
    }
}

/// Follows an action's own text, byte by byte, as sh reads it; inserted values are opaque.
#[derive(Debug, Clone)]
pub struct Lexer {
    single: bool,
    /// Inside `$'…'`, where a backslash escapes the next byte.
    dollar_single: bool,
    double: bool,
    back: bool,
    comment: bool,
    escaped: bool,
    /// The last byte was an unquoted `$` (so a `'` opens `$'…'`).
    dollar: bool,
    /// The next byte starts a word (so `#` starts a comment).
    word_start: bool,
}

impl Default for Lexer {
    fn default() -> Lexer {
        Lexer {
            single: false,
            dollar_single: false,
            double: false,
            back: false,
            comment: false,
            escaped: false,
            dollar: false,
            word_start: true,
        }
    }
}

/// Bytes after which a new word starts.
fn ends_word(b: u8) -> bool {
    matches!(
        b,
        b' ' | b'\t' | b'\n' | b';' | b'&' | b'|' | b'(' | b')' | b'<' | b'>'
    )
}

impl Lexer {
    /// Read some of the action's own text.
    pub fn text(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.byte(b);
        }
    }

    fn byte(&mut self, b: u8) {
        let dollar = std::mem::take(&mut self.dollar);
        if self.comment {
            if b == b'\n' {
                self.comment = false;
                self.word_start = true;
            }
            return;
        }
        if self.single {
            self.single = b != b'\'';
            return;
        }
        if self.dollar_single {
            if self.escaped {
                self.escaped = false;
            } else if b == b'\\' {
                self.escaped = true;
            } else if b == b'\'' {
                self.dollar_single = false;
            }
            return;
        }
        if self.escaped {
            self.escaped = false;
            self.word_start = false;
            return;
        }
        match b {
            b'\\' => self.escaped = true,
            b'\'' if !self.double => {
                if dollar {
                    self.dollar_single = true;
                } else {
                    self.single = true;
                }
            }
            b'"' => self.double = !self.double,
            b'`' => self.back = !self.back,
            b'#' if self.word_start && !self.double => {
                self.comment = true;
                return;
            }
            b'$' => self.dollar = true,
            _ => {}
        }
        self.word_start = !self.double && ends_word(b);
    }

    /// The context of a value inserted here; the value then counts as word text.
    pub fn insert(&mut self) -> Context {
        let c = if self.comment {
            Context::Comment
        } else if self.single || self.dollar_single {
            Context::SingleQuoted
        } else if self.double {
            Context::DoubleQuoted
        } else if self.escaped {
            Context::Escaped
        } else if self.back {
            Context::Backquoted
        } else {
            Context::Plain
        };
        self.escaped = false;
        self.dollar = false;
        self.word_start = false;
        c
    }
}

/// The bytes that no shell reads as syntax in any [`Context`], unquoted or inside quotes:
/// ASCII letters, digits and `_ . , : / + - @ %`. No blank (it would split the word), no
/// glob, quote, escape, `$`, backquote, brace, `~`, `=`, `!`, `#`, no control byte and no
/// byte above 0x7f (which a multibyte locale could join with the quote that follows).
pub fn inert(value: &[u8]) -> bool {
    value.iter().all(|&b| {
        b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'_' | b'.' | b',' | b':' | b'/' | b'+' | b'-' | b'@' | b'%'
            )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The context at each `@` of `text` (`@` stands for an inserted value).
    fn contexts(text: &str) -> Vec<Context> {
        let mut l = Lexer::default();
        let mut out = Vec::new();
        for part in text.split_inclusive('@') {
            let (t, at) = match part.strip_suffix('@') {
                Some(t) => (t, true),
                None => (part, false),
            };
            l.text(t.as_bytes());
            if at {
                out.push(l.insert());
            }
        }
        out
    }

    use Context::*;

    #[test]
    fn quotes_escapes_backquotes_and_comments() {
        assert_eq!(contexts("echo @ x@y"), [Plain, Plain]);
        assert_eq!(
            contexts("logger 'zpool=@ path=@' @"),
            [SingleQuoted, SingleQuoted, Plain]
        );
        assert_eq!(contexts("echo \\@ @"), [Escaped, Plain]);
        assert_eq!(contexts("echo \\\\@"), [Plain]);
        assert_eq!(contexts("echo `basename @` @"), [Backquoted, Plain]);
        assert_eq!(contexts("echo x # @\necho @"), [Comment, Plain]);
        assert_eq!(contexts("echo x#@"), [Plain]);
        assert_eq!(contexts("echo \"@\" '\"' @"), [DoubleQuoted, Plain]);
        assert_eq!(contexts("echo $'it\\'s @' @"), [SingleQuoted, Plain]);
        assert_eq!(contexts("echo '$'@"), [Plain]);
        assert_eq!(contexts("a=$(echo ')') @"), [Plain]);
    }

    #[test]
    fn inert_bytes() {
        assert!(inert(b"tank/data-1_2.3:4,5+6@7%8"));
        assert!(inert(b""));
        for bad in [
            &b" "[..],
            b"'",
            b"\\",
            b"$",
            b"`",
            b";",
            b"*",
            b"~",
            b"=",
            b"\n",
            b"\xc3\xa9",
            b"{",
            b"#",
        ] {
            assert!(!inert(bad), "{bad:?}");
        }
    }
}
