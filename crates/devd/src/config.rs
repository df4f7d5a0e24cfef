//! Loading devd configuration: the main file, then every `*.conf` in each `directory`
//! (spec §1.1, §1.4, §2.1 compile-time half).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::ere;
use crate::event::EventKind;
use crate::expand::{expand, Quoting};
use crate::lexer::lex;
use crate::media::MediaKind;
use crate::parser::{parse, BlockStmt, Item, OptionStmt};

/// Order of the `*.conf` files within one `directory`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DirOrder {
    /// Byte-wise sorted by file name (deterministic; hvnet's default).
    #[default]
    Sorted,
    /// Whatever order the file system returns (upstream devd's raw `readdir` order).
    Readdir,
}

/// How to load a configuration. The default reproduces upstream devd except that directory
/// entries are sorted.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Order of files within one directory.
    pub dir_order: DirOrder,
    /// `directory` paths to read from somewhere else: `(as written, where to read)`.
    /// Used by tests and by `hvnet devd` to check a configuration tree that is not installed.
    pub dir_remap: Vec<(String, PathBuf)>,
    /// Skip `directory` statements entirely (load only the given file).
    pub no_directories: bool,
    /// Quoting of values inserted into actions.
    pub quoting: Quoting,
    /// Reject what upstream silently accepts: stray characters and regexes that do not compile.
    pub strict: bool,
}

impl LoadOptions {
    /// Read `directory "from"` from `to` instead.
    pub fn remap_dir(mut self, from: impl Into<String>, to: impl Into<PathBuf>) -> LoadOptions {
        self.dir_remap.push((from.into(), to.into()));
        self
    }

    fn resolve_dir(&self, dir: &str) -> PathBuf {
        let trimmed = dir.trim_end_matches('/');
        for (from, to) in &self.dir_remap {
            if from == dir || (!trimmed.is_empty() && from.trim_end_matches('/') == trimmed) {
                return to.clone();
            }
        }
        PathBuf::from(dir)
    }
}

/// A fatal configuration problem (devd would exit 1).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A file (the main file or a `*.conf` in a directory) could not be read.
    #[error("{file}: cannot open config file: {source}")]
    Open {
        file: String,
        #[source]
        source: std::io::Error,
    },
    /// A syntax error: what was expected and what was found.
    #[error("{file}:{line}: {message}")]
    Syntax {
        file: String,
        line: u32,
        message: String,
    },
    /// In strict mode, something upstream would only have warned about.
    #[error("{file}:{line}: {message}")]
    Strict {
        file: String,
        line: u32,
        message: String,
    },
}

impl ConfigError {
    /// File and line of the error, when it has a line.
    pub fn location(&self) -> (&str, Option<u32>) {
        match self {
            ConfigError::Open { file, .. } => (file, None),
            ConfigError::Syntax { file, line, .. } | ConfigError::Strict { file, line, .. } => {
                (file, Some(*line))
            }
        }
    }
}

/// Something upstream accepts silently but a user should know about.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Warning {
    pub file: String,
    pub line: u32,
    pub message: String,
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Line 0: about the file (or directory) as a whole.
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(f, "{}:{}: {}", self.file, self.line, self.message)
        }
    }
}

/// How one `match` statement is decided.
#[derive(Debug, Clone)]
pub(crate) enum Test {
    /// The anchored pattern can only match these (lowercased) strings.
    Literal(Box<[Box<[u8]>]>),
    /// Literal characters and `.` wildcards: a length check and a byte compare.
    Wildcard(Box<ere::WildcardLiteral>),
    /// A regex, and the literal text every match starts with (checked first: most values
    /// tested against `ums[0-9]+` do not start with `ums`).
    Regex(Arc<crate::pattern::Pattern>, Option<Box<[u8]>>),
    /// The pattern does not compile: never true (always, if inverted).
    Never,
}

impl Test {
    #[inline]
    pub(crate) fn is_match(&self, value: &[u8]) -> bool {
        match self {
            Test::Literal(alts) => alts.iter().any(|a| crate::casefold::eq_lower(a, value)),
            Test::Wildcard(w) => w.matches(value),
            Test::Regex(r, prefix) => {
                prefix
                    .as_deref()
                    .is_none_or(|p| crate::casefold::starts_with_lower(p, value))
                    && r.is_match(value)
            }
            Test::Never => false,
        }
    }
}

