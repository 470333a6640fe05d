//! Whether a log body holds a word, decided on its text where that is exact, so that
//! checking rows does not split every body into owned words.
//!
//! Splitting a body into words (tantivy's tokenizer chain: runs of alphanumerics, uuids
//! kept whole, lower-cased) allocates a `String` per word; checking the newest hundred
//! records of a common word spent half its time there, once in the reader's prefilter and
//! again in the exact row check. For an ASCII body and a word of ASCII letters and digits
//! the text answers alone: the word is a word of the body exactly when the lower-cased body
//! holds it with no letter or digit on either side. The one exception is inside a uuid,
//! which is one word plus its first group, so its other groups are no words at all: an
//! occurrence next to a `-` is left to the tokenizer, as are phrases, non-ASCII bodies and
//! words with other characters.

use tantivy::tokenizer::TextAnalyzer;

use crate::index::text;

/// One body, its lower-cased ASCII copy and its words, each computed on first need.
pub(super) struct BodyWords<'a> {
    body: &'a str,
    analyzer: &'a mut TextAnalyzer,
    /// Scratch for the lower-cased copy (reused across bodies by the caller).
    lowered: &'a mut Vec<u8>,
    lowered_ready: bool,
    tokens: Option<Vec<String>>,
}

impl<'a> BodyWords<'a> {
    /// The words of `body`, split by `analyzer` if it comes to that, lower-casing into
    /// `scratch`.
    pub fn new(body: &'a str, analyzer: &'a mut TextAnalyzer, scratch: &'a mut Vec<u8>) -> Self {
        Self {
            body,
            analyzer,
            lowered: scratch,
            lowered_ready: false,
            tokens: None,
        }
    }

    /// The body as given.
    pub fn body(&self) -> &str {
        self.body
    }

    /// The body lower-cased, when it is ASCII (`None` otherwise: Unicode lower-casing can
    /// turn other characters into ASCII letters, the Kelvin sign into `k`).
    pub fn lowered_ascii(&mut self) -> Option<&[u8]> {
        if !self.body.is_ascii() {
            return None;
        }
        if !self.lowered_ready {
            self.lowered.clear();
            self.lowered
                .extend(self.body.bytes().map(|b| b.to_ascii_lowercase()));
            self.lowered_ready = true;
        }
        Some(self.lowered)
    }

    /// The body's words, in order (split on first call).
    pub fn tokens(&mut self) -> &[String] {
        let (analyzer, body) = (&mut *self.analyzer, self.body);
        self.tokens
            .get_or_insert_with(|| text::tokens(analyzer, body))
    }

    /// Whether `word` (a token of a query, so lower case) is one of the body's words.
    pub fn has(&mut self, word: &str) -> bool {
        match self.has_as_text(word) {
            Some(found) => found,
            None => self.tokens().iter().any(|t| t == word),
        }
    }

    /// The answer of [`BodyWords::has`] from the text alone, `None` when only splitting the
    /// body can tell.
    fn has_as_text(&mut self, word: &str) -> Option<bool> {
        if word.is_empty() || !word.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return None;
        }
        let lowered = self.lowered_ascii()?;
        let alphanumeric = |b: Option<&u8>| b.is_some_and(u8::is_ascii_alphanumeric);
        let mut undecided = false;
        for at in memchr::memmem::find_iter(lowered, word.as_bytes()) {
            let before = at.checked_sub(1).and_then(|i| lowered.get(i));
            let after = lowered.get(at + word.len());
            if alphanumeric(before) || alphanumeric(after) {
                continue;
            }
            if before == Some(&b'-') || after == Some(&b'-') {
                // Perhaps a uuid group, which is no word unless it is the first.
                undecided = true;
                continue;
            }
            return Some(true);
        }
        if undecided {
            None
        } else {
            Some(false)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `has` agrees with splitting the body, on words found, absent, inside longer words,
    /// in uuids (first group yes, other groups no), next to hyphens, in other scripts and
    /// after Unicode lower-casing.
    #[test]
    fn text_answers_agree_with_the_tokenizer() {
        let bodies = [
            "Payment TIMEOUT after 30s; retry=3 (timeouts: 2)",
            "order-1216 failed for 3f2a9c1e-4b7d-4000-8000-00000000002a",
            "x-4b7d-y 4000 timeout_x",
            "Stra\u{df}e \u{212a}elvin caf\u{e9} timeout",
            "",
            "timeout",
        ];
        let words = [
            "timeout", "timeouts", "retry", "3", "30s", "order", "1216", "3f2a9c1e", "4b7d",
            "4000", "x", "y", "kelvin", "elvin", "caf", "stra", "absent",
        ];
        let mut analyzer = text::analyzer();
        let mut splitter = text::analyzer();
        let mut scratch = Vec::new();
        for body in bodies {
            let tokens = text::tokens(&mut splitter, body);
            for word in words {
                let mut w = BodyWords::new(body, &mut analyzer, &mut scratch);
                assert_eq!(
                    w.has(word),
                    tokens.iter().any(|t| t == word),
                    "{word:?} in {body:?}"
                );
            }
        }
    }

    #[test]
    fn plain_ascii_words_are_decided_without_splitting() {
        let mut analyzer = text::analyzer();
        let mut scratch = Vec::new();
        let mut w = BodyWords::new("Payment TIMEOUT after 30s", &mut analyzer, &mut scratch);
        assert_eq!(w.has_as_text("timeout"), Some(true));
        assert_eq!(w.has_as_text("time"), Some(false));
        assert!(w.tokens.is_none(), "nothing was split");
        let mut w = BodyWords::new("id 3f2a9c1e-4b7d", &mut analyzer, &mut scratch);
        assert_eq!(w.has_as_text("4b7d"), None);
    }
}
