//! `/explore`: the metrics explorer — pick a metric, filter by service or instance, group by
//! instance, service, version or any attribute, and see it as lines (counters as per-second
//! rates, histograms as p50/p95/p99, gauges by the chosen aggregation).

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::charts::{self, LineSeries, SERIES_COLORS};
use super::chrome::PageChrome;
use super::service_page::TitledChart;
use super::{format, render, SaveForm};
use crate::model::time::now_ns;
use crate::model::window::{TimeParams, TimeWindow, RANGES};
use crate::query::metrics::{GaugeAgg, MetricQuery, SeriesValue};
use crate::query::{MetricName, QueryEngine};

/// Points per chart the step aims at.
const POINTS: i64 = 60;

/// The explorer's form, as it comes in the URL.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ExploreForm {
    #[serde(default)]
    pub metric: String,
    #[serde(default)]
    pub service: String,
    #[serde(default)]
    pub instance: String,
    /// Comma-separated: `instance`, `service`, `version` or attribute keys.
    #[serde(default)]
    pub group_by: String,
    /// Gauges: avg, min, max or last.
    #[serde(default)]
    pub agg: String,
    pub range: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
}

/// A legend entry: a series' colour and labels.
pub struct LegendEntry {
    pub color: &'static str,
    pub label: String,
}

#[derive(Template)]
#[template(path = "explore.html")]
struct ExplorePage {
    title: String,
    active: &'static str,
    save: Option<SaveForm>,
    dims: charts::Dims,
    window: TimeWindow,
    ranges: &'static [(&'static str, i64)],
    form: ExploreForm,
    metrics: Vec<MetricName>,
    services: Vec<String>,
    charts: Vec<(TitledChart, Vec<LegendEntry>)>,
    error: Option<String>,
}

pub async fn handler(
    State(engine): State<QueryEngine>,
    chrome: PageChrome,
    Query(form): Query<ExploreForm>,
) -> Response {
    let params = TimeParams {
        range: form.range.clone(),
        from: form.from.clone(),
        to: form.to.clone(),
    };
    let now = now_ns();
    let (window, mut error) = params.resolve_or_default(now);
    let metrics = engine.metric_names_of("").await.unwrap_or_default();
    let services = engine.services().into_iter().map(|s| s.name).collect();
    let mut page = ExplorePage {
        title: if form.metric.is_empty() {
            "Metrics".into()
        } else {
            format!("Metric {}", form.metric)
        },
        active: "explore",
        save: chrome.save_form(window.start, window.end),
        dims: charts::Dims::default(),
        ranges: RANGES,
        metrics,
        services,
        charts: Vec::new(),
        error: None,
        form,
        window,
    };
    if error.is_none() && !page.form.metric.is_empty() {
        match charts_of(&engine, &page.form, &page.metrics, &page.window).await {
            Ok(c) => page.charts = c,
            Err(e) => error = Some(e),
        }
        let notes = chrome
            .annotations(
                page.window.start,
                page.window.end,
                Some(page.form.service.as_str()).filter(|s| !s.is_empty()),
            )
            .await;
        for (tc, _) in &mut page.charts {
            PageChrome::annotate(&mut tc.chart, &notes, page.window.start, page.window.end);
        }
    }
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    page.error = error;
    render(&page, status)
}

/// One chart per value kind (rate, gauge, p50/p95/p99 together, count_rate).
async fn charts_of(
    engine: &QueryEngine,
    form: &ExploreForm,
    metrics: &[MetricName],
    window: &TimeWindow,
) -> Result<Vec<(TitledChart, Vec<LegendEntry>)>, String> {
    let Some(metric) = metrics.iter().find(|m| m.name == form.metric) else {
        return Err(format!(
            "no metric named {:?} has been received",
            form.metric
        ));
    };
    let gauge_agg = GaugeAgg::parse(&form.agg)?;
    let nonempty = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
    let q = MetricQuery {
        name: metric.name.clone(),
        start: window.start,
        end: window.end,
        step: ((window.end - window.start) / POINTS).max(1_000_000_000),
        service: nonempty(&form.service),
        instance: nonempty(&form.instance),
        group_by: form.group_by.split(',').filter_map(nonempty).collect(),
        gauge_agg,
    };
    let series = engine.metric_query(&q).await.map_err(|e| e.to_string())?;
    /// The lines of one chart: a histogram's percentiles share one, every other value has
    /// its own.
    #[derive(Default)]
    struct Panel {
        per_second: bool,
        lines: Vec<LineSeries>,
        legend: Vec<LegendEntry>,
    }
    let mut panels: BTreeMap<String, Panel> = BTreeMap::new();
    for s in &series {
        let labels = s
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(", ");
        let label = if labels.is_empty() {
            s.value.name()
        } else {
            format!("{} {labels}", s.value.name())
        };
        let title = match s.value {
            SeriesValue::Percentile(_) => "latency percentiles".into(),
            other => other.name(),
        };
        let panel = panels.entry(title).or_default();
        panel.per_second = s.value.is_per_second();
        let color = SERIES_COLORS[panel.lines.len() % SERIES_COLORS.len()];
        panel.lines.push((label.clone(), color, s.points.clone()));
        panel.legend.push(LegendEntry { color, label });
    }
    let unit = if metric.kind == "histogram" {
        "ms".to_string()
    } else {
        metric.unit.clone()
    };
    Ok(panels
        .into_iter()
        .map(|(name, panel)| {
            let per_second = panel.per_second;
            let unit = unit.clone();
            let fmt = move |v: f64| {
                if per_second {
                    format!("{v:.2}/s")
                } else {
                    format::with_unit(v, &unit)
                }
            };
            let chart = TitledChart {
                title: format!("{} — {name}", metric.name),
                chart: charts::lines(&panel.lines, window.start, window.end, &fmt),
            };
            (chart, panel.legend)
        })
        .collect())
}
