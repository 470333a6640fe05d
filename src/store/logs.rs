//! The Parquet schema of log files and the conversion between rows and Arrow batches.

use std::sync::Arc;

use arrow::array::{ArrayRef, Int32Array, UInt32Array};
use arrow::datatypes::{
    DataType, Field, Int32Type, Schema, SchemaRef, TimestampNanosecondType, UInt32Type,
};
use arrow::record_batch::RecordBatch;

use super::columns::*;
use super::StoreError;
use crate::model::{LogRow, SpanId, TraceId};

/// The log file schema, documented in ARCHITECTURE.md.
pub fn schema() -> SchemaRef {
    let mut fields = vec![
        Field::new("time", timestamp_type(), false),
        Field::new("observed_time", timestamp_type(), false),
        Field::new("severity_number", DataType::Int32, false),
        utf8("severity_text"),
        utf8("body"),
        Field::new("trace_id", DataType::FixedSizeBinary(16), true),
        Field::new("span_id", DataType::FixedSizeBinary(8), true),
        utf8_null("correlation_id"),
        // The attribute key the correlation id was lifted from (see `lifted_attributes`).
        utf8_null("correlation_key"),
        Field::new("flags", DataType::UInt32, false),
        utf8("event_name"),
        utf8("attributes"),
        utf8("scope_name"),
    ];
    fields.extend(resource_fields());
    Arc::new(Schema::new(fields))
}

/// Builds one batch from log records, in the order given.
pub fn to_batch(rows: &[&LogRow]) -> Result<RecordBatch, StoreError> {
    let lifted: Vec<(String, Option<String>)> = rows
        .iter()
        .map(|r| lifted_attributes(&r.attributes, r.correlation_id.as_deref()))
        .collect();
    let mut columns: Vec<ArrayRef> = vec![
        timestamps(rows.iter().map(|r| r.time_unix_nano)),
        timestamps(rows.iter().map(|r| r.observed_time_unix_nano)),
        Arc::new(Int32Array::from_iter_values(
            rows.iter().map(|r| r.severity_number),
        )),
        strings(rows.iter().map(|r| r.severity_text.as_str())),
        strings(rows.iter().map(|r| r.body.as_str())),
        fixed_binary(rows.iter().map(|r| r.trace_id.map(|t| t.0)))?,
        fixed_binary(rows.iter().map(|r| r.span_id.map(|s| s.0)))?,
        opt_strings(rows.iter().map(|r| r.correlation_id.as_deref())),
        opt_strings(lifted.iter().map(|(_, key)| key.as_deref())),
        Arc::new(UInt32Array::from_iter_values(rows.iter().map(|r| r.flags))),
        strings(rows.iter().map(|r| r.event_name.as_str())),
        strings(lifted.iter().map(|(text, _)| text.as_str())),
        strings(rows.iter().map(|r| r.scope_name.as_str())),
    ];
    columns.extend(resource_columns(rows.iter().map(|r| r.resource.as_ref())));
    Ok(RecordBatch::try_new(schema(), columns)?)
}

/// Reads log records back from a batch of a log file, keeping only rows that pass `keep`.
pub fn from_batch(
    batch: &RecordBatch,
    keep: &mut dyn FnMut(&LogRow) -> bool,
    out: &mut Vec<LogRow>,
) -> Result<(), StoreError> {
    let cols = Columns::new(batch);
    let time = cols.primitive::<TimestampNanosecondType>("time")?;
    let observed = cols.primitive::<TimestampNanosecondType>("observed_time")?;
    let severity_number = cols.primitive::<Int32Type>("severity_number")?;
    let severity_text = cols.str("severity_text")?;
    let body = cols.str("body")?;
    let trace_id = cols.fixed("trace_id")?;
    let span_id = cols.fixed("span_id")?;
    let correlation = cols.str("correlation_id")?;
    let correlation_key = cols.str_if_present("correlation_key");
    let flags = cols.primitive::<UInt32Type>("flags")?;
    let event_name = cols.str("event_name")?;
    let attributes = cols.str("attributes")?;
    let scope_name = cols.str("scope_name")?;
    let mut resources = ResourceReader::new(&cols)?;
    for i in 0..batch.num_rows() {
        let row = LogRow {
            time_unix_nano: time.value(i),
            observed_time_unix_nano: observed.value(i),
            severity_number: severity_number.value(i),
            severity_text: severity_text.value(i).to_string(),
            body: body.value(i).to_string(),
            attributes: {
                let mut attrs = parse_attributes(attributes.value(i));
                let key = correlation_key.and_then(|k| opt_str(k, i));
                restore_lifted(&mut attrs, key, opt_str_ref(correlation, i));
                attrs
            },
            trace_id: fixed_value::<16>(trace_id, i).map(TraceId),
            span_id: fixed_value::<8>(span_id, i).map(SpanId),
            flags: flags.value(i),
            event_name: event_name.value(i).to_string(),
            resource: resources.get(i),
            scope_name: scope_name.value(i).to_string(),
            correlation_id: opt_str(correlation, i),
        };
        if keep(&row) {
            out.push(row);
        }
    }
    Ok(())
}
