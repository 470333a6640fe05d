//! Log search newest first with page cursors, and the log histogram.

use serde::Serialize;

use super::buckets::Buckets;
use super::log_columns::{for_each_time_and_level, level_of_text, Counted};
use super::scan::newest_first_reads;
use super::{log_query, LogFilter, QueryEngine, QueryError, RowMatcher, MAX_LOG_LIMIT};
use crate::model::{LogRow, Severity, Signal};
use crate::pipeline::LiveRows;
use crate::store::Prefilter;

/// Where the next page of a log search starts: records at or before `time`, skipping the
/// first `skip` records stamped exactly `time` (they were on earlier pages). Stays correct
/// while new (newer) records arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogCursor {
    pub time: i64,
    pub skip: usize,
}

impl LogCursor {
    /// `time.skip`, as it travels in URLs.
    pub fn encode(&self) -> String {
        format!("{}.{}", self.time, self.skip)
    }

    /// Inverse of [`LogCursor::encode`].
    pub fn parse(text: &str) -> Result<LogCursor, QueryError> {
        let (t, s) = text.split_once('.').unwrap_or((text, "0"));
        match (t.parse(), s.parse()) {
            (Ok(time), Ok(skip)) => Ok(LogCursor { time, skip }),
            _ => Err(QueryError::BadRequest(format!(
                "invalid page cursor {text:?}"
            ))),
        }
    }
}

/// Matching log records per time bucket.
#[derive(Debug, Clone, Serialize)]
pub struct LogHistogram {
    pub start_unix_nano: i64,
    pub bucket_nano: i64,
    pub counts: Vec<u64>,
    pub total: u64,
    /// The same counts split by level (read from the severity text), the levels present
    /// only, lowest first; `None` when the query is one indexed word, whose counts come from
    /// the index's per-block word counts, which know no level.
    pub levels: Option<Vec<LevelCounts>>,
}

/// One level's share of a histogram.
#[derive(Debug, Clone, Serialize)]
pub struct LevelCounts {
    /// `ERROR`, `WARN`, … or `UNSPECIFIED`.
    pub level: &'static str,
    pub counts: Vec<u64>,
}

/// Per-level counts of a histogram under construction, indexed by level.
struct ByLevel(Vec<[u64; 7]>);

impl ByLevel {
    fn add(&mut self, slot: usize, level: Severity, n: u64) {
        if let Some(counts) = self.0.get_mut(slot) {
            counts[level as usize] += n;
        }
    }

    fn finish(self) -> Vec<LevelCounts> {
        Severity::ALL
            .iter()
            .map(|level| LevelCounts {
                level: level.name(),
                counts: self.0.iter().map(|c| c[*level as usize]).collect(),
            })
            .filter(|l| l.counts.iter().any(|c| *c > 0))
            .collect()
    }
}

/// Parameters of a log search: its query as text (`LogSearch`) or parsed already
/// (`LogSearch<LogFilter>`, for callers that build the filter themselves, like the Loki API).
#[derive(Debug, Clone, Default)]
pub struct LogSearch<Q = String> {
    pub query: Q,
    pub start: Option<i64>,
    pub end: Option<i64>,
    pub limit: usize,
    /// Continue after an earlier page.
    pub before: Option<LogCursor>,
}

/// Matching log records, newest first.
#[derive(Debug, Clone, Serialize)]
pub struct LogSearchResult {
    pub logs: Vec<LogRow>,
    /// True when more records matched than `limit`.
    pub truncated: bool,
    /// Cursor of the next page (`before=`), when `truncated`.
    pub next_cursor: Option<String>,
    /// Body words of the query, for highlighting.
    pub highlight: Vec<String>,
    /// How much the search read to answer: a query the index cannot narrow (a regular
    /// expression or `NOT` alone) reads every block of its window, and says so here.
    pub scanned: ScanReport,
}

/// What one log search read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ScanReport {
    /// Stored row groups read (each a block of the index).
    pub blocks_read: usize,
    /// Records checked against the whole query, from memory and from those blocks (the
    /// query's column checks — service, words, ids, a regex — skip the others undecoded).
    pub records_examined: u64,
}

