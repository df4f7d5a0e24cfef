//! Parser for the subset of sh(1) that rc.conf files use.
//!
//! The parser turns a file into statements. Assignments (and the `:`
//! builtin, which only matters for `${var:=default}`) are represented fully;
//! everything else (commands, conditionals, loops, function definitions,
//! pipelines) is recognised just well enough to be skipped as one unit and
//! reported, because evaluating it would mean guessing.

use std::fmt;

/// One shell word, as a sequence of parts (quoting is kept because it
/// matters for pattern matching in `${var%pattern}`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Word {
    pub parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// Unquoted literal text.
    Lit(String),
    /// Text from single quotes or a backslash escape: literal, never a pattern.
    Quoted(String),
    /// The contents of a double-quoted string.
    Double(Vec<Part>),
    /// `$name` or `${...}`.
    Param(Param),
    /// A construct that cannot be evaluated without running a shell
    /// (command substitution, arithmetic, positional/special parameters).
    Unsupported(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    pub name: String,
    pub op: ParamOp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParamOp {
    /// `$name`, `${name}`
    Plain,
    /// `${#name}`
    Length,
    /// `${name-word}` / `${name:-word}`
    Default { colon: bool, word: Word },
    /// `${name=word}` / `${name:=word}`
    Assign { colon: bool, word: Word },
    /// `${name+word}` / `${name:+word}`
    Alternative { colon: bool, word: Word },
    /// `${name?word}` / `${name:?word}`
    ErrorIfUnset { colon: bool, word: Word },
    /// `${name%pat}` / `${name%%pat}`
    TrimSuffix { longest: bool, pattern: Word },
    /// `${name#pat}` / `${name##pat}`
    TrimPrefix { longest: bool, pattern: Word },
}

/// `NAME=value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    pub name: String,
    pub value: Word,
    pub line: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// First line of the statement (1-based).
    pub line: usize,
    /// Last line of the statement (continuations and multi-line quotes
    /// make it differ from `line`).
    pub last_line: usize,
    pub kind: StatementKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatementKind {
    /// One or more assignments and nothing else, applied left to right.
    Assignments(Vec<Assignment>),
    /// The `:` builtin; its arguments are expanded for their side effects.
    Colon(Vec<Word>),
    /// `if ...; then ...; [elif ...; then ...;] [else ...;] fi` whose
    /// conditions are single simple commands (evaluated only when they
    /// are `test`/`[` expressions).
    If {
        branches: Vec<Branch>,
        else_body: Option<Vec<Statement>>,
    },
    /// `. FILE`.
    Source(Word),
    /// Something that is not evaluated. `defines_variables` is false only
    /// for function definitions, which cannot change any variable by
    /// being defined.
    Skipped {
        what: String,
        defines_variables: bool,
    },
}

/// One `if`/`elif` arm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Branch {
    /// The words of the condition command (e.g. `[`, `-r`, `FILE`, `]`),
    /// preceded by `!` when the condition is negated (`if ! [ ... ]`).
    pub condition: Vec<Word>,
    pub body: Vec<Statement>,
}

/// A fatal syntax error: the rest of the file cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// The statements of a file, and the syntax error that ended parsing early,
/// if any (statements before the error are kept: sh runs a sourced file
/// command by command, so they would have taken effect).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Script {
    pub statements: Vec<Statement>,
    pub error: Option<SyntaxError>,
}

/// Parse a whole file. Never panics; bad input gives `Script::error`.
pub fn parse(text: &str) -> Script {
    let mut p = Parser {
        lx: Lexer::new(text),
    };
    let (cmds, lex_error) = p.all_commands();
    let mut st = Structurer {
        cmds: logical(cmds),
        i: 0,
        depth: 0,
    };
    let mut script = Script::default();
    let structure = st.seq_into(&[], &mut script.statements);
    // A compound command cut short by a lexing error is reported as that
    // error only.
    script.error = lex_error.or(structure.err());
    script
}

