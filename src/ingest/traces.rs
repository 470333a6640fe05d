//! OTLP trace export request → [`SpanRow`]s.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::{span::SpanKind, status::StatusCode};

use super::correlation::CorrelationKeys;
use super::rejects::Rejects;
use super::resource::{convert_resource, scope_name_version};
use crate::model::{from_key_values, SpanEvent, SpanId, SpanLink, SpanRow, TraceId};

/// Converts every span; a span with an invalid trace, span or parent id is dropped on its own
/// and counted in the returned [`Rejects`], the others are kept.
pub fn convert_traces(
    request: ExportTraceServiceRequest,
    keys: &CorrelationKeys,
) -> (Vec<SpanRow>, Rejects) {
    let mut rows = Vec::new();
    let mut rejects = Rejects::default();
    for resource_spans in request.resource_spans {
        let resource = convert_resource(resource_spans.resource);
        for scope_spans in resource_spans.scope_spans {
            let (scope_name, scope_version) = scope_name_version(scope_spans.scope);
            for span in scope_spans.spans {
                let ids = TraceId::from_bytes(&span.trace_id)
                    .map_err(|e| format!("span {:?}: invalid trace_id: {e}", span.name))
                    .and_then(|t| {
                        SpanId::from_bytes(&span.span_id)
                            .map(|s| (t, s))
                            .map_err(|e| format!("span {:?}: invalid span_id: {e}", span.name))
                    })
                    .and_then(|(t, s)| {
                        SpanId::from_optional_bytes(&span.parent_span_id)
                            .map(|p| (t, s, p))
                            .map_err(|e| {
                                format!("span {:?}: invalid parent_span_id: {e}", span.name)
                            })
                    });
                let (trace_id, span_id, parent_span_id) = match ids {
                    Ok(ids) => ids,
                    Err(message) => {
                        rejects.reject(|| message);
                        continue;
                    }
                };
                let attributes = from_key_values(span.attributes);
                let correlation_id = keys.find(&attributes, &resource.attributes);
                let start = clamp_ns(span.start_time_unix_nano);
                let end = clamp_ns(span.end_time_unix_nano).max(start);
                let status = span.status.unwrap_or_default();
                rows.push(SpanRow {
                    trace_id,
                    span_id,
                    parent_span_id,
                    trace_state: span.trace_state,
                    name: span.name,
                    kind: span_kind_name(span.kind).to_string(),
                    start_time_unix_nano: start,
                    end_time_unix_nano: end,
                    duration_nano: end - start,
                    status_code: status_code_name(status.code).to_string(),
                    status_message: status.message,
                    attributes,
                    events: span
                        .events
                        .into_iter()
                        .map(|e| SpanEvent {
                            time_unix_nano: clamp_ns(e.time_unix_nano),
                            name: e.name,
                            attributes: from_key_values(e.attributes),
                        })
                        .collect(),
                    links: span
                        .links
                        .into_iter()
                        .filter_map(|l| {
                            // A link with a bad id points nowhere; drop the link, keep the span.
                            Some(SpanLink {
                                trace_id: TraceId::from_bytes(&l.trace_id).ok()?,
                                span_id: SpanId::from_bytes(&l.span_id).ok()?,
                                trace_state: l.trace_state,
                                attributes: from_key_values(l.attributes),
                            })
                        })
                        .collect(),
                    resource: resource.clone(),
                    scope_name: scope_name.clone(),
                    scope_version: scope_version.clone(),
                    correlation_id,
                });
            }
        }
    }
    (rows, rejects)
}

/// Unix nanoseconds as `i64` (Parquet's timestamp type); values past year 2262 saturate.
pub fn clamp_ns(ns: u64) -> i64 {
    i64::try_from(ns).unwrap_or(i64::MAX)
}

/// `SPAN_KIND_SERVER` → `SERVER`; unknown numbers → `UNSPECIFIED`.
fn span_kind_name(kind: i32) -> &'static str {
    let name = SpanKind::try_from(kind)
        .unwrap_or(SpanKind::Unspecified)
        .as_str_name();
    name.strip_prefix("SPAN_KIND_").unwrap_or(name)
}

/// `STATUS_CODE_ERROR` → `ERROR`; unknown numbers → `UNSET`.
fn status_code_name(code: i32) -> &'static str {
    let name = StatusCode::try_from(code)
        .unwrap_or(StatusCode::Unset)
        .as_str_name();
    name.strip_prefix("STATUS_CODE_").unwrap_or(name)
}
