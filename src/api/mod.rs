//! The HTTP JSON query API under `/api/v1`, a thin layer over [`QueryEngine`].

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

mod annotations;
pub mod compare;
pub mod grpc;
pub mod openapi;
mod postmortems;
mod views;

use crate::evidence::PinError;
use crate::meta::MetaError;
use crate::model::time::{parse_time, UnixNanos, NANOS_PER_HOUR};
use crate::model::window;
use crate::model::TraceId;
use crate::notebook::Notebook;
use crate::query::metrics::{GaugeAgg, MetricQuery};
use crate::query::{
    parse_attribute, LogCursor, LogSearch, QueryEngine, QueryError, StatusFilter, TraceSearch,
};

/// Default number of log records a search returns.
const DEFAULT_LOG_LIMIT: usize = 100;

/// An API error: a status and a message, answered as `{"error": "…"}`.
pub struct ApiError(StatusCode, String);

impl ApiError {
    /// An answer of `status` with `message` (the rooms above this API answer in the same
    /// shape).
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError(status, message.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

impl From<QueryError> for ApiError {
    fn from(e: QueryError) -> Self {
        match e {
            QueryError::BadRequest(m) => ApiError(StatusCode::BAD_REQUEST, m),
            QueryError::TooLarge(m) => ApiError(StatusCode::PAYLOAD_TOO_LARGE, m),
            QueryError::NotFound(m) => ApiError(StatusCode::NOT_FOUND, m),
            other => {
                tracing::error!("query failed: {other}");
                ApiError(StatusCode::INTERNAL_SERVER_ERROR, other.to_string())
            }
        }
    }
}

impl From<MetaError> for ApiError {
    fn from(e: MetaError) -> Self {
        match e {
            MetaError::Invalid(m) => ApiError(StatusCode::BAD_REQUEST, m),
            MetaError::NotFound(m) => ApiError(StatusCode::NOT_FOUND, m),
            MetaError::Conflict(m) => ApiError(StatusCode::CONFLICT, m),
            busy @ MetaError::Busy(_) => ApiError(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("{busy}; try again in a moment"),
            ),
            other => {
                tracing::error!("metadata store failed: {other}");
                ApiError(StatusCode::INTERNAL_SERVER_ERROR, other.to_string())
            }
        }
    }
}

impl From<PinError> for ApiError {
    fn from(e: PinError) -> Self {
        match e {
            PinError::Query(q) => q.into(),
            PinError::Meta(m) => m.into(),
            PinError::NothingToPin(m) => ApiError(StatusCode::NOT_FOUND, m),
            PinError::Write(e) => {
                tracing::error!("pinning failed: {e:#}");
                ApiError(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}"))
            }
        }
    }
}

impl From<crate::postmortem::SuggestError> for ApiError {
    fn from(e: crate::postmortem::SuggestError) -> Self {
        match e {
            crate::postmortem::SuggestError::Meta(m) => m.into(),
            crate::postmortem::SuggestError::Query(q) => q.into(),
        }
    }
}

/// State of the notebook routes (views, post-mortems, annotations).
#[derive(Clone)]
struct NotebookState {
    engine: QueryEngine,
    notebook: Notebook,
}

/// A JSON body, with a malformed one answered as `{"error": …}` 400 like every other error.
struct JsonBody<T>(T);

impl<S, T> axum::extract::FromRequest<S> for JsonBody<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(JsonBody(v)),
            Err(rejection) => Err(ApiError(rejection.status(), rejection.body_text())),
        }
    }
}

fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, message.into())
}

/// The query routes, with their OpenAPI operations: each handler's `#[utoipa::path]` says
/// its path once, for the router and the document alike.
fn query_routes() -> OpenApiRouter<QueryEngine> {
    OpenApiRouter::new()
        .routes(routes!(search_traces))
        .routes(routes!(trace))
        .routes(routes!(logs))
        .routes(routes!(log_histogram))
        .routes(routes!(correlation))
        .routes(routes!(services))
        .routes(routes!(overview))
        .routes(routes!(service_map))
        .routes(routes!(service))
        .routes(routes!(errors))
        .routes(routes!(metric_names))
        .routes(routes!(metric_query))
        .merge(compare::routes())
}

