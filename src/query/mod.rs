//! The one query layer every front end (HTTP API, CLI, later the UI and gRPC) goes through.
//!
//! Each query reads the in-memory rows and the index searcher under one read lock (a
//! consistent snapshot), then reads only the Parquet row groups whose block documents match,
//! and checks every row of them exactly.

pub mod log_query;
pub mod time;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;

use serde::Serialize;
use tantivy::query::Query;

pub use log_query::{LogFilter, QuerySyntaxError, RowMatcher};

use crate::index::{BlockIndex, BlockRef};
use crate::model::{LogRow, Signal, SpanRow, TraceId};
use crate::pipeline::{LiveData, LiveInner, ServiceInfo};
use crate::store::{Store, StoredRow};

/// Most log records one search returns.
pub const MAX_LOG_LIMIT: usize = 10_000;

/// Why a query failed.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The user's query or parameters are wrong (HTTP 400).
    #[error("{0}")]
    BadRequest(String),
    #[error("index: {0}")]
    Index(#[from] crate::index::IndexError),
    #[error("store: {0}")]
    Store(#[from] crate::store::StoreError),
}

impl From<QuerySyntaxError> for QueryError {
    fn from(e: QuerySyntaxError) -> Self {
        QueryError::BadRequest(e.0)
    }
}

/// Every span of one trace and the log records that carry its trace id.
#[derive(Debug, Clone, Serialize)]
pub struct TraceDetail {
    pub trace_id: TraceId,
    /// Spans ordered by start time.
    pub spans: Vec<SpanRow>,
    /// Log records of the trace, in time order.
    pub logs: Vec<LogRow>,
    /// Services with at least one span, sorted.
    pub services: Vec<String>,
    pub start_time_unix_nano: i64,
    pub end_time_unix_nano: i64,
    pub duration_nano: i64,
}

/// Parameters of a log search.
#[derive(Debug, Clone, Default)]
pub struct LogSearch {
    pub query: String,
    pub start: Option<i64>,
    pub end: Option<i64>,
    pub limit: usize,
}

/// Matching log records, newest first.
#[derive(Debug, Clone, Serialize)]
pub struct LogSearchResult {
    pub logs: Vec<LogRow>,
    /// True when more records matched than `limit`.
    pub truncated: bool,
}

/// One trace that carries a correlation id.
#[derive(Debug, Clone, Serialize)]
pub struct CorrelatedTrace {
    pub trace_id: TraceId,
    pub start_time_unix_nano: i64,
    pub services: Vec<String>,
}

/// Everything carrying one correlation id, in time order.
#[derive(Debug, Clone, Serialize)]
pub struct CorrelationResult {
    pub correlation_id: String,
    pub traces: Vec<CorrelatedTrace>,
    pub logs: Vec<LogRow>,
}

/// The query layer over live rows, the block index and the Parquet store.
#[derive(Clone)]
pub struct QueryEngine {
    live: Arc<LiveData>,
    index: Arc<BlockIndex>,
    store: Store,
}

impl QueryEngine {
    /// A query engine over the server's data.
    pub fn new(live: Arc<LiveData>, index: Arc<BlockIndex>, store: Store) -> Self {
        Self { live, index, store }
    }

    /// The spans and logs of one trace, or `None` when no span of it is stored.
    pub async fn trace(&self, trace_id: TraceId) -> Result<Option<TraceDetail>, QueryError> {
        let f = self.index.fields();
        let hex = trace_id.to_hex();
        let mut spans: Vec<SpanRow> = self
            .rows(
                |live| {
                    live.spans()
                        .filter(|s| s.trace_id == trace_id)
                        .cloned()
                        .collect()
                },
                self.index.term(f.trace_id, &hex),
                None,
                None,
                move |s: &SpanRow| s.trace_id == trace_id,
            )
            .await?;
        if spans.is_empty() {
            return Ok(None);
        }
        // A span can be present twice only if a client resent it; show it once.
        let mut seen = HashSet::new();
        spans.retain(|s| seen.insert(s.span_id));
        spans.sort_by_key(|s| (s.start_time_unix_nano, s.end_time_unix_nano));
        let mut logs: Vec<LogRow> = self
            .rows(
                |live| {
                    live.logs()
                        .filter(|l| l.trace_id == Some(trace_id))
                        .cloned()
                        .collect()
                },
                self.index.term(f.trace_id, &hex),
                None,
                None,
                move |l: &LogRow| l.trace_id == Some(trace_id),
            )
            .await?;
        logs.sort_by_key(|l| l.time_unix_nano);
        let start = spans
            .iter()
            .map(|s| s.start_time_unix_nano)
            .min()
            .unwrap_or(0);
        let end = spans
            .iter()
            .map(|s| s.end_time_unix_nano)
            .max()
            .unwrap_or(start);
        let services: BTreeSet<String> = spans
            .iter()
            .map(|s| s.resource.service_name.clone())
            .collect();
        Ok(Some(TraceDetail {
            trace_id,
            spans,
            logs,
            services: services.into_iter().collect(),
            start_time_unix_nano: start,
            end_time_unix_nano: end,
            duration_nano: end - start,
        }))
    }

    /// Log records matching a query, newest first.
    pub async fn search_logs(&self, search: &LogSearch) -> Result<LogSearchResult, QueryError> {
        let filter = log_query::parse(&search.query)?;
        let limit = search.limit.clamp(1, MAX_LOG_LIMIT);
        let (start, end) = (search.start, search.end);
        let in_range = move |t: i64| start.is_none_or(|s| t >= s) && end.is_none_or(|e| t <= e);
        let block_query = filter.block_query(self.index.fields());
        let mut matcher = RowMatcher::new(filter.clone());
        let (mut logs, searcher) = {
            let live = self.live.read();
            let rows: Vec<LogRow> = live
                .logs()
                .filter(|l| in_range(l.time_unix_nano) && matcher.matches(l))
                .cloned()
                .collect();
            (rows, self.index.searcher())
        };
        let mut blocks = self
            .index
            .search(&searcher, Signal::Logs, block_query, start, end)?;
        blocks.sort_by_key(|b| std::cmp::Reverse(b.time_max));
        for (path, groups) in group_by_file(&blocks) {
            // Blocks come newest first: once `limit` rows are newer than this whole file,
            // nothing older can enter the result.
            let newest_in_file = groups
                .iter()
                .map(|(_, b)| b.time_max)
                .max()
                .unwrap_or(i64::MIN);
            if logs.len() > limit && kth_newest(&mut logs, limit) > newest_in_file {
                break;
            }
            let row_groups = groups.iter().map(|(rg, _)| *rg).collect();
            let mut keep = |l: &LogRow| in_range(l.time_unix_nano) && matcher.matches(l);
            logs.extend(
                self.store
                    .read::<LogRow>(&path, row_groups, &mut keep)
                    .await?,
            );
        }
        logs.sort_by_key(|l| std::cmp::Reverse(l.time_unix_nano));
        let truncated = logs.len() > limit;
        logs.truncate(limit);
        Ok(LogSearchResult { logs, truncated })
    }

    /// Every trace and log record carrying `correlation_id`, in time order.
    pub async fn correlation(&self, correlation_id: &str) -> Result<CorrelationResult, QueryError> {
        let f = self.index.fields();
        let id = correlation_id.to_string();
        let matches = |c: &Option<String>| c.as_deref() == Some(correlation_id);
        let spans: Vec<SpanRow> = {
            let id = id.clone();
            self.rows(
                |live| {
                    live.spans()
                        .filter(|s| matches(&s.correlation_id))
                        .cloned()
                        .collect()
                },
                self.index.term(f.correlation_id, &id),
                None,
                None,
                move |s: &SpanRow| s.correlation_id.as_deref() == Some(id.as_str()),
            )
            .await?
        };
        let mut logs: Vec<LogRow> = {
            let id = id.clone();
            self.rows(
                |live| {
                    live.logs()
                        .filter(|l| matches(&l.correlation_id))
                        .cloned()
                        .collect()
                },
                self.index.term(f.correlation_id, &id),
                None,
                None,
                move |l: &LogRow| l.correlation_id.as_deref() == Some(id.as_str()),
            )
            .await?
        };
        logs.sort_by_key(|l| l.time_unix_nano);
        // Traces named by spans, plus traces only the logs point at.
        let mut traces: BTreeMap<TraceId, (i64, BTreeSet<String>)> = BTreeMap::new();
        for s in &spans {
            let entry = traces
                .entry(s.trace_id)
                .or_insert((i64::MAX, BTreeSet::new()));
            entry.0 = entry.0.min(s.start_time_unix_nano);
            entry.1.insert(s.resource.service_name.clone());
        }
        for l in &logs {
            if let Some(t) = l.trace_id {
                let entry = traces.entry(t).or_insert((i64::MAX, BTreeSet::new()));
                entry.0 = entry.0.min(l.time_unix_nano);
            }
        }
        let mut traces: Vec<CorrelatedTrace> = traces
            .into_iter()
            .map(|(trace_id, (start, services))| CorrelatedTrace {
                trace_id,
                start_time_unix_nano: start,
                services: services.into_iter().collect(),
            })
            .collect();
        traces.sort_by_key(|t| t.start_time_unix_nano);
        Ok(CorrelationResult {
            correlation_id: id,
            traces,
            logs,
        })
    }

    /// Services seen, with their instances and last-seen times.
    pub fn services(&self) -> Vec<ServiceInfo> {
        self.live.read().services.list()
    }

    /// In-memory rows chosen by `from_live` plus stored rows of the blocks matching
    /// `block_query` that pass `keep`, read from one consistent snapshot.
    async fn rows<T: StoredRow>(
        &self,
        from_live: impl FnOnce(&LiveInner) -> Vec<T>,
        block_query: Box<dyn Query>,
        start: Option<i64>,
        end: Option<i64>,
        mut keep: impl FnMut(&T) -> bool + Send,
    ) -> Result<Vec<T>, QueryError> {
        let (mut rows, searcher) = {
            let live = self.live.read();
            (from_live(&live), self.index.searcher())
        };
        let blocks = self
            .index
            .search(&searcher, T::SIGNAL, block_query, start, end)?;
        for (path, groups) in group_by_file(&blocks) {
            let row_groups = groups.iter().map(|(rg, _)| *rg).collect();
            rows.extend(self.store.read::<T>(&path, row_groups, &mut keep).await?);
        }
        Ok(rows)
    }
}

/// Blocks grouped by file, keeping the order in which each file first appears.
fn group_by_file(blocks: &[BlockRef]) -> Vec<(String, Vec<(usize, &BlockRef)>)> {
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

/// The time of the `k`-th newest record (1-based), reordering `logs` newest first.
fn kth_newest(logs: &mut [LogRow], k: usize) -> i64 {
    logs.sort_by_key(|l| std::cmp::Reverse(l.time_unix_nano));
    logs.get(k.saturating_sub(1))
        .map(|l| l.time_unix_nano)
        .unwrap_or(i64::MIN)
}
