//! How big a query text may be before it is parsed. The query grammars (tantivy's for the log
//! language, `promql-parser` for PromQL) descend recursively: a few thousand nested
//! parentheses overflowed a worker thread's stack and took the whole server down with one
//! request. Nesting and length are checked on the text first, and terms after parsing, so a
//! hostile query is answered with an error naming the limit.

/// Deepest nesting of `(`, `[` and `{` a query may have.
pub const MAX_NESTING: usize = 64;

/// Longest query text, in bytes.
pub const MAX_QUERY_BYTES: usize = 16 * 1024;

/// Most words, fields and values one log query may combine.
pub const MAX_TERMS: usize = 1024;

/// Refuses a query text longer than [`MAX_QUERY_BYTES`] or nested deeper than
/// [`MAX_NESTING`] (brackets inside quotes do not count).
pub fn check_query_text(text: &str) -> Result<(), String> {
    if text.len() > MAX_QUERY_BYTES {
        return Err(format!(
            "the query is {} bytes long; at most {MAX_QUERY_BYTES} are accepted",
            text.len()
        ));
    }
    let (mut depth, mut deepest) = (0usize, 0usize);
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in text.chars() {
        if escaped {
            escaped = false;
            continue;
        }
        match (quote, c) {
            (Some(_), '\\') => escaped = true,
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'' | '`') => quote = Some(c),
            (None, '(' | '[' | '{') => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            (None, ')' | ']' | '}') => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    if deepest > MAX_NESTING {
        return Err(format!(
            "the query nests brackets {deepest} deep; at most {MAX_NESTING} levels are accepted"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_or_long_queries_are_refused_before_parsing() {
        assert!(check_query_text("(a OR (b AND c)) service:x").is_ok());
        let deep = format!("{}a{}", "(".repeat(65), ")".repeat(65));
        let e = check_query_text(&deep).unwrap_err();
        assert!(e.contains("65 deep") && e.contains("64"), "{e}");
        let fine = format!("{}a{}", "(".repeat(64), ")".repeat(64));
        assert!(check_query_text(&fine).is_ok());
        // Brackets inside quotes are text, not nesting.
        let quoted = format!("\"{}\"", "(".repeat(500));
        assert!(check_query_text(&quoted).is_ok());
        let long = "a ".repeat(MAX_QUERY_BYTES);
        assert!(check_query_text(&long).unwrap_err().contains("bytes long"));
    }
}