/// The notebook routes (views, post-mortems, annotations), with their OpenAPI operations.
fn notebook_routes() -> OpenApiRouter<NotebookState> {
    views::routes()
        .merge(postmortems::routes())
        .merge(annotations::routes())
}

/// The OpenAPI document of every `/api/v1` operation, from the same route lists the router
/// is built from (made once).
pub fn document() -> &'static utoipa::openapi::OpenApi {
    static DOCUMENT: std::sync::OnceLock<utoipa::openapi::OpenApi> = std::sync::OnceLock::new();
    DOCUMENT.get_or_init(|| {
        let mut doc = openapi::ApiDoc::openapi();
        doc.merge(query_routes().into_openapi());
        doc.merge(notebook_routes().into_openapi());
        doc
    })
}

/// The `/api/v1` routes, `/healthz`, and `doc` (this API's [`document`] with the operations
/// of the rooms above it) at `/api/v1/openapi.json`.
pub fn router(
    engine: QueryEngine,
    notebook: Notebook,
    doc: &'static utoipa::openapi::OpenApi,
) -> Router {
    let notebook_state = NotebookState {
        engine: engine.clone(),
        notebook,
    };
    let (queries, _) = query_routes().split_for_parts();
    let (notebook_api, _) = notebook_routes().split_for_parts();
    queries
        .with_state(engine)
        .merge(notebook_api.with_state(notebook_state))
        .route("/healthz", get(|| async { "ok" }))
        .merge(openapi::router(doc))
}

/// A time given as Unix nanoseconds (a JSON number) or as text (RFC 3339 or a Unix timestamp).
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
enum TimeValue {
    Nanos(i64),
    Text(String),
}

impl TimeValue {
    fn resolve(&self) -> Result<i64, ApiError> {
        match self {
            TimeValue::Nanos(n) => Ok(*n),
            TimeValue::Text(t) => parse_time(t).map_err(bad_request),
        }
    }
}

/// Query string of `GET /api/v1/traces/{id}`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct TraceParams {
    /// Also return the traces that continued the same request (span links, correlation id).
    #[serde(default)]
    stitch: bool,
}

#[utoipa::path(get, path = "/api/v1/traces/{trace_id}", tag = "traces",
    params(("trace_id" = String, Path, description = "32 hex digits"), TraceParams),
    responses((status = 200, description = "The trace: spans, logs, services, times, critical path (with `stitch`, also `linked` traces)", body = Object), (status = 400, description = "Bad input: `{\"error\": \"…\"}`"),
        (status = 404, description = "Unknown trace")))]
async fn trace(
    State(engine): State<QueryEngine>,
    Path(id): Path<String>,
    Query(p): Query<TraceParams>,
) -> Result<Response, ApiError> {
    let trace_id: TraceId = id
        .parse()
        .map_err(|e| bad_request(format!("invalid trace id {id:?}: {e}")))?;
    let not_found = || ApiError(StatusCode::NOT_FOUND, format!("trace {trace_id} not found"));
    if p.stitch {
        let stitched = engine
            .stitched_trace(trace_id)
            .await?
            .ok_or_else(not_found)?;
        return Ok(Json(stitched).into_response());
    }
    let detail = engine.trace(trace_id).await?.ok_or_else(not_found)?;
    Ok(Json(detail).into_response())
}

/// Query string of `GET /api/v1/traces` (trace search).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct TraceSearchParams {
    service: Option<String>,
    operation: Option<String>,
    /// `ok` or `error`.
    status: Option<String>,
    min_duration_ms: Option<f64>,
    max_duration_ms: Option<f64>,
    /// `key=value`.
    attribute: Option<String>,
    correlation_id: Option<String>,
    start: Option<String>,
    end: Option<String>,
    limit: Option<usize>,
}

