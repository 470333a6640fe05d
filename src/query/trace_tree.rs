//! Shape of one trace: its root, its summary, and its critical path.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use crate::model::{SpanId, SpanRow, TraceId};

/// One line of a trace search result.
#[derive(Debug, Clone, Serialize)]
pub struct TraceSummary {
    pub trace_id: TraceId,
    /// Service and name of the root span (the earliest span without a parent in the trace,
    /// or the earliest span when every parent is missing).
    pub root_service: String,
    pub root_name: String,
    pub start_time_unix_nano: i64,
    pub duration_nano: i64,
    pub span_count: usize,
    pub error_count: usize,
    /// Services touched, sorted.
    pub services: Vec<String>,
}

/// Spans whose parent is not part of the trace (not received, or the root).
pub fn top_level(spans: &[SpanRow]) -> Vec<&SpanRow> {
    let ids: HashSet<SpanId> = spans.iter().map(|s| s.span_id).collect();
    spans
        .iter()
        .filter(|s| s.parent_span_id.is_none_or(|p| !ids.contains(&p)))
        .collect()
}

/// The root: the earliest true root, else the earliest top-level span.
pub fn root(spans: &[SpanRow]) -> Option<&SpanRow> {
    let tops = top_level(spans);
    tops.iter()
        .filter(|s| s.parent_span_id.is_none())
        .min_by_key(|s| s.start_time_unix_nano)
        .or_else(|| tops.iter().min_by_key(|s| s.start_time_unix_nano))
        .copied()
}

/// Summarises a non-empty trace.
pub fn summarize(trace_id: TraceId, spans: &[SpanRow]) -> TraceSummary {
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
    let mut services: Vec<String> = spans
        .iter()
        .map(|s| s.resource.service_name.clone())
        .collect();
    services.sort();
    services.dedup();
    let root = root(spans);
    TraceSummary {
        trace_id,
        root_service: root
            .map(|r| r.resource.service_name.clone())
            .unwrap_or_default(),
        root_name: root.map(|r| r.name.clone()).unwrap_or_default(),
        start_time_unix_nano: start,
        duration_nano: end - start,
        span_count: spans.len(),
        error_count: spans.iter().filter(|s| s.is_error()).count(),
        services,
    }
}

/// The spans that decided the end-to-end duration. From the root's end, walk back: the
/// child that finished last before that point was being waited for; it is on the path (and
/// so, recursively, is its own critical path), and the walk continues from that child's
/// start. Children that end after their parent (fire-and-forget work) do not count.
pub fn critical_path(spans: &[SpanRow]) -> Vec<SpanId> {
    let mut children: HashMap<SpanId, Vec<&SpanRow>> = HashMap::new();
    for s in spans {
        if let Some(p) = s.parent_span_id {
            children.entry(p).or_default().push(s);
        }
    }
    let mut path = Vec::new();
    if let Some(root) = root(spans) {
        let mut seen = HashSet::new();
        walk(root, &children, &mut seen, &mut path);
    }
    path
}

fn walk<'a>(
    span: &'a SpanRow,
    children: &HashMap<SpanId, Vec<&'a SpanRow>>,
    seen: &mut HashSet<SpanId>,
    path: &mut Vec<SpanId>,
) {
    if !seen.insert(span.span_id) {
        return;
    }
    path.push(span.span_id);
    let Some(kids) = children.get(&span.span_id) else {
        return;
    };
    let mut until = span.end_time_unix_nano;
    while let Some(next) = kids
        .iter()
        .filter(|k| k.end_time_unix_nano <= until && !seen.contains(&k.span_id))
        .max_by_key(|k| (k.end_time_unix_nano, k.duration_nano))
    {
        walk(next, children, seen, path);
        until = next.start_time_unix_nano;
    }
}
