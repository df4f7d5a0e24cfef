//! Textual edits of an rc.conf file the way sysrc(8) makes them: replace
//! the last assignment of a variable in place, or append one; delete every
//! assignment of a variable. Everything else in the file is kept byte for
//! byte.

use crate::diag::RcConfError;
use crate::syntax::{self, is_name, StatementKind};

/// `"value"` with `\`, `"`, `$` and backquote escaped, so that sourcing
/// it gives back exactly `value`.
pub fn quote(value: &str) -> String {
    let mut s = String::with_capacity(value.len() + 2);
    s.push('"');
    for c in value.chars() {
        if matches!(c, '\\' | '"' | '$' | '`') {
            s.push('\\');
        }
        s.push(c);
    }
    s.push('"');
    s
}

/// Line spans (1-based, inclusive) of single-assignment statements that
/// set `name`, in file order. Errors if an assignment of `name` shares its
/// statement or a line with something else (it could not be edited alone).
fn assignment_spans(
    text: &str,
    file: &str,
    name: &str,
) -> Result<Vec<(usize, usize)>, RcConfError> {
    let script = syntax::parse(text);
    let mut spans = Vec::new();
    for (i, st) in script.statements.iter().enumerate() {
        let StatementKind::Assignments(assigns) = &st.kind else {
            continue;
        };
        if !assigns.iter().any(|a| a.name == name) {
            continue;
        }
        let shares_line = script
            .statements
            .iter()
            .enumerate()
            .any(|(j, o)| j != i && o.line <= st.last_line && st.line <= o.last_line);
        if assigns.len() != 1 || shares_line {
            return Err(RcConfError::Edit {
                file: file.to_string(),
                line: st.line,
                name: name.to_string(),
                reason:
                    "expected the assignment alone on its line(s), found other statements there"
                        .into(),
            });
        }
        spans.push((st.line, st.last_line));
    }
    Ok(spans)
}

fn check_name(name: &str) -> Result<(), RcConfError> {
    if is_name(name) {
        Ok(())
    } else {
        Err(RcConfError::BadName(name.to_string()))
    }
}

/// `sysrc -f FILE name=value` on the text of FILE.
pub fn set_var(text: &str, file: &str, name: &str, value: &str) -> Result<String, RcConfError> {
    check_name(name)?;
    let line_text = format!("{name}={}\n", quote(value));
    let spans = assignment_spans(text, file, name)?;
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let Some(&(first, last)) = spans.last() else {
        let mut out = text.to_string();
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(&line_text);
        return Ok(out);
    };
    let mut out = String::with_capacity(text.len() + line_text.len());
    for (i, l) in lines.iter().enumerate() {
        let n = i + 1;
        if n == first {
            out.push_str(&line_text);
        } else if n > first && n <= last {
            continue;
        } else {
            out.push_str(l);
        }
    }
    Ok(out)
}

/// `sysrc -f FILE -x name` on the text of FILE: remove every assignment.
pub fn delete_var(text: &str, file: &str, name: &str) -> Result<String, RcConfError> {
    check_name(name)?;
    let spans = assignment_spans(text, file, name)?;
    Ok(text
        .split_inclusive('\n')
        .enumerate()
        .filter(|(i, _)| !spans.iter().any(|&(a, b)| (a..=b).contains(&(i + 1))))
        .map(|(_, l)| l)
        .collect())
}
