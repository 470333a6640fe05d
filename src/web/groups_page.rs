//! `/compare/groups`: what sets a selection of spans apart from the rest — every attribute
//! value ranked by how much more often the selected spans carry it, and each operation's
//! latency on both sides. The trace search links here with its filters as the selection.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::traces_page::parse_ms;
use super::{format, render, url_in};
use crate::model::time::{now_ns, parse_time};
use crate::model::window::{TimeParams, TimeWindow, RANGES};
use crate::query::group_compare::{
    Baseline, GroupComparison, GroupQuestion, RankedValue, Selection,
};
use crate::query::{parse_attribute, QueryEngine};

/// The form, as it travels in the URL.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct GroupForm {
    #[serde(default)]
    pub service: String,
    #[serde(default)]
    pub operation: String,
    /// `error` selects failed spans.
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub min_ms: String,
    #[serde(default)]
    pub max_ms: String,
    /// `key=value`.
    #[serde(default)]
    pub attr: String,
    /// Spans started in this part of the window (a region dragged on the trace plot): any
    /// time [`parse_time`] reads.
    #[serde(default)]
    pub sel_from: String,
    #[serde(default)]
    pub sel_to: String,
    /// `rest` (default) or `previous`: the window of the same length just before.
    #[serde(default)]
    pub baseline: String,
    pub range: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
}

/// One ranked value as shown.
pub struct ValueRow {
    pub key: String,
    pub value: String,
    pub selection: String,
    pub baseline: String,
    pub selection_px: u32,
    pub baseline_px: u32,
    pub z: String,
    /// The selected traces that carry the value.
    pub href: String,
}

/// One operation's latency on both sides.
pub struct OperationRow {
    pub service: String,
    pub color: &'static str,
    pub operation: String,
    pub selection: String,
    pub baseline: String,
}

#[derive(Template)]
#[template(path = "compare_groups.html")]
struct GroupsPage {
    title: String,
    active: &'static str,
    save: Option<super::SaveForm>,
    window: TimeWindow,
    ranges: &'static [(&'static str, i64)],
    form: GroupForm,
    services: Vec<String>,
    summary: String,
    ranked: Vec<ValueRow>,
    describes: Vec<ValueRow>,
    operations: Vec<OperationRow>,
    skipped: String,
    api_href: String,
    error: Option<String>,
}

/// A form's time field (empty: none), or what is wrong with it.
fn time(text: &str, what: &str) -> Result<Option<i64>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    parse_time(text)
        .map(Some)
        .map_err(|e| format!("{what}: {e}"))
}

/// The question the form asks, or what is wrong with it.
fn question(form: &GroupForm, window: &TimeWindow) -> Result<GroupQuestion, String> {
    let nonempty = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
    let baseline = match form.baseline.as_str() {
        "" | "rest" => Baseline::Rest,
        "previous" => Baseline::Window {
            start: window.start - (window.end - window.start),
            end: window.start,
        },
        other => return Err(format!("baseline must be rest or previous, not {other:?}")),
    };
    let errors = match form.status.as_str() {
        "" => false,
        "error" => true,
        other => return Err(format!("status must be error or empty, not {other:?}")),
    };
    Ok(GroupQuestion {
        service: nonempty(&form.service),
        operation: nonempty(&form.operation),
        start: window.start,
        end: window.end,
        selection: Selection {
            errors,
            min_duration_nano: parse_ms(&form.min_ms, "min duration")?,
            max_duration_nano: parse_ms(&form.max_ms, "max duration")?,
            attribute: parse_attribute(&form.attr)?,
            from: time(&form.sel_from, "selection start")?,
            to: time(&form.sel_to, "selection end")?,
        },
        baseline,
    })
}

/// In words: what was selected.
fn selection_words(form: &GroupForm) -> String {
    let mut parts = Vec::new();
    if form.status == "error" {
        parts.push("failed".to_string());
    }
    if !form.min_ms.trim().is_empty() {
        parts.push(format!("≥ {} ms", form.min_ms.trim()));
    }
    if !form.max_ms.trim().is_empty() {
        parts.push(format!("≤ {} ms", form.max_ms.trim()));
    }
    if !form.attr.trim().is_empty() {
        parts.push(format!("with {}", form.attr.trim()));
    }
    if !form.sel_from.trim().is_empty() || !form.sel_to.trim().is_empty() {
        let at = |t: &str| {
            parse_time(t.trim())
                .map(format::time)
                .unwrap_or_else(|_| t.trim().to_string())
        };
        parts.push(format!(
            "started {}–{}",
            at(&form.sel_from),
            at(&form.sel_to)
        ));
    }
    parts.join(", ")
}

