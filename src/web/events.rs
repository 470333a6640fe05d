//! What happened in the window, shown while triaging: deploys (a `service.version` seen for the
//! first time), where the errors started, each service's error peak and recovery, instances
//! going down or up. The same reading of the per-minute rollups the post-mortem suggests its
//! timeline from ([`crate::postmortem::suggest`]), with the window taken as the incident and
//! the hour before it as the baseline; each event links to the records behind it.

use super::charts::{x_of, Chart};
use super::{format, url_in};
use crate::model::window::TimeWindow;
use crate::postmortem::suggest::{self, Suggestion};
use crate::query::QueryEngine;

/// Longest window events are read for: their rollups cover the window and the hour before it,
/// and a week of minutes is more than a triage page should wait for.
const MAX_WINDOW_NANO: i64 = 24 * 3600 * 1_000_000_000;

/// One event of the window, ready for the page.
#[derive(Debug, Clone)]
pub struct TriageEvent {
    pub time: i64,
    /// `deploy`, `first_error`, `error_peak`, `recovery`, `instance_down`, `instance_up`.
    pub kind: &'static str,
    /// The minute, `HH:MM`.
    pub clock: String,
    pub service: String,
    pub text: String,
    /// The records behind the event, in the page's window.
    pub href: String,
}

impl TriageEvent {
    /// The short label drawn on charts, for the kinds charts mark.
    fn chart_label(&self) -> Option<&'static str> {
        match self.kind {
            "deploy" => Some("deploy"),
            "first_error" => Some("errors start"),
            "recovery" => Some("recovered"),
            _ => None,
        }
    }
}

/// The events of the page's window (one service's, or all), oldest first; none when the
/// window is longer than a day or the rollups cannot be read (the page still renders).
pub async fn of_window(
    engine: &QueryEngine,
    window: &TimeWindow,
    service: Option<&str>,
) -> Vec<TriageEvent> {
    if window.end - window.start > MAX_WINDOW_NANO {
        return Vec::new();
    }
    let rollups = match engine
        .rollups(window.start - suggest::LOOKBACK, window.end)
        .await
    {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!("could not read rollups for the window's events: {e}");
            return Vec::new();
        }
    };
    suggest::suggest(&rollups, window.start, window.end)
        .into_iter()
        .filter(|s| service.is_none_or(|name| s.service == name))
        .map(|s| event(s, window))
        .collect()
}

fn event(s: Suggestion, window: &TimeWindow) -> TriageEvent {
    let in_window = |path: &str, pairs: Vec<(&str, String)>| url_in(window, path, &pairs);
    let single_version = if s.version.is_empty() || s.version.contains(", ") {
        String::new()
    } else {
        format!("service.version={}", s.version)
    };
    let href = match s.kind {
        "deploy" => in_window(
            "/traces",
            vec![("service", s.service.clone()), ("attr", single_version)],
        ),
        "first_error" | "error_peak" => in_window(
            "/traces",
            vec![
                ("service", s.service.clone()),
                ("status", "error".into()),
                ("attr", single_version),
            ],
        ),
        _ => in_window(&format!("/services/{}", s.service), Vec::new()),
    };
    TriageEvent {
        time: s.time,
        kind: s.kind,
        clock: format::minute(s.time),
        service: s.service,
        text: s.text,
        href,
    }
}

/// Marks the deploys, the start of the errors and the recoveries on `chart` (over
/// `[start, end]`).
pub fn mark(chart: &mut Chart, events: &[TriageEvent], start: i64, end: i64) {
    for e in events.iter().filter(|e| e.time >= start && e.time <= end) {
        if let Some(label) = e.chart_label() {
            chart.events.push((
                x_of(e.time, start, end),
                label,
                format!("{} {}", e.clock, e.text),
            ));
        }
    }
}
