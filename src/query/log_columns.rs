//! Questions about log records answered from a few of their columns, without decoding the
//! records: counts over time for the log histogram and Loki's `count_over_time`/`rate`.
//!
//! A record is decoded (body, attribute JSON, resource) only when a query must show it.
//! Counting needs its time and, for Loki's series, its stream labels: the reader fetches
//! just those columns of the candidate blocks (and of the memtable), with the query's
//! column checks applied by the Parquet reader. Only queries whose every condition has an
//! exact column check take this path (see `LogFilter::exact_prefilter`); the others keep
//! the row-by-row path.

use arrow::array::AsArray;
use arrow::datatypes::TimestampNanosecondType;
use arrow::record_batch::RecordBatch;

use super::log_query::LogFilter;
use super::scan::group_by_file;
use super::{QueryEngine, QueryError};
use crate::model::Signal;
use crate::store::Prefilter;

/// Most blocks one count may read (≈ 400 M records at the default row group size): a
/// count over more is refused before any is read.
const MAX_COUNTED_BLOCKS: usize = 25_000;

impl QueryEngine {
    /// Feeds `visit` the named `columns` of every log record in `[start, end]` that matches
    /// `filter` and passes `checks`, batch by batch (memory first, then stored blocks, in no
    /// particular order). Returns `false` without reading anything when `filter` has a
    /// condition without an exact column check: the caller then reads records.
    pub async fn visit_log_columns(
        &self,
        filter: &LogFilter,
        checks: Prefilter,
        start: i64,
        end: i64,
        columns: &[&str],
        mut visit: impl FnMut(&RecordBatch) + Send,
    ) -> Result<bool, QueryError> {
        self.check_range(Some(start), Some(end))?;
        let base = checks
            .at_least("time", Some(start))
            .at_most("time", Some(end));
        let Some(prefilter) = filter.exact_prefilter(base) else {
            return Ok(false);
        };
        let block_query = filter.block_query(&self.index);
        let searcher = {
            let live = self.live.read();
            for batch in live.log_columns(&prefilter, columns)? {
                visit(&batch);
            }
            self.index.searcher()
        };
        let blocks =
            self.index
                .search(&searcher, Signal::Logs, block_query, Some(start), Some(end))?;
        if blocks.len() > MAX_COUNTED_BLOCKS {
            return Err(QueryError::TooLarge(format!(
                "counting these logs would read {} blocks (at most {MAX_COUNTED_BLOCKS}); narrow the time range or the query",
                blocks.len()
            )));
        }
        for (path, groups) in group_by_file(&blocks) {
            let row_groups: Vec<usize> = groups.iter().map(|(rg, _)| *rg).collect();
            let read = self
                .store
                .read_columns(&path, row_groups.clone(), &prefilter, columns);
            for batch in self.read_or_report(&path, row_groups.len(), read).await? {
                visit(&batch);
            }
        }
        Ok(true)
    }

    /// Counts the records in `[start, end]` whose bodies hold `word` (an indexed word; the
    /// query `filter` is that word alone), calling `count(time, n)` for `n` records at about
    /// `time`. A block wholly inside the window whose first and last record fall in one
    /// bucket (`same_bucket`) is counted from the index (the word's record count per block)
    /// without being read; only the blocks that straddle a bucket boundary or the window's
    /// edge, and the memtable, are read (their time and body columns).
    pub async fn count_word(
        &self,
        filter: &LogFilter,
        word: &str,
        start: i64,
        end: i64,
        same_bucket: impl Fn(i64, i64) -> bool,
        mut count: impl FnMut(i64, u64) + Send,
    ) -> Result<(), QueryError> {
        self.check_range(Some(start), Some(end))?;
        let base = Prefilter::none()
            .at_least("time", Some(start))
            .at_most("time", Some(end));
        let prefilter = filter.prefilter(base);
        let searcher = {
            let live = self.live.read();
            for batch in live.log_columns(&prefilter, &["time"])? {
                for_each_time(&batch, |t| count(t, 1));
            }
            self.index.searcher()
        };
        let mut straddling = Vec::new();
        for (block, records) in self.index.body_word_counts(&searcher, word, start, end)? {
            let inside = block.time_min >= start && block.time_max <= end;
            if inside && same_bucket(block.time_min, block.time_max) {
                count(block.time_min, u64::from(records));
            } else {
                straddling.push(block);
            }
        }
        for (path, groups) in group_by_file(&straddling) {
            let row_groups: Vec<usize> = groups.iter().map(|(rg, _)| *rg).collect();
            let read = self
                .store
                .read_columns(&path, row_groups.clone(), &prefilter, &["time"]);
            for batch in self.read_or_report(&path, row_groups.len(), read).await? {
                for_each_time(&batch, |t| count(t, 1));
            }
        }
        Ok(())
    }
}

/// Calls `f` with each value of `batch`'s `time` column (none if it has no such column).
pub(super) fn for_each_time(batch: &RecordBatch, mut f: impl FnMut(i64)) {
    let times = batch
        .column_by_name("time")
        .and_then(|c| c.as_primitive_opt::<TimestampNanosecondType>());
    for &t in times.into_iter().flat_map(|a| a.values().iter()) {
        f(t);
    }
}
