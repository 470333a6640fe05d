//! The demo: a generated hour of a small e-commerce system with an incident
//! ([`scenario`]), stored as OTLP/JSON lines in `sample-data/` and loaded by
//! `sightline serve --demo` with its timestamps moved so the hour ends now.

pub mod live;
pub mod scenario;
mod shift;

use prost::Message;
use std::path::Path;

use anyhow::Context;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

use crate::ingest::decode::{decode_message, Encoding};
use crate::ingest::Receiver;

/// Seed of the committed sample data.
pub const DEFAULT_SEED: u64 = 42;

/// The alert rule the demo ships: payment's error rate over two minutes above 5 %. The
/// live demo's incident (the canary's timeouts) fires it and pulling the canary resolves it,
/// once per `--demo-incident-every` cycle. Two minutes, not one: payment handles a few
/// requests a minute, and a one-minute window can hold none of the canary's, so the alert
/// would flap inside the incident. No receivers: it shows in the API, Grafana's alert list
/// and the notification-free history.
pub const EXAMPLE_RULE: &str = r#"{
    "name": "payment error rate (demo)", "kind": "error_rate", "service": "payment",
    "threshold": 0.05, "window_secs": 120, "for_secs": 0, "labels": {"team": "payments"},
    "annotations": {"summary": "payment fails {{ $value }} of its requests"}
}"#;

/// The committed sample data, built into the binary so `--demo` works from any directory.
const TRACES: &str = include_str!("../../sample-data/traces.jsonl");
const LOGS: &str = include_str!("../../sample-data/logs.jsonl");
const METRICS: &str = include_str!("../../sample-data/metrics.jsonl");

/// Marker written into the data dir once the demo is loaded, so a restart with `--demo`
/// does not load it twice.
const MARKER: &str = "demo-loaded";

/// Writes the scenario of `seed` as `traces.jsonl`, `logs.jsonl`, `metrics.jsonl` (one OTLP
/// export request per line) into `dir`.
pub fn write_files(dir: &Path, seed: u64) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("could not create {}", dir.display()))?;
    let scenario = scenario::Generator::new(seed).generate();
    write_lines(&dir.join("traces.jsonl"), &scenario.traces)?;
    write_lines(&dir.join("logs.jsonl"), &scenario.logs)?;
    write_lines(&dir.join("metrics.jsonl"), &scenario.metrics)?;
    Ok(())
}

fn write_lines<T: serde::Serialize>(path: &Path, items: &[T]) -> anyhow::Result<()> {
    let mut text = String::new();
    for item in items {
        text.push_str(&serde_json::to_string(item)?);
        text.push('\n');
    }
    std::fs::write(path, text).with_context(|| format!("could not write {}", path.display()))
}

/// What loading the demo did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loaded {
    /// Loaded now, with timestamps moved by this many nanoseconds.
    Now { shift_nano: u64 },
    /// The data dir already had it, loaded with this shift (unknown for markers written
    /// before the shift was recorded).
    Already { shift_nano: Option<u64> },
}

impl Loaded {
    /// Real time (Unix ns) at which the recorded hour ends, where live traffic takes over.
    pub fn recorded_end(self, now_nano: u64) -> u64 {
        let end = scenario::SCENARIO_START + scenario::SCENARIO_MINUTES * 60_000_000_000;
        match self {
            Loaded::Now { shift_nano }
            | Loaded::Already {
                shift_nano: Some(shift_nano),
            } => end + shift_nano,
            Loaded::Already { shift_nano: None } => now_nano,
        }
    }
}

/// Loads the sample data through `receiver` (the same path as OTLP exports), moved in time so
/// that the scenario ends at `now_nano` and its incident lies within the last hour.
pub async fn load(receiver: &Receiver, data_dir: &Path, now_nano: u64) -> anyhow::Result<Loaded> {
    let marker = data_dir.join(MARKER);
    if marker.exists() {
        let recorded = std::fs::read_to_string(&marker).unwrap_or_default();
        return Ok(Loaded::Already {
            shift_nano: recorded.trim().parse().ok(),
        });
    }
    let end = scenario::SCENARIO_START + scenario::SCENARIO_MINUTES * 60_000_000_000;
    // Whole minutes, so the minute buckets of the scenario stay aligned.
    let shift_nano = now_nano.saturating_sub(end) / 60_000_000_000 * 60_000_000_000;
    for line in TRACES.lines().filter(|l| !l.is_empty()) {
        let mut request: ExportTraceServiceRequest =
            decode_message(line.as_bytes(), Encoding::Json)?;
        shift::traces(&mut request, shift_nano);
        receiver
            .traces(request.encode_to_vec(), crate::ingest::Sender::Internal)
            .await?;
    }
    for line in LOGS.lines().filter(|l| !l.is_empty()) {
        let mut request: ExportLogsServiceRequest =
            decode_message(line.as_bytes(), Encoding::Json)?;
        shift::logs(&mut request, shift_nano);
        receiver
            .logs(request.encode_to_vec(), crate::ingest::Sender::Internal)
            .await?;
    }
    for line in METRICS.lines().filter(|l| !l.is_empty()) {
        let mut request: ExportMetricsServiceRequest =
            decode_message(line.as_bytes(), Encoding::Json)?;
        shift::metrics(&mut request, shift_nano);
        receiver
            .metrics(request.encode_to_vec(), crate::ingest::Sender::Internal)
            .await?;
    }
    std::fs::write(&marker, shift_nano.to_string())
        .with_context(|| format!("could not write {}", marker.display()))?;
    Ok(Loaded::Now { shift_nano })
}
