//! Summaries of one Parquet row group (a *block*) as one tantivy document.
//!
//! Indexing one document per row (span or log line) costs more index than the data itself and
//! caps ingest (see BENCHMARKS.md / shared PERFORMANCE notes); one document per block holds the
//! block's distinct ids, services, names and body tokens, and a query reads only the blocks
//! whose document matches, then checks each row.

use std::borrow::Cow;

use arrow::record_batch::RecordBatch;
use foldhash::{HashMap, HashSet};
use serde::{Deserialize, Serialize};
use tantivy::TantivyDocument;

use super::attribute_values::AttributeValues;
use super::block_columns;
use super::filter::{self, BlockFilter, KeyKind, Width};
use super::schema::Fields;
use crate::model::Signal;
use crate::rollup::RollupRow;
use crate::store::{StoreError, StoredRow};

/// One instance seen in a block, stored in the block document so the service list can be
/// rebuilt from the index after a restart.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SeenInstance {
    pub service: String,
    pub instance: String,
    pub host: String,
    pub version: String,
    /// Latest record time of this instance in the block (Unix ns).
    pub last_seen: i64,
}

/// Service, instance, host and version of a record, borrowed from its row or its columns.
pub(super) type InstanceKey<'a> = [&'a str; 4];

/// Accumulates the distinct terms and filter keys of one block.
///
/// Built once per row group on the flush path, so it avoids allocating per row: values are
/// borrowed from the rows or Arrow columns the block is built from (`'a`), a value is copied
/// only when it had to be unescaped or formatted, and consecutive records of one instance
/// (one export) update one pending entry instead of hashing their instance again.
pub(super) struct BlockBuilder<'f, 'a> {
    fields: &'f Fields,
    pub(super) doc: TantivyDocument,
    time_min: i64,
    time_max: i64,
    rows: u64,
    strings: HashMap<tantivy::schema::Field, HashSet<&'a str>>,
    /// Distinct values per attribute key.
    attrs: AttributeValues<'a>,
    /// Latest record time per instance.
    instances: HashMap<InstanceKey<'a>, i64>,
    /// The instance of the previous record and its latest time, not yet in `instances`.
    current: Option<(InstanceKey<'a>, i64)>,
    /// Filter keys of id-like body tokens and of ids (see `filter.rs`).
    token_keys: Vec<u64>,
    id_keys: Vec<u64>,
}

impl<'f, 'a> BlockBuilder<'f, 'a> {
    pub(super) fn new(fields: &'f Fields, signal: Signal, path: &str, row_group: usize) -> Self {
        let mut doc = TantivyDocument::default();
        doc.add_text(fields.signal, signal.as_str());
        doc.add_text(fields.path, path);
        doc.add_u64(fields.row_group, row_group as u64);
        Self {
            fields,
            doc,
            time_min: i64::MAX,
            time_max: i64::MIN,
            rows: 0,
            strings: HashMap::default(),
            attrs: AttributeValues::default(),
            instances: HashMap::default(),
            current: None,
            token_keys: Vec::new(),
            id_keys: Vec::new(),
        }
    }

    /// Counts a record from `start` to `end` sent by `instance`.
    pub(super) fn row(&mut self, start: i64, end: i64, instance: InstanceKey<'a>) {
        self.rows += 1;
        self.time_min = self.time_min.min(start);
        self.time_max = self.time_max.max(end);
        match &mut self.current {
            Some((key, last)) if *key == instance => *last = (*last).max(end),
            _ => {
                self.settle_instance();
                self.current = Some((instance, end));
            }
        }
    }

    fn settle_instance(&mut self) {
        if let Some((key, last)) = self.current.take() {
            let seen = self.instances.entry(key).or_insert(last);
            *seen = (*seen).max(last);
        }
    }

    pub(super) fn term(&mut self, field: tantivy::schema::Field, value: &'a str) {
        self.strings.entry(field).or_default().insert(value);
    }

    pub(super) fn key(&mut self, kind: KeyKind, value: &[u8]) {
        let keys = match kind.width() {
            Width::Narrow => &mut self.token_keys,
            Width::Wide => &mut self.id_keys,
        };
        keys.push(filter::key(kind, value));
    }

    /// Notes one attribute: `text` is its value as queries compare it (a string unquoted,
    /// anything else as compact JSON).
    pub(super) fn attribute(&mut self, key: Cow<'a, str>, text: Cow<'a, str>) {
        self.attrs.note(key, text);
    }

    /// Notes the attribute values the decoders collected for an export some of the block's
    /// rows came from (instead of each row's attributes).
    pub(super) fn attribute_values(&mut self, values: &'a AttributeValues<'_>) {
        self.attrs.absorb(values);
    }

