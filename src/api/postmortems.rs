//! `/api/v1/postmortems`: post-mortems, their views, action items, timeline and suggestions.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiError, JsonBody, NotebookState, TimeValue};
use crate::meta::postmortems::{ActionItem, PostMortem, PostMortemEdit, Status, ViewChange};
use crate::postmortem;

/// The routes.
pub(super) fn routes() -> OpenApiRouter<NotebookState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(one, edit, remove))
        .routes(routes!(add_view))
        .routes(routes!(remove_view, move_view))
        .routes(routes!(add_entry))
        .routes(routes!(remove_entry))
        .routes(routes!(suggestions))
        .routes(routes!(accept_all))
        .routes(routes!(settle))
}

/// The editable fields as JSON; times as Unix ns or RFC 3339, `null` to clear.
#[derive(Deserialize, Default, utoipa::ToSchema)]
#[schema(as = PostMortemFields)]
struct EditBody {
    version: Option<i64>,
    title: Option<String>,
    #[schema(value_type = Option<String>)]
    status: Option<Status>,
    #[serde(default, deserialize_with = "serde_with_null::deserialize")]
    #[schema(value_type = Option<TimeValue>)]
    incident_start: Option<Option<TimeValue>>,
    #[serde(default, deserialize_with = "serde_with_null::deserialize")]
    #[schema(value_type = Option<TimeValue>)]
    incident_end: Option<Option<TimeValue>>,
    impact: Option<String>,
    summary: Option<String>,
    root_cause: Option<String>,
    #[schema(value_type = Option<Vec<Object>>)]
    action_items: Option<Vec<ActionItem>>,
    /// Only on create: saved views to add, in order.
    #[serde(default)]
    views: Vec<ViewRef>,
}

/// A saved view to add, with its note in this post-mortem.
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = PostMortemViewRef)]
struct ViewRef {
    view_id: i64,
    #[serde(default)]
    note: String,
}

/// Distinguishes an absent field (keep) from an explicit `null` (clear).
mod serde_with_null {
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
    where
        D: Deserializer<'de>,
        T: Deserialize<'de>,
    {
        Option::<T>::deserialize(d).map(Some)
    }
}

fn to_edit(body: &EditBody) -> Result<PostMortemEdit, ApiError> {
    let time = |t: &Option<Option<TimeValue>>| -> Result<Option<Option<i64>>, ApiError> {
        match t {
            None => Ok(None),
            Some(None) => Ok(Some(None)),
            Some(Some(v)) => Ok(Some(Some(v.resolve()?))),
        }
    };
    Ok(PostMortemEdit {
        version: body.version,
        title: body.title.clone(),
        status: body.status,
        incident_start: time(&body.incident_start)?,
        incident_end: time(&body.incident_end)?,
        impact: body.impact.clone(),
        summary: body.summary.clone(),
        root_cause: body.root_cause.clone(),
        action_items: body.action_items.clone(),
    })
}

#[utoipa::path(post, path = "/api/v1/postmortems", tag = "postmortems", request_body = EditBody,
    responses((status = 201, description = "The post-mortem", body = Object), (status = 400, description = "Bad input: `{\"error\": \"…\"}`")))]
async fn create(
    State(s): State<NotebookState>,
    JsonBody(body): JsonBody<EditBody>,
) -> Result<Response, ApiError> {
    let mut pm = s.notebook.create_postmortem(to_edit(&body)?).await?;
    for v in body.views {
        pm = s
            .notebook
            .add_postmortem_view(pm.id, v.view_id, v.note)
            .await?;
    }
    Ok((StatusCode::CREATED, Json(pm)).into_response())
}

#[utoipa::path(get, path = "/api/v1/postmortems", tag = "postmortems",
    responses((status = 200, description = "`{postmortems[]}`", body = Object)))]
async fn list(State(s): State<NotebookState>) -> Result<Json<serde_json::Value>, ApiError> {
    let all = s.notebook.postmortems().await?;
    Ok(Json(serde_json::json!({ "postmortems": all })))
}

#[utoipa::path(get, path = "/api/v1/postmortems/{id}", tag = "postmortems", params(("id" = i64, Path, description = "Numeric id")),
    responses((status = 200, description = "The post-mortem", body = Object), (status = 404, description = "Unknown post-mortem")))]
async fn one(
    State(s): State<NotebookState>,
    Path(id): Path<i64>,
) -> Result<Json<PostMortem>, ApiError> {
    Ok(Json(s.notebook.postmortem(id).await?))
}

#[utoipa::path(put, path = "/api/v1/postmortems/{id}", tag = "postmortems", params(("id" = i64, Path, description = "Numeric id")), request_body = EditBody,
    responses((status = 200, description = "The edited post-mortem", body = Object), (status = 400, description = "Bad input: `{\"error\": \"…\"}`"), (status = 409, description = "Changed since `version`")))]
async fn edit(
    State(s): State<NotebookState>,
    Path(id): Path<i64>,
    JsonBody(body): JsonBody<EditBody>,
) -> Result<Json<PostMortem>, ApiError> {
    Ok(Json(s.notebook.edit_postmortem(id, to_edit(&body)?).await?))
}

#[utoipa::path(delete, path = "/api/v1/postmortems/{id}", tag = "postmortems", params(("id" = i64, Path, description = "Numeric id")),
    responses((status = 204, description = "Deleted")))]
async fn remove(
    State(s): State<NotebookState>,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    s.notebook.delete_postmortem(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/postmortems/{id}/views", tag = "postmortems", params(("id" = i64, Path, description = "Numeric id")), request_body = ViewRef,
    responses((status = 200, description = "The post-mortem", body = Object), (status = 400, description = "Bad input: `{\"error\": \"…\"}`")))]
