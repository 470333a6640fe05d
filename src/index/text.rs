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
}
