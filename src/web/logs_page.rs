//! `/logs`: log search with a histogram, pages, correlation view and live tail.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tokio::sync::Semaphore;

use super::charts::{self, Chart};
use super::format::{self, Segment};
use super::{render, url};
use crate::model::time::now_ns;
use crate::model::window::{TimeParams, TimeWindow, RANGES};
use crate::model::{LiftedKey, LogRow};
use crate::query::{LogCursor, LogSearch, QueryEngine, QueryError};

/// Records per page.
const PAGE: usize = 100;
/// Histogram buckets across the window.
const BUCKETS: usize = 60;

/// The search form, as it travels in the URL.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct LogForm {
    #[serde(default)]
    pub q: String,
    pub range: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    /// Page cursor.
    pub before: Option<String>,
}

/// One result line.
pub struct LogLine {
    pub time: String,
    pub service: String,
    pub color: &'static str,
    pub instance: String,
    pub severity: String,
    pub severity_class: &'static str,
    pub body: Vec<Segment>,
    /// The whole body when the shown one is cut.
    pub full_body: Option<String>,
    pub trace_href: Option<String>,
    /// Everything the record holds, each value filterable ("filter on this value").
    pub details: Vec<format::AttrRow>,
}

#[derive(Template)]
#[template(path = "logs.html")]
struct LogsPage {
    title: String,
    active: &'static str,
    save: Option<super::SaveForm>,
    dims: charts::Dims,
    form: LogForm,
    window: TimeWindow,
    ranges: &'static [(&'static str, i64)],
    lines: Vec<LogLine>,
    chart: Chart,
    total: u64,
    error: Option<String>,
    /// Spaces and a `^` under the place the query stops parsing, when there is one.
    caret: Option<String>,
    next_href: Option<String>,
    first_href: Option<String>,
    /// Set when the query is a correlation id: every log of that request, in time order.
    correlation: Option<String>,
    stitched_href: Option<String>,
    tail_href: String,
    /// The levels of the stacked histogram and their colours (empty when it is not split).
    level_legend: Vec<(String, &'static str)>,
    /// When nothing matched a query written `field=value`: the query with `field:value`, and
    /// its address in the same window.
    hint: Option<(String, String)>,
}

/// The query with each `name=value` part written `name:value`, when it has any: `=` is no
/// field match in the query language (`service=payment` asks for bodies holding the words
/// "service" and "payment"), and a search that finds nothing is where people paste it.
fn field_syntax_hint(query: &str) -> Option<String> {
    let mut changed = false;
    let parts: Vec<String> = query
        .split(' ')
        .map(|part| match part.split_once('=') {
            Some((name, value))
                if !name.is_empty()
                    && !value.is_empty()
                    && !value.starts_with('=')
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.')) =>
            {
                changed = true;
                format!("{name}:{value}")
            }
            _ => part.to_string(),
        })
        .collect();
    changed.then(|| parts.join(" "))
}

/// The query narrowed to records whose `field` is `value` (in the same window); none for a
/// value the query language cannot quote.
fn filter_href(query: &str, field: &str, value: &str, window: &TimeWindow) -> Option<String> {
    if value.is_empty() || value.contains(['"', '\\']) || value.contains(char::is_control) {
        return None;
    }
    let narrowed = match query.trim() {
        "" => format!("{field}:\"{value}\""),
        q => format!("{q} {field}:\"{value}\""),
    };
    Some(super::url_in(window, "/logs", &[("q", narrowed)]))
}

/// The rows of a record's details: its resource, level, trace and span, scope and attributes.
fn details(l: &LogRow, query: &str, window: &TimeWindow) -> Vec<format::AttrRow> {
    let filter = |field: &str, value: &str| filter_href(query, field, value, window);
    let mut rows = Vec::new();
    let mut push = |key: &str, value: &str, href: Option<String>| {
        rows.push(format::AttrRow {
            key: key.to_string(),
            value: format::shown(value),
            href,
        })
    };
    push("time", &l.time_unix_nano.to_string(), None);
    let r = &l.resource;
    push(
        "service.name",
        &r.service_name,
        filter("service", &r.service_name),
    );
    push(
        "service.instance.id",
        &r.service_instance_id,
        filter("instance", &r.service_instance_id),
    );
    for key in [LiftedKey::Version, LiftedKey::HostName] {
        push(key.key(), r.lifted(key), None);
    }
    push(
        "severity",
        &format!("{} ({})", l.severity_text, l.severity_number),
        filter("level", &l.severity_text),
    );
    if let Some(t) = l.trace_id {
        push("trace_id", &t.to_hex(), Some(format!("/traces/{t}")));
    }
    if let Some(s) = l.span_id {
        let href = l.trace_id.map(|t| format!("/traces/{t}?span={s}#span-{s}"));
        push("span_id", &s.to_hex(), href);
    }
    if let Some(c) = &l.correlation_id {
        push("correlation_id", c, filter("correlation_id", c));
    }
    if !l.scope_name.is_empty() {
        push("scope", &l.scope_name, None);
    }
    rows.extend(format::linked_rows(
        format::attribute_rows(&l.attributes),
        filter,
    ));
    for (key, value) in format::attribute_rows(&r.attributes) {
        rows.push(format::AttrRow {
            key: format!("resource {key}"),
            value,
            href: None,
        });
    }
    rows
}