#[utoipa::path(get, path = "/api/v1/traces", tag = "traces", params(TraceSearchParams),
    responses((status = 200, description = "`{traces[{trace_id, root_service, root_name, start_time_unix_nano, duration_nano, span_count, error_count, services}]}`, newest first", body = Object), (status = 400, description = "Bad input: `{\"error\": \"…\"}`")))]
async fn search_traces(
    State(engine): State<QueryEngine>,
    Query(p): Query<TraceSearchParams>,
) -> Result<Response, ApiError> {
    let time = |t: Option<String>| t.map(|t| parse_time(&t).map_err(bad_request)).transpose();
    let status = StatusFilter::parse(p.status.as_deref().unwrap_or("")).map_err(bad_request)?;
    let attribute = parse_attribute(p.attribute.as_deref().unwrap_or("")).map_err(bad_request)?;
    let ms = |v: Option<f64>| v.map(|v| (v * 1e6) as i64);
    let search = TraceSearch {
        service: p.service,
        operation: p.operation,
        status,
        min_duration_nano: ms(p.min_duration_ms),
        max_duration_nano: ms(p.max_duration_ms),
        attribute,
        trace_id: None,
        correlation_id: p.correlation_id,
        start: time(p.start)?,
        end: time(p.end)?,
        limit: p.limit.unwrap_or(20),
    };
    Ok(Json(json!({ "traces": engine.search_traces(&search).await? })).into_response())
}

/// Query string of `GET /api/v1/logs`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct LogParams {
    q: Option<String>,
    start: Option<String>,
    end: Option<String>,
    limit: Option<usize>,
    /// `next_cursor` of the previous page.
    before: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/logs", tag = "logs", params(LogParams),
    responses((status = 200, description = "`{logs[], truncated, next_cursor, highlight[]}`, newest first", body = Object), (status = 400, description = "Bad input: `{\"error\": \"…\"}`")))]
async fn logs(
    State(engine): State<QueryEngine>,
    Query(p): Query<LogParams>,
) -> Result<Response, ApiError> {
    let time = |t: Option<String>| t.map(|t| parse_time(&t).map_err(bad_request)).transpose();
    let search = LogSearch {
        query: p.q.unwrap_or_default(),
        start: time(p.start)?,
        end: time(p.end)?,
        limit: p.limit.unwrap_or(DEFAULT_LOG_LIMIT),
        before: p.before.as_deref().map(LogCursor::parse).transpose()?,
    };
    Ok(Json(engine.search_logs(&search).await?).into_response())
}

/// Query string of `GET /api/v1/logs/histogram`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct HistogramParams {
    q: Option<String>,
    start: Option<String>,
    end: Option<String>,
    /// About how many buckets (1–1000; default 60): the width is the smallest round one
    /// (1 s, 10 s, 1 min, 5 min, …) that covers the window in that many.
    buckets: Option<usize>,
}

#[utoipa::path(get, path = "/api/v1/logs/histogram", tag = "logs", params(HistogramParams),
    responses((status = 200, description = "`{start_unix_nano, bucket_nano, counts[], total, levels}`: records matching `q` per bucket; buckets start on whole multiples of their width; `levels` splits the counts by level (`[{level, counts[]}]`, from the severity text), null for a one-word query (counted from the index, which knows no level)", body = Object), (status = 400, description = "Bad input: `{\"error\": \"…\"}`")))]
async fn log_histogram(
    State(engine): State<QueryEngine>,
    Query(p): Query<HistogramParams>,
) -> Result<Response, ApiError> {
    let (start, end, _) = Window {
        start: p.start,
        end: p.end,
    }
    .resolve()?;
    let histogram = engine
        .log_histogram(
            p.q.as_deref().unwrap_or_default(),
            start,
            end,
            p.buckets.unwrap_or(60),
        )
        .await?;
    Ok(Json(histogram).into_response())
}

#[utoipa::path(get, path = "/api/v1/correlations/{id}", tag = "logs",
    params(("id" = String, Path, description = "A business correlation id")),
    responses((status = 200, description = "`{correlation_id, traces[], logs[]}` in time order", body = Object)))]
async fn correlation(
    State(engine): State<QueryEngine>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    Ok(Json(engine.correlation(&id).await?).into_response())
}

