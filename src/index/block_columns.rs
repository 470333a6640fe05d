//! Block documents of span and log row groups, read straight from their Arrow columns.
//!
//! The flusher, compaction and reindexing all hold a row group as Arrow batches already (the
//! batches they encode to Parquet, or read back from it). Summarising those columns in place
//! — names, statuses and services borrowed from the string buffers, attribute JSON walked
//! without building maps, ids hashed from the fixed-size binary columns — costs a fraction
//! of decoding every record into rows first (the flusher spent most of its time building
//! and dropping rows' attribute maps).

use std::borrow::Cow;

use arrow::array::{Array, StringArray};
use arrow::datatypes::{Int32Type, TimestampNanosecondType};
use arrow::record_batch::RecordBatch;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use tantivy::tokenizer::TokenStream;
use tantivy::TantivyDocument;

use super::attribute_values::AttributeValues;
use super::block::{BlockBuilder, InstanceKey};
use super::filter::KeyKind;
use super::schema::Fields;
use super::streams::StreamCounter;
use super::text;
use crate::model::{Signal, TraceId};
use crate::store::columns::{opt_str_ref, Columns};
use crate::store::StoreError;

/// The columns every record's instance is read from.
struct InstanceColumns<'a> {
    service: &'a StringArray,
    instance: &'a StringArray,
    host: &'a StringArray,
    version: &'a StringArray,
}

impl<'a> InstanceColumns<'a> {
    fn new(cols: &Columns<'a>) -> Result<Self, StoreError> {
        Ok(Self {
            service: cols.str("service_name")?,
            instance: cols.str("service_instance_id")?,
            host: cols.str("host_name")?,
            version: cols.str("service_version")?,
        })
    }

    fn get(&self, i: usize) -> InstanceKey<'a> {
        [
            self.service.value(i),
            self.instance.value(i),
            self.host.value(i),
            self.version.value(i),
        ]
    }
}

/// A record's attributes as stored (JSON text without the lifted correlation attribute) and
/// the columns that put the lifted one back.
struct AttributeColumns<'a> {
    attributes: &'a StringArray,
    correlation_id: &'a StringArray,
    correlation_key: Option<&'a StringArray>,
}

impl<'a> AttributeColumns<'a> {
    fn new(cols: &Columns<'a>) -> Result<Self, StoreError> {
        Ok(Self {
            attributes: cols.str("attributes")?,
            correlation_id: cols.str("correlation_id")?,
            correlation_key: cols.str_if_present("correlation_key"),
        })
    }

    /// Notes every attribute of record `i` in `b`, the lifted correlation one included.
    fn note(&self, i: usize, b: &mut BlockBuilder<'_, 'a>) {
        for_each_attribute(self.attributes.value(i), |key, text| b.attribute(key, text));
        let key = self.correlation_key.and_then(|k| opt_str_ref(k, i));
        if let (Some(key), Some(id)) = (key, opt_str_ref(self.correlation_id, i)) {
            b.attribute(Cow::Borrowed(key), Cow::Borrowed(id));
        }
    }
}

/// The block document of span row group `row_group` of file `path`; its attribute terms are
/// `decoded` (the values the decoder collected for each export the rows came from) when
/// given, else read from each row's attribute JSON.
pub fn span_block<'a>(
    fields: &Fields,
    path: &str,
    row_group: usize,
    batches: &'a [RecordBatch],
    decoded: Option<&'a [&'a AttributeValues<'a>]>,
) -> Result<TantivyDocument, StoreError> {
    let mut b = BlockBuilder::new(fields, Signal::Traces, path, row_group);
    for batch in batches {
        let cols = Columns::new(batch);
        let trace_id = cols.fixed("trace_id")?;
        let name = cols.str("name")?;
        let status = cols.str("status_code")?;
        let start = cols.primitive::<TimestampNanosecondType>("start_time")?;
        let end = cols.primitive::<TimestampNanosecondType>("end_time")?;
        let links = cols.str("links")?;
        let instances = InstanceColumns::new(&cols)?;
        let attributes = AttributeColumns::new(&cols)?;
        for i in 0..batch.num_rows() {
            b.row(start.value(i), end.value(i), instances.get(i));
            b.key(KeyKind::TraceId, trace_id.value(i));
            b.term(fields.name, name.value(i));
            b.term(fields.status, status.value(i));
            if let Some(c) = opt_str_ref(attributes.correlation_id, i) {
                b.key(KeyKind::CorrelationId, c.as_bytes());
            }
            let links = links.value(i);
            if links != "[]" {
                for link in serde_json::from_str::<Vec<LinkedTrace>>(links)? {
                    b.key(KeyKind::LinkedTraceId, &link.trace_id.0);
                }
            }
            if decoded.is_none() {
                attributes.note(i, &mut b);
            }
        }
    }
    for values in decoded.into_iter().flatten() {
        b.attribute_values(values);
    }
    Ok(b.finish())
}

