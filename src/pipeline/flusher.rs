//! The flusher thread: frozen memtable → Parquet files → index commit → WAL segments deleted.

use std::path::PathBuf;
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::time::Duration;

use arrow::record_batch::RecordBatch;
use tantivy::TantivyDocument;
use tokio::runtime::Handle;

use super::live::{Frozen, LiveData};
use super::memtable::Memtable;
use super::minute_points::downsample;
use crate::index::{block, AttributeValues, BlockIndex};
use crate::model::{LogRow, MetricPoint, Signal, SpanRow};
use crate::rollup::metric_minutes::MinuteMetric;
use crate::rollup::RollupRow;
use crate::store::{BatchPlan, Store, StoreError, StoredRow, WrittenFile};
use crate::wal::Wal;

/// Pause before retrying a failed flush; the rows stay queryable in memory meanwhile.
const RETRY_DELAY: Duration = Duration::from_secs(1);

/// Flushes frozen memtables in order until the writer hangs up.
pub(super) fn run(
    rx: Receiver<Arc<Frozen>>,
    live: Arc<LiveData>,
    store: Store,
    index: Arc<BlockIndex>,
    wal_dir: PathBuf,
    rt: Handle,
) {
    for frozen in rx {
        // Retry until it works: flushing out of order would break the WAL commit point.
        while let Err(e) = flush(&frozen, &live, &store, &index, &wal_dir, &rt) {
            tracing::error!(wal_seq = frozen.wal_seq, "flush failed, retrying: {e:#}");
            std::thread::sleep(RETRY_DELAY);
        }
    }
}

fn flush(
    frozen: &Arc<Frozen>,
    live: &LiveData,
    store: &Store,
    index: &BlockIndex,
    wal_dir: &std::path::Path,
    rt: &Handle,
) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let fields = index.fields();
    let table = &frozen.table;
    let docs = rt.block_on(write_blocks(store, fields, table, &frozen.rollups))?;
    let blocks = docs.len();
    let committed = index.commit_blocks(docs, frozen.wal_seq)?;
    {
        // Swap memory for index under the write lock: readers see the rows exactly once.
        let mut inner = live.write();
        committed.publish()?;
        inner.frozen.retain(|f| !Arc::ptr_eq(f, frozen));
        crate::telemetry::get()
            .frozen_memtables
            .set(inner.frozen.len() as i64);
    }
    index.warm()?;
    crate::telemetry::get()
        .flush_seconds
        .observe(started.elapsed().as_secs_f64());
    Wal::delete_through(wal_dir, frozen.wal_seq)?;
    tracing::debug!(
        spans = table.spans.rows(),
        logs = table.logs.rows(),
        metrics = table.metrics.rows(),
        blocks,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "flushed"
    );
    Ok(())
}

