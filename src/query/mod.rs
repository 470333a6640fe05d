//! The one query layer every front end (HTTP API, CLI, later the UI and gRPC) goes through.
//!
//! Each query reads the in-memory rows and the index searcher under one read lock (a
//! consistent snapshot), then reads only the Parquet row groups whose block documents match,
//! and checks every row of them exactly.

mod log_columns;
pub mod log_query;
pub mod metrics;
pub mod services;
pub mod snapshot;
pub mod time;
pub mod time_range;
mod trace_search;
pub mod trace_tree;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use serde::Serialize;
use tantivy::query::Query;

pub use log_query::{LogFilter, QuerySyntaxError, RowMatcher};
pub use trace_search::{parse_attribute, StatusFilter, TraceSearch};
pub use trace_tree::TraceSummary;

use crate::index::{BlockIndex, BlockRef, KeyKind};
use crate::model::{LogRow, Signal, SpanId, SpanRow, TraceId};
use crate::pipeline::{LiveData, LiveRows, ServiceInfo};
use crate::rollup::metric_minutes::MinuteMetric;
use crate::store::{Prefilter, Store, StoredRow};

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
    /// Spans on the critical path, root first.
    pub critical_path: Vec<SpanId>,
}

/// How a linked trace belongs to the trace being viewed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Relation {
    /// A span of the linked trace has a span link to a span of this trace (e.g. a queue
    /// consumer linking to its producer).
    LinkedFrom,
    /// A span of this trace links to a span of the linked trace.
    LinksTo,
    /// The linked trace carries one of this trace's correlation ids.
    SameCorrelationId,
}

/// A trace shown inside another trace's view.
#[derive(Debug, Clone, Serialize)]
pub struct LinkedTrace {
    pub relation: Relation,
    /// The span of the main trace this trace hangs under (the producer, or the linking
    /// span); `None` to show it after the main trace (correlation only).
    pub attach_to: Option<SpanId>,
    pub trace: TraceDetail,
}

/// A trace with the traces that continued or started the same request.
#[derive(Debug, Clone, Serialize)]
pub struct StitchedTrace {
    #[serde(flatten)]
    pub trace: TraceDetail,
    pub linked: Vec<LinkedTrace>,
}

/// Everything the service page shows.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceDetail {
    pub overview: services::ServiceOverview,
    pub operations: Vec<services::Breakdown>,
    pub instances: Vec<services::Breakdown>,
    pub versions: Vec<services::Breakdown>,
    pub errors: services::ErrorsView,
    pub metric_names: Vec<MetricName>,
}

/// A metric's name with its type and unit.
#[derive(Debug, Clone, Serialize)]
pub struct MetricName {
    pub name: String,
    pub kind: &'static str,
    pub unit: String,
    pub monotonic: bool,
}

impl MetricName {
    fn of(p: &crate::model::MetricPoint) -> Self {
        MetricName {
            name: p.name.clone(),
            kind: p.kind.as_str(),
            unit: p.unit.clone(),
            monotonic: p.is_monotonic,
        }
    }
}

/// Most traces stitched into one view.
pub const MAX_LINKED_TRACES: usize = 10;

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
}

/// Parameters of a log search.
#[derive(Debug, Clone, Default)]
pub struct LogSearch {
    pub query: String,
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
    /// An instance silent for longer than this is shown as down.
    down_after_nano: i64,
    /// Longest time range one query may read (`None`: no limit).
    max_range_nano: Option<i64>,
}