/// A compiled `match` statement.
#[derive(Debug, Clone)]
pub struct MatchStmt {
    pub(crate) var: Box<[u8]>,
    pub(crate) pattern: Box<[u8]>,
    pub(crate) regex: Option<Box<str>>,
    pub(crate) inverted: bool,
    pub(crate) test: Test,
    pub(crate) line: u32,
}

impl MatchStmt {
    /// The variable tested.
    pub fn var(&self) -> &[u8] {
        &self.var
    }
    /// The pattern after load-time expansion, without the `!` and without devd's `^…$`.
    pub fn pattern(&self) -> &[u8] {
        &self.pattern
    }
    /// The `regex`-crate translation of `^pattern$`, or `None` if the ERE does not compile.
    pub fn translated(&self) -> Option<&str> {
        self.regex.as_deref()
    }
    /// Whether a leading `!` inverted the match.
    pub fn inverted(&self) -> bool {
        self.inverted
    }
    /// The literal strings this match accepts (lowercase), if it is a literal set.
    pub fn literals(&self) -> Option<&[Box<[u8]>]> {
        match &self.test {
            Test::Literal(l) if !self.inverted => Some(l),
            _ => None,
        }
    }
    /// Line of the statement.
    pub fn line(&self) -> u32 {
        self.line
    }
    /// Evaluate against a variable's value.
    pub fn matches(&self, value: &[u8]) -> bool {
        self.test.is_match(value) != self.inverted
    }
}

/// One statement of a rule, in written order.
#[derive(Debug, Clone)]
pub enum Statement {
    Match(MatchStmt),
    Media(MediaKind),
    Action(Box<[u8]>),
}

/// A non-empty event block.
#[derive(Debug, Clone)]
pub struct Rule {
    pub(crate) kind: EventKind,
    pub(crate) priority: i32,
    pub(crate) file: &'static str,
    pub(crate) line: u32,
    pub(crate) seq: u32,
    pub(crate) stmts: Box<[Statement]>,
}

impl Rule {
    pub fn kind(&self) -> EventKind {
        self.kind
    }
    pub fn priority(&self) -> i32 {
        self.priority
    }
    /// File the block was read from (as opened).
    pub fn file(&self) -> &'static str {
        self.file
    }
    /// Line of the block keyword.
    pub fn line(&self) -> u32 {
        self.line
    }
    /// Position in parse order over all files (ties in priority keep this order).
    pub fn seq(&self) -> u32 {
        self.seq
    }
    pub fn statements(&self) -> &[Statement] {
        &self.stmts
    }
    /// Action templates in written order.
    pub fn actions(&self) -> impl Iterator<Item = &[u8]> {
        self.stmts.iter().filter_map(|s| match s {
            Statement::Action(a) => Some(&a[..]),
            _ => None,
        })
    }
}

/// A `set` variable: name and raw value.
pub(crate) type Global = (Box<[u8]>, Box<[u8]>);

/// A loaded configuration: global variables, options and the four sorted rule lists.
#[derive(Debug, Clone)]
pub struct Config {
    pub(crate) files: Vec<&'static str>,
    pub(crate) globals: Vec<Global>,
    pub(crate) directories: Vec<String>,
    pub(crate) pid_file: Option<String>,
    pub(crate) rules: [Vec<Rule>; 4],
    pub(crate) warnings: Vec<Warning>,
    pub(crate) quoting: Quoting,
    pub(crate) discarded_empty: usize,
}

impl Config {
    /// Load `path` as the main file, then every `*.conf` of each `directory` it (or a file
    /// loaded from a directory) names. Any unreadable file or syntax error is fatal.
    pub fn load(path: impl AsRef<Path>, opts: &LoadOptions) -> Result<Config, ConfigError> {
        let path = path.as_ref();
        let name = path.display().to_string();
        let text = std::fs::read(path).map_err(|source| ConfigError::Open {
            file: name.clone(),
            source,
        })?;
        Config::from_main(&name, &text, opts)
    }

