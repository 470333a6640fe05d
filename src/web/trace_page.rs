//! `/traces/{id}`: the stitched waterfall of one request.

use std::collections::{HashMap, HashSet};

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::format::{self, AttrRow, ShownValue};
use super::{message, render};
use crate::model::LiftedKey;
use crate::model::{value_text, LogRow, SpanId, SpanRow, TraceId};
use crate::query::{trace_tree, LinkedTrace, QueryEngine, Relation, StitchedTrace, TraceDetail};

/// `?span=` opens that span's details.
#[derive(Debug, Default, Deserialize)]
pub struct TraceParams {
    span: Option<String>,
}

/// A span event; exceptions are split into type, message and stack trace.
pub struct EventView {
    pub name: String,
    pub offset: String,
    pub exception_type: String,
    pub exception_message: String,
    pub stacktrace: String,
    pub attributes: Vec<(String, ShownValue)>,
}

/// A log line shown inside a span or under the trace.
pub struct LogLineView {
    pub time: String,
    pub severity: String,
    pub severity_class: &'static str,
    pub service: String,
    pub body: ShownValue,
}

/// One span row of the waterfall and its details.
pub struct SpanView {
    pub id: String,
    /// Ancestor span ids separated by spaces, for collapsing subtrees.
    pub ancestors: String,
    pub indent: usize,
    pub service: String,
    pub instance: String,
    pub color: &'static str,
    pub name: String,
    pub kind: String,
    pub offset_pct: f64,
    pub width_pct: f64,
    pub duration: String,
    pub start_offset: String,
    pub error: bool,
    pub status_message: String,
    pub critical: bool,
    pub orphan: bool,
    pub has_children: bool,
    pub open: bool,
    pub attributes: Vec<AttrRow>,
    pub resource: Vec<AttrRow>,
    pub events: Vec<EventView>,
    pub links: Vec<(String, String)>,
    pub logs: Vec<LogLineView>,
}

/// The start of a stitched-in trace inside the waterfall.
pub struct TraceHeader {
    pub indent: usize,
    /// Ancestor span ids, so collapsing a span hides the traces hanging under it too.
    pub ancestors: String,
    pub trace_id: String,
    pub relation: &'static str,
    pub span_count: usize,
    pub duration: String,
}

/// A waterfall line.
pub enum Row {
    Span(Box<SpanView>),
    Header(TraceHeader),
}

#[derive(Template)]
#[template(path = "trace.html")]
struct TracePage {
    title: String,
    active: &'static str,
    save: Option<super::SaveForm>,
    trace_id: String,
    root: String,
    start: String,
    duration: String,
    span_count: usize,
    service_count: usize,
    error_count: usize,
    linked_count: usize,
    rows: Vec<Row>,
    ticks: Vec<(f64, String)>,
    trace_logs: Vec<LogLineView>,
    logs_href: String,
    /// This trace against the typical trace of its root operation.
    compare_href: String,
}

fn log_view(l: &LogRow) -> LogLineView {
    LogLineView {
        time: format::time(l.time_unix_nano),
        severity: l.severity_text.clone(),
        severity_class: format::severity_class(l.severity_number),
        service: l.resource.service_name.clone(),
        body: format::shown(&l.body),
    }
}

/// Shared time axis of the whole stitched view.
struct Axis {
    start: i64,
    len: f64,
}

impl Axis {
    fn pct(&self, t: i64) -> f64 {
        ((t - self.start) as f64 / self.len * 100.0).clamp(0.0, 100.0)
    }
}

/// Walks one trace depth-first, inserting linked traces under the span they hang from.
struct Builder<'a> {
    axis: Axis,
    rows: Vec<Row>,
    open_span: Option<SpanId>,
    attached: HashMap<SpanId, Vec<&'a LinkedTrace>>,
}

impl<'a> Builder<'a> {
    fn add_trace(&mut self, trace: &'a TraceDetail, indent: usize, ancestors: &str) {
        let ids: HashSet<SpanId> = trace.spans.iter().map(|s| s.span_id).collect();
        let mut children: HashMap<SpanId, Vec<&SpanRow>> = HashMap::new();
        for s in &trace.spans {
            if let Some(p) = s.parent_span_id.filter(|p| ids.contains(p)) {
                children.entry(p).or_default().push(s);
            }
        }
        let critical: HashSet<SpanId> = trace.critical_path.iter().copied().collect();
        let mut logs_by_span: HashMap<SpanId, Vec<&LogRow>> = HashMap::new();
        for l in &trace.logs {
            if let Some(s) = l.span_id {
                logs_by_span.entry(s).or_default().push(l);
            }
        }
        let ctx = TraceCtx {
            ids: &ids,
            children: &children,
            critical: &critical,
            logs: &logs_by_span,
            trace_start: trace.start_time_unix_nano,
        };
        for top in trace_tree::top_level(&trace.spans) {
            self.add_span(top, &ctx, indent, ancestors);
        }
    }

