//! `/postmortems`: the list, and one post-mortem as a document — its views rendered inline,
//! its timeline with suggestions to accept or dismiss, the editor, and the export.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

use super::forms::{meta_error, see_other, FormFields, PageToken};
use super::postmortem_export;
use super::views_page::ViewRow;
use super::{format, message, render, view_render, SaveForm, WebState};
use crate::meta::postmortems::{
    ActionItem, PostMortem, PostMortemEdit, PostMortemSummary, Status, ViewChange,
};
use crate::meta::MetaError;
use crate::model::time::parse_time;
use crate::postmortem::{self, Suggestion};

/// The routes.
pub fn router(state: WebState) -> Router {
    Router::new()
        .route("/postmortems", get(list).post(create))
        .route("/postmortems/{file}", get(document))
        .route("/postmortems/{id}/export.json", get(export_json))
        .route("/postmortems/{id}/files/{name}", get(file))
        .route("/postmortems/{id}/{action}", post(act))
        .with_state(state)
}

#[derive(Template)]
#[template(path = "postmortems.html")]
struct ListPage {
    title: String,
    active: &'static str,
    save: Option<SaveForm>,
    token: String,
    rows: Vec<(PostMortemSummary, String)>,
}

async fn list(State(state): State<WebState>, PageToken(token): PageToken) -> Response {
    match state.notebook.postmortems().await {
        Ok(all) => render(
            &ListPage {
                title: "Post-mortems".into(),
                active: "postmortems",
                save: None,
                token,
                rows: all
                    .into_iter()
                    .map(|p| {
                        let window = incident_text(p.incident_start, p.incident_end);
                        (p, window)
                    })
                    .collect(),
            },
            StatusCode::OK,
        ),
        Err(e) => meta_error(e),
    }
}

fn incident_text(start: Option<i64>, end: Option<i64>) -> String {
    match (start, end) {
        (Some(s), Some(e)) => format!("{} – {}", format::time(s), format::time(e)),
        (Some(s), None) => format!("from {}", format::time(s)),
        _ => "incident window not set".into(),
    }
}

/// `YYYY-MM-DDTHH:MM:SS` (UTC) or RFC 3339 or Unix time; empty is none.
fn form_time(text: &str) -> Result<Option<i64>, MetaError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    parse_time(text).map(Some).map_err(MetaError::Invalid)
}

fn picker(ns: Option<i64>) -> String {
    ns.map(|t| {
        chrono::DateTime::from_timestamp_nanos(t)
            .format("%Y-%m-%dT%H:%M:%S")
            .to_string()
    })
    .unwrap_or_default()
}

async fn create(State(state): State<WebState>, form: FormFields) -> Response {
    if let Err(refused) = form.check_token(&state.notebook) {
        return *refused;
    }
    let edit = match (
        form_time(form.get("incident_start")),
        form_time(form.get("incident_end")),
    ) {
        (Ok(s), Ok(e)) => PostMortemEdit {
            title: Some(form.get("title").to_string()),
            incident_start: Some(s),
            incident_end: Some(e),
            ..Default::default()
        },
        (Err(e), _) | (_, Err(e)) => return meta_error(e),
    };
    match state.notebook.create_postmortem(edit).await {
        Ok(pm) => see_other(&format!("/postmortems/{}", pm.id)),
        Err(e) => meta_error(e),
    }
}

/// A view of the post-mortem, rendered inline.
pub struct EmbeddedView {
    pub entry: i64,
    pub view: Option<ViewRow>,
    pub name: String,
    pub note: String,
    /// The view's page content (already-escaped HTML from our own templates).
    pub content: String,
    pub failed: bool,
}

/// A line of the timeline as shown.
pub struct TimelineRow {
    pub id: Option<i64>,
    pub time: String,
    pub text: String,
    pub source: String,
}

/// The editor's values (the stored ones, or on a conflict the ones the user sent).
pub struct Editor {
    pub version: i64,
    pub title: String,
    pub status: Status,
    pub incident_start: String,
    pub incident_end: String,
    pub impact: String,
    pub summary: String,
    pub root_cause: String,
    /// Existing items plus three empty rows to add more.
    pub items: Vec<ActionItem>,
}

