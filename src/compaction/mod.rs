//! Compaction: the small Parquet files of one hour partition are merged into larger files
//! (sorted, zstd, as every file is written), which queries open once instead
//! of many times.
//!
//! Every file is already sorted by its row type's order, so a merge is a k-way merge that
//! holds one row group per input file and one output row group in memory — not every row of
//! the group (that took 4.5 GB for 150 MB of Parquet). At most [`MAX_MERGE_FILES`] files go
//! into one merge, which bounds that memory. Spans, logs and metric points are merged as the
//! Arrow batches they are read as ([`batch_merge`]); rollup rows, which merging sums, and
//! files of an older schema go through rows ([`row_merge`]). The merged file is streamed to
//! the store as it is written, never held whole.
//!
//! Crash-safe by order: the merged file is written first; then one index commit swaps the old
//! files' blocks for the new file's; then the old files are deleted. A crash before the commit
//! leaves an unreferenced new file, after it unreferenced old files — the next start deletes
//! either as leftovers, so no row is lost or doubled.
//!
//! The old files are deleted only after a grace period ([`Retired`]): a query that took its
//! index snapshot just before the swap still reads them. Deleting them at once made such a
//! query skip a whole file's rows (the crash harness saw it as acknowledged records lost).

mod batch_merge;
mod row_merge;

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use tantivy::schema::Value;
use tantivy::TantivyDocument;

use crate::index::{BlockIndex, Fields};
use crate::metastore::Catalog;
use crate::model::{LogRow, MetricPoint, Signal, SpanRow};
use crate::rollup::metric_minutes::MinuteMetric;
use crate::rollup::RollupRow;
use crate::store::{Partition, Store};

/// A partition is compacted once it has at least this many files…
pub const MIN_FILES: usize = 4;
/// …merging files smaller than this (bigger files are already good enough)…
const SMALL_FILE_BYTES: u64 = 64 << 20;
/// …at most this many bytes of them into one file…
const MAX_MERGE_BYTES: u64 = 256 << 20;
/// …and at most this many files (each holds one decoded row group in memory during the merge).
pub const MAX_MERGE_FILES: usize = 8;
/// Rollup files are a few hundred rows each, so one merge takes many more of them.
const MAX_ROLLUP_MERGE_FILES: usize = 64;
/// How often the server merges rollup files, apart from the other signals' (slower) passes.
/// Every flush writes the rollups of the minutes it saw into a file of their own, so a busy
/// hour collects hundreds of them, and the overview and the service map read them all; merged,
/// the rows of one cell are summed into one ([`StoredRow::fold`]).
pub const ROLLUP_EVERY: Duration = Duration::from_secs(30);

/// Which signals' files a pass merges. The server runs two passes on their own cadences;
/// they must never take the same files (a file merged twice would count twice).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every signal: `sightline compact`, offline.
    All,
    /// Rollup files only.
    Rollups,
    /// Everything but rollup files.
    Records,
}

impl Scope {
    fn covers(self, signal: Signal) -> bool {
        match self {
            Scope::All => true,
            Scope::Rollups => signal == Signal::Rollups,
            Scope::Records => signal != Signal::Rollups,
        }
    }
}

/// What one pass merged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Compacted {
    /// Hour partitions with at least one merge.
    pub partitions: usize,
    pub files_in: usize,
    pub files_out: usize,
}

/// Files a merge swapped out of the index, deleted once no query can still be reading them.
#[derive(Debug, Default)]
pub struct Retired {
    /// How long a swapped-out file stays on disk (zero: deleted at the end of the pass).
    grace: Duration,
    files: Vec<(String, Instant)>,
}

impl Retired {
    /// Keeps swapped-out files for `grace`: longer than any query may run (the request time
    /// limit) on a server; zero offline, where nothing else reads.
    pub fn with_grace(grace: Duration) -> Self {
        Self {
            grace,
            files: Vec::new(),
        }
    }

