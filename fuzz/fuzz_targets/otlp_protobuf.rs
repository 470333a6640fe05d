//! Arbitrary bytes as an OTLP protobuf export of each signal, through our conversion.
#![no_main]

use libfuzzer_sys::fuzz_target;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use sightline::ingest::{convert_logs, convert_metrics, convert_traces, CorrelationKeys};

fuzz_target!(|data: &[u8]| {
    let keys = CorrelationKeys::default();
    if let Ok(r) = ExportTraceServiceRequest::decode(data) {
        let _ = convert_traces(r, &keys);
    }
    if let Ok(r) = ExportLogsServiceRequest::decode(data) {
        let _ = convert_logs(r, &keys);
    }
    if let Ok(r) = ExportMetricsServiceRequest::decode(data) {
        let _ = convert_metrics(r);
    }
});
