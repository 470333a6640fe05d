//! Two traces side by side: their span trees aligned, what only one of them has, and which
//! spans explain the difference in duration.
//!
//! Spans are aligned by their path from the root: at each level a span is known by its
//! service, its operation and its position among the siblings with that same service and
//! operation (in start order), as Jaeger's trace comparison does. So the second
//! `inventory GET /stock` under `checkout POST /checkout` in A is compared with the second one
//! in B, and a retry only one trace made shows as a span only in that trace.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use super::trace_tree::{self, TraceSummary};
use super::{QueryEngine, QueryError};
use crate::model::{SpanId, SpanRow, TraceId};

/// How far around a trace the typical trace of its operation is looked for.
pub const TYPICAL_AROUND_NANO: i64 = crate::model::time::NANOS_PER_HOUR / 2;

/// Most spans listed as explaining the difference.
const MAX_EXPLAINING: usize = 10;

/// One side of an aligned span.
#[derive(Debug, Clone, Serialize)]
pub struct SpanSide {
    pub span_id: SpanId,
    /// Start relative to its trace's start.
    pub offset_nano: i64,
    pub duration_nano: i64,
    /// Time not covered by any child span (what the span spent itself).
    pub self_nano: i64,
    pub error: bool,
    pub on_critical_path: bool,
}

/// Where an aligned span occurs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Presence {
    Both,
    OnlyA,
    OnlyB,
}

/// One position of the merged tree.
#[derive(Debug, Clone, Serialize)]
pub struct AlignedSpan {
    /// Depth in the merged tree (0 for top-level spans).
    pub depth: usize,
    pub service: String,
    pub operation: String,
    /// Position among siblings of the same service and operation (0 for the first).
    pub ordinal: usize,
    pub presence: Presence,
    pub a: Option<SpanSide>,
    pub b: Option<SpanSide>,
    /// B's duration minus A's (only when both have the span).
    pub duration_delta_nano: Option<i64>,
    /// B's self time minus A's; a span only in one trace counts its whole self time (added
    /// in B: positive; missing in B: negative).
    pub self_delta_nano: i64,
}

/// Two traces compared.
#[derive(Debug, Clone, Serialize)]
pub struct TraceComparison {
    pub a: TraceSummary,
    pub b: TraceSummary,
    /// B's end-to-end duration minus A's.
    pub duration_delta_nano: i64,
    /// The merged tree in depth-first order (children by start), each span once.
    pub spans: Vec<AlignedSpan>,
    pub only_in_a: usize,
    pub only_in_b: usize,
    /// Indexes into `spans` of the spans whose self time changed most (largest first): where
    /// the difference in duration went.
    pub explaining: Vec<usize>,
}

/// A span's position key among its siblings.
type Step = (String, String, usize);

/// One trace's spans by their path from the root.
struct Keyed {
    by_path: HashMap<Vec<Step>, SpanSide>,
}

impl QueryEngine {
    /// Compares trace `b` with trace `a`. `NotFound` names a trace that is not stored.
    pub async fn compare_traces(
        &self,
        a: TraceId,
        b: TraceId,
    ) -> Result<TraceComparison, QueryError> {
        if a == b {
            return Err(QueryError::BadRequest(format!(
                "a and b are the same trace ({a}); name two traces"
            )));
        }
        let mut spans = self.spans_of_traces(&[a, b]).await?;
        let mut take = |id: TraceId, side: &str| {
            spans
                .remove(&id)
                .filter(|s| !s.is_empty())
                .ok_or_else(|| QueryError::NotFound(format!("trace {side} ({id}) is not stored")))
        };
        let (spans_a, spans_b) = (take(a, "a")?, take(b, "b")?);
        Ok(compare(a, &spans_a, b, &spans_b))
    }

