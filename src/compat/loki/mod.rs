//! The Loki HTTP API for logs (what Grafana's Loki data source calls):
//! `/loki/api/v1/query_range`, `/loki/api/v1/query`, `/loki/api/v1/labels` and
//! `/loki/api/v1/label/{name}/values`, in Loki's envelope
//! (`{"status":"success","data":{"resultType":"streams"|"matrix"|"vector",…}}`).
//!
//! Streams are labelled from the resource: `service_name`, `service_instance_id`,
//! `host_name`, `service_version`, and `level` (the severity, lower case). The LogQL subset
//! is in [`logql`]; records are read newest first through the query layer's log search
//! (service and instance matchers narrow it through the index) and the rest of the
//! pipeline runs here.

pub mod logql;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::index::{StreamCount, LOG_STREAM_COLUMNS};
use crate::model::time::{UnixNanos, NANOS_PER_HOUR};
use crate::model::window::{Window, WindowError};
use crate::model::LogRow;
use crate::query::{Counted, LogCursor, LogFilter, LogSearch, QueryEngine, QueryError};
use crate::store::Prefilter;
use logql::{LogQuery, MetricQuery, Op, RangeFunction, Stage};

/// The routes.
pub fn router(engine: QueryEngine) -> Router {
    Router::new()
        .route("/loki/api/v1/query_range", get(query_range))
        .route("/loki/api/v1/query", get(query))
        .route("/loki/api/v1/labels", get(labels))
        .route("/loki/api/v1/label/{name}/values", get(label_values))
        .with_state(engine)
}

/// Records read per page of the underlying search.
const PAGE: usize = 5_000;
/// Most records one query may read, so one broad query cannot take the server.
const MAX_SCAN: usize = 2_000_000;
/// Loki's default line limit.
const DEFAULT_LIMIT: usize = 100;
/// Most points one result series may have (Loki's and Prometheus' limit).
const MAX_POINTS: i64 = 11_000;

type Labels = BTreeMap<String, String>;

/// A Loki API error, answered in the Prometheus-style envelope Loki's query API shares.
struct LokiError(StatusCode, String);

impl LokiError {
    fn bad(message: impl Into<String>) -> Self {
        LokiError(StatusCode::BAD_REQUEST, message.into())
    }
}

impl IntoResponse for LokiError {
    fn into_response(self) -> Response {
        let kind = if self.0 == StatusCode::BAD_REQUEST {
            "bad_data"
        } else {
            "execution"
        };
        (
            self.0,
            Json(json!({"status": "error", "errorType": kind, "error": self.1})),
        )
            .into_response()
    }
}

impl From<QueryError> for LokiError {
    fn from(e: QueryError) -> Self {
        match e {
            QueryError::BadRequest(m) => LokiError::bad(m),
            QueryError::TooLarge(m) => LokiError(StatusCode::UNPROCESSABLE_ENTITY, m),
            other => {
                tracing::error!("loki query failed: {other}");
                LokiError(StatusCode::INTERNAL_SERVER_ERROR, other.to_string())
            }
        }
    }
}

impl From<logql::LogqlError> for LokiError {
    fn from(e: logql::LogqlError) -> Self {
        LokiError::bad(e.0)
    }
}

fn success(data: Value) -> Response {
    Json(json!({"status": "success", "data": data})).into_response()
}

/// Query string of the query endpoints.
#[derive(Debug, serde::Deserialize)]
struct QueryParams {
    query: Option<String>,
    start: Option<String>,
    end: Option<String>,
    time: Option<String>,
    limit: Option<usize>,
    step: Option<String>,
    direction: Option<String>,
}

/// `start`/`end` of a request, the last hour by default.
fn window_of(p: &QueryParams) -> Result<Window, LokiError> {
    Window::from_params(
        p.start.as_deref(),
        p.end.as_deref(),
        NANOS_PER_HOUR,
        UnixNanos::now(),
    )
    .map_err(window_error)
}