#[utoipa::path(get, path = "/api/v1/services", tag = "services",
    responses((status = 200, description = "`{services[{name, last_seen_unix_nano, instances[]}]}`", body = Object)))]
async fn services(State(engine): State<QueryEngine>) -> Response {
    Json(json!({ "services": engine.services() })).into_response()
}

/// A time window in the query string; defaults to the last hour.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct Window {
    start: Option<String>,
    end: Option<String>,
}

impl Window {
    /// `(start, end, now)`: the bounds read by the one time parser, the last hour by default;
    /// an empty or reversed window is refused.
    fn resolve(&self) -> Result<(i64, i64, i64), ApiError> {
        let now = UnixNanos::now();
        let w = window::Window::from_params(
            self.start.as_deref(),
            self.end.as_deref(),
            NANOS_PER_HOUR,
            now,
        )
        .map_err(|e| bad_request(e.to_string()))?;
        if w.is_empty() {
            return Err(bad_request("start must be before end"));
        }
        Ok((w.start(), w.end(), now.nanos()))
    }
}

#[utoipa::path(get, path = "/api/v1/overview", tag = "services", params(Window),
    responses((status = 200, description = "RED per service with instance health and per-minute series", body = Object), (status = 400, description = "Bad input: `{\"error\": \"…\"}`")))]
async fn overview(
    State(engine): State<QueryEngine>,
    Query(w): Query<Window>,
) -> Result<Response, ApiError> {
    let (start, end, now) = w.resolve()?;
    Ok(Json(json!({ "services": engine.overview(start, end, now).await? })).into_response())
}

#[utoipa::path(get, path = "/api/v1/service-map", tag = "services", params(Window),
    responses((status = 200, description = "`{nodes[], edges[{caller, callee, kind, calls, errors, calls_per_second, error_rate, p95_nano}]}`", body = Object), (status = 400, description = "Bad input: `{\"error\": \"…\"}`")))]
async fn service_map(
    State(engine): State<QueryEngine>,
    Query(w): Query<Window>,
) -> Result<Response, ApiError> {
    let (start, end, now) = w.resolve()?;
    Ok(Json(engine.service_map(start, end, now).await?).into_response())
}

#[utoipa::path(get, path = "/api/v1/services/{name}", tag = "services",
    params(("name" = String, Path, description = "service.name"), Window),
    responses((status = 200, description = "Overview row, RED per operation/instance/version, errors, metric names", body = Object), (status = 400, description = "Bad input: `{\"error\": \"…\"}`"),
        (status = 404, description = "Unknown service")))]
async fn service(
    State(engine): State<QueryEngine>,
    Path(name): Path<String>,
    Query(w): Query<Window>,
) -> Result<Response, ApiError> {
    let (start, end, now) = w.resolve()?;
    match engine.service(&name, start, end, now).await? {
        Some(detail) => Ok(Json(detail).into_response()),
        None => Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("service {name:?} not found"),
        )),
    }
}

#[utoipa::path(get, path = "/api/v1/errors", tag = "services", params(Window),
    responses((status = 200, description = "Errors per service and minute, bursts, error groups", body = Object), (status = 400, description = "Bad input: `{\"error\": \"…\"}`")))]
async fn errors(
    State(engine): State<QueryEngine>,
    Query(w): Query<Window>,
) -> Result<Response, ApiError> {
    let (start, end, _) = w.resolve()?;
    Ok(Json(engine.errors(start, end).await?).into_response())
}

/// Query string of `GET /api/v1/metrics`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct MetricNamesParams {
    service: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/metrics", tag = "metrics", params(MetricNamesParams),
    responses((status = 200, description = "`{metrics[{name, kind, unit, monotonic}]}`", body = Object)))]
async fn metric_names(
    State(engine): State<QueryEngine>,
    Query(p): Query<MetricNamesParams>,
) -> Result<Response, ApiError> {
    let names = engine
        .metric_names_of(p.service.as_deref().unwrap_or(""))
        .await?;
    Ok(Json(json!({ "metrics": names })).into_response())
}

