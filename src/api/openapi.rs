//! The OpenAPI 3 document of `/api/v1`, generated from the handlers' own annotations and
//! parameter types (`utoipa`) and the route lists the router is built from (`utoipa-axum`,
//! see `api::document`), served at `/api/v1/openapi.json` (the UI renders it as a page at
//! `/api/docs`, `web::api_docs_page`).

use axum::routing::get;
use axum::{Json, Router};
use utoipa::OpenApi;

/// The document's title, description and tags; the operations come from the routes.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Sightline query API",
        description = "Traces, logs, metrics, services, saved views, post-mortems, annotations and alerts. \
Times are RFC 3339 or Unix timestamps (s, ms, µs or ns, told apart by size). Errors answer \
`{\"error\": \"…\"}`. With logins configured, send a session cookie or HTTP Basic credentials."
    ),
    tags(
        (name = "traces"), (name = "logs"), (name = "services"), (name = "metrics"),
        (name = "views", description = "Saved views and their pinned evidence"),
        (name = "postmortems"), (name = "annotations"),
        (name = "compare", description = "Trace against trace, a selection against a baseline, canary verdicts"),
        (name = "alerts", description = "Alert rules, their alerts and values, silences, the notification log"),
    )
)]
pub struct ApiDoc;

/// The route serving `doc`.
pub fn router(doc: &'static utoipa::openapi::OpenApi) -> Router {
    Router::new().route(
        "/api/v1/openapi.json",
        get(move || async move { Json(doc) }),
    )
}
