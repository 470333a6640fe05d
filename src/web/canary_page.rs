//! `/canary`: the verdict on a new version of a service against the version it replaces,
//! metric by metric, with links to the records behind it.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::{format, message, render, url_in};
use crate::model::time::now_ns;
use crate::model::window::{TimeParams, TimeWindow, RANGES};
use crate::query::canary::{evidence_links, CanaryQuestion, CanaryReport};
use crate::query::{QueryEngine, QueryError};

/// The form, as it travels in the URL.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct CanaryForm {
    #[serde(default)]
    pub service: String,
    #[serde(default)]
    pub baseline: String,
    #[serde(default)]
    pub canary: String,
    pub range: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
}

/// One metric's line.
pub struct MetricLine {
    pub metric: &'static str,
    pub outcome: &'static str,
    pub contribution: String,
    pub reason: String,
}

/// One version's figures as shown.
pub struct VersionLine {
    pub role: &'static str,
    pub version: String,
    pub requests: u64,
    pub error_rate: String,
    pub p50: String,
    pub p95: String,
    pub p99: String,
    pub traces_href: String,
}

/// The verdict as shown.
pub struct VerdictView {
    pub verdict: &'static str,
    pub score: String,
    pub reasons: Vec<String>,
    pub versions: Vec<VersionLine>,
    pub metrics: Vec<MetricLine>,
    pub evidence: Vec<(String, String)>,
    pub api_href: String,
}

#[derive(Template)]
#[template(path = "canary.html")]
struct CanaryPage {
    title: String,
    active: &'static str,
    save: Option<super::SaveForm>,
    window: TimeWindow,
    ranges: &'static [(&'static str, i64)],
    form: CanaryForm,
    services: Vec<String>,
    versions: Vec<String>,
    verdict: Option<VerdictView>,
    error: Option<String>,
}

/// The version most requests went to, and the other versions, in the window.
pub async fn versions_of(
    engine: &QueryEngine,
    service: &str,
    window: &TimeWindow,
    now: i64,
) -> Result<Vec<(String, u64)>, QueryError> {
    let Some(detail) = engine
        .service(service, window.start, window.end, now)
        .await?
    else {
        return Ok(Vec::new());
    };
    let mut versions: Vec<(String, u64)> = detail
        .versions
        .iter()
        .filter(|b| !b.key.is_empty())
        .map(|b| (b.key.clone(), b.red.requests))
        .collect();
    versions.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    Ok(versions)
}

/// The verdict's view model.
pub fn verdict_view(report: &CanaryReport, window: &TimeWindow) -> VerdictView {
    let version = |role: &'static str, v: &crate::query::canary::VersionFigures| VersionLine {
        role,
        version: v.version.clone(),
        requests: v.requests,
        error_rate: format::percent(v.error_rate),
        p50: format::opt_duration(v.p50_nano),
        p95: format::opt_duration(v.p95_nano),
        p99: format::opt_duration(v.p99_nano),
        traces_href: url_in(
            window,
            "/traces",
            &[
                ("service", report.service.clone()),
                ("attr", format!("service.version={}", v.version)),
            ],
        ),
    };
    VerdictView {
        verdict: report.verdict.as_str(),
        score: format!("{:.0}", report.score),
        reasons: report.reasons.clone(),
        versions: vec![
            version("baseline", &report.baseline),
            version("canary", &report.canary),
        ],
        metrics: report
            .metrics
            .iter()
            .map(|m| MetricLine {
                metric: match m.metric {
                    "error_rate" => "Error rate",
                    _ => "Latency",
                },
                outcome: m.outcome.as_str(),
                contribution: format!("{:.0} of {:.0}", m.contribution, m.weight),
                reason: m.reason.clone(),
            })
            .collect(),
        evidence: evidence_links(report),
        api_href: super::url(
            "/api/v1/canary",
            &[
                ("service", report.service.clone()),
                ("baseline", report.baseline.version.clone()),
                ("canary", report.canary.version.clone()),
                ("start", report.start.to_string()),
                ("end", report.end.to_string()),
            ],
        ),
    }
}

pub async fn handler(
    State(engine): State<QueryEngine>,
    chrome: super::chrome::PageChrome,
    Query(mut form): Query<CanaryForm>,
) -> Response {
    let params = TimeParams {
        range: form.range.clone(),
        from: form.from.clone(),
        to: form.to.clone(),
    };
    let now = now_ns();
    let window = match super::window_or_error(&params, now) {
        Ok(w) => w,
        Err(page) => return *page,
    };
    let now = window.as_of(now);
    let services: Vec<String> = engine.services().into_iter().map(|s| s.name).collect();
    let mut versions = Vec::new();
    let mut verdict = None;
    let mut error = None;
    let mut status = StatusCode::OK;
    if !form.service.is_empty() {
        match versions_of(&engine, &form.service, &window, now).await {
            Ok(found) => versions = found,
            Err(e) => {
                return message(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Query failed",
                    e.to_string(),
                )
            }
        }
        // Unchosen versions default to the busiest (baseline) and the next busiest (canary).
        let names: Vec<String> = versions.iter().map(|(v, _)| v.clone()).collect();
        if form.baseline.is_empty() {
            form.baseline = names.first().cloned().unwrap_or_default();
        }
        if form.canary.is_empty() {
            form.canary = names
                .iter()
                .find(|v| **v != form.baseline)
                .cloned()
                .unwrap_or_default();
        }
        let question = CanaryQuestion {
            service: form.service.clone(),
            baseline: form.baseline.clone(),
            canary: form.canary.clone(),
            start: window.start,
            end: window.end,
        };
        match engine.canary(&question).await {
            Ok(report) => verdict = Some(verdict_view(&report, &window)),
            Err(e) => match super::refused(e) {
                Ok((code, m)) => {
                    status = code;
                    error = Some(m);
                }
                Err(page) => return *page,
            },
        }
    }
    let page = CanaryPage {
        title: match &verdict {
            Some(v) => format!("Canary {} {}: {}", form.service, form.canary, v.verdict),
            None => "Canary verdict".into(),
        },
        active: "overview",
        save: chrome.save_form(window.start, window.end),
        window,
        ranges: RANGES,
        form,
        services,
        versions: versions.into_iter().map(|(v, _)| v).collect(),
        verdict,
        error,
    };
    render(&page, status)
}