/// Parse `text` as the arguments of a command line, the way `eval` would
/// (quotes honoured). Used for `ifconfig_IF` values, which rc evaluates.
pub fn parse_words(text: &str) -> Result<Vec<Word>, SyntaxError> {
    let mut lx = Lexer::new(text);
    let mut words = Vec::new();
    loop {
        lx.skip_blanks();
        match lx.peek() {
            None => return Ok(words),
            Some('\n') => {
                lx.bump();
            }
            Some('#') => lx.skip_comment(),
            Some(c) if is_operator_char(c) => {
                return Err(lx.err(format!("expected a word, found operator `{c}`")));
            }
            Some(_) => words.push(lx.word(Ctx::Unquoted)?),
        }
    }
}

/// True for a valid shell variable name.
pub fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

fn is_name_start(c: char) -> bool {
    c == '_' || c.is_ascii_alphabetic()
}

fn is_name_char(c: char) -> bool {
    c == '_' || c.is_ascii_alphanumeric()
}

fn is_operator_char(c: char) -> bool {
    matches!(c, ';' | '&' | '|' | '<' | '>' | '(' | ')')
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Ctx {
    /// A normal word: ends at a blank, newline or operator character.
    Unquoted,
    /// The word inside `${name op word}`: ends at an unquoted `}`.
    Brace,
}

struct Lexer {
    chars: Vec<char>,
    pos: usize,
    line: usize,
    /// Nesting of `${...}` being read (bounded to keep recursion shallow).
    depth: usize,
}

/// Deepest `${...${...}}` or `if` nesting read; deeper input is an error
/// (`${`) or skipped (`if`), never a stack overflow.
pub const MAX_NESTING: usize = 64;

impl Lexer {
    fn new(text: &str) -> Self {
        Lexer {
            chars: text.chars().collect(),
            pos: 0,
            line: 1,
            depth: 0,
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn peek_at(&self, n: usize) -> Option<char> {
        self.chars.get(self.pos + n).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += 1;
        if c == '\n' {
            self.line += 1;
        }
        Some(c)
    }

    fn err(&self, message: String) -> SyntaxError {
        SyntaxError {
            line: self.line,
            message,
        }
    }

    /// Skip blanks and backslash-newline continuations.
    fn skip_blanks(&mut self) {
        loop {
            match self.peek() {
                Some(' ' | '\t' | '\r') => {
                    self.bump();
                }
                Some('\\') if self.peek_at(1) == Some('\n') => {
                    self.bump();
                    self.bump();
                }
                _ => return,
            }
        }
    }

    fn skip_comment(&mut self) {
        while let Some(c) = self.peek() {
            if c == '\n' {
                return;
            }
            self.bump();
        }
    }

    fn word(&mut self, ctx: Ctx) -> Result<Word, SyntaxError> {
        let mut parts = Vec::new();
        let mut lit = String::new();
        loop {
            let Some(c) = self.peek() else {
                if ctx == Ctx::Brace {
                    return Err(self.err("expected `}` to close `${`, found end of file".into()));
                }
                break;
            };
            match c {
                ' ' | '\t' | '\r' | '\n' if ctx == Ctx::Unquoted => break,
                c if ctx == Ctx::Unquoted && is_operator_char(c) => break,
                '}' if ctx == Ctx::Brace => break,
                '\\' => {
                    self.bump();
                    match self.peek() {
                        Some('\n') => {
                            self.bump();
                        }
                        Some(e) => {
                            self.bump();
                            flush(&mut lit, &mut parts);
                            push_quoted(&mut parts, e);
                        }
                        None => lit.push('\\'),
                    }
                }
                '\'' => {
                    flush(&mut lit, &mut parts);
                    let start = self.line;
                    self.bump();
                    let mut s = String::new();
                    loop {
                        match self.bump() {
                            Some('\'') => break,
                            Some(ch) => s.push(ch),
                            None => {
                                return Err(SyntaxError {
                                    line: start,
                                    message: "expected `'` to close the single quote opened here, found end of file".into(),
                                })
                            }
                        }
                    }
                    parts.push(Part::Quoted(s));
                }
                '"' => {
                    flush(&mut lit, &mut parts);
                    self.bump();
                    let inner = self.double_quoted()?;
                    parts.push(Part::Double(inner));
                }
                '$' => {
                    flush(&mut lit, &mut parts);
                    let part = self.dollar()?;
                    parts.push(part);
                }
                '`' => {
                    flush(&mut lit, &mut parts);
                    self.backquote()?;
                    parts.push(Part::Unsupported(
                        "command substitution `...` is not supported".into(),
                    ));
                }
                _ => {
                    lit.push(c);
                    self.bump();
                }
            }
        }
        flush(&mut lit, &mut parts);
        Ok(Word { parts })
    }

    fn double_quoted(&mut self) -> Result<Vec<Part>, SyntaxError> {
        let start = self.line;
        let mut parts = Vec::new();
        let mut lit = String::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(SyntaxError {
                    line: start,
                    message:
                        "expected `\"` to close the double quote opened here, found end of file"
                            .into(),
                });
            };
            match c {
                '"' => {
                    self.bump();
                    break;
                }
                '\\' => {
                    self.bump();
                    match self.peek() {
                        Some('\n') => {
                            self.bump();
                        }
                        Some(e @ ('$' | '`' | '"' | '\\')) => {
                            self.bump();
                            flush_quoted(&mut lit, &mut parts);
                            push_quoted(&mut parts, e);
                        }
                        _ => lit.push('\\'),
                    }
                }
                '$' => {
                    flush_quoted(&mut lit, &mut parts);
                    let part = self.dollar()?;
                    parts.push(part);
                }
                '`' => {
                    flush_quoted(&mut lit, &mut parts);
                    self.backquote()?;
                    parts.push(Part::Unsupported(
                        "command substitution `...` is not supported".into(),
                    ));
                }
                _ => {
                    lit.push(c);
                    self.bump();
                }
            }
        }
        flush_quoted(&mut lit, &mut parts);
        Ok(parts)
    }

    fn backquote(&mut self) -> Result<(), SyntaxError> {
        let start = self.line;
        self.bump();
        loop {
            match self.bump() {
                Some('`') => return Ok(()),
                Some('\\') => {
                    self.bump();
                }
                Some(_) => {}
                None => {
                    return Err(SyntaxError {
                        line: start,
                        message: "expected a closing backquote, found end of file".into(),
                    })
                }
            }
        }
    }

    /// At `$`: parse an expansion, or a literal `$`.
    fn dollar(&mut self) -> Result<Part, SyntaxError> {
        self.bump();
        match self.peek() {
            Some('{') => {
                self.bump();
                if self.depth >= MAX_NESTING {
                    return Err(self.err(format!(
                        "expected at most {MAX_NESTING} nested `${{`, found more"
                    )));
                }
                self.depth += 1;
                let r = self.braced();
                self.depth -= 1;
                r
            }
            Some('(') => {
                let arith = self.peek_at(1) == Some('(');
                self.skip_parens()?;
                Ok(Part::Unsupported(if arith {
                    "arithmetic expansion $((...)) is not supported".into()
                } else {
                    "command substitution $(...) is not supported".into()
                }))
            }
            Some(c) if is_name_start(c) => {
                let name = self.name();
                Ok(Part::Param(Param {
                    name,
                    op: ParamOp::Plain,
                }))
            }
            Some(c) if c.is_ascii_digit() || "@*#?-$!".contains(c) => {
                self.bump();
                Ok(Part::Unsupported(format!(
                    "special parameter ${c} is not supported"
                )))
            }
            _ => Ok(Part::Lit("$".into())),
        }
    }

    fn name(&mut self) -> String {
        let mut s = String::new();
        while let Some(c) = self.peek() {
            if !is_name_char(c) {
                break;
            }
            s.push(c);
            self.bump();
        }
        s
    }

    /// Skip a balanced `( ... )` group, honouring quotes.
    fn skip_parens(&mut self) -> Result<(), SyntaxError> {
        let start = self.line;
        let mut depth = 0usize;
        loop {
            let Some(c) = self.bump() else {
                return Err(SyntaxError {
                    line: start,
                    message: "expected `)` to close `$(`, found end of file".into(),
                });
            };
            match c {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        return Ok(());
                    }
                }
                '\\' => {
                    self.bump();
                }
                '\'' => loop {
                    match self.bump() {
                        Some('\'') => break,
                        Some(_) => {}
                        None => {
                            return Err(SyntaxError {
                                line: start,
                                message: "expected `)` to close `$(`, found end of file".into(),
                            })
                        }
                    }
                },
                '"' => loop {
                    match self.bump() {
                        Some('"') => break,
                        Some('\\') => {
                            self.bump();
                        }
                        Some(_) => {}
                        None => {
                            return Err(SyntaxError {
                                line: start,
                                message: "expected `)` to close `$(`, found end of file".into(),
                            })
                        }
                    }
                },
                _ => {}
            }
        }
    }

    /// After `${`.
    fn braced(&mut self) -> Result<Part, SyntaxError> {
        // ${#name}: length.
        if self.peek() == Some('#') && self.peek_at(1).is_some_and(is_name_start) {
            self.bump();
            let name = self.name();
            return match self.bump() {
                Some('}') => Ok(Part::Param(Param {
                    name,
                    op: ParamOp::Length,
                })),
                other => Err(self.err(format!(
                    "expected `}}` after `${{#{name}`, found {}",
                    describe(other)
                ))),
            };
        }
        let (name, special) = match self.peek() {
            Some(c) if is_name_start(c) => (self.name(), false),
            Some(c) if c.is_ascii_digit() || "@*#?-$!".contains(c) => {
                self.bump();
                (c.to_string(), true)
            }
            other => {
                return Err(self.err(format!(
                    "bad substitution: expected a variable name after `${{`, found {}",
                    describe(other)
                )))
            }
        };
        let op = match self.peek() {
            Some('}') => {
                self.bump();
                ParamOp::Plain
            }
            Some(c @ (':' | '-' | '=' | '+' | '?')) => {
                let colon = c == ':';
                self.bump();
                let opc = if colon {
                    match self.bump() {
                        Some(o @ ('-' | '=' | '+' | '?')) => o,
                        other => {
                            return Err(self.err(format!(
                            "bad substitution in `${{{name}:`: expected one of `-=+?`, found {}",
                            describe(other)
                        )))
                        }
                    }
                } else {
                    c
                };
                let word = self.brace_word()?;
                match opc {
                    '-' => ParamOp::Default { colon, word },
                    '=' => ParamOp::Assign { colon, word },
                    '+' => ParamOp::Alternative { colon, word },
                    _ => ParamOp::ErrorIfUnset { colon, word },
                }
            }
            Some(c @ ('%' | '#')) => {
                self.bump();
                let longest = self.peek() == Some(c);
                if longest {
                    self.bump();
                }
                let pattern = self.brace_word()?;
                if c == '%' {
                    ParamOp::TrimSuffix { longest, pattern }
                } else {
                    ParamOp::TrimPrefix { longest, pattern }
                }
            }
            other => {
                return Err(self.err(format!(
                    "bad substitution in `${{{name}`: expected `}}` or an operator, found {}",
                    describe(other)
                )))
            }
        };
        if special {
            return Ok(Part::Unsupported(format!(
                "special parameter ${{{name}...}} is not supported"
            )));
        }
        Ok(Part::Param(Param { name, op }))
    }

    fn brace_word(&mut self) -> Result<Word, SyntaxError> {
        let w = self.word(Ctx::Brace)?;
        // word() stops at `}` without consuming it.
        self.bump();
        Ok(w)
    }
}

