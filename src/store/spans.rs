//! The Parquet schema of span files and the conversion between rows and Arrow batches.

use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array};
use arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef, TimestampNanosecondType};
use arrow::record_batch::RecordBatch;

use super::columns::*;
use super::StoreError;
use crate::model::{SpanId, SpanKind, SpanRow, SpanStatus, TraceId};

/// The span file schema, documented in ARCHITECTURE.md.
pub fn schema() -> SchemaRef {
    let mut fields = vec![
        Field::new("trace_id", DataType::FixedSizeBinary(16), false),
        Field::new("span_id", DataType::FixedSizeBinary(8), false),
        Field::new("parent_span_id", DataType::FixedSizeBinary(8), true),
        utf8("trace_state"),
        utf8("name"),
        utf8("kind"),
        Field::new("start_time", timestamp_type(), false),
        Field::new("end_time", timestamp_type(), false),
        Field::new("duration_ns", DataType::Int64, false),
        utf8("status_code"),
        utf8("status_message"),
        utf8_null("correlation_id"),
        // The attribute key the correlation id was lifted from (see `lifted_attributes`).
        utf8_null("correlation_key"),
        utf8("attributes"),
        utf8("events"),
        utf8("links"),
        utf8("scope_name"),
        utf8("scope_version"),
    ];
    fields.extend(resource_fields());
    Arc::new(Schema::new(fields))
}

/// Builds one batch from spans, in the order given.
pub fn to_batch(rows: &[&SpanRow]) -> Result<RecordBatch, StoreError> {
    let lifted: Vec<(String, Option<String>)> = rows
        .iter()
        .map(|r| lifted_attributes(&r.attributes, r.correlation_id.as_deref()))
        .collect();
    let mut columns: Vec<ArrayRef> = vec![
        fixed_binary(rows.iter().map(|r| Some(r.trace_id.0)))?,
        fixed_binary(rows.iter().map(|r| Some(r.span_id.0)))?,
        fixed_binary(rows.iter().map(|r| r.parent_span_id.map(|p| p.0)))?,
        strings(rows.iter().map(|r| r.trace_state.as_str())),
        strings(rows.iter().map(|r| r.name.as_str())),
        strings(rows.iter().map(|r| r.kind.as_str())),
        timestamps(rows.iter().map(|r| r.start_time_unix_nano)),
        timestamps(rows.iter().map(|r| r.end_time_unix_nano)),
        Arc::new(Int64Array::from_iter_values(
            rows.iter().map(|r| r.duration_nano),
        )),
        strings(rows.iter().map(|r| r.status_code.as_str())),
        strings(rows.iter().map(|r| r.status_message.as_str())),
        opt_strings(rows.iter().map(|r| r.correlation_id.as_deref())),
        opt_strings(lifted.iter().map(|(_, key)| key.as_deref())),
        strings(lifted.iter().map(|(text, _)| text.as_str())),
        strings(rows.iter().map(|r| json_value(&r.events))),
        strings(rows.iter().map(|r| json_value(&r.links))),
        strings(rows.iter().map(|r| r.scope_name.as_str())),
        strings(rows.iter().map(|r| r.scope_version.as_str())),
    ];
    columns.extend(resource_columns(rows.iter().map(|r| r.resource.as_ref())));
    Ok(RecordBatch::try_new(schema(), columns)?)
}

/// Reads spans back from a batch of a span file, keeping only rows that pass `keep`.
pub fn from_batch(
    batch: &RecordBatch,
    keep: &mut dyn FnMut(&SpanRow) -> bool,
    out: &mut Vec<SpanRow>,
) -> Result<(), StoreError> {
    let cols = Columns::new(batch);
    let trace_id = cols.fixed("trace_id")?;
    let span_id = cols.fixed("span_id")?;
    let parent = cols.fixed("parent_span_id")?;
    let trace_state = cols.str("trace_state")?;
    let name = cols.str("name")?;
    let kind = cols.str("kind")?;
    let start = cols.primitive::<TimestampNanosecondType>("start_time")?;
    let end = cols.primitive::<TimestampNanosecondType>("end_time")?;
    let duration = cols.primitive::<Int64Type>("duration_ns")?;
    let status_code = cols.str("status_code")?;
    let status_message = cols.str("status_message")?;
    let correlation = cols.str("correlation_id")?;
    let correlation_key = cols.str_if_present("correlation_key");
    let attributes = cols.str("attributes")?;
    let events = cols.str("events")?;
    let links = cols.str("links")?;
    let scope_name = cols.str("scope_name")?;
    let scope_version = cols.str("scope_version")?;
    let mut resources = ResourceReader::new(&cols)?;
    for i in 0..batch.num_rows() {
        let (Some(t), Some(s)) = (fixed_value::<16>(trace_id, i), fixed_value::<8>(span_id, i))
        else {
            return Err(StoreError::Schema("null id in span file".into()));
        };
        let row = SpanRow {
            trace_id: TraceId(t),
            span_id: SpanId(s),
            parent_span_id: fixed_value::<8>(parent, i).map(SpanId),
            trace_state: trace_state.value(i).to_string(),
            name: name.value(i).to_string(),
            kind: SpanKind::of_name(kind.value(i)),
            start_time_unix_nano: start.value(i),
            end_time_unix_nano: end.value(i),
            duration_nano: duration.value(i),
            status_code: SpanStatus::of_name(status_code.value(i)),
            status_message: status_message.value(i).to_string(),
            attributes: {
                let mut attrs = parse_attributes(attributes.value(i));
                let key = correlation_key.and_then(|k| opt_str(k, i));
                restore_lifted(&mut attrs, key, opt_str_ref(correlation, i));
                attrs
            },
            events: serde_json::from_str(events.value(i))?,
            links: serde_json::from_str(links.value(i))?,
            resource: resources.get(i),
            scope_name: scope_name.value(i).to_string(),
            scope_version: scope_version.value(i).to_string(),
            correlation_id: opt_str(correlation, i),
        };
        if keep(&row) {
            out.push(row);
        }
    }
    Ok(())
}
