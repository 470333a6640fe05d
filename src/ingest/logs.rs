//! OTLP logs export request → one Arrow batch in the log files' schema, and what the rollups
//! need of it — in one pass over the request's bytes, read in place ([`super::view::logs`]),
//! with no owned messages or maps.

use std::borrow::Cow;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, FixedSizeBinaryBuilder, Int32Builder, StringBuilder, TimestampNanosecondBuilder,
    UInt32Builder,
};
use arrow::record_batch::RecordBatch;

use super::attribute_text::{text_of, AnyJson};
use super::correlation::CorrelationKeys;
use super::record_columns::{text_builder, RecordColumns, ResourceText};
use super::record_columns::{DecodeError, Decoded};
use super::rejects::Rejects;
use super::resource::resource_of;
use super::traces::clamp_ns;
use super::view::logs::{request, LogRecord};
use super::view::{attributes, AnyValue};
use crate::model::{severity_name, Severity, SpanId, TraceId};
use crate::rollup::error_group::signature;
use crate::rollup::DeltaBuilder;
use crate::store::StoreError;

/// Severity numbers from here up are ERROR or FATAL: counted and grouped as errors.
const ERROR_SEVERITY: i32 = Severity::Error.floor();

/// Decodes every log record; one with an invalid trace or span id (a wrong length; OTLP
/// allows both to be absent) is dropped on its own and counted in [`Decoded::rejects`].
/// `bytes` is an `ExportLogsServiceRequest` in protobuf; bytes that are not one fail the
/// whole request with [`DecodeError::Wire`].
pub fn decode_logs(bytes: &[u8], keys: &CorrelationKeys) -> Result<Decoded, DecodeError> {
    let resources = request(bytes)?;
    let rows = resources
        .iter()
        .flat_map(|r| &r.scopes)
        .map(|s| s.records.len())
        .sum();
    let mut columns = LogColumns::with_capacity(rows);
    let mut rollups = DeltaBuilder::default();
    let mut rejects = Rejects::default();
    let mut record = LogRecord::default();
    for resource_logs in &resources {
        let resource = ResourceText::new(resource_of(attributes(&resource_logs.resource)));
        let seen = rollups.resource(resource.resource.clone());
        for scope_logs in &resource_logs.scopes {
            let scope_name = scope_logs.scope.name;
            for bytes in &scope_logs.records {
                record.read(bytes)?;
                let record = &record;
                let ids = TraceId::from_context_bytes(record.trace_id)
                    .map_err(|e| format!("log record: invalid trace_id: {e}"))
                    .and_then(|t| {
                        SpanId::from_context_bytes(record.span_id)
                            .map(|s| (t, s))
                            .map_err(|e| format!("log record: invalid span_id: {e}"))
                    });
                let (trace_id, span_id) = match ids {
                    Ok(ids) => ids,
                    Err(message) => {
                        rejects.reject(|| message);
                        continue;
                    }
                };
                let time = record_time(record);
                let body = body_text(record.body.as_ref());
                columns.append(
                    record,
                    time,
                    &body,
                    (trace_id, span_id),
                    &resource,
                    scope_name,
                    keys,
                );
                rollups.seen(seen, time);
                if record.severity_number >= ERROR_SEVERITY {
                    rollups.error_log(seen, time);
                    let attrs = &record.attributes;
                    let types = [
                        text_of(attrs, "exception.type"),
                        text_of(attrs, "error.type"),
                    ];
                    let stack = text_of(attrs, "exception.stacktrace").unwrap_or_default();
                    let sig = signature(types, "log", &body, &stack);
                    let example = trace_id.map(|t| (t, span_id));
                    rollups.error_group(seen, sig, time, example);
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

/// The record's own time, or its observed time when the sender left the event time unset.
fn record_time(record: &LogRecord<'_>) -> i64 {
    match clamp_ns(record.time_unix_nano) {
        0 => clamp_ns(record.observed_time_unix_nano),
        t => t,
    }
}

/// String bodies stay verbatim; any other body is kept as compact JSON text.
fn body_text<'a>(body: Option<&AnyValue<'a>>) -> Cow<'a, str> {
    match body {
        Some(AnyValue::Str(s)) => Cow::Borrowed(s),
        None | Some(AnyValue::Empty) => Cow::Borrowed(""),
        Some(other) => Cow::Owned(serde_json::to_string(&AnyJson(other)).unwrap_or_default()),
    }
}

/// Builders of the log files' columns.
struct LogColumns<'r> {
    time: TimestampNanosecondBuilder,
    observed_time: TimestampNanosecondBuilder,
    severity_number: Int32Builder,
    severity_text: StringBuilder,
    body: StringBuilder,
    trace_id: FixedSizeBinaryBuilder,
    span_id: FixedSizeBinaryBuilder,
    flags: UInt32Builder,
    event_name: StringBuilder,
    record: RecordColumns<'r>,
    scope_name: StringBuilder,
}

impl<'r> LogColumns<'r> {
    fn with_capacity(rows: usize) -> Self {
        Self {
            time: TimestampNanosecondBuilder::with_capacity(rows),
            observed_time: TimestampNanosecondBuilder::with_capacity(rows),
            severity_number: Int32Builder::with_capacity(rows),
            severity_text: text_builder(rows, 5),
            body: text_builder(rows, 96),
            trace_id: FixedSizeBinaryBuilder::with_capacity(rows, TraceId::LEN as i32),
            span_id: FixedSizeBinaryBuilder::with_capacity(rows, SpanId::LEN as i32),
            flags: UInt32Builder::with_capacity(rows),
            event_name: text_builder(rows, 0),
            record: RecordColumns::with_capacity(rows),
            scope_name: text_builder(rows, 16),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn append(
        &mut self,
        record: &LogRecord<'r>,
        time: i64,
        body: &str,
        (trace_id, span_id): (Option<TraceId>, Option<SpanId>),
        resource: &ResourceText,
        scope_name: &str,
        keys: &CorrelationKeys,
    ) {
        self.time.append_value(time);
        self.observed_time
            .append_value(clamp_ns(record.observed_time_unix_nano));
        self.severity_number.append_value(record.severity_number);
        self.severity_text
            .append_value(if record.severity_text.is_empty() {
                severity_name(record.severity_number)
            } else {
                record.severity_text
            });
        self.body.append_value(body);
        // The lengths were checked by the id parsers; these appends cannot fail.
        match trace_id {
            Some(t) => {
                let _ = self.trace_id.append_value(t.0);
            }
            None => self.trace_id.append_null(),
        }
        match span_id {
            Some(s) => {
                let _ = self.span_id.append_value(s.0);
            }
            None => self.span_id.append_null(),
        }
        self.flags.append_value(record.flags);
        self.event_name.append_value(record.event_name);
        self.record.append(&record.attributes, resource, keys);
        self.scope_name.append_value(scope_name);
    }

    /// The batch, columns in [`crate::store::logs::schema`] order.
    fn finish(mut self) -> Result<RecordBatch, StoreError> {
        let [correlation_id, correlation_key, attributes] = self.record.finish_record();
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(self.time.finish().with_timezone("UTC")),
            Arc::new(self.observed_time.finish().with_timezone("UTC")),
            Arc::new(self.severity_number.finish()),
            Arc::new(self.severity_text.finish()),
            Arc::new(self.body.finish()),
            Arc::new(self.trace_id.finish()),
            Arc::new(self.span_id.finish()),
            correlation_id,
            correlation_key,
            Arc::new(self.flags.finish()),
            Arc::new(self.event_name.finish()),
            attributes,
            Arc::new(self.scope_name.finish()),
        ];
        columns.extend(self.record.finish_resource());
        Ok(RecordBatch::try_new(crate::store::logs::schema(), columns)?)
    }
}
