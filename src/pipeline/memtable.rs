//! The memtable: acknowledged records held as Arrow batches of the Parquet files' schema,
//! packed (see `packed.rs`), bounded in bytes.
//!
//! The receiving task decodes an export straight into one Arrow batch per signal
//! (`ingest/traces.rs`, `ingest/logs.rs`; no per-record structs) and packs it (≈ 200 B a
//! span) before it queues for the WAL, so the memtable costs what its columns cost, and the
//! flusher sorts and writes those batches as they are.
//! Queries read the batches through the same column prefilter and row decoding as Parquet
//! row groups (`Table::scan`).

use std::marker::PhantomData;

use arrow::compute::filter_record_batch;
use arrow::record_batch::RecordBatch;

use super::packed::PackedBatch;
use crate::index::AttributeValues;

use crate::model::{LogRow, MetricPoint, Rows, SpanRow};
use crate::store::{Prefilter, StoreError, StoredRow};

/// The records of one signal in memory, as batches in arrival order.
#[derive(Debug)]
pub struct Table<T> {
    batches: Vec<PackedBatch>,
    rows: usize,
    bytes: usize,
    row: PhantomData<fn() -> T>,
}

impl<T> Default for Table<T> {
    fn default() -> Self {
        Self {
            batches: Vec::new(),
            rows: 0,
            bytes: 0,
            row: PhantomData,
        }
    }
}

impl<T: StoredRow> Table<T> {
    /// Adds one batch built by [`Chunk::of`].
    pub fn push(&mut self, batch: PackedBatch) {
        if batch.rows() == 0 {
            return;
        }
        self.rows += batch.rows();
        self.bytes += batch.bytes();
        self.batches.push(batch);
    }

    /// The batches unpacked into the file schema, oldest first.
    pub fn unpacked(&self) -> Result<Vec<RecordBatch>, StoreError> {
        self.batches.iter().map(PackedBatch::unpack).collect()
    }

    /// The attribute values the decoders noted for each batch, in [`Table::unpacked`]'s
    /// order (`None` for a batch built from rows).
    pub fn attribute_values(&self) -> Vec<Option<&AttributeValues<'static>>> {
        self.batches
            .iter()
            .map(PackedBatch::attribute_values)
            .collect()
    }

    /// Records held.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Bytes the packed batches hold (their buffers' allocated capacity).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Decodes the records that pass `prefilter` (evaluated on the columns first, so rows it
    /// rejects are never decoded) and then `keep`, appending them to `out`.
    pub fn scan(
        &self,
        prefilter: &Prefilter,
        keep: &mut dyn FnMut(&T) -> bool,
        out: &mut Vec<T>,
    ) -> Result<(), StoreError> {
        for batch in self.select(prefilter, PackedBatch::unpack)? {
            T::from_batch(&batch, keep, out)?;
        }
        Ok(())
    }
}

impl<T> Table<T> {
    /// The named columns of the records that pass `prefilter`, one batch per stored batch
    /// with any: for counting and grouping without decoding records.
    pub fn scan_columns(
        &self,
        prefilter: &Prefilter,
        columns: &[&str],
    ) -> Result<Vec<RecordBatch>, StoreError> {
        self.select(prefilter, |packed| packed.project(columns))
    }

    /// The rows passing `prefilter` of every batch that has any, as `read` unpacks them:
    /// the checks run on the checked columns alone, so a batch without a passing row is
    /// never unpacked.
    fn select(
        &self,
        prefilter: &Prefilter,
        read: impl Fn(&PackedBatch) -> Result<RecordBatch, StoreError>,
    ) -> Result<Vec<RecordBatch>, StoreError> {
        let mut out = Vec::new();
        for packed in &self.batches {
            let mask = packed.mask(prefilter)?;
            if mask.as_ref().is_some_and(|m| m.true_count() == 0) {
                continue;
            }
            let batch = read(packed)?;
            out.push(match mask {
                Some(mask) if mask.true_count() < mask.len() => filter_record_batch(&batch, &mask)?,
                _ => batch,
            });
        }
        Ok(out)
    }
}

/// Row types with a table of their own in the memtable.
pub trait InMemtable: StoredRow {
    /// This row type's table of `memtable`.
    fn table(memtable: &Memtable) -> &Table<Self>;
}

