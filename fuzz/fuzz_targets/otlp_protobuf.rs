//! Arbitrary bytes as an OTLP protobuf export of each signal, through the decoders that read
//! requests in place (as the receivers and WAL replay do).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sightline::ingest::{decode_logs, decode_metrics, decode_traces, CorrelationKeys};

fuzz_target!(|data: &[u8]| {
    let keys = CorrelationKeys::default();
    let _ = decode_traces(data, &keys);
    let _ = decode_logs(data, &keys);
    let _ = decode_metrics(data);
});