    fn add_span(&mut self, s: &'a SpanRow, ctx: &TraceCtx<'_, 'a>, indent: usize, ancestors: &str) {
        let kids = ctx.children.get(&s.span_id).cloned().unwrap_or_default();
        let attached = self.attached.remove(&s.span_id).unwrap_or_default();
        let id = s.span_id.to_hex();
        self.rows.push(Row::Span(Box::new(span_view(
            s,
            ctx,
            indent,
            ancestors,
            &self.axis,
            !kids.is_empty() || !attached.is_empty(),
            self.open_span == Some(s.span_id),
        ))));
        let inner = format!("{ancestors} {id}");
        for child in kids {
            self.add_span(child, ctx, indent + 1, &inner);
        }
        for linked in attached {
            self.add_linked(linked, indent + 1, &inner);
        }
    }

    fn add_linked(&mut self, linked: &'a LinkedTrace, indent: usize, ancestors: &str) {
        self.rows.push(Row::Header(TraceHeader {
            indent,
            ancestors: ancestors.trim().to_string(),
            trace_id: linked.trace.trace_id.to_hex(),
            relation: match linked.relation {
                Relation::LinkedFrom => "continues this request (its span links back here)",
                Relation::LinksTo => "linked from a span of this trace",
                Relation::SameCorrelationId => "same correlation id",
            },
            span_count: linked.trace.spans.len(),
            duration: format::duration(linked.trace.duration_nano),
        }));
        self.add_trace(&linked.trace, indent + 1, ancestors);
    }
}

/// Per-trace lookups for building rows.
struct TraceCtx<'c, 'a> {
    ids: &'c HashSet<SpanId>,
    children: &'c HashMap<SpanId, Vec<&'a SpanRow>>,
    critical: &'c HashSet<SpanId>,
    logs: &'c HashMap<SpanId, Vec<&'a LogRow>>,
    trace_start: i64,
}

fn span_view(
    s: &SpanRow,
    ctx: &TraceCtx<'_, '_>,
    indent: usize,
    ancestors: &str,
    axis: &Axis,
    has_children: bool,
    open: bool,
) -> SpanView {
    let events = s
        .events
        .iter()
        .map(|e| {
            let get = |k: &str| e.attributes.get(k).map(value_text).unwrap_or_default();
            EventView {
                name: e.name.clone(),
                offset: format::duration(e.time_unix_nano - ctx.trace_start),
                exception_type: get("exception.type"),
                exception_message: get("exception.message"),
                stacktrace: get("exception.stacktrace"),
                attributes: format::attribute_rows(&e.attributes)
                    .into_iter()
                    .filter(|(k, _)| !k.starts_with("exception."))
                    .collect(),
            }
        })
        .collect();
    let mut resource: Vec<_> = LiftedKey::ALL
        .into_iter()
        .map(|k| (k.key().to_string(), format::shown(s.resource.lifted(k))))
        .collect();
    resource.extend(format::attribute_rows(&s.resource.attributes));
    let service = s.resource.service_name.clone();
    let resource = format::linked_rows(resource, |key, value| {
        Some(if key == LiftedKey::ServiceName.key() {
            format!("/services/{}", super::path_segment(value))
        } else {
            super::url(
                "/traces",
                &[
                    ("service", service.clone()),
                    ("attr", format!("{key}={value}")),
                ],
            )
        })
    });
    let correlation = s.correlation_id.clone();
    let attributes = format::linked_rows(format::attribute_rows(&s.attributes), |key, value| {
        Some(if correlation.as_deref() == Some(value) {
            super::url("/logs", &[("q", format!("correlation_id:\"{value}\""))])
        } else {
            super::url("/traces", &[("attr", format!("{key}={value}"))])
        })
    });
    SpanView {
        id: s.span_id.to_hex(),
        ancestors: ancestors.trim().to_string(),
        indent,
        service: s.resource.service_name.clone(),
        instance: s.resource.service_instance_id.clone(),
        color: format::service_color(&s.resource.service_name),
        name: s.name.clone(),
        kind: s.kind.as_str().to_string(),
        offset_pct: axis.pct(s.start_time_unix_nano),
        width_pct: (s.duration_nano as f64 / axis.len * 100.0).max(0.3),
        duration: format::duration(s.duration_nano),
        start_offset: format::duration(s.start_time_unix_nano - ctx.trace_start),
        error: s.is_error(),
        status_message: s.status_message.clone(),
        critical: ctx.critical.contains(&s.span_id),
        orphan: s.parent_span_id.is_some_and(|p| !ctx.ids.contains(&p)),
        has_children,
        open,
        attributes,
        resource,
        events,
        links: s
            .links
            .iter()
            .map(|l| (l.trace_id.to_hex(), l.span_id.to_hex()))
            .collect(),
        logs: ctx
            .logs
            .get(&s.span_id)
            .into_iter()
            .flatten()
            .map(|l| log_view(l))
            .collect(),
    }
}