fn describe(c: Option<char>) -> String {
    match c {
        None => "end of file".into(),
        Some('\n') => "end of line".into(),
        Some(c) => format!("`{c}`"),
    }
}

fn flush(lit: &mut String, parts: &mut Vec<Part>) {
    if !lit.is_empty() {
        parts.push(Part::Lit(std::mem::take(lit)));
    }
}

fn flush_quoted(lit: &mut String, parts: &mut Vec<Part>) {
    if !lit.is_empty() {
        push_quoted_str(parts, &std::mem::take(lit));
    }
}

fn push_quoted(parts: &mut Vec<Part>, c: char) {
    push_quoted_str(parts, &c.to_string());
}

fn push_quoted_str(parts: &mut Vec<Part>, s: &str) {
    if let Some(Part::Quoted(q)) = parts.last_mut() {
        q.push_str(s);
    } else {
        parts.push(Part::Quoted(s.to_string()));
    }
}

/// A token of a command.
#[derive(Debug, Clone)]
enum Tok {
    Word { word: Word, assign: Option<String> },
    Op(String),
}

impl Tok {
    /// The text of an unquoted, expansion-free word (how reserved words are
    /// recognised).
    fn plain(&self) -> Option<&str> {
        match self {
            Tok::Word { word, assign: None } => match word.parts.as_slice() {
                [Part::Lit(s)] => Some(s),
                _ => None,
            },
            _ => None,
        }
    }
}

