//! devd.conf tokenizer, reproducing the flex scanner of spec §1.2.
//!
//! Quirks kept on purpose: `""` is not a string (its first quote is a stray character),
//! backslash-newline continuation inside strings eats the following whitespace and then copies
//! the next character unconditionally, and characters that upstream's default rule echoes are
//! skipped with a warning instead of an error.

/// Keywords of the configuration language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keyword {
    Options,
    Set,
    Directory,
    PidFile,
    Attach,
    Detach,
    DeviceName,
    MediaType,
    Class,
    Subdevice,
    Action,
    Match,
    Nomatch,
    Notify,
}

impl Keyword {
    fn from_bytes(word: &[u8]) -> Option<Keyword> {
        Some(match word {
            b"options" => Keyword::Options,
            b"set" => Keyword::Set,
            b"directory" => Keyword::Directory,
            b"pid-file" => Keyword::PidFile,
            b"attach" => Keyword::Attach,
            b"detach" => Keyword::Detach,
            b"device-name" => Keyword::DeviceName,
            b"media-type" => Keyword::MediaType,
            b"class" => Keyword::Class,
            b"subdevice" => Keyword::Subdevice,
            b"action" => Keyword::Action,
            b"match" => Keyword::Match,
            b"nomatch" => Keyword::Nomatch,
            b"notify" => Keyword::Notify,
            _ => return None,
        })
    }

    /// The keyword as written in a configuration file.
    pub fn as_str(self) -> &'static str {
        match self {
            Keyword::Options => "options",
            Keyword::Set => "set",
            Keyword::Directory => "directory",
            Keyword::PidFile => "pid-file",
            Keyword::Attach => "attach",
            Keyword::Detach => "detach",
            Keyword::DeviceName => "device-name",
            Keyword::MediaType => "media-type",
            Keyword::Class => "class",
            Keyword::Subdevice => "subdevice",
            Keyword::Action => "action",
            Keyword::Match => "match",
            Keyword::Nomatch => "nomatch",
            Keyword::Notify => "notify",
        }
    }
}

/// One token with the line it starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    Semicolon,
    BeginBlock,
    EndBlock,
    Number(i32),
    Str(Vec<u8>),
    Keyword(Keyword),
    Id(Vec<u8>),
    Eof,
}

impl Token {
    /// A short description for error messages ("found ...").
    pub fn describe(&self) -> String {
        match self {
            Token::Semicolon => "';'".into(),
            Token::BeginBlock => "'{'".into(),
            Token::EndBlock => "'}'".into(),
            Token::Number(n) => format!("number {n}"),
            Token::Str(s) => format!("string \"{}\"", String::from_utf8_lossy(s)),
            Token::Keyword(k) => format!("keyword '{}'", k.as_str()),
            Token::Id(s) => format!("name '{}'", String::from_utf8_lossy(s)),
            Token::Eof => "end of file".into(),
        }
    }
}

/// A character that upstream's lexer echoes to stdout and otherwise ignores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stray {
    pub line: u32,
    pub byte: u8,
}

/// The token stream of one file plus the stray characters that were skipped.
#[derive(Debug, Default)]
pub struct Lexed {
    pub tokens: Vec<(Token, u32)>,
    pub strays: Vec<Stray>,
}

/// C `isspace` in the C locale.
pub(crate) fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

fn is_id_start(b: u8) -> bool {
    b.is_ascii_alphabetic()
}

fn is_id_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// C `atoi` on a run of digits: `strtol` saturates at `LONG_MAX`, then the cast to `int` truncates.
fn atoi(digits: &[u8]) -> i32 {
    let mut value: i64 = 0;
    for &d in digits {
        value = value.saturating_mul(10).saturating_add(i64::from(d - b'0'));
    }
    value as i32
}

/// Decode the body of a STRING token (between the quotes): backslash-newline continuation.
fn decode_string(body: &[u8]) -> Vec<u8> {
    // Index `body.len()` stands for the closing quote, which the continuation quirk can copy.
    let at = |i: usize| if i < body.len() { body[i] } else { b'"' };
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        if body[i] == b'\\' && at(i + 1) == b'\n' {
            i += 2;
            while i < body.len() && is_c_space(body[i]) {
                i += 1;
            }
            out.push(at(i));
            i += 1;
        } else {
            out.push(body[i]);
            i += 1;
        }
    }
    out
}