fn page(stitched: &StitchedTrace, open_span: Option<SpanId>) -> TracePage {
    let trace = &stitched.trace;
    let all = std::iter::once(trace).chain(stitched.linked.iter().map(|l| &l.trace));
    let start = all
        .clone()
        .map(|t| t.start_time_unix_nano)
        .min()
        .unwrap_or(0);
    let end = all.map(|t| t.end_time_unix_nano).max().unwrap_or(start);
    let len = (end - start).max(1) as f64;
    let mut attached: HashMap<SpanId, Vec<&LinkedTrace>> = HashMap::new();
    let mut trailing = Vec::new();
    let ids: HashSet<SpanId> = trace.spans.iter().map(|s| s.span_id).collect();
    for l in &stitched.linked {
        match l.attach_to.filter(|s| ids.contains(s)) {
            Some(span) => attached.entry(span).or_default().push(l),
            None => trailing.push(l),
        }
    }
    let mut b = Builder {
        axis: Axis { start, len },
        rows: Vec::new(),
        open_span,
        attached,
    };
    b.add_trace(trace, 0, "");
    for l in trailing {
        b.add_linked(l, 0, "");
    }
    let root = trace_tree::root(&trace.spans)
        .map(|r| format!("{}: {}", r.resource.service_name, r.name))
        .unwrap_or_default();
    let ticks = (0..=4)
        .map(|i| {
            (
                i as f64 * 25.0,
                format::duration((len * i as f64 / 4.0) as i64),
            )
        })
        .collect();
    TracePage {
        title: format!("Trace {}", trace.trace_id),
        active: "traces",
        save: None,
        trace_id: trace.trace_id.to_hex(),
        root,
        start: format::time(trace.start_time_unix_nano),
        duration: format::duration(trace.duration_nano),
        span_count: trace.spans.len(),
        service_count: trace.services.len(),
        error_count: trace.spans.iter().filter(|s| s.is_error()).count(),
        linked_count: stitched.linked.len(),
        rows: b.rows,
        ticks,
        trace_logs: trace
            .logs
            .iter()
            .filter(|l| l.span_id.is_none())
            .map(log_view)
            .collect(),
        logs_href: super::url(
            "/logs",
            &[
                ("q", format!("trace_id:{}", trace.trace_id)),
                ("range", "7d".into()),
            ],
        ),
        compare_href: super::url(
            "/compare",
            &[("a", trace.trace_id.to_hex()), ("b", "typical".into())],
        ),
    }
}

pub async fn handler(
    State(engine): State<QueryEngine>,
    chrome: super::chrome::PageChrome,
    Path(id): Path<String>,
    Query(params): Query<TraceParams>,
) -> Response {
    let trace_id: TraceId = match id.parse() {
        Ok(t) => t,
        Err(e) => {
            return message(
                StatusCode::BAD_REQUEST,
                "Not a trace id",
                format!("{id:?} is not a trace id: {e}. A trace id is 32 hex digits."),
            )
        }
    };
    let open_span = params.span.as_deref().and_then(|s| s.parse().ok());
    match engine.stitched_trace(trace_id).await {
        Ok(Some(stitched)) => {
            let mut p = page(&stitched, open_span);
            let t = &stitched.trace;
            p.save = chrome.save_form(
                t.start_time_unix_nano,
                t.end_time_unix_nano.max(t.start_time_unix_nano + 1),
            );
            render(&p, StatusCode::OK)
        }
        Ok(None) => message(
            StatusCode::NOT_FOUND,
            "Trace not found",
            format!("No span of trace {trace_id} has been received (or it is past retention)."),
        ),
        Err(e) => message(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Query failed",
            e.to_string(),
        ),
    }
}
