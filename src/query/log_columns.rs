//! Questions about log records answered from a few of their columns, without decoding the
//! records: counts over time for the log histogram and Loki's `count_over_time`/`rate`.
//!
//! A record is decoded (body, attribute JSON, resource) only when a query must show it, and
//! a block only when the index cannot count it: a word's records per block (the word's term
//! frequency) and a block's records per stream are in the index, so a block that lies within
//! one bucket of the count adds up without being read. Only the blocks that straddle a
//! bucket boundary, and the memtable, are read — just the time and stream columns, with the
//! query's column checks applied by the Parquet reader. Only queries whose every condition
//! has an exact column check take these paths (see `LogFilter::exact_prefilter`); the others
//! keep the row-by-row path.

use arrow::array::AsArray;
use arrow::datatypes::TimestampNanosecondType;
use arrow::record_batch::RecordBatch;

use super::log_query::LogFilter;
use super::scan::group_by_file;
use super::{QueryEngine, QueryError};
use crate::index::{BlockRef, StreamCount};
use crate::model::Severity;
use crate::store::Prefilter;

/// Most blocks one count may read (≈ 400 M records at the default row group size): a
/// count over more is refused before any is read.
const MAX_COUNTED_BLOCKS: usize = 25_000;

impl QueryEngine {
    /// Counts the log records in `[start, end]` that match `filter` and pass `checks`, feeding
    /// `counted` whole blocks by stream and the rest as batches of the named `columns`.
    ///
    /// A block wholly inside the window whose first and last record fall in one bucket
    /// (`same_bucket`), and whose every check is on a stream column, is counted from the
    /// index's records per stream ([`Counted::Block`], one call per passing stream) without
    /// being read. The memtable and every other block are read ([`Counted::Rows`]: the
    /// records that pass, memory first, then stored blocks, in no particular order).
    ///
    /// Returns `false` without counting anything when `filter` has a condition without an
    /// exact column check: the caller then reads records.
    pub async fn count_log_streams(
        &self,
        filter: &LogFilter,
        checks: Prefilter,
        window: (i64, i64),
        columns: &[&str],
        same_bucket: impl Fn(i64, i64) -> bool,
        mut counted: impl FnMut(Counted<'_>) + Send,
    ) -> Result<bool, QueryError> {
        let (start, end) = window;
        self.check_range(Some(start), Some(end))?;
        let timed = checks
            .clone()
            .at_least("time", Some(start))
            .at_most("time", Some(end));
        let (Some(prefilter), Some(per_stream)) = (
            filter.exact_prefilter(timed),
            filter.exact_prefilter(checks),
        ) else {
            return Ok(false);
        };
        let block_query = filter.block_query(&self.index);
        let searcher = {
            let live = self.live.read();
            for batch in live.log_columns(&prefilter, columns)? {
                counted(Counted::Rows(&batch));
            }
            self.index.searcher()
        };
        let mut straddling = Vec::new();
        for (block, streams) in
            self.index
                .search_with_streams(&searcher, block_query, start, end)?
        {
            let inside = block.time_min >= start && block.time_max <= end;
            let verdicts: Option<Vec<bool>> = streams
                .as_deref()
                .filter(|_| inside && same_bucket(block.time_min, block.time_max))
                .and_then(|streams| {
                    streams
                        .iter()
                        .map(|s| per_stream.verdict(|c| s.value_of(c)))
                        .collect()
                });
            match (verdicts, streams) {
                (Some(verdicts), Some(streams)) => {
                    for (stream, _) in streams.iter().zip(verdicts).filter(|(_, v)| *v) {
                        counted(Counted::Block {
                            stream,
                            time: block.time_min,
                        });
                    }
                }
                _ => straddling.push(block),
            }
        }
        if straddling.len() > MAX_COUNTED_BLOCKS {
            return Err(QueryError::TooLarge(format!(
                "counting these logs would read {} blocks (at most {MAX_COUNTED_BLOCKS}); narrow the time range or the query",
                straddling.len()
            )));
        }
        self.read_block_columns(&straddling, &prefilter, columns, |batch| {
            counted(Counted::Rows(batch))
        })
        .await?;
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
        self.read_block_columns(&straddling, &prefilter, &["time"], |batch| {
            for_each_time(batch, |t| count(t, 1))
        })
        .await
    }

    /// Feeds `visit` the named `columns` of the records of `blocks` that pass `prefilter`,
    /// file by file: the blocks a count could not take from the index.
    async fn read_block_columns(
        &self,
        blocks: &[BlockRef],
        prefilter: &Prefilter,
        columns: &[&str],
        mut visit: impl FnMut(&RecordBatch) + Send,
    ) -> Result<(), QueryError> {
        for (path, groups) in group_by_file(blocks) {
            let row_groups: Vec<usize> = groups.iter().map(|(rg, _)| *rg).collect();
            let read = self
                .store
                .read_columns(&path, row_groups.clone(), prefilter, columns);
            for batch in self.read_or_report(&path, row_groups.len(), read).await? {
                visit(&batch);
            }
        }
        Ok(())
    }
}

/// Records counted by [`QueryEngine::count_log_streams`].
pub enum Counted<'a> {
    /// `stream.records` records of one stream of a block, all at about `time` (within one
    /// bucket of the caller's).
    Block { stream: &'a StreamCount, time: i64 },
    /// Records read from the memtable or a block, one per row, in the columns asked for.
    Rows(&'a RecordBatch),
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

/// Calls `f` with the time and the level (read from the severity text, as log streams hold
/// it) of each row of `batch`.
pub(super) fn for_each_time_and_level(batch: &RecordBatch, mut f: impl FnMut(i64, Severity)) {
    use arrow::array::Array;
    let times = batch
        .column_by_name("time")
        .and_then(|c| c.as_primitive_opt::<TimestampNanosecondType>());
    let texts = batch
        .column_by_name("severity_text")
        .and_then(|c| c.as_string_opt::<i32>());
    for (i, &t) in times
        .into_iter()
        .flat_map(|a| a.values().iter())
        .enumerate()
    {
        let text = texts.filter(|a| !a.is_null(i)).map(|a| a.value(i));
        f(t, level_of_text(text.unwrap_or("")));
    }
}

/// The level of a record's severity text (`WARNING` → Warn); unspecified when it names none.
pub(super) fn level_of_text(text: &str) -> Severity {
    Severity::parse(text.trim()).unwrap_or(Severity::Unspecified)
}
