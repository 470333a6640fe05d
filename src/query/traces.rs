//! Traces: one trace by id, a trace stitched with the traces it links to or shares a
//! correlation id with, and trace search.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde::Serialize;
use tantivy::query::Query;

use super::scan::{kth_largest, newest_first_reads};
use super::{trace_tree, QueryEngine, QueryError, StatusFilter, TraceSearch, TraceSummary};
use crate::index::KeyKind;
use crate::model::LiftedKey;
use crate::model::{LogRow, Signal, SpanId, SpanRow, SpanStatus, TraceId};
use crate::pipeline::LiveRows;
use crate::store::Prefilter;

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

/// Most traces stitched into one view.
pub const MAX_LINKED_TRACES: usize = 10;

/// Correlation ids of one trace looked up for stitching: a trace whose spans carry many ids
/// (a batch job) would otherwise cost a lookup per id.
const MAX_STITCHED_CORRELATION_IDS: usize = 8;

impl QueryEngine {
    /// Every span of one trace, each once, in start order.
    pub(super) async fn trace_spans(&self, trace_id: TraceId) -> Result<Vec<SpanRow>, QueryError> {
        Ok(self
            .spans_of_traces(&[trace_id])
            .await?
            .remove(&trace_id)
            .unwrap_or_default())
    }

    /// The spans of several traces in one pass over the blocks that hold any of them.
    pub(super) async fn spans_of_traces(
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
        // Other traces of the same request by correlation id, for the first few ids.
        let correlation_ids: BTreeSet<&String> = trace
            .spans
            .iter()
            .filter_map(|s| s.correlation_id.as_ref())
            .collect();
        for id in correlation_ids
            .into_iter()
            .take(MAX_STITCHED_CORRELATION_IDS)
        {
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
                let trace_durations = !search.durations_of_span()
                    && (search.min_duration_nano.is_some() || search.max_duration_nano.is_some());
                let post_filtered = search.status.is_some() || trace_durations;
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
            // With a service or operation chosen, the candidates' matching span already met
            // the bounds.
            let duration_ok = search.durations_of_span()
                || (search
                    .min_duration_nano
                    .is_none_or(|d| summary.duration_nano >= d)
                    && search
                        .max_duration_nano
                        .is_none_or(|d| summary.duration_nano <= d));
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
    pub(super) async fn candidate_traces(
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
            match LiftedKey::of(k) {
                // Lifted resource attributes are not attribute terms: service and instance
                // have terms of their own; version and host are checked in their columns.
                Some(LiftedKey::ServiceName) => {
                    terms.push((Occur::Must, self.index.term(f.service, v)))
                }
                Some(LiftedKey::InstanceId) => {
                    terms.push((Occur::Must, self.index.term(f.instance, v)))
                }
                Some(LiftedKey::HostName | LiftedKey::Version) => {}
                None => terms.push((Occur::Must, self.index.attr_query(k, v))),
            }
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
                    self.index.term(f.status, SpanStatus::Error.as_str()),
                    search
                        .time_prefilter()
                        .text_is("status_code", SpanStatus::Error.as_str()),
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
    pub(super) async fn traces_with_spans(
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
}
