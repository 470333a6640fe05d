//! OTLP logs export request → [`LogRow`]s.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue};

use super::correlation::CorrelationKeys;
use super::rejects::Rejects;
use super::resource::{convert_resource, scope_name_version};
use super::traces::clamp_ns;
use crate::model::{any_to_json, from_key_values, severity_name, LogRow, SpanId, TraceId};

/// Converts every log record; one with an invalid trace or span id (a wrong length; OTLP
/// allows both to be absent) is dropped on its own and counted in [`Rejects`].
pub fn convert_logs(
    request: ExportLogsServiceRequest,
    keys: &CorrelationKeys,
) -> (Vec<LogRow>, Rejects) {
    let mut rows = Vec::new();
    let mut rejects = Rejects::default();
    for resource_logs in request.resource_logs {
        let resource = convert_resource(resource_logs.resource);
        for scope_logs in resource_logs.scope_logs {
            let (scope_name, _) = scope_name_version(scope_logs.scope);
            for record in scope_logs.log_records {
                let trace_id = match optional_trace_id(&record.trace_id) {
                    Ok(id) => id,
                    Err(message) => {
                        rejects.reject(|| format!("log record: invalid trace_id: {message}"));
                        continue;
                    }
                };
                let span_id = match optional_span_id(&record.span_id) {
                    Ok(id) => id,
                    Err(message) => {
                        rejects.reject(|| format!("log record: invalid span_id: {message}"));
                        continue;
                    }
                };
                let attributes = from_key_values(record.attributes);
                let correlation_id = keys.find(&attributes, &resource.attributes);
                let observed = clamp_ns(record.observed_time_unix_nano);
                let time = match clamp_ns(record.time_unix_nano) {
                    0 => observed,
                    t => t,
                };
                let severity_text = if record.severity_text.is_empty() {
                    severity_name(record.severity_number).to_string()
                } else {
                    record.severity_text
                };
                rows.push(LogRow {
                    time_unix_nano: time,
                    observed_time_unix_nano: observed,
                    severity_number: record.severity_number,
                    severity_text,
                    body: body_text(record.body),
                    attributes,
                    trace_id,
                    span_id,
                    flags: record.flags,
                    event_name: record.event_name,
                    resource: resource.clone(),
                    scope_name: scope_name.clone(),
                    correlation_id,
                });
            }
        }
    }
    (rows, rejects)
}

/// An all-zero id is how some SDKs say "no trace context": treat it as absent, not invalid.
fn optional_trace_id(bytes: &[u8]) -> Result<Option<TraceId>, String> {
    if bytes.iter().all(|b| *b == 0) && (bytes.is_empty() || bytes.len() == TraceId::LEN) {
        return Ok(None);
    }
    TraceId::from_bytes(bytes)
        .map(Some)
        .map_err(|e| e.to_string())
}

fn optional_span_id(bytes: &[u8]) -> Result<Option<SpanId>, String> {
    if bytes.iter().all(|b| *b == 0) && (bytes.is_empty() || bytes.len() == SpanId::LEN) {
        return Ok(None);
    }
    SpanId::from_bytes(bytes)
        .map(Some)
        .map_err(|e| e.to_string())
}

/// String bodies stay verbatim; any other body is kept as compact JSON text.
fn body_text(body: Option<AnyValue>) -> String {
    match body.and_then(|b| b.value) {
        Some(any_value::Value::StringValue(s)) => s,
        None => String::new(),
        other => any_to_json(Some(AnyValue { value: other })).to_string(),
    }
}
