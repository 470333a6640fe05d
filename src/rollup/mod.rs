//! Per-minute aggregates derived from spans and logs at ingest, so the overview, the service
//! map and the error pages never scan raw spans: RED per service/operation/instance/version,
//! calls per edge, error log counts, and error groups.
//!
//! Rollups accumulate in memory beside the memtable, are frozen with it, and are written by
//! the flusher as Parquet rows of their own (`rollups/…`) in the same index commit. A WAL
//! replay recomputes them from the replayed rows, so they are exactly as durable as the data.

pub mod edges;
pub mod error_group;
pub mod latency;
pub mod metric_minutes;

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

pub use edges::{EdgeCall, EdgeKind, EdgeMatcher};
pub use error_group::ErrorSignature;
pub use latency::LatencyHistogram;

use crate::model::{LogRow, Resource, SpanRow};

/// Nanoseconds per rollup bucket.
pub const MINUTE: i64 = 60_000_000_000;

/// What a rollup row counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RollupKind {
    /// Requests handled (SERVER and CONSUMER spans): `service`, `operation`, `instance`,
    /// `version`, `detail` = span kind.
    Red,
    /// Calls from `service` to `operation` (the callee), `detail` = edge kind.
    Edge,
    /// ERROR/FATAL log records of `service`/`instance`/`version`.
    LogErrors,
    /// Occurrences of error group `operation` (its key) in `service`/`instance`; `detail`
    /// holds the signature and an example trace as JSON.
    ErrorGroup,
}

impl RollupKind {
    /// Stable name stored in Parquet.
    pub fn as_str(self) -> &'static str {
        match self {
            RollupKind::Red => "red",
            RollupKind::Edge => "edge",
            RollupKind::LogErrors => "log_errors",
            RollupKind::ErrorGroup => "error_group",
        }
    }

    /// Inverse of [`RollupKind::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        [
            RollupKind::Red,
            RollupKind::Edge,
            RollupKind::LogErrors,
            RollupKind::ErrorGroup,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// One aggregate for one minute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RollupRow {
    pub kind: RollupKind,
    /// Start of the minute (Unix ns).
    pub minute: i64,
    pub service: String,
    pub operation: String,
    pub instance: String,
    pub version: String,
    pub detail: String,
    pub count: u64,
    pub errors: u64,
    pub latency: LatencyHistogram,
}

/// The key of a rollup cell.
type Key = (RollupKind, i64, String, String, String, String, String);

/// Example and signature of an error group, kept in `detail`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorGroupDetail {
    #[serde(flatten)]
    pub signature: ErrorSignature,
    pub example_trace_id: Option<String>,
    pub example_span_id: Option<String>,
}

/// The dimensions of a rollup cell besides its kind and minute.
#[derive(Clone, Copy)]
struct Dims<'a> {
    service: &'a str,
    operation: &'a str,
    instance: &'a str,
    version: &'a str,
    detail: &'a str,
}

/// Rollups being accumulated for the active memtable, plus the edge matcher.
#[derive(Default)]
pub struct Rollups {
    cells: HashMap<Key, RollupRow>,
    matcher: EdgeMatcher,
}

impl std::fmt::Debug for Rollups {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Rollups({} cells)", self.cells.len())
    }
}

fn minute_of(t: i64) -> i64 {
    t.div_euclid(MINUTE) * MINUTE
}

impl Rollups {
    fn cell(&mut self, kind: RollupKind, time: i64, d: Dims<'_>) -> &mut RollupRow {
        let minute = minute_of(time);
        // Error groups keep their first example in `detail`; it is not part of the key.
        let detail_key = if kind == RollupKind::ErrorGroup {
            ""
        } else {
            d.detail
        };
        let key = (
            kind,
            minute,
            d.service.to_string(),
            d.operation.to_string(),
            d.instance.to_string(),
            d.version.to_string(),
            detail_key.to_string(),
        );
        self.cells.entry(key).or_insert_with(|| RollupRow {
            kind,
            minute,
            service: d.service.to_string(),
            operation: d.operation.to_string(),
            instance: d.instance.to_string(),
            version: d.version.to_string(),
            detail: d.detail.to_string(),
            count: 0,
            errors: 0,
            latency: LatencyHistogram::default(),
        })
    }