    /// Parse `text` as the main file named `name` (directories it names are still loaded
    /// unless [`LoadOptions::no_directories`]).
    pub fn parse_str(name: &str, text: &str, opts: &LoadOptions) -> Result<Config, ConfigError> {
        Config::from_main(name, text.as_bytes(), opts)
    }

    fn from_main(name: &str, text: &[u8], opts: &LoadOptions) -> Result<Config, ConfigError> {
        let mut b = Builder::new(opts);
        b.parse_file(name, text, false)?;
        if !opts.no_directories {
            b.load_directories()?;
        }
        Ok(b.finish())
    }

    /// Warnings collected while loading.
    pub fn warnings(&self) -> &[Warning] {
        &self.warnings
    }

    /// The files parsed, in order.
    pub fn files(&self) -> &[&'static str] {
        &self.files
    }

    /// `set` variables with their final values, in order of first assignment.
    pub fn variables(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.globals.iter().map(|(k, v)| (&k[..], &v[..]))
    }

    /// Final value of a `set` variable.
    pub fn variable(&self, name: &[u8]) -> Option<&[u8]> {
        self.globals
            .iter()
            .find(|(k, _)| &k[..] == name)
            .map(|(_, v)| &v[..])
    }

    /// `directory` statements as written, in order.
    pub fn directories(&self) -> &[String] {
        &self.directories
    }

    /// The last `pid-file` option, if any.
    pub fn pid_file(&self) -> Option<&str> {
        self.pid_file.as_deref()
    }

    /// The rules for one event kind, sorted as devd evaluates them (priority descending,
    /// then parse order). Empty for [`EventKind::Unknown`].
    pub fn rules(&self, kind: EventKind) -> &[Rule] {
        match kind.index() {
            Some(i) => &self.rules[i],
            None => &[],
        }
    }

    /// Total number of rules over the four kinds.
    pub fn rule_count(&self) -> usize {
        self.rules.iter().map(Vec::len).sum()
    }

    /// Number of empty blocks that were parsed and discarded.
    pub fn discarded_empty_blocks(&self) -> usize {
        self.discarded_empty
    }

    /// Quoting used for values inserted into actions.
    pub fn quoting(&self) -> Quoting {
        self.quoting
    }
}

struct Builder<'o> {
    opts: &'o LoadOptions,
    cfg: Config,
    seq: u32,
    /// Directories in statement order, with whether they came from a directory-loaded file.
    dir_queue: Vec<(String, bool)>,
    regexes: HashMap<String, Arc<crate::pattern::Pattern>>,
}