/// Tokenize a whole file.
pub fn lex(input: &[u8]) -> Lexed {
    let mut out = Lexed::default();
    let mut line: u32 = 1;
    let mut i = 0;
    let n = input.len();
    while i < n {
        let c = input[i];
        match c {
            b' ' | b'\t' => i += 1,
            b'\n' => {
                line += 1;
                i += 1;
            }
            b';' => {
                out.tokens.push((Token::Semicolon, line));
                i += 1;
            }
            b'{' => {
                out.tokens.push((Token::BeginBlock, line));
                i += 1;
            }
            b'}' => {
                out.tokens.push((Token::EndBlock, line));
                i += 1;
            }
            b'#' => {
                while i < n && input[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if input.get(i + 1) == Some(&b'/') => {
                while i < n && input[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if input.get(i + 1) == Some(&b'*') => {
                match find(&input[i + 2..], b"*/") {
                    Some(end) => {
                        let body = &input[i..i + 2 + end + 2];
                        line += count_newlines(body);
                        i += body.len();
                    }
                    None => {
                        // Unterminated: not a comment; '/' is a stray, lexing resumes at '*'.
                        out.strays.push(Stray { line, byte: c });
                        i += 1;
                    }
                }
            }
            b'0'..=b'9' => {
                let start = i;
                while i < n && input[i].is_ascii_digit() {
                    i += 1;
                }
                out.tokens
                    .push((Token::Number(atoi(&input[start..i])), line));
            }
            b'"' => {
                let close = input[i + 1..].iter().position(|&b| b == b'"');
                match close {
                    Some(len) if len > 0 => {
                        let body = &input[i + 1..i + 1 + len];
                        out.tokens.push((Token::Str(decode_string(body)), line));
                        line += count_newlines(body);
                        i += len + 2;
                    }
                    _ => {
                        // `""` or an unterminated quote: the quote falls to the default rule.
                        out.strays.push(Stray { line, byte: c });
                        i += 1;
                    }
                }
            }
            c if is_id_start(c) => {
                let start = i;
                while i < n && is_id_char(input[i]) {
                    i += 1;
                }
                let word = &input[start..i];
                let tok = match Keyword::from_bytes(word) {
                    Some(k) => Token::Keyword(k),
                    None => Token::Id(word.to_vec()),
                };
                out.tokens.push((tok, line));
            }
            _ => {
                out.strays.push(Stray { line, byte: c });
                i += 1;
            }
        }
    }
    out.tokens.push((Token::Eof, line));
    out
}

fn count_newlines(bytes: &[u8]) -> u32 {
    bytes.iter().filter(|&&b| b == b'\n').count() as u32
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Token> {
        lex(s.as_bytes())
            .tokens
            .into_iter()
            .map(|(t, _)| t)
            .collect()
    }

    #[test]
    fn keywords_ids_numbers() {
        assert_eq!(
            toks("set settings device-name device-names 007 x1"),
            vec![
                Token::Keyword(Keyword::Set),
                Token::Id(b"settings".to_vec()),
                Token::Keyword(Keyword::DeviceName),
                Token::Id(b"device-names".to_vec()),
                Token::Number(7),
                Token::Id(b"x1".to_vec()),
                Token::Eof
            ]
        );
    }

    #[test]
    fn number_overflow_saturates_then_truncates() {
        assert_eq!(
            toks("99999999999999999999999")[0],
            Token::Number(i64::MAX as i32)
        );
        assert_eq!(toks("4294967297")[0], Token::Number(1));
    }

    #[test]
    fn comments_three_styles() {
        let l = lex(b"# a ; {\n// b }\n/* c\n d */ ;\n");
        assert_eq!(l.tokens, vec![(Token::Semicolon, 4), (Token::Eof, 5)]);
        assert!(l.strays.is_empty());
        // `**/` closes a comment.
        assert_eq!(toks("/* x **/;"), vec![Token::Semicolon, Token::Eof]);
    }

    #[test]
    fn comment_markers_inside_strings_are_text() {
        assert_eq!(
            toks("\"http://x#y\"")[0],
            Token::Str(b"http://x#y".to_vec())
        );
    }

    #[test]
    fn unterminated_block_comment_is_lexed_as_tokens() {
        let l = lex(b"/* ; x");
        assert_eq!(l.strays.len(), 2); // '/' and '*'
        assert_eq!(l.tokens[0].0, Token::Semicolon);
    }

    #[test]
    fn empty_string_quirk() {
        // The first quote is stray; the second opens a string running to the next quote.
        let l = lex(b"\"\" ; \"x\"");
        // ...and the final quote is unterminated, so it is stray too.
        assert_eq!(
            l.strays,
            vec![
                Stray {
                    line: 1,
                    byte: b'"'
                },
                Stray {
                    line: 1,
                    byte: b'"'
                }
            ]
        );
        assert_eq!(l.tokens[0].0, Token::Str(b" ; ".to_vec()));
        assert_eq!(l.tokens[1].0, Token::Id(b"x".to_vec()));
    }

    #[test]
    fn continuation_eats_whitespace_other_backslashes_literal() {
        assert_eq!(
            toks("\"a\\\n   \tb\\.c\\\\n\"")[0],
            Token::Str(b"ab\\.c\\\\n".to_vec())
        );
        // Newline without backslash stays.
        assert_eq!(toks("\"a\nb\"")[0], Token::Str(b"a\nb".to_vec()));
        // CR LF is not a continuation.
        assert_eq!(toks("\"a\\\r\nb\"")[0], Token::Str(b"a\\\r\nb".to_vec()));
    }

    #[test]
    fn continuation_before_closing_quote_copies_quote() {
        assert_eq!(toks("\"abc\\\n   \"")[0], Token::Str(b"abc\"".to_vec()));
    }

    #[test]
    fn second_continuation_not_recognised() {
        // After the first continuation's whitespace, the next backslash is copied verbatim and
        // its newline is kept.
        assert_eq!(toks("\"a\\\n \\\nb\"")[0], Token::Str(b"a\\\nb".to_vec()));
    }

    #[test]
    fn string_line_numbers() {
        let l = lex(b"\"a\nb\" ;");
        assert_eq!(l.tokens[0].1, 1);
        assert_eq!(l.tokens[1].1, 2);
    }

    #[test]
    fn stray_characters_are_skipped() {
        let l = lex(b"match \"a\" = \"b\"; attach -5");
        assert_eq!(
            l.strays.iter().map(|s| s.byte).collect::<Vec<_>>(),
            b"=-".to_vec()
        );
        assert_eq!(l.tokens[5].0, Token::Number(5));
    }
}