struct Command {
    line: usize,
    last_line: usize,
    toks: Vec<Tok>,
}

struct Parser {
    lx: Lexer,
}

const OPENERS: &[&str] = &["if", "case", "for", "while", "until", "{"];
const CLOSERS: &[&str] = &["fi", "esac", "done", "}"];
/// Reserved words after which another command word may follow.
const LEADING: &[&str] = &[
    "if", "then", "else", "elif", "do", "while", "until", "{", "}", "!", "fi", "done", "esac",
];

impl Parser {
    /// Read the next command (up to a newline, `;`, `;;` or end of file).
    fn command(&mut self) -> Result<Option<Command>, SyntaxError> {
        // Skip blank lines, separators and comments.
        loop {
            self.lx.skip_blanks();
            match self.lx.peek() {
                None => return Ok(None),
                Some('\n' | ';') => {
                    self.lx.bump();
                }
                Some('#') => self.lx.skip_comment(),
                Some(_) => break,
            }
        }
        let line = self.lx.line;
        let mut toks = Vec::new();
        let mut assigning = true;
        loop {
            self.lx.skip_blanks();
            let Some(c) = self.lx.peek() else { break };
            match c {
                '\n' => break,
                ';' => break,
                '#' => {
                    self.lx.skip_comment();
                    break;
                }
                c if is_operator_char(c) => {
                    self.lx.bump();
                    let mut op = c.to_string();
                    if matches!(c, '&' | '|' | '<' | '>') && self.lx.peek() == Some(c) {
                        self.lx.bump();
                        op.push(c);
                    }
                    toks.push(Tok::Op(op));
                    assigning = false;
                }
                _ => {
                    let assign = if assigning {
                        self.assignment_name()
                    } else {
                        None
                    };
                    if assign.is_none() {
                        assigning = false;
                    }
                    let word = self.lx.word(Ctx::Unquoted)?;
                    toks.push(Tok::Word { word, assign });
                }
            }
        }
        let last_line = self.lx.line;
        // Consume the terminator (`;;` counts as one).
        if self.lx.peek() == Some(';') {
            self.lx.bump();
            if self.lx.peek() == Some(';') {
                self.lx.bump();
            }
        }
        Ok(Some(Command {
            line,
            last_line,
            toks,
        }))
    }

