//! `/api/docs`: the API's OpenAPI document rendered server-side, like every page (no script
//! from elsewhere).

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::{RefOr, Required};

use super::SaveForm;

/// One operation as the page lists it.
struct OperationRow {
    method: &'static str,
    path: String,
    tag: String,
    summary: String,
    parameters: Vec<(String, &'static str, bool, String)>,
    body: Option<String>,
    responses: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "api_docs.html")]
struct DocsPage {
    title: String,
    active: &'static str,
    save: Option<SaveForm>,
    description: String,
    operations: Vec<OperationRow>,
}

fn row(method: &'static str, path: &str, op: &Operation) -> OperationRow {
    let text = |s: &Option<String>| s.clone().unwrap_or_default();
    OperationRow {
        method,
        path: path.to_string(),
        tag: op
            .tags
            .as_ref()
            .and_then(|t| t.first().cloned())
            .unwrap_or_default(),
        summary: text(&op.summary),
        parameters: op
            .parameters
            .iter()
            .flatten()
            .map(|p| {
                let place = match p.parameter_in {
                    ParameterIn::Path => "path",
                    ParameterIn::Query => "query",
                    ParameterIn::Header => "header",
                    ParameterIn::Cookie => "cookie",
                };
                (
                    p.name.clone(),
                    place,
                    matches!(p.required, Required::True),
                    text(&p.description),
                )
            })
            .collect(),
        body: op.request_body.as_ref().map(|b| {
            b.description.clone().unwrap_or_else(|| {
                b.content
                    .values()
                    .filter_map(|c| match &c.schema {
                        Some(RefOr::Ref(r)) => {
                            r.ref_location.rsplit('/').next().map(str::to_string)
                        }
                        _ => None,
                    })
                    .next()
                    .unwrap_or_else(|| "JSON".into())
            })
        }),
        responses: op
            .responses
            .responses
            .iter()
            .map(|(code, r)| {
                let description = match r {
                    RefOr::T(r) => r.description.clone(),
                    RefOr::Ref(r) => r.ref_location.clone(),
                };
                (code.clone(), description)
            })
            .collect(),
    }
}

/// The `/api/docs` page.
pub async fn handler() -> Response {
    let doc = crate::alerting::api::document();
    let mut operations = Vec::new();
    for (path, item) in &doc.paths.paths {
        for (method, op) in [
            ("GET", &item.get),
            ("POST", &item.post),
            ("PUT", &item.put),
            ("DELETE", &item.delete),
        ] {
            if let Some(op) = op {
                operations.push(row(method, path, op));
            }
        }
    }
    operations.sort_by(|a, b| (&a.tag, &a.path).cmp(&(&b.tag, &b.path)));
    let page = DocsPage {
        title: "HTTP API".into(),
        active: "",
        save: None,
        description: doc.info.description.clone().unwrap_or_default(),
        operations,
    };
    match page.render() {
        Ok(html) => Html(html).into_response(),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "page could not be rendered",
        )
            .into_response(),
    }
}
