//! `/api/v1/views`: saved views, their evidence pins.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiError, JsonBody, NotebookState, TimeValue};
use crate::evidence::PinProgress;
use crate::meta::views::{NewView, SavedView, ViewEdit, ViewFilter};
use crate::notebook::Notebook;

/// The routes, with their OpenAPI operations.
pub(super) fn routes() -> OpenApiRouter<NotebookState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(one, edit, remove))
        .routes(routes!(pin, unpin))
}

/// A view as the API shows it: the stored view, where it opens, and its pin job's progress.
#[derive(Serialize)]
pub(super) struct ViewOut {
    #[serde(flatten)]
    view: SavedView,
    /// The UI address that opens it (from its evidence when pinned).
    open_url: String,
    /// While its rows are being pinned (or after that failed): `{state, since|at, …}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pinning: Option<PinProgress>,
}

impl ViewOut {
    /// `view` with its pin job's progress from `notebook`.
    fn of(view: SavedView, notebook: &Notebook) -> ViewOut {
        ViewOut {
            open_url: format!("/views/{}/open", view.id),
            pinning: notebook.pin_progress(view.id),
            view,
        }
    }

    /// 202 while the pin job still runs, else `done`.
    fn status(&self, done: StatusCode) -> StatusCode {
        match &self.pinning {
            Some(p) if p.is_running() => StatusCode::ACCEPTED,
            _ => done,
        }
    }
}

/// Body of `POST /api/v1/views`.
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = NewSavedView)]
struct CreateBody {
    name: String,
    #[serde(default)]
    note: String,
    #[serde(default)]
    tags: Vec<String>,
    url: String,
    start: Option<TimeValue>,
    end: Option<TimeValue>,
    #[serde(default)]
    relative: bool,
    /// Copy the rows behind the view so it survives retention.
    #[serde(default)]
    pin: bool,
}

#[utoipa::path(post, path = "/api/v1/views", tag = "views", request_body = CreateBody,
    responses((status = 201, description = "The view", body = Object), (status = 400, description = "Bad input: `{\"error\": \"…\"}`"), (status = 409, description = "Name taken"), (status = 413, description = "Too much to pin")))]
async fn create(
    State(s): State<NotebookState>,
    JsonBody(body): JsonBody<CreateBody>,
) -> Result<Response, ApiError> {
    let new = NewView {
        name: body.name,
        note: body.note,
        tags: body.tags,
        url: body.url,
        start: body.start.as_ref().map(TimeValue::resolve).transpose()?,
        end: body.end.as_ref().map(TimeValue::resolve).transpose()?,
        relative: body.relative,
    };
    let view = s.notebook.save_view(&s.engine, new, body.pin).await?;
    let out = ViewOut::of(view, &s.notebook);
    Ok((out.status(StatusCode::CREATED), Json(out)).into_response())
}

#[utoipa::path(get, path = "/api/v1/views", tag = "views",
    params(("q" = Option<String>, Query, description = "Text in name or note"), ("tag" = Option<String>, Query), ("kind" = Option<String>, Query, description = "Page kind")),
    responses((status = 200, description = "`{views[]}`, newest first", body = Object)))]
async fn list(
    State(s): State<NotebookState>,
    Query(filter): Query<ViewFilter>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let views: Vec<ViewOut> = s
        .notebook
        .views(filter)
        .await?
        .into_iter()
        .map(|v| ViewOut::of(v, &s.notebook))
        .collect();
    Ok(Json(serde_json::json!({ "views": views })))
}

#[utoipa::path(get, path = "/api/v1/views/{id}", tag = "views", params(("id" = i64, Path, description = "Numeric id")),
    responses((status = 200, description = "The view", body = Object), (status = 404, description = "Unknown view")))]
async fn one(
    State(s): State<NotebookState>,
    Path(id): Path<i64>,
) -> Result<Json<ViewOut>, ApiError> {
    Ok(Json(ViewOut::of(s.notebook.view(id).await?, &s.notebook)))
}

#[utoipa::path(put, path = "/api/v1/views/{id}", tag = "views", params(("id" = i64, Path, description = "Numeric id")),
    request_body(content = Object, description = "`{name?, note?, tags?[]}`"),
    responses((status = 200, description = "The edited view", body = Object), (status = 400, description = "Bad input: `{\"error\": \"…\"}`"), (status = 404, description = "Unknown view")))]
async fn edit(
    State(s): State<NotebookState>,
    Path(id): Path<i64>,
    JsonBody(edit): JsonBody<ViewEdit>,
) -> Result<Json<ViewOut>, ApiError> {
    Ok(Json(ViewOut::of(
        s.notebook.edit_view(id, edit).await?,
        &s.notebook,
    )))
}

#[utoipa::path(delete, path = "/api/v1/views/{id}", tag = "views", params(("id" = i64, Path, description = "Numeric id")),
    responses((status = 204, description = "Deleted, with its evidence"), (status = 404, description = "Unknown view")))]
async fn remove(
    State(s): State<NotebookState>,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    s.notebook.delete_view(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/views/{id}/pin", tag = "views", params(("id" = i64, Path, description = "Numeric id")),
    responses((status = 200, description = "The view, pinned (again)", body = Object), (status = 202, description = "Still pinning after 10 s: the view with `pinning` progress; poll it"), (status = 409, description = "Being pinned already"), (status = 413, description = "Too much to pin")))]
async fn pin(State(s): State<NotebookState>, Path(id): Path<i64>) -> Result<Response, ApiError> {
    let out = ViewOut::of(s.notebook.pin_view(&s.engine, id).await?, &s.notebook);
    Ok((out.status(StatusCode::OK), Json(out)).into_response())
}

#[utoipa::path(delete, path = "/api/v1/views/{id}/pin", tag = "views", params(("id" = i64, Path, description = "Numeric id")),
    responses((status = 200, description = "The view, its evidence dropped", body = Object)))]
async fn unpin(
    State(s): State<NotebookState>,
    Path(id): Path<i64>,
) -> Result<Json<ViewOut>, ApiError> {
    Ok(Json(ViewOut::of(
        s.notebook.unpin_view(id).await?,
        &s.notebook,
    )))
}