/// A refused window in Loki's words.
fn window_error(e: WindowError) -> LokiError {
    match e {
        WindowError::Reversed => {
            LokiError::bad("the query time range is invalid: end is before start")
        }
        WindowError::TooManyPoints { .. } => LokiError::bad(
            "exceeded maximum resolution of 11,000 points per timeseries. Try increasing the value of the step parameter",
        ),
        WindowError::Invalid(m) => LokiError::bad(m),
    }
}

/// A stream's labels from its record's resource and severity.
fn stream_labels(row: &LogRow) -> Labels {
    let r = &row.resource;
    labels_of([
        &r.service_name,
        &r.service_instance_id,
        &r.host_name,
        &r.service_version,
        &row.severity_text,
    ])
}

/// Each stream label, in the order of the log columns it comes from
/// ([`LOG_STREAM_COLUMNS`]) and that [`labels_of`] takes their values in; the four resource
/// labels are named like their columns.
const STREAM_LABELS: [&str; 5] = [
    "service_name",
    "service_instance_id",
    "host_name",
    "service_version",
    "level",
];

/// Stream labels from the values of [`LOG_STREAM_COLUMNS`]: empty resource values are left
/// out; `level` is the severity text in lower case, `unknown` without one.
fn labels_of(values: [&str; 5]) -> Labels {
    labels_kept(values, [true; 5])
}

/// Like [`labels_of`], keeping only the labels whose column is `kept`.
fn labels_kept(values: [&str; 5], kept: [bool; 5]) -> Labels {
    let mut labels = Labels::new();
    for (i, v) in values.iter().enumerate().filter(|(i, _)| kept[*i]) {
        match i {
            4 => labels.insert("level".into(), level_of(v)),
            _ if !v.is_empty() => labels.insert(STREAM_LABELS[i].into(), (*v).to_string()),
            _ => None,
        };
    }
    labels
}

/// Streams of a batch remembered by [`counts_from_columns`] before it looks one up.
const RECENT_STREAMS: usize = 8;

/// The `level` label of a severity text.
fn level_of(severity_text: &str) -> String {
    if severity_text.is_empty() {
        "unknown".to_string()
    } else {
        severity_text.to_lowercase()
    }
}

/// The record's labels after the query's selector and pipeline, or `None` when filtered out.
fn pass(q: &LogQuery, row: &LogRow) -> Option<Labels> {
    let mut labels = stream_labels(row);
    if !q
        .matchers
        .iter()
        .all(|m| m.accepts(labels.get(&m.label).map(String::as_str)))
    {
        return None;
    }
    for stage in &q.pipeline {
        let ok = match stage {
            Stage::Contains { text, negate } => row.body.contains(text.as_str()) != *negate,
            Stage::Regex { regex, negate } => regex.is_match(&row.body) != *negate,
            Stage::Json => {
                if let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(&row.body) {
                    flatten("", &Value::Object(fields), &mut labels);
                } else {
                    labels.insert("__error__".into(), "JSONParserErr".into());
                }
                true
            }
            Stage::LabelFilter(m) => m.accepts(labels.get(&m.label).map(String::as_str)),
        };
        if !ok {
            return None;
        }
    }
    Some(labels)
}

/// `| json`: nested keys joined with `_`, values as text.
fn flatten(prefix: &str, value: &Value, out: &mut Labels) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let key: String = k
                    .chars()
                    .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                    .collect();
                let key = if prefix.is_empty() {
                    key
                } else {
                    format!("{prefix}_{key}")
                };
                flatten(&key, v, out);
            }
        }
        Value::Null => {}
        Value::String(s) => {
            out.insert(prefix.to_string(), s.clone());
        }
        Value::Array(_) => {
            out.insert(prefix.to_string(), value.to_string());
        }
        other => {
            out.insert(prefix.to_string(), other.to_string());
        }
    }
}