    pub(super) fn finish(mut self) -> TantivyDocument {
        for (key, values) in std::mem::take(&mut self.attrs).into_entries() {
            match values {
                Some(values) => {
                    for v in values {
                        self.doc.add_text(self.fields.attr, format!("{key}={v}"));
                    }
                }
                None => self.doc.add_text(self.fields.attr_overflow, key.as_ref()),
            }
        }
        self.settle_instance();
        let mut instances = Vec::with_capacity(self.instances.len());
        for ([service, instance, host, version], last_seen) in std::mem::take(&mut self.instances) {
            self.term(self.fields.service, service);
            if !instance.is_empty() {
                self.term(self.fields.instance, instance);
            }
            instances.push(SeenInstance {
                service: service.to_string(),
                instance: instance.to_string(),
                host: host.to_string(),
                version: version.to_string(),
                last_seen,
            });
        }
        instances.sort();
        for (field, values) in std::mem::take(&mut self.strings) {
            for value in values {
                self.doc.add_text(field, value);
            }
        }
        self.doc.add_i64(self.fields.time_min, self.time_min);
        self.doc.add_i64(self.fields.time_max, self.time_max);
        self.doc.add_u64(self.fields.rows, self.rows);
        if let Some(bytes) = BlockFilter::build(&mut self.token_keys, Width::Narrow).to_bytes() {
            self.doc.add_bytes(self.fields.narrow_filter, &bytes);
        }
        if let Some(bytes) = BlockFilter::build(&mut self.id_keys, Width::Wide).to_bytes() {
            self.doc.add_bytes(self.fields.wide_filter, &bytes);
        }
        let json = serde_json::to_string(&instances).unwrap_or_else(|_| "[]".into());
        self.doc.add_text(self.fields.instances, json);
        self.doc
    }
}

/// The block document of rollup row group `row_group` of file `path`.
pub fn rollup_block(
    fields: &Fields,
    path: &str,
    row_group: usize,
    rows: &[&RollupRow],
) -> TantivyDocument {
    let mut b = BlockBuilder::new(fields, Signal::Rollups, path, row_group);
    for r in rows {
        b.rows += 1;
        b.time_min = b.time_min.min(r.minute);
        b.time_max = b.time_max.max(r.minute + crate::rollup::MINUTE - 1);
        b.term(fields.service, &r.service);
        b.term(fields.name, r.kind().as_str());
    }
    b.finish()
}

/// The block document of row group `row_group` of the `signal` file `path`, from the row
/// group's Arrow batches (as written, or as read back).
///
/// Spans, logs and metric points are summarised straight from their columns
/// (`block_columns.rs`): no row structs, attribute JSON walked in place. Rollups, a few rows
/// per service and minute, are decoded to rows first.
pub fn block_of_batches(
    fields: &Fields,
    signal: Signal,
    path: &str,
    row_group: usize,
    batches: &[RecordBatch],
) -> Result<TantivyDocument, StoreError> {
    match signal {
        Signal::Traces => block_columns::span_block(fields, path, row_group, batches, None),
        Signal::Logs => block_columns::log_block(fields, path, row_group, batches, None),
        Signal::Metrics | Signal::MetricMinutes => {
            block_columns::metric_block(fields, signal, path, row_group, batches)
        }
        Signal::Rollups => {
            let rows = decode::<RollupRow>(batches)?;
            let refs: Vec<&RollupRow> = rows.iter().collect();
            Ok(rollup_block(fields, path, row_group, &refs))
        }
    }
}

/// Every block of a file already in `store` (reindexing, and a cluster query node adding a
/// file another node registered), read one row group at a time. The signal is the file's
/// top folder.
pub async fn blocks_of_stored_file(
    store: &crate::store::Store,
    fields: &Fields,
    path: &str,
) -> Result<Vec<TantivyDocument>, StoreError> {
    let folder = path.split('/').next().unwrap_or("");
    let signal = Signal::from_folder(folder).ok_or_else(|| {
        StoreError::Schema(format!("{path}: unexpected folder {folder:?} in the store"))
    })?;
    let groups = store.row_group_count(path).await?;
    let mut docs = Vec::with_capacity(groups);
    for row_group in 0..groups {
        let batches = store.read_row_groups(path, vec![row_group]).await?;
        docs.push(block_of_batches(fields, signal, path, row_group, &batches)?);
    }
    Ok(docs)
}

/// [`block_of_batches`] for a row group of spans or logs being flushed, whose attribute terms
/// are the values the decoders collected for the exports its rows came from
/// ([`AttributeValues`]) instead of each row's attribute JSON parsed again; other signals'
/// blocks are built as [`block_of_batches`] builds them.
pub fn block_of_decoded<'a>(
    fields: &Fields,
    signal: Signal,
    path: &str,
    row_group: usize,
    batches: &'a [RecordBatch],
    decoded: &'a [&'a AttributeValues<'a>],
) -> Result<TantivyDocument, StoreError> {
    match signal {
        Signal::Traces => {
            block_columns::span_block(fields, path, row_group, batches, Some(decoded))
        }
        Signal::Logs => block_columns::log_block(fields, path, row_group, batches, Some(decoded)),
        _ => block_of_batches(fields, signal, path, row_group, batches),
    }
}

/// Every row of `batches`.
fn decode<T: StoredRow>(batches: &[RecordBatch]) -> Result<Vec<T>, StoreError> {
    let mut rows = Vec::new();
    for batch in batches {
        T::from_batch(batch, &mut |_| true, &mut rows)?;
    }
    Ok(rows)
}