    /// The trace of the same root operation closest to that operation's median duration
    /// among traces started within `around_nano` of `trace`'s start (itself excluded): the
    /// "typical" trace to compare a trace with. `None` when no other trace qualifies.
    pub async fn typical_trace(
        &self,
        trace: TraceId,
        around_nano: i64,
    ) -> Result<Option<TraceId>, QueryError> {
        let spans = self.trace_spans(trace).await?;
        if spans.is_empty() {
            return Err(QueryError::NotFound(format!("trace {trace} is not stored")));
        }
        let summary = trace_tree::summarize(trace, &spans);
        let search = super::TraceSearch {
            service: Some(summary.root_service.clone()),
            operation: Some(summary.root_name.clone()),
            start: Some(summary.start_time_unix_nano.saturating_sub(around_nano)),
            end: Some(summary.start_time_unix_nano.saturating_add(around_nano)),
            limit: 1000,
            ..Default::default()
        };
        let mut found: Vec<TraceSummary> = self
            .search_traces(&search)
            .await?
            .into_iter()
            .filter(|t| t.trace_id != trace && t.root_name == summary.root_name)
            .collect();
        if found.is_empty() {
            return Ok(None);
        }
        found.sort_by_key(|t| t.duration_nano);
        let median = found[found.len() / 2].duration_nano;
        Ok(found
            .iter()
            .min_by_key(|t| (t.duration_nano - median).abs())
            .map(|t| t.trace_id))
    }
}

/// The comparison of two non-empty traces.
pub fn compare(
    a: TraceId,
    spans_a: &[SpanRow],
    b: TraceId,
    spans_b: &[SpanRow],
) -> TraceComparison {
    let (summary_a, summary_b) = (
        trace_tree::summarize(a, spans_a),
        trace_tree::summarize(b, spans_b),
    );
    let (keyed_a, keyed_b) = (keyed(spans_a), keyed(spans_b));
    // The merged tree: every path of either trace, children under their parent path.
    let mut children: BTreeMap<Vec<Step>, Vec<Vec<Step>>> = BTreeMap::new();
    let mut paths: Vec<&Vec<Step>> = keyed_a
        .by_path
        .keys()
        .chain(keyed_b.by_path.keys())
        .collect();
    paths.sort();
    paths.dedup();
    for path in &paths {
        let parent = path[..path.len() - 1].to_vec();
        children.entry(parent).or_default().push((*path).clone());
    }
    let first_offset = |p: &Vec<Step>| {
        [keyed_a.by_path.get(p), keyed_b.by_path.get(p)]
            .into_iter()
            .flatten()
            .map(|s| s.offset_nano)
            .min()
            .unwrap_or(0)
    };
    for kids in children.values_mut() {
        kids.sort_by_key(|p| (first_offset(p), p.clone()));
    }
    let mut spans = Vec::with_capacity(paths.len());
    let mut stack: Vec<Vec<Step>> = children.get(&Vec::new()).cloned().unwrap_or_default();
    stack.reverse();
    while let Some(path) = stack.pop() {
        let (sa, sb) = (
            keyed_a.by_path.get(&path).cloned(),
            keyed_b.by_path.get(&path).cloned(),
        );
        let presence = match (&sa, &sb) {
            (Some(_), Some(_)) => Presence::Both,
            (Some(_), None) => Presence::OnlyA,
            _ => Presence::OnlyB,
        };
        let self_of = |s: &Option<SpanSide>| s.as_ref().map_or(0, |s| s.self_nano);
        let (service, operation, ordinal) = path.last().cloned().unwrap_or_default();
        spans.push(AlignedSpan {
            depth: path.len() - 1,
            service,
            operation,
            ordinal,
            presence,
            duration_delta_nano: match (&sa, &sb) {
                (Some(x), Some(y)) => Some(y.duration_nano - x.duration_nano),
                _ => None,
            },
            self_delta_nano: self_of(&sb) - self_of(&sa),
            a: sa,
            b: sb,
        });
        if let Some(kids) = children.get(&path) {
            stack.extend(kids.iter().rev().cloned());
        }
    }
    let mut explaining: Vec<usize> = (0..spans.len())
        .filter(|i| spans[*i].self_delta_nano != 0)
        .collect();
    explaining.sort_by_key(|i| std::cmp::Reverse(spans[*i].self_delta_nano.abs()));
    explaining.truncate(MAX_EXPLAINING);
    TraceComparison {
        duration_delta_nano: summary_b.duration_nano - summary_a.duration_nano,
        only_in_a: spans
            .iter()
            .filter(|s| s.presence == Presence::OnlyA)
            .count(),
        only_in_b: spans
            .iter()
            .filter(|s| s.presence == Presence::OnlyB)
            .count(),
        a: summary_a,
        b: summary_b,
        spans,
        explaining,
    }
}