    /// If the lexer is at `NAME=`, consume it and return NAME.
    fn assignment_name(&mut self) -> Option<String> {
        let mut i = 0;
        match self.lx.peek_at(0) {
            Some(c) if is_name_start(c) => {}
            _ => return None,
        }
        while let Some(c) = self.lx.peek_at(i) {
            if is_name_char(c) {
                i += 1;
            } else {
                break;
            }
        }
        if self.lx.peek_at(i) != Some('=') {
            return None;
        }
        let name: String = self.lx.chars[self.lx.pos..self.lx.pos + i].iter().collect();
        for _ in 0..=i {
            self.lx.bump();
        }
        Some(name)
    }

    /// Lex every command of the input; the error that stopped lexing, if any.
    fn all_commands(&mut self) -> (Vec<Command>, Option<SyntaxError>) {
        let mut cmds = Vec::new();
        loop {
            match self.command() {
                Ok(Some(c)) => cmds.push(c),
                Ok(None) => return (cmds, None),
                Err(e) => return (cmds, Some(e)),
            }
        }
    }
}

/// Reserved words split off the front of a command so that each logical
/// command starts either with one reserved word alone or with a simple
/// command.
const SPLIT: &[&str] = &[
    "if", "then", "else", "elif", "do", "while", "until", "{", "}", "!", "fi", "done", "esac",
];

