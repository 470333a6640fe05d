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
    // Event labels are 10 px; a character is at most 6 units wide, and a label starts 3 units
    // right of its line. Each goes on the first line (12 units apart) where it clears the
    // label before it.
    const CHAR_W: f64 = 6.0;
    const FIRST_LINE: f64 = 26.0;
    const LINE: f64 = 12.0;
    let mut line_ends: Vec<f64> = Vec::new();
    let mut marks: Vec<(f64, &'static str, String)> = events
        .iter()
        .filter(|e| e.time >= start && e.time <= end)
        .filter_map(|e| {
            e.chart_label().map(|label| {
                (
                    x_of(e.time, start, end),
                    label,
                    format!("{} {}", e.clock, e.text),
                )
            })
        })
        .collect();
    marks.sort_by(|a, b| a.0.total_cmp(&b.0));
    for (x, label, text) in marks {
        let width = label.chars().count() as f64 * CHAR_W;
        let from = if x + 3.0 + width > super::charts::WIDTH {
            x - 3.0 - width
        } else {
            x + 3.0
        };
        let line = match line_ends.iter().position(|end| *end + 4.0 <= from) {
            Some(i) => i,
            None => {
                line_ends.push(f64::MIN);
                line_ends.len() - 1
            }
        };
        line_ends[line] = from + width;
        chart
            .events
            .push((x, from, FIRST_LINE + line as f64 * LINE, label, text));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(minute: i64, kind: &'static str) -> TriageEvent {
        TriageEvent {
            time: minute * 60_000_000_000,
            kind,
            clock: String::new(),
            service: "payment".into(),
            text: kind.into(),
            href: String::new(),
        }
    }

    #[test]
    fn close_event_labels_go_on_lines_of_their_own() {
        // Six hours (2.5 units a minute): the errors five minutes after a deploy would touch
        // its label and go a line down; the recovery twelve minutes later clears the deploy's
        // label and goes back to the first line, as does a deploy hours before.
        let events = [
            event(300, "deploy"),
            event(305, "first_error"),
            event(317, "recovery"),
            event(60, "deploy"),
        ];
        let mut chart = Chart::default();
        mark(&mut chart, &events, 0, 360 * 60_000_000_000);
        let ys: Vec<(&str, f64)> = chart
            .events
            .iter()
            .map(|(_, _, y, l, _)| (*l, *y))
            .collect();
        assert_eq!(
            ys,
            [
                ("deploy", 26.0),
                ("deploy", 26.0),
                ("errors start", 38.0),
                ("recovered", 26.0)
            ]
        );
    }

    #[test]
    fn a_label_at_the_right_edge_sits_left_of_its_line() {
        let mut chart = Chart::default();
        mark(
            &mut chart,
            &[event(359, "recovery")],
            0,
            360 * 60_000_000_000,
        );
        let (x, label_x, _, _, _) = chart.events[0].clone();
        assert!(label_x + 9.0 * 6.0 <= x, "{label_x} then {x}");
    }
}