fn line(l: &LogRow, highlight: &[String], query: &str, window: &TimeWindow) -> LogLine {
    let shown = format::shown(&l.body);
    LogLine {
        details: details(l, query, window),
        time: format::time(l.time_unix_nano),
        color: format::service_color(&l.resource.service_name),
        service: l.resource.service_name.clone(),
        instance: l.resource.service_instance_id.clone(),
        severity: l.severity_text.clone(),
        severity_class: format::severity_class(l.severity_number),
        body: format::highlight(&shown.short, highlight),
        full_body: shown.full,
        trace_href: l.trace_id.map(|t| match l.span_id {
            Some(s) => format!("/traces/{t}?span={s}#span-{s}"),
            None => format!("/traces/{t}"),
        }),
    }
}

/// The colour of a level's bars in the histogram.
fn level_color(level: &str) -> &'static str {
    match level {
        "FATAL" => "#912018",
        "ERROR" => "#d92d20",
        "WARN" => "#f79009",
        "INFO" => "#2f6fde",
        "DEBUG" | "TRACE" => "#98a2b3",
        _ => "#d0d5dd",
    }
}

pub async fn handler(
    State(engine): State<QueryEngine>,
    chrome: super::chrome::PageChrome,
    Query(form): Query<LogForm>,
) -> Response {
    let params = TimeParams {
        range: form.range.clone(),
        from: form.from.clone(),
        to: form.to.clone(),
    };
    let now = now_ns();
    let (window, mut error) = params.resolve_or_default(now);
    let mut page = LogsPage {
        title: "Logs".into(),
        active: "logs",
        save: chrome.save_form(window.start, window.end),
        dims: charts::Dims::default(),
        tail_href: url("/logs/tail", &[("q", form.q.clone())]),
        form: form.clone(),
        ranges: RANGES,
        lines: Vec::new(),
        chart: charts::histogram(
            &[0; BUCKETS],
            window.start,
            (window.end - window.start) / BUCKETS as i64,
        ),
        total: 0,
        error: None,
        caret: None,
        next_href: None,
        first_href: None,
        correlation: None,
        stitched_href: None,
        hint: None,
        level_legend: Vec::new(),
        window,
    };
    if error.is_none() {
        if let Err(e) = fill(&engine, &form, &mut page).await {
            error = Some(match e {
                QueryError::BadRequest(m) => m,
                other => format!("the search failed: {other}"),
            });
        }
    }
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    page.caret = error
        .as_ref()
        .and_then(|_| crate::query::log_query::syntax_error_position(&form.q))
        .map(|at| " ".repeat(at) + "^");
    page.error = error;
    let (start, end) = (page.window.start, page.window.end);
    let notes = chrome.annotations(start, end, None).await;
    super::chrome::PageChrome::annotate(&mut page.chart, &notes, start, end);
    render(&page, status)
}