impl<'o> Builder<'o> {
    fn new(opts: &'o LoadOptions) -> Builder<'o> {
        Builder {
            opts,
            cfg: Config {
                files: Vec::new(),
                globals: Vec::new(),
                directories: Vec::new(),
                pid_file: None,
                rules: Default::default(),
                warnings: Vec::new(),
                quoting: opts.quoting,
                discarded_empty: 0,
            },
            seq: 0,
            dir_queue: Vec::new(),
            regexes: HashMap::new(),
        }
    }

    fn warn(&mut self, file: &str, line: u32, message: String) -> Result<(), ConfigError> {
        if self.opts.strict {
            return Err(ConfigError::Strict {
                file: file.to_string(),
                line,
                message,
            });
        }
        self.cfg.warnings.push(Warning {
            file: file.to_string(),
            line,
            message,
        });
        Ok(())
    }

    fn note(&mut self, file: &str, line: u32, message: String) {
        self.cfg.warnings.push(Warning {
            file: file.to_string(),
            line,
            message,
        });
    }

    fn global(&self, name: &[u8]) -> &[u8] {
        self.cfg
            .globals
            .iter()
            .find(|(k, _)| &k[..] == name)
            .map(|(_, v)| &v[..])
            .unwrap_or(b"")
    }

    fn set_global(&mut self, name: Vec<u8>, value: Vec<u8>) {
        let value = fix_value(&value).into_boxed_slice();
        match self.cfg.globals.iter_mut().find(|(k, _)| **k == *name) {
            Some(slot) => slot.1 = value,
            None => self.cfg.globals.push((name.into_boxed_slice(), value)),
        }
    }

    fn parse_file(&mut self, name: &str, text: &[u8], from_dir: bool) -> Result<(), ConfigError> {
        let file = crate::intern::file_name(name);
        self.cfg.files.push(file);
        let lexed = lex(text);
        let mut line_strays: Vec<(u32, Vec<u8>)> = Vec::new();
        for s in &lexed.strays {
            match line_strays.last_mut() {
                Some((l, bytes)) if *l == s.line => bytes.push(s.byte),
                _ => line_strays.push((s.line, vec![s.byte])),
            }
        }
        for (line, bytes) in line_strays {
            let shown: Vec<String> = bytes.iter().map(|b| format!("{:?}", *b as char)).collect();
            self.warn(
                name,
                line,
                format!(
                    "stray character(s) {} ignored (devd echoes them to stdout)",
                    shown.join(" ")
                ),
            )?;
        }
        let items = parse(&lexed.tokens).map_err(|e| ConfigError::Syntax {
            file: name.to_string(),
            line: e.line,
            message: e.to_string(),
        })?;
        for item in items {
            match item {
                Item::Options(stmts) => {
                    for (stmt, _line) in stmts {
                        match stmt {
                            OptionStmt::Directory(d) => {
                                let d = String::from_utf8_lossy(&d).into_owned();
                                self.cfg.directories.push(d.clone());
                                self.dir_queue.push((d, from_dir));
                            }
                            OptionStmt::PidFile(p) => {
                                self.cfg.pid_file = Some(String::from_utf8_lossy(&p).into_owned())
                            }
                            OptionStmt::Set { name, value } => self.set_global(name, value),
                        }
                    }
                }
                Item::Block {
                    kind,
                    priority,
                    line,
                    stmts,
                } => {
                    let seq = self.seq;
                    self.seq += 1;
                    if stmts.is_empty() {
                        self.cfg.discarded_empty += 1;
                        self.note(
                            name,
                            line,
                            format!("empty {} block discarded (devd ignores it)", kind.as_str()),
                        );
                        continue;
                    }
                    let mut out = Vec::with_capacity(stmts.len());
                    for (stmt, sline) in stmts {
                        out.push(match stmt {
                            BlockStmt::Match { var, pattern } => {
                                Statement::Match(self.compile_match(name, sline, var, pattern)?)
                            }
                            BlockStmt::MediaType(t) => Statement::Media(MediaKind::from_name(&t)),
                            BlockStmt::Action(a) => Statement::Action(a.into_boxed_slice()),
                        });
                    }
                    let idx = kind.index().expect("blocks have rule kinds");
                    self.cfg.rules[idx].push(Rule {
                        kind,
                        priority,
                        file,
                        line,
                        seq,
                        stmts: out.into_boxed_slice(),
                    });
                }
            }
        }
        Ok(())
    }

    fn compile_match(
        &mut self,
        file: &str,
        line: u32,
        var: Vec<u8>,
        literal: Vec<u8>,
    ) -> Result<MatchStmt, ConfigError> {
        let (inverted, body) = match literal.first() {
            Some(b'!') => (true, &literal[1..]),
            _ => (false, &literal[..]),
        };
        let expanded = expand(body, None, |n| self.global(n));
        if var == b"system" && expanded.eq_ignore_ascii_case(b"kern") {
            self.note(
                file,
                line,
                "system 'kern' was renamed 'kernel' in FreeBSD 14; this rule will not match there"
                    .into(),
            );
        }
        let mut full = Vec::with_capacity(expanded.len() + 2);
        full.push(b'^');
        full.extend_from_slice(&expanded);
        full.push(b'$');
        let translated = ere::translate(&full);
        let (regex, test) = match translated {
            Ok(t) => {
                let test = match ere::literal_alternatives(&expanded) {
                    Some(alts) => {
                        Test::Literal(alts.into_iter().map(Vec::into_boxed_slice).collect())
                    }
                    None => match self.regex(&t) {
                        Ok(r) => match ere::wildcard_literal(&expanded) {
                            Some(w) => Test::Wildcard(Box::new(w)),
                            None => Test::Regex(
                                r,
                                ere::literal_prefix(&expanded).map(Vec::into_boxed_slice),
                            ),
                        },
                        Err(e) => {
                            self.regex_warning(file, line, &full, inverted, &e)?;
                            Test::Never
                        }
                    },
                };
                (Some(t.into_boxed_str()), test)
            }
            Err(e) => {
                self.regex_warning(file, line, &full, inverted, &e)?;
                (None, Test::Never)
            }
        };
        Ok(MatchStmt {
            var: var.into_boxed_slice(),
            pattern: expanded.into_boxed_slice(),
            regex,
            inverted,
            test,
            line,
        })
    }

    fn regex_warning(
        &mut self,
        file: &str,
        line: u32,
        full: &[u8],
        inverted: bool,
        e: &ere::EreError,
    ) -> Result<(), ConfigError> {
        let outcome = if inverted {
            "always matches (inverted)"
        } else {
            "never matches"
        };
        self.warn(
            file,
            line,
            format!(
                "regex \"{}\" does not compile: {e}; the match {outcome}",
                String::from_utf8_lossy(full)
            ),
        )
    }

    fn regex(&mut self, translated: &str) -> Result<Arc<crate::pattern::Pattern>, ere::EreError> {
        if let Some(r) = self.regexes.get(translated) {
            return Ok(r.clone());
        }
        let r = Arc::new(crate::pattern::Pattern::new(translated)?);
        self.regexes.insert(translated.to_string(), r.clone());
        Ok(r)
    }

    /// Queue semantics: directories named by directory-loaded files are scanned after the
    /// current list, each at most once (upstream mutates the list while iterating it).
    fn load_directories(&mut self) -> Result<(), ConfigError> {
        let mut scanned: Vec<PathBuf> = Vec::new();
        let mut i = 0;
        while i < self.dir_queue.len() {
            let (dir, nested) = self.dir_queue[i].clone();
            i += 1;
            let real = self.opts.resolve_dir(&dir);
            if nested && scanned.contains(&real) {
                self.note(
                    &dir,
                    0,
                    "directory already scanned; not loading it again".into(),
                );
                continue;
            }
            scanned.push(real.clone());
            for path in conf_files(&real, self.opts.dir_order) {
                let name = path.display().to_string();
                let text = match read_regular(&path) {
                    Ok(Some(text)) => text,
                    Ok(None) => {
                        self.note(&name, 0, "not a regular file; skipped".into());
                        continue;
                    }
                    Err(source) => return Err(ConfigError::Open { file: name, source }),
                };
                self.parse_file(&name, &text, true)?;
            }
        }
        Ok(())
    }

    fn finish(mut self) -> Config {
        for list in &mut self.cfg.rules {
            // Stable: equal priorities keep parse order.
            list.sort_by_key(|r| std::cmp::Reverse(r.priority));
        }
        self.cfg
    }
}

/// devd's `fix_value`: every `\"` becomes `"`.
pub(crate) fn fix_value(v: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while i < v.len() {
        if v[i] == b'\\' && v.get(i + 1) == Some(&b'"') {
            out.push(b'"');
            i += 2;
        } else {
            out.push(v[i]);
            i += 1;
        }
    }
    out
}

/// The contents of `path` if it is a regular file (after symlinks), `None` for anything else:
/// a FIFO would block the load (and a reload) until some writer came, a device could do
/// anything when opened. The type is checked before opening and again on the descriptor,
/// opened non-blocking in case a FIFO was swapped in between.
fn read_regular(path: &Path) -> std::io::Result<Option<Vec<u8>>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    if !std::fs::metadata(path)?.is_file() {
        return Ok(None);
    }
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY)
        .open(path)?;
    if !f.metadata()?.is_file() {
        return Ok(None);
    }
    let mut text = Vec::new();
    f.read_to_end(&mut text)?;
    Ok(Some(text))
}

/// The `*.conf` entries of a directory (name ends in `.conf`, any length ≥ 5; which of them
/// are regular files is [`read_regular`]'s business).
/// A directory that cannot be read yields nothing, as upstream.
fn conf_files(dir: &Path, order: DirOrder) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<std::ffi::OsString> = entries
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .filter(|n| n.as_encoded_bytes().ends_with(b".conf"))
        .collect();
    if order == DirOrder::Sorted {
        names.sort_by(|a, b| a.as_encoded_bytes().cmp(b.as_encoded_bytes()));
    }
    names.into_iter().map(|n| dir.join(n)).collect()
}