impl QueryEngine {
    /// Log records matching a query, newest first, one page at a time.
    pub async fn search_logs(&self, search: &LogSearch) -> Result<LogSearchResult, QueryError> {
        let filter = log_query::parse(&search.query)?;
        self.search_logs_matching(&LogSearch {
            query: filter,
            start: search.start,
            end: search.end,
            limit: search.limit,
            before: search.before,
        })
        .await
    }

    /// [`QueryEngine::search_logs`] with the query parsed already.
    pub async fn search_logs_matching(
        &self,
        search: &LogSearch<LogFilter>,
    ) -> Result<LogSearchResult, QueryError> {
        let filter = &search.query;
        let highlight = filter.highlight_tokens();
        let limit = search.limit.clamp(1, MAX_LOG_LIMIT);
        let skip = search.before.map_or(0, |c| c.skip);
        let end = match (search.end, search.before) {
            (Some(e), Some(c)) => Some(e.min(c.time)),
            (e, c) => e.or(c.map(|c| c.time)),
        };
        let wanted = limit + skip;
        let mut logs = Vec::new();
        let scanned = self
            .visit_logs(filter, search.start, end, |batch, next_block_newest| {
                logs.extend(batch);
                // Blocks come newest first: once `wanted` rows are newer than everything left,
                // nothing older can enter the page.
                !(logs.len() > wanted && kth_newest(&mut logs, wanted) > next_block_newest)
            })
            .await?;
        sort_newest_first(&mut logs);
        if let Some(c) = search.before {
            let mut skipped = 0;
            logs.retain(|l| {
                if l.time_unix_nano == c.time && skipped < c.skip {
                    skipped += 1;
                    false
                } else {
                    true
                }
            });
        }
        let truncated = logs.len() > limit;
        logs.truncate(limit);
        let next_cursor = match logs.last() {
            Some(last) if truncated => {
                let same = logs
                    .iter()
                    .filter(|l| l.time_unix_nano == last.time_unix_nano)
                    .count();
                let carried = search
                    .before
                    .filter(|c| c.time == last.time_unix_nano)
                    .map_or(0, |c| c.skip);
                Some(
                    LogCursor {
                        time: last.time_unix_nano,
                        skip: same + carried,
                    }
                    .encode(),
                )
            }
            _ => None,
        };
        Ok(LogSearchResult {
            logs,
            truncated,
            next_cursor,
            highlight,
            scanned,
        })
    }

    /// Counts of records matching a query around `[start, end]`, in about `buckets`
    /// round-width buckets aligned to multiples of their width ([`Buckets`]). Every bucket is
    /// counted whole, the first from its boundary at or before `start` (as Grafana aligns a
    /// range query to its step): a bucket then holds whole blocks, whose counts the index
    /// keeps, and reads nothing.
    pub async fn log_histogram(
        &self,
        query: &str,
        start: i64,
        end: i64,
        buckets: usize,
    ) -> Result<LogHistogram, QueryError> {
        let filter = log_query::parse(query)?;
        let slots = Buckets::covering(start, end, buckets.clamp(1, 1000));
        let (start, end) = (
            slots.first,
            slots.first + slots.count as i64 * slots.width - 1,
        );
        let mut counts = vec![0u64; slots.count];
        let mut by_level = ByLevel(vec![[0; 7]; slots.count]);
        let same_bucket = |a: i64, b: i64| slots.of(a) == slots.of(b);
        let split = filter.single_indexed_word().is_none();
        if let Some(word) = filter.single_indexed_word() {
            // One word: from the index's per-block word counts.
            self.count_word(&filter, word, start, end, same_bucket, |t, n| {
                counts[slots.of(t)] += n;
            })
            .await?;
        } else {
            // From the per-block stream counts and the time column where the query allows,
            // else record by record.
            let counted = self
                .count_log_streams(
                    &filter,
                    Prefilter::none(),
                    (start, end),
                    &["time", "severity_text"],
                    same_bucket,
                    |counted| match counted {
                        Counted::Block { stream, time } => {
                            let level =
                                level_of_text(stream.value_of("severity_text").unwrap_or(""));
                            let n = u64::from(stream.records);
                            counts[slots.of(time)] += n;
                            by_level.add(slots.of(time), level, n);
                        }
                        Counted::Rows(batch) => for_each_time_and_level(batch, |t, level| {
                            counts[slots.of(t)] += 1;
                            by_level.add(slots.of(t), level, 1);
                        }),
                    },
                )
                .await?;
            if !counted {
                self.visit_logs(&filter, Some(start), Some(end), |batch, _| {
                    for l in batch {
                        counts[slots.of(l.time_unix_nano)] += 1;
                        by_level.add(
                            slots.of(l.time_unix_nano),
                            level_of_text(&l.severity_text),
                            1,
                        );
                    }
                    true
                })
                .await?;
            }
        }
        let total = counts.iter().sum();
        Ok(LogHistogram {
            start_unix_nano: slots.first,
            bucket_nano: slots.width,
            counts,
            total,
            levels: split.then(|| by_level.finish()),
        })
    }

