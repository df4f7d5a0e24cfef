//! Evaluating words: parameter expansion and quote removal, as sh does for
//! the right-hand side of an assignment (no field splitting, no globbing),
//! plus field splitting for `eval`-style argument lists.

use crate::pattern::{self, PatChar};
use crate::syntax::{Param, ParamOp, Part, Word};

/// Variable storage the evaluator reads and (for `${x:=y}`) writes.
pub trait Env {
    fn var(&self, name: &str) -> Option<&str>;
    fn set_var(&mut self, name: &str, value: String);
}

/// Why a word could not be evaluated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported(pub String);

/// Expand a word as the value of an assignment.
pub fn expand(word: &Word, env: &mut dyn Env) -> Result<String, Unsupported> {
    let mut out = String::new();
    for part in &word.parts {
        expand_part(part, env, &mut out)?;
    }
    Ok(out)
}

fn expand_part(part: &Part, env: &mut dyn Env, out: &mut String) -> Result<(), Unsupported> {
    match part {
        Part::Lit(s) | Part::Quoted(s) => out.push_str(s),
        Part::Double(inner) => {
            for p in inner {
                expand_part(p, env, out)?;
            }
        }
        Part::Param(p) => out.push_str(&expand_param(p, env)?),
        Part::Unsupported(why) => return Err(Unsupported(why.clone())),
    }
    Ok(())
}

fn expand_param(p: &Param, env: &mut dyn Env) -> Result<String, Unsupported> {
    let value = env.var(&p.name).map(str::to_string);
    let unset_or_null = |colon: bool| match &value {
        None => true,
        Some(v) => colon && v.is_empty(),
    };
    Ok(match &p.op {
        ParamOp::Plain => value.unwrap_or_default(),
        ParamOp::Length => value.unwrap_or_default().chars().count().to_string(),
        ParamOp::Default { colon, word } => {
            if unset_or_null(*colon) {
                expand(word, env)?
            } else {
                value.unwrap_or_default()
            }
        }
        ParamOp::Assign { colon, word } => {
            if unset_or_null(*colon) {
                let v = expand(word, env)?;
                env.set_var(&p.name, v.clone());
                v
            } else {
                value.unwrap_or_default()
            }
        }
        ParamOp::Alternative { colon, word } => {
            if unset_or_null(*colon) {
                String::new()
            } else {
                expand(word, env)?
            }
        }
        ParamOp::ErrorIfUnset { colon, .. } => {
            if unset_or_null(*colon) {
                return Err(Unsupported(format!(
                    "`${{{}:?...}}` would abort the shell: {} is unset or empty",
                    p.name, p.name
                )));
            }
            value.unwrap_or_default()
        }
        ParamOp::TrimSuffix { longest, pattern } => {
            let pat = pattern_of(pattern, env)?;
            let v = value.unwrap_or_default();
            pattern::trim_suffix(&v, &pat, *longest)
        }
        ParamOp::TrimPrefix { longest, pattern } => {
            let pat = pattern_of(pattern, env)?;
            let v = value.unwrap_or_default();
            pattern::trim_prefix(&v, &pat, *longest)
        }
    })
}

/// Expand a word used as a pattern: quoted text matches literally,
/// unquoted text (including unquoted expansion results) is a glob.
fn pattern_of(word: &Word, env: &mut dyn Env) -> Result<Vec<PatChar>, Unsupported> {
    let mut pat = Vec::new();
    for part in &word.parts {
        match part {
            Part::Lit(s) => pat.extend(pattern::compile(s)),
            Part::Param(p) => {
                let v = expand_param(p, env)?;
                pat.extend(pattern::compile(&v));
            }
            Part::Quoted(_) | Part::Double(_) => {
                let mut s = String::new();
                expand_part(part, env, &mut s)?;
                pat.extend(s.chars().map(PatChar::Literal));
            }
            Part::Unsupported(why) => return Err(Unsupported(why.clone())),
        }
    }
    Ok(pat)
}

/// Expand a word into fields the way a command argument is: unquoted
/// expansion results are split on blanks and newlines. Pathname expansion
/// is not performed (there is no file system to match against).
pub fn expand_fields(word: &Word, env: &mut dyn Env) -> Result<Vec<String>, Unsupported> {
    let mut fields = Vec::new();
    let mut cur = String::new();
    // A field exists once anything quoted (even empty) or literal was seen.
    let mut started = false;
    for part in &word.parts {
        match part {
            Part::Lit(s) => {
                cur.push_str(s);
                started = true;
            }
            Part::Quoted(_) | Part::Double(_) => {
                expand_part(part, env, &mut cur)?;
                started = true;
            }
            Part::Param(p) => {
                let v = expand_param(p, env)?;
                for c in v.chars() {
                    if matches!(c, ' ' | '\t' | '\n') {
                        if started {
                            fields.push(std::mem::take(&mut cur));
                            started = false;
                        }
                    } else {
                        cur.push(c);
                        started = true;
                    }
                }
            }
            Part::Unsupported(why) => return Err(Unsupported(why.clone())),
        }
    }
    if started {
        fields.push(cur);
    }
    Ok(fields)
}

/// Split a string into fields on the default IFS (space, tab, newline).
pub fn split_fields(s: &str) -> Vec<String> {
    s.split([' ', '\t', '\n'])
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}