#[derive(Template)]
#[template(path = "postmortem.html")]
struct DocumentPage {
    title: String,
    active: &'static str,
    save: Option<SaveForm>,
    token: String,
    pm: PostMortem,
    incident: String,
    views: Vec<EmbeddedView>,
    timeline: Vec<TimelineRow>,
    suggestions: Vec<(Suggestion, String)>,
    suggestions_error: Option<String>,
    editor: Editor,
    conflict: Option<String>,
}

fn editor_of(pm: &PostMortem) -> Editor {
    let mut items = pm.action_items.clone();
    items.extend((0..3).map(|_| ActionItem {
        owner: String::new(),
        text: String::new(),
        done: false,
    }));
    Editor {
        version: pm.version,
        title: pm.title.clone(),
        status: pm.status,
        incident_start: picker(pm.incident_start),
        incident_end: picker(pm.incident_end),
        impact: pm.impact.clone(),
        summary: pm.summary.clone(),
        root_cause: pm.root_cause.clone(),
        items,
    }
}

async fn document(
    State(state): State<WebState>,
    PageToken(token): PageToken,
    Path(file): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(id) = file.strip_suffix(".md") {
        let Ok(id) = id.parse::<i64>() else {
            return message(StatusCode::NOT_FOUND, "Not found", "No such post-mortem.");
        };
        return match postmortem_export::export(
            &state,
            id,
            &base_url(&headers),
            &format!("{}/postmortems/{id}/files/", base_url(&headers)),
        )
        .await
        {
            Ok(export) => (
                [(header::CONTENT_TYPE, "text/markdown; charset=utf-8")],
                export.markdown,
            )
                .into_response(),
            Err(e) => meta_error(e),
        };
    }
    let Ok(id) = file.parse::<i64>() else {
        return message(StatusCode::NOT_FOUND, "Not found", "No such post-mortem.");
    };
    match state.notebook.postmortem(id).await {
        Ok(pm) => {
            let editor = editor_of(&pm);
            document_page(&state, token, pm, editor, None, StatusCode::OK).await
        }
        Err(e) => meta_error(e),
    }
}

/// The scheme and host the browser used, for permalinks in exports.
pub fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            h.chars()
                .all(|c| c.is_ascii_alphanumeric() || ".:-[]".contains(c))
        })
        .unwrap_or("127.0.0.1:8080");
    format!("http://{host}")
}

async fn document_page(
    state: &WebState,
    token: String,
    pm: PostMortem,
    editor: Editor,
    conflict: Option<String>,
    status: StatusCode,
) -> Response {
    let nb = &state.notebook;
    let mut views = Vec::new();
    for entry in &pm.views {
        let view = match entry.view_id {
            Some(id) => nb.view(id).await.ok(),
            None => None,
        };
        let (content, failed) = match &view {
            Some(v) => {
                let rendered = view_render::render(state, v).await;
                (
                    rendered.content().to_string(),
                    !rendered.status.is_success(),
                )
            }
            None => (String::new(), true),
        };
        views.push(EmbeddedView {
            entry: entry.id,
            view: view.as_ref().map(ViewRow::of),
            name: entry.view_name.clone(),
            note: crate::postmortem::evidence_note(
                view.as_ref().map_or("", |v| v.note.as_str()),
                &entry.note,
            ),
            content,
            failed,
        });
    }
    let (suggestions, suggestions_error) =
        match postmortem::pending_suggestions(nb, &state.engine, &pm).await {
            Ok(s) => (
                s.into_iter()
                    .map(|s| {
                        let t = format::time(s.time);
                        (s, t)
                    })
                    .collect(),
                None,
            ),
            Err(e) => (Vec::new(), Some(e.to_string())),
        };
    let timeline = timeline_rows(state, &pm).await;
    render(
        &DocumentPage {
            title: pm.title.clone(),
            active: "postmortems",
            save: None,
            token,
            incident: incident_text(pm.incident_start, pm.incident_end),
            pm,
            views,
            timeline,
            suggestions,
            suggestions_error,
            editor,
            conflict,
        },
        status,
    )
}