    /// Feeds every log record matching `filter` in `[start, end]` to `visit`: first the
    /// in-memory ones, then block by block, newest block first. `visit` gets the time of
    /// the newest record any later block may hold, and returns false to stop. Returns how
    /// much was read.
    pub(super) async fn visit_logs(
        &self,
        filter: &LogFilter,
        start: Option<i64>,
        end: Option<i64>,
        mut visit: impl FnMut(Vec<LogRow>, i64) -> bool + Send,
    ) -> Result<ScanReport, QueryError> {
        self.check_range(start, end)?;
        let in_range = move |t: i64| start.is_none_or(|s| t >= s) && end.is_none_or(|e| t <= e);
        let block_query = filter.block_query(&self.index);
        let mut matcher = RowMatcher::new(filter.clone());
        let prefilter = filter.prefilter(
            Prefilter::none()
                .at_least("time", start)
                .at_most("time", end),
        );
        let mut report = ScanReport::default();
        let (live_rows, searcher) = {
            let live = self.live.read();
            let rows = LogRow::scan_live(&live, &prefilter, &mut |l| {
                report.records_examined += 1;
                in_range(l.time_unix_nano) && matcher.matches(l)
            })?;
            (rows, self.index.searcher())
        };
        let blocks = self
            .index
            .search(&searcher, Signal::Logs, block_query, start, end)?;
        let reads = newest_first_reads(blocks);
        let newest_of = |i: usize| reads.get(i).map_or(i64::MIN, |r| r.newest);
        if !visit(live_rows, newest_of(0)) {
            return Ok(report);
        }
        for (i, read) in reads.iter().enumerate() {
            let mut examined = 0;
            let mut keep = |l: &LogRow| {
                examined += 1;
                in_range(l.time_unix_nano) && matcher.matches(l)
            };
            let rows = self
                .read_file::<LogRow>(&read.path, read.row_groups.clone(), &prefilter, &mut keep)
                .await?;
            report.blocks_read += read.row_groups.len();
            report.records_examined += examined;
            if !visit(rows, newest_of(i + 1)) {
                break;
            }
        }
        Ok(report)
    }
}

/// Newest first; records with the same time in a fixed order (service, then body), so that
/// page cursors count them the same way every time.
pub(super) fn sort_newest_first(logs: &mut [LogRow]) {
    logs.sort_by(|a, b| {
        b.time_unix_nano
            .cmp(&a.time_unix_nano)
            .then_with(|| a.resource.service_name.cmp(&b.resource.service_name))
            .then_with(|| a.body.cmp(&b.body))
    });
}

/// The time of the `k`-th newest record (1-based), reordering `logs` newest first.
pub(super) fn kth_newest(logs: &mut [LogRow], k: usize) -> i64 {
    sort_newest_first(logs);
    logs.get(k.saturating_sub(1))
        .map(|l| l.time_unix_nano)
        .unwrap_or(i64::MIN)
}
