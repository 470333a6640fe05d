//! One export as the write path takes it: its records packed the way the memtable keeps
//! them, and what they add to the rollups and the service list — all worked out by the
//! receiving task, so the writer thread only appends, syncs, merges and acknowledges.

use std::sync::Arc;

use arrow::record_batch::RecordBatch;

use super::memtable::Chunk;
use crate::model::{MetricPoint, Rows};
use crate::rollup::RollupDelta;
use crate::store::StoreError;

/// An export ready for the WAL and the memtable.
#[derive(Debug, Default)]
pub struct Export {
    pub(super) chunk: Chunk,
    pub(super) rollups: RollupDelta,
}

impl Export {
    /// Spans decoded straight into a batch of the span files' schema, with their rollups.
    pub fn spans(batch: RecordBatch, rollups: RollupDelta) -> Result<Export, StoreError> {
        Ok(Export {
            chunk: Chunk::of_spans(batch)?,
            rollups,
        })
    }

    /// Log records decoded straight into a batch of the log files' schema, with their rollups.
    pub fn logs(batch: RecordBatch, rollups: RollupDelta) -> Result<Export, StoreError> {
        Ok(Export {
            chunk: Chunk::of_logs(batch)?,
            rollups,
        })
    }

    /// Metric points (metrics have no ingest rollups; their resources go to the service list).
    pub fn metrics(points: Vec<MetricPoint>) -> Result<Export, StoreError> {
        let mut seen: Vec<(Arc<crate::model::Resource>, i64)> = Vec::new();
        for p in &points {
            match seen.last_mut() {
                // Points of one resource arrive together: one entry per run.
                Some((r, t)) if Arc::ptr_eq(r, &p.resource) => *t = (*t).max(p.time_unix_nano),
                _ => seen.push((p.resource.clone(), p.time_unix_nano)),
            }
        }
        let rows = Rows {
            metrics: points,
            ..Rows::default()
        };
        Ok(Export {
            chunk: Chunk::of(&rows)?,
            rollups: RollupDelta {
                seen,
                ..RollupDelta::default()
            },
        })
    }
}
