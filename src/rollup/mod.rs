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

impl RollupRow {
    /// The parts of the cell key beyond kind, minute and service. An error group's `detail`
    /// holds its first example, which is not part of the key.
    pub fn cell_key(&self) -> (&str, &str, &str, &str) {
        let detail = if self.kind == RollupKind::ErrorGroup {
            ""
        } else {
            self.detail.as_str()
        };
        (&self.operation, &self.instance, &self.version, detail)
    }

    /// Adds `other` into this row if both are the same cell (the first error-group example
    /// stays); returns whether it did.
    pub fn add(&mut self, other: &RollupRow) -> bool {
        let same = self.kind == other.kind
            && self.minute == other.minute
            && self.service == other.service
            && self.cell_key() == other.cell_key();
        if same {
            self.count += other.count;
            self.errors += other.errors;
            self.latency.merge(&other.latency);
        }
        same
    }
}

/// Example and signature of an error group, kept in `detail`.
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

/// The `detail` of the overflow error group.
fn overflow_detail() -> String {
    serde_json::to_string(&ErrorGroupDetail {
        signature: ErrorSignature {
            error_type: "(many)".into(),
            message: format!(
                "errors beyond the {ERROR_GROUPS_PER_MINUTE} distinct groups a service keeps per minute"
            ),
            top_frame: String::new(),
        },
        example_trace_id: None,
        example_span_id: None,
    })
    .unwrap_or_default()
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
        if row.kind == RollupKind::ErrorGroup
            && !self
                .error_groups
                .admit(&row.service, row.minute, &row.operation)
        {
            row.operation = OVERFLOW_GROUP.to_string();
            row.detail = overflow_detail();
        }
        let (operation, instance, version, detail) = row.cell_key();
        let key = (
            row.kind,
            row.minute,
            row.service.clone(),
            operation.to_string(),
            instance.to_string(),
            version.to_string(),
            detail.to_string(),
        );
        match self.cells.entry(key) {
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
        self.matcher.expire(&mut calls, false);
        self.add_calls(calls);
    }

    fn add_calls(&mut self, calls: Vec<EdgeCall>) {
        for c in calls {
            let mut latency = LatencyHistogram::default();
            latency.add(c.duration);
            self.merge(RollupRow {
                kind: RollupKind::Edge,
                minute: minute_of(c.time),
                service: c.caller,
                operation: c.callee,
                instance: String::new(),
                version: String::new(),
                detail: c.kind.as_str().to_string(),
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
            self.matcher.expire(&mut calls, true);
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
            kind: RollupKind::ErrorGroup,
            minute,
            service: "api".into(),
            operation: key.into(),
            instance: "api-1".into(),
            version: String::new(),
            detail: "{}".into(),
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
                .filter(|r| r.operation == key && r.minute == minute)
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
            .find(|r| r.operation == OVERFLOW_GROUP)
            .map(|r| serde_json::from_str::<ErrorGroupDetail>(&r.detail));
        assert!(matches!(overflow, Some(Ok(_))), "{overflow:?}");
    }
}