/// Metric queries with steps at least this long read one-minute points.
pub const DOWNSAMPLED_STEP_NANO: i64 = 300_000_000_000;

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
        }
    }

    /// Limits the time range one query may read, so one heavy query cannot take the
    /// machine from ingest. Queries without a start (id lookups, "newest first" searches
    /// that stop at their limit) are not limited.
    pub fn with_max_range(mut self, range: Option<std::time::Duration>) -> Self {
        self.max_range_nano = range.map(|r| r.as_nanos().min(i64::MAX as u128) as i64);
        self
    }

    /// Refuses a window longer than the configured maximum.
    fn check_range(&self, start: Option<i64>, end: Option<i64>) -> Result<(), QueryError> {
        let (Some(max), Some(start)) = (self.max_range_nano, start) else {
            return Ok(());
        };
        let end = end.unwrap_or_else(|| chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0));
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

    /// Every rollup row of minutes overlapping `[start, end)`.
    pub async fn rollups(
        &self,
        start: i64,
        end: i64,
    ) -> Result<Vec<crate::rollup::RollupRow>, QueryError> {
        use crate::rollup::{RollupRow, MINUTE};
        let in_window = move |r: &RollupRow| r.minute + MINUTE > start && r.minute < end;
        self.rows(
            Box::new(tantivy::query::AllQuery),
            Some(start),
            Some(end),
            Prefilter::none()
                .at_least("minute", Some(start - MINUTE + 1))
                .at_most("minute", Some(end - 1)),
            in_window,
        )
        .await
    }

    /// RED per service with instance health and per-minute sparklines.
    pub async fn overview(
        &self,
        start: i64,
        end: i64,
        now: i64,
    ) -> Result<Vec<services::ServiceOverview>, QueryError> {
        let rollups = self.rollups(start, end).await?;
        Ok(services::overview(
            &rollups,
            &self.services(),
            start,
            end,
            now,
            self.down_after_nano,
        ))
    }

    /// The service map of a window.
    pub async fn service_map(
        &self,
        start: i64,
        end: i64,
        now: i64,
    ) -> Result<services::ServiceMap, QueryError> {
        let rollups = self.rollups(start, end).await?;
        let overview = services::overview(
            &rollups,
            &self.services(),
            start,
            end,
            now,
            self.down_after_nano,
        );
        Ok(services::service_map(&rollups, &overview, start, end))
    }

    /// One service: overview row, RED per operation, instance and version, and its errors.
    pub async fn service(
        &self,
        name: &str,
        start: i64,
        end: i64,
        now: i64,
    ) -> Result<Option<ServiceDetail>, QueryError> {
        let rollups = self.rollups(start, end).await?;
        let all = self.services();
        let Some(info) = all.iter().find(|s| s.name == name) else {
            return Ok(None);
        };
        let overview = services::overview(
            &rollups,
            std::slice::from_ref(info),
            start,
            end,
            now,
            self.down_after_nano,
        )
        .pop();
        let Some(overview) = overview else {
            return Ok(None);
        };
        Ok(Some(ServiceDetail {
            operations: services::breakdown(&rollups, name, start, end, |r| r.operation.clone()),
            instances: services::breakdown(&rollups, name, start, end, |r| r.instance.clone()),
            versions: services::breakdown(&rollups, name, start, end, |r| r.version.clone()),
            errors: services::errors(&rollups, start, end, Some(name)),
            metric_names: self.metric_names_of(name).await?,
            overview,
        }))
    }

    /// Error timeline and groups of a window.
    pub async fn errors(&self, start: i64, end: i64) -> Result<services::ErrorsView, QueryError> {
        let rollups = self.rollups(start, end).await?;
        Ok(services::errors(&rollups, start, end, None))
    }

    /// A metric range query.
    pub async fn metric_query(
        &self,
        q: &metrics::MetricQuery,
    ) -> Result<Vec<metrics::Series>, QueryError> {
        let f = self.index.fields();
        // One step before the window: the baseline of the first cumulative delta.
        let from = q.start - q.step.max(1_000_000_000);
        let keep = {
            let q = q.clone();
            move |p: &crate::model::MetricPoint| {
                p.name == q.name
                    && p.time_unix_nano >= from
                    && p.time_unix_nano <= q.end
                    && q.service
                        .as_ref()
                        .is_none_or(|s| p.resource.service_name == *s)
                    && q.instance
                        .as_ref()
                        .is_none_or(|i| p.resource.service_instance_id == *i)
            }
        };
        let metric_prefilter = Prefilter::none()
            .text_is("name", &q.name)
            .at_least("time", Some(from))
            .at_most("time", Some(q.end));
        let points = if q.step >= DOWNSAMPLED_STEP_NANO {
            // Coarse steps read the one-minute points of flushed data (plus the raw points
            // still in memory): one point per series and minute instead of every sample.
            // Raw in-memory points travel wrapped, so both come from one snapshot.
            let minutes: Vec<MinuteMetric> = self
                .rows(
                    self.index.term(f.name, &q.name),
                    Some(from),
                    Some(q.end),
                    metric_prefilter.clone(),
                    move |m: &MinuteMetric| keep(&m.0),
                )
                .await?;
            minutes.into_iter().map(|m| m.0).collect()
        } else {
            self.rows(
                self.index.term(f.name, &q.name),
                Some(from),
                Some(q.end),
                metric_prefilter,
                keep,
            )
            .await?
        };
        Ok(metrics::evaluate(q, points))
    }

    /// Every raw point of the metrics named in `names` in `[start, end]`, unordered: for
    /// query languages that evaluate points themselves (the Prometheus API).
    pub async fn metric_points(
        &self,
        names: &[String],
        start: i64,
        end: i64,
    ) -> Result<Vec<crate::model::MetricPoint>, QueryError> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let f = self.index.fields();
        let wanted: std::collections::HashSet<String> = names.iter().cloned().collect();
        let keep = move |p: &crate::model::MetricPoint| {
            p.time_unix_nano >= start && p.time_unix_nano <= end && wanted.contains(&p.name)
        };
        let block_query: Box<dyn Query> = Box::new(tantivy::query::BooleanQuery::union(
            names.iter().map(|n| self.index.term(f.name, n)).collect(),
        ));
        self.rows(
            block_query,
            Some(start),
            Some(end),
            Prefilter::none()
                .at_least("time", Some(start))
                .at_most("time", Some(end)),
            keep,
        )
        .await
    }

    /// Metric names, with kind and unit, that `service` (or anyone, when empty) sends.
    pub async fn metric_names_of(&self, service: &str) -> Result<Vec<MetricName>, QueryError> {
        let f = self.index.fields();
        let query: Box<dyn Query> = if service.is_empty() {
            Box::new(tantivy::query::AllQuery)
        } else {
            self.index.term(f.service, service)
        };
        let svc = service.to_string();
        let mut names: BTreeMap<String, MetricName> = BTreeMap::new();
        let of_service = match service {
            "" => Prefilter::none(),
            s => Prefilter::none().text_is("service_name", s),
        };
        let searcher = {
            let live = self.live.read();
            crate::model::MetricPoint::scan_live(&live, &of_service, &mut |p| {
                if !names.contains_key(&p.name) {
                    names.insert(p.name.clone(), MetricName::of(p));
                }
                false
            })?;
            self.index.searcher()
        };
        // Names are in the block documents; one row per block is enough for kind and unit.
        let blocks = self
            .index
            .search(&searcher, Signal::Metrics, query, None, None)?;
        for (path, groups) in group_by_file(&blocks) {
            let row_groups = groups.iter().map(|(rg, _)| *rg).collect();
            let mut keep = |p: &crate::model::MetricPoint| {
                (svc.is_empty() || p.resource.service_name == svc) && !names.contains_key(&p.name)
            };
            for p in self
                .read_file::<crate::model::MetricPoint>(
                    &path,
                    row_groups,
                    &Prefilter::none(),
                    &mut keep,
                )
                .await?
            {
                names
                    .entry(p.name.clone())
                    .or_insert_with(|| MetricName::of(&p));
            }
        }
        Ok(names.into_values().collect())
    }

    /// Every span of one trace, each once, in start order.
    async fn trace_spans(&self, trace_id: TraceId) -> Result<Vec<SpanRow>, QueryError> {
        Ok(self
            .spans_of_traces(&[trace_id])
            .await?
            .remove(&trace_id)
            .unwrap_or_default())
    }

    /// The spans of several traces in one pass over the blocks that hold any of them.
    async fn spans_of_traces(
        &self,
        ids: &[TraceId],
    ) -> Result<HashMap<TraceId, Vec<SpanRow>>, QueryError> {
        let wanted: HashSet<TraceId> = ids.iter().copied().collect();
        let id_bytes: Vec<&[u8]> = ids.iter().map(|id| id.0.as_slice()).collect();
        let rows: Vec<SpanRow> = self
            .rows(
                self.index.may_hold(KeyKind::TraceId, &id_bytes),
                None,
                None,
                Prefilter::none().id_in("trace_id", ids.iter().map(|id| id.0.as_slice())),
                |s: &SpanRow| wanted.contains(&s.trace_id),
            )
            .await?;
        let mut by_trace: HashMap<TraceId, Vec<SpanRow>> = HashMap::new();
        for s in rows {
            by_trace.entry(s.trace_id).or_default().push(s);
        }
        for spans in by_trace.values_mut() {
            // A span can be present twice only if a client resent it; show it once.
            let mut seen = HashSet::new();
            spans.retain(|s| seen.insert(s.span_id));
            spans.sort_by_key(|s| (s.start_time_unix_nano, s.end_time_unix_nano));
        }
        Ok(by_trace)
    }

    /// The spans and logs of one trace, or `None` when no span of it is stored.
    pub async fn trace(&self, trace_id: TraceId) -> Result<Option<TraceDetail>, QueryError> {
        let spans = self.trace_spans(trace_id).await?;
        if spans.is_empty() {
            return Ok(None);
        }
        let mut logs: Vec<LogRow> = self
            .rows(
                self.index.may_hold(KeyKind::TraceId, &[&trace_id.0]),
                None,
                None,
                Prefilter::none().id_in("trace_id", [trace_id.0.as_slice()]),
                move |l: &LogRow| l.trace_id == Some(trace_id),
            )
            .await?;
        logs.sort_by_key(|l| l.time_unix_nano);
        let summary = trace_tree::summarize(trace_id, &spans);
        let critical_path = trace_tree::critical_path(&spans);
        Ok(Some(TraceDetail {
            trace_id,
            logs,
            services: summary.services,
            start_time_unix_nano: summary.start_time_unix_nano,
            end_time_unix_nano: summary.start_time_unix_nano + summary.duration_nano,
            duration_nano: summary.duration_nano,
            critical_path,
            spans,
        }))
    }

    /// A trace together with the traces that continued the same request: traces tied to it
    /// by span links in either direction, and traces carrying one of its correlation ids.
    pub async fn stitched_trace(
        &self,
        trace_id: TraceId,
    ) -> Result<Option<StitchedTrace>, QueryError> {
        let Some(trace) = self.trace(trace_id).await? else {
            return Ok(None);
        };
        let mut wanted: Vec<(TraceId, Relation, Option<SpanId>)> = Vec::new();
        // Spans of other traces that link into this one (consumer → producer).
        let linking: Vec<SpanRow> = self
            .rows(
                self.index.may_hold(KeyKind::LinkedTraceId, &[&trace_id.0]),
                None,
                None,
                Prefilter::none(),
                move |s: &SpanRow| s.links.iter().any(|l| l.trace_id == trace_id),
            )
            .await?;
        for s in linking.iter().filter(|s| s.trace_id != trace_id) {
            let producer = s
                .links
                .iter()
                .find(|l| l.trace_id == trace_id)
                .map(|l| l.span_id);
            wanted.push((s.trace_id, Relation::LinkedFrom, producer));
        }
        // Links from this trace to others.
        for s in &trace.spans {
            for l in s.links.iter().filter(|l| l.trace_id != trace_id) {
                wanted.push((l.trace_id, Relation::LinksTo, Some(s.span_id)));
            }
        }
        // Other traces of the same request by correlation id.
        let correlation_ids: BTreeSet<&String> = trace
            .spans
            .iter()
            .filter_map(|s| s.correlation_id.as_ref())
            .collect();
        for id in correlation_ids {
            for t in self.correlation(id).await?.traces {
                wanted.push((t.trace_id, Relation::SameCorrelationId, None));
            }
        }
        let mut seen = HashSet::from([trace_id]);
        let mut linked = Vec::new();
        for (id, relation, attach_to) in wanted {
            if linked.len() >= MAX_LINKED_TRACES || !seen.insert(id) {
                continue;
            }
            if let Some(detail) = self.trace(id).await? {
                linked.push(LinkedTrace {
                    relation,
                    attach_to,
                    trace: detail,
                });
            }
        }
        Ok(Some(StitchedTrace { trace, linked }))
    }

    /// Traces matching a search, newest first.
    pub async fn search_traces(
        &self,
        search: &TraceSearch,
    ) -> Result<Vec<TraceSummary>, QueryError> {
        let limit = search.limit.clamp(1, 1000);
        let candidates: Vec<TraceId> = match search.trace_id {
            Some(id) => vec![id],
            None => {
                // Trace-level filters drop candidates after the fact: look at more of them.
                let post_filtered = search.status.is_some()
                    || search.min_duration_nano.is_some()
                    || search.max_duration_nano.is_some();
                let budget = if post_filtered { limit * 20 } else { limit * 2 };
                self.candidate_traces(search, budget).await?
            }
        };
        let mut out = Vec::new();
        let mut spans_of = self.spans_of_traces(&candidates).await?;
        for id in candidates {
            let Some(spans) = spans_of.remove(&id) else {
                continue;
            };
            let summary = trace_tree::summarize(id, &spans);
            let status_ok = match search.status {
                Some(StatusFilter::Error) => summary.error_count > 0,
                Some(StatusFilter::Ok) => summary.error_count == 0,
                None => true,
            };
            let duration_ok = search
                .min_duration_nano
                .is_none_or(|d| summary.duration_nano >= d)
                && search
                    .max_duration_nano
                    .is_none_or(|d| summary.duration_nano <= d);
            if status_ok && duration_ok {
                out.push(summary);
                if out.len() >= limit {
                    break;
                }
            }
        }
        out.sort_by_key(|t| std::cmp::Reverse(t.start_time_unix_nano));
        Ok(out)
    }

    /// Ids of traces with a span meeting the span-level filters (and, for an error search,
    /// with an error span), newest first, at most `max`.
    async fn candidate_traces(
        &self,
        search: &TraceSearch,
        max: usize,
    ) -> Result<Vec<TraceId>, QueryError> {
        use tantivy::query::{BooleanQuery, Occur};
        let f = self.index.fields();
        let mut terms: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        if let Some(s) = &search.service {
            terms.push((Occur::Must, self.index.term(f.service, s)));
        }
        if let Some(s) = &search.operation {
            terms.push((Occur::Must, self.index.term(f.name, s)));
        }
        if let Some((k, v)) = &search.attribute {
            terms.push((Occur::Must, self.index.attr_query(k, v)));
        }
        if let Some(c) = &search.correlation_id {
            terms.push((
                Occur::Must,
                self.index.may_hold(KeyKind::CorrelationId, &[c.as_bytes()]),
            ));
        }
        let block_query: Box<dyn Query> = if terms.is_empty() {
            Box::new(tantivy::query::AllQuery)
        } else {
            Box::new(BooleanQuery::new(terms))
        };
        let errors_only = search.status == Some(StatusFilter::Error);
        // The span that matches the filters need not be the one that failed: intersect.
        let budget = if errors_only { max.max(5000) } else { max };
        let mut latest = self
            .traces_with_spans(
                block_query,
                search.span_prefilter(),
                |s| search.span_matches(s),
                search,
                budget,
            )
            .await?;
        if errors_only {
            let failed = self
                .traces_with_spans(
                    self.index.term(f.status, "ERROR"),
                    search.time_prefilter().text_is("status_code", "ERROR"),
                    |s| {
                        s.is_error()
                            && search.start.is_none_or(|t| s.end_time_unix_nano >= t)
                            && search.end.is_none_or(|t| s.start_time_unix_nano <= t)
                    },
                    search,
                    budget,
                )
                .await?;
            latest.retain(|id, _| failed.contains_key(id));
        }
        let mut ids: Vec<(TraceId, i64)> = latest.into_iter().collect();
        ids.sort_by_key(|(_, t)| std::cmp::Reverse(*t));
        Ok(ids.into_iter().take(max).map(|(id, _)| id).collect())
    }

    /// Traces (with their latest matching span start) that have a span passing `prefilter`
    /// and `keep` in memory or in blocks matching `block_query`; reads blocks newest first
    /// until `max` traces are found.
    async fn traces_with_spans(
        &self,
        block_query: Box<dyn Query>,
        prefilter: Prefilter,
        keep: impl Fn(&SpanRow) -> bool + Send + Sync,
        search: &TraceSearch,
        max: usize,
    ) -> Result<BTreeMap<TraceId, i64>, QueryError> {
        self.check_range(search.start, search.end)?;
        let mut latest: BTreeMap<TraceId, i64> = BTreeMap::new();
        let note = |latest: &mut BTreeMap<TraceId, i64>, id: TraceId, t: i64| {
            let e = latest.entry(id).or_insert(t);
            *e = (*e).max(t);
        };
        let searcher = {
            let live = self.live.read();
            // Only the id and start of a matching span are kept: nothing is collected.
            SpanRow::scan_live(&live, &prefilter, &mut |s| {
                if keep(s) {
                    note(&mut latest, s.trace_id, s.start_time_unix_nano);
                }
                false
            })?;
            self.index.searcher()
        };
        let blocks = self.index.search(
            &searcher,
            Signal::Traces,
            block_query,
            search.start,
            search.end,
        )?;
        for read in newest_first_reads(blocks) {
            // Stop once `max` traces are newer than anything this and later reads may hold.
            if latest.len() >= max && kth_largest(latest.values().copied(), max) > read.newest {
                break;
            }
            let mut filter = |s: &SpanRow| keep(s);
            for s in self
                .read_file::<SpanRow>(&read.path, read.row_groups, &prefilter, &mut filter)
                .await?
            {
                note(&mut latest, s.trace_id, s.start_time_unix_nano);
            }
        }
        Ok(latest)
    }

    /// Log records matching a query, newest first, one page at a time.
    pub async fn search_logs(&self, search: &LogSearch) -> Result<LogSearchResult, QueryError> {
        let filter = log_query::parse(&search.query)?;
        let highlight = filter.highlight_tokens();
        let limit = search.limit.clamp(1, MAX_LOG_LIMIT);
        let skip = search.before.map_or(0, |c| c.skip);
        let end = match (search.end, search.before) {
            (Some(e), Some(c)) => Some(e.min(c.time)),
            (e, c) => e.or(c.map(|c| c.time)),
        };
        let wanted = limit + skip;
        let mut logs = Vec::new();
        self.visit_logs(&filter, search.start, end, |batch, next_block_newest| {
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
        })
    }

    /// Counts of records matching a query in `buckets` equal slices of `[start, end]`.
    pub async fn log_histogram(
        &self,
        query: &str,
        start: i64,
        end: i64,
        buckets: usize,
    ) -> Result<LogHistogram, QueryError> {
        let filter = log_query::parse(query)?;
        let buckets = buckets.clamp(1, 1000);
        let bucket_nano = ((end - start) / buckets as i64).max(1);
        let mut counts = vec![0u64; buckets];
        let bucket_of = |t: i64| ((t - start) / bucket_nano).clamp(0, buckets as i64 - 1) as usize;
        // From the time column alone where the query allows, else record by record.
        let counted = self
            .visit_log_columns(&filter, Prefilter::none(), start, end, &["time"], |batch| {
                use arrow::array::AsArray;
                use arrow::datatypes::TimestampNanosecondType;
                let times = batch
                    .column_by_name("time")
                    .and_then(|c| c.as_primitive_opt::<TimestampNanosecondType>());
                for &t in times.into_iter().flat_map(|a| a.values().iter()) {
                    counts[bucket_of(t)] += 1;
                }
            })
            .await?;
        if !counted {
            self.visit_logs(&filter, Some(start), Some(end), |batch, _| {
                for l in batch {
                    counts[bucket_of(l.time_unix_nano)] += 1;
                }
                true
            })
            .await?;
        }
        let total = counts.iter().sum();
        Ok(LogHistogram {
            start_unix_nano: start,
            bucket_nano,
            counts,
            total,
        })
    }

    /// Feeds every log record matching `filter` in `[start, end]` to `visit`: first the
    /// in-memory ones, then block by block, newest block first. `visit` gets the time of
    /// the newest record any later block may hold, and returns false to stop.
    async fn visit_logs(
        &self,
        filter: &LogFilter,
        start: Option<i64>,
        end: Option<i64>,
        mut visit: impl FnMut(Vec<LogRow>, i64) -> bool + Send,
    ) -> Result<(), QueryError> {
        self.check_range(start, end)?;
        let in_range = move |t: i64| start.is_none_or(|s| t >= s) && end.is_none_or(|e| t <= e);
        let block_query = filter.block_query(&self.index);
        let mut matcher = RowMatcher::new(filter.clone());
        let prefilter = filter.prefilter(
            Prefilter::none()
                .at_least("time", start)
                .at_most("time", end),
        );
        let (live_rows, searcher) = {
            let live = self.live.read();
            let rows = LogRow::scan_live(&live, &prefilter, &mut |l| {
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
            return Ok(());
        }
        for (i, read) in reads.iter().enumerate() {
            let mut keep = |l: &LogRow| in_range(l.time_unix_nano) && matcher.matches(l);
            let rows = self
                .read_file::<LogRow>(&read.path, read.row_groups.clone(), &prefilter, &mut keep)
                .await?;
            if !visit(rows, newest_of(i + 1)) {
                break;
            }
        }
        Ok(())
    }

    /// Every trace and log record carrying `correlation_id`, in time order.
    pub async fn correlation(&self, correlation_id: &str) -> Result<CorrelationResult, QueryError> {
        let id = correlation_id.to_string();
        let spans: Vec<SpanRow> = {
            let id = id.clone();
            self.rows(
                self.index
                    .may_hold(KeyKind::CorrelationId, &[id.as_bytes()]),
                None,
                None,
                Prefilter::none().text_is("correlation_id", &id),
                move |s: &SpanRow| s.correlation_id.as_deref() == Some(id.as_str()),
            )
            .await?
        };
        let mut logs: Vec<LogRow> = {
            let id = id.clone();
            self.rows(
                self.index
                    .may_hold(KeyKind::CorrelationId, &[id.as_bytes()]),
                None,
                None,
                Prefilter::none().text_is("correlation_id", &id),
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

    /// Reads row groups of one file. A file that cannot be decoded is corrupt: it is moved
    /// to quarantine and forgotten by the index (with a logged error), and the query goes on
    /// with the rest of the data.
    async fn read_file<T: StoredRow>(
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
        self.read_or_quarantine(path, blocks, read).await
    }

    /// Awaits one read of `blocks` row groups of file `path`; a missing file reads as
    /// nothing, a corrupt one is quarantined (see [`QueryEngine::read_file`]).
    async fn read_or_quarantine<R: Default>(
        &self,
        path: &str,
        blocks: usize,
        read: impl std::future::Future<Output = Result<R, crate::store::StoreError>>,
    ) -> Result<R, QueryError> {
        use crate::store::StoreError;
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
            Err(
                e @ (StoreError::Parquet(_)
                | StoreError::Arrow(_)
                | StoreError::Json(_)
                | StoreError::Schema(_)),
            ) => {
                tracing::error!(
                    file = path,
                    "corrupt Parquet file, moving it to quarantine: {e}"
                );
                if let Err(q) = self.store.quarantine(path).await {
                    tracing::error!(file = path, "could not quarantine: {q}");
                }
                let live = self.live.write();
                if let Err(i) = self.index.forget_file(path) {
                    tracing::error!(file = path, "could not drop its blocks from the index: {i}");
                }
                drop(live);
                Ok(R::default())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// In-memory and stored rows (of the blocks matching `block_query`) that pass
    /// `prefilter` and `keep`, read from one consistent snapshot.
    async fn rows<T: LiveRows>(
        &self,
        block_query: Box<dyn Query>,
        start: Option<i64>,
        end: Option<i64>,
        prefilter: Prefilter,
        mut keep: impl FnMut(&T) -> bool + Send,
    ) -> Result<Vec<T>, QueryError> {
        self.check_range(start, end)?;
        let (mut rows, searcher) = {
            let live = self.live.read();
            (
                T::scan_live(&live, &prefilter, &mut keep)?,
                self.index.searcher(),
            )
        };
        let blocks = self
            .index
            .search(&searcher, T::SIGNAL, block_query, start, end)?;
        for (path, groups) in group_by_file(&blocks) {
            let row_groups = groups.iter().map(|(rg, _)| *rg).collect();
            rows.extend(
                self.read_file::<T>(&path, row_groups, &prefilter, &mut keep)
                    .await?,
            );
        }
        Ok(rows)
    }
}

/// Whether a read failed because the file is not there (the Parquet reader reports the
/// object store's "not found" wrapped in its own error): that is not corruption.
fn is_missing(e: &crate::store::StoreError) -> bool {
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

/// Row groups read together by a newest-first scan: a few of one file.
struct BlockRead {
    path: String,
    row_groups: Vec<usize>,
    /// The newest time any of these row groups may hold.
    newest: i64,
}

/// Most row groups in one read of a newest-first scan. Small enough that a scan stops soon
/// after it has its answer even inside one large compacted file; large enough that a long
/// scan is not one round trip per row group.
const ROW_GROUPS_PER_READ: usize = 4;

/// `blocks` ordered newest first (by their newest time) and cut into reads of row groups of
/// one file — one row group first (most searches need no more), then two, then at most
/// [`ROW_GROUPS_PER_READ`]; `newest` falls from read to read.
fn newest_first_reads(mut blocks: Vec<BlockRef>) -> Vec<BlockRead> {
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
fn kth_largest(values: impl Iterator<Item = i64>, k: usize) -> i64 {
    let mut v: Vec<i64> = values.collect();
    if k == 0 || v.len() < k {
        return i64::MIN;
    }
    let (_, kth, _) = v.select_nth_unstable_by(k - 1, |a, b| b.cmp(a));
    *kth
}

/// Newest first; records with the same time in a fixed order (service, then body), so that
/// page cursors count them the same way every time.
fn sort_newest_first(logs: &mut [LogRow]) {
    logs.sort_by(|a, b| {
        b.time_unix_nano
            .cmp(&a.time_unix_nano)
            .then_with(|| a.resource.service_name.cmp(&b.resource.service_name))
            .then_with(|| a.body.cmp(&b.body))
    });
}

/// The time of the `k`-th newest record (1-based), reordering `logs` newest first.
fn kth_newest(logs: &mut [LogRow], k: usize) -> i64 {
    sort_newest_first(logs);
    logs.get(k.saturating_sub(1))
        .map(|l| l.time_unix_nano)
        .unwrap_or(i64::MIN)
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
