//! Summaries of one Parquet row group (a *block*) as one tantivy document.
//!
//! Indexing one document per row (span or log line) costs more index than the data itself and
//! caps ingest (see BENCHMARKS.md / shared PERFORMANCE notes); one document per block holds the
//! block's distinct ids, services, names and body tokens, and a query reads only the blocks
//! whose document matches, then checks each row.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use tantivy::tokenizer::TokenStream;

use serde::{Deserialize, Serialize};
use tantivy::TantivyDocument;

use super::filter::{self, BlockFilter, KeyKind, Width};
use super::schema::Fields;
use super::text;
use crate::model::{value_text, Attributes, LogRow, MetricPoint, Resource, Signal, SpanRow};
use crate::rollup::RollupRow;

/// Attribute values longer than this are not indexed as `key=value` terms (rows still hold
/// them, and a query on them falls back to scanning).
const MAX_INDEXED_ATTR: usize = 256;

/// A key with more distinct values than this in one block (ids, urls) is indexed as "has
/// many values" (`attr_overflow`) instead of value by value: such values would make the index
/// larger than the data and prune nothing.
const MAX_VALUES_PER_KEY: usize = 32;

/// One instance seen in a block, stored in the block document so the service list can be
/// rebuilt from the index after a restart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeenInstance {
    pub service: String,
    pub instance: String,
    pub host: String,
    pub version: String,
    /// Latest record time of this instance in the block (Unix ns).
    pub last_seen: i64,
}

/// Accumulates the distinct terms and filter keys of one block.
///
/// Built once per row group on the flush path, so it avoids allocating per row: a value is
/// copied only the first time the block sees it, and resources (shared by every record of
/// one export) are looked at once per export.
struct BlockBuilder<'f> {
    fields: &'f Fields,
    doc: TantivyDocument,
    time_min: i64,
    time_max: i64,
    rows: u64,
    strings: HashMap<tantivy::schema::Field, HashSet<String>>,
    /// Distinct values per attribute key; `None` once the key has too many (or too long)
    /// values to list.
    attrs: HashMap<String, Option<HashSet<String>>>,
    /// Latest record time per resource (keyed by the shared resource's address).
    resources: HashMap<usize, (Arc<Resource>, i64)>,
    /// Filter keys of id-like body tokens and of ids (see `filter.rs`).
    token_keys: Vec<u64>,
    id_keys: Vec<u64>,
}

impl<'f> BlockBuilder<'f> {
    fn new(fields: &'f Fields, signal: Signal, path: &str, row_group: usize) -> Self {
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
            strings: HashMap::new(),
            attrs: HashMap::new(),
            resources: HashMap::new(),
            token_keys: Vec::new(),
            id_keys: Vec::new(),
        }
    }

    fn row(&mut self, start: i64, end: i64, resource: &Arc<Resource>) {
        self.rows += 1;
        self.time_min = self.time_min.min(start);
        self.time_max = self.time_max.max(end);
        let seen = self
            .resources
            .entry(Arc::as_ptr(resource) as usize)
            .or_insert_with(|| (resource.clone(), end));
        seen.1 = seen.1.max(end);
    }

    fn term(&mut self, field: tantivy::schema::Field, value: &str) {
        let values = self.strings.entry(field).or_default();
        if !values.contains(value) {
            values.insert(value.to_string());
        }
    }

    fn key(&mut self, kind: KeyKind, value: &[u8]) {
        let keys = match kind.width() {
            Width::Narrow => &mut self.token_keys,
            Width::Wide => &mut self.id_keys,
        };
        keys.push(filter::key(kind, value));
    }

    fn attributes(&mut self, attrs: &Attributes) {
        for (key, value) in attrs {
            if !self.attrs.contains_key(key.as_str()) {
                self.attrs.insert(key.clone(), Some(HashSet::new()));
            }
            let Some(slot) = self.attrs.get_mut(key.as_str()) else {
                continue;
            };
            let Some(values) = slot else { continue };
            let known = match value {
                serde_json::Value::String(s) => values.contains(s.as_str()),
                _ => false,
            };
            if known {
                continue;
            }
            let text = value_text(value);
            if text.len() > MAX_INDEXED_ATTR || values.len() >= MAX_VALUES_PER_KEY {
                *slot = None;
            } else {
                values.insert(text);
            }
        }
    }

    fn finish(mut self) -> TantivyDocument {
        for (key, values) in std::mem::take(&mut self.attrs) {
            match values {
                Some(values) => {
                    for v in values {
                        self.doc.add_text(self.fields.attr, format!("{key}={v}"));
                    }
                }
                None => self.doc.add_text(self.fields.attr_overflow, &key),
            }
        }
        let mut instances: HashMap<(String, String, String, String), i64> = HashMap::new();
        for (resource, last_seen) in std::mem::take(&mut self.resources).into_values() {
            self.term(self.fields.service, &resource.service_name);
            if !resource.service_instance_id.is_empty() {
                self.term(self.fields.instance, &resource.service_instance_id);
            }
            let key = (
                resource.service_name.clone(),
                resource.service_instance_id.clone(),
                resource.host_name.clone(),
                resource.service_version.clone(),
            );
            let seen = instances.entry(key).or_insert(last_seen);
            *seen = (*seen).max(last_seen);
        }
        for (field, values) in std::mem::take(&mut self.strings) {
            for value in values {
                self.doc.add_text(field, value);
            }
        }
        self.doc.add_i64(self.fields.time_min, self.time_min);
        self.doc.add_i64(self.fields.time_max, self.time_max);
        self.doc.add_u64(self.fields.rows, self.rows);
        if let Some(bytes) = BlockFilter::build(&mut self.token_keys, Width::Narrow).to_bytes() {
            self.doc.add_bytes(self.fields.filter, &bytes);
        }
        if let Some(bytes) = BlockFilter::build(&mut self.id_keys, Width::Wide).to_bytes() {
            self.doc.add_bytes(self.fields.id_filter, &bytes);
        }
        let instances: Vec<SeenInstance> = instances
            .into_iter()
            .map(
                |((service, instance, host, version), last_seen)| SeenInstance {
                    service,
                    instance,
                    host,
                    version,
                    last_seen,
                },
            )
            .collect();
        let json = serde_json::to_string(&instances).unwrap_or_else(|_| "[]".into());
        self.doc.add_text(self.fields.instances, json);
        self.doc
    }
}