/// The block document of metric row group `row_group` of file `path` (raw points or
/// one-minute points: both files share the schema): times, instances, names and attributes.
pub fn metric_block(
    fields: &Fields,
    signal: Signal,
    path: &str,
    row_group: usize,
    batches: &[RecordBatch],
) -> Result<TantivyDocument, StoreError> {
    let mut b = BlockBuilder::new(fields, signal, path, row_group);
    for batch in batches {
        let cols = Columns::new(batch);
        let time = cols.primitive::<TimestampNanosecondType>("time")?;
        let name = cols.str("name")?;
        let attributes = cols.str("attributes")?;
        let instances = InstanceColumns::new(&cols)?;
        for i in 0..batch.num_rows() {
            let t = time.value(i);
            b.row(t, t, instances.get(i));
            b.term(fields.name, name.value(i));
            for_each_attribute(attributes.value(i), |key, text| b.attribute(key, text));
        }
    }
    Ok(b.finish())
}

/// The one field of a stored span link the block needs.
#[derive(Deserialize)]
struct LinkedTrace {
    trace_id: TraceId,
}

/// The block document of log row group `row_group` of file `path`; bodies are indexed as
/// tokens without positions (phrases are checked against the rows). Attribute terms as for
/// [`span_block`].
pub fn log_block<'a>(
    fields: &Fields,
    path: &str,
    row_group: usize,
    batches: &'a [RecordBatch],
    decoded: Option<&'a [&'a AttributeValues<'a>]>,
) -> Result<TantivyDocument, StoreError> {
    let mut b = BlockBuilder::new(fields, Signal::Logs, path, row_group);
    let mut severities = std::collections::BTreeSet::new();
    // Distinct body words into the index, each with the number of records that hold it
    // (`text::CountedWords`); id-like tokens into the filter.
    let mut analyzer = text::analyzer();
    let mut words: foldhash::HashMap<String, WordCount> = foldhash::HashMap::default();
    let mut record = 0u32;
    let mut streams = StreamCounter::default();
    for batch in batches {
        let cols = Columns::new(batch);
        let time = cols.primitive::<TimestampNanosecondType>("time")?;
        let severity = cols.primitive::<Int32Type>("severity_number")?;
        let body = cols.str("body")?;
        let trace_id = cols.fixed("trace_id")?;
        let span_id = cols.fixed("span_id")?;
        let severity_text = cols.str("severity_text")?;
        let instances = InstanceColumns::new(&cols)?;
        let attributes = AttributeColumns::new(&cols)?;
        for i in 0..batch.num_rows() {
            let t = time.value(i);
            let instance = instances.get(i);
            b.row(t, t, instance);
            let [service, instance, host, version] = instance;
            streams.add([service, instance, host, version, severity_text.value(i)]);
            if trace_id.is_valid(i) {
                b.key(KeyKind::TraceId, trace_id.value(i));
            }
            if span_id.is_valid(i) {
                b.key(KeyKind::SpanId, span_id.value(i));
            }
            if let Some(c) = opt_str_ref(attributes.correlation_id, i) {
                b.key(KeyKind::CorrelationId, c.as_bytes());
            }
            severities.insert(severity.value(i));
            if decoded.is_none() {
                attributes.note(i, &mut b);
            }
            record += 1;
            let mut stream = analyzer.token_stream(body.value(i));
            while let Some(token) = stream.next() {
                if text::is_filter_key(&token.text) {
                    b.key(KeyKind::of_body_token(&token.text), token.text.as_bytes());
                } else if !text::is_indexed(&token.text) {
                    // A whole uuid: its first group, the next token, stands for it.
                } else if let Some(word) = words.get_mut(token.text.as_str()) {
                    word.seen_in(record);
                } else {
                    words.insert(token.text.clone(), WordCount::first(record));
                }
            }
        }
    }
    for values in decoded.into_iter().flatten() {
        b.attribute_values(values);
    }
    for s in severities {
        b.doc.add_i64(fields.severity, i64::from(s));
    }
    let mut counted = String::new();
    for (word, count) in &words {
        use std::fmt::Write;
        let _ = write!(counted, "{word} {} ", count.records);
    }
    b.doc.add_text(fields.body, counted);
    b.doc.add_text(fields.streams, streams.into_stored());
    Ok(b.finish())
}