/// What the index can narrow, as a log filter: service and instance equality, and the
/// whole words of each line filter (see [`whole_words`]); the rest of the query is checked
/// line by line ([`pass`]).
fn pushdown(q: &LogQuery) -> LogFilter {
    let selectors = q
        .matchers
        .iter()
        .filter(|m| m.op == Op::Eq && !m.value.is_empty())
        .filter_map(|m| match m.label.as_str() {
            "service_name" => Some(LogFilter::Service(m.value.clone())),
            "service_instance_id" => Some(LogFilter::Instance(m.value.clone())),
            _ => None,
        });
    let words = q.pipeline.iter().flat_map(|stage| match stage {
        Stage::Contains {
            text,
            negate: false,
        } => whole_words(text),
        _ => Vec::new(),
    });
    LogFilter::all_of(
        selectors
            .chain(words.map(|w| LogFilter::body_text(&w)))
            .collect(),
    )
}

/// The words of a line filter's text that every line holding the text holds as words of
/// the block index: runs of letters and digits with a character on both sides inside the
/// text that is neither a letter, a digit nor `-` (a line filter matches any substring, so
/// `|= "time"` finds "timeout" and its edge runs say nothing; a run beside a `-` may be
/// the inside of a uuid, which is no word), shorter than 64 bytes (longer ones are not
/// indexed).
/// A line filter with no such word (`|= "3f2a9c1e"`) is checked line by line.
fn whole_words(text: &str) -> Vec<String> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut words = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if !chars[i].1.is_alphanumeric() {
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len() && chars[i].1.is_alphanumeric() {
            i += 1;
        }
        let bounded = |c: Option<&(usize, char)>| c.is_some_and(|(_, c)| *c != '-');
        let before = start.checked_sub(1).and_then(|b| chars.get(b));
        if bounded(before) && bounded(chars.get(i)) {
            let from = chars[start].0;
            let to = chars.get(i).map_or(text.len(), |(at, _)| *at);
            let word = &text[from..to];
            if word.len() < 64 {
                words.push(word.to_lowercase());
            }
        }
    }
    words
}

/// Reads records of `[start, end]` newest first and calls `each` with those that pass,
/// until it returns false or the window is exhausted.
async fn scan(
    engine: &QueryEngine,
    q: &LogQuery,
    start: i64,
    end: i64,
    mut each: impl FnMut(Labels, &LogRow) -> bool,
) -> Result<(), LokiError> {
    let mut search = LogSearch {
        query: pushdown(q),
        start: Some(start),
        end: Some(end),
        limit: PAGE,
        before: None::<LogCursor>,
    };
    let mut scanned = 0;
    loop {
        let page = engine.search_logs_matching(&search).await?;
        scanned += page.logs.len();
        for row in &page.logs {
            if let Some(labels) = pass(q, row) {
                if !each(labels, row) {
                    return Ok(());
                }
            }
        }
        let Some(cursor) = page.next_cursor.filter(|_| page.truncated) else {
            return Ok(());
        };
        if scanned >= MAX_SCAN {
            return Err(LokiError(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!(
                    "the query reads more than {MAX_SCAN} log lines; narrow the time range or the stream selector"
                ),
            ));
        }
        search.before = Some(LogCursor::parse(&cursor)?);
    }
}

/// Log lines as Loki streams: newest first (`backward`, the default) or oldest first.
async fn streams(
    engine: &QueryEngine,
    q: &LogQuery,
    start: i64,
    end: i64,
    limit: usize,
    forward: bool,
) -> Result<Value, LokiError> {
    let mut lines: Vec<(Labels, i64, String)> = Vec::new();
    scan(engine, q, start, end, |labels, row| {
        lines.push((labels, row.time_unix_nano, row.body.clone()));
        forward || lines.len() < limit
    })
    .await?;
    if forward {
        lines.sort_by_key(|l| l.1);
        lines.truncate(limit);
    }
    let mut by_stream: BTreeMap<Labels, Vec<Value>> = BTreeMap::new();
    for (labels, t, line) in lines {
        by_stream
            .entry(labels)
            .or_default()
            .push(json!([t.to_string(), line]));
    }
    let result: Vec<Value> = by_stream
        .into_iter()
        .map(|(stream, values)| json!({"stream": stream, "values": values}))
        .collect();
    Ok(json!({"resultType": "streams", "result": result, "stats": {}}))
}