/// A word lexed after a reserved word was not checked for `NAME=`;
/// re-check it now that it starts a command.
fn reassign(tok: Tok) -> Tok {
    let Tok::Word {
        mut word,
        assign: None,
    } = tok
    else {
        return tok;
    };
    if let Some(Part::Lit(first)) = word.parts.first() {
        if let Some((name, rest)) = first.split_once('=') {
            if is_name(name) {
                let name = name.to_string();
                let rest = rest.to_string();
                if rest.is_empty() {
                    word.parts.remove(0);
                } else {
                    word.parts[0] = Part::Lit(rest);
                }
                return Tok::Word {
                    word,
                    assign: Some(name),
                };
            }
        }
    }
    Tok::Word { word, assign: None }
}

fn logical(cmds: Vec<Command>) -> Vec<Command> {
    let mut out = Vec::new();
    for c in cmds {
        let mut toks = c.toks.into_iter().peekable();
        let mut split_any = false;
        while let Some(w) = toks.peek().and_then(Tok::plain) {
            if !SPLIT.contains(&w) {
                break;
            }
            let t = toks.next().into_iter().collect();
            out.push(Command {
                line: c.line,
                last_line: c.last_line,
                toks: t,
            });
            split_any = true;
        }
        let mut rest: Vec<Tok> = toks.collect();
        if rest.is_empty() {
            continue;
        }
        if split_any {
            // Leading words of the remaining command may be assignments.
            let mut fixed = Vec::with_capacity(rest.len());
            let mut assigning = true;
            for t in rest.drain(..) {
                let t = if assigning { reassign(t) } else { t };
                if !matches!(
                    t,
                    Tok::Word {
                        assign: Some(_),
                        ..
                    }
                ) {
                    assigning = false;
                }
                fixed.push(t);
            }
            rest = fixed;
        }
        out.push(Command {
            line: c.line,
            last_line: c.last_line,
            toks: rest,
        });
    }
    out
}

/// sh expands an unquoted `~` at the start of an assignment value to a
/// home directory; that depends on the environment, so it is reported.
fn tilde_checked(word: &Word) -> Word {
    match word.parts.first() {
        Some(Part::Lit(s)) if s.starts_with('~') => Word {
            parts: vec![Part::Unsupported(
                "tilde expansion `~` (a home directory) is not supported".into(),
            )],
        },
        _ => word.clone(),
    }
}

fn first_plain(c: &Command) -> Option<&str> {
    c.toks.first().and_then(Tok::plain)
}

/// Turns logical commands into statements.
struct Structurer {
    cmds: Vec<Command>,
    i: usize,
    /// Nesting of `if` statements being structured.
    depth: usize,
}

impl Structurer {
    fn seq(&mut self, stop: &[&str]) -> Result<Vec<Statement>, SyntaxError> {
        let mut out = Vec::new();
        self.seq_into(stop, &mut out)?;
        Ok(out)
    }

    /// Like `seq`, keeping the statements read before an error in `out`.
    fn seq_into(&mut self, stop: &[&str], out: &mut Vec<Statement>) -> Result<(), SyntaxError> {
        while self.i < self.cmds.len() {
            let first = first_plain(&self.cmds[self.i]);
            if first.is_some_and(|f| stop.contains(&f)) {
                break;
            }
            let start = self.i;
            if first == Some("if") && self.depth < MAX_NESTING {
                self.depth += 1;
                let parsed = self.if_statement();
                self.depth -= 1;
                if let Some(st) = parsed {
                    out.push(st);
                    continue;
                }
                self.i = start;
            }
            out.push(self.one()?);
        }
        Ok(())
    }

