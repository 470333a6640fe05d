//! The Prometheus HTTP API for metrics, under `/prometheus` (as Grafana Mimir does, so it
//! cannot collide with Sightline's own `/api/v1`): `query`, `query_range`, `labels`,
//! `label/{name}/values`, `series` and `status/buildinfo`, GET or form POST (Grafana's
//! default), in Prometheus' envelope `{"status":"success","data":…}` or
//! `{"status":"error","errorType":…,"error":…}`.
//!
//! PromQL is parsed by `promql-parser` and evaluated by [`eval`] over points read through the
//! query layer; OTLP names and attributes are mapped by [`names`].

pub mod eval;
pub mod names;
pub mod series;

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::{Path, Request, State};
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value as JsonValue};

use crate::model::time::{parse_time, UnixNanos, NANOS_PER_HOUR};
use crate::model::window::{Window, WindowError};
use crate::query::query_size::check_query_text;
use crate::query::{QueryEngine, QueryError};
use eval::{StepSeries, Value};
use series::{format_value, Catalog, RawSeries};

/// The routes, mounted at `/prometheus`.
pub fn router(engine: QueryEngine) -> Router {
    Router::new()
        .route("/prometheus/api/v1/query", get(query).post(query))
        .route(
            "/prometheus/api/v1/query_range",
            get(query_range).post(query_range),
        )
        .route("/prometheus/api/v1/labels", get(labels).post(labels))
        .route("/prometheus/api/v1/label/{name}/values", get(label_values))
        .route(
            "/prometheus/api/v1/series",
            get(series_api).post(series_api),
        )
        .route("/prometheus/api/v1/status/buildinfo", get(buildinfo))
        .with_state(engine)
}

/// Most points one result series may have (Prometheus' own limit).
const MAX_POINTS: i64 = 11_000;
/// Most series one query may read, so one broad selector cannot take the server.
const MAX_SERIES: usize = 50_000;
/// Window of `labels`, `label values` and `series` when the request gives none.
const DEFAULT_WINDOW_NANO: i64 = NANOS_PER_HOUR;