/// The query's selector and line filters as column checks; `None` when a stage needs the
/// record itself (`| json`, label filters on parsed fields).
fn column_checks(q: &LogQuery) -> Option<Prefilter> {
    let mut checks = Prefilter::none();
    for m in &q.matchers {
        let m = m.clone();
        checks = match m.label.as_str() {
            "level" => checks.text_passes(
                "severity_text",
                Arc::new(move |s: &str| m.accepts(Some(&level_of(s)))),
            ),
            label => match STREAM_LABELS[..4].iter().position(|l| *l == label) {
                Some(i) => {
                    let column = LOG_STREAM_COLUMNS[i];
                    checks.text_passes(column, Arc::new(move |s: &str| m.accepts(Some(s))))
                }
                // A label no stream has: the matcher sees it empty, for every record.
                None if m.accepts(None) => checks,
                None => checks.text_passes("service_name", Arc::new(|_: &str| false)),
            },
        };
    }
    for stage in &q.pipeline {
        checks = match stage.clone() {
            Stage::Contains { text, negate } => checks.text_passes(
                "body",
                Arc::new(move |b: &str| b.contains(text.as_str()) != negate),
            ),
            Stage::Regex { regex, negate } => {
                checks.text_passes("body", Arc::new(move |b: &str| regex.is_match(b) != negate))
            }
            Stage::Json | Stage::LabelFilter(_) => return None,
        };
    }
    Some(checks)
}

/// The records that pass `q` in each step's window, by stream: whole blocks counted by the
/// index (a block on one side of every window edge adds all its records to the same steps)
/// and single records read from the time and label columns alone; `None` when `q` needs
/// whole records (see [`column_checks`]).
///
/// Series are told apart by the labels whose column is `kept` (all of them for streams; the
/// `by` labels of a `sum`, which adds the streams up anyway), and only those columns are read.
async fn counts_from_columns(
    engine: &QueryEngine,
    q: &LogQuery,
    windows: &StepWindows<'_>,
    kept: [bool; 5],
) -> Result<Option<BTreeMap<Labels, Vec<u64>>>, LokiError> {
    let Some(checks) = column_checks(q) else {
        return Ok(None);
    };
    let filter = pushdown(q);
    let mut series = SeriesCounts {
        kept,
        slots: HashMap::new(),
        series: Vec::new(),
    };
    let mut columns = vec!["time"];
    columns.extend((0..5).filter(|i| kept[*i]).map(|i| LOG_STREAM_COLUMNS[i]));
    let read = engine
        .count_log_streams(
            &filter,
            checks,
            windows.span(),
            &columns,
            |first, last| windows.one_side(first, last),
            |counted| match counted {
                Counted::Block { stream, time } => series.add_stream(windows, stream, time),
                Counted::Rows(batch) => series.add_rows(windows, batch),
            },
        )
        .await?;
    if !read {
        return Ok(None);
    }
    // Two label sets can differ only in the case of the severity text: merge them.
    let mut counts: BTreeMap<Labels, Vec<i64>> = BTreeMap::new();
    for (labels, changes) in series.series {
        let merged = counts.entry(labels).or_insert_with(|| windows.no_changes());
        for (m, c) in merged.iter_mut().zip(changes) {
            *m += c;
        }
    }
    Ok(Some(
        counts
            .into_iter()
            .map(|(labels, changes)| (labels, windows.counts(&changes)))
            .collect(),
    ))
}

/// The windows `(t - range, t]` of a metric query's steps, and records counted into them
/// as changes at window starts and ends (a record adds to every window from the first step
/// at or after it to the last before it leaves the range), so counting a record costs two
/// binary searches whatever the range, and a series holds one number per step.
struct StepWindows<'a> {
    steps: &'a [i64],
    range: i64,
    /// Every window's start and end, sorted.
    edges: Vec<i64>,
}

