//! Grouping errors that are the same problem: exception type + message with numbers and ids
//! normalized + top stack frame.

use std::sync::OnceLock;

use regex::Regex;

use crate::model::{value_text, LogRow, SpanRow};

/// What identifies an error group.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct ErrorSignature {
    pub error_type: String,
    /// The message with numbers, hex ids and UUIDs replaced by `#` / `<id>`.
    pub message: String,
    /// First `at …` line of the stack trace, or empty.
    pub top_frame: String,
}

impl ErrorSignature {
    /// A short stable key for the group.
    pub fn key(&self) -> String {
        let text = format!(
            "{}\u{1f}{}\u{1f}{}",
            self.error_type, self.message, self.top_frame
        );
        format!("{:016x}", fnv1a(text.as_bytes()))
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Replaces what differs between occurrences of one error (ids, numbers) with placeholders.
pub fn normalize(message: &str) -> String {
    static RE: OnceLock<(Regex, Regex)> = OnceLock::new();
    let (ids, numbers) = RE.get_or_init(|| {
        (
            Regex::new(r"(?i)\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b|\b[0-9a-f]{16,}\b")
                .expect("static regex"),
            Regex::new(r"\d+(\.\d+)?").expect("static regex"),
        )
    });
    let first_line = message.lines().next().unwrap_or("");
    let cut: String = first_line.chars().take(300).collect();
    numbers
        .replace_all(&ids.replace_all(&cut, "<id>"), "#")
        .into_owned()
}

fn top_frame(stack: &str) -> String {
    stack
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("at ") || l.starts_with("File "))
        .unwrap_or("")
        .to_string()
}

/// The signature of an error span: its exception event if any, else its status message.
pub fn of_span(span: &SpanRow) -> Option<ErrorSignature> {
    if !span.is_error() {
        return None;
    }
    let exception = span.events.iter().find(|e| e.name == "exception");
    let get = |k: &str| {
        exception
            .and_then(|e| e.attributes.get(k))
            .map(value_text)
            .unwrap_or_default()
    };
    let error_type = Some(get("exception.type"))
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| "error".into());
    let message = Some(get("exception.message"))
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| span.status_message.clone());
    Some(ErrorSignature {
        error_type,
        message: normalize(&message),
        top_frame: top_frame(&get("exception.stacktrace")),
    })
}

/// The signature of an ERROR or FATAL log record.
pub fn of_log(log: &LogRow) -> Option<ErrorSignature> {
    if log.severity_number < 17 {
        return None;
    }
    let attr = |k: &str| log.attributes.get(k).map(value_text).unwrap_or_default();
    let error_type = [attr("exception.type"), attr("error.type")]
        .into_iter()
        .find(|t| !t.is_empty())
        .unwrap_or_else(|| "log".into());
    Some(ErrorSignature {
        error_type,
        message: normalize(&log.body),
        top_frame: top_frame(&attr("exception.stacktrace")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_problem_same_group() {
        assert_eq!(
            normalize("charge failed for order-1216: timed out after 2500 ms"),
            "charge failed for order-#: timed out after # ms"
        );
        assert_eq!(
            normalize("user 0a1b2c3d-0000-4000-8000-000000000001 missing"),
            "user <id> missing"
        );
    }
}