impl InMemtable for SpanRow {
    fn table(memtable: &Memtable) -> &Table<Self> {
        &memtable.spans
    }
}

impl InMemtable for LogRow {
    fn table(memtable: &Memtable) -> &Table<Self> {
        &memtable.logs
    }
}

impl InMemtable for MetricPoint {
    fn table(memtable: &Memtable) -> &Table<Self> {
        &memtable.metrics
    }
}

/// Every signal's table.
#[derive(Debug, Default)]
pub struct Memtable {
    pub spans: Table<SpanRow>,
    pub logs: Table<LogRow>,
    pub metrics: Table<MetricPoint>,
}

impl Memtable {
    /// Adds one export's batches.
    pub fn append(&mut self, chunk: Chunk) {
        let Chunk {
            spans,
            logs,
            metrics,
        } = chunk;
        if let Some(spans) = spans {
            self.spans.push(spans);
        }
        if let Some(logs) = logs {
            self.logs.push(logs);
        }
        if let Some(metrics) = metrics {
            self.metrics.push(metrics);
        }
    }

    /// Records held, all signals.
    pub fn rows(&self) -> usize {
        self.spans.rows() + self.logs.rows() + self.metrics.rows()
    }

    /// Bytes held, all signals.
    pub fn bytes(&self) -> usize {
        self.spans.bytes() + self.logs.bytes() + self.metrics.bytes()
    }

    /// A memtable of `rows`, for writers that start from rows (evidence snapshots).
    pub fn of_rows(rows: &Rows) -> Result<Memtable, StoreError> {
        let mut table = Memtable::default();
        table.append(Chunk::of(rows)?);
        Ok(table)
    }
}

/// One export's records as one packed batch per signal present, built by the receiving task
/// before the export queues for the WAL (so the conversion runs on every runtime worker, not
/// on the writer thread).
#[derive(Debug, Default)]
pub struct Chunk {
    spans: Option<PackedBatch>,
    logs: Option<PackedBatch>,
    metrics: Option<PackedBatch>,
}

impl Chunk {
    /// Converts rows and packs them (evidence snapshots, metric exports).
    pub fn of(rows: &Rows) -> Result<Chunk, StoreError> {
        fn batch<T: StoredRow>(rows: &[T]) -> Result<Option<PackedBatch>, StoreError> {
            if rows.is_empty() {
                return Ok(None);
            }
            let refs: Vec<&T> = rows.iter().collect();
            PackedBatch::pack::<T>(T::to_batch(&refs)?).map(Some)
        }
        Ok(Chunk {
            spans: batch(&rows.spans)?,
            logs: batch(&rows.logs)?,
            metrics: batch(&rows.metrics)?,
        })
    }

    /// Packs a batch of the span files' schema, decoded straight from OTLP, with the
    /// attribute values its decoder noted.
    pub fn of_spans(
        batch: RecordBatch,
        values: Option<AttributeValues<'static>>,
    ) -> Result<Chunk, StoreError> {
        Ok(Chunk {
            spans: Some(PackedBatch::pack::<SpanRow>(batch)?.with_attribute_values(values)),
            ..Chunk::default()
        })
    }

    /// Packs a batch of the metric files' schema, decoded straight from OTLP.
    pub fn of_metrics(batch: RecordBatch) -> Result<Chunk, StoreError> {
        Ok(Chunk {
            metrics: Some(PackedBatch::pack::<MetricPoint>(batch)?),
            ..Chunk::default()
        })
    }

    /// Packs a batch of the log files' schema, decoded straight from OTLP, with the
    /// attribute values its decoder noted.
    pub fn of_logs(
        batch: RecordBatch,
        values: Option<AttributeValues<'static>>,
    ) -> Result<Chunk, StoreError> {
        Ok(Chunk {
            logs: Some(PackedBatch::pack::<LogRow>(batch)?.with_attribute_values(values)),
            ..Chunk::default()
        })
    }

    /// Records of all signals.
    pub fn rows(&self) -> usize {
        [&self.spans, &self.logs, &self.metrics]
            .into_iter()
            .flatten()
            .map(PackedBatch::rows)
            .sum()
    }
}