impl<'a> StepWindows<'a> {
    /// The windows of `steps` over `range`.
    fn new(steps: &'a [i64], range: i64) -> Self {
        let mut edges: Vec<i64> = steps
            .iter()
            .flat_map(|t| [*t, t.saturating_sub(range)])
            .collect();
        edges.sort_unstable();
        edges.dedup();
        Self {
            steps,
            range,
            edges,
        }
    }

    /// From the start of the first window to the end of the last.
    fn span(&self) -> (i64, i64) {
        let first = self.steps.first().copied().unwrap_or(0);
        let last = self.steps.last().copied().unwrap_or(0);
        (first.saturating_sub(self.range), last)
    }

    /// Whether records from `first` to `last` lie on one side of every window's start and
    /// end: then they add to the same windows, whichever of them is counted.
    fn one_side(&self, first: i64, last: i64) -> bool {
        let i = self.edges.partition_point(|e| *e < first);
        self.edges.get(i).is_none_or(|e| *e >= last)
    }

    /// A series with nothing counted yet.
    fn no_changes(&self) -> Vec<i64> {
        vec![0; self.steps.len() + 1]
    }

    /// Counts `n` records at `time` into `changes` (of [`StepWindows::no_changes`]'s length).
    fn add(&self, changes: &mut [i64], time: i64, n: u64) {
        let first = self.steps.partition_point(|t| *t < time);
        let past = self
            .steps
            .partition_point(|t| t.saturating_sub(self.range) < time);
        if first < past {
            let n = i64::try_from(n).unwrap_or(i64::MAX);
            changes[first] += n;
            changes[past] -= n;
        }
    }

    /// The count of each window.
    fn counts(&self, changes: &[i64]) -> Vec<u64> {
        let mut running = 0i64;
        changes[..self.steps.len()]
            .iter()
            .map(|c| {
                running += c;
                u64::try_from(running).unwrap_or(0)
            })
            .collect()
    }
}

/// The series of [`counts_from_columns`] as they fill: (time, records) pairs per label set.
struct SeriesCounts {
    /// Which stream columns tell series apart.
    kept: [bool; 5],
    slots: HashMap<Vec<String>, usize>,
    /// Each series' labels and its changes (see [`StepWindows`]).
    series: Vec<(Labels, Vec<i64>)>,
}

impl SeriesCounts {
    /// The index in `series` of stream `key`'s series, added if new.
    fn slot(&mut self, windows: &StepWindows<'_>, key: [&str; 5]) -> usize {
        let kept = self.kept;
        let owned: Vec<String> = (0..5)
            .filter(|c| kept[*c])
            .map(|c| key[c].to_string())
            .collect();
        let series = &mut self.series;
        *self.slots.entry(owned).or_insert_with(|| {
            series.push((labels_kept(key, kept), windows.no_changes()));
            series.len() - 1
        })
    }

    /// Counts the records of one stream of a block, all on the same side of every window
    /// edge as `time`.
    fn add_stream(&mut self, windows: &StepWindows<'_>, stream: &StreamCount, time: i64) {
        let slot = self.slot(windows, std::array::from_fn(|i| &*stream.values[i]));
        windows.add(&mut self.series[slot].1, time, u64::from(stream.records));
    }

    /// Counts each record of a batch of time and stream columns.
    fn add_rows(&mut self, windows: &StepWindows<'_>, batch: &arrow::record_batch::RecordBatch) {
        use arrow::array::{Array, AsArray, StringArray};
        use arrow::datatypes::TimestampNanosecondType;
        let times = batch
            .column_by_name("time")
            .and_then(|c| c.as_primitive_opt::<TimestampNanosecondType>());
        let labels: [Option<&StringArray>; 5] = LOG_STREAM_COLUMNS.map(|c| {
            batch
                .column_by_name(c)
                .and_then(|a| a.as_string_opt::<i32>())
        });
        let Some(times) = times else {
            tracing::error!("log columns without time: skipping a batch");
            return;
        };
        let kept = self.kept;
        // A batch holds few streams, and levels interleave: the streams met last are looked
        // for first, so the shared map is hashed only when a stream is new.
        let mut recent: Vec<([&str; 5], usize)> = Vec::with_capacity(RECENT_STREAMS);
        for (i, &t) in times.values().iter().enumerate() {
            let key = labels.map(|a| match a {
                Some(a) if !a.is_null(i) => a.value(i),
                _ => "",
            });
            // Newest first: within a run of one stream the first comparison hits.
            let same = |k: &[&str; 5]| (0..5).all(|c| !kept[c] || k[c] == key[c]);
            let slot = match recent.iter().rev().find(|(k, _)| same(k)) {
                Some((_, slot)) => *slot,
                None => {
                    let slot = self.slot(windows, key);
                    if recent.len() == RECENT_STREAMS {
                        recent.remove(0);
                    }
                    recent.push((key, slot));
                    slot
                }
            };
            windows.add(&mut self.series[slot].1, t, 1);
        }
    }
}