/// How many records of a block hold a word.
struct WordCount {
    records: u32,
    /// The last record counted (records are numbered from 1).
    last: u32,
}

impl WordCount {
    fn first(record: u32) -> Self {
        Self {
            records: 1,
            last: record,
        }
    }

    /// Counts `record` unless it already was (a word twice in one body counts once).
    fn seen_in(&mut self, record: u32) {
        if self.last != record {
            self.records += 1;
            self.last = record;
        }
    }
}

/// Calls `f(key, value text)` for each entry of a stored attribute object, borrowing from
/// `json` wherever no unescaping is needed. A value's text is what attribute queries compare:
/// a string's content, or any other value's compact JSON (as stored). Text that is not an
/// object has no attributes (as [`crate::store::columns::parse_attributes`] reads it); text
/// that breaks off mid-object (not something this version writes) keeps the entries before
/// the break — a block may list more than its rows hold, never less, so building the block
/// of such a file (reindex, compaction) goes on instead of failing.
fn for_each_attribute<'a>(json: &'a str, f: impl FnMut(Cow<'a, str>, Cow<'a, str>)) {
    if !json.starts_with('{') {
        return;
    }
    let mut de = serde_json::Deserializer::from_str(json);
    if let Err(e) = de.deserialize_map(Entries(f)) {
        tracing::debug!("attribute JSON breaks off: {e}");
    }
}

/// Walks a JSON object's entries for [`for_each_attribute`].
struct Entries<F>(F);

impl<'de, F: FnMut(Cow<'de, str>, Cow<'de, str>)> Visitor<'de> for Entries<F> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an attribute object")
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        while let Some(Text(key)) = map.next_key::<Text<'de>>()? {
            let raw: &'de RawValue = map.next_value()?;
            let value = raw.get();
            let text = if value.starts_with('"') {
                serde_json::from_str::<Text<'de>>(value)
                    .map_err(serde::de::Error::custom)?
                    .0
            } else {
                Cow::Borrowed(value)
            };
            (self.0)(key, text);
        }
        Ok(())
    }
}

