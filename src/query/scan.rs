//! The scan layer every question reads through: the memtable and the row groups of the
//! blocks an index search names, one consistent snapshot, newest-first read plans, and what
//! to do with a file that is missing or corrupt.

use tantivy::query::Query;

use super::{QueryEngine, QueryError};
use crate::index::BlockRef;
use crate::pipeline::LiveRows;
use crate::store::{Prefilter, StoredRow};

impl QueryEngine {
    /// Reads row groups of one file. A file that cannot be decoded is corrupt: it is logged
    /// and reported to the quarantine task (a query never changes the store itself), and
    /// the query goes on with the rest of the data.
    pub(super) async fn read_file<T: StoredRow>(
        &self,
        path: &str,
        row_groups: Vec<usize>,
        prefilter: &Prefilter,
        keep: &mut (dyn FnMut(&T) -> bool + Send),
    ) -> Result<Vec<T>, QueryError> {
        let blocks = row_groups.len();
        let read = self
            .store
            .read_filtered::<T>(path, row_groups, prefilter, keep);
        self.read_or_report(path, blocks, read).await
    }

    /// Awaits one read of `blocks` row groups of file `path`; a missing file reads as
    /// nothing, a corrupt one is reported (see [`QueryEngine::read_file`]) and reads as
    /// nothing.
    pub(super) async fn read_or_report<R: Default>(
        &self,
        path: &str,
        blocks: usize,
        read: impl std::future::Future<Output = Result<R, crate::store::StoreError>>,
    ) -> Result<R, QueryError> {
        crate::telemetry::get().blocks_read.inc_by(blocks as u64);
        match read.await {
            Ok(rows) => Ok(rows),
            Err(e) if is_missing(&e) => {
                tracing::error!(
                    file = path,
                    "a file the index points at is missing; skipping it"
                );
                Ok(R::default())
            }
            Err(e) if e.is_corruption() => {
                tracing::error!(
                    file = path,
                    "corrupt Parquet file, reporting it for quarantine: {e}"
                );
                if let Some(reports) = &self.corrupt_files {
                    reports.report(path);
                }
                Ok(R::default())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// In-memory and stored rows (of the blocks matching `block_query`) that pass
    /// `prefilter` and `keep`, read from one consistent snapshot; refused once they pass the
    /// engine's row budget (checked after the memtables and after each file).
    pub(super) async fn rows<T: LiveRows>(
        &self,
        block_query: Box<dyn Query>,
        start: Option<i64>,
        end: Option<i64>,
        prefilter: Prefilter,
        keep: impl FnMut(&T) -> bool + Send,
    ) -> Result<Vec<T>, QueryError> {
        let (rows, _) = self
            .rows_thinned(block_query, start, end, prefilter, keep, None)
            .await?;
        Ok(rows)
    }

    /// [`QueryEngine::rows`], reading at most `max_blocks` of the stored blocks (evenly
    /// spread over those that match, so a sample covers the whole window) when given; the
    /// memtables are always read whole. Also returns how many stored blocks were read of
    /// how many matched.
    pub(super) async fn rows_thinned<T: LiveRows>(
        &self,
        block_query: Box<dyn Query>,
        start: Option<i64>,
        end: Option<i64>,
        prefilter: Prefilter,
        mut keep: impl FnMut(&T) -> bool + Send,
        max_blocks: Option<usize>,
    ) -> Result<(Vec<T>, BlocksRead), QueryError> {
        self.check_range(start, end)?;
        let (mut rows, searcher) = {
            let live = self.live.read();
            (
                T::scan_live(&live, &prefilter, &mut keep)?,
                self.index.searcher(),
            )
        };
        self.check_rows(rows.len())?;
        let mut blocks = self
            .index
            .search(&searcher, T::SIGNAL, block_query, start, end)?;
        let matched = blocks.len();
        if let Some(max) = max_blocks.filter(|m| *m > 0 && blocks.len() > *m) {
            let step = blocks.len() as f64 / max as f64;
            blocks = (0..max)
                .map(|i| blocks[(i as f64 * step) as usize].clone())
                .collect();
        }
        let read = BlocksRead {
            read: blocks.len(),
            matched,
        };
        for (path, groups) in group_by_file(&blocks) {
            let row_groups = groups.iter().map(|(rg, _)| *rg).collect();
            rows.extend(
                self.read_file::<T>(&path, row_groups, &prefilter, &mut keep)
                    .await?,
            );
            self.check_rows(rows.len())?;
        }
        Ok((rows, read))
    }
}

/// How many stored blocks a thinned scan read, of how many matched.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct BlocksRead {
    pub read: usize,
    pub matched: usize,
}

/// Where queries report the corrupt files they meet. The receiving end belongs to a
/// maintenance task (`crate::quarantine`) that moves each file aside and drops its blocks
/// from the index, so the read path never writes.
#[derive(Clone)]
pub struct CorruptFileReports(tokio::sync::mpsc::UnboundedSender<String>);

impl CorruptFileReports {
    /// A reporting handle for query engines and the receiver for the maintenance task.
    pub fn channel() -> (Self, tokio::sync::mpsc::UnboundedReceiver<String>) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        (Self(tx), rx)
    }

    /// Reports `path` as corrupt (also what a cluster query node does with a catalog file it
    /// cannot read).
    pub fn report(&self, path: &str) {
        if self.0.send(path.to_string()).is_err() {
            tracing::error!(
                file = path,
                "the quarantine task has stopped; the file stays"
            );
        }
    }
}

/// Whether a read failed because the file is not there (the Parquet reader reports the
/// object store's "not found" wrapped in its own error): that is not corruption.
pub(super) fn is_missing(e: &crate::store::StoreError) -> bool {
    use crate::store::StoreError;
    match e {
        StoreError::ObjectStore(object_store::Error::NotFound { .. }) => true,
        StoreError::Parquet(parquet::errors::ParquetError::External(inner)) => matches!(
            inner.downcast_ref::<object_store::Error>(),
            Some(object_store::Error::NotFound { .. })
        ),
        _ => false,
    }
}

/// Blocks grouped by file, keeping the order in which each file first appears.
pub(super) fn group_by_file(blocks: &[BlockRef]) -> Vec<(String, Vec<(usize, &BlockRef)>)> {
    let mut position: std::collections::HashMap<&str, usize> = Default::default();
    let mut order: Vec<(String, Vec<(usize, &BlockRef)>)> = Vec::new();
    for b in blocks {
        let i = *position.entry(b.path.as_str()).or_insert_with(|| {
            order.push((b.path.clone(), Vec::new()));
            order.len() - 1
        });
        order[i].1.push((b.row_group, b));
    }
    order
}

/// Row groups read together by a newest-first scan: a few of one file.
pub(super) struct BlockRead {
    pub(super) path: String,
    pub(super) row_groups: Vec<usize>,
    /// The newest time any of these row groups may hold.
    pub(super) newest: i64,
}

/// Most row groups in one read of a newest-first scan. Small enough that a scan stops soon
/// after it has its answer even inside one large compacted file; large enough that a long
/// scan is not one round trip per row group.
const ROW_GROUPS_PER_READ: usize = 4;

/// `blocks` ordered newest first (by their newest time) and cut into reads of row groups of
/// one file — one row group first (most searches need no more), then two, then at most
/// [`ROW_GROUPS_PER_READ`]; `newest` falls from read to read.
pub(super) fn newest_first_reads(mut blocks: Vec<BlockRef>) -> Vec<BlockRead> {
    blocks.sort_by_key(|b| std::cmp::Reverse(b.time_max));
    let mut reads: Vec<BlockRead> = Vec::new();
    for b in blocks {
        let cap = ROW_GROUPS_PER_READ.min(1 << reads.len().saturating_sub(1).min(8));
        match reads.last_mut() {
            Some(r) if r.path == b.path && r.row_groups.len() < cap => {
                r.row_groups.push(b.row_group);
            }
            _ => reads.push(BlockRead {
                path: b.path,
                row_groups: vec![b.row_group],
                newest: b.time_max,
            }),
        }
    }
    reads
}

/// The `k`-th largest of `values` (1-based); `i64::MIN` when there are fewer.
pub(super) fn kth_largest(values: impl Iterator<Item = i64>, k: usize) -> i64 {
    let mut v: Vec<i64> = values.collect();
    if k == 0 || v.len() < k {
        return i64::MIN;
    }
    let (_, kth, _) = v.select_nth_unstable_by(k - 1, |a, b| b.cmp(a));
    *kth
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(path: &str, row_group: usize, time_max: i64) -> BlockRef {
        BlockRef {
            path: path.into(),
            row_group,
            time_min: time_max - 10,
            time_max,
        }
    }

    #[test]
    fn newest_first_reads_start_small_and_stay_in_one_file() {
        // One compacted file of eight row groups (newest last) and one small newer file.
        let mut blocks: Vec<BlockRef> = (0..8).map(|i| block("old", i, 100 + i as i64)).collect();
        blocks.push(block("new", 0, 500));
        let reads = newest_first_reads(blocks);
        let shape: Vec<(&str, Vec<usize>, i64)> = reads
            .iter()
            .map(|r| (r.path.as_str(), r.row_groups.clone(), r.newest))
            .collect();
        assert_eq!(
            shape,
            [
                ("new", vec![0], 500),
                ("old", vec![7, 6], 107),
                ("old", vec![5, 4, 3, 2], 105),
                ("old", vec![1, 0], 101),
            ]
        );
    }

    #[test]
    fn kth_largest_counts_from_the_top() {
        assert_eq!(kth_largest([5, 1, 9, 7].into_iter(), 1), 9);
        assert_eq!(kth_largest([5, 1, 9, 7].into_iter(), 3), 5);
        assert_eq!(kth_largest([5, 1].into_iter(), 3), i64::MIN);
    }
}
