//! The variable store and the evaluation of parsed statements.

use std::collections::BTreeMap;

use crate::diag::{Diagnostic, RcConfError, Severity};
use crate::expand::{self, Env};
use std::path::Path;

use crate::syntax::{self, Statement, StatementKind};
use crate::testcmd;

/// How deep `. FILE` may nest (files sourcing each other loop forever in sh).
pub const MAX_SOURCE_DEPTH: usize = 16;

/// Where a value was assigned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub file: String,
    pub line: usize,
}

/// A variable's value and where it was (last) set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Var {
    pub value: String,
    pub origin: Option<Origin>,
}

/// rc.conf variables after sourcing, as the shell would hold them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RcConf {
    vars: BTreeMap<String, Var>,
    diagnostics: Vec<Diagnostic>,
    sourced: Vec<String>,
}

struct Sourcing<'a> {
    conf: &'a mut RcConf,
    file: &'a str,
    line: usize,
}

impl Env for Sourcing<'_> {
    fn var(&self, name: &str) -> Option<&str> {
        self.conf.get(name)
    }
    fn set_var(&mut self, name: &str, value: String) {
        self.conf.vars.insert(
            name.to_string(),
            Var {
                value,
                origin: Some(Origin {
                    file: self.file.to_string(),
                    line: self.line,
                }),
            },
        );
    }
}

impl RcConf {
    /// An empty configuration (no defaults).
    pub fn new() -> Self {
        Self::default()
    }

    /// Parse and evaluate `text` as if sourced from `file` (a label used in
    /// diagnostics and origins). Convenience for tests and callers holding
    /// text in memory.
    pub fn from_text(file: &str, text: &str) -> Self {
        let mut c = Self::new();
        c.source_text(file, text);
        c
    }

    /// Evaluate `text` on top of the current variables (sh's `. file`).
    /// File tests and `. FILE` inside it are reported as not evaluated:
    /// there is no file system root; use [`RcConf::load`] for that.
    pub fn source_text(&mut self, file: &str, text: &str) {
        self.source_text_in(file, text, None, 0);
    }

    pub(crate) fn source_text_in(
        &mut self,
        file: &str,
        text: &str,
        root: Option<&Path>,
        depth: usize,
    ) {
        self.sourced.push(file.to_string());
        let script = syntax::parse(text);
        self.exec(&script.statements, file, root, depth);
        if let Some(e) = script.error {
            self.diag(
                file,
                e.line,
                Severity::Error,
                format!("{}; the rest of the file is not read", e.message),
            );
        }
    }

    fn exec(&mut self, stmts: &[Statement], file: &str, root: Option<&Path>, depth: usize) {
        for stmt in stmts {
            self.exec_one(stmt, file, root, depth);
        }
    }

    fn exec_one(&mut self, stmt: &Statement, file: &str, root: Option<&Path>, depth: usize) {
        match &stmt.kind {
            StatementKind::Assignments(assigns) => {
                for a in assigns {
                    let mut env = Sourcing {
                        conf: self,
                        file,
                        line: a.line,
                    };
                    match expand::expand(&a.value, &mut env) {
                        Ok(v) => env.set_var(&a.name, v),
                        Err(e) => self.diag(
                            file,
                            a.line,
                            Severity::Error,
                            format!(
                                "cannot evaluate the value of `{}`: {}; assignment skipped",
                                a.name, e.0
                            ),
                        ),
                    }
                }
            }
            StatementKind::Colon(words) => {
                for w in words {
                    let mut env = Sourcing {
                        conf: self,
                        file,
                        line: stmt.line,
                    };
                    if let Err(e) = expand::expand(w, &mut env) {
                        self.diag(
                            file,
                            stmt.line,
                            Severity::Error,
                            format!("cannot evaluate `:` argument: {}", e.0),
                        );
                    }
                }
            }
            StatementKind::Source(word) => {
                let mut env = Sourcing {
                    conf: self,
                    file,
                    line: stmt.line,
                };
                let target = match expand::expand(word, &mut env) {
                    Ok(t) => t,
                    Err(e) => {
                        self.diag(
                            file,
                            stmt.line,
                            Severity::Error,
                            format!("cannot evaluate `.` argument: {}", e.0),
                        );
                        return;
                    }
                };
                let Some(root) = root else {
                    self.diag(
                        file,
                        stmt.line,
                        Severity::Error,
                        format!("`. {target}` not evaluated: no file system root (text was not loaded from files)"),
                    );
                    return;
                };
                if depth >= MAX_SOURCE_DEPTH {
                    self.diag(
                        file,
                        stmt.line,
                        Severity::Error,
                        format!("`. {target}` not evaluated: files source each other more than {MAX_SOURCE_DEPTH} deep"),
                    );
                    return;
                }
                if !self.source_file_at(root, &target, depth + 1) {
                    self.diag(
                        file,
                        stmt.line,
                        Severity::Error,
                        format!("`. {target}`: expected a readable file, found none"),
                    );
                }
            }
            StatementKind::If {
                branches,
                else_body,
            } => {
                for b in branches {
                    let mut env = Sourcing {
                        conf: self,
                        file,
                        line: stmt.line,
                    };
                    let mut argv = Vec::new();
                    for w in &b.condition {
                        match expand::expand_fields(w, &mut env) {
                            Ok(f) => argv.extend(f),
                            Err(e) => {
                                self.diag(file, stmt.line, Severity::Error, format!("cannot evaluate the `if` condition: {}; block not evaluated", e.0));
                                return;
                            }
                        }
                    }
                    match testcmd::eval_test(&argv, root) {
                        Ok(true) => {
                            self.exec(&b.body, file, root, depth);
                            return;
                        }
                        Ok(false) => {}
                        Err(why) => {
                            let span = if stmt.last_line > stmt.line {
                                format!(" (lines {}-{})", stmt.line, stmt.last_line)
                            } else {
                                String::new()
                            };
                            self.diag(
                                file,
                                stmt.line,
                                Severity::Error,
                                format!("cannot evaluate the `if` condition: {why}; block{span} not evaluated"),
                            );
                            return;
                        }
                    }
                }
                if let Some(body) = else_body {
                    self.exec(body, file, root, depth);
                }
            }
            StatementKind::Skipped {
                what,
                defines_variables,
            } => {
                let span = if stmt.last_line > stmt.line {
                    format!(" (lines {}-{})", stmt.line, stmt.last_line)
                } else {
                    String::new()
                };
                let (sev, msg) = if *defines_variables {
                    (
                        Severity::Error,
                        format!(
                            "expected a variable assignment, found {what}{span}; not evaluated"
                        ),
                    )
                } else {
                    (Severity::Note, format!("{what} ignored{span}"))
                };
                self.diag(file, stmt.line, sev, msg);
            }
        }
    }

