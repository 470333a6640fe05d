//! Request bodies → OTLP request messages: content types, gzip, protobuf and OTLP/JSON.

use std::io::Read;

use opentelemetry_proto::tonic::logs::v1::SeverityNumber;
use opentelemetry_proto::tonic::metrics::v1::AggregationTemporality;
use opentelemetry_proto::tonic::trace::v1::{span::SpanKind, status::StatusCode};
use serde_json::Value;

use super::IngestError;

/// The two OTLP/HTTP body encodings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Protobuf,
    Json,
}

impl Encoding {
    /// From a `Content-Type` header; parameters such as `charset` are ignored.
    pub fn from_content_type(value: Option<&str>) -> Result<Encoding, IngestError> {
        let media = value
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match media.as_str() {
            "application/x-protobuf" | "application/protobuf" => Ok(Encoding::Protobuf),
            "application/json" => Ok(Encoding::Json),
            other => Err(IngestError::UnsupportedMediaType(format!(
                "unsupported content type {other:?}: use application/x-protobuf or application/json"
            ))),
        }
    }

    /// The `Content-Type` of a response in this encoding.
    pub fn content_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => "application/x-protobuf",
            Encoding::Json => "application/json",
        }
    }
}

/// Inflates a gzip body, refusing to produce more than `limit` bytes (a small compressed body
/// can expand enormously).
pub fn gunzip(body: &[u8], limit: usize) -> Result<Vec<u8>, IngestError> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(body)
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| IngestError::BadRequest(format!("invalid gzip body: {e}")))?;
    if out.len() > limit {
        return Err(IngestError::TooLarge(format!(
            "decompressed body exceeds the limit of {limit} bytes"
        )));
    }
    Ok(out)
}

/// Decodes a request message from a body in the given encoding.
pub fn decode_message<T>(body: &[u8], encoding: Encoding) -> Result<T, IngestError>
where
    T: prost::Message + Default + serde::de::DeserializeOwned,
{
    match encoding {
        Encoding::Protobuf => T::decode(body)
            .map_err(|e| IngestError::BadRequest(format!("invalid OTLP protobuf: {e}"))),
        Encoding::Json => {
            let mut value: Value = serde_json::from_slice(body)
                .map_err(|e| IngestError::BadRequest(format!("invalid JSON: {e}")))?;
            normalize_json(&mut value);
            serde_json::from_value(value)
                .map_err(|e| IngestError::BadRequest(format!("invalid OTLP/JSON: {e}")))
        }
    }
}

/// Rewrites the OTLP/JSON variants receivers must accept into the form the generated serde
/// code reads: snake_case keys become lowerCamelCase, and enum names become their numbers.
fn normalize_json(value: &mut Value) {
    match value {
        Value::Object(map) => {
            let entries = std::mem::take(map);
            for (key, mut v) in entries {
                let key = if key.contains('_') {
                    camel_case(&key)
                } else {
                    key
                };
                normalize_json(&mut v);
                if let Value::String(name) = &v {
                    if let Some(number) = enum_number(&key, name) {
                        v = Value::from(number);
                    }
                }
                map.insert(key, v);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(normalize_json),
        _ => {}
    }
}

fn camel_case(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    let mut upper = false;
    for c in key.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// The number of an enum value given by name in one of OTLP's enum-typed fields.
fn enum_number(key: &str, name: &str) -> Option<i32> {
    match key {
        "kind" => SpanKind::from_str_name(name).map(|v| v as i32),
        "code" => StatusCode::from_str_name(name).map(|v| v as i32),
        "severityNumber" => SeverityNumber::from_str_name(name).map(|v| v as i32),
        "aggregationTemporality" => AggregationTemporality::from_str_name(name).map(|v| v as i32),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

    #[test]
    fn accepts_snake_case_and_enum_names() {
        let body = br#"{"resource_spans":[{"scope_spans":[{"spans":[{
            "trace_id":"0102030405060708090a0b0c0d0e0f10","span_id":"0102030405060708",
            "name":"GET /","kind":"SPAN_KIND_SERVER","start_time_unix_nano":"1000",
            "end_time_unix_nano":2000,"status":{"code":"STATUS_CODE_ERROR"}}]}]}]}"#;
        let req: ExportTraceServiceRequest = decode_message(body, Encoding::Json).unwrap();
        let span = &req.resource_spans[0].scope_spans[0].spans[0];
        assert_eq!(span.kind, SpanKind::Server as i32);
        assert_eq!(span.start_time_unix_nano, 1000);
        assert_eq!(span.end_time_unix_nano, 2000);
        assert_eq!(span.status.as_ref().unwrap().code, StatusCode::Error as i32);
        assert_eq!(span.trace_id.len(), 16);
    }

    #[test]
    fn content_types() {
        assert_eq!(
            Encoding::from_content_type(Some("application/json; charset=utf-8")).unwrap(),
            Encoding::Json
        );
        assert!(matches!(
            Encoding::from_content_type(Some("text/plain")),
            Err(IngestError::UnsupportedMediaType(_))
        ));
    }
}