fn value_row(v: &RankedValue, form: &GroupForm, window: &TimeWindow) -> ValueRow {
    let share = |count: u64, share: f64| format!("{} ({count})", format::percent(share));
    ValueRow {
        key: v.key.clone(),
        value: v.value.clone(),
        selection: share(v.selection_count, v.selection_share),
        baseline: share(v.baseline_count, v.baseline_share),
        selection_px: (v.selection_share * 120.0).round() as u32,
        baseline_px: (v.baseline_share * 120.0).round() as u32,
        z: format!("{:.1}", v.z),
        href: url_in(
            window,
            "/traces",
            &[
                ("service", form.service.clone()),
                ("operation", form.operation.clone()),
                ("status", form.status.clone()),
                ("attr", format!("{}={}", v.key, v.value)),
            ],
        ),
    }
}

pub async fn handler(
    State(engine): State<QueryEngine>,
    chrome: super::chrome::PageChrome,
    Query(form): Query<GroupForm>,
) -> Response {
    let params = TimeParams {
        range: form.range.clone(),
        from: form.from.clone(),
        to: form.to.clone(),
    };
    let window = match super::window_or_error(&params, now_ns()) {
        Ok(w) => w,
        Err(page) => return *page,
    };
    let services = engine.services().into_iter().map(|s| s.name).collect();
    let mut status = StatusCode::OK;
    let mut error = None;
    let mut answer: Option<GroupComparison> = None;
    let asked = !selection_words(&form).is_empty();
    if asked {
        match question(&form, &window) {
            Ok(q) => match engine.compare_groups(&q).await {
                Ok(a) => answer = Some(a),
                Err(e) => match super::refused(e) {
                    Ok((code, m)) => {
                        status = code;
                        error = Some(m);
                    }
                    Err(page) => return *page,
                },
            },
            Err(m) => {
                status = StatusCode::BAD_REQUEST;
                error = Some(m);
            }
        }
    }
    let summary = match &answer {
        Some(a) => format!(
            "{} selected spans ({}) against {} {} spans ({} read{}).",
            a.selection_spans,
            selection_words(&form),
            a.baseline_spans,
            if form.baseline == "previous" {
                "of the window before"
            } else {
                "other"
            },
            a.spans_read,
            if a.blocks_read < a.blocks_matched {
                format!(
                    ": a sample of {} of the {} stored blocks, spread over the window",
                    a.blocks_read, a.blocks_matched
                )
            } else {
                ", none sampled".to_string()
            }
        ),
        None if asked => String::new(),
        None => "Choose what to select (failed spans, a duration, an attribute) and compare it with the rest of the window.".into(),
    };
    let rows = |list: &[RankedValue]| list.iter().map(|v| value_row(v, &form, &window)).collect();
    let page = GroupsPage {
        title: "What is different".into(),
        active: "traces",
        save: chrome.save_form(window.start, window.end),
        summary,
        ranked: answer.as_ref().map(|a| rows(&a.ranked)).unwrap_or_default(),
        describes: answer
            .as_ref()
            .map(|a| rows(&a.describes_selection))
            .unwrap_or_default(),
        operations: answer
            .as_ref()
            .map(|a| {
                a.operations
                    .iter()
                    .map(|o| OperationRow {
                        color: format::service_color(&o.service),
                        service: o.service.clone(),
                        operation: o.operation.clone(),
                        selection: format!(
                            "p50 {} · p95 {} ({})",
                            format::opt_duration(o.selection_p50_nano),
                            format::opt_duration(o.selection_p95_nano),
                            o.selection_count
                        ),
                        baseline: format!(
                            "p50 {} · p95 {} ({})",
                            format::opt_duration(o.baseline_p50_nano),
                            format::opt_duration(o.baseline_p95_nano),
                            o.baseline_count
                        ),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        skipped: answer
            .as_ref()
            .map(|a| a.skipped_keys.join(", "))
            .unwrap_or_default(),
        api_href: super::url(
            "/api/v1/compare/groups",
            &[
                ("service", form.service.clone()),
                ("operation", form.operation.clone()),
                (
                    "errors",
                    if form.status == "error" {
                        "true".into()
                    } else {
                        String::new()
                    },
                ),
                ("min_duration_ms", form.min_ms.trim().to_string()),
                ("max_duration_ms", form.max_ms.trim().to_string()),
                ("attribute", form.attr.trim().to_string()),
                ("from", form.sel_from.trim().to_string()),
                ("to", form.sel_to.trim().to_string()),
                ("start", window.start.to_string()),
                ("end", window.end.to_string()),
            ],
        ),
        window,
        ranges: RANGES,
        services,
        form,
        error,
    };
    render(&page, status)
}