    /// `if C; then B; [elif C; then B;]... [else B;] fi` with each C a
    /// single simple command. `None` (position unchanged by caller) when
    /// the shape is different.
    fn if_statement(&mut self) -> Option<Statement> {
        let line = self.cmds[self.i].line;
        self.i += 1; // `if`
        let mut branches = Vec::new();
        loop {
            let cond = self.condition()?;
            if self.cmds.get(self.i).and_then(first_plain) != Some("then") {
                return None;
            }
            self.i += 1;
            let body = self.seq(&["elif", "else", "fi"]).ok()?;
            branches.push(Branch {
                condition: cond,
                body,
            });
            match self.cmds.get(self.i).and_then(first_plain) {
                Some("elif") => {
                    self.i += 1;
                }
                Some("else") => {
                    self.i += 1;
                    let body = self.seq(&["fi"]).ok()?;
                    if self.cmds.get(self.i).and_then(first_plain) != Some("fi") {
                        return None;
                    }
                    return Some(self.finish_if(line, branches, Some(body)));
                }
                Some("fi") => return Some(self.finish_if(line, branches, None)),
                _ => return None,
            }
        }
    }

    fn finish_if(
        &mut self,
        line: usize,
        branches: Vec<Branch>,
        else_body: Option<Vec<Statement>>,
    ) -> Statement {
        let fi = &self.cmds[self.i];
        let last_line = fi.last_line;
        let extra = fi.toks.len() > 1;
        self.i += 1;
        Statement {
            line,
            last_line,
            kind: if extra {
                StatementKind::Skipped {
                    what: "`if` compound command with redirection or operator after `fi`".into(),
                    defines_variables: true,
                }
            } else {
                StatementKind::If {
                    branches,
                    else_body,
                }
            },
        }
    }

    /// One simple command made only of words (no operators, not a
    /// reserved word).
    fn condition(&mut self) -> Option<Vec<Word>> {
        // `if ! COND`: keep the `!` as the first word.
        let mut words = Vec::new();
        if self.cmds.get(self.i).and_then(first_plain) == Some("!")
            && self.cmds[self.i].toks.len() == 1
        {
            words.push(Word {
                parts: vec![Part::Lit("!".into())],
            });
            self.i += 1;
        }
        let c = self.cmds.get(self.i)?;
        if first_plain(c).is_some_and(|w| SPLIT.contains(&w) || OPENERS.contains(&w)) {
            return None;
        }
        for t in &c.toks {
            match t {
                Tok::Word { word, assign: None } => words.push(word.clone()),
                _ => return None,
            }
        }
        self.i += 1;
        Some(words)
    }

