//! Per-minute aggregates derived from spans and logs at ingest, so the overview, the service
//! map and the error pages never scan raw spans: RED per service/operation/instance/version,
//! calls per edge, error log counts, and error groups.
//!
//! Each export's contribution is summed by the receiving task while it decodes the request
//! ([`delta`]); the writer merges the sums into [`Rollups`], which accumulate in memory beside
//! the memtable, are frozen with it, and are written by the flusher as Parquet rows of their
//! own (`rollups/…`) in the same index commit. A WAL replay decodes the same requests again,
//! so rollups are exactly as durable as the data.

pub mod delta;
pub mod edges;
pub mod error_group;
pub mod latency;
pub mod metric_minutes;

use std::collections::hash_map::Entry;
use std::collections::HashMap;

use serde::{Deserialize, Serialize};

pub use delta::{DeltaBuilder, ResourceRef, RollupDelta, SpanFacts};
pub use edges::{EdgeCall, EdgeHalf, EdgeKind, EdgeMatcher};
pub use error_group::ErrorSignature;
pub use latency::LatencyHistogram;

use crate::model::SpanKind;

/// Nanoseconds per rollup bucket.
pub const MINUTE: i64 = 60_000_000_000;

/// How far before a window its baseline is read: the error rate the window's minutes are
/// compared with, the versions that ran before (the triage pages' events, the post-mortem's
/// suggestions). A pinned view keeps this much rollup history before its window.
pub const BASELINE_LOOKBACK: i64 = 60 * MINUTE;

/// What a rollup row counts: the name of a [`RollupCell`]'s variant, stored in Parquet and
/// in the block index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RollupKind {
    /// See [`RollupCell::Red`].
    Red,
    /// See [`RollupCell::Edge`].
    Edge,
    /// See [`RollupCell::LogErrors`].
    LogErrors,
    /// See [`RollupCell::ErrorGroup`].
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

/// What one rollup row counts, with the parts of its key that kind has. Flattened into the
/// `operation`/`instance`/`version`/`detail` columns only where it is stored
/// (`store::rollups`).
#[derive(Debug, Clone, PartialEq)]
pub enum RollupCell {
    /// Requests handled (SERVER and CONSUMER spans) by `operation` of one instance and
    /// version.
    Red {
        operation: String,
        instance: String,
        version: String,
        span_kind: SpanKind,
    },
    /// Calls from the row's service to `callee`: an instrumented service, or a database or
    /// peer that reports nothing itself.
    Edge { callee: String, kind: EdgeKind },
    /// ERROR/FATAL log records of one instance and version.
    LogErrors { instance: String, version: String },
    /// Occurrences of error group `key` in one instance and version; `example` is the first
    /// one seen (kept, not part of the key).
    ErrorGroup {
        key: String,
        instance: String,
        version: String,
        example: ErrorGroupDetail,
    },
}

/// The parts of a cell that tell it apart from the others of its service and minute, in
/// the order rows are sorted by: kind, then operation (callee, group key), instance,
/// version, and the span or edge kind.
pub type CellKey<'a> = (RollupKind, &'a str, &'a str, &'a str, &'static str);

impl RollupCell {
    /// Which kind of cell this is.
    pub fn kind(&self) -> RollupKind {
        match self {
            RollupCell::Red { .. } => RollupKind::Red,
            RollupCell::Edge { .. } => RollupKind::Edge,
            RollupCell::LogErrors { .. } => RollupKind::LogErrors,
            RollupCell::ErrorGroup { .. } => RollupKind::ErrorGroup,
        }
    }

    /// The cell's key (an error group's example is not part of it).
    pub fn key(&self) -> CellKey<'_> {
        match self {
            RollupCell::Red {
                operation,
                instance,
                version,
                span_kind,
            } => (
                RollupKind::Red,
                operation,
                instance,
                version,
                span_kind.as_str(),
            ),
            RollupCell::Edge { callee, kind } => (RollupKind::Edge, callee, "", "", kind.as_str()),
            RollupCell::LogErrors { instance, version } => {
                (RollupKind::LogErrors, "", instance, version, "")
            }
            RollupCell::ErrorGroup {
                key,
                instance,
                version,
                ..
            } => (RollupKind::ErrorGroup, key, instance, version, ""),
        }
    }

    /// The instance it counts, where it counts one instance (edges are per caller service).
    pub fn instance(&self) -> Option<&str> {
        match self {
            RollupCell::Red { instance, .. }
            | RollupCell::LogErrors { instance, .. }
            | RollupCell::ErrorGroup { instance, .. } => Some(instance),
            RollupCell::Edge { .. } => None,
        }
    }
}

