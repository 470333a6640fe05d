//! `/`: one row per service with RED, instances, versions, health and sparklines.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::charts;
use super::format;
use super::{message, render};
use crate::model::time::now_ns;
use crate::model::window::{TimeParams, TimeWindow, RANGES};
use crate::query::services::ServiceOverview;
use crate::query::QueryEngine;

/// One service row.
pub struct ServiceRow {
    pub name: String,
    pub color: &'static str,
    pub rate: String,
    pub error_rate: String,
    pub erroring: bool,
    pub p50: String,
    pub p95: String,
    pub p99: String,
    pub instances_up: usize,
    pub instances: usize,
    /// "payment-3 down, last seen 4m ago" for each down instance.
    pub down: Vec<String>,
    pub versions: String,
    pub spark_requests: String,
    pub spark_errors: String,
    /// The service page, its traces and its failed traces, in the page's window.
    pub href: String,
    pub traces_href: String,
    pub errors_href: String,
}

#[derive(Template)]
#[template(path = "overview.html")]
struct OverviewPage {
    title: String,
    active: &'static str,
    save: Option<super::SaveForm>,
    window: TimeWindow,
    ranges: &'static [(&'static str, i64)],
    rows: Vec<ServiceRow>,
    events: Vec<super::events::TriageEvent>,
}

/// Builds the row of one service; its links keep `window`.
pub fn row(s: &ServiceOverview, now: i64, window: &TimeWindow) -> ServiceRow {
    let in_window = |path: &str, pairs: Vec<(&str, String)>| super::url_in(window, path, &pairs);
    ServiceRow {
        href: in_window(
            &format!("/services/{}", super::path_segment(&s.name)),
            Vec::new(),
        ),
        traces_href: in_window("/traces", vec![("service", s.name.clone())]),
        errors_href: in_window(
            "/traces",
            vec![("service", s.name.clone()), ("status", "error".into())],
        ),
        name: s.name.clone(),
        color: format::service_color(&s.name),
        rate: format::rate(s.red.rate),
        error_rate: format::percent(s.red.error_rate),
        erroring: s.red.errors > 0,
        p50: format::opt_duration(s.red.p50_nano),
        p95: format::opt_duration(s.red.p95_nano),
        p99: format::opt_duration(s.red.p99_nano),
        instances_up: s.instances.len() - s.down_instances,
        instances: s.instances.len(),
        down: s
            .instances
            .iter()
            .filter(|i| i.down)
            .map(|i| {
                format!(
                    "{} down, last seen {}",
                    i.info.instance,
                    format::ago(now, i.info.last_seen_unix_nano)
                )
            })
            .collect(),
        versions: s.versions.join(", "),
        spark_requests: charts::sparkline(&s.requests_per_minute),
        spark_errors: charts::sparkline(&s.errors_per_minute),
    }
}

pub async fn handler(
    State(engine): State<QueryEngine>,
    chrome: super::chrome::PageChrome,
    Query(params): Query<TimeParams>,
) -> Response {
    let now = now_ns();
    let window = match super::window_or_error(&params, now) {
        Ok(w) => w,
        Err(page) => return *page,
    };
    let now = window.as_of(now);
    let events = super::events::of_window(&engine, &window, None).await;
    match engine.overview(window.start, window.end, now).await {
        Ok(services) => {
            let rows = services.iter().map(|s| row(s, now, &window)).collect();
            render(
                &OverviewPage {
                    title: "Services".into(),
                    active: "overview",
                    save: chrome.save_form(window.start, window.end),
                    window,
                    ranges: RANGES,
                    rows,
                    events,
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