    pub(crate) fn diag(&mut self, file: &str, line: usize, severity: Severity, message: String) {
        self.diagnostics.push(Diagnostic {
            file: file.to_string(),
            line,
            severity,
            message,
        });
    }

    /// The value of a variable, `None` if unset (set-but-empty is `Some("")`).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(|v| v.value.as_str())
    }

    /// The value and origin of a variable.
    pub fn var(&self, name: &str) -> Option<&Var> {
        self.vars.get(name)
    }

    /// Set a variable programmatically (no origin).
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), RcConfError> {
        if !syntax::is_name(name) {
            return Err(RcConfError::BadName(name.to_string()));
        }
        self.vars.insert(
            name.to_string(),
            Var {
                value: value.to_string(),
                origin: None,
            },
        );
        Ok(())
    }

    /// Set a variable whose name is known to be valid.
    pub(crate) fn set_trusted(&mut self, name: &str, value: &str) {
        self.vars.insert(
            name.to_string(),
            Var {
                value: value.to_string(),
                origin: None,
            },
        );
    }

    /// Unset a variable.
    pub fn unset(&mut self, name: &str) {
        self.vars.remove(name);
    }

    /// All variables, sorted by name (the order of sh's `set`).
    pub fn vars(&self) -> impl Iterator<Item = (&str, &Var)> {
        self.vars.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Names of set variables starting with `prefix`, sorted.
    pub fn names_with_prefix<'a>(&'a self, prefix: &str) -> impl Iterator<Item = &'a str> + 'a {
        let prefix = prefix.to_string();
        self.vars
            .range(prefix.clone()..)
            .map(|(k, _)| k.as_str())
            .take_while(move |k| k.starts_with(&prefix))
    }

    /// Everything that was not evaluated, in reading order.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        &self.diagnostics
    }

    /// Only the diagnostics that may have changed a variable.
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
    }

    /// `Err` listing every error diagnostic, if any.
    pub fn check(&self) -> Result<(), RcConfError> {
        let errs: Vec<Diagnostic> = self.errors().cloned().collect();
        if errs.is_empty() {
            Ok(())
        } else {
            Err(RcConfError::Unevaluated(errs))
        }
    }

    /// Files sourced so far, in order (guest paths).
    pub fn sourced_files(&self) -> &[String] {
        &self.sourced
    }

    /// `checkyesno NAME`: yes/true/on/1 are true, no/false/off/0 false
    /// (case-insensitive, exact words); anything else is false with a
    /// warning in rc, here `YesNo::Invalid`.
    pub fn yesno(&self, name: &str) -> YesNo {
        YesNo::parse(self.get(name).unwrap_or(""))
    }

    /// `checkyesno NAME` as a boolean.
    pub fn checkyesno(&self, name: &str) -> bool {
        self.yesno(name) == YesNo::Yes
    }
}

/// Result of `checkyesno`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum YesNo {
    Yes,
    No,
    /// Not a recognised boolean (rc warns "is not set properly"); false.
    Invalid,
}

impl YesNo {
    pub fn parse(v: &str) -> YesNo {
        match v.to_ascii_lowercase().as_str() {
            "yes" | "true" | "on" | "1" => YesNo::Yes,
            "no" | "false" | "off" | "0" => YesNo::No,
            _ => YesNo::Invalid,
        }
    }

    pub fn is_yes(self) -> bool {
        self == YesNo::Yes
    }
}
