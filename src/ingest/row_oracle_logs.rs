//! The row-based log conversion the columnar decoder replaced, kept as the test oracle:
//! OTLP → [`LogRow`]s → `LogRow::to_batch` must give exactly the batch
//! [`super::logs::decode_logs`] builds.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue};

use super::correlation::CorrelationKeys;
use super::rejects::Rejects;
use super::resource::{convert_resource, scope_name_version};
use super::traces::clamp_ns;
use crate::model::{any_to_json, from_key_values, severity_name, LogRow, SpanId, TraceId};
use crate::store::StoredRow;

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
                let trace_id = match TraceId::from_context_bytes(&record.trace_id) {
                    Ok(id) => id,
                    Err(message) => {
                        rejects.reject(|| format!("log record: invalid trace_id: {message}"));
                        continue;
                    }
                };
                let span_id = match SpanId::from_context_bytes(&record.span_id) {
                    Ok(id) => id,
                    Err(message) => {
                        rejects.reject(|| format!("log record: invalid span_id: {message}"));
                        continue;
                    }
                };
                let attributes = from_key_values(record.attributes);
                let correlation_id = keys.find_in_attributes(&attributes, &resource.attributes);
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

/// String bodies stay verbatim; any other body is kept as compact JSON text.
fn body_text(body: Option<AnyValue>) -> String {
    match body.and_then(|b| b.value) {
        Some(any_value::Value::StringValue(s)) => s,
        None => String::new(),
        other => any_to_json(Some(AnyValue { value: other })).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loadgen::payload;
    use opentelemetry_proto::tonic::common::v1::{ArrayValue, KeyValue};

    fn same_batch(request: ExportLogsServiceRequest, keys: &CorrelationKeys) {
        let decoded =
            super::super::logs::decode_logs(&prost::Message::encode_to_vec(&request), keys)
                .unwrap();
        let (rows, rejects) = convert_logs(request, keys);
        let refs: Vec<&LogRow> = rows.iter().collect();
        assert_eq!(decoded.batch, LogRow::to_batch(&refs).unwrap());
        assert_eq!(decoded.rejects, rejects);
        super::super::row_oracle_traces::tests::same_block_terms(
            crate::model::Signal::Logs,
            &decoded,
        );
    }

    #[test]
    fn columns_equal_the_row_conversion_on_loadgen_payloads() {
        let keys = CorrelationKeys::default();
        for seed in 0..4 {
            same_batch(payload::logs(seed, 300, 1_795_428_900_000_000_000), &keys);
        }
    }

    #[test]
    fn columns_equal_the_row_conversion_on_odd_records() {
        let keys = CorrelationKeys::default();
        let mut request = payload::logs(9, 20, 1_795_428_900_000_000_000);
        let records = &mut request.resource_logs[0].scope_logs[0].log_records;
        records[0].body = Some(AnyValue {
            value: Some(any_value::Value::ArrayValue(ArrayValue {
                values: vec![AnyValue {
                    value: Some(any_value::Value::DoubleValue(f64::INFINITY)),
                }],
            })),
        });
        records[1].body = None;
        records[2].trace_id = vec![0; 16];
        records[2].span_id = vec![0; 8];
        records[3].trace_id = vec![5; 15];
        records[4].span_id = vec![5; 9];
        records[5].time_unix_nano = 0;
        records[6].severity_text = String::new();
        records[6].severity_number = 23;
        records[8].attributes = crate::ingest::view::tests::every_kind();
        records[7].attributes.push(KeyValue {
            key: "correlation_id".into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::IntValue(77)),
            }),
            ..Default::default()
        });
        same_batch(request, &keys);
        same_batch(
            payload::logs(3, 50, 1_795_428_900_000_000_000),
            &CorrelationKeys::new(Vec::new()),
        );
    }
}
