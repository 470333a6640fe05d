//! `/compare?a=TRACE&b=TRACE`: two traces side by side, their span trees aligned, the spans
//! only one of them has, and the spans that explain the difference first. `b=typical` picks
//! the trace of A's root operation closest to that operation's median and redirects to it,
//! so the address (and a saved view) names two traces.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::{format, render};
use crate::model::TraceId;
use crate::query::trace_compare::{
    AlignedSpan, Presence, SpanSide, TraceComparison, TYPICAL_AROUND_NANO,
};
use crate::query::{QueryEngine, QueryError, TraceSummary};

/// The form, as it travels in the URL.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct CompareForm {
    #[serde(default)]
    pub a: String,
    #[serde(default)]
    pub b: String,
}

/// One trace's heading.
pub struct TraceHead {
    pub label: &'static str,
    pub href: String,
    pub id: String,
    pub root: String,
    pub time: String,
    pub duration: String,
    pub spans: usize,
    pub errors: usize,
}

/// One row of the aligned tree.
pub struct AlignedRow {
    pub indent_px: usize,
    pub service: String,
    pub color: &'static str,
    pub operation: String,
    pub ordinal: usize,
    pub presence: &'static str,
    pub a: String,
    pub b: String,
    pub a_self: String,
    pub b_self: String,
    pub delta: String,
    pub delta_class: &'static str,
    pub self_delta: String,
    pub a_critical: bool,
    pub b_critical: bool,
    pub a_error: bool,
    pub b_error: bool,
}

#[derive(Template)]
#[template(path = "compare.html")]
struct ComparePage {
    title: String,
    active: &'static str,
    save: Option<super::SaveForm>,
    form: CompareForm,
    heads: Vec<TraceHead>,
    summary: String,
    rows: Vec<AlignedRow>,
    explaining: Vec<AlignedRow>,
    error: Option<String>,
}

fn head(label: &'static str, t: &TraceSummary) -> TraceHead {
    TraceHead {
        label,
        href: format!("/traces/{}", t.trace_id),
        id: t.trace_id.to_hex(),
        root: format!("{}: {}", t.root_service, t.root_name),
        time: format::time(t.start_time_unix_nano),
        duration: format::duration(t.duration_nano),
        spans: t.span_count,
        errors: t.error_count,
    }
}

/// A signed duration: "+1.20 s", "−35.0 ms", "0".
fn signed(ns: i64) -> String {
    match ns {
        0 => "0".into(),
        n if n > 0 => format!("+{}", format::duration(n)),
        n => format!("−{}", format::duration(-n)),
    }
}

fn row(s: &AlignedSpan) -> AlignedRow {
    let side = |x: &Option<SpanSide>, f: fn(&SpanSide) -> i64| {
        x.as_ref()
            .map(|s| format::duration(f(s)))
            .unwrap_or_else(|| "—".into())
    };
    let delta = s.duration_delta_nano.unwrap_or(s.self_delta_nano);
    AlignedRow {
        indent_px: s.depth * 14,
        color: format::service_color(&s.service),
        service: s.service.clone(),
        operation: s.operation.clone(),
        ordinal: s.ordinal,
        presence: match s.presence {
            Presence::Both => "both",
            Presence::OnlyA => "only-a",
            Presence::OnlyB => "only-b",
        },
        a: side(&s.a, |s| s.duration_nano),
        b: side(&s.b, |s| s.duration_nano),
        a_self: side(&s.a, |s| s.self_nano),
        b_self: side(&s.b, |s| s.self_nano),
        delta: match s.presence {
            Presence::Both => signed(delta),
            Presence::OnlyA => "only in A".into(),
            Presence::OnlyB => "only in B".into(),
        },
        delta_class: match delta {
            d if d > 0 => "worse",
            d if d < 0 => "better",
            _ => "",
        },
        self_delta: signed(s.self_delta_nano),
        a_critical: s.a.as_ref().is_some_and(|x| x.on_critical_path),
        b_critical: s.b.as_ref().is_some_and(|x| x.on_critical_path),
        a_error: s.a.as_ref().is_some_and(|x| x.error),
        b_error: s.b.as_ref().is_some_and(|x| x.error),
    }
}