/// Evaluates a metric query at `steps`: one value per series and step (or none).
async fn metric(
    engine: &QueryEngine,
    q: &MetricQuery,
    steps: &[i64],
) -> Result<Vec<(Labels, Vec<Option<f64>>)>, LokiError> {
    // A sum adds streams up: count straight into its groups.
    let kept = match &q.aggregation {
        Some(agg) if agg.op == "sum" && !agg.without => {
            STREAM_LABELS.map(|label| agg.labels.iter().any(|l| l == label))
        }
        _ => [true; 5],
    };
    let windows = StepWindows::new(steps, q.range_nano);
    let counts = match counts_from_columns(engine, &q.log, &windows, kept).await? {
        Some(counts) => counts,
        None => {
            let mut changes: BTreeMap<Labels, Vec<i64>> = BTreeMap::new();
            let (from, last) = windows.span();
            scan(engine, &q.log, from, last, |labels, row| {
                let series = changes
                    .entry(labels)
                    .or_insert_with(|| windows.no_changes());
                windows.add(series, row.time_unix_nano, 1);
                true
            })
            .await?;
            changes
                .into_iter()
                .map(|(labels, c)| (labels, windows.counts(&c)))
                .collect()
        }
    };
    let range_secs = q.range_nano as f64 / 1e9;
    let mut series: Vec<(Labels, Vec<Option<f64>>)> = counts
        .into_iter()
        .map(|(labels, counts)| {
            let values = counts
                .into_iter()
                .map(|n| {
                    (n > 0).then(|| match q.function {
                        RangeFunction::CountOverTime => n as f64,
                        RangeFunction::Rate => n as f64 / range_secs,
                    })
                })
                .collect();
            (labels, values)
        })
        .collect();
    if let Some(agg) = &q.aggregation {
        let mut groups: BTreeMap<Labels, Vec<Vec<f64>>> = BTreeMap::new();
        for (labels, values) in series {
            let key: Labels = labels
                .into_iter()
                .filter(|(k, _)| agg.labels.contains(k) != agg.without)
                .collect();
            let g = groups
                .entry(key)
                .or_insert_with(|| vec![Vec::new(); steps.len()]);
            for (i, v) in values.into_iter().enumerate() {
                if let Some(v) = v {
                    g[i].push(v);
                }
            }
        }
        series = groups
            .into_iter()
            .map(|(labels, per_step)| {
                let values = per_step
                    .into_iter()
                    .map(|vs| {
                        (!vs.is_empty()).then(|| {
                            crate::compat::prometheus::eval::aggregate_values(&agg.op, &vs)
                        })
                    })
                    .collect();
                (labels, values)
            })
            .collect();
    }
    Ok(series)
}

fn sample(t: i64, v: f64) -> Value {
    json!([
        t as f64 / 1e9,
        crate::compat::prometheus::series::format_value(v)
    ])
}

/// Loki's default step: the window in about 250 points, at least a second.
fn default_step(window: &Window) -> i64 {
    (window.len_nanos() / 250).max(1_000_000_000)
}

async fn query_range(State(engine): State<QueryEngine>, Query(p): Query<QueryParams>) -> Response {
    run_range(engine, p)
        .await
        .unwrap_or_else(|e| e.into_response())
}

