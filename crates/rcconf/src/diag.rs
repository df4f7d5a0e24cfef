//! Diagnostics: what could not be evaluated, with file and line.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Informational: ignored but harmless (e.g. a function definition).
    Note,
    /// Something was not evaluated and might have changed a variable.
    Error,
}

/// `FILE:LINE: message`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Diagnostic {
    /// The path as the guest sees it (e.g. `/etc/rc.conf`).
    pub file: String,
    /// 1-based line; 0 when the problem concerns the whole file.
    pub line: usize,
    pub severity: Severity,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(f, "{}:{}: {}", self.file, self.line, self.message)
        }
    }
}

/// Errors of this crate.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RcConfError {
    /// Strict loading found constructs it could not evaluate.
    #[error("{}", join(.0))]
    Unevaluated(Vec<Diagnostic>),
    /// A textual edit could not be made safely.
    #[error("{file}:{line}: cannot edit `{name}`: {reason}")]
    Edit {
        file: String,
        line: usize,
        name: String,
        reason: String,
    },
    #[error("`{0}` is not a valid variable name: expected letters, digits and `_`, not starting with a digit")]
    BadName(String),
}

fn join(d: &[Diagnostic]) -> String {
    d.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}
