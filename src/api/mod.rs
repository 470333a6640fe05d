//! The HTTP JSON query API under `/api/v1`, a thin layer over [`QueryEngine`].

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::model::TraceId;
use crate::query::{time::parse_time, LogCursor, LogSearch, QueryEngine, QueryError};

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
        .route("/api/v1/traces/{trace_id}", get(trace))
        .route("/api/v1/logs", get(logs))
        .route("/api/v1/correlations/{id}", get(correlation))
        .route("/api/v1/services", get(services))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(engine)
}

async fn trace(
    State(engine): State<QueryEngine>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let trace_id: TraceId = id
        .parse()
        .map_err(|e| bad_request(format!("invalid trace id {id:?}: {e}")))?;
    match engine.trace(trace_id).await? {
        Some(detail) => Ok(Json(detail).into_response()),
        None => Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("trace {trace_id} not found"),
        )),
    }
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