/// Each span of one trace under its path of (service, operation, ordinal) steps.
fn keyed(spans: &[SpanRow]) -> Keyed {
    let start = spans
        .iter()
        .map(|s| s.start_time_unix_nano)
        .min()
        .unwrap_or(0);
    let critical: std::collections::HashSet<SpanId> =
        trace_tree::critical_path(spans).into_iter().collect();
    let mut kids: HashMap<Option<SpanId>, Vec<&SpanRow>> = HashMap::new();
    let tops: std::collections::HashSet<SpanId> = trace_tree::top_level(spans)
        .into_iter()
        .map(|s| s.span_id)
        .collect();
    for s in spans {
        // Spans whose parent was never received hang at the top, like the root.
        let parent = if tops.contains(&s.span_id) {
            None
        } else {
            s.parent_span_id
        };
        kids.entry(parent).or_default().push(s);
    }
    for list in kids.values_mut() {
        list.sort_by_key(|s| (s.start_time_unix_nano, s.span_id));
    }
    let mut by_path = HashMap::new();
    let mut todo: Vec<(Option<SpanId>, Vec<Step>)> = vec![(None, Vec::new())];
    let mut seen = std::collections::HashSet::new();
    while let Some((parent, path)) = todo.pop() {
        let Some(list) = kids.get(&parent) else {
            continue;
        };
        let mut ordinals: HashMap<(&str, &str), usize> = HashMap::new();
        for s in list {
            if !seen.insert(s.span_id) {
                continue; // a span listed as its own ancestor: counted once
            }
            let key = (s.resource.service_name.as_str(), s.name.as_str());
            let ordinal = ordinals.entry(key).or_default();
            let mut own = path.clone();
            own.push((key.0.to_string(), key.1.to_string(), *ordinal));
            *ordinal += 1;
            let child_spans = kids.get(&Some(s.span_id)).map(Vec::as_slice).unwrap_or(&[]);
            by_path.insert(
                own.clone(),
                SpanSide {
                    span_id: s.span_id,
                    offset_nano: s.start_time_unix_nano - start,
                    duration_nano: s.duration_nano,
                    self_nano: self_time(s, child_spans),
                    error: s.is_error(),
                    on_critical_path: critical.contains(&s.span_id),
                },
            );
            todo.push((Some(s.span_id), own));
        }
    }
    Keyed { by_path }
}

