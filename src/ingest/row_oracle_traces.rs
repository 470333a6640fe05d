//! The row-based trace conversion the columnar decoder replaced, kept as the test oracle:
//! OTLP → [`SpanRow`]s → `SpanRow::to_batch` must give exactly the batch
//! [`super::traces::decode_traces`] builds.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

use super::correlation::CorrelationKeys;
use super::rejects::Rejects;
use super::resource::{convert_resource, scope_name_version};
use super::traces::clamp_ns;
use crate::model::{from_key_values, SpanEvent, SpanId, SpanLink, SpanRow, TraceId};
use crate::store::StoredRow;

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
                let correlation_id = keys.find_in_attributes(&attributes, &resource.attributes);
                let start = clamp_ns(span.start_time_unix_nano);
                let end = clamp_ns(span.end_time_unix_nano).max(start);
                let status = span.status.unwrap_or_default();
                rows.push(SpanRow {
                    trace_id,
                    span_id,
                    parent_span_id,
                    trace_state: span.trace_state,
                    name: span.name,
                    kind: crate::model::SpanKind::of_otlp(span.kind),
                    start_time_unix_nano: start,
                    end_time_unix_nano: end,
                    duration_nano: end - start,
                    status_code: crate::model::SpanStatus::of_otlp(status.code),
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

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::loadgen::payload;
    use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
    use opentelemetry_proto::tonic::trace::v1::span::Link;

    fn same_batch(request: ExportTraceServiceRequest, keys: &CorrelationKeys) {
        let decoded =
            super::super::traces::decode_traces(&prost::Message::encode_to_vec(&request), keys)
                .unwrap();
        let (rows, rejects) = convert_traces(request, keys);
        let refs: Vec<&SpanRow> = rows.iter().collect();
        assert_eq!(decoded.batch, SpanRow::to_batch(&refs).unwrap());
        assert_eq!(decoded.rejects, rejects);
        same_block_terms(crate::model::Signal::Traces, &decoded);
    }

    /// The attribute terms of a block built from the values the decoder noted are those of
    /// the block built from the batch's attribute JSON (what compaction and reindexing read).
    pub(in crate::ingest) fn same_block_terms(
        signal: crate::model::Signal,
        decoded: &super::super::Decoded,
    ) {
        use crate::index::{block, Fields};
        use tantivy::schema::Value;
        let (_, fields) = Fields::schema();
        let batches = std::slice::from_ref(&decoded.batch);
        let noted = decoded.attribute_values.as_ref().expect("values noted");
        let from_json = block::block_of_batches(&fields, signal, "f", 0, batches).unwrap();
        let from_values =
            block::block_of_decoded(&fields, signal, "f", 0, batches, &[noted]).unwrap();
        for field in [fields.attr, fields.attr_overflow] {
            let terms = |doc: &tantivy::TantivyDocument| {
                let mut t: Vec<String> = doc
                    .get_all(field)
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect();
                t.sort();
                t
            };
            assert_eq!(terms(&from_values), terms(&from_json));
        }
    }

    fn kv(key: &str, value: &str) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(value.into())),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn columns_equal_the_row_conversion_on_loadgen_payloads() {
        let keys = CorrelationKeys::default();
        for seed in 0..4 {
            same_batch(payload::traces(seed, 300, 1_795_428_900_000_000_000), &keys);
        }
    }

    #[test]
    fn columns_equal_the_row_conversion_on_odd_spans() {
        let keys = CorrelationKeys::default();
        let mut request = payload::traces(9, 20, 1_795_428_900_000_000_000);
        let spans = &mut request.resource_spans[0].scope_spans[0].spans;
        // Unsorted, duplicated keys; the correlation id under a later duplicate.
        spans[0].attributes = vec![
            kv("z", "1"),
            kv("request_id", "old"),
            kv("a", "2"),
            kv("request_id", "r-42"),
            kv("copy", "r-42"),
        ];
        spans[1].trace_id = vec![1, 2, 3];
        spans[2].parent_span_id = vec![0; 8];
        spans[3].links = vec![
            Link {
                trace_id: vec![7; 16],
                span_id: vec![8; 8],
                trace_state: "k=v".into(),
                attributes: vec![kv("b", "x"), kv("a", "y")],
                ..Default::default()
            },
            Link {
                trace_id: vec![7; 3],
                ..Default::default()
            },
        ];
        spans[4].end_time_unix_nano = 1;
        spans[5].start_time_unix_nano = u64::MAX;
        spans[6].kind = 99;
        spans[7].attributes = crate::ingest::view::tests::every_kind();
        spans[6].status = Some(opentelemetry_proto::tonic::trace::v1::Status {
            code: 7,
            message: "odd \"quoted\"".into(),
        });
        same_batch(request, &keys);
        // The correlation key list can be empty or custom.
        same_batch(
            payload::traces(3, 50, 1_795_428_900_000_000_000),
            &CorrelationKeys::new(vec!["http.route".into()]),
        );
    }
}
