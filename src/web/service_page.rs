//! `/services/{name}`: a service's operations, versions side by side, each instance with its
//! own charts (RED and every OTLP metric it sends), and its error timeline.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::charts::{self, Chart, LineSeries, SERIES_COLORS};
use super::errors_page::{panel, ErrorPanel};
use super::format;
use super::overview_page::{row, ServiceRow};
use super::{message, render, url_in};
use crate::model::time::now_ns;
use crate::model::window::{TimeParams, TimeWindow, RANGES};
use crate::query::metrics::{GaugeAgg, MetricQuery};
use crate::query::services::Breakdown;
use crate::query::QueryEngine;
use crate::rollup::MINUTE;

/// A RED table row (operation or version).
pub struct RedRow {
    pub key: String,
    pub rate: String,
    pub requests: u64,
    pub errors: u64,
    pub error_rate: String,
    pub erroring: bool,
    pub p50: String,
    pub p95: String,
    pub p99: String,
    /// The traces behind the row, and its failed ones, in the page's window.
    pub traces_href: String,
    pub errors_href: String,
}

/// A version's canary verdict against the service's busiest version, linking to the
/// verdict's page.
pub struct VersionVerdict {
    pub verdict: &'static str,
    pub score: String,
    pub against: String,
    pub href: String,
}

/// The canary verdict of every version but the busiest against the busiest, in `window`.
async fn version_verdicts(
    engine: &QueryEngine,
    name: &str,
    versions: &[crate::query::services::Breakdown],
    window: &TimeWindow,
) -> Vec<Option<VersionVerdict>> {
    let baseline = versions
        .iter()
        .filter(|b| !b.key.is_empty())
        .max_by_key(|b| b.red.requests)
        .map(|b| b.key.clone());
    let mut out = Vec::with_capacity(versions.len());
    for v in versions {
        let verdict = match &baseline {
            Some(base) if *base != v.key && !v.key.is_empty() => {
                let question = crate::query::canary::CanaryQuestion {
                    service: name.to_string(),
                    baseline: base.clone(),
                    canary: v.key.clone(),
                    start: window.start,
                    end: window.end,
                };
                engine.canary(&question).await.ok().map(|r| VersionVerdict {
                    verdict: r.verdict.as_str(),
                    score: format!("{:.0}", r.score),
                    against: base.clone(),
                    href: url_in(
                        window,
                        "/canary",
                        &[
                            ("service", name.to_string()),
                            ("baseline", base.clone()),
                            ("canary", v.key.clone()),
                        ],
                    ),
                })
            }
            _ => None,
        };
        out.push(verdict);
    }
    out
}

/// A titled chart.
pub struct TitledChart {
    pub title: String,
    pub chart: Chart,
}

/// One instance with its charts.
pub struct InstancePanel {
    pub name: String,
    pub version: String,
    pub host: String,
    pub status: String,
    pub down: bool,
    pub charts: Vec<TitledChart>,
    /// The instance's traces and logs in the page's window.
    pub traces_href: String,
    pub logs_href: String,
}

#[derive(Template)]
#[template(path = "service.html")]
struct ServicePage {
    title: String,
    active: &'static str,
    save: Option<super::SaveForm>,
    dims: charts::Dims,
    window: TimeWindow,
    ranges: &'static [(&'static str, i64)],
    service: ServiceRow,
    operations: Vec<RedRow>,
    /// Each version's row, and (for every version but the busiest, the baseline) its canary
    /// verdict against the baseline.
    versions: Vec<(RedRow, Option<VersionVerdict>)>,
    instances: Vec<InstancePanel>,
    errors: ErrorPanel,
    logs_href: String,
    traces_href: String,
    events: Vec<super::events::TriageEvent>,
}

fn red_row(service: &str, b: &Breakdown, filter: &str, window: &TimeWindow) -> RedRow {
    let mut pairs = vec![("service", service.to_string())];
    match filter {
        "operation" => pairs.push(("operation", b.key.clone())),
        _ => pairs.push(("attr", format!("service.version={}", b.key))),
    }
    let traces_href = url_in(window, "/traces", &pairs);
    pairs.push(("status", "error".into()));
    RedRow {
        key: if b.key.is_empty() {
            "(none)".into()
        } else {
            b.key.clone()
        },
        rate: format::rate(b.red.rate),
        requests: b.red.requests,
        errors: b.red.errors,
        error_rate: format::percent(b.red.error_rate),
        erroring: b.red.errors > 0,
        p50: format::opt_duration(b.red.p50_nano),
        p95: format::opt_duration(b.red.p95_nano),
        p99: format::opt_duration(b.red.p99_nano),
        traces_href,
        errors_href: url_in(window, "/traces", &pairs),
    }
}

/// Per-minute values as points at their minutes, the first at `first_minute`.
fn per_minute(first_minute: i64, values: &[u64]) -> Vec<(i64, f64)> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| (first_minute + i as i64 * MINUTE, *v as f64))
        .collect()
}

