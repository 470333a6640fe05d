//! Rows that are acknowledged but not yet (or not yet visibly) in Parquet, kept in memory so
//! queries see them immediately.

use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Instant;

use super::services::ServiceRegistry;
use crate::model::{LogRow, MetricPoint, Rows, SpanRow};
use crate::rollup::{RollupRow, Rollups};

/// A memtable taken out of the write path and waiting to be flushed.
#[derive(Debug)]
pub struct Frozen {
    pub rows: Rows,
    /// Rollups of these rows (and of calls completed while they were active).
    pub rollups: Vec<RollupRow>,
    /// WAL segments numbered `<=` this hold exactly these rows (and earlier flushed ones).
    pub wal_seq: u64,
}

/// The in-memory part of the data, behind one lock.
///
/// Invariant: every acknowledged row is in `active`, in one of `frozen`, or in a committed
/// index block, and the flusher moves a frozen memtable to the index under the write lock,
/// so a reader holding the read lock sees each row exactly once.
#[derive(Debug, Default)]
pub struct LiveInner {
    pub active: Rows,
    /// When the first row of `active` arrived, for age-based flushing.
    pub active_since: Option<Instant>,
    pub frozen: Vec<Arc<Frozen>>,
    pub services: ServiceRegistry,
    /// Rollups of `active`.
    pub rollups: Rollups,
}

impl LiveInner {
    /// Every in-memory span.
    pub fn spans(&self) -> impl Iterator<Item = &SpanRow> {
        self.active
            .spans
            .iter()
            .chain(self.frozen.iter().flat_map(|f| f.rows.spans.iter()))
    }

    /// Every in-memory log record.
    pub fn logs(&self) -> impl Iterator<Item = &LogRow> {
        self.active
            .logs
            .iter()
            .chain(self.frozen.iter().flat_map(|f| f.rows.logs.iter()))
    }

    /// Every in-memory rollup row.
    pub fn rollups(&self) -> impl Iterator<Item = &RollupRow> {
        self.rollups
            .rows()
            .chain(self.frozen.iter().flat_map(|f| f.rollups.iter()))
    }

    /// Every in-memory metric point.
    pub fn metrics(&self) -> impl Iterator<Item = &MetricPoint> {
        self.active
            .metrics
            .iter()
            .chain(self.frozen.iter().flat_map(|f| f.rows.metrics.iter()))
    }

    /// Adds acknowledged rows and notes their services.
    pub fn insert(&mut self, mut rows: Rows) {
        if rows.is_empty() {
            return;
        }
        self.rollups.observe_spans(&rows.spans);
        self.rollups.observe_logs(&rows.logs);
        for s in &rows.spans {
            self.services.observe(&s.resource, s.end_time_unix_nano);
        }
        for l in &rows.logs {
            self.services.observe(&l.resource, l.time_unix_nano);
        }
        for m in &rows.metrics {
            self.services.observe(&m.resource, m.time_unix_nano);
        }
        self.active_since.get_or_insert_with(Instant::now);
        self.active.append(&mut rows);
    }
}

/// Shared handle to the in-memory data.
#[derive(Debug, Default)]
pub struct LiveData {
    inner: RwLock<LiveInner>,
}

impl LiveData {
    /// A consistent view for a query. Take the index searcher while holding it.
    pub fn read(&self) -> RwLockReadGuard<'_, LiveInner> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Exclusive access for the writer and the flusher.
    pub fn write(&self) -> RwLockWriteGuard<'_, LiveInner> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }
}