/// A Prometheus API error: status, `errorType` and message.
struct PromError(StatusCode, &'static str, String);

impl PromError {
    fn bad_data(message: impl Into<String>) -> Self {
        PromError(StatusCode::BAD_REQUEST, "bad_data", message.into())
    }
}

impl IntoResponse for PromError {
    fn into_response(self) -> Response {
        (
            self.0,
            Json(json!({"status": "error", "errorType": self.1, "error": self.2})),
        )
            .into_response()
    }
}

impl From<QueryError> for PromError {
    fn from(e: QueryError) -> Self {
        match e {
            QueryError::BadRequest(m) => PromError::bad_data(m),
            QueryError::TooLarge(m) => PromError(StatusCode::UNPROCESSABLE_ENTITY, "execution", m),
            other => {
                tracing::error!("prometheus query failed: {other}");
                PromError(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    other.to_string(),
                )
            }
        }
    }
}

impl From<eval::Unsupported> for PromError {
    fn from(e: eval::Unsupported) -> Self {
        PromError(
            StatusCode::UNPROCESSABLE_ENTITY,
            "execution",
            format!("unsupported by Sightline: {e}"),
        )
    }
}

fn success(data: JsonValue) -> Response {
    Json(json!({"status": "success", "data": data})).into_response()
}

/// Request parameters from the query string and, for a form POST, the body; repeated keys
/// (`match[]`) kept.
struct Params(Vec<(String, String)>);

impl Params {
    async fn of(request: Request) -> Result<Params, PromError> {
        let mut pairs: Vec<(String, String)> = request
            .uri()
            .query()
            .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
            .unwrap_or_default();
        let is_form = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        if request.method() == Method::POST && is_form {
            let body = axum::body::to_bytes(request.into_body(), 1 << 20)
                .await
                .map_err(|e| PromError::bad_data(format!("could not read the form body: {e}")))?;
            pairs.extend(form_urlencoded::parse(&body).into_owned());
        }
        Ok(Params(pairs))
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    fn all(&self, key: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    fn time(&self, key: &str) -> Result<Option<i64>, PromError> {
        self.get(key)
            .map(|t| {
                parse_time(t)
                    .map_err(|e| PromError::bad_data(format!("invalid parameter {key:?}: {e}")))
            })
            .transpose()
    }

    /// `start`/`end` with a default window ending now.
    fn window(&self) -> Result<Window, PromError> {
        let end = self
            .time("end")?
            .map(UnixNanos::from_nanos)
            .unwrap_or_else(UnixNanos::now);
        let start = self
            .time("start")?
            .map(UnixNanos::from_nanos)
            .unwrap_or(end.minus(DEFAULT_WINDOW_NANO));
        Window::new(start, end).map_err(window_error)
    }
}

/// A refused window in Prometheus' words.
fn window_error(e: WindowError) -> PromError {
    match e {
        WindowError::Reversed => PromError::bad_data("end timestamp must not be before start time"),
        WindowError::TooManyPoints { .. } => PromError::bad_data(
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
        ),
        WindowError::Invalid(m) => PromError::bad_data(m),
    }
}

fn parse_query(params: &Params) -> Result<promql_parser::parser::Expr, PromError> {
    let text = params
        .get("query")
        .ok_or_else(|| PromError::bad_data("missing parameter \"query\""))?;
    check_query_text(text)
        .map_err(|e| PromError::bad_data(format!("invalid parameter \"query\": {e}")))?;
    promql_parser::parser::parse(text)
        .map_err(|e| PromError::bad_data(format!("invalid parameter \"query\": {e}")))
}

/// The names the store knows, as Prometheus names.
async fn catalog(engine: &QueryEngine) -> Result<Catalog, PromError> {
    Ok(Catalog::build(&engine.metric_names_of("").await?))
}

/// Reads the series of every selector `expr` needs for steps from `start` to `end`.
async fn fetch(
    engine: &QueryEngine,
    needs: &[eval::Need],
    start: i64,
    end: i64,
) -> Result<BTreeMap<String, Vec<RawSeries>>, PromError> {
    let catalog = catalog(engine).await?;
    let mut fetched = BTreeMap::new();
    let mut total = 0;
    for need in needs {
        if fetched.contains_key(&need.key) {
            continue;
        }
        let sources = catalog.sources(|n| eval::name_matches(&need.selector, n));
        let from = start.saturating_sub(need.reach_nano);
        let to = end.saturating_sub(need.offset_nano.min(0));
        let points = engine.metric_points(&sources, from, to).await?;
        let series: Vec<RawSeries> = series::expand(points)
            .into_iter()
            .filter(|s| eval::matches(&need.selector, &s.labels))
            .collect();
        total += series.len();
        if total > MAX_SERIES {
            return Err(PromError(
                StatusCode::UNPROCESSABLE_ENTITY,
                "execution",
                format!("the query reads more than {MAX_SERIES} series; add label matchers"),
            ));
        }
        fetched.insert(need.key.clone(), series);
    }
    Ok(fetched)
}

async fn evaluate(
    engine: &QueryEngine,
    expr: &promql_parser::parser::Expr,
    steps: &[i64],
) -> Result<Value, PromError> {
    let needs = eval::needs(expr)?;
    let (first, last) = (steps[0], steps[steps.len() - 1]);
    let fetched = fetch(engine, &needs, first, last).await?;
    Ok(eval::eval(expr, steps, &fetched)?)
}

/// The value of PromQL expression `text` at `at` (Unix ns): one `(labels, value)` per series
/// with a value (a scalar is one series without labels). For alert rules; a query that does
/// not parse, is not supported or cannot run is an error saying why.
pub async fn instant_values(
    engine: &QueryEngine,
    text: &str,
    at: i64,
) -> Result<Vec<(series::Labels, f64)>, String> {
    let expr = promql_parser::parser::parse(text).map_err(|e| e.to_string())?;
    let value = evaluate(engine, &expr, &[at]).await.map_err(|e| e.2)?;
    Ok(match value {
        Value::Scalar(v) => v
            .first()
            .map(|x| (series::Labels::new(), *x))
            .into_iter()
            .collect(),
        Value::Vector(list) => list
            .into_iter()
            .filter_map(|s| s.values.first().copied().flatten().map(|v| (s.labels, v)))
            .collect(),
    })
}

fn seconds(t: i64) -> JsonValue {
    json!(t as f64 / 1e9)
}

fn metric(s: &StepSeries) -> JsonValue {
    json!(s.labels)
}

async fn query(State(engine): State<QueryEngine>, request: Request) -> Response {
    run_query(engine, request)
        .await
        .unwrap_or_else(|e| e.into_response())
}

async fn run_query(engine: QueryEngine, request: Request) -> Result<Response, PromError> {
    let params = Params::of(request).await?;
    let expr = parse_query(&params)?;
    let t = params
        .time("time")?
        .unwrap_or_else(crate::model::time::now_ns);
    let data = match evaluate(&engine, &expr, &[t]).await? {
        Value::Scalar(v) => json!({
            "resultType": "scalar",
            "result": [seconds(t), format_value(v[0])],
        }),
        Value::Vector(series) => json!({
            "resultType": "vector",
            "result": series
                .iter()
                .filter_map(|s| s.values[0].map(|v| json!({
                    "metric": metric(s),
                    "value": [seconds(t), format_value(v)],
                })))
                .collect::<Vec<_>>(),
        }),
    };
    Ok(success(data))
}

async fn query_range(State(engine): State<QueryEngine>, request: Request) -> Response {
    run_query_range(engine, request)
        .await
        .unwrap_or_else(|e| e.into_response())
}

async fn run_query_range(engine: QueryEngine, request: Request) -> Result<Response, PromError> {
    let params = Params::of(request).await?;
    let expr = parse_query(&params)?;
    let start = params
        .time("start")?
        .ok_or_else(|| PromError::bad_data("missing parameter \"start\""))?;
    let end = params
        .time("end")?
        .ok_or_else(|| PromError::bad_data("missing parameter \"end\""))?;
    let step = super::parse_step(
        params
            .get("step")
            .ok_or_else(|| PromError::bad_data("missing parameter \"step\""))?,
    )
    .map_err(PromError::bad_data)?;
    let steps = Window::new(UnixNanos::from_nanos(start), UnixNanos::from_nanos(end))
        .and_then(|w| w.steps(step, MAX_POINTS))
        .map_err(window_error)?;
    let series = match evaluate(&engine, &expr, &steps).await? {
        Value::Scalar(v) => vec![StepSeries {
            labels: Default::default(),
            values: v.into_iter().map(Some).collect(),
        }],
        Value::Vector(series) => series,
    };
    let result: Vec<JsonValue> = series
        .iter()
        .map(|s| {
            json!({
                "metric": metric(s),
                "values": steps
                    .iter()
                    .zip(&s.values)
                    .filter_map(|(t, v)| v.map(|v| json!([seconds(*t), format_value(v)])))
                    .collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(success(json!({"resultType": "matrix", "result": result})))
}

/// The label sets of the series `match[]` selects in the window (every series without one).
async fn matched_series(
    engine: &QueryEngine,
    params: &Params,
    required: bool,
) -> Result<Vec<series::Labels>, PromError> {
    let window = params.window()?;
    let (start, end) = (window.start(), window.end());
    let matchers = params.all("match[]");
    if matchers.is_empty() && required {
        return Err(PromError::bad_data("no match[] parameter provided"));
    }
    let selectors: Vec<promql_parser::parser::VectorSelector> = if matchers.is_empty() {
        Vec::new()
    } else {
        matchers
            .iter()
            .map(
                |m| match check_query_text(m).and_then(|()| promql_parser::parser::parse(m)) {
                    Ok(promql_parser::parser::Expr::VectorSelector(vs)) => Ok(vs),
                    Ok(_) => Err(PromError::bad_data(format!(
                        "invalid parameter \"match[]\": {m:?} is not a series selector"
                    ))),
                    Err(e) => Err(PromError::bad_data(format!(
                        "invalid parameter \"match[]\": {e}"
                    ))),
                },
            )
            .collect::<Result<_, _>>()?
    };
    let catalog = catalog(engine).await?;
    let sources = catalog
        .sources(|n| selectors.is_empty() || selectors.iter().any(|s| eval::name_matches(s, n)));
    let points = engine.metric_points(&sources, start, end).await?;
    let mut out: BTreeSet<series::Labels> = BTreeSet::new();
    for s in series::expand(points) {
        if selectors.is_empty() || selectors.iter().any(|sel| eval::matches(sel, &s.labels)) {
            out.insert(s.labels);
        }
        if out.len() > MAX_SERIES {
            return Err(PromError(
                StatusCode::UNPROCESSABLE_ENTITY,
                "execution",
                format!("more than {MAX_SERIES} series match; add label matchers"),
            ));
        }
    }
    Ok(out.into_iter().collect())
}

async fn labels(State(engine): State<QueryEngine>, request: Request) -> Response {
    async {
        let params = Params::of(request).await?;
        let series = matched_series(&engine, &params, false).await?;
        let names: BTreeSet<&String> = series.iter().flat_map(|l| l.keys()).collect();
        Ok::<_, PromError>(success(json!(names)))
    }
    .await
    .unwrap_or_else(|e| e.into_response())
}

async fn label_values(
    State(engine): State<QueryEngine>,
    Path(name): Path<String>,
    request: Request,
) -> Response {
    async {
        let params = Params::of(request).await?;
        if name == "__name__" && params.all("match[]").is_empty() {
            let catalog = catalog(&engine).await?;
            return Ok(success(json!(catalog.names().collect::<Vec<_>>())));
        }
        let series = matched_series(&engine, &params, false).await?;
        let values: BTreeSet<&String> = series.iter().filter_map(|l| l.get(&name)).collect();
        Ok::<_, PromError>(success(json!(values)))
    }
    .await
    .unwrap_or_else(|e| e.into_response())
}

async fn series_api(State(engine): State<QueryEngine>, request: Request) -> Response {
    async {
        let params = Params::of(request).await?;
        let series = matched_series(&engine, &params, true).await?;
        Ok::<_, PromError>(success(json!(series)))
    }
    .await
    .unwrap_or_else(|e| e.into_response())
}

/// What Grafana asks to learn the server's flavour and features.
async fn buildinfo() -> Response {
    success(json!({
        "version": "2.53.0",
        "revision": concat!("sightline-", env!("CARGO_PKG_VERSION")),
        "branch": "",
        "buildUser": "",
        "buildDate": "",
        "goVersion": "",
    }))
}
