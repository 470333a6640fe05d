//! `/views`: saved views — list and filter, open (from evidence when pinned), rename,
//! re-note, pin, delete, add to a post-mortem — and the "Save view" form's target.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use super::forms::{meta_error, pin_error, see_other, FormFields, PageToken};
use super::view_render::{self, CONTENT_START};
use super::{format, message, render, SaveForm, WebState};
use crate::evidence::{PinProgress, PIN_JOBS_AT_ONCE};
use crate::meta::postmortems::{PostMortemEdit, PostMortemSummary};
use crate::meta::views::{NewView, SavedView, ViewEdit, ViewFilter};

/// The routes.
pub fn router(state: WebState) -> Router {
    Router::new()
        .route("/views", get(list).post(create))
        .route("/views/{id}", get(detail))
        .route("/views/{id}/open", get(open))
        .route("/views/{id}/{action}", post(act))
        .with_state(state)
}

/// A view as the pages show it.
pub struct ViewRow {
    pub id: i64,
    pub name: String,
    pub note: String,
    pub tags: Vec<String>,
    pub kind: &'static str,
    pub url: String,
    pub window: String,
    /// "pinned: 12 034 records, 1.2 MB" or "live data".
    pub evidence: String,
    pub pinned: bool,
}

impl ViewRow {
    /// The row of one view.
    pub fn of(v: &SavedView) -> ViewRow {
        ViewRow {
            id: v.id,
            name: v.name.clone(),
            note: v.note.clone(),
            tags: v.tags.clone(),
            kind: v.kind.label(),
            url: v.url.clone(),
            window: if v.relative {
                "relative (opens as “last …”)".into()
            } else {
                format!("{} – {}", format::time(v.start), format::time(v.end))
            },
            evidence: match &v.pin {
                Some(p) => format!(
                    "pinned {}: {} records, {}",
                    format::time(p.pinned_at),
                    p.rows,
                    format::bytes(p.bytes)
                ),
                None => "live data (not pinned)".into(),
            },
            pinned: v.pin.is_some(),
        }
    }
}

#[derive(Template)]
#[template(path = "views.html")]
struct ViewsPage {
    title: String,
    active: &'static str,
    save: Option<SaveForm>,
    q: String,
    tag: String,
    rows: Vec<ViewRow>,
}

async fn list(State(state): State<WebState>, Query(filter): Query<ViewFilter>) -> Response {
    let q = filter.q.clone().unwrap_or_default();
    let tag = filter.tag.clone().unwrap_or_default();
    match state.notebook.views(filter).await {
        Ok(views) => render(
            &ViewsPage {
                title: "Saved views".into(),
                active: "views",
                save: None,
                q,
                tag,
                rows: views.iter().map(ViewRow::of).collect(),
            },
            StatusCode::OK,
        ),
        Err(e) => meta_error(e),
    }
}

/// Target of every page's "Save view" form.
async fn create(State(state): State<WebState>, form: FormFields) -> Response {
    if let Err(refused) = form.check_token(&state.notebook) {
        return *refused;
    }
    let time = |name: &str| form.get(name).trim().parse::<i64>().ok();
    let new = NewView {
        name: form.get("name").to_string(),
        note: form.get("note").to_string(),
        tags: form.get("tags").split(',').map(str::to_string).collect(),
        url: form.get("url").to_string(),
        start: time("start"),
        end: time("end"),
        relative: form.checked("relative"),
    };
    match state
        .notebook
        .save_view(&state.engine, new, form.checked("pin"))
        .await
    {
        Ok(view) => see_other(&format!("/views/{}", view.id)),
        Err(e) => pin_error(e),
    }
}