/// A JSON string, borrowed when it holds no escapes.
struct Text<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v.to_string())))
            }
        }
        d.deserialize_str(TextVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::value_text;
    use crate::store::columns::parse_attributes;

    #[test]
    fn attribute_walk_gives_what_parsing_gives() {
        let json = r#"{"a":"plain","b\"q":"esc\"aped \u00e9","n":3,"f":1.5,"t":true,"z":null,"o":{"k":[1,"x"]},"e":""}"#;
        let mut walked = Vec::new();
        for_each_attribute(json, |k, v| walked.push((k.into_owned(), v.into_owned())));
        let mut parsed: Vec<(String, String)> = parse_attributes(json)
            .iter()
            .map(|(k, v)| (k.clone(), value_text(v)))
            .collect();
        walked.sort();
        parsed.sort();
        assert_eq!(walked, parsed);
        let mut none = 0;
        for_each_attribute("[1,2]", |_, _| none += 1);
        for_each_attribute("", |_, _| none += 1);
        assert_eq!(none, 0);
        let mut kept = Vec::new();
        for_each_attribute("{\"a\":1,\"b\":", |k, _| kept.push(k.into_owned()));
        assert_eq!(kept, ["a"], "entries before a break are kept");
    }

    use std::collections::BTreeSet;
    use std::sync::Arc;

    use tantivy::schema::Value;

    use super::super::filter::{key, StoredFilter, Width};
    use super::super::schema::Fields;
    use super::super::SeenInstance;
    use crate::model::{LogRow, Resource, SpanId, SpanLink, SpanRow};
    use crate::store::StoredRow;

    fn resource(service: &str, instance: &str) -> Arc<Resource> {
        Arc::new(Resource {
            service_name: service.into(),
            service_instance_id: instance.into(),
            host_name: "h".into(),
            service_version: "1.0".into(),
            attributes: Default::default(),
        })
    }

    fn attrs(json: serde_json::Value) -> crate::model::Attributes {
        json.as_object().cloned().unwrap_or_default()
    }

    fn span(n: u8, service: &Arc<Resource>, name: &str, status: &str) -> SpanRow {
        SpanRow {
            trace_id: TraceId([n; 16]),
            span_id: SpanId([n; 8]),
            parent_span_id: None,
            trace_state: String::new(),
            name: name.into(),
            kind: crate::model::SpanKind::Server,
            start_time_unix_nano: 1_000 * i64::from(n),
            end_time_unix_nano: 1_000 * i64::from(n) + 500,
            duration_nano: 500,
            status_code: crate::model::SpanStatus::of_name(status),
            status_message: String::new(),
            attributes: attrs(
                serde_json::json!({"http.route": format!("/r{}", n % 2), "n": n, "req": format!("r-{n}")}),
            ),
            events: Vec::new(),
            links: Vec::new(),
            resource: service.clone(),
            scope_name: String::new(),
            scope_version: String::new(),
            correlation_id: Some(format!("r-{n}")),
        }
    }

    fn texts(doc: &TantivyDocument, field: tantivy::schema::Field) -> BTreeSet<String> {
        doc.get_all(field)
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect()
    }

    fn set(values: &[&str]) -> BTreeSet<String> {
        values.iter().map(|v| v.to_string()).collect()
    }

    /// Asks the stored filter `field` of `doc` through the read path queries use.
    fn filter(
        doc: &TantivyDocument,
        field: tantivy::schema::Field,
        width: Width,
    ) -> impl Fn(u64) -> bool + '_ {
        let bytes = doc
            .get_first(field)
            .and_then(|v| v.as_bytes())
            .unwrap_or(&[]);
        move |k| StoredFilter::parse(bytes, width).may_contain(k, width)
    }

    /// A span block built from the columns holds every service, instance, name, status,
    /// attribute value (the lifted correlation attribute included), id and linked trace id of
    /// its rows, split over two batches as a row group read back from Parquet is.
    #[test]
    fn span_block_from_columns_holds_every_term_and_id() {
        let (_, fields) = Fields::schema();
        let (a, b) = (resource("checkout", "c-1"), resource("payments", "p-1"));
        let mut rows = [
            span(1, &a, "GET /cart", "OK"),
            span(2, &a, "GET /cart", "ERROR"),
            span(3, &b, "charge", "UNSET"),
        ];
        rows[2].links.push(SpanLink {
            trace_id: TraceId([9; 16]),
            span_id: SpanId([9; 8]),
            trace_state: String::new(),
            attributes: Default::default(),
        });
        let batches = [
            SpanRow::to_batch(&[&rows[0], &rows[1]]).expect("batch"),
            SpanRow::to_batch(&[&rows[2]]).expect("batch"),
        ];
        let doc = span_block(&fields, "traces/x.parquet", 4, &batches, None).expect("block");
        assert_eq!(texts(&doc, fields.service), set(&["checkout", "payments"]));
        assert_eq!(texts(&doc, fields.instance), set(&["c-1", "p-1"]));
        assert_eq!(texts(&doc, fields.name), set(&["GET /cart", "charge"]));
        assert_eq!(texts(&doc, fields.status), set(&["OK", "ERROR", "UNSET"]));
        assert_eq!(
            texts(&doc, fields.attr),
            set(&[
                "http.route=/r0",
                "http.route=/r1",
                "n=1",
                "n=2",
                "n=3",
                "req=r-1",
                "req=r-2",
                "req=r-3"
            ])
        );
        assert_eq!(doc.get_first(fields.rows).and_then(|v| v.as_u64()), Some(3));
        assert_eq!(
            doc.get_first(fields.time_min).and_then(|v| v.as_i64()),
            Some(1_000)
        );
        assert_eq!(
            doc.get_first(fields.time_max).and_then(|v| v.as_i64()),
            Some(3_500)
        );
        let ids = filter(&doc, fields.wide_filter, Width::Wide);
        for n in 1..=3u8 {
            assert!(ids(key(KeyKind::TraceId, &[n; 16])));
            assert!(ids(key(
                KeyKind::CorrelationId,
                format!("r-{n}").as_bytes()
            )));
        }
        assert!(ids(key(KeyKind::LinkedTraceId, &[9; 16])));
        let instances: Vec<SeenInstance> = serde_json::from_str(
            doc.get_first(fields.instances)
                .and_then(|v| v.as_str())
                .unwrap_or("[]"),
        )
        .expect("instances JSON");
        let seen: Vec<(&str, i64)> = instances
            .iter()
            .map(|i| (i.service.as_str(), i.last_seen))
            .collect();
        assert_eq!(seen, [("checkout", 2_500), ("payments", 3_500)]);
    }

    /// A log block built from the columns holds body words as terms and id-like body tokens,
    /// trace, span and correlation ids in its filters (eight hex digits in the wide one).
    #[test]
    fn log_block_from_columns_holds_words_and_tokens() {
        let (_, fields) = Fields::schema();
        let r = resource("checkout", "c-1");
        let log = |n: u8, body: &str, severity: i32| LogRow {
            time_unix_nano: i64::from(n),
            observed_time_unix_nano: i64::from(n),
            severity_number: severity,
            severity_text: String::new(),
            body: body.into(),
            attributes: attrs(serde_json::json!({"order": "o-1", "code": 402})),
            trace_id: (n == 1).then_some(TraceId([7; 16])),
            span_id: (n == 1).then_some(SpanId([7; 8])),
            flags: 0,
            event_name: String::new(),
            resource: r.clone(),
            scope_name: String::new(),
            correlation_id: (n == 2).then(|| "corr-2".to_string()),
        };
        let rows = [
            log(1, "Payment FAILED for order-12345, payment", 17),
            log(2, "payment ok ref 3f2a9c1e", 9),
        ];
        let batch = LogRow::to_batch(&[&rows[0], &rows[1]]).expect("batch");
        let doc = log_block(&fields, "logs/x.parquet", 0, &[batch], None).expect("block");
        // Each word with the number of records holding it ("payment" twice in one body
        // counts once).
        let words: BTreeSet<String> = texts(&doc, fields.body)
            .iter()
            .flat_map(|t| {
                let parts: Vec<&str> = t.split_whitespace().collect();
                parts.chunks(2).map(|p| p.join(" ")).collect::<Vec<_>>()
            })
            .collect();
        assert_eq!(
            words,
            set(&["payment 2", "failed 1", "for 1", "order 1", "ok 1", "ref 1"])
        );
        assert_eq!(texts(&doc, fields.attr), set(&["order=o-1", "code=402"]));
        let severities: Vec<i64> = doc
            .get_all(fields.severity)
            .filter_map(|v| v.as_i64())
            .collect();
        assert_eq!(severities, [9, 17]);
        let tokens = filter(&doc, fields.narrow_filter, Width::Narrow);
        assert!(tokens(key(KeyKind::BodyToken, b"12345")));
        assert!(tokens(key(KeyKind::SpanId, &[7; 8])));
        let ids = filter(&doc, fields.wide_filter, Width::Wide);
        assert!(ids(key(KeyKind::TraceId, &[7; 16])));
        assert!(ids(key(KeyKind::CorrelationId, b"corr-2")));
        // Eight hex digits are a 16-bit key, and only there.
        assert!(ids(key(KeyKind::BodyHexWord, b"3f2a9c1e")));
        assert!(!tokens(key(KeyKind::BodyHexWord, b"3f2a9c1e")));
    }
}