/// One aggregate for one minute of one service.
#[derive(Debug, Clone, PartialEq)]
pub struct RollupRow {
    /// Start of the minute (Unix ns).
    pub minute: i64,
    pub service: String,
    pub cell: RollupCell,
    pub count: u64,
    pub errors: u64,
    pub latency: LatencyHistogram,
}

/// The key of a rollup cell across services and minutes, owned.
type Key = (
    i64,
    String,
    RollupKind,
    String,
    String,
    String,
    &'static str,
);

impl RollupRow {
    /// Which kind of cell the row counts.
    pub fn kind(&self) -> RollupKind {
        self.cell.kind()
    }

    /// The parts of the cell key beyond minute and service (see [`RollupCell::key`]).
    pub fn cell_key(&self) -> CellKey<'_> {
        self.cell.key()
    }

    /// The operation a RED cell counts.
    pub fn red_operation(&self) -> Option<&str> {
        match &self.cell {
            RollupCell::Red { operation, .. } => Some(operation),
            _ => None,
        }
    }

    /// Adds `other` into this row if both are the same cell (the first error-group example
    /// stays); returns whether it did.
    pub fn add(&mut self, other: &RollupRow) -> bool {
        let same = self.minute == other.minute
            && self.service == other.service
            && self.cell_key() == other.cell_key();
        if same {
            self.count += other.count;
            self.errors += other.errors;
            self.latency.merge(&other.latency);
        }
        same
    }

    fn owned_key(&self) -> Key {
        let (kind, operation, instance, version, detail) = self.cell_key();
        (
            self.minute,
            self.service.clone(),
            kind,
            operation.to_string(),
            instance.to_string(),
            version.to_string(),
            detail,
        )
    }
}

/// Example and signature of an error group (stored as JSON in the `detail` column).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorGroupDetail {
    #[serde(flatten)]
    pub signature: ErrorSignature,
    pub example_trace_id: Option<String>,
    pub example_span_id: Option<String>,
}

/// Most distinct error groups one service keeps per minute. The occurrences of any more go
/// to one overflow group ([`OVERFLOW_GROUP`]), so errors whose messages never repeat (free
/// text that normalizing numbers and ids does not tame) cannot turn the error rollups into a
/// second copy of the logs: measured, 10 M such error logs made 660 MB of rollups and a
/// service map that no longer answered.
pub const ERROR_GROUPS_PER_MINUTE: usize = 100;

/// The key of the overflow error group.
pub const OVERFLOW_GROUP: &str = "overflow";

/// Minutes behind the newest one for which [`ErrorGroupBudget`] remembers admitted groups.
const BUDGET_MINUTES: i64 = 15;

/// The error groups admitted per service and minute, across memtables (a minute's errors
/// arrive over many flushes).
#[derive(Default)]
struct ErrorGroupBudget {
    admitted: HashMap<(String, i64), std::collections::HashSet<String>>,
    newest_minute: i64,
}

impl ErrorGroupBudget {
    /// Whether group `key` of `service` keeps its own cell in `minute`.
    fn admit(&mut self, service: &str, minute: i64, key: &str) -> bool {
        if minute > self.newest_minute {
            self.newest_minute = minute;
            let oldest = minute - BUDGET_MINUTES * MINUTE;
            self.admitted.retain(|(_, m), _| *m >= oldest);
        }
        let groups = self
            .admitted
            .entry((service.to_string(), minute))
            .or_default();
        if groups.contains(key) {
            return true;
        }
        if groups.len() < ERROR_GROUPS_PER_MINUTE {
            groups.insert(key.to_string());
            return true;
        }
        false
    }
}

/// The example of the overflow error group.
fn overflow_detail() -> ErrorGroupDetail {
    ErrorGroupDetail {
        signature: ErrorSignature {
            error_type: "(many)".into(),
            message: format!(
                "errors beyond the {ERROR_GROUPS_PER_MINUTE} distinct groups a service keeps per minute"
            ),
            top_frame: String::new(),
        },
        example_trace_id: None,
        example_span_id: None,
    }
}

