//! One export as the write path takes it: its records packed the way the memtable keeps
//! them, and what they add to the rollups and the service list — all worked out by the
//! receiving task, so the writer thread only appends, syncs, merges and acknowledges.

use arrow::record_batch::RecordBatch;

use super::memtable::Chunk;
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

    /// Metric points decoded straight into a batch of the metric files' schema, with the
    /// resources they name (metrics have no other ingest rollups).
    pub fn metrics(batch: RecordBatch, rollups: RollupDelta) -> Result<Export, StoreError> {
        Ok(Export {
            chunk: Chunk::of_metrics(batch)?,
            rollups,
        })
    }
}