/// The block document of span row group `row_group` of file `path`.
pub fn span_block(
    fields: &Fields,
    path: &str,
    row_group: usize,
    rows: &[&SpanRow],
) -> TantivyDocument {
    let mut b = BlockBuilder::new(fields, Signal::Traces, path, row_group);
    for r in rows {
        b.row(r.start_time_unix_nano, r.end_time_unix_nano, &r.resource);
        b.key(KeyKind::TraceId, &r.trace_id.0);
        b.term(fields.name, &r.name);
        b.term(fields.status, &r.status_code);
        if let Some(c) = &r.correlation_id {
            b.key(KeyKind::CorrelationId, c.as_bytes());
        }
        for link in &r.links {
            b.key(KeyKind::LinkedTraceId, &link.trace_id.0);
        }
        b.attributes(&r.attributes);
    }
    b.finish()
}

/// The block document of log row group `row_group` of file `path`; bodies are indexed as
/// tokens without positions (phrases are checked against the rows).
pub fn log_block(
    fields: &Fields,
    path: &str,
    row_group: usize,
    rows: &[&LogRow],
) -> TantivyDocument {
    let mut b = BlockBuilder::new(fields, Signal::Logs, path, row_group);
    let mut severities = BTreeSet::new();
    for r in rows {
        b.row(r.time_unix_nano, r.time_unix_nano, &r.resource);
        if let Some(t) = r.trace_id {
            b.key(KeyKind::TraceId, &t.0);
        }
        if let Some(s) = r.span_id {
            b.key(KeyKind::SpanId, &s.0);
        }
        if let Some(c) = &r.correlation_id {
            b.key(KeyKind::CorrelationId, c.as_bytes());
        }
        severities.insert(r.severity_number);
        b.attributes(&r.attributes);
    }
    for s in severities {
        b.doc.add_i64(fields.severity, i64::from(s));
    }
    // Distinct body tokens: words into the index (one text value, tokenized once more by
    // tantivy), id-like tokens into the filter.
    let mut analyzer = text::analyzer();
    let mut words: HashSet<String> = HashSet::new();
    for r in rows {
        let mut stream = analyzer.token_stream(&r.body);
        while let Some(token) = stream.next() {
            if !text::is_indexed(&token.text) {
                b.key(KeyKind::BodyToken, token.text.as_bytes());
            } else if !words.contains(token.text.as_str()) {
                words.insert(token.text.clone());
            }
        }
    }
    b.doc
        .add_text(fields.body, words.into_iter().collect::<Vec<_>>().join(" "));
    b.finish()
}

/// The block document of metric row group `row_group` of file `path` (raw points, or
/// one-minute points under `Signal::MetricMinutes`).
pub fn metric_block(
    fields: &Fields,
    signal: Signal,
    path: &str,
    row_group: usize,
    rows: &[&MetricPoint],
) -> TantivyDocument {
    let mut b = BlockBuilder::new(fields, signal, path, row_group);
    for r in rows {
        b.row(r.time_unix_nano, r.time_unix_nano, &r.resource);
        b.term(fields.name, &r.name);
        b.attributes(&r.attributes);
    }
    b.finish()
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
        b.term(fields.name, r.kind.as_str());
    }
    b.finish()
}
