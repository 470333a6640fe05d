//! The flusher thread: frozen memtable → Parquet files → index commit → WAL segments deleted.

use std::path::PathBuf;
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::time::Duration;

use arrow::record_batch::RecordBatch;
use tantivy::schema::Value;
use tantivy::TantivyDocument;
use tokio::runtime::Handle;

use super::live::{Frozen, LiveData};
use super::memtable::Memtable;
use super::minute_points::downsample;
use crate::index::{block, AttributeValues, BlockIndex};
use crate::metastore::Catalog;
use crate::model::{LogRow, MetricPoint, Signal, SpanRow};
use crate::queue::Receipts;
use crate::rollup::metric_minutes::MinuteMetric;
use crate::rollup::RollupRow;
use crate::store::{BatchPlan, Store, StoreError, StoredRow, WrittenFile};
use crate::wal::Wal;

/// Pause before retrying a failed flush; the rows stay queryable in memory meanwhile.
const RETRY_DELAY: Duration = Duration::from_secs(1);

/// What happens once a flush's files are written: how the exports they hold stop being
/// the journal's business.
pub enum Settle {
    /// The single binary: WAL segments covered by the flush are deleted after the index
    /// commit.
    Wal(PathBuf),
    /// A cluster index node: the files and the queue messages they hold are registered in
    /// the metastore (one transaction), then the messages are acknowledged.
    Queue(QueueJournal),
}

/// A cluster index node's journal: the queue's messages, held until the metastore has the
/// files that hold them.
pub struct QueueJournal {
    pub catalog: Catalog,
    pub receipts: Receipts,
    /// The queue's stream, whose sequences the metastore records.
    pub stream: String,
    /// This node's name, recorded with the files it registers.
    pub node: String,
}

/// Flushes frozen memtables in order until the writer hangs up.
///
/// Each step is retried on its own until it works, so a step that succeeded is never done
/// twice: files written again would hold the same rows twice once both were registered.
/// A store or metastore that does not answer only delays the flush; the rows stay queryable
/// in memory and, past the memtable's cap, exports are refused as retryable.
pub(super) fn run(
    rx: Receiver<Arc<Frozen>>,
    live: Arc<LiveData>,
    store: Store,
    index: Arc<BlockIndex>,
    settle: Settle,
    rt: Handle,
) {
    for frozen in rx {
        let started = std::time::Instant::now();
        let fields = index.fields();
        let table = &frozen.table;
        let docs = retry("write the files", frozen.wal_seq, || {
            rt.block_on(write_blocks(&store, fields, table, &frozen.rollups))
        });
        if let Settle::Queue(queue) = &settle {
            let files = files_of(fields, &docs);
            retry(
                "register the files in the metastore",
                frozen.wal_seq,
                || {
                    Ok(rt.block_on(queue.catalog.register(
                        &queue.node,
                        &files,
                        &queue.stream,
                        &frozen.queue_seqs,
                    ))?)
                },
            );
        }
        let blocks = docs.len();
        retry("commit the index", frozen.wal_seq, || {
            publish(&frozen, &live, &index, docs.clone())
        });
        crate::telemetry::get()
            .flush_seconds
            .observe(started.elapsed().as_secs_f64());
        match &settle {
            Settle::Wal(wal_dir) => retry("delete flushed WAL segments", frozen.wal_seq, || {
                Ok(Wal::delete_through(wal_dir, frozen.wal_seq)?)
            }),
            Settle::Queue(queue) => rt.block_on(queue.receipts.settle(&frozen.queue_seqs)),
        }
        tracing::debug!(
            spans = table.spans.rows(),
            logs = table.logs.rows(),
            metrics = table.metrics.rows(),
            blocks,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "flushed"
        );
    }
}

/// Runs `step` until it succeeds, logging each failure.
fn retry<T>(what: &str, wal_seq: u64, mut step: impl FnMut() -> anyhow::Result<T>) -> T {
    loop {
        match step() {
            Ok(value) => return value,
            Err(e) => {
                tracing::error!(wal_seq, "flush could not {what}, retrying: {e:#}");
                std::thread::sleep(RETRY_DELAY);
            }
        }
    }
}

/// Commits the blocks and swaps them for the frozen memtable.
fn publish(
    frozen: &Arc<Frozen>,
    live: &LiveData,
    index: &BlockIndex,
    docs: Vec<TantivyDocument>,
) -> anyhow::Result<()> {
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
    Ok(())
}

/// The files the blocks point at, each once, with their signal.
fn files_of(fields: &crate::index::Fields, docs: &[TantivyDocument]) -> Vec<(String, Signal)> {
    let mut files: Vec<(String, Signal)> = Vec::new();
    for doc in docs {
        let text = |field| doc.get_first(field).and_then(|v| v.as_str());
        let (Some(path), Some(signal)) = (text(fields.path), text(fields.signal)) else {
            continue;
        };
        let Some(signal) = Signal::from_folder(signal) else {
            continue;
        };
        files.push((path.to_string(), signal));
    }
    // A file's blocks are consecutive.
    files.dedup();
    files
}

/// Writes a memtable (and the rollups of its minutes) as Parquet files and returns the
/// index block of each row group, ready to commit. Shared by the flusher and by evidence
/// snapshots.
///
/// Each signal's batches are planned into files with Arrow's kernels (only the sort keys are
/// copied; the one-minute metric points are computed from the memtable's metric columns
/// meanwhile); then each row group in turn is encoded (its columns in parallel) while its
/// block is built and the next row group is gathered (`rayon::join`). A file is stored (written and
/// fsynced) once its last row group is encoded. So a flush holds the unpacked memtable, two
/// row groups and one file's encoded bytes, never the memtable sorted into a second copy.
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
    // The one-minute points are computed from the memtable's batches while they are planned
    // (the batches' columns are shared, not copied).
    let points = table.metrics.unpacked()?;
    let (minutes, metrics) = rayon::join(
        || downsample(&points),
        || store.plan_batches::<MetricPoint>(points.clone()),
    );
    let (minutes, metrics) = (minutes?, metrics?);
    drop(points);
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

/// Encodes and stores every file of `plan`, one row group at a time: a group's rows are
/// encoded while `block` builds its index document (given the group's row positions in the
/// plan's batches, and the gathered rows) and the next group's rows are gathered, on the
/// rayon pool.
async fn write_plan<T: StoredRow>(
    store: &Store,
    plan: &BatchPlan,
    mut block: impl FnMut(&str, usize, &[(usize, usize)], &RecordBatch) -> Result<TantivyDocument, StoreError>
        + Send,
) -> Result<Vec<TantivyDocument>, StoreError> {
    let mut docs = Vec::new();
    for file in &plan.files {
        let mut builder = store.start_planned::<T>(file)?;
        let gather = |i: usize| file.row_groups.get(i).map(|rows| plan.row_group(rows));
        let mut next = gather(0).transpose()?;
        for (i, rows) in file.row_groups.iter().enumerate() {
            let Some(group) = next.take() else { break };
            // While this group is encoded and its block built, the next one is gathered.
            let ((written, doc), following) = rayon::join(
                || {
                    rayon::join(
                        || builder.write_batch(&group),
                        || block(&file.path, i, rows, &group),
                    )
                },
                || gather(i + 1).transpose(),
            );
            written?;
            docs.push(doc?);
            next = following?;
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
