//! Arbitrary bytes as OTLP/JSON of each signal: normalisation and decoding, then the
//! protobuf re-encoding the HTTP receiver hands to the in-place decoders.
#![no_main]

use libfuzzer_sys::fuzz_target;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use sightline::ingest::decode::{decode_message, Encoding};
use sightline::ingest::{decode_logs, decode_metrics, decode_traces, CorrelationKeys};

fuzz_target!(|data: &[u8]| {
    let keys = CorrelationKeys::default();
    if let Ok(r) = decode_message::<ExportTraceServiceRequest>(data, Encoding::Json) {
        let _ = decode_traces(&r.encode_to_vec(), &keys);
    }
    if let Ok(r) = decode_message::<ExportLogsServiceRequest>(data, Encoding::Json) {
        let _ = decode_logs(&r.encode_to_vec(), &keys);
    }
    if let Ok(r) = decode_message::<ExportMetricsServiceRequest>(data, Encoding::Json) {
        let _ = decode_metrics(&r.encode_to_vec());
    }
});
