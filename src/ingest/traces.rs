//! OTLP trace export request → one Arrow batch in the span files' schema, and what the
//! rollups need of it — in one pass over the request's bytes, read in place
//! ([`super::view::trace`]), with no owned messages or attribute maps (attribute, event and
//! link JSON is written straight into the column).

use std::borrow::Cow;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, FixedSizeBinaryBuilder, Int64Builder, StringBuilder, TimestampNanosecondBuilder,
};
use arrow::record_batch::RecordBatch;
use serde::ser::{SerializeSeq, SerializeStruct};
use serde::{Serialize, Serializer};

use super::attribute_text::{text_of, KeyValuesJson};
use super::correlation::CorrelationKeys;
use super::record_columns::{append_json, text_builder, RecordColumns, ResourceText};
use super::record_columns::{DecodeError, Decoded};
use super::rejects::Rejects;
use super::resource::resource_of;
use super::view::trace::{request, Event, Link, Span};
use super::view::{attributes, Scope};
use crate::model::{SpanId, SpanKind, SpanStatus, TraceId};
use crate::rollup::error_group::signature;
use crate::rollup::{DeltaBuilder, SpanFacts};
use crate::store::StoreError;

/// Decodes every span; a span with an invalid trace, span or parent id is dropped on its own
/// and counted in [`Decoded::rejects`], the others are kept.
/// `bytes` is an `ExportTraceServiceRequest` in protobuf; bytes that are not one fail the
/// whole request with [`DecodeError::Wire`].
pub fn decode_traces(bytes: &[u8], keys: &CorrelationKeys) -> Result<Decoded, DecodeError> {
    let resources = request(bytes)?;
    let rows = resources
        .iter()
        .flat_map(|r| &r.scopes)
        .map(|s| s.records.len())
        .sum();
    let mut columns = SpanColumns::with_capacity(rows);
    let mut rollups = DeltaBuilder::default();
    let mut rejects = Rejects::default();
    let mut span = Span::default();
    for resource_spans in &resources {
        let resource = ResourceText::new(resource_of(attributes(&resource_spans.resource)));
        let seen = rollups.resource(resource.resource.clone());
        for scope_spans in &resource_spans.scopes {
            let scope = scope_spans.scope;
            for bytes in &scope_spans.records {
                span.read(bytes)?;
                let span = &span;
                let facts = match span_facts(span) {
                    Ok(facts) => facts,
                    Err(message) => {
                        rejects.reject(|| message);
                        continue;
                    }
                };
                columns.append(span, &facts, &resource, scope, keys);
                rollups.seen(seen, facts.start + facts.duration);
                let attrs = &span.attributes;
                rollups.span(
                    seen,
                    &facts,
                    valid_links(&span.links).map(|(t, s, _)| (t, s)),
                    text_of(attrs, "db.system"),
                    text_of(attrs, "peer.service"),
                    || text_of(attrs, "server.address"),
                );
                if facts.error {
                    let exception = span.events.iter().find(|e| e.name == "exception");
                    let get = |k| exception.and_then(|e| text_of(&e.attributes, k));
                    let message =
                        get("exception.message").unwrap_or(Cow::Borrowed(span.status.message));
                    let stack = get("exception.stacktrace").unwrap_or_default();
                    let sig = signature([get("exception.type")], "error", &message, &stack);
                    let example = Some((facts.trace_id, Some(facts.span_id)));
                    rollups.error_group(seen, sig, facts.start, example);
                }
            }
        }
    }
    let attribute_values = Some(columns.record.attribute_values());
    Ok(Decoded {
        batch: columns.finish()?,
        rollups: rollups.finish(),
        rejects,
        attribute_values,
    })
}

/// The ids, times, kind and status of a span, or why its ids are invalid.
fn span_facts<'a>(span: &Span<'a>) -> Result<SpanFacts<'a>, String> {
    let name = span.name;
    let trace_id = TraceId::from_bytes(span.trace_id)
        .map_err(|e| format!("span {name:?}: invalid trace_id: {e}"))?;
    let span_id = SpanId::from_bytes(span.span_id)
        .map_err(|e| format!("span {name:?}: invalid span_id: {e}"))?;
    let parent_span_id = SpanId::from_optional_bytes(span.parent_span_id)
        .map_err(|e| format!("span {name:?}: invalid parent_span_id: {e}"))?;
    let start = clamp_ns(span.start_time_unix_nano);
    let end = clamp_ns(span.end_time_unix_nano).max(start);
    let code = span.status.code;
    Ok(SpanFacts {
        trace_id,
        span_id,
        parent_span_id,
        name,
        kind: SpanKind::of_otlp(span.kind),
        start,
        duration: end - start,
        error: SpanStatus::of_otlp(code) == SpanStatus::Error,
    })
}

/// The links whose ids are valid: a link with a bad id points nowhere, so it is dropped and
/// the span kept.
fn valid_links<'l, 'a>(
    links: &'l [Link<'a>],
) -> impl Iterator<Item = (TraceId, SpanId, &'l Link<'a>)> {
    links.iter().filter_map(|l| {
        Some((
            TraceId::from_bytes(l.trace_id).ok()?,
            SpanId::from_bytes(l.span_id).ok()?,
            l,
        ))
    })
}

/// Unix nanoseconds as `i64` (Parquet's timestamp type); values past year 2262 saturate.
pub fn clamp_ns(ns: u64) -> i64 {
    i64::try_from(ns).unwrap_or(i64::MAX)
}

