//! Text from another process, made safe to print on a terminal: control characters
//! (C0, DEL and C1, which include ESC and CSI, so every terminal escape sequence) are shown
//! as Rust escapes (`\u{1b}`) instead of being sent to the terminal.

use std::borrow::Cow;

/// `s` with every control character escaped (newlines and tabs included: in a value they
/// would forge lines or columns of the output around it).
pub fn escape_controls(s: &str) -> Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Escape the control characters of every string (and object key) in `v`.
pub fn sanitize_json(v: &mut serde_json::Value) {
    use serde_json::Value;
    match v {
        Value::String(s) => {
            if let Cow::Owned(clean) = escape_controls(s) {
                *s = clean;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(sanitize_json),
        Value::Object(map) => {
            let entries = std::mem::take(map);
            for (k, mut item) in entries {
                sanitize_json(&mut item);
                map.insert(escape_controls(&k).into_owned(), item);
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// `value` with the control characters of all its strings escaped (through its JSON form).
pub fn sanitized<T: serde::Serialize + serde::de::DeserializeOwned>(
    value: &T,
) -> serde_json::Result<T> {
    let mut v = serde_json::to_value(value)?;
    sanitize_json(&mut v);
    serde_json::from_value(v)
}

/// Compact JSON text with the control characters serde_json leaves raw (DEL and C1, which
/// include CSI) written as `\uXXXX` escapes: the same JSON value, safe on a terminal.
/// Outside strings compact JSON has no control characters, so every one is in a string.
pub fn json_text(text: &str) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            out.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_escapes_and_line_breaks_are_shown_not_sent() {
        assert_eq!(escape_controls("hn0"), "hn0");
        assert_eq!(
            escape_controls("\x1b[2J\x1b]0;owned\x07x\ny\t\u{9b}31m\u{7f}é"),
            "\\u{1b}[2J\\u{1b}]0;owned\\u{7}x\\ny\\t\\u{9b}31m\\u{7f}é"
        );
    }

    #[test]
    fn every_string_of_a_json_value_is_cleaned() {
        let mut v = serde_json::json!({
            "a\u{1b}": ["\u{1b}[31m", 1, null, {"b": "\r"}],
            "ok": "plain"
        });
        sanitize_json(&mut v);
        assert_eq!(
            v,
            serde_json::json!({
                "a\\u{1b}": ["\\u{1b}[31m", 1, null, {"b": "\\r"}],
                "ok": "plain"
            })
        );
        assert!(!v.to_string().chars().any(char::is_control));
    }

    #[test]
    fn json_text_keeps_the_value_and_drops_raw_controls() {
        let v = serde_json::json!({"s": "a\u{1b}[1m\u{9b}2J\u{7f}\n"});
        let text = serde_json::to_string(&v).unwrap();
        // serde_json escapes ESC and the newline itself, not CSI or DEL.
        assert!(text.contains('\u{9b}'));
        let clean = json_text(&text);
        assert!(!clean.chars().any(char::is_control), "{clean}");
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&clean).unwrap(),
            v
        );
    }
}
