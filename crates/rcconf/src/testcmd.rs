//! test(1) / `[` for the conditions rc.conf files use: string tests,
//! integer comparisons and file tests (resolved under the load root).

use std::path::Path;

use crate::load::host_path;

/// Evaluate `[ ARGS ]` or `test ARGS` (argv including `[`/`test`),
/// optionally preceded by `!` (pipeline negation).
/// Err explains what is not supported.
pub fn eval_test(argv: &[String], root: Option<&Path>) -> Result<bool, String> {
    if argv.first().map(String::as_str) == Some("!") {
        return eval_test(&argv[1..], root).map(|b| !b);
    }
    let args: &[String] = match argv.first().map(String::as_str) {
        Some("[") => match argv.last().map(String::as_str) {
            Some("]") if argv.len() >= 2 => &argv[1..argv.len() - 1],
            _ => return Err("expected `]` at the end of `[`".into()),
        },
        Some("test") => &argv[1..],
        Some(other) => {
            return Err(format!(
                "expected a `[` or `test` condition, found command `{other}`"
            ))
        }
        None => return Err("empty condition".into()),
    };
    expr(args, root)
}

fn expr(args: &[String], root: Option<&Path>) -> Result<bool, String> {
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    match a.as_slice() {
        [] => Ok(false),
        ["!", rest @ ..] if !rest.is_empty() => expr(&args[1..], root).map(|b| !b),
        [s] => Ok(!s.is_empty()),
        [op, v] => unary(op, v, root),
        [l, op, r] => binary(l, op, r),
        _ => Err(format!(
            "test expression `{}` is not supported (use one comparison per test)",
            a.join(" ")
        )),
    }
}

fn unary(op: &str, v: &str, root: Option<&Path>) -> Result<bool, String> {
    match op {
        "-z" => return Ok(v.is_empty()),
        "-n" => return Ok(!v.is_empty()),
        _ => {}
    }
    if !matches!(op, "-r" | "-f" | "-d" | "-e" | "-s") {
        return Err(format!("test operator `{op}` is not supported"));
    }
    let Some(root) = root else {
        return Err(format!(
            "file test `{op} {v}` needs a file system root (text was not loaded from files)"
        ));
    };
    let p = host_path(root, v);
    let md = std::fs::metadata(&p);
    Ok(match op {
        "-r" | "-e" => md.is_ok(),
        "-f" => md.map(|m| m.is_file()).unwrap_or(false),
        "-d" => md.map(|m| m.is_dir()).unwrap_or(false),
        _ => md.map(|m| m.len() > 0).unwrap_or(false),
    })
}

fn binary(l: &str, op: &str, r: &str) -> Result<bool, String> {
    let int = |s: &str| {
        s.trim()
            .parse::<i64>()
            .map_err(|_| format!("expected an integer in test, found `{s}`"))
    };
    Ok(match op {
        "=" | "==" => l == r,
        "!=" => l != r,
        "-eq" => int(l)? == int(r)?,
        "-ne" => int(l)? != int(r)?,
        "-lt" => int(l)? < int(r)?,
        "-le" => int(l)? <= int(r)?,
        "-gt" => int(l)? > int(r)?,
        "-ge" => int(l)? >= int(r)?,
        _ => return Err(format!("test operator `{op}` is not supported")),
    })
}