async fn fill(engine: &QueryEngine, form: &LogForm, page: &mut LogsPage) -> Result<(), QueryError> {
    let (start, end) = (page.window.start, page.window.end);
    let histogram = engine.log_histogram(&form.q, start, end, BUCKETS).await?;
    page.chart = match &histogram.levels {
        // Stacked by level, the most severe at the bottom where the eye starts.
        Some(levels) => {
            let series: Vec<(String, &'static str, Vec<u64>)> = levels
                .iter()
                .rev()
                .map(|l| (l.level.to_string(), level_color(l.level), l.counts.clone()))
                .collect();
            page.level_legend = series.iter().map(|(l, c, _)| (l.clone(), *c)).collect();
            charts::stacked(
                &series,
                histogram.start_unix_nano,
                histogram.bucket_nano,
                &[],
            )
        }
        None => charts::histogram(
            &histogram.counts,
            histogram.start_unix_nano,
            histogram.bucket_nano,
        ),
    };
    page.total = histogram.total;
    if let Some(id) = crate::query::log_query::correlation_only(&form.q) {
        // Every log of the request across services, oldest first, whatever the window.
        let found = engine.correlation(&id).await?;
        page.stitched_href = found
            .traces
            .first()
            .map(|t| format!("/traces/{}", t.trace_id));
        page.lines = found
            .logs
            .iter()
            .map(|l| line(l, &[], &form.q, &page.window))
            .collect();
        page.correlation = Some(id);
        return Ok(());
    }
    let search = LogSearch {
        query: form.q.clone(),
        start: Some(start),
        end: Some(end),
        limit: PAGE,
        before: form.before.as_deref().map(LogCursor::parse).transpose()?,
    };
    let result = engine.search_logs(&search).await?;
    page.lines = result
        .logs
        .iter()
        .map(|l| line(l, &result.highlight, &form.q, &page.window))
        .collect();
    let mut base = vec![("q", form.q.clone())];
    base.extend(page.window.query_pairs());
    if let Some(cursor) = result.next_cursor {
        // Later pages pin the window to absolute bounds, so arriving records shift nothing.
        let pairs = [
            ("q", form.q.clone()),
            ("from", start.to_string()),
            ("to", end.to_string()),
            ("before", cursor),
        ];
        page.next_href = Some(url("/logs", &pairs));
    }
    if form.before.is_some() {
        page.first_href = Some(url("/logs", &base));
    }
    if page.lines.is_empty() {
        page.hint = field_syntax_hint(&form.q).map(|suggested| {
            let href = super::url_in(&page.window, "/logs", &[("q", suggested.clone())]);
            (suggested, href)
        });
    }
    Ok(())
}

/// Query of the live tail stream.
#[derive(Debug, Deserialize)]
pub struct TailParams {
    #[serde(default)]
    q: String,
}

/// Server-sent events: every second, the records that matched since the last look.
/// Most live-tail streams open at once. Each one searches the newest logs every second for as
/// long as its tab stays open, so a thousand forgotten tabs would be a thousand searches a
/// second; past this a new tail is answered 429 with the limit named.
pub const MAX_LIVE_TAILS: usize = 64;

/// The live tail's state: the live data and the permits of the streams open now.
#[derive(Clone)]
pub struct LiveTails {
    engine: QueryEngine,
    open: Arc<Semaphore>,
}

impl LiveTails {
    /// Tails of `engine`'s live data, at most [`MAX_LIVE_TAILS`] at once.
    pub fn new(engine: QueryEngine) -> LiveTails {
        LiveTails {
            engine,
            open: Arc::new(Semaphore::new(MAX_LIVE_TAILS)),
        }
    }
}

/// `/logs/tail`: server-sent events of the records newer than the last one sent.
pub async fn tail(State(tails): State<LiveTails>, Query(params): Query<TailParams>) -> Response {
    if let Err(e) = crate::query::log_query::parse(&params.q) {
        return (StatusCode::BAD_REQUEST, e.to_string()).into_response();
    }
    let Ok(permit) = tails.open.clone().try_acquire_owned() else {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "{MAX_LIVE_TAILS} live tails are open, the most this server keeps at once; \
                 close one (or its browser tab) and try again"
            ),
        )
            .into_response();
    };
    let engine = tails.engine;
    // The permit lives in the stream's state: it is given back when the client goes away
    // and the stream is dropped.
    let stream = futures::stream::unfold(
        (engine, params.q, now_ns(), permit),
        |(engine, q, since, permit)| async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let search = LogSearch {
                query: q.clone(),
                start: Some(since + 1),
                end: None,
                limit: 500,
                before: None,
            };
            let (events, next) = match engine.search_logs(&search).await {
                Ok(found) => {
                    let next = found
                        .logs
                        .iter()
                        .map(|l| l.time_unix_nano)
                        .max()
                        .unwrap_or(since);
                    let events: Vec<Event> = found
                        .logs
                        .iter()
                        .rev()
                        .filter_map(|l| {
                            Event::default()
                                .json_data(serde_json::json!({
                                    "time": format::time(l.time_unix_nano),
                                    "service": l.resource.service_name,
                                    "color": format::service_color(&l.resource.service_name),
                                    "instance": l.resource.service_instance_id,
                                    "severity": l.severity_text,
                                    "severity_class": format::severity_class(l.severity_number),
                                    "body": l.body,
                                    "trace_href": l.trace_id.map(|t| format!("/traces/{t}")),
                                }))
                                .ok()
                        })
                        .collect();
                    (events, next)
                }
                Err(_) => (Vec::new(), since),
            };
            Some((
                futures::stream::iter(events.into_iter().map(Ok::<_, Infallible>)),
                (engine, q, next, permit),
            ))
        },
    );
    use futures::StreamExt;
    Sse::new(stream.flatten())
        .keep_alive(KeepAlive::default())
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::field_syntax_hint;

    #[test]
    fn a_field_written_with_an_equals_sign_gets_the_colon_form() {
        assert_eq!(
            field_syntax_hint("service=payment timeout").as_deref(),
            Some("service:payment timeout")
        );
        assert_eq!(
            field_syntax_hint("http.status_code=500").as_deref(),
            Some("http.status_code:500")
        );
        assert_eq!(field_syntax_hint("service:payment"), None);
        assert_eq!(field_syntax_hint("a == b"), None);
        assert_eq!(field_syntax_hint("x==y"), None);
        assert_eq!(field_syntax_hint("=5 \"a=\""), None);
    }
}
