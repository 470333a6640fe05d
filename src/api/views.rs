//! `/api/v1/views`: saved views, their evidence pins.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::{ApiError, JsonBody, NotebookState, TimeValue};
use crate::meta::views::{NewView, SavedView, ViewEdit, ViewFilter};

/// The routes.
pub(super) fn router(state: NotebookState) -> Router {
    Router::new()
        .route("/api/v1/views", get(list).post(create))
        .route("/api/v1/views/{id}", get(one).put(edit).delete(remove))
        .route("/api/v1/views/{id}/pin", post(pin).delete(unpin))
        .with_state(state)
}

/// A view as the API shows it: the stored view plus where it opens.
#[derive(Serialize)]
pub(super) struct ViewOut {
    #[serde(flatten)]
    view: SavedView,
    /// The UI address that opens it (from its evidence when pinned).
    open_url: String,
}

impl From<SavedView> for ViewOut {
    fn from(view: SavedView) -> Self {
        ViewOut {
            open_url: format!("/views/{}/open", view.id),
            view,
        }
    }
}

/// Body of `POST /api/v1/views`.
#[derive(Deserialize)]
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
    Ok((StatusCode::CREATED, Json(ViewOut::from(view))).into_response())
}

async fn list(
    State(s): State<NotebookState>,
    Query(filter): Query<ViewFilter>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let views: Vec<ViewOut> = s
        .notebook
        .meta
        .views(filter)
        .await?
        .into_iter()
        .map(ViewOut::from)
        .collect();
    Ok(Json(serde_json::json!({ "views": views })))
}

async fn one(
    State(s): State<NotebookState>,
    Path(id): Path<i64>,
) -> Result<Json<ViewOut>, ApiError> {
    Ok(Json(s.notebook.meta.view(id).await?.into()))
}

async fn edit(
    State(s): State<NotebookState>,
    Path(id): Path<i64>,
    JsonBody(edit): JsonBody<ViewEdit>,
) -> Result<Json<ViewOut>, ApiError> {
    Ok(Json(s.notebook.meta.edit_view(id, edit).await?.into()))
}

async fn remove(
    State(s): State<NotebookState>,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    s.notebook.delete_view(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn pin(
    State(s): State<NotebookState>,
    Path(id): Path<i64>,
) -> Result<Json<ViewOut>, ApiError> {
    let view = s.notebook.meta.view(id).await?;
    Ok(Json(
        s.notebook
            .pins
            .pin(&s.notebook.meta, &s.engine, &view)
            .await?
            .into(),
    ))
}

async fn unpin(
    State(s): State<NotebookState>,
    Path(id): Path<i64>,
) -> Result<Json<ViewOut>, ApiError> {
    Ok(Json(s.notebook.unpin_view(id).await?.into()))
}
