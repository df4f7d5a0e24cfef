//! The devd.conf grammar (spec §1.3) over the token stream of [`crate::lexer`].

use crate::event::EventKind;
use crate::lexer::{Keyword, Token};

/// One statement of an `options` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OptionStmt {
    Directory(Vec<u8>),
    PidFile(Vec<u8>),
    Set { name: Vec<u8>, value: Vec<u8> },
}

/// One statement inside an event block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlockStmt {
    /// `match "var" "regex"` and the sugar forms `device-name`, `class`, `subdevice`.
    Match {
        var: Vec<u8>,
        pattern: Vec<u8>,
    },
    MediaType(Vec<u8>),
    Action(Vec<u8>),
}

/// A top-level item with the line it starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    Options(Vec<(OptionStmt, u32)>),
    Block {
        kind: EventKind,
        priority: i32,
        line: u32,
        stmts: Vec<(BlockStmt, u32)>,
    },
}

/// A syntax error: what the grammar expected and the token found instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub line: u32,
    pub expected: String,
    pub found: String,
}

impl std::fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "expected {}, found {}", self.expected, self.found)
    }
}

struct Parser<'a> {
    toks: &'a [(Token, u32)],
    i: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> &'a (Token, u32) {
        // The lexer always ends the stream with Eof, and we never advance past it.
        &self.toks[self.i.min(self.toks.len() - 1)]
    }

    fn next(&mut self) -> &'a (Token, u32) {
        let t = self.peek();
        if !matches!(t.0, Token::Eof) {
            self.i += 1;
        }
        t
    }

    fn error(&self, expected: &str) -> SyntaxError {
        let (tok, line) = self.peek();
        SyntaxError {
            line: *line,
            expected: expected.to_string(),
            found: tok.describe(),
        }
    }

    fn expect(&mut self, want: &Token, expected: &str) -> Result<u32, SyntaxError> {
        if &self.peek().0 == want {
            Ok(self.next().1)
        } else {
            Err(self.error(expected))
        }
    }

    fn string(&mut self, expected: &str) -> Result<Vec<u8>, SyntaxError> {
        match &self.peek().0 {
            Token::Str(s) => {
                let s = s.clone();
                self.next();
                Ok(s)
            }
            _ => Err(self.error(expected)),
        }
    }

    fn items(&mut self) -> Result<Vec<Item>, SyntaxError> {
        let mut items = Vec::new();
        loop {
            let (tok, line) = self.peek();
            let kind = match tok {
                Token::Eof => return Ok(items),
                Token::Keyword(Keyword::Options) => {
                    self.next();
                    items.push(self.options()?);
                    continue;
                }
                Token::Keyword(Keyword::Attach) => EventKind::Attach,
                Token::Keyword(Keyword::Detach) => EventKind::Detach,
                Token::Keyword(Keyword::Nomatch) => EventKind::Nomatch,
                Token::Keyword(Keyword::Notify) => EventKind::Notify,
                _ => return Err(self.error("'options', 'attach', 'detach', 'nomatch' or 'notify'")),
            };
            let line = *line;
            self.next();
            let priority = match self.peek().0 {
                Token::Number(n) => {
                    self.next();
                    n
                }
                _ => {
                    return Err(self.error(&format!("a priority number after '{}'", kind.as_str())))
                }
            };
            self.expect(&Token::BeginBlock, "'{'")?;
            let mut stmts = Vec::new();
            while self.peek().0 != Token::EndBlock {
                stmts.push(self.block_stmt()?);
            }
            self.next();
            self.expect(&Token::Semicolon, "';' after '}'")?;
            items.push(Item::Block {
                kind,
                priority,
                line,
                stmts,
            });
        }
    }

    fn options(&mut self) -> Result<Item, SyntaxError> {
        self.expect(&Token::BeginBlock, "'{' after 'options'")?;
        let mut stmts = Vec::new();
        loop {
            let (tok, line) = self.peek();
            let line = *line;
            let stmt = match tok {
                Token::EndBlock if !stmts.is_empty() => break,
                Token::Keyword(Keyword::Directory) => {
                    self.next();
                    OptionStmt::Directory(self.string("a directory path string")?)
                }
                Token::Keyword(Keyword::PidFile) => {
                    self.next();
                    OptionStmt::PidFile(self.string("a pid-file path string")?)
                }
                Token::Keyword(Keyword::Set) => {
                    self.next();
                    let name = match &self.peek().0 {
                        Token::Id(name) => name.clone(),
                        _ => return Err(self.error("a variable name after 'set'")),
                    };
                    self.next();
                    let value = self.string("a value string")?;
                    OptionStmt::Set { name, value }
                }
                _ => return Err(self.error("'directory', 'pid-file' or 'set'")),
            };
            self.expect(&Token::Semicolon, "';'")?;
            stmts.push((stmt, line));
        }
        self.next();
        self.expect(&Token::Semicolon, "';' after '}'")?;
        Ok(Item::Options(stmts))
    }

    fn block_stmt(&mut self) -> Result<(BlockStmt, u32), SyntaxError> {
        let (tok, line) = self.peek();
        let line = *line;
        let sugar = |var: &str, p: &mut Parser| -> Result<BlockStmt, SyntaxError> {
            Ok(BlockStmt::Match {
                var: var.as_bytes().to_vec(),
                pattern: p.string("a regex string")?,
            })
        };
        let stmt =
            match tok {
                Token::Keyword(Keyword::Match) => {
                    self.next();
                    let var = self.string("a variable name string after 'match'")?;
                    let pattern = self.string("a regex string")?;
                    BlockStmt::Match { var, pattern }
                }
                Token::Keyword(Keyword::DeviceName) => {
                    self.next();
                    sugar("device-name", self)?
                }
                Token::Keyword(Keyword::Class) => {
                    self.next();
                    sugar("class", self)?
                }
                Token::Keyword(Keyword::Subdevice) => {
                    self.next();
                    sugar("subdevice", self)?
                }
                Token::Keyword(Keyword::MediaType) => {
                    self.next();
                    BlockStmt::MediaType(self.string("a media type string")?)
                }
                Token::Keyword(Keyword::Action) => {
                    self.next();
                    BlockStmt::Action(self.string("a command string")?)
                }
                _ => return Err(self.error(
                    "'match', 'device-name', 'class', 'subdevice', 'media-type', 'action' or '}'",
                )),
            };
        self.expect(&Token::Semicolon, "';'")?;
        Ok((stmt, line))
    }
}