    /// Accounts for newly acknowledged spans.
    pub fn observe_spans(&mut self, spans: &[SpanRow]) {
        let mut calls = Vec::new();
        let now = std::time::Instant::now();
        for s in spans {
            let r = &s.resource;
            if s.kind == "SERVER" || s.kind == "CONSUMER" {
                let dims = Dims {
                    service: &r.service_name,
                    operation: &s.name,
                    instance: &r.service_instance_id,
                    version: &r.service_version,
                    detail: &s.kind,
                };
                let cell = self.cell(RollupKind::Red, s.start_time_unix_nano, dims);
                cell.count += 1;
                cell.errors += u64::from(s.is_error());
                cell.latency.add(s.duration_nano);
            }
            if let Some(sig) = error_group::of_span(s) {
                let example = (s.trace_id.to_hex(), Some(s.span_id.to_hex()));
                self.error_group(sig, s.start_time_unix_nano, r, Some(example));
            }
            self.matcher.observe(s, now, &mut calls);
        }
        self.matcher.expire(&mut calls, false);
        self.add_calls(calls);
    }

    /// Accounts for newly acknowledged log records.
    pub fn observe_logs(&mut self, logs: &[LogRow]) {
        for l in logs.iter().filter(|l| l.severity_number >= 17) {
            let r = &l.resource;
            let dims = Dims {
                service: &r.service_name,
                operation: "",
                instance: &r.service_instance_id,
                version: &r.service_version,
                detail: "",
            };
            self.cell(RollupKind::LogErrors, l.time_unix_nano, dims)
                .count += 1;
            if let Some(sig) = error_group::of_log(l) {
                let example = l
                    .trace_id
                    .map(|t| (t.to_hex(), l.span_id.map(|s| s.to_hex())));
                self.error_group(sig, l.time_unix_nano, r, example);
            }
        }
    }

    fn error_group(
        &mut self,
        sig: ErrorSignature,
        time: i64,
        resource: &Resource,
        example: Option<(String, Option<String>)>,
    ) {
        let key = sig.key();
        let (example_trace_id, example_span_id) = match example {
            Some((t, s)) => (Some(t), s),
            None => (None, None),
        };
        let detail = serde_json::to_string(&ErrorGroupDetail {
            signature: sig,
            example_trace_id,
            example_span_id,
        })
        .unwrap_or_default();
        let dims = Dims {
            service: &resource.service_name,
            operation: &key,
            instance: &resource.service_instance_id,
            version: &resource.service_version,
            detail: &detail,
        };
        let cell = self.cell(RollupKind::ErrorGroup, time, dims);
        cell.count += 1;
        cell.errors += 1;
    }

    fn add_calls(&mut self, calls: Vec<EdgeCall>) {
        for c in calls {
            let dims = Dims {
                service: &c.caller,
                operation: &c.callee,
                instance: "",
                version: "",
                detail: c.kind.as_str(),
            };
            let cell = self.cell(RollupKind::Edge, c.time, dims);
            cell.count += 1;
            cell.errors += u64::from(c.error);
            cell.latency.add(c.duration);
        }
    }

    /// The accumulated rows, for queries (cloned) …
    pub fn rows(&self) -> impl Iterator<Item = &RollupRow> {
        self.cells.values()
    }

    /// … and for freezing (moved out; the edge matcher keeps waiting halves).
    pub fn take(&mut self, final_flush: bool) -> Vec<RollupRow> {
        if final_flush {
            let mut calls = Vec::new();
            self.matcher.expire(&mut calls, true);
            self.add_calls(calls);
        }
        self.cells.drain().map(|(_, v)| v).collect()
    }
}