/// Rollups being accumulated for the active memtable, plus the edge matcher.
#[derive(Default)]
pub struct Rollups {
    cells: HashMap<Key, RollupRow>,
    matcher: EdgeMatcher,
    error_groups: ErrorGroupBudget,
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
    /// Adds `row` to its cell (the first error-group example stays; an error group beyond
    /// the service's budget for the minute counts in the overflow group).
    fn merge(&mut self, mut row: RollupRow) {
        if let RollupCell::ErrorGroup { key, example, .. } = &mut row.cell {
            if !self.error_groups.admit(&row.service, row.minute, key) {
                *key = OVERFLOW_GROUP.to_string();
                *example = overflow_detail();
            }
        }
        match self.cells.entry(row.owned_key()) {
            Entry::Occupied(mut cell) => {
                let cell = cell.get_mut();
                cell.count += row.count;
                cell.errors += row.errors;
                cell.latency.merge(&row.latency);
            }
            Entry::Vacant(cell) => {
                cell.insert(row);
            }
        }
    }

    /// Accounts for a newly acknowledged export: its summed cells, and its edge halves
    /// matched against the halves still waiting.
    pub fn absorb(&mut self, delta: RollupDelta) {
        let RollupDelta { cells, halves, .. } = delta;
        for row in cells {
            self.merge(row);
        }
        let mut calls = Vec::new();
        let now = std::time::Instant::now();
        for half in halves {
            self.matcher.observe(half, now, &mut calls);
        }
        self.matcher.expire(now, &mut calls, false);
        self.add_calls(calls);
    }

    fn add_calls(&mut self, calls: Vec<EdgeCall>) {
        for c in calls {
            let mut latency = LatencyHistogram::default();
            latency.add(c.duration);
            self.merge(RollupRow {
                minute: minute_of(c.time),
                service: c.caller,
                cell: RollupCell::Edge {
                    callee: c.callee,
                    kind: c.kind,
                },
                count: 1,
                errors: u64::from(c.error),
                latency,
            });
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
            self.matcher
                .expire(std::time::Instant::now(), &mut calls, true);
            self.add_calls(calls);
        }
        self.cells.drain().map(|(_, v)| v).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(key: &str, minute: i64) -> RollupRow {
        RollupRow {
            minute,
            service: "api".into(),
            cell: RollupCell::ErrorGroup {
                key: key.into(),
                instance: "api-1".into(),
                version: String::new(),
                example: ErrorGroupDetail {
                    signature: ErrorSignature {
                        error_type: "E".into(),
                        message: key.into(),
                        top_frame: String::new(),
                    },
                    example_trace_id: None,
                    example_span_id: None,
                },
            },
            count: 1,
            errors: 1,
            latency: LatencyHistogram::default(),
        }
    }

    #[test]
    fn error_groups_beyond_the_budget_count_in_one_overflow_group() {
        let mut rollups = Rollups::default();
        let extra = 50;
        for i in 0..ERROR_GROUPS_PER_MINUTE + extra {
            rollups.merge(group(&format!("g{i}"), 0));
        }
        // A group admitted before the budget ran out keeps its own cell, also after a flush.
        let first_flush = rollups.take(false);
        rollups.merge(group("g0", 0));
        rollups.merge(group("new", 0));
        // The next minute has a budget of its own.
        rollups.merge(group("new", MINUTE));
        let second_flush = rollups.take(false);

        let count_of = |rows: &[RollupRow], key: &str, minute: i64| {
            rows.iter()
                .filter(|r| r.cell_key().1 == key && r.minute == minute)
                .map(|r| r.count)
                .sum::<u64>()
        };
        assert_eq!(first_flush.len(), ERROR_GROUPS_PER_MINUTE + 1);
        assert_eq!(count_of(&first_flush, OVERFLOW_GROUP, 0), extra as u64);
        assert_eq!(count_of(&second_flush, "g0", 0), 1);
        assert_eq!(count_of(&second_flush, OVERFLOW_GROUP, 0), 1);
        assert_eq!(count_of(&second_flush, "new", MINUTE), 1);
        let overflow = first_flush
            .iter()
            .find(|r| r.cell_key().1 == OVERFLOW_GROUP);
        assert!(
            matches!(&overflow.map(|r| &r.cell), Some(RollupCell::ErrorGroup { example, .. })
                if example.signature.error_type == "(many)"),
            "{overflow:?}"
        );
    }
}
