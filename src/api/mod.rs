//! The HTTP JSON query API under `/api/v1`, a thin layer over [`QueryEngine`].

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::model::TraceId;
use crate::query::{
    time::parse_time, LogCursor, LogSearch, QueryEngine, QueryError, StatusFilter, TraceSearch,
};

/// Default number of log records a search returns.
const DEFAULT_LOG_LIMIT: usize = 100;

/// An API error: a status and a message, answered as `{"error": "…"}`.
pub struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

impl From<QueryError> for ApiError {
    fn from(e: QueryError) -> Self {
        match e {
            QueryError::BadRequest(m) => ApiError(StatusCode::BAD_REQUEST, m),
            other => {
                tracing::error!("query failed: {other}");
                ApiError(StatusCode::INTERNAL_SERVER_ERROR, other.to_string())
            }
        }
    }
}

fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, message.into())
}

/// The `/api/v1` routes and `/healthz`.
pub fn router(engine: QueryEngine) -> Router {
    Router::new()
        .route("/api/v1/traces", get(search_traces))
        .route("/api/v1/traces/{trace_id}", get(trace))
        .route("/api/v1/logs", get(logs))
        .route("/api/v1/correlations/{id}", get(correlation))
        .route("/api/v1/services", get(services))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(engine)
}

/// Query string of `GET /api/v1/traces/{id}`.
#[derive(Debug, Deserialize)]
struct TraceParams {
    /// Also return the traces that continued the same request (span links, correlation id).
    #[serde(default)]
    stitch: bool,
}

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
#[derive(Debug, Deserialize)]
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

async fn search_traces(
    State(engine): State<QueryEngine>,
    Query(p): Query<TraceSearchParams>,
) -> Result<Response, ApiError> {
    let time = |t: Option<String>| t.map(|t| parse_time(&t).map_err(bad_request)).transpose();
    let status = match p.status.as_deref() {
        None | Some("") => None,
        Some("ok") => Some(StatusFilter::Ok),
        Some("error") => Some(StatusFilter::Error),
        Some(other) => {
            return Err(bad_request(format!(
                "status must be ok or error, not {other:?}"
            )))
        }
    };
    let attribute = match p.attribute {
        Some(a) => Some(
            a.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| bad_request("attribute must be key=value"))?,
        ),
        None => None,
    };
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
#[derive(Debug, Deserialize)]
struct LogParams {
    q: Option<String>,
    start: Option<String>,
    end: Option<String>,
    limit: Option<usize>,
    /// `next_cursor` of the previous page.
    before: Option<String>,
}

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

async fn correlation(
    State(engine): State<QueryEngine>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    Ok(Json(engine.correlation(&id).await?).into_response())
}

async fn services(State(engine): State<QueryEngine>) -> Response {
    Json(json!({ "services": engine.services() })).into_response()
}