/// Parse a token stream into top-level items.
pub fn parse(tokens: &[(Token, u32)]) -> Result<Vec<Item>, SyntaxError> {
    Parser { toks: tokens, i: 0 }.items()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lexer::lex;

    fn p(s: &str) -> Result<Vec<Item>, SyntaxError> {
        parse(&lex(s.as_bytes()).tokens)
    }

    #[test]
    fn empty_and_comment_only_files() {
        assert_eq!(p("").unwrap(), vec![]);
        assert_eq!(p("# nothing\n/* x */").unwrap(), vec![]);
    }

    #[test]
    fn options_block() {
        let items = p("options { directory \"/d\"; pid-file \"/p\"; set x \"y\"; };").unwrap();
        assert_eq!(
            items,
            vec![Item::Options(vec![
                (OptionStmt::Directory(b"/d".to_vec()), 1),
                (OptionStmt::PidFile(b"/p".to_vec()), 1),
                (
                    OptionStmt::Set {
                        name: b"x".to_vec(),
                        value: b"y".to_vec()
                    },
                    1
                ),
            ])]
        );
    }

    #[test]
    fn empty_options_is_an_error() {
        let e = p("options {};").unwrap_err();
        assert_eq!(e.expected, "'directory', 'pid-file' or 'set'");
        assert_eq!(e.found, "'}'");
    }

    #[test]
    fn all_statements_in_any_block() {
        let items = p("notify 5 { device-name \"a\"; class \"b\"; subdevice \"c\"; media-type \"ethernet\"; match \"v\" \"r\"; action \"x\"; };").unwrap();
        let Item::Block {
            kind,
            priority,
            stmts,
            ..
        } = &items[0]
        else {
            panic!()
        };
        assert_eq!(*kind, EventKind::Notify);
        assert_eq!(*priority, 5);
        assert_eq!(stmts.len(), 6);
        assert_eq!(
            stmts[0].0,
            BlockStmt::Match {
                var: b"device-name".to_vec(),
                pattern: b"a".to_vec()
            }
        );
        assert_eq!(
            stmts[1].0,
            BlockStmt::Match {
                var: b"class".to_vec(),
                pattern: b"b".to_vec()
            }
        );
        assert_eq!(
            stmts[2].0,
            BlockStmt::Match {
                var: b"subdevice".to_vec(),
                pattern: b"c".to_vec()
            }
        );
        assert_eq!(stmts[3].0, BlockStmt::MediaType(b"ethernet".to_vec()));
    }

    #[test]
    fn errors_name_expected_and_found_with_line() {
        let e = p("attach 1 {\n action \"x\"\n};").unwrap_err();
        assert_eq!(
            (e.line, e.expected.as_str(), e.found.as_str()),
            (3, "';'", "'}'")
        );
        let e = p("attach { };").unwrap_err();
        assert_eq!(e.found, "'{'");
        let e = p("attach 1 { };").unwrap();
        assert_eq!(e.len(), 1);
        let e = p("attach 1 { }").unwrap_err();
        assert_eq!(e.found, "end of file");
        let e = p("options { set match \"x\"; };").unwrap_err();
        assert_eq!(e.found, "keyword 'match'");
        let e = p("bogus").unwrap_err();
        assert_eq!(e.found, "name 'bogus'");
    }

    #[test]
    fn stray_characters_are_accepted() {
        let items = p("attach -5 { match \"a\" = \"b\"; };").unwrap();
        let Item::Block {
            priority, stmts, ..
        } = &items[0]
        else {
            panic!()
        };
        assert_eq!(*priority, 5);
        assert_eq!(
            stmts[0].0,
            BlockStmt::Match {
                var: b"a".to_vec(),
                pattern: b"b".to_vec()
            }
        );
    }
}