/// Builders of the span files' columns.
struct SpanColumns<'r> {
    trace_id: FixedSizeBinaryBuilder,
    span_id: FixedSizeBinaryBuilder,
    parent_span_id: FixedSizeBinaryBuilder,
    trace_state: StringBuilder,
    name: StringBuilder,
    kind: StringBuilder,
    start: TimestampNanosecondBuilder,
    end: TimestampNanosecondBuilder,
    duration: Int64Builder,
    status_code: StringBuilder,
    status_message: StringBuilder,
    record: RecordColumns<'r>,
    events: StringBuilder,
    links: StringBuilder,
    scope_name: StringBuilder,
    scope_version: StringBuilder,
    scratch: Vec<u8>,
}

impl<'r> SpanColumns<'r> {
    fn with_capacity(rows: usize) -> Self {
        Self {
            trace_id: FixedSizeBinaryBuilder::with_capacity(rows, TraceId::LEN as i32),
            span_id: FixedSizeBinaryBuilder::with_capacity(rows, SpanId::LEN as i32),
            parent_span_id: FixedSizeBinaryBuilder::with_capacity(rows, SpanId::LEN as i32),
            trace_state: text_builder(rows, 0),
            name: text_builder(rows, 16),
            kind: text_builder(rows, 6),
            start: TimestampNanosecondBuilder::with_capacity(rows),
            end: TimestampNanosecondBuilder::with_capacity(rows),
            duration: Int64Builder::with_capacity(rows),
            status_code: text_builder(rows, 5),
            status_message: text_builder(rows, 0),
            record: RecordColumns::with_capacity(rows),
            events: text_builder(rows, 2),
            links: text_builder(rows, 2),
            scope_name: text_builder(rows, 16),
            scope_version: text_builder(rows, 4),
            scratch: Vec::with_capacity(1024),
        }
    }

    fn append(
        &mut self,
        span: &Span<'r>,
        facts: &SpanFacts<'_>,
        resource: &ResourceText,
        scope: Scope<'_>,
        keys: &CorrelationKeys,
    ) {
        // The lengths were checked by `span_facts`; these appends cannot fail.
        let _ = self.trace_id.append_value(facts.trace_id.0);
        let _ = self.span_id.append_value(facts.span_id.0);
        match facts.parent_span_id {
            Some(p) => {
                let _ = self.parent_span_id.append_value(p.0);
            }
            None => self.parent_span_id.append_null(),
        }
        self.trace_state.append_value(span.trace_state);
        self.name.append_value(facts.name);
        self.kind.append_value(facts.kind.as_str());
        self.start.append_value(facts.start);
        self.end.append_value(facts.start + facts.duration);
        self.duration.append_value(facts.duration);
        self.status_code
            .append_value(SpanStatus::of_otlp(span.status.code).as_str());
        self.status_message.append_value(span.status.message);
        self.record.append(&span.attributes, resource, keys);
        append_json(&mut self.events, &mut self.scratch, |out| {
            let _ = serde_json::to_writer(out, &EventsJson(&span.events));
        });
        append_json(&mut self.links, &mut self.scratch, |out| {
            let _ = serde_json::to_writer(out, &LinksJson(&span.links));
        });
        self.scope_name.append_value(scope.name);
        self.scope_version.append_value(scope.version);
    }

    /// The batch, columns in [`crate::store::spans::schema`] order.
    fn finish(mut self) -> Result<RecordBatch, StoreError> {
        let [correlation_id, correlation_key, attributes] = self.record.finish_record();
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(self.trace_id.finish()),
            Arc::new(self.span_id.finish()),
            Arc::new(self.parent_span_id.finish()),
            Arc::new(self.trace_state.finish()),
            Arc::new(self.name.finish()),
            Arc::new(self.kind.finish()),
            Arc::new(self.start.finish().with_timezone("UTC")),
            Arc::new(self.end.finish().with_timezone("UTC")),
            Arc::new(self.duration.finish()),
            Arc::new(self.status_code.finish()),
            Arc::new(self.status_message.finish()),
            correlation_id,
            correlation_key,
            attributes,
            Arc::new(self.events.finish()),
            Arc::new(self.links.finish()),
            Arc::new(self.scope_name.finish()),
            Arc::new(self.scope_version.finish()),
        ];
        columns.extend(self.record.finish_resource());
        Ok(RecordBatch::try_new(
            crate::store::spans::schema(),
            columns,
        )?)
    }
}

/// A span's events as the `events` column stores them (the JSON of `model::SpanEvent`s).
struct EventsJson<'e, 'a>(&'e [Event<'a>]);

impl Serialize for EventsJson<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for e in self.0 {
            seq.serialize_element(&EventJson(e))?;
        }
        seq.end()
    }
}

struct EventJson<'e, 'a>(&'e Event<'a>);

impl Serialize for EventJson<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("SpanEvent", 3)?;
        s.serialize_field("time_unix_nano", &clamp_ns(self.0.time_unix_nano))?;
        s.serialize_field("name", &self.0.name)?;
        s.serialize_field("attributes", &KeyValuesJson::new(&self.0.attributes))?;
        s.end()
    }
}

/// A span's valid links as the `links` column stores them (the JSON of `model::SpanLink`s).
struct LinksJson<'l, 'a>(&'l [Link<'a>]);

impl Serialize for LinksJson<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(None)?;
        for (trace_id, span_id, link) in valid_links(self.0) {
            seq.serialize_element(&LinkJson {
                trace_id,
                span_id,
                link,
            })?;
        }
        seq.end()
    }
}

struct LinkJson<'l, 'a> {
    trace_id: TraceId,
    span_id: SpanId,
    link: &'l Link<'a>,
}

impl Serialize for LinkJson<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("SpanLink", 4)?;
        s.serialize_field("trace_id", &self.trace_id)?;
        s.serialize_field("span_id", &self.span_id)?;
        s.serialize_field("trace_state", &self.link.trace_state)?;
        s.serialize_field("attributes", &KeyValuesJson::new(&self.link.attributes))?;
        s.end()
    }
}
