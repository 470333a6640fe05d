//! `/errors`: errors over time stacked per service with bursts marked, and error groups.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::charts::{self, Chart};
use super::chrome::PageChrome;
use super::format;
use super::{message, render};
use crate::model::time::now_ns;
use crate::model::time::picker_text;
use crate::model::window::{TimeParams, TimeWindow, RANGES};
use crate::query::services::ErrorsView;
use crate::query::QueryEngine;
use crate::rollup::MINUTE;

/// One error group row.
pub struct GroupRow {
    pub error_type: String,
    pub message: String,
    pub frame: String,
    pub count: u64,
    pub first_seen: String,
    pub last_seen: String,
    pub services: String,
    pub instances: String,
    pub versions: String,
    pub example: Option<String>,
    /// The failed traces of the group's services between its first and last minute.
    pub traces_href: String,
}

/// The chart and group rows of an error view, shared with the service page.
pub struct ErrorPanel {
    pub chart: Chart,
    pub legend: Vec<(String, &'static str)>,
    pub groups: Vec<GroupRow>,
    pub bursts: Vec<String>,
}

/// Builds the chart and rows from the query result.
pub fn panel(view: &ErrorsView) -> ErrorPanel {
    let series: Vec<(String, &'static str, Vec<u64>)> = view
        .series
        .iter()
        .map(|s| {
            (
                s.service.clone(),
                format::service_color(&s.service),
                s.per_minute.clone(),
            )
        })
        .collect();
    ErrorPanel {
        chart: charts::stacked(&series, view.start, MINUTE, &view.bursts),
        legend: series.iter().map(|(s, c, _)| (s.clone(), *c)).collect(),
        bursts: view
            .bursts
            .iter()
            .map(|i| format::minute(view.start + *i as i64 * MINUTE))
            .collect(),
        groups: view
            .groups
            .iter()
            .map(|g| GroupRow {
                error_type: g.detail.signature.error_type.clone(),
                message: g.detail.signature.message.clone(),
                frame: g.detail.signature.top_frame.clone(),
                count: g.count,
                first_seen: format::minute(g.first_seen),
                last_seen: format::minute(g.last_seen),
                services: g.services.join(", "),
                instances: g.instances.join(", "),
                versions: g.versions.join(", "),
                traces_href: super::url(
                    "/traces",
                    &[
                        ("service", g.services.first().cloned().unwrap_or_default()),
                        ("status", "error".into()),
                        ("from", picker_text(g.first_seen)),
                        ("to", picker_text(g.last_seen + MINUTE)),
                    ],
                ),
                example: g.detail.example_trace_id.as_ref().map(|t| {
                    match &g.detail.example_span_id {
                        Some(s) => format!("/traces/{t}?span={s}#span-{s}"),
                        None => format!("/traces/{t}"),
                    }
                }),
            })
            .collect(),
    }
}

#[derive(Template)]
#[template(path = "errors.html")]
struct ErrorsPage {
    title: String,
    active: &'static str,
    save: Option<super::SaveForm>,
    dims: charts::Dims,
    window: TimeWindow,
    ranges: &'static [(&'static str, i64)],
    panel: ErrorPanel,
    events: Vec<super::events::TriageEvent>,
}

pub async fn handler(
    State(engine): State<QueryEngine>,
    chrome: super::chrome::PageChrome,
    Query(params): Query<TimeParams>,
) -> Response {
    let window = match super::window_or_error(&params, now_ns()) {
        Ok(w) => w,
        Err(page) => return *page,
    };
    let notes = chrome.annotations(window.start, window.end, None).await;
    let events = super::events::of_window(&engine, &window, None).await;
    match engine.errors(window.start, window.end).await {
        Ok(view) => {
            let mut panel = panel(&view);
            PageChrome::annotate(&mut panel.chart, &notes, window.start, window.end);
            super::events::mark(&mut panel.chart, &events, window.start, window.end);
            render(
                &ErrorsPage {
                    title: "Errors".into(),
                    active: "errors",
                    save: chrome.save_form(window.start, window.end),
                    dims: charts::Dims::default(),
                    panel,
                    events,
                    window,
                    ranges: RANGES,
                },
                StatusCode::OK,
            )
        }
        Err(e) => message(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Query failed",
            e.to_string(),
        ),
    }
}
