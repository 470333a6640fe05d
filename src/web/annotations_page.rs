//! `/annotations`: the annotations of the last week, and a form to add one (a deploy, a
//! config change) that then shows as a marker on every chart covering its time.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;

use super::forms::{meta_error, see_other, FormFields, PageToken};
use super::{format, message, render, SaveForm, WebState};
use crate::meta::annotations::Annotation;
use crate::meta::MetaError;

/// The routes.
pub fn router(state: WebState) -> Router {
    Router::new()
        .route("/annotations", get(list).post(create))
        .route("/annotations/{id}/delete", post(remove))
        .with_state(state)
}

#[derive(Template)]
#[template(path = "annotations.html")]
struct AnnotationsPage {
    title: String,
    active: &'static str,
    save: Option<SaveForm>,
    token: String,
    rows: Vec<(Annotation, String)>,
    services: Vec<String>,
}

const WEEK: i64 = 7 * 24 * 3600 * 1_000_000_000;

async fn list(State(state): State<WebState>, PageToken(token): PageToken) -> Response {
    let now = crate::model::time::now_ns();
    match state
        .notebook
        .annotations(now - WEEK, now + WEEK, None)
        .await
    {
        Ok(all) => render(
            &AnnotationsPage {
                title: "Annotations".into(),
                active: "annotations",
                save: None,
                token,
                rows: all
                    .into_iter()
                    .rev()
                    .map(|a| {
                        let t = format::time(a.time);
                        (a, t)
                    })
                    .collect(),
                services: state
                    .engine
                    .services()
                    .into_iter()
                    .map(|s| s.name)
                    .collect(),
            },
            StatusCode::OK,
        ),
        Err(e) => meta_error(e),
    }
}

async fn create(State(state): State<WebState>, form: FormFields) -> Response {
    if let Err(refused) = form.check_token(&state.notebook) {
        return *refused;
    }
    let time = match form.get("time").trim() {
        "" => crate::model::time::now_ns(),
        text => match crate::model::time::parse_time(text) {
            Ok(t) => t,
            Err(e) => return meta_error(MetaError::Invalid(e)),
        },
    };
    let service = Some(form.get("service").to_string()).filter(|s| !s.is_empty());
    match state
        .notebook
        .create_annotation(time, service, form.get("text").to_string())
        .await
    {
        Ok(_) => see_other("/annotations"),
        Err(e) => meta_error(e),
    }
}

async fn remove(State(state): State<WebState>, Path(id): Path<i64>, form: FormFields) -> Response {
    if let Err(refused) = form.check_token(&state.notebook) {
        return *refused;
    }
    match state.notebook.delete_annotation(id).await {
        Ok(()) => see_other("/annotations"),
        Err(MetaError::NotFound(m)) => message(StatusCode::NOT_FOUND, "Not found", m),
        Err(e) => meta_error(e),
    }
}
