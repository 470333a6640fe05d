//! `/api/v1/annotations`: timestamped notes (deploys, changes) shown on charts and timelines.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{bad_request, ApiError, JsonBody, NotebookState, TimeValue};
use crate::model::time::{UnixNanos, NANOS_PER_HOUR};
use crate::model::window::Window;

/// The routes.
pub(super) fn routes() -> OpenApiRouter<NotebookState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(remove))
}

/// Body of `POST /api/v1/annotations`; `time` defaults to now, no `service` means global.
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = NewAnnotation)]
struct CreateBody {
    time: Option<TimeValue>,
    service: Option<String>,
    text: String,
}

#[utoipa::path(post, path = "/api/v1/annotations", tag = "annotations", request_body = CreateBody,
    responses((status = 201, description = "The annotation", body = Object), (status = 400, description = "Bad input: `{\"error\": \"…\"}`")))]
async fn create(
    State(s): State<NotebookState>,
    JsonBody(body): JsonBody<CreateBody>,
) -> Result<Response, ApiError> {
    let time = match &body.time {
        Some(t) => t.resolve()?,
        None => crate::model::time::now_ns(),
    };
    let a = s
        .notebook
        .create_annotation(time, body.service, body.text)
        .await?;
    Ok((StatusCode::CREATED, Json(a)).into_response())
}

/// Query of `GET /api/v1/annotations`: a window (default: the last 7 days) and a service.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ListParams {
    start: Option<String>,
    end: Option<String>,
    service: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/annotations", tag = "annotations", params(ListParams),
    responses((status = 200, description = "`{annotations[]}` (default: the last 7 days)", body = Object), (status = 400, description = "Bad input: `{\"error\": \"…\"}`")))]
async fn list(
    State(s): State<NotebookState>,
    Query(p): Query<ListParams>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let window = Window::from_params(
        p.start.as_deref(),
        p.end.as_deref(),
        7 * 24 * NANOS_PER_HOUR,
        UnixNanos::now(),
    )
    .map_err(|e| bad_request(e.to_string()))?;
    let (start, end) = (window.start(), window.end());
    let service = p.service.filter(|s| !s.is_empty());
    let all = s.notebook.annotations(start, end, service).await?;
    Ok(Json(serde_json::json!({ "annotations": all })))
}

#[utoipa::path(delete, path = "/api/v1/annotations/{id}", tag = "annotations", params(("id" = i64, Path, description = "Numeric id")),
    responses((status = 204, description = "Deleted")))]
async fn remove(
    State(s): State<NotebookState>,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    s.notebook.delete_annotation(id).await?;
    Ok(StatusCode::NO_CONTENT)
}
