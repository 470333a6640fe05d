//! The one query layer every front end (HTTP API, CLI, later the UI and gRPC) goes through.
//!
//! Each query reads the in-memory rows and the index searcher under one read lock (a
//! consistent snapshot), then reads only the Parquet row groups whose block documents match,
//! and checks every row of them exactly.

mod body_words;
pub mod buckets;
pub mod canary;
mod correlation;
pub mod group_compare;
mod log_columns;
pub mod log_query;
mod logs;
pub mod metrics;
pub mod query_size;
mod scan;
pub mod services;
pub mod snapshot;
pub mod stats;
pub mod trace_compare;
mod trace_search;
pub mod trace_tree;
mod traces;

use std::sync::Arc;

pub use log_query::{LogFilter, QuerySyntaxError, RowMatcher};
pub use scan::CorruptFileReports;
pub use trace_search::{parse_attribute, StatusFilter, TraceSearch};
pub use trace_tree::TraceSummary;

pub use correlation::{CorrelatedTrace, CorrelationResult};
pub use log_columns::Counted;
pub use logs::{LogCursor, LogHistogram, LogSearch, LogSearchResult, ScanReport};
pub use metrics::MetricName;
pub use services::ServiceDetail;
pub use traces::{LinkedTrace, Relation, StitchedTrace, TraceDetail, MAX_LINKED_TRACES};

use crate::index::BlockIndex;
use crate::pipeline::{LiveData, ServiceInfo};
use crate::store::Store;

/// Most log records one search returns.
pub const MAX_LOG_LIMIT: usize = 10_000;

/// Why a query failed.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The user's query or parameters are wrong (HTTP 400).
    #[error("{0}")]
    BadRequest(String),
    /// The answer would be larger than allowed (HTTP 413).
    #[error("{0}")]
    TooLarge(String),
    /// What the question names does not exist in the data (HTTP 404): a service, a version
    /// without requests, a trace.
    #[error("{0}")]
    NotFound(String),
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

/// The query layer over live rows, the block index and the Parquet store.
#[derive(Clone)]
pub struct QueryEngine {
    live: Arc<LiveData>,
    index: Arc<BlockIndex>,
    store: Store,
    /// An instance silent for longer than this is shown as down.
    down_after_nano: i64,
    /// Longest time range one query may read (`None`: no limit).
    max_range_nano: Option<i64>,
    /// Most records one question may gather in memory before it is refused.
    max_rows: usize,
    /// Where corrupt files met by a query go (`None`: logged only, e.g. evidence snapshots).
    corrupt_files: Option<CorruptFileReports>,
}

/// Metric queries with steps at least this long read one-minute points.
pub const DOWNSAMPLED_STEP_NANO: i64 = 300_000_000_000;

/// Default of the most records one question may gather (`--max-query-rows`).
pub const DEFAULT_MAX_QUERY_ROWS: usize = 1_000_000;

/// Default time without data after which an instance is down.
pub const DEFAULT_DOWN_AFTER_NANO: i64 = 120_000_000_000;

impl QueryEngine {
    /// A query engine over the server's data.
    pub fn new(live: Arc<LiveData>, index: Arc<BlockIndex>, store: Store) -> Self {
        Self {
            live,
            index,
            store,
            down_after_nano: DEFAULT_DOWN_AFTER_NANO,
            max_range_nano: None,
            max_rows: DEFAULT_MAX_QUERY_ROWS,
            corrupt_files: None,
        }
    }

    /// Reports the corrupt files queries meet to the quarantine task.
    pub fn with_corrupt_file_reports(mut self, reports: CorruptFileReports) -> Self {
        self.corrupt_files = Some(reports);
        self
    }

    /// Limits the time range one query may read, so one heavy query cannot take the
    /// machine from ingest. Queries without a start (id lookups, "newest first" searches
    /// that stop at their limit) are not limited.
    pub fn with_max_range(mut self, range: Option<std::time::Duration>) -> Self {
        self.max_range_nano = range.map(|r| r.as_nanos().min(i64::MAX as u128) as i64);
        self
    }

    /// Limits the records one question may gather in memory (a correlation id on every
    /// record, a trace of millions of spans, a pin of a busy hour): past it the question is
    /// answered `TooLarge` with the limit named, instead of holding the memory.
    pub fn with_max_rows(mut self, rows: usize) -> Self {
        self.max_rows = rows.max(1);
        self
    }

    /// Refuses a question that gathered more than the configured most records.
    fn check_rows(&self, gathered: usize) -> Result<(), QueryError> {
        if gathered > self.max_rows {
            return Err(QueryError::TooLarge(format!(
                "the query matched more than {} records, the most one query may gather \
                 (--max-query-rows): narrow its time range or add a condition",
                self.max_rows
            )));
        }
        Ok(())
    }

    /// Refuses a window longer than the configured maximum.
    fn check_range(&self, start: Option<i64>, end: Option<i64>) -> Result<(), QueryError> {
        let (Some(max), Some(start)) = (self.max_range_nano, start) else {
            return Ok(());
        };
        let end = end.unwrap_or_else(crate::model::time::now_ns);
        if end.saturating_sub(start) > max {
            const DAY: i64 = 24 * 3600 * 1_000_000_000;
            return Err(QueryError::BadRequest(format!(
                "the time range covers {} days; one query may cover at most {} (--max-query-days): \
                 narrow the time range",
                end.saturating_sub(start) / DAY,
                max / DAY
            )));
        }
        Ok(())
    }

    /// Sets how long an instance may be silent before it is shown as down.
    pub fn with_down_after(mut self, nano: i64) -> Self {
        self.down_after_nano = nano.max(1);
        self
    }

    /// Services seen, with their instances and last-seen times.
    pub fn services(&self) -> Vec<ServiceInfo> {
        self.live.read().services.list()
    }
}
