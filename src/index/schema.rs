//! The tantivy schema of block documents.

use tantivy::schema::{
    Field, IndexRecordOption, NumericOptions, Schema, TextFieldIndexing, TextOptions, STORED,
    STRING,
};

use super::text::COUNTED_TOKENIZER;

/// Handles to every field of the block schema.
#[derive(Debug, Clone)]
pub struct Fields {
    /// `traces`, `logs` or `metrics`.
    pub signal: Field,
    /// Object path of the Parquet file (stored: it is what a search returns).
    pub path: Field,
    /// Row group number inside the file (stored).
    pub row_group: Field,
    /// Earliest and latest record time in the block (fast, for time-range pruning and order).
    pub time_min: Field,
    pub time_max: Field,
    /// Number of rows in the block (stored, for statistics).
    pub rows: Field,
    pub service: Field,
    pub instance: Field,
    /// The block's 8-bit filter (stored only; see `filter.rs`): id-like body tokens, which as
    /// terms would outweigh the data, and log span ids.
    pub narrow_filter: Field,
    /// The block's 16-bit filter (stored only): trace, span, linked-trace and correlation ids
    /// and eight-hex-digit body tokens.
    pub wide_filter: Field,
    /// Span names (traces) or metric names (metrics).
    pub name: Field,
    /// Span status codes present.
    pub status: Field,
    /// Log severity numbers present.
    pub severity: Field,
    /// `key=value` of every short attribute of keys with few values in the block.
    pub attr: Field,
    /// Keys with too many distinct values in the block to list (ids, urls).
    pub attr_overflow: Field,
    /// Log body words, without positions; a word's term frequency is the number of the
    /// block's records that hold it (see `text::CountedWords`).
    pub body: Field,
    /// JSON list of the instances seen in the block (stored only).
    pub instances: Field,
    /// Log blocks: records per stream (stored only; see `streams.rs`).
    pub streams: Field,
}

impl Fields {
    /// Builds the schema and its field handles.
    pub fn schema() -> (Schema, Fields) {
        let mut b = Schema::builder();
        let time = NumericOptions::default()
            .set_indexed()
            .set_fast()
            .set_stored();
        let body = TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(COUNTED_TOKENIZER)
                .set_index_option(IndexRecordOption::WithFreqs),
        );
        let fields = Fields {
            signal: b.add_text_field("signal", STRING),
            path: b.add_text_field("path", STRING | STORED),
            row_group: b.add_u64_field("row_group", STORED),
            time_min: b.add_i64_field("time_min", time.clone()),
            time_max: b.add_i64_field("time_max", time),
            rows: b.add_u64_field("rows", STORED),
            service: b.add_text_field("service", STRING),
            instance: b.add_text_field("instance", STRING),
            narrow_filter: b.add_bytes_field("narrow_filter", STORED),
            wide_filter: b.add_bytes_field("wide_filter", STORED),
            name: b.add_text_field("name", STRING),
            status: b.add_text_field("status", STRING),
            severity: b.add_i64_field("severity", NumericOptions::default().set_indexed()),
            attr: b.add_text_field("attr", STRING),
            attr_overflow: b.add_text_field("attr_overflow", STRING),
            body: b.add_text_field("body", body),
            instances: b.add_text_field("instances", STORED),
            streams: b.add_text_field("streams", STORED),
        };
        (b.build(), fields)
    }
}
