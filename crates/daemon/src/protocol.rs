//! The control socket's protocol, apart from the socket: one request line (`status`), one
//! JSON answer line, an error as `{"error": "..."}`. The daemon answers any bytes with such a
//! line; the client reads any line as a report or a clean error.

use crate::report::Report;

/// The longest request the daemon reads (bytes, newline included).
pub const MAX_REQUEST: usize = 1024;

/// What a client may ask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    Status,
}

/// `line` (any bytes, up to and maybe including its newline) as a request; surrounding
/// whitespace does not count. The error is the message the client gets.
pub fn parse_request(line: &[u8]) -> Result<Request, String> {
    match String::from_utf8_lossy(line).trim() {
        "status" => Ok(Request::Status),
        other => Err(format!("unknown request {other:?} (try \"status\")")),
    }
}

/// The answer line for an error.
pub fn error_line(msg: &str) -> String {
    format!("{}\n", serde_json::json!({ "error": msg }))
}

/// The answer line to `line`; `report` is asked for only when the request is `status`.
pub fn answer(line: &[u8], report: impl FnOnce() -> Report) -> String {
    match parse_request(line) {
        Ok(Request::Status) => serde_json::to_string(&report())
            .map(|s| s + "\n")
            .unwrap_or_else(|e| error_line(&format!("encoding the report: {e}"))),
        Err(e) => error_line(&e),
    }
}

/// Why an answer line is not a report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnswerError {
    /// The daemon sent nothing.
    Empty,
    /// Not JSON.
    NotJson(String),
    /// The daemon's `{"error": ...}`.
    Daemon(String),
    /// JSON, but not a report.
    Unexpected(String),
}

impl std::fmt::Display for AnswerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AnswerError::Empty => write!(f, "the daemon closed the connection"),
            AnswerError::NotJson(e) => write!(f, "answer is not JSON: {e}"),
            AnswerError::Daemon(e) => write!(f, "{e}"),
            AnswerError::Unexpected(e) => write!(f, "unexpected answer: {e}"),
        }
    }
}

impl std::error::Error for AnswerError {}

/// A report from the daemon's answer line.
pub fn parse_answer(line: &str) -> Result<Report, AnswerError> {
    if line.is_empty() {
        return Err(AnswerError::Empty);
    }
    let v: serde_json::Value =
        serde_json::from_str(line).map_err(|e| AnswerError::NotJson(e.to_string()))?;
    if let Some(e) = v.get("error").and_then(|e| e.as_str()) {
        return Err(AnswerError::Daemon(e.to_string()));
    }
    serde_json::from_value(v).map_err(|e| AnswerError::Unexpected(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_round_trips_and_anything_else_is_an_error_line() {
        let r = Report {
            version: "0.1.0".into(),
            pid: 42,
            backend: "sim".into(),
            ..Default::default()
        };
        let a = answer(b"  status\r\n", || r.clone());
        assert!(a.ends_with('\n') && a.matches('\n').count() == 1);
        assert_eq!(parse_answer(&a), Ok(r.clone()));
        for bad in [&b"stat"[..], b"", b"\xff\xfe\n", b"status status\n"] {
            let a = answer(bad, || unreachable!("no report for {bad:?}"));
            assert!(
                matches!(parse_answer(&a), Err(AnswerError::Daemon(m)) if m.starts_with("unknown request"))
            );
        }
        assert_eq!(parse_answer(""), Err(AnswerError::Empty));
        assert!(matches!(parse_answer("{"), Err(AnswerError::NotJson(_))));
        assert!(matches!(
            parse_answer("[1]\n"),
            Err(AnswerError::Unexpected(_))
        ));
    }
}