/// Writes a memtable (and the rollups of its minutes) as Parquet files and returns the
/// index block of each row group, ready to commit. Shared by the flusher and by evidence
/// snapshots.
///
/// Each signal's batches are planned into files with Arrow's kernels (only the sort keys are
/// copied); then each row group in turn is gathered, and its Parquet encoding and its block
/// run side by side on two threads (`rayon::join`); the one-minute metric points are
/// computed from the memtable's metric columns first. A file is stored (written and fsynced) once its last
/// row group is encoded. So a flush holds the unpacked memtable, one row group and one
/// file's encoded bytes, never the memtable sorted into a second copy.
pub async fn write_blocks(
    store: &Store,
    fields: &crate::index::Fields,
    table: &Memtable,
    rollups: &[RollupRow],
) -> anyhow::Result<Vec<TantivyDocument>> {
    let noted = table.spans.attribute_values();
    let spans = store.plan_batches::<SpanRow>(table.spans.unpacked()?)?;
    let mut docs = write_plan::<SpanRow>(store, &spans, |path, i, rows, group| {
        flushed_block(fields, Signal::Traces, (path, i), rows, group, &noted)
    })
    .await?;
    drop(spans);
    let noted = table.logs.attribute_values();
    let logs = store.plan_batches::<LogRow>(table.logs.unpacked()?)?;
    docs.extend(
        write_plan::<LogRow>(store, &logs, |path, i, rows, group| {
            flushed_block(fields, Signal::Logs, (path, i), rows, group, &noted)
        })
        .await?,
    );
    drop(logs);
    // The one-minute points are computed from the memtable's batches before they are planned.
    let points = table.metrics.unpacked()?;
    let minutes = downsample(&points)?;
    let metrics = store.plan_batches::<MetricPoint>(points)?;
    docs.extend(
        write_plan::<MetricPoint>(store, &metrics, |path, i, _, group| {
            block::block_of_batches(
                fields,
                Signal::Metrics,
                path,
                i,
                std::slice::from_ref(group),
            )
        })
        .await?,
    );
    drop(metrics);
    // Small (one row per series and minute, one per rollup cell): written as rows.
    let minute_files = store.write(&minutes).await?;
    docs.extend(blocks_of(&minute_files, |path, i, group| {
        let batch = MinuteMetric::to_batch(group)?;
        block::block_of_batches(fields, Signal::MetricMinutes, path, i, &[batch])
    })?);
    let rollup_files = store.write(rollups).await?;
    docs.extend(blocks_of(&rollup_files, |path, i, group| {
        Ok(block::rollup_block(fields, path, i, group))
    })?);
    Ok(docs)
}

/// The block of a flushed span or log row group (`rows`: where in the memtable's batches its
/// rows came from): its attribute terms are the values the decoders noted for those batches
/// when every one of them has them (exports; not batches built from rows), else read from
/// the group's attribute column.
fn flushed_block(
    fields: &crate::index::Fields,
    signal: Signal,
    (path, row_group): (&str, usize),
    rows: &[(usize, usize)],
    group: &RecordBatch,
    noted: &[Option<&AttributeValues<'static>>],
) -> Result<TantivyDocument, StoreError> {
    let mut contributes = vec![false; noted.len()];
    for &(batch, _) in rows {
        if let Some(c) = contributes.get_mut(batch) {
            *c = true;
        }
    }
    let values: Option<Vec<&AttributeValues>> = noted
        .iter()
        .zip(&contributes)
        .filter(|(_, contributes)| **contributes)
        .map(|(values, _)| *values)
        .collect();
    let group = std::slice::from_ref(group);
    match values {
        Some(values) => block::block_of_decoded(fields, signal, path, row_group, group, &values),
        None => block::block_of_batches(fields, signal, path, row_group, group),
    }
}

/// Encodes and stores every file of `plan`, one row group at a time: the group's rows are
/// gathered, then encoded while `block` builds its index document (given the group's row
/// positions in the plan's batches, and the gathered rows) on a second thread.
async fn write_plan<T: StoredRow>(
    store: &Store,
    plan: &BatchPlan,
    mut block: impl FnMut(&str, usize, &[(usize, usize)], &RecordBatch) -> Result<TantivyDocument, StoreError>
        + Send,
) -> Result<Vec<TantivyDocument>, StoreError> {
    let mut docs = Vec::new();
    for file in &plan.files {
        let mut builder = store.start_planned::<T>(file)?;
        for (i, rows) in file.row_groups.iter().enumerate() {
            let group = plan.row_group(rows)?;
            let (written, doc) = rayon::join(
                || builder.write_batch(&group),
                || block(&file.path, i, rows, &group),
            );
            written?;
            docs.push(doc?);
        }
        store.finish_file(builder).await?;
    }
    Ok(docs)
}

/// The block document of every row group of `files`.
fn blocks_of<T>(
    files: &[WrittenFile<'_, T>],
    block: impl Fn(&str, usize, &[&T]) -> Result<TantivyDocument, StoreError>,
) -> Result<Vec<TantivyDocument>, StoreError> {
    let mut docs = Vec::new();
    for f in files {
        for (i, group) in f.row_groups.iter().enumerate() {
            docs.push(block(&f.path, i, group)?);
        }
    }
    Ok(docs)
}