    /// Deletes the files retired at least `grace` ago (a file already gone is fine: the
    /// next start removes unreferenced files too).
    async fn sweep(&mut self, store: &Store) -> anyhow::Result<()> {
        let grace = self.grace;
        let (due, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut self.files)
            .into_iter()
            .partition(|(_, at)| at.elapsed() >= grace);
        self.files = kept;
        for (path, _) in due {
            match store.delete(&path).await {
                Ok(()) => {}
                Err(crate::store::StoreError::ObjectStore(object_store::Error::NotFound {
                    ..
                })) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    fn paths(&self) -> HashSet<&str> {
        self.files.iter().map(|(p, _)| p.as_str()).collect()
    }
}

/// Merges the small files of every partition in `scope` that has enough of them. A partition
/// still being written may be compacted again later; that is harmless. Swapped-out files go
/// to `retired` and are deleted once its grace period is over.
pub async fn compact(
    store: &Store,
    index: &BlockIndex,
    retired: &mut Retired,
    scope: Scope,
) -> anyhow::Result<Compacted> {
    retired.sweep(store).await?;
    let waiting = retired.paths();
    let partitions = small_files(store.list_files_with_sizes().await?, &waiting, scope);
    let mut done = Compacted::default();
    let mut last: Option<Partition> = None;
    for (partition, signal, group) in merges(partitions) {
        done.partitions += usize::from(last.as_ref() != Some(&partition));
        let docs = merge_files(store, index.fields(), signal, &partition, &group).await?;
        // No live-data lock: a query sees the old files or the new one, both whole, and
        // acknowledgements never wait on this commit.
        index.replace_files(&group, docs)?;
        tracing::info!(partition = %partition, files_in = group.len(), "compacted");
        done.files_in += group.len();
        done.files_out += 1;
        let now = Instant::now();
        retired.files.extend(group.into_iter().map(|p| (p, now)));
        last = Some(partition);
    }
    retired.sweep(store).await?;
    Ok(done)
}

/// The small files of `files` (path, bytes) in `scope`, by hour partition, but for `skip`.
fn small_files(
    files: Vec<(String, u64)>,
    skip: &HashSet<&str>,
    scope: Scope,
) -> BTreeMap<Partition, (Signal, Vec<(String, u64)>)> {
    let mut partitions: BTreeMap<Partition, (Signal, Vec<(String, u64)>)> = BTreeMap::new();
    for (path, size) in files {
        if size >= SMALL_FILE_BYTES || skip.contains(path.as_str()) {
            continue;
        }
        let Some(partition) = Partition::of_path(&path) else {
            continue;
        };
        if let Some(signal) = Signal::from_folder(&partition.folder).filter(|s| scope.covers(*s)) {
            partitions
                .entry(partition)
                .or_insert_with(|| (signal, Vec::new()))
                .1
                .push((path, size));
        }
    }
    partitions
}

/// The merges of `partitions`: groups of files of partitions with enough of them.
fn merges(
    partitions: BTreeMap<Partition, (Signal, Vec<(String, u64)>)>,
) -> Vec<(Partition, Signal, Vec<String>)> {
    let mut out = Vec::new();
    for (partition, (signal, mut files)) in partitions {
        if files.len() < MIN_FILES {
            continue;
        }
        files.sort();
        let max_files = if signal == Signal::Rollups {
            MAX_ROLLUP_MERGE_FILES
        } else {
            MAX_MERGE_FILES
        };
        for group in merge_groups(files, max_files) {
            out.push((partition.clone(), signal, group));
        }
    }
    out
}

/// Cuts a partition's small files (sorted by name) into merges of at least two files, at most
/// `max_files` and about [`MAX_MERGE_BYTES`] each.
fn merge_groups(files: Vec<(String, u64)>, max_files: usize) -> Vec<Vec<String>> {
    let mut groups: Vec<Vec<String>> = Vec::new();
    let mut group = Vec::new();
    let mut bytes = 0;
    for (path, size) in files {
        if !group.is_empty() && (bytes + size > MAX_MERGE_BYTES || group.len() >= max_files) {
            groups.push(std::mem::take(&mut group));
            bytes = 0;
        }
        bytes += size;
        group.push(path);
    }
    groups.push(group);
    groups.retain(|g| g.len() >= 2);
    groups
}

/// Merges one group of files of `partition` (of `signal`) into one new file; returns its
/// block documents (the caller swaps them in for the old files').
async fn merge_files(
    store: &Store,
    fields: &Fields,
    signal: Signal,
    partition: &Partition,
    group: &[String],
) -> anyhow::Result<Vec<TantivyDocument>> {
    Ok(match signal {
        Signal::Traces => batch_merge::merge::<SpanRow>(store, partition, group, fields).await?,
        Signal::Logs => batch_merge::merge::<LogRow>(store, partition, group, fields).await?,
        Signal::Metrics => {
            batch_merge::merge::<MetricPoint>(store, partition, group, fields).await?
        }
        Signal::MetricMinutes => {
            row_merge::merge::<MinuteMetric>(store, partition, group, fields).await?
        }
        Signal::Rollups => row_merge::merge::<RollupRow>(store, partition, group, fields).await?,
    })
}

/// Cluster compaction, run by the node holding the maintenance lease: merges the small files
/// the catalog lists (never a file still registering), then swaps each merged file in for
/// its inputs in the catalog in one transaction — query nodes apply the swap in one index
/// commit — and leaves the inputs to the removals feed, whose files leave the bucket after
/// the grace time. A merge whose inputs retention took meanwhile is dropped. `node` names
/// this node in the catalog.
pub async fn compact_catalog(
    catalog: &Catalog,
    store: &Store,
    fields: &Fields,
    node: &str,
    scope: Scope,
) -> anyhow::Result<Compacted> {
    let files = catalog
        .only_registered(store.list_files_with_sizes().await?)
        .await?;
    let mut done = Compacted::default();
    let mut last: Option<Partition> = None;
    for (partition, signal, group) in merges(small_files(files, &HashSet::new(), scope)) {
        let docs = merge_files(store, fields, signal, &partition, &group).await?;
        let new = docs
            .first()
            .and_then(|d| d.get_first(fields.path))
            .and_then(|v| v.as_str())
            .map(str::to_string)
            .ok_or_else(|| anyhow::anyhow!("a merge of {partition} wrote no block"))?;
        if !catalog.swap(node, &new, signal, &group).await? {
            tracing::info!(partition = %partition, "inputs of a merge left the catalog meanwhile; dropping it");
            store.delete(&new).await?;
            continue;
        }
        tracing::info!(partition = %partition, files_in = group.len(), file = %new, "compacted in the catalog");
        done.partitions += usize::from(last.as_ref() != Some(&partition));
        done.files_in += group.len();
        done.files_out += 1;
        last = Some(partition);
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_are_bounded_in_files_and_bytes() {
        let mb = 1 << 20;
        let files: Vec<(String, u64)> = (0..20).map(|i| (format!("f{i:02}"), mb)).collect();
        let sizes: Vec<usize> = merge_groups(files, MAX_MERGE_FILES)
            .iter()
            .map(Vec::len)
            .collect();
        assert_eq!(sizes, [8, 8, 4]);
        let files: Vec<(String, u64)> = (0..20).map(|i| (format!("f{i:02}"), mb)).collect();
        assert_eq!(merge_groups(files, MAX_ROLLUP_MERGE_FILES).len(), 1);

        let files = vec![
            ("a".to_string(), 200 * mb),
            ("b".to_string(), 100 * mb),
            ("c".to_string(), mb),
            ("d".to_string(), 250 * mb),
        ];
        // A file alone in its merge stays as it is.
        assert_eq!(
            merge_groups(files, MAX_MERGE_FILES),
            [vec!["b".to_string(), "c".to_string()]]
        );
    }
}