async fn add_view(
    State(s): State<NotebookState>,
    Path(id): Path<i64>,
    JsonBody(v): JsonBody<ViewRef>,
) -> Result<Json<PostMortem>, ApiError> {
    Ok(Json(
        s.notebook
            .add_postmortem_view(id, v.view_id, v.note)
            .await?,
    ))
}

#[utoipa::path(delete, path = "/api/v1/postmortems/{id}/views/{entry}", tag = "postmortems",
    params(("id" = i64, Path, description = "Numeric id"), ("entry" = i64, Path, description = "The view entry's id")),
    responses((status = 200, description = "The post-mortem", body = Object)))]
async fn remove_view(
    State(s): State<NotebookState>,
    Path((id, entry)): Path<(i64, i64)>,
) -> Result<Json<PostMortem>, ApiError> {
    Ok(Json(
        s.notebook
            .change_postmortem_view(id, entry, ViewChange::Remove)
            .await?,
    ))
}

/// Body of `POST /api/v1/postmortems/{id}/views/{entry}`: `{"move": "up" | "down"}`.
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = PostMortemViewMove)]
struct MoveBody {
    #[serde(rename = "move")]
    #[schema(value_type = String)]
    direction: ViewChange,
}

#[utoipa::path(post, path = "/api/v1/postmortems/{id}/views/{entry}", tag = "postmortems",
    params(("id" = i64, Path, description = "Numeric id"), ("entry" = i64, Path, description = "The view entry's id")), request_body = MoveBody,
    responses((status = 200, description = "The post-mortem", body = Object), (status = 400, description = "Bad input: `{\"error\": \"…\"}`")))]
async fn move_view(
    State(s): State<NotebookState>,
    Path((id, entry)): Path<(i64, i64)>,
    JsonBody(body): JsonBody<MoveBody>,
) -> Result<Json<PostMortem>, ApiError> {
    Ok(Json(
        s.notebook
            .change_postmortem_view(id, entry, body.direction)
            .await?,
    ))
}

/// Body of `POST /api/v1/postmortems/{id}/timeline`.
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = PostMortemTimelineEntry)]
struct EntryBody {
    time: TimeValue,
    text: String,
}

#[utoipa::path(post, path = "/api/v1/postmortems/{id}/timeline", tag = "postmortems", params(("id" = i64, Path, description = "Numeric id")), request_body = EntryBody,
    responses((status = 201, description = "The post-mortem", body = Object), (status = 400, description = "Bad input: `{\"error\": \"…\"}`")))]
async fn add_entry(
    State(s): State<NotebookState>,
    Path(id): Path<i64>,
    JsonBody(body): JsonBody<EntryBody>,
) -> Result<Response, ApiError> {
    let pm = s
        .notebook
        .add_timeline_entry(id, body.time.resolve()?, body.text, "manual".into(), None)
        .await?;
    Ok((StatusCode::CREATED, Json(pm)).into_response())
}

#[utoipa::path(delete, path = "/api/v1/postmortems/{id}/timeline/{entry}", tag = "postmortems",
    params(("id" = i64, Path, description = "Numeric id"), ("entry" = i64, Path, description = "The timeline entry's id")),
    responses((status = 200, description = "The post-mortem", body = Object)))]
async fn remove_entry(
    State(s): State<NotebookState>,
    Path((id, entry)): Path<(i64, i64)>,
) -> Result<Json<PostMortem>, ApiError> {
    Ok(Json(s.notebook.delete_timeline_entry(id, entry).await?))
}

#[utoipa::path(get, path = "/api/v1/postmortems/{id}/suggestions", tag = "postmortems", params(("id" = i64, Path, description = "Numeric id")),
    responses((status = 200, description = "`{suggestions[{key, kind, time, service, version, text}]}` not yet settled", body = Object)))]
async fn suggestions(
    State(s): State<NotebookState>,
    Path(id): Path<i64>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let pm = s.notebook.postmortem(id).await?;
    let pending = postmortem::pending_suggestions(&s.notebook, &s.engine, &pm).await?;
    Ok(Json(serde_json::json!({ "suggestions": pending })))
}

#[utoipa::path(post, path = "/api/v1/postmortems/{id}/suggestions/accept-all", tag = "postmortems",
    params(("id" = i64, Path, description = "Numeric id")),
    responses((status = 200, description = "`{accepted, postmortem}`: every pending suggestion added to the timeline", body = Object), (status = 404, description = "Unknown post-mortem")))]
async fn accept_all(
    State(s): State<NotebookState>,
    Path(id): Path<i64>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let (pm, accepted) = postmortem::accept_all_suggestions(&s.notebook, &s.engine, id).await?;
    Ok(Json(
        serde_json::json!({ "accepted": accepted, "postmortem": pm }),
    ))
}

#[utoipa::path(post, path = "/api/v1/postmortems/{id}/suggestions/{key}/{action}", tag = "postmortems",
    params(("id" = i64, Path, description = "Numeric id"), ("key" = String, Path, description = "Suggestion key"), ("action" = String, Path, description = "`accept` or `dismiss`")),
    responses((status = 200, description = "The post-mortem", body = Object), (status = 400, description = "Bad input: `{\"error\": \"…\"}`")))]
async fn settle(
    State(s): State<NotebookState>,
    Path((id, key, action)): Path<(i64, String, String)>,
) -> Result<Response, ApiError> {
    match action.as_str() {
        "accept" => Ok(Json(
            postmortem::accept_suggestion(&s.notebook, &s.engine, id, &key).await?,
        )
        .into_response()),
        "dismiss" => {
            s.notebook.dismiss_suggestion(id, key).await?;
            Ok(Json(s.notebook.postmortem(id).await?).into_response())
        }
        other => Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("unknown action {other:?}: use accept or dismiss"),
        )),
    }
}
