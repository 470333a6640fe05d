//! The flusher thread: frozen memtable → Parquet files → index commit → WAL segments deleted.

use std::path::PathBuf;
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::time::Duration;

use tantivy::TantivyDocument;
use tokio::runtime::Handle;

use super::live::{Frozen, LiveData};
use crate::index::{block, BlockIndex};
use crate::model::{MetricPoint, Rows, Signal};
use crate::rollup::metric_minutes::{downsample, MinuteMetric};
use crate::rollup::RollupRow;
use crate::store::Store;
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
    let rows = &frozen.rows;
    let minutes = downsample(&rows.metrics);
    let docs = rt.block_on(write_blocks(store, fields, rows, &minutes, &frozen.rollups))?;
    let blocks = docs.len();
    index.commit_blocks(docs, frozen.wal_seq)?;
    {
        // Swap memory for index under the write lock: readers see the rows exactly once.
        let mut inner = live.write();
        index.reload()?;
        inner.frozen.retain(|f| !Arc::ptr_eq(f, frozen));
        crate::telemetry::get()
            .frozen_memtables
            .set(inner.frozen.len() as i64);
    }
    crate::telemetry::get()
        .flush_seconds
        .observe(started.elapsed().as_secs_f64());
    Wal::delete_through(wal_dir, frozen.wal_seq)?;
    tracing::debug!(
        spans = rows.spans.len(),
        logs = rows.logs.len(),
        metrics = rows.metrics.len(),
        blocks,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "flushed"
    );
    Ok(())
}

/// Writes rows of every kind as Parquet files and returns the index block of each row group,
/// ready to commit. Shared by the flusher and by evidence snapshots.
pub async fn write_blocks(
    store: &Store,
    fields: &crate::index::Fields,
    rows: &Rows,
    minutes: &[MinuteMetric],
    rollups: &[RollupRow],
) -> anyhow::Result<Vec<TantivyDocument>> {
    let mut docs = Vec::new();
    for file in store.write(&rows.spans).await? {
        for (i, group) in file.row_groups.iter().enumerate() {
            docs.push(block::span_block(fields, &file.path, i, group));
        }
    }
    for file in store.write(&rows.logs).await? {
        for (i, group) in file.row_groups.iter().enumerate() {
            docs.push(block::log_block(fields, &file.path, i, group));
        }
    }
    for file in store.write(&rows.metrics).await? {
        for (i, group) in file.row_groups.iter().enumerate() {
            docs.push(block::metric_block(
                fields,
                Signal::Metrics,
                &file.path,
                i,
                group,
            ));
        }
    }
    for file in store.write(minutes).await? {
        for (i, group) in file.row_groups.iter().enumerate() {
            let points: Vec<&MetricPoint> = group.iter().map(|m| &m.0).collect();
            docs.push(block::metric_block(
                fields,
                Signal::MetricMinutes,
                &file.path,
                i,
                &points,
            ));
        }
    }
    for file in store.write(rollups).await? {
        for (i, group) in file.row_groups.iter().enumerate() {
            docs.push(block::rollup_block(fields, &file.path, i, group));
        }
    }
    Ok(docs)
}
