//! The flusher thread: frozen memtable → Parquet files → index commit → WAL segments deleted.

use std::path::PathBuf;
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::time::Duration;

use tantivy::TantivyDocument;
use tokio::runtime::Handle;

use super::live::{Frozen, LiveData};
use super::memtable::Memtable;
use crate::index::{block, BlockIndex};
use crate::model::{LogRow, MetricPoint, Signal, SpanRow};
use crate::rollup::metric_minutes::downsample;
use crate::rollup::RollupRow;
use crate::store::{FileBuilder, PlannedFile, Store, StoreError, StoredRow, WrittenFile};
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
/// The memtable's batches are sorted into files with Arrow's kernels; Parquet encoding and
/// block building (from the same batches' columns; metric points are decoded once) run side
/// by side on two threads (`rayon::join`); the files are stored (written and
/// fsynced) after both. One-minute metric points are computed from the decoded points.
pub async fn write_blocks(
    store: &Store,
    fields: &crate::index::Fields,
    table: &Memtable,
    rollups: &[RollupRow],
) -> anyhow::Result<Vec<TantivyDocument>> {
    let spans = store.plan_batches::<SpanRow>(&table.spans.unpacked()?)?;
    let logs = store.plan_batches::<LogRow>(&table.logs.unpacked()?)?;
    let metrics = store.plan_batches::<MetricPoint>(&table.metrics.unpacked()?)?;
    let (encoded, blocks) = rayon::join(
        || -> Result<_, StoreError> {
            Ok((
                encode_planned::<SpanRow>(store, &spans)?,
                encode_planned::<LogRow>(store, &logs)?,
                encode_planned::<MetricPoint>(store, &metrics)?,
            ))
        },
        || -> Result<_, StoreError> {
            let mut docs = blocks_of_batches(fields, Signal::Traces, &spans)?;
            docs.extend(blocks_of_batches(fields, Signal::Logs, &logs)?);
            // The decoded points are kept: the one-minute points are computed from them.
            let (metric_docs, points) = metric_blocks(fields, &metrics)?;
            docs.extend(metric_docs);
            Ok((docs, points))
        },
    );
    let (spans, logs, metrics) = encoded?;
    let (mut docs, points) = blocks?;
    let minutes = downsample(&points);
    drop(points);
    let minute_files = store.plan(&minutes);
    let rollup_files = store.plan(rollups);
    let minute_files_encoded = encode_all(store, &minute_files)?;
    let rollup_files_encoded = encode_all(store, &rollup_files)?;
    docs.extend(blocks_of(&minute_files, |path, i, group| {
        let points: Vec<&MetricPoint> = group.iter().map(|m| &m.0).collect();
        block::metric_block(fields, Signal::MetricMinutes, path, i, &points)
    }));
    docs.extend(blocks_of(&rollup_files, |path, i, group| {
        block::rollup_block(fields, path, i, group)
    }));
    finish_all(store, spans).await?;
    finish_all(store, logs).await?;
    finish_all(store, metrics).await?;
    finish_all(store, minute_files_encoded).await?;
    finish_all(store, rollup_files_encoded).await?;
    Ok(docs)
}

fn encode_planned<T: StoredRow>(
    store: &Store,
    files: &[PlannedFile],
) -> Result<Vec<FileBuilder<T>>, StoreError> {
    files.iter().map(|f| store.encode_planned(f)).collect()
}

/// The block document of every row group of planned `files`, from its columns.
fn blocks_of_batches(
    fields: &crate::index::Fields,
    signal: Signal,
    files: &[PlannedFile],
) -> Result<Vec<TantivyDocument>, StoreError> {
    let mut docs = Vec::new();
    for f in files {
        for (i, group) in f.row_groups.iter().enumerate() {
            docs.push(block::block_of_batches(
                fields,
                signal,
                &f.path,
                i,
                std::slice::from_ref(group),
            )?);
        }
    }
    Ok(docs)
}

/// The block document of every row group of planned metric `files`, and every point decoded
/// on the way.
fn metric_blocks(
    fields: &crate::index::Fields,
    files: &[PlannedFile],
) -> Result<(Vec<TantivyDocument>, Vec<MetricPoint>), StoreError> {
    let mut docs = Vec::new();
    let mut points = Vec::new();
    for f in files {
        for (i, group) in f.row_groups.iter().enumerate() {
            let first = points.len();
            MetricPoint::from_batch(group, &mut |_| true, &mut points)?;
            let refs: Vec<&MetricPoint> = points[first..].iter().collect();
            docs.push(block::metric_block(
                fields,
                Signal::Metrics,
                &f.path,
                i,
                &refs,
            ));
        }
    }
    Ok((docs, points))
}

fn encode_all<T: StoredRow>(
    store: &Store,
    files: &[WrittenFile<'_, T>],
) -> Result<Vec<FileBuilder<T>>, StoreError> {
    files.iter().map(|f| store.encode(f)).collect()
}

async fn finish_all<T: StoredRow>(
    store: &Store,
    files: Vec<FileBuilder<T>>,
) -> Result<(), StoreError> {
    for file in files {
        store.finish_file(file).await?;
    }
    Ok(())
}

/// The block document of every row group of `files`.
fn blocks_of<T>(
    files: &[WrittenFile<'_, T>],
    block: impl Fn(&str, usize, &[&T]) -> TantivyDocument,
) -> Vec<TantivyDocument> {
    let mut docs = Vec::new();
    for f in files {
        for (i, group) in f.row_groups.iter().enumerate() {
            docs.push(block(&f.path, i, group));
        }
    }
    docs
}