async fn run_range(engine: QueryEngine, p: QueryParams) -> Result<Response, LokiError> {
    let text = p
        .query
        .as_deref()
        .ok_or_else(|| LokiError::bad("missing query parameter"))?;
    let window = window_of(&p)?;
    let (start, end) = (window.start(), window.end());
    match logql::parse(text)? {
        logql::Query::Log(q) => {
            let forward = match p.direction.as_deref() {
                None | Some("") | Some("backward") => false,
                Some("forward") => true,
                Some(other) => {
                    return Err(LokiError::bad(format!(
                        "invalid direction {other:?}: use forward or backward"
                    )))
                }
            };
            let limit = p.limit.unwrap_or(DEFAULT_LIMIT).max(1);
            Ok(success(
                streams(&engine, &q, start, end, limit, forward).await?,
            ))
        }
        logql::Query::Metric(q) => {
            let step = match p.step.as_deref().filter(|s| !s.is_empty()) {
                Some(s) => super::parse_step(s).map_err(LokiError::bad)?,
                None => default_step(&window),
            };
            let steps = window.steps(step, MAX_POINTS).map_err(window_error)?;
            let series = metric(&engine, &q, &steps).await?;
            let result: Vec<Value> = series
                .into_iter()
                .map(|(labels, values)| {
                    json!({
                        "metric": labels,
                        "values": steps
                            .iter()
                            .zip(values)
                            .filter_map(|(t, v)| v.map(|v| sample(*t, v)))
                            .collect::<Vec<_>>(),
                    })
                })
                .collect();
            Ok(success(
                json!({"resultType": "matrix", "result": result, "stats": {}}),
            ))
        }
    }
}

async fn query(State(engine): State<QueryEngine>, Query(p): Query<QueryParams>) -> Response {
    async {
        let text = p
            .query
            .as_deref()
            .ok_or_else(|| LokiError::bad("missing query parameter"))?;
        let t = match p.time.as_deref().filter(|t| !t.is_empty()) {
            Some(text) => UnixNanos::parse_param("time", text).map_err(LokiError::bad)?,
            None => UnixNanos::now(),
        };
        match logql::parse(text)? {
            logql::Query::Log(q) => {
                let limit = p.limit.unwrap_or(DEFAULT_LIMIT).max(1);
                let (start, end) = (t.minus(NANOS_PER_HOUR).nanos(), t.nanos());
                Ok(success(
                    streams(&engine, &q, start, end, limit, false).await?,
                ))
            }
            logql::Query::Metric(q) => {
                let series = metric(&engine, &q, &[t.nanos()]).await?;
                let result: Vec<Value> = series
                    .into_iter()
                    .filter_map(|(labels, values)| {
                        values[0].map(|v| json!({"metric": labels, "value": sample(t.nanos(), v)}))
                    })
                    .collect();
                Ok::<_, LokiError>(success(
                    json!({"resultType": "vector", "result": result, "stats": {}}),
                ))
            }
        }
    }
    .await
    .unwrap_or_else(|e| e.into_response())
}

/// The window of a labels request: `start`/`end`, default the last hour.
fn label_window(p: &QueryParams) -> Result<(i64, i64), LokiError> {
    let window = window_of(p)?;
    Ok((window.start(), window.end()))
}

/// Label values of a window: resource labels from the instances seen in it (the service
/// registry), `level` from the records themselves.
async fn values_of(
    engine: &QueryEngine,
    name: &str,
    start: i64,
    end: i64,
) -> Result<BTreeSet<String>, LokiError> {
    let mut out = BTreeSet::new();
    if name == "level" {
        let mut search = LogSearch {
            query: LogFilter::All,
            start: Some(start),
            end: Some(end),
            limit: PAGE,
            before: None,
        };
        // Levels are few: a few pages of the window find them all in practice.
        for _ in 0..4 {
            let page = engine.search_logs_matching(&search).await?;
            for row in &page.logs {
                if let Some(level) = stream_labels(row).remove("level") {
                    out.insert(level);
                }
            }
            match page.next_cursor.filter(|_| page.truncated) {
                Some(c) => search.before = Some(LogCursor::parse(&c)?),
                None => break,
            }
        }
        return Ok(out);
    }
    for service in engine.services() {
        for i in service
            .instances
            .iter()
            .filter(|i| i.last_seen_unix_nano >= start)
        {
            let value = match name {
                "service_name" => &service.name,
                "service_instance_id" => &i.instance,
                "host_name" => &i.host,
                "service_version" => &i.version,
                _ => continue,
            };
            if !value.is_empty() {
                out.insert(value.clone());
            }
        }
    }
    Ok(out)
}