pub async fn handler(
    State(engine): State<QueryEngine>,
    chrome: super::chrome::PageChrome,
    Path(name): Path<String>,
    Query(params): Query<TimeParams>,
) -> Response {
    let now = now_ns();
    let window = match super::window_or_error(&params, now) {
        Ok(w) => w,
        Err(page) => return *page,
    };
    let now = window.as_of(now);
    let (start, end) = (window.start, window.end);
    let detail = match engine.service(&name, start, end, now).await {
        Ok(Some(d)) => d,
        Ok(None) => {
            return message(
                StatusCode::NOT_FOUND,
                "Service not found",
                format!("No data has been received from a service named {name:?}."),
            )
        }
        Err(e) => {
            return message(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Query failed",
                e.to_string(),
            )
        }
    };
    // Every OTLP metric the service sends, one query per metric, split by instance.
    let step = ((end - start) / 60).max(60_000_000_000);
    let mut metric_charts: BTreeMap<String, Vec<TitledChart>> = BTreeMap::new();
    for m in &detail.metric_names {
        let q = MetricQuery {
            name: m.name.clone(),
            start,
            end,
            step,
            service: Some(name.clone()),
            instance: None,
            group_by: vec!["instance".into()],
            gauge_agg: GaugeAgg::Avg,
        };
        let Ok(series) = engine.metric_query(&q).await else {
            continue;
        };
        // Per instance: whether its values are per second, and its lines.
        let mut by_instance: BTreeMap<String, (bool, Vec<LineSeries>)> = BTreeMap::new();
        for (i, s) in series.iter().enumerate() {
            let instance = s.labels.get("instance").cloned().unwrap_or_default();
            let (per_second, lines) = by_instance.entry(instance).or_default();
            *per_second = s.value.is_per_second();
            lines.push((
                s.value.name(),
                SERIES_COLORS[i % SERIES_COLORS.len()],
                s.points.clone(),
            ));
        }
        for (instance, (per_second, lines)) in by_instance {
            let unit = if m.kind == "histogram" {
                "ms".to_string()
            } else {
                m.unit.clone()
            };
            let shown_unit = if per_second {
                "/s".to_string()
            } else {
                unit.clone()
            };
            let fmt = move |v: f64| {
                if shown_unit == "/s" {
                    format!("{v:.2}/s")
                } else {
                    format::with_unit(v, &shown_unit)
                }
            };
            metric_charts
                .entry(instance)
                .or_default()
                .push(TitledChart {
                    title: format!(
                        "{} ({})",
                        m.name,
                        lines
                            .iter()
                            .map(|l| l.0.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    chart: charts::lines(&lines, start, end, &fmt),
                });
        }
    }
    let p95 = |b: &Breakdown| -> Vec<(i64, f64)> {
        b.p95_per_minute
            .iter()
            .enumerate()
            .filter_map(|(i, v)| {
                v.map(|v| (detail.first_minute + i as i64 * MINUTE, v as f64 / 1e6))
            })
            .collect()
    };
    let instances = detail
        .overview
        .instances
        .iter()
        .map(|inst| {
            let mut charts_of = Vec::new();
            if let Some(b) = detail
                .instances
                .iter()
                .find(|b| b.key == inst.info.instance)
            {
                charts_of.push(TitledChart {
                    title: "requests and errors per minute".into(),
                    chart: charts::lines(
                        &[
                            (
                                "requests".into(),
                                "#2f6fde",
                                per_minute(detail.first_minute, &b.requests_per_minute),
                            ),
                            (
                                "errors".into(),
                                "#d92d20",
                                per_minute(detail.first_minute, &b.errors_per_minute),
                            ),
                        ],
                        start,
                        end,
                        &|v| format!("{v:.0}"),
                    ),
                });
                charts_of.push(TitledChart {
                    title: "latency p95".into(),
                    chart: charts::lines(&[("p95".into(), "#7a5af8", p95(b))], start, end, &|v| {
                        format!("{v:.0} ms")
                    }),
                });
            }
            charts_of.extend(
                metric_charts
                    .remove(&inst.info.instance)
                    .unwrap_or_default(),
            );
            InstancePanel {
                name: inst.info.instance.clone(),
                version: inst.info.version.clone(),
                host: inst.info.host.clone(),
                status: if inst.down {
                    format!(
                        "down, last seen {}",
                        format::ago(now, inst.info.last_seen_unix_nano)
                    )
                } else {
                    "up".into()
                },
                down: inst.down,
                charts: charts_of,
                traces_href: url_in(
                    &window,
                    "/traces",
                    &[
                        ("service", name.clone()),
                        (
                            "attr",
                            format!("service.instance.id={}", inst.info.instance),
                        ),
                    ],
                ),
                logs_href: url_in(
                    &window,
                    "/logs",
                    &[(
                        "q",
                        format!("service:{name} instance:{}", inst.info.instance),
                    )],
                ),
            }
        })
        .collect();
    let notes = chrome
        .annotations(window.start, window.end, Some(&name))
        .await;
    let events = super::events::of_window(&engine, &window, Some(&name)).await;
    let mut instances: Vec<InstancePanel> = instances;
    for inst in &mut instances {
        for tc in &mut inst.charts {
            super::chrome::PageChrome::annotate(&mut tc.chart, &notes, window.start, window.end);
            super::events::mark(&mut tc.chart, &events, window.start, window.end);
        }
    }
    let mut errors = panel(&detail.errors);
    super::chrome::PageChrome::annotate(&mut errors.chart, &notes, window.start, window.end);
    super::events::mark(&mut errors.chart, &events, window.start, window.end);
    let verdicts = version_verdicts(&engine, &name, &detail.versions, &window).await;
    let page = ServicePage {
        title: format!("Service {name}"),
        active: "overview",
        save: chrome.save_form(window.start, window.end),
        dims: charts::Dims::default(),
        service: row(&detail.overview, now, &window),
        operations: detail
            .operations
            .iter()
            .map(|b| red_row(&name, b, "operation", &window))
            .collect(),
        versions: detail
            .versions
            .iter()
            .map(|b| red_row(&name, b, "version", &window))
            .zip(verdicts)
            .collect(),
        instances,
        errors,
        logs_href: url_in(&window, "/logs", &[("q", format!("service:{name}"))]),
        traces_href: url_in(&window, "/traces", &[("service", name.clone())]),
        events,
        window,
        ranges: RANGES,
    };
    render(&page, StatusCode::OK)
}
