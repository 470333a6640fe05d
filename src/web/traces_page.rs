//! `/traces`: trace search with a duration scatter plot.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::charts::{self, Chart};
use super::{format, render};
use crate::model::time::now_ns;
use crate::model::window::{TimeParams, TimeWindow, RANGES};
use crate::query::{parse_attribute, QueryEngine, StatusFilter, TraceSearch, TraceSummary};

/// Rows in one page of the result table.
const TABLE_ROWS: usize = 50;
/// Most traces one search gathers: all are drawn in the scatter plot and paged through in
/// the table. When the window holds more, the page says so and from when the plot is full
/// (the engine's own cap per search is 1 000).
const CHART_POINTS: usize = 1000;

/// The search form, as it travels in the URL.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TraceForm {
    #[serde(default)]
    pub service: String,
    #[serde(default)]
    pub operation: String,
    /// `ok`, `error` or empty.
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub min_ms: String,
    #[serde(default)]
    pub max_ms: String,
    /// `key=value`.
    #[serde(default)]
    pub attr: String,
    #[serde(default)]
    pub trace_id: String,
    #[serde(default)]
    pub correlation_id: String,
    pub range: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    /// Page of the table, from 1 (newest first).
    pub page: Option<usize>,
}

impl TraceForm {
    /// This search's URL at table page `page`.
    fn page_href(&self, page: usize) -> String {
        let pairs = [
            ("service", self.service.clone()),
            ("operation", self.operation.clone()),
            ("status", self.status.clone()),
            ("min_ms", self.min_ms.clone()),
            ("max_ms", self.max_ms.clone()),
            ("attr", self.attr.clone()),
            ("trace_id", self.trace_id.clone()),
            ("correlation_id", self.correlation_id.clone()),
            ("range", self.range.clone().unwrap_or_default()),
            ("from", self.from.clone().unwrap_or_default()),
            ("to", self.to.clone().unwrap_or_default()),
            (
                "page",
                if page > 1 {
                    page.to_string()
                } else {
                    String::new()
                },
            ),
        ];
        super::url("/traces", &pairs)
    }
}

/// What the result table shows of the traces found, said plainly.
pub struct Paging {
    /// "Traces 51–100 of 214", or "… of the newest 1 000 (more match: narrow the search)".
    pub summary: String,
    pub newer: Option<String>,
    pub older: Option<String>,
    /// Set when the search was cut: the plot holds every match from this time on only.
    pub cut_from: Option<String>,
}

/// The table page `page` of `found` traces, `capped` when the search stopped at its cap.
fn paging(form: &TraceForm, found: &[TraceSummary], capped: bool) -> (usize, Paging) {
    let pages = found.len().div_ceil(TABLE_ROWS).max(1);
    let page = form.page.unwrap_or(1).clamp(1, pages);
    let first = (page - 1) * TABLE_ROWS;
    let last = (first + TABLE_ROWS).min(found.len());
    let of = if capped {
        format!(
            "of the newest {} (more match: narrow the window or the filters)",
            found.len()
        )
    } else {
        format!("of {}", found.len())
    };
    let summary = match found.len() {
        0 => String::new(),
        _ => format!("Traces {}–{last} {of}, newest first", first + 1),
    };
    (
        first,
        Paging {
            summary,
            newer: (page > 1).then(|| form.page_href(page - 1)),
            older: (page < pages).then(|| form.page_href(page + 1)),
            cut_from: capped
                .then(|| found.iter().map(|t| t.start_time_unix_nano).min())
                .flatten()
                .map(format::time),
        },
    )
}

/// One result row.
pub struct TraceRow {
    pub href: String,
    pub trace_id: String,
    pub time: String,
    pub root_service: String,
    pub color: &'static str,
    pub root_name: String,
    pub span_count: usize,
    pub services: String,
    pub duration: String,
    pub error_count: usize,
}

#[derive(Template)]
#[template(path = "traces.html")]
struct TracesPage {
    title: String,
    active: &'static str,
    save: Option<super::SaveForm>,
    dims: charts::Dims,
    form: TraceForm,
    window: TimeWindow,
    ranges: &'static [(&'static str, i64)],
    services: Vec<String>,
    rows: Vec<TraceRow>,
    paging: Paging,
    chart: Chart,
    error: Option<String>,
    /// "What is different about these?": the search's filters as a selection against the
    /// rest of the window (only when the search selects something: errors, a duration, an
    /// attribute).
    groups_href: Option<String>,
    /// Where a region dragged on the plot goes: the group comparison with the search's
    /// service and operation, to which the script adds the region's times and durations.
    region_href: Option<String>,
}

