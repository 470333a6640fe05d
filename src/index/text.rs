//! The one tokenizer shared by indexing and by row verification, so that a query term that
//! matches a block in the index also matches the row it came from.

use tantivy::tokenizer::{
    LowerCaser, RemoveLongFilter, SimpleTokenizer, TextAnalyzer, TokenStream,
};

/// Name under which the analyzer is registered in the index.
pub const TOKENIZER: &str = "sightline_text";

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
