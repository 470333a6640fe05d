//! One export as the write path takes it: its records packed the way the memtable keeps
//! them, and what they add to the rollups and the service list — all worked out by the
//! receiving task, so the writer thread only appends, syncs, merges and acknowledges.

use arrow::record_batch::RecordBatch;

use super::memtable::Chunk;
use crate::index::AttributeValues;
use crate::rollup::RollupDelta;
use crate::store::StoreError;

/// An export ready for the WAL and the memtable.
#[derive(Debug, Default)]
pub struct Export {
    pub(super) chunk: Chunk,
    pub(super) rollups: RollupDelta,
}

impl Export {
    /// Spans decoded straight into a batch of the span files' schema, with their rollups and
    /// the distinct attribute values the decoder noted (for the blocks the rows end up in).
    pub fn spans(
        batch: RecordBatch,
        rollups: RollupDelta,
        values: Option<AttributeValues<'static>>,
    ) -> Result<Export, StoreError> {
        Ok(Export {
            chunk: Chunk::of_spans(batch, values)?,
            rollups,
        })
    }

    /// Log records decoded straight into a batch of the log files' schema, with their rollups
    /// and attribute values, as [`Export::spans`].
    pub fn logs(
        batch: RecordBatch,
        rollups: RollupDelta,
        values: Option<AttributeValues<'static>>,
    ) -> Result<Export, StoreError> {
        Ok(Export {
            chunk: Chunk::of_logs(batch, values)?,
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
