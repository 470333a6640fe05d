//! Arbitrary bytes as OTLP/JSON of each signal (normalisation, decoding, conversion).
#![no_main]

use libfuzzer_sys::fuzz_target;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use sightline::ingest::decode::{decode_message, Encoding};
use sightline::ingest::{convert_logs, convert_metrics, convert_traces, CorrelationKeys};

fuzz_target!(|data: &[u8]| {
    let keys = CorrelationKeys::default();
    if let Ok(r) = decode_message::<ExportTraceServiceRequest>(data, Encoding::Json) {
        let _ = convert_traces(r, &keys);
    }
    if let Ok(r) = decode_message::<ExportLogsServiceRequest>(data, Encoding::Json) {
        let _ = convert_logs(r, &keys);
    }
    if let Ok(r) = decode_message::<ExportMetricsServiceRequest>(data, Encoding::Json) {
        let _ = convert_metrics(r);
    }
});
