//! Grouping errors that are the same problem: exception type + message with numbers and ids
//! normalized + top stack frame.

use std::sync::OnceLock;

use regex::Regex;

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

/// The signature of an error: the first non-empty type among `types` (else `fallback`), the
/// message normalized, and the top frame of the stack trace. Error spans pass their exception
/// event's `exception.type`, its message or else the status message, and its stack trace;
/// ERROR and FATAL log records pass `exception.type` / `error.type` and their body.
pub fn signature<'a>(
    types: impl IntoIterator<Item = Option<std::borrow::Cow<'a, str>>>,
    fallback: &str,
    message: &str,
    stack: &str,
) -> ErrorSignature {
    let error_type = types
        .into_iter()
        .flatten()
        .find(|t| !t.is_empty())
        .map_or_else(|| fallback.to_string(), |t| t.into_owned());
    ErrorSignature {
        error_type,
        message: normalize(message),
        top_frame: top_frame(stack),
    }
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