/// `span`'s duration not covered by any of its children (clipped to the span).
fn self_time(span: &SpanRow, children: &[&SpanRow]) -> i64 {
    let (from, to) = (span.start_time_unix_nano, span.end_time_unix_nano);
    let mut intervals: Vec<(i64, i64)> = children
        .iter()
        .map(|c| {
            (
                c.start_time_unix_nano.max(from),
                c.end_time_unix_nano.min(to),
            )
        })
        .filter(|(s, e)| e > s)
        .collect();
    intervals.sort_unstable();
    let (mut covered, mut reach) = (0i64, from);
    for (s, e) in intervals {
        let s = s.max(reach);
        if e > s {
            covered += e - s;
            reach = e;
        }
    }
    (to - from - covered).max(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Resource, SpanKind, SpanStatus};
    use std::sync::Arc;

    const MS: i64 = 1_000_000;

    fn span(
        trace: u8,
        id: u64,
        parent: Option<u64>,
        service: &str,
        name: &str,
        start_ms: i64,
        end_ms: i64,
    ) -> SpanRow {
        SpanRow {
            trace_id: TraceId([trace; 16]),
            span_id: SpanId(id.to_be_bytes()),
            parent_span_id: parent.map(|p| SpanId(p.to_be_bytes())),
            trace_state: String::new(),
            name: name.into(),
            kind: SpanKind::Server,
            start_time_unix_nano: start_ms * MS,
            end_time_unix_nano: end_ms * MS,
            duration_nano: (end_ms - start_ms) * MS,
            status_code: SpanStatus::Ok,
            status_message: String::new(),
            attributes: Default::default(),
            events: Vec::new(),
            links: Vec::new(),
            resource: Arc::new(Resource {
                service_name: service.into(),
                ..Default::default()
            }),
            scope_name: String::new(),
            scope_version: String::new(),
            correlation_id: None,
        }
    }

    #[test]
    fn aligned_by_path_with_added_missing_and_slower_spans() {
        // A: frontend → checkout → payment, inventory
        // B: frontend → checkout → payment (slower), payment (a retry), shipping; no inventory
        let a = vec![
            span(1, 1, None, "frontend", "GET /", 0, 100),
            span(1, 2, Some(1), "checkout", "POST", 10, 90),
            span(1, 3, Some(2), "payment", "charge", 20, 50),
            span(1, 4, Some(2), "inventory", "reserve", 55, 80),
        ];
        let b = vec![
            span(2, 11, None, "frontend", "GET /", 0, 300),
            span(2, 12, Some(11), "checkout", "POST", 10, 290),
            span(2, 13, Some(12), "payment", "charge", 20, 150),
            span(2, 14, Some(12), "payment", "charge", 150, 250),
            span(2, 15, Some(12), "shipping", "quote", 255, 280),
        ];
        let c = compare(TraceId([1; 16]), &a, TraceId([2; 16]), &b);
        assert_eq!(c.duration_delta_nano, 200 * MS);
        let listed: Vec<(usize, &str, usize, Presence)> = c
            .spans
            .iter()
            .map(|s| (s.depth, s.service.as_str(), s.ordinal, s.presence))
            .collect();
        assert_eq!(
            listed,
            [
                (0, "frontend", 0, Presence::Both),
                (1, "checkout", 0, Presence::Both),
                (2, "payment", 0, Presence::Both),
                (2, "inventory", 0, Presence::OnlyA),
                (2, "payment", 1, Presence::OnlyB),
                (2, "shipping", 0, Presence::OnlyB),
            ]
        );
        assert_eq!((c.only_in_a, c.only_in_b), (1, 2));
        let payment = &c.spans[2];
        assert_eq!(payment.duration_delta_nano, Some(100 * MS));
        // Checkout's self time: A 80 − 30 − 25 = 25 ms; B 280 − 130 − 100 − 25 = 25 ms.
        assert_eq!(c.spans[1].self_delta_nano, 0);
        // What explains the difference most: the slower charge (+100) and the retry (+100),
        // then the frontend's own time (A 20, B 20: none), shipping (+25) and the missing
        // inventory (−25).
        let first: Vec<(&str, usize)> = c.explaining[..2]
            .iter()
            .map(|i| (c.spans[*i].service.as_str(), c.spans[*i].ordinal))
            .collect();
        assert!(
            first.contains(&("payment", 0)) && first.contains(&("payment", 1)),
            "{first:?}"
        );
        assert_eq!(c.explaining.len(), 4);
        assert!(c.spans[0].a.as_ref().unwrap().on_critical_path);
    }

    #[test]
    fn self_time_merges_overlapping_children() {
        let parent = span(1, 1, None, "a", "p", 0, 100);
        let kids = [
            span(1, 2, Some(1), "a", "x", 10, 40),
            span(1, 3, Some(1), "a", "y", 30, 60),
            span(1, 4, Some(1), "a", "z", 90, 130),
        ];
        let refs: Vec<&SpanRow> = kids.iter().collect();
        // Covered: 10–60 and 90–100 = 60 ms; self 40 ms.
        assert_eq!(self_time(&parent, &refs), 40 * MS);
    }
}
