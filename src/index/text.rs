//! The one tokenizer shared by indexing and by row verification, so that a query term that
//! matches a block in the index also matches the row it came from.

use tantivy::tokenizer::{
    LowerCaser, RemoveLongFilter, SimpleTokenizer, TextAnalyzer, Token, TokenStream, Tokenizer,
};

/// Name under which the analyzer is registered in the index.
pub const TOKENIZER: &str = "sightline_text";

/// Name of the tokenizer of the log blocks' `body` field ([`CountedWords`]).
pub const COUNTED_TOKENIZER: &str = "sightline_counted_words";

/// Reads `word count word count …` (a log block's distinct body words, each with the number
/// of its records that hold the word) and emits every word `count` times, so the word's
/// term frequency in the block document is that record count: a histogram of a word reads
/// its counts from the postings instead of tokenizing every body. Stops at the first pair
/// whose count is not a number (the builder never writes one).
#[derive(Clone, Default)]
pub struct CountedWords {
    token: Token,
}

/// The token stream of [`CountedWords`].
pub struct CountedWordStream<'a> {
    parts: std::str::SplitAsciiWhitespace<'a>,
    token: &'a mut Token,
    left: u32,
}

impl Tokenizer for CountedWords {
    type TokenStream<'a> = CountedWordStream<'a>;
    fn token_stream<'a>(&'a mut self, text: &'a str) -> CountedWordStream<'a> {
        self.token.reset();
        CountedWordStream {
            parts: text.split_ascii_whitespace(),
            token: &mut self.token,
            left: 0,
        }
    }
}

impl TokenStream for CountedWordStream<'_> {
    fn advance(&mut self) -> bool {
        while self.left == 0 {
            let (Some(word), Some(count)) = (self.parts.next(), self.parts.next()) else {
                return false;
            };
            let Ok(count) = count.parse::<u32>() else {
                return false;
            };
            self.token.text.clear();
            self.token.text.push_str(word);
            self.token.offset_from = 0;
            self.token.offset_to = word.len();
            self.left = count;
        }
        self.left -= 1;
        self.token.position = self.token.position.wrapping_add(1);
        true
    }

    fn token(&self) -> &Token {
        self.token
    }

    fn token_mut(&mut self) -> &mut Token {
        self.token
    }
}

/// Splits on non-alphanumeric characters, lower-cases, drops tokens over 64 bytes (hashes of
/// that size are looked up by field, not by free text).
pub fn analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(64))
        .filter(LowerCaser)
        .build()
}

/// Whether a token goes into the block index as a term. Tokens with a digit and four or
/// more characters — numbers, hex ids, the parts of a uuid, `1216` of `order-1216` — are
/// nearly unique per record: as terms they would make the index larger than the data. They
/// go into each block's id filter instead (`filter.rs`), which finds them as surely at about
/// one byte each. Words and short tokens (`v1`, `404`) stay terms.
pub fn is_indexed(token: &str) -> bool {
    token.len() < 4 || !token.bytes().any(|b| b.is_ascii_digit())
}

/// The tokens of `text`, in order.
pub fn tokens(analyzer: &mut TextAnalyzer, text: &str) -> Vec<String> {
    let mut stream = analyzer.token_stream(text);
    let mut out = Vec::new();
    while let Some(token) = stream.next() {
        out.push(token.text.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counted_words_repeat_each_word_by_its_count() {
        let mut tokenizer = CountedWords::default();
        let mut stream = tokenizer.token_stream("timeout 3 v1 1 gone 0 order 2 bad x after 5");
        let mut out = Vec::new();
        while let Some(token) = stream.next() {
            out.push(token.text.clone());
        }
        assert_eq!(
            out,
            ["timeout", "timeout", "timeout", "v1", "order", "order"]
        );
    }

    #[test]
    fn splits_and_lowercases() {
        let mut a = analyzer();
        assert_eq!(
            tokens(&mut a, "Payment DECLINED: card=4242!"),
            ["payment", "declined", "card", "4242"]
        );
    }

    #[test]
    fn numbers_and_id_parts_go_to_the_filter_words_to_the_index() {
        let mut a = analyzer();
        let routed: Vec<(String, bool)> = tokens(&mut a, "order-1216 v1 404 3f2a9c1e-4b7d timeout")
            .into_iter()
            .map(|t| {
                let indexed = is_indexed(&t);
                (t, indexed)
            })
            .collect();
        let expect = [
            ("order", true),
            ("1216", false),
            ("v1", true),
            ("404", true),
            ("3f2a9c1e", false),
            ("4b7d", false),
            ("timeout", true),
        ];
        let expect: Vec<(String, bool)> = expect.iter().map(|(t, i)| (t.to_string(), *i)).collect();
        assert_eq!(routed, expect);
    }
}