/// A form's millisecond field as nanoseconds (empty: none), or what is wrong with it.
pub(super) fn parse_ms(text: &str, what: &str) -> Result<Option<i64>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v >= 0.0)
        .map(|v| Some((v * 1e6) as i64))
        .ok_or_else(|| format!("{what} must be a number of milliseconds, not {text:?}"))
}

/// Turns the form into a search, or says what is wrong with it.
fn to_search(form: &TraceForm, window: &TimeWindow) -> Result<TraceSearch, String> {
    let nonempty = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
    let attribute = parse_attribute(&form.attr)?;
    let trace_id = match nonempty(&form.trace_id) {
        Some(t) => Some(
            t.parse()
                .map_err(|e| format!("invalid trace id {t:?}: {e}"))?,
        ),
        None => None,
    };
    Ok(TraceSearch {
        service: nonempty(&form.service),
        operation: nonempty(&form.operation),
        status: StatusFilter::parse(&form.status)?,
        min_duration_nano: parse_ms(&form.min_ms, "min duration")?,
        max_duration_nano: parse_ms(&form.max_ms, "max duration")?,
        attribute,
        // A trace id names one trace whatever its time.
        start: trace_id.is_none().then_some(window.start),
        end: trace_id.is_none().then_some(window.end),
        trace_id,
        correlation_id: nonempty(&form.correlation_id),
        limit: CHART_POINTS,
    })
}

fn row(t: &TraceSummary) -> TraceRow {
    TraceRow {
        href: format!("/traces/{}", t.trace_id),
        trace_id: t.trace_id.to_hex(),
        time: format::time(t.start_time_unix_nano),
        color: format::service_color(&t.root_service),
        root_service: t.root_service.clone(),
        root_name: t.root_name.clone(),
        span_count: t.span_count,
        services: t.services.join(", "),
        duration: format::duration(t.duration_nano),
        error_count: t.error_count,
    }
}

pub async fn handler(
    State(engine): State<QueryEngine>,
    chrome: super::chrome::PageChrome,
    Query(form): Query<TraceForm>,
) -> Response {
    let params = TimeParams {
        range: form.range.clone(),
        from: form.from.clone(),
        to: form.to.clone(),
    };
    let services = engine.services().into_iter().map(|s| s.name).collect();
    let (window, mut error) = params.resolve_or_default(now_ns());
    let mut results = Vec::new();
    if error.is_none() {
        match to_search(&form, &window) {
            Ok(search) => match engine.search_traces(&search).await {
                Ok(r) => results = r,
                Err(e) => error = Some(e.to_string()),
            },
            Err(e) => error = Some(e),
        }
    }
    let points: Vec<_> = results
        .iter()
        .map(|t| {
            let title = format!(
                "{}: {} — {}",
                t.root_service,
                t.root_name,
                format::duration(t.duration_nano)
            );
            (
                t.start_time_unix_nano,
                t.duration_nano,
                format!("/traces/{}", t.trace_id),
                title,
                t.error_count > 0,
            )
        })
        .collect();
    let mut chart = charts::scatter(&points, window.start, window.end);
    let notes = chrome.annotations(window.start, window.end, None).await;
    super::chrome::PageChrome::annotate(&mut chart, &notes, window.start, window.end);
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let capped = results.len() >= CHART_POINTS;
    let (first, paging) = paging(&form, &results, capped);
    let selects = form.status == "error"
        || !form.min_ms.trim().is_empty()
        || !form.max_ms.trim().is_empty()
        || !form.attr.trim().is_empty();
    let groups_href = selects.then(|| {
        super::url_in(
            &window,
            "/compare/groups",
            &[
                ("service", form.service.clone()),
                ("operation", form.operation.clone()),
                (
                    "status",
                    if form.status == "error" {
                        "error".into()
                    } else {
                        String::new()
                    },
                ),
                ("min_ms", form.min_ms.clone()),
                ("max_ms", form.max_ms.clone()),
                ("attr", form.attr.clone()),
            ],
        )
    });
    let region_href = Some(super::url_in(
        &window,
        "/compare/groups",
        &[
            ("service", form.service.clone()),
            ("operation", form.operation.clone()),
        ],
    ));
    let page = TracesPage {
        title: "Traces".into(),
        active: "traces",
        save: chrome.save_form(window.start, window.end),
        dims: charts::Dims::default(),
        rows: results
            .iter()
            .skip(first)
            .take(TABLE_ROWS)
            .map(row)
            .collect(),
        paging,
        chart,
        services,
        form,
        window,
        ranges: RANGES,
        error,
        groups_href,
        region_href,
    };
    render(&page, status)
}