/// Query string of `GET /api/v1/metrics/query`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct MetricQueryParams {
    /// The metric's name (required).
    #[param(required = true)]
    name: Option<String>,
    start: Option<String>,
    end: Option<String>,
    /// Step in seconds (default: the window / 60).
    step: Option<u64>,
    service: Option<String>,
    instance: Option<String>,
    /// Comma-separated: `service`, `instance`, `version` or attribute keys.
    group_by: Option<String>,
    /// Gauges: `avg` (default), `min`, `max`, `last`.
    agg: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/metrics/query", tag = "metrics", params(MetricQueryParams),
    responses((status = 200, description = "`{step, series[{labels, value, unit, points[[unix_nano, value]]}]}`", body = Object), (status = 400, description = "Bad input: `{\"error\": \"…\"}`"),
        (status = 404, description = "Unknown metric")))]
async fn metric_query(
    State(engine): State<QueryEngine>,
    Query(p): Query<MetricQueryParams>,
) -> Result<Response, ApiError> {
    let (start, end, _) = Window {
        start: p.start,
        end: p.end,
    }
    .resolve()?;
    let gauge_agg = GaugeAgg::parse(p.agg.as_deref().unwrap_or("")).map_err(bad_request)?;
    let step = p
        .step
        .map(|s| {
            i64::try_from(s)
                .ok()
                .and_then(|s| s.checked_mul(crate::model::time::NANOS_PER_SECOND))
                .ok_or_else(|| bad_request(format!("step {s} s is too large")))
        })
        .transpose()?;
    let step = MetricQuery::step_for(start, end, step);
    let q = MetricQuery {
        name: p
            .name
            .filter(|n| !n.is_empty())
            .ok_or_else(|| bad_request("name is required: the metric to query"))?,
        start,
        end,
        step,
        service: p.service,
        instance: p.instance,
        group_by: p
            .group_by
            .map(|g| {
                g.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default(),
        gauge_agg,
    };
    let series = engine.metric_query(&q).await?;
    if series.is_empty()
        && !engine
            .metric_names_of("")
            .await?
            .iter()
            .any(|m| m.name == q.name)
    {
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("metric {:?} not found", q.name),
        ));
    }
    Ok(Json(json!({ "series": series, "step": step })).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn answer(e: ApiError) -> (StatusCode, serde_json::Value) {
        let response = e.into_response();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .expect("body");
        (status, serde_json::from_slice(&body).expect("JSON"))
    }

    #[tokio::test]
    async fn every_layer_error_maps_to_its_status_with_the_message_as_json() {
        let cases: Vec<(ApiError, StatusCode)> = vec![
            (
                QueryError::BadRequest("bad q".into()).into(),
                StatusCode::BAD_REQUEST,
            ),
            (
                QueryError::TooLarge("too many".into()).into(),
                StatusCode::PAYLOAD_TOO_LARGE,
            ),
            (
                MetaError::Invalid("bad name".into()).into(),
                StatusCode::BAD_REQUEST,
            ),
            (
                MetaError::NotFound("no view 7".into()).into(),
                StatusCode::NOT_FOUND,
            ),
            (
                MetaError::Conflict("taken".into()).into(),
                StatusCode::CONFLICT,
            ),
            (
                PinError::NothingToPin("gone".into()).into(),
                StatusCode::NOT_FOUND,
            ),
        ];
        for (error, status) in cases {
            let message = error.1.clone();
            let (got, body) = answer(error).await;
            assert_eq!(got, status, "{message}");
            assert_eq!(body["error"], message.as_str());
        }
    }

    #[test]
    fn a_time_is_nanoseconds_or_any_text_form() {
        assert_eq!(TimeValue::Nanos(5).resolve().ok(), Some(5));
        assert_eq!(
            TimeValue::Text("2026-11-23T10:15:00Z".into())
                .resolve()
                .ok(),
            Some(1_795_428_900_000_000_000)
        );
        assert!(TimeValue::Text("9999-01-01T00:00:00Z".into())
            .resolve()
            .is_err());
    }
}
