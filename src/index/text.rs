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

/// Whether a token goes into the block index. Id-like tokens — eight or more characters with
/// a digit, such as hex ids, uuid parts and long numbers — are unique per record, so they
/// would make the index larger than the data while pruning nothing that their own fields
/// (trace_id, correlation_id) do not already prune. Queries for them scan the time range.
pub fn is_indexed(token: &str) -> bool {
    token.len() < 8 || !token.bytes().any(|b| b.is_ascii_digit())
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