/// The timeline entries and the annotations of the incident window, in time order.
pub async fn timeline_rows(state: &WebState, pm: &PostMortem) -> Vec<TimelineRow> {
    let mut rows: Vec<(i64, TimelineRow)> = pm
        .timeline
        .iter()
        .map(|e| {
            (
                e.time,
                TimelineRow {
                    id: Some(e.id),
                    time: format::time(e.time),
                    text: e.text.clone(),
                    source: e.source.clone(),
                },
            )
        })
        .collect();
    if let (Some(s), Some(e)) = (pm.incident_start, pm.incident_end) {
        for a in state
            .notebook
            .annotations(s, e, None)
            .await
            .unwrap_or_default()
        {
            let text = match &a.service {
                Some(svc) => format!("{svc}: {}", a.text),
                None => a.text.clone(),
            };
            rows.push((
                a.time,
                TimelineRow {
                    id: None,
                    time: format::time(a.time),
                    text,
                    source: "annotation".into(),
                },
            ));
        }
    }
    rows.sort_by_key(|(t, _)| *t);
    rows.into_iter().map(|(_, r)| r).collect()
}

/// The editor's fields from a posted form.
fn edit_of(form: &FormFields) -> Result<(PostMortemEdit, Editor), MetaError> {
    let version = form.get("version").parse::<i64>().ok();
    let mut items = Vec::new();
    for i in 0.. {
        let (owner, text) = (
            form.get(&format!("owner_{i}")),
            form.get(&format!("text_{i}")),
        );
        if i > 1000 || (!form.has(&format!("text_{i}")) && !form.has(&format!("owner_{i}"))) {
            break;
        }
        items.push(ActionItem {
            owner: owner.to_string(),
            text: text.to_string(),
            done: form.checked(&format!("done_{i}")),
        });
    }
    let status = if form.get("status") == "final" {
        Status::Final
    } else {
        Status::Draft
    };
    let edit = PostMortemEdit {
        version,
        title: Some(form.get("title").to_string()),
        status: Some(status),
        incident_start: Some(form_time(form.get("incident_start"))?),
        incident_end: Some(form_time(form.get("incident_end"))?),
        impact: Some(form.get("impact").to_string()),
        summary: Some(form.get("summary").to_string()),
        root_cause: Some(form.get("root_cause").to_string()),
        action_items: Some(items.clone()),
    };
    let editor = Editor {
        version: version.unwrap_or(0),
        title: form.get("title").to_string(),
        status,
        incident_start: form.get("incident_start").to_string(),
        incident_end: form.get("incident_end").to_string(),
        impact: form.get("impact").to_string(),
        summary: form.get("summary").to_string(),
        root_cause: form.get("root_cause").to_string(),
        items,
    };
    Ok((edit, editor))
}

