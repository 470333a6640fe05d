//! A worker's own copies of the prebuilt requests, restamped in place for each export and
//! encoded once: cloning a prebuilt 1 000-record prost tree for every export (and dropping
//! it) was half of the generator's CPU, which on a 2-core machine is taken from the server.
//! The bytes sent are the same as a clone restamped from the prebuilt request would give
//! ([`payload::restamp_traces`]).

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::bytes::Bytes;
use prost::Message;

use super::payload::{self, Stamp};
use super::{LoadProtocol, LoadSignal, LoadgenArgs, Payloads};

/// Each variant's copy (made on first use) and where its ids and times stand.
pub(super) struct OwnRequests {
    traces: Vec<Option<(ExportTraceServiceRequest, Stamp)>>,
    logs: Vec<Option<(ExportLogsServiceRequest, Stamp)>>,
    metrics: Vec<Option<(ExportMetricsServiceRequest, Stamp)>>,
}

impl OwnRequests {
    /// No copies yet, room for `variants` of each signal.
    pub(super) fn new(variants: usize) -> Self {
        Self {
            traces: (0..variants).map(|_| None).collect(),
            logs: (0..variants).map(|_| None).collect(),
            metrics: (0..variants).map(|_| None).collect(),
        }
    }

    /// Request `variant` of `signal` stamped `to`, encoded in `args.protocol`'s encoding,
    /// and its size as OTLP protobuf (what the report counts).
    pub(super) fn encoded(
        &mut self,
        p: &Payloads,
        signal: LoadSignal,
        variant: usize,
        to: Stamp,
        args: &LoadgenArgs,
    ) -> (Bytes, u64) {
        match signal {
            LoadSignal::Traces | LoadSignal::Mix => {
                let (request, at) = own(&mut self.traces, &p.traces, variant);
                payload::restamp_traces(request, *at, to);
                *at = to;
                encode(request, args.protocol)
            }
            LoadSignal::Logs => {
                let (request, at) = own(&mut self.logs, &p.logs, variant);
                payload::restamp_logs(request, *at, to);
                *at = to;
                if args.unique_bodies {
                    payload::unique_log_bodies(request, to.batch);
                }
                encode(request, args.protocol)
            }
            LoadSignal::Metrics => {
                let (request, at) = own(&mut self.metrics, &p.metrics, variant);
                payload::refresh_metric_times(request, to.shift_nano.wrapping_sub(at.shift_nano));
                *at = to;
                encode(request, args.protocol)
            }
        }
    }
}

/// The worker's copy of `prebuilt[variant]`, made on first use (stamped as prebuilt).
fn own<'o, T: Clone>(
    copies: &'o mut [Option<(T, Stamp)>],
    prebuilt: &[T],
    variant: usize,
) -> &'o mut (T, Stamp) {
    copies[variant].get_or_insert_with(|| (prebuilt[variant].clone(), Stamp::default()))
}

/// `request` in `protocol`'s encoding, and its protobuf size.
fn encode<T: Message + serde::Serialize>(request: &T, protocol: LoadProtocol) -> (Bytes, u64) {
    match protocol {
        LoadProtocol::HttpJson => (
            Bytes::from(serde_json::to_vec(request).unwrap_or_default()),
            request.encoded_len() as u64,
        ),
        _ => {
            let bytes = request.encode_to_vec();
            let len = bytes.len() as u64;
            (Bytes::from(bytes), len)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Restamped in place export after export, a worker's copy encodes to the bytes a clone
    /// of the prebuilt request stamped for that export gives.
    #[test]
    fn restamped_copies_encode_like_fresh_clones() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            args: LoadgenArgs,
        }
        let now = 1_796_032_800_000_000_000;
        let p = Payloads {
            traces: vec![payload::traces(1, 50, now)],
            logs: vec![payload::logs(1, 50, now)],
            metrics: vec![payload::metrics(1, 50, now)],
            built_at: now,
        };
        let args = Cli::parse_from(["loadgen"]).args;
        let mut own = OwnRequests::new(1);
        for (n, shift) in [
            (7u64, 1_000u64),
            (8, 5_000),
            (1_000_003, 4_000),
            (9, 9_000_000),
        ] {
            let to = Stamp {
                batch: n,
                shift_nano: shift,
            };
            let mut trace = p.traces[0].clone();
            payload::refresh_trace_ids(&mut trace, n, shift);
            let mut logs = p.logs[0].clone();
            payload::refresh_log_ids(&mut logs, n, shift);
            let mut metrics = p.metrics[0].clone();
            payload::refresh_metric_times(&mut metrics, shift);
            for (signal, fresh) in [
                (LoadSignal::Traces, trace.encode_to_vec()),
                (LoadSignal::Logs, logs.encode_to_vec()),
                (LoadSignal::Metrics, metrics.encode_to_vec()),
            ] {
                let (bytes, len) = own.encoded(&p, signal, 0, to, &args);
                assert_eq!(bytes.as_ref(), fresh.as_slice(), "{signal:?} batch {n}");
                assert_eq!(len, fresh.len() as u64);
            }
        }
    }
}