fn page(
    chrome: &super::chrome::PageChrome,
    form: CompareForm,
    found: Result<TraceComparison, String>,
) -> ComparePage {
    // A saved comparison keeps the span of time both traces cover.
    let covered = found.as_ref().ok().map(|c| {
        let end = |t: &TraceSummary| t.start_time_unix_nano + t.duration_nano;
        let start = c.a.start_time_unix_nano.min(c.b.start_time_unix_nano);
        (start, end(&c.a).max(end(&c.b)).max(start + 1))
    });
    let (heads, summary, rows, explaining, error) = match found {
        Ok(c) => (
            vec![head("A", &c.a), head("B", &c.b)],
            format!(
                "B took {} ({} against {}); {} spans only in A, {} only in B.",
                match c.duration_delta_nano {
                    0 => "as long as A".to_string(),
                    d if d > 0 => format!("{} longer", format::duration(d)),
                    d => format!("{} less", format::duration(-d)),
                },
                format::duration(c.b.duration_nano),
                format::duration(c.a.duration_nano),
                c.only_in_a,
                c.only_in_b
            ),
            c.spans.iter().map(row).collect(),
            c.explaining.iter().map(|i| row(&c.spans[*i])).collect(),
            None,
        ),
        Err(e) => (Vec::new(), String::new(), Vec::new(), Vec::new(), Some(e)),
    };
    ComparePage {
        title: "Compare traces".into(),
        active: "traces",
        save: covered.and_then(|(start, end)| chrome.save_form(start, end)),
        form,
        heads,
        summary,
        rows,
        explaining,
        error,
    }
}

pub async fn handler(
    State(engine): State<QueryEngine>,
    chrome: super::chrome::PageChrome,
    Query(form): Query<CompareForm>,
) -> Response {
    let (a_text, b_text) = (form.a.trim().to_string(), form.b.trim().to_string());
    if a_text.is_empty() && b_text.is_empty() {
        return render(
            &page(&chrome, form, Err(String::new())).without_error(),
            StatusCode::OK,
        );
    }
    let parse = |name: &str, text: &str| -> Result<TraceId, String> {
        text.parse()
            .map_err(|e| format!("{name}: invalid trace id {text:?}: {e}"))
    };
    let a = match parse("A", &a_text) {
        Ok(a) => a,
        Err(e) => return render(&page(&chrome, form, Err(e)), StatusCode::BAD_REQUEST),
    };
    if b_text == "typical" {
        return match engine.typical_trace(a, TYPICAL_AROUND_NANO).await {
            Ok(Some(b)) => Redirect::to(&super::url("/compare", &[("a", a.to_hex()), ("b", b.to_hex())]))
                .into_response(),
            Ok(None) => render(
                &page(&chrome, form, Err("No other trace of this trace's root operation started within half an hour of it.".into())),
                StatusCode::NOT_FOUND,
            ),
            Err(e) => failed(&chrome, form, e),
        };
    }
    let b = match parse("B", &b_text) {
        Ok(b) => b,
        Err(e) => return render(&page(&chrome, form, Err(e)), StatusCode::BAD_REQUEST),
    };
    match engine.compare_traces(a, b).await {
        Ok(c) => render(&page(&chrome, form, Ok(c)), StatusCode::OK),
        Err(e) => failed(&chrome, form, e),
    }
}

/// The page for a failed comparison, with the status the error calls for.
fn failed(chrome: &super::chrome::PageChrome, form: CompareForm, e: QueryError) -> Response {
    match super::refused(e) {
        Ok((status, m)) => render(&page(chrome, form, Err(m)), status),
        Err(page) => *page,
    }
}

impl ComparePage {
    /// The empty form (no error to show).
    fn without_error(mut self) -> Self {
        self.error = None;
        self
    }
}
