//! Compaction: the small Parquet files of one hour partition are merged into one larger file
//! (sorted, zstd, bloom filters, as every file is written), which queries open once instead
//! of many times.
//!
//! Crash-safe by order: the merged file is written first; then one index commit swaps the old
//! files' blocks for the new file's; then the old files are deleted. A crash before the commit
//! leaves an unreferenced new file, after it unreferenced old files — the next start deletes
//! either as leftovers, so no row is lost or doubled.

use std::collections::BTreeMap;

use tantivy::TantivyDocument;

use crate::index::{block, BlockIndex, Fields};
use crate::model::{LogRow, MetricPoint, Signal, SpanRow};
use crate::pipeline::LiveData;
use crate::rollup::metric_minutes::MinuteMetric;
use crate::rollup::RollupRow;
use crate::store::{Store, StoredRow};

/// A partition is compacted once it has at least this many files…
pub const MIN_FILES: usize = 4;
/// …merging files smaller than this (bigger files are already good enough)…
const SMALL_FILE_BYTES: u64 = 64 << 20;
/// …at most this many bytes of them into one file.
const MAX_MERGE_BYTES: u64 = 256 << 20;

/// What one pass merged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Compacted {
    pub partitions: usize,
    pub files_in: usize,
    pub files_out: usize,
}

/// Merges the small files of every partition that has enough of them. A partition still
/// being written may be compacted again later; that is harmless.
pub async fn compact(
    store: &Store,
    index: &BlockIndex,
    live: Option<&LiveData>,
) -> anyhow::Result<Compacted> {
    let mut partitions: BTreeMap<String, Vec<(String, u64)>> = BTreeMap::new();
    for (path, size) in store.list_files_with_sizes().await? {
        if size >= SMALL_FILE_BYTES {
            continue;
        }
        if let Some((partition, _)) = path.rsplit_once('/') {
            partitions
                .entry(partition.to_string())
                .or_default()
                .push((path, size));
        }
    }
    let mut done = Compacted::default();
    for (partition, mut files) in partitions {
        if files.len() < MIN_FILES {
            continue;
        }
        files.sort();
        let mut group = Vec::new();
        let mut bytes = 0;
        for (path, size) in files {
            if bytes + size > MAX_MERGE_BYTES && group.len() >= 2 {
                break;
            }
            bytes += size;
            group.push(path);
        }
        let folder = partition.split('/').next().unwrap_or("");
        let fields = index.fields().clone();
        let new_files = match folder {
            f if f == Signal::Traces.as_str() => {
                merge::<SpanRow>(store, &group, &fields, |f, p, i, r| {
                    block::span_block(f, p, i, r)
                })
                .await?
            }
            f if f == Signal::Logs.as_str() => {
                merge::<LogRow>(store, &group, &fields, |f, p, i, r| {
                    block::log_block(f, p, i, r)
                })
                .await?
            }
            f if f == Signal::Metrics.as_str() => {
                merge::<MetricPoint>(store, &group, &fields, |f, p, i, r| {
                    block::metric_block(f, Signal::Metrics, p, i, r)
                })
                .await?
            }
            f if f == Signal::MetricMinutes.as_str() => {
                merge::<MinuteMetric>(store, &group, &fields, |f, p, i, r| {
                    let points: Vec<&MetricPoint> = r.iter().map(|m| &m.0).collect();
                    block::metric_block(f, Signal::MetricMinutes, p, i, &points)
                })
                .await?
            }
            f if f == Signal::Rollups.as_str() => {
                merge::<RollupRow>(store, &group, &fields, |f, p, i, r| {
                    block::rollup_block(f, p, i, r)
                })
                .await?
            }
            _ => continue,
        };
        {
            let _guard = live.map(|l| l.write());
            index.replace_files(&group, new_files.1)?;
        }
        for old in &group {
            store.delete(old).await?;
        }
        tracing::info!(partition = %partition, files_in = group.len(), files_out = new_files.0, "compacted");
        done.partitions += 1;
        done.files_in += group.len();
        done.files_out += new_files.0;
    }
    Ok(done)
}

/// Reads every row of `files`, writes them again (sorted, in row groups), and returns the
/// number of files written and their block documents.
async fn merge<T: StoredRow>(
    store: &Store,
    files: &[String],
    fields: &Fields,
    block_of: impl Fn(&Fields, &str, usize, &[&T]) -> TantivyDocument,
) -> anyhow::Result<(usize, Vec<TantivyDocument>)> {
    let mut rows: Vec<T> = Vec::new();
    for path in files {
        let groups = store.row_group_count(path).await?;
        rows.extend(
            store
                .read::<T>(path, (0..groups).collect(), &mut |_| true)
                .await?,
        );
    }
    let written = store.write(&rows).await?;
    let mut docs = Vec::new();
    for file in &written {
        for (i, group) in file.row_groups.iter().enumerate() {
            docs.push(block_of(fields, &file.path, i, group));
        }
    }
    Ok((written.len(), docs))
}