    /// A simple statement, or a compound command skipped whole.
    fn one(&mut self) -> Result<Statement, SyntaxError> {
        let c = &self.cmds[self.i];
        let (line, last_line) = (c.line, c.last_line);
        let stmt = |kind| Statement {
            line,
            last_line,
            kind,
        };
        let toks = &c.toks;
        if toks.iter().all(|t| {
            matches!(
                t,
                Tok::Word {
                    assign: Some(_),
                    ..
                }
            )
        }) {
            let assigns = toks
                .iter()
                .filter_map(|t| match t {
                    Tok::Word {
                        word,
                        assign: Some(name),
                    } => Some(Assignment {
                        name: name.clone(),
                        value: tilde_checked(word),
                        line,
                    }),
                    _ => None,
                })
                .collect();
            self.i += 1;
            return Ok(stmt(StatementKind::Assignments(assigns)));
        }
        let all_words = toks
            .iter()
            .all(|t| matches!(t, Tok::Word { assign: None, .. }));
        if all_words && first_plain(c) == Some(":") {
            let words = toks
                .iter()
                .skip(1)
                .filter_map(|t| match t {
                    Tok::Word { word, .. } => Some(word.clone()),
                    Tok::Op(_) => None,
                })
                .collect();
            self.i += 1;
            return Ok(stmt(StatementKind::Colon(words)));
        }
        if all_words && first_plain(c) == Some(".") && toks.len() == 2 {
            if let Tok::Word { word, .. } = &toks[1] {
                let w = word.clone();
                self.i += 1;
                return Ok(stmt(StatementKind::Source(w)));
            }
        }
        let mut nest = Nesting::default();
        nest.update(toks);
        let first_cmd = toks.iter().find(|t| {
            !matches!(
                t,
                Tok::Word {
                    assign: Some(_),
                    ..
                }
            )
        });
        let function = nest.function.clone();
        let what = if let Some(f) = &function {
            format!("function definition `{f}()`")
        } else if let Some(kw) = nest.opened.clone() {
            format!("`{kw}` compound command")
        } else {
            match first_cmd {
                Some(t @ Tok::Word { .. }) => match t.plain() {
                    Some(w) if CLOSERS.contains(&w) || LEADING.contains(&w) => {
                        format!("unexpected `{w}`")
                    }
                    Some(w) => format!("command `{w}`"),
                    None => "command with an expanded name".to_string(),
                },
                Some(Tok::Op(op)) => format!("operator `{op}`"),
                None => "command".to_string(),
            }
        };
        let has_op = toks.iter().any(|t| matches!(t, Tok::Op(_)));
        let what = if has_op && nest.opened.is_none() && function.is_none() {
            let op = toks
                .iter()
                .find_map(|t| match t {
                    Tok::Op(o) => Some(o.clone()),
                    _ => None,
                })
                .unwrap_or_default();
            format!("{what} with operator `{op}`")
        } else {
            what
        };
        let mut last = last_line;
        self.i += 1;
        while nest.open() {
            let Some(next) = self.cmds.get(self.i) else {
                return Err(SyntaxError {
                    line,
                    message: format!("{what} is not terminated (end of file inside it)"),
                });
            };
            last = next.last_line;
            nest.update(&next.toks);
            self.i += 1;
        }
        Ok(Statement {
            line,
            last_line: last,
            kind: StatementKind::Skipped {
                what,
                defines_variables: function.is_none(),
            },
        })
    }
}

/// Tracks nesting of compound commands well enough to skip them whole.
#[derive(Default)]
struct Nesting {
    depth: i64,
    parens: i64,
    pending_body: bool,
    function: Option<String>,
    opened: Option<String>,
}

impl Nesting {
    fn open(&self) -> bool {
        self.depth > 0 || self.parens > 0 || self.pending_body
    }

    fn update(&mut self, toks: &[Tok]) {
        let mut i = 0;
        if let [Tok::Word { .. }, Tok::Op(a), Tok::Op(b), ..] = toks {
            if a == "(" && b == ")" {
                if self.function.is_none() && self.depth == 0 {
                    self.function = toks[0].plain().map(str::to_string);
                    if self.function.is_none() {
                        self.function = Some("?".into());
                    }
                }
                self.pending_body = true;
                i = 3;
            }
        }
        if let Some(Tok::Op(o)) = toks.get(i) {
            if o == "(" {
                self.parens += 1;
                self.pending_body = false;
                self.opened.get_or_insert_with(|| "(".into());
                i += 1;
            }
        }
        while let Some(t) = toks.get(i) {
            let Some(w) = t.plain() else { break };
            if OPENERS.contains(&w) {
                self.depth += 1;
                self.pending_body = false;
                if self.function.is_none() {
                    self.opened.get_or_insert_with(|| w.to_string());
                }
            } else if CLOSERS.contains(&w) {
                self.depth -= 1;
            }
            if !LEADING.contains(&w) {
                break;
            }
            i += 1;
        }
        if self.parens > 0 {
            for t in &toks[i.min(toks.len())..] {
                if let Tok::Op(o) = t {
                    match o.as_str() {
                        "(" => self.parens += 1,
                        ")" => self.parens -= 1,
                        _ => {}
                    }
                }
            }
        }
        if self.depth < 0 {
            self.depth = 0;
        }
    }
}