async fn labels(State(engine): State<QueryEngine>, Query(p): Query<QueryParams>) -> Response {
    async {
        let (start, end) = label_window(&p)?;
        let mut names = Vec::new();
        let mut sorted = STREAM_LABELS;
        sorted.sort_unstable();
        for name in sorted {
            if !values_of(&engine, name, start, end).await?.is_empty() {
                names.push(name);
            }
        }
        Ok::<_, LokiError>(success(json!(names)))
    }
    .await
    .unwrap_or_else(|e| e.into_response())
}

async fn label_values(
    State(engine): State<QueryEngine>,
    Path(name): Path<String>,
    Query(p): Query<QueryParams>,
) -> Response {
    async {
        let (start, end) = label_window(&p)?;
        Ok::<_, LokiError>(success(json!(values_of(&engine, &name, start, end).await?)))
    }
    .await
    .unwrap_or_else(|e| e.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn selector_of(query: &str) -> LogQuery {
        match logql::parse(query) {
            Ok(logql::Query::Metric(q)) => q.log,
            Ok(logql::Query::Log(q)) => q,
            Err(e) => panic!("{query}: {e:?}"),
        }
    }

    #[test]
    fn line_filters_narrow_by_the_words_they_hold_whole() {
        assert_eq!(
            whole_words("payment Failed for order-1216 (3f2a9c1e)"),
            ["failed", "for", "3f2a9c1e"]
        );
        assert!(whole_words("3f2a9c1e").is_empty());
        assert!(whole_words("a-4000-b").is_empty());
        assert_eq!(whole_words(" caf\u{e9} "), ["caf\u{e9}"]);
        let long = format!(" {} {} ", "a".repeat(63), "b".repeat(64));
        assert_eq!(whole_words(&long), ["a".repeat(63)]);
        let narrowed = pushdown(&selector_of(
            r#"{service_name="a", service_instance_id="a-1"} |= " timeout " != " ok " |= "x""#,
        ));
        let expected = LogFilter::And(vec![
            LogFilter::Service("a".into()),
            LogFilter::Instance("a-1".into()),
            LogFilter::body_text("timeout"),
        ]);
        assert_eq!(format!("{narrowed:?}"), format!("{expected:?}"));
        // A value that query text would have had to quote or escape is kept as it is.
        let odd = pushdown(&selector_of(r#"{service_name="pay ment OR x*"}"#));
        assert_eq!(
            format!("{odd:?}"),
            format!("{:?}", LogFilter::Service("pay ment OR x*".into()))
        );
    }

    /// Which queries are counted from columns: selectors and line filters are; `| json` and
    /// label-filter stages need the records (so `tests/loki_api.rs` compares the two paths).
    #[test]
    fn only_selectors_and_line_filters_are_column_checks() {
        for query in [
            r#"sum by (service_name) (count_over_time({service_name=~"service-1.*"} |= "timeout" [10s]))"#,
            r#"count_over_time({service_instance_id="a"} != "retry" |~ "pool|cache" [5s])"#,
            r#"sum(rate({level=~"error|warn", host_name=~"node-[0-3]"}[10s]))"#,
        ] {
            assert!(column_checks(&selector_of(query)).is_some(), "{query}");
        }
        for query in [
            r#"count_over_time({service_name="a"} |= "timeout" | level=~".+" [10s])"#,
            r#"count_over_time({service_name="a"} | json [10s])"#,
        ] {
            assert!(column_checks(&selector_of(query)).is_none(), "{query}");
        }
    }
}
