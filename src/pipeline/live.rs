//! Rows that are acknowledged but not yet (or not yet visibly) in Parquet, kept in memory so
//! queries see them immediately.

use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Instant;

use super::export::Export;
use super::memtable::{InMemtable, Memtable};
use super::services::ServiceRegistry;
use crate::model::MetricPoint;
use crate::rollup::metric_minutes::MinuteMetric;
use crate::rollup::{RollupRow, Rollups};
use crate::store::{Prefilter, StoreError, StoredRow};

/// A memtable taken out of the write path and waiting to be flushed.
#[derive(Debug)]
pub struct Frozen {
    pub table: Memtable,
    /// Rollups of these rows (and of calls completed while they were active).
    pub rollups: Vec<RollupRow>,
    /// WAL segments numbered `<=` this hold exactly these rows (and earlier flushed ones).
    pub wal_seq: u64,
    /// On a cluster index node: the queue messages these rows came from.
    pub queue_seqs: Vec<u64>,
}

/// The in-memory part of the data, behind one lock.
///
/// Invariant: every acknowledged row is in `active`, in one of `frozen`, or in a committed
/// index block, and the flusher moves a frozen memtable to the index under the write lock,
/// so a reader holding the read lock sees each row exactly once.
#[derive(Debug, Default)]
pub struct LiveInner {
    pub active: Memtable,
    /// When the first row of `active` arrived, for age-based flushing.
    pub active_since: Option<Instant>,
    pub frozen: Vec<Arc<Frozen>>,
    pub services: ServiceRegistry,
    /// Rollups of `active`.
    pub rollups: Rollups,
    /// On a cluster index node: the queue messages `active`'s rows came from.
    pub queue_seqs: Vec<u64>,
}

impl LiveInner {
    /// Every memtable, active first.
    fn tables(&self) -> impl Iterator<Item = &Memtable> {
        std::iter::once(&self.active).chain(self.frozen.iter().map(|f| &f.table))
    }

    /// Every in-memory rollup row.
    pub fn rollups(&self) -> impl Iterator<Item = &RollupRow> {
        self.rollups
            .rows()
            .chain(self.frozen.iter().flat_map(|f| f.rollups.iter()))
    }

    /// Records in memory (active and frozen), all signals.
    pub fn rows(&self) -> usize {
        self.tables().map(Memtable::rows).sum()
    }

    /// Bytes the in-memory records hold (active and frozen), all signals.
    pub fn bytes(&self) -> usize {
        self.tables().map(Memtable::bytes).sum()
    }

    /// The named columns of in-memory log records passing `prefilter` (see
    /// [`Table::scan_columns`]).
    pub fn log_columns(
        &self,
        prefilter: &Prefilter,
        columns: &[&str],
    ) -> Result<Vec<arrow::record_batch::RecordBatch>, StoreError> {
        let mut out = Vec::new();
        for table in self.tables() {
            out.extend(table.logs.scan_columns(prefilter, columns)?);
        }
        Ok(out)
    }

    /// Adds an acknowledged export: its batches to the active memtable, its rollups and
    /// resources to the rollups and the service list.
    pub fn insert(&mut self, export: Export) {
        let Export { chunk, rollups } = export;
        if chunk.rows() == 0 {
            return;
        }
        for (resource, time) in &rollups.seen {
            self.services.observe(resource, *time);
        }
        self.rollups.absorb(rollups);
        self.active_since.get_or_insert_with(Instant::now);
        self.active.append(chunk);
    }
}

/// Row types a query can read from memory as well as from files: the records that pass
/// `prefilter` and `keep`, from every memtable (or, for rollups, the in-memory rollups).
pub trait LiveRows: StoredRow {
    /// The in-memory records passing both checks.
    fn scan_live(
        live: &LiveInner,
        prefilter: &Prefilter,
        keep: &mut dyn FnMut(&Self) -> bool,
    ) -> Result<Vec<Self>, StoreError>;
}

/// Spans, logs and metric points: from their table of every memtable.
impl<T: InMemtable> LiveRows for T {
    fn scan_live(
        live: &LiveInner,
        prefilter: &Prefilter,
        keep: &mut dyn FnMut(&Self) -> bool,
    ) -> Result<Vec<Self>, StoreError> {
        let mut out = Vec::new();
        for memtable in live.tables() {
            T::table(memtable).scan(prefilter, keep, &mut out)?;
        }
        Ok(out)
    }
}

/// Raw points still in memory stand in for their one-minute points (not computed until
/// the flush), as the metric queries expect.
impl LiveRows for MinuteMetric {
    fn scan_live(
        live: &LiveInner,
        prefilter: &Prefilter,
        keep: &mut dyn FnMut(&Self) -> bool,
    ) -> Result<Vec<Self>, StoreError> {
        let points = MetricPoint::scan_live(live, prefilter, &mut |_| true)?;
        Ok(points
            .into_iter()
            .map(MinuteMetric)
            .filter(|m| keep(m))
            .collect())
    }
}

/// Rollups are kept as rows (a few per service and minute); the prefilter is for files.
impl LiveRows for RollupRow {
    fn scan_live(
        live: &LiveInner,
        _prefilter: &Prefilter,
        keep: &mut dyn FnMut(&Self) -> bool,
    ) -> Result<Vec<Self>, StoreError> {
        Ok(live.rollups().filter(|r| keep(r)).cloned().collect())
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