#[derive(Template)]
#[template(path = "view.html")]
struct ViewDetailPage {
    title: String,
    active: &'static str,
    save: Option<SaveForm>,
    view: ViewRow,
    tags_text: String,
    token: String,
    used_by: Vec<(i64, String)>,
    postmortems: Vec<PostMortemSummary>,
    /// What the view's pin job is doing ("Pinning: reading the rows… since 12:00:01"), or
    /// why it failed.
    pinning: Option<String>,
    /// Whether the job still runs (the page then reloads itself every 2 s).
    pinning_running: bool,
}

/// The view page's line about a pin job.
fn pinning_text(progress: &PinProgress) -> String {
    match progress {
        PinProgress::Queued { since } => format!(
            "Pinning: waiting for one of {PIN_JOBS_AT_ONCE} pin slots since {}…",
            format::time(*since)
        ),
        PinProgress::Collecting { since } => {
            format!("Pinning: reading the rows behind the view since {}…", format::time(*since))
        }
        PinProgress::Writing { since, rows } => format!(
            "Pinning: writing {rows} records as this view's evidence since {}…",
            format::time(*since)
        ),
        PinProgress::Failed { at, message } => format!(
            "Pinning failed at {}: {message}. The view opens on the live data; pin it again to retry.",
            format::time(*at)
        ),
    }
}

async fn detail(
    State(state): State<WebState>,
    PageToken(token): PageToken,
    Path(id): Path<i64>,
) -> Response {
    let meta = &state.notebook;
    let view = match meta.view(id).await {
        Ok(v) => v,
        Err(e) => return meta_error(e),
    };
    let used_by = meta.postmortems_using(id).await.unwrap_or_default();
    let postmortems = meta.postmortems().await.unwrap_or_default();
    let progress = meta.pin_progress(id);
    render(
        &ViewDetailPage {
            title: view.name.clone(),
            active: "views",
            save: None,
            tags_text: view.tags.join(", "),
            view: ViewRow::of(&view),
            token,
            used_by,
            postmortems,
            pinning: progress.as_ref().map(pinning_text),
            pinning_running: progress.is_some_and(|p| p.is_running()),
        },
        StatusCode::OK,
    )
}

/// The banner above a page rendered from pinned evidence.
#[derive(Template)]
#[template(path = "pinned_banner.html")]
struct PinnedBanner {
    id: i64,
    name: String,
    evidence: String,
    url: String,
}

/// Opens a view: its pinned evidence when it has some, else the live page.
async fn open(State(state): State<WebState>, Path(id): Path<i64>) -> Response {
    let view = match state.notebook.view(id).await {
        Ok(v) => v,
        Err(e) => return meta_error(e),
    };
    if view.pin.is_none() {
        return see_other(&view.url);
    }
    let rendered = view_render::render(&state, &view).await;
    let banner = PinnedBanner {
        id,
        name: view.name.clone(),
        evidence: ViewRow::of(&view).evidence,
        url: view.url.clone(),
    }
    .render()
    .unwrap_or_default();
    let html = match rendered.html.find(CONTENT_START) {
        Some(i) => {
            let at = i + CONTENT_START.len();
            format!("{}{banner}{}", &rendered.html[..at], &rendered.html[at..])
        }
        None => rendered.html,
    };
    (rendered.status, Html(html)).into_response()
}