async fn act(
    State(state): State<WebState>,
    PageToken(token): PageToken,
    Path((id, action)): Path<(i64, String)>,
    form: FormFields,
) -> Response {
    if let Err(refused) = form.check_token(&state.notebook) {
        return *refused;
    }
    let nb = &state.notebook;
    let back = format!("/postmortems/{id}");
    let done = |r: Result<PostMortem, MetaError>| match r {
        Ok(_) => see_other(&back),
        Err(e) => meta_error(e),
    };
    let entry = || form.get("entry").parse::<i64>().unwrap_or(-1);
    match action.as_str() {
        "edit" => {
            let (edit, mut editor) = match edit_of(&form) {
                Ok(x) => x,
                Err(e) => return meta_error(e),
            };
            match nb.edit_postmortem(id, edit).await {
                Ok(_) => see_other(&back),
                Err(MetaError::Conflict(m)) => {
                    // Show what is stored now, keep the user's text in the editor, and let a
                    // second submit (from the current version) overwrite on purpose.
                    match nb.postmortem(id).await {
                        Ok(current) => {
                            editor.version = current.version;
                            editor.items.extend((0..3).map(|_| ActionItem {
                                owner: String::new(),
                                text: String::new(),
                                done: false,
                            }));
                            document_page(
                                &state,
                                token.clone(),
                                current,
                                editor,
                                Some(m),
                                StatusCode::CONFLICT,
                            )
                            .await
                        }
                        Err(e) => meta_error(e),
                    }
                }
                Err(e) => meta_error(e),
            }
        }
        "delete" => {
            if form.get("confirm") != "yes" {
                return message(
                    StatusCode::BAD_REQUEST,
                    "Not deleted",
                    "Tick “yes, delete it” to delete a post-mortem.",
                );
            }
            match nb.delete_postmortem(id).await {
                Ok(()) => see_other("/postmortems"),
                Err(e) => meta_error(e),
            }
        }
        "timeline" => match form_time(form.get("time")) {
            Ok(Some(t)) => done(
                nb.add_timeline_entry(id, t, form.get("text").to_string(), "manual".into(), None)
                    .await,
            ),
            Ok(None) => message(
                StatusCode::BAD_REQUEST,
                "Not added",
                "A timeline entry needs a time.",
            ),
            Err(e) => meta_error(e),
        },
        "timeline-delete" => done(nb.delete_timeline_entry(id, entry()).await),
        "accept" => {
            match postmortem::accept_suggestion(nb, &state.engine, id, form.get("key")).await {
                Ok(_) => see_other(&back),
                Err(e) => not_accepted(e),
            }
        }
        "accept-all" => match postmortem::accept_all_suggestions(nb, &state.engine, id).await {
            Ok(_) => see_other(&back),
            Err(e) => not_accepted(e),
        },
        "dismiss" => match nb.dismiss_suggestion(id, form.get("key").to_string()).await {
            Ok(()) => see_other(&back),
            Err(e) => meta_error(e),
        },
        "view-remove" => done(
            nb.change_postmortem_view(id, entry(), ViewChange::Remove)
                .await,
        ),
        "view-up" => done(nb.change_postmortem_view(id, entry(), ViewChange::Up).await),
        "view-down" => done(
            nb.change_postmortem_view(id, entry(), ViewChange::Down)
                .await,
        ),
        other => message(
            StatusCode::NOT_FOUND,
            "Page not found",
            format!("There is no post-mortem action {other:?}."),
        ),
    }
}

/// The page that says why suggestions could not be accepted.
fn not_accepted(e: postmortem::SuggestError) -> Response {
    match e {
        postmortem::SuggestError::Meta(e) => meta_error(e),
        e => message(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Not accepted",
            e.to_string(),
        ),
    }
}

/// `GET /postmortems/{id}/export.json`: the Markdown and its chart files, for
/// `sightline postmortem export`.
async fn export_json(
    State(state): State<WebState>,
    Path(id): Path<i64>,
    headers: HeaderMap,
) -> Response {
    match postmortem_export::export(&state, id, &base_url(&headers), "").await {
        Ok(export) => Json(serde_json::json!({
            "markdown": export.markdown,
            "files": export.files.into_iter().map(|(name, content)| serde_json::json!({"name": name, "content": content})).collect::<Vec<_>>(),
        }))
        .into_response(),
        Err(e) => {
            let status = match e {
                MetaError::NotFound(_) => StatusCode::NOT_FOUND,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            (status, Json(serde_json::json!({"error": e.to_string()}))).into_response()
        }
    }
}

/// One chart of the export, as an SVG file.
async fn file(
    State(state): State<WebState>,
    Path((id, name)): Path<(i64, String)>,
    headers: HeaderMap,
) -> Response {
    match postmortem_export::export(&state, id, &base_url(&headers), "").await {
        Ok(export) => match export.files.into_iter().find(|(n, _)| *n == name) {
            Some((_, svg)) => ([(header::CONTENT_TYPE, "image/svg+xml")], svg).into_response(),
            None => message(StatusCode::NOT_FOUND, "Not found", "No such chart."),
        },
        Err(e) => meta_error(e),
    }
}
