//! The one tokenizer shared by indexing and by row verification, so that a query term that
//! matches a block in the index also matches the row it came from.

use tantivy::tokenizer::{
    LowerCaser, RemoveLongFilter, SimpleTokenStream, SimpleTokenizer, TextAnalyzer, Token,
    TokenStream, Tokenizer,
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

/// Splits on non-alphanumeric characters, except that a uuid stays one token, followed by
/// its first group ([`Words`]); lower-cases; drops tokens over 64 bytes (hashes of that size
/// are looked up by field, not by free text).
pub fn analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(Words::default())
        .filter(RemoveLongFilter::limit(64))
        .filter(LowerCaser)
        .build()
}

/// Whether a token goes into the block index as a term. Tokens with a digit and four or
/// more characters — numbers, hex ids, a uuid's first group, `1216` of `order-1216` — are
/// nearly unique per record: as terms they would make the index larger than the data. They
/// go into each block's token filter instead (`filter.rs`), which finds them as surely at
/// about one byte each. Words and short tokens (`v1`, `404`) stay terms. A whole uuid is
/// neither: its first group, which always comes with it, stands for it.
pub fn is_indexed(token: &str) -> bool {
    (token.len() < 4 || !token.bytes().any(|b| b.is_ascii_digit())) && !is_uuid(token)
}

/// Whether a token is a key of the blocks' token filters (see [`is_indexed`]).
pub fn is_filter_key(token: &str) -> bool {
    !is_indexed(token) && !is_uuid(token)
}

/// Whether `token` is a uuid in its 8-4-4-4-12 hex form.
pub fn is_uuid(token: &str) -> bool {
    let b = token.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// The word splitter: runs of alphanumeric characters (tantivy's `SimpleTokenizer`), except
/// that a uuid is one token followed by its first 8 hex digits. A uuid's five groups would be
/// five filter keys per uuid, four of them short enough to be in most blocks (so they prune
/// nothing) — the largest part of the token filters of logs that carry a uuid per record.
/// What people paste is the whole uuid or its first group, and both find it.
#[derive(Clone, Default)]
pub struct Words {
    runs: SimpleTokenizer,
    token: Token,
}

/// The token stream of [`Words`].
pub struct WordStream<'a> {
    text: &'a str,
    runs: SimpleTokenStream<'a>,
    token: &'a mut Token,
    /// Where the uuid just emitted starts: its first group comes next.
    first_group: Option<usize>,
}

impl Tokenizer for Words {
    type TokenStream<'a> = WordStream<'a>;
    fn token_stream<'a>(&'a mut self, text: &'a str) -> WordStream<'a> {
        self.token.reset();
        WordStream {
            text,
            runs: self.runs.token_stream(text),
            token: &mut self.token,
            first_group: None,
        }
    }
}

impl WordStream<'_> {
    fn emit(&mut self, from: usize, to: usize) {
        self.token.text.clear();
        self.token.text.push_str(&self.text[from..to]);
        self.token.offset_from = from;
        self.token.offset_to = to;
        self.token.position = self.token.position.wrapping_add(1);
    }

    /// Whether the run at `from`, 8 hex digits long, starts a uuid that ends a run.
    fn uuid_at(&self, from: usize) -> bool {
        let end = from + 36;
        self.text.get(from..end).is_some_and(is_uuid)
            && !self.text[end..].starts_with(char::is_alphanumeric)
    }
}

impl TokenStream for WordStream<'_> {
    fn advance(&mut self) -> bool {
        if let Some(from) = self.first_group.take() {
            self.emit(from, from + 8);
            return true;
        }
        if !self.runs.advance() {
            return false;
        }
        let (from, to) = {
            let run = self.runs.token();
            (run.offset_from, run.offset_to)
        };
        let hex8 = to - from == 8 && self.text[from..to].bytes().all(|b| b.is_ascii_hexdigit());
        if hex8 && self.uuid_at(from) {
            // The uuid's other four groups are the next four runs.
            for _ in 0..4 {
                self.runs.advance();
            }
            self.emit(from, from + 36);
            self.first_group = Some(from);
        } else {
            self.emit(from, to);
        }
        true
    }

    fn token(&self) -> &Token {
        self.token
    }

    fn token_mut(&mut self) -> &mut Token {
        self.token
    }
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
    fn a_uuid_is_one_token_and_its_first_group() {
        let mut a = analyzer();
        assert_eq!(
            tokens(&mut a, "user=3F2A9C1E-4B7D-4000-8000-00000000002A left; x3f2a9c1e-4b7d-4000-8000-00000000002a"),
            [
                "user",
                "3f2a9c1e-4b7d-4000-8000-00000000002a",
                "3f2a9c1e",
                "left",
                // Glued to a letter it is no uuid: its parts, as any other text.
                "x3f2a9c1e",
                "4b7d",
                "4000",
                "8000",
                "00000000002a",
            ]
        );
        assert!(!is_indexed("3f2a9c1e-4b7d-4000-8000-00000000002a"));
        assert!(!is_filter_key("3f2a9c1e-4b7d-4000-8000-00000000002a"));
        assert!(is_filter_key("3f2a9c1e"));
        assert_eq!(tokens(&mut a, "àb-ç 日本語 x"), ["àb", "ç", "日本語", "x"]);
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