/// The actions of the view page: edit, pin, unpin, delete, add to a post-mortem.
async fn act(
    State(state): State<WebState>,
    Path((id, action)): Path<(i64, String)>,
    form: FormFields,
) -> Response {
    if let Err(refused) = form.check_token(&state.notebook) {
        return *refused;
    }
    let nb = &state.notebook;
    let back = format!("/views/{id}");
    let done = |r: Result<SavedView, crate::meta::MetaError>| match r {
        Ok(_) => see_other(&back),
        Err(e) => meta_error(e),
    };
    match action.as_str() {
        "edit" => done(
            nb.edit_view(
                id,
                ViewEdit {
                    name: Some(form.get("name").to_string()),
                    note: Some(form.get("note").to_string()),
                    tags: Some(form.get("tags").split(',').map(str::to_string).collect()),
                },
            )
            .await,
        ),
        "pin" => match nb.pin_view(&state.engine, id).await {
            Ok(_) => see_other(&back),
            Err(e) => pin_error(e),
        },
        "unpin" => done(nb.unpin_view(id).await),
        "delete" => {
            if form.get("confirm") != "yes" {
                return message(
                    StatusCode::BAD_REQUEST,
                    "Not deleted",
                    "Tick “yes, delete it” to delete a view.",
                );
            }
            match nb.delete_view(id).await {
                Ok(_) => see_other("/views"),
                Err(e) => meta_error(e),
            }
        }
        "add-to-postmortem" => {
            let target = match form.get("postmortem") {
                "" | "new" => {
                    let title = match form.get("title").trim() {
                        "" => format!("Post-mortem: {}", form.get("view_name")),
                        t => t.to_string(),
                    };
                    match nb
                        .create_postmortem(PostMortemEdit {
                            title: Some(title),
                            ..Default::default()
                        })
                        .await
                    {
                        Ok(pm) => pm.id,
                        Err(e) => return meta_error(e),
                    }
                }
                other => match other.parse::<i64>() {
                    Ok(pm) => pm,
                    Err(_) => {
                        return message(StatusCode::BAD_REQUEST, "Not added", "Pick a post-mortem.")
                    }
                },
            };
            match nb
                .add_postmortem_view(target, id, form.get("note").to_string())
                .await
            {
                Ok(pm) => see_other(&format!("/postmortems/{}", pm.id)),
                Err(e) => meta_error(e),
            }
        }
        other => message(
            StatusCode::NOT_FOUND,
            "Page not found",
            format!("There is no view action {other:?}."),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::views::{Pin, ViewKind};

    fn view(pin: Option<Pin>, relative: bool) -> SavedView {
        SavedView {
            id: 7,
            name: "checkout <b>down</b>".into(),
            note: String::new(),
            tags: vec!["payment".into()],
            kind: ViewKind::Logs,
            url: "/logs?q=error".into(),
            relative,
            start: 0,
            end: 60_000_000_000,
            pin,
            created: 0,
            updated: 0,
        }
    }

    #[test]
    fn a_row_says_where_its_evidence_is_and_which_window_it_shows() {
        let live = ViewRow::of(&view(None, false));
        assert!(!live.pinned);
        assert_eq!(live.evidence, "live data (not pinned)");
        assert_eq!(
            live.window,
            "1970-01-01 00:00:00.000 – 1970-01-01 00:01:00.000"
        );
        assert_eq!(live.kind, "Logs");
        let pinned = ViewRow::of(&view(
            Some(Pin {
                pinned_at: 0,
                rows: 12_034,
                bytes: 1_200_000,
            }),
            true,
        ));
        assert!(pinned.pinned);
        assert_eq!(
            pinned.evidence,
            "pinned 1970-01-01 00:00:00.000: 12034 records, 1.2 MB"
        );
        assert_eq!(pinned.window, "relative (opens as “last …”)");
        // The name is kept as typed: the template escapes it.
        assert_eq!(pinned.name, "checkout <b>down</b>");
    }

    #[test]
    fn pin_progress_reads_as_a_sentence() {
        assert_eq!(
            pinning_text(&PinProgress::Writing { since: 0, rows: 5 }),
            "Pinning: writing 5 records as this view's evidence since 1970-01-01 00:00:00.000…"
        );
        assert!(pinning_text(&PinProgress::Queued { since: 0 })
            .contains(&format!("one of {PIN_JOBS_AT_ONCE} pin slots")));
        let failed = pinning_text(&PinProgress::Failed {
            at: 0,
            message: "disk full".into(),
        });
        assert!(failed.starts_with("Pinning failed at "), "{failed}");
        assert!(failed.contains("disk full") && failed.contains("pin it again"));
    }
}
