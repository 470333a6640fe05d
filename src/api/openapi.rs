//! The OpenAPI 3 document of `/api/v1`, generated from the handlers' own annotations and
//! parameter types (`utoipa`), served at `/api/v1/openapi.json` (the UI renders it as a page
//! at `/api/docs`, `web::api_docs_page`).

use axum::routing::get;
use axum::{Json, Router};
use utoipa::OpenApi;

use super::{annotations, postmortems, views};

/// The document: every `/api/v1` operation.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Sightline query API",
        description = "Traces, logs, metrics, services, saved views, post-mortems and annotations. \
Times are RFC 3339 or Unix timestamps (s, ms, µs or ns, told apart by size). Errors answer \
`{\"error\": \"…\"}`. With logins configured, send a session cookie or HTTP Basic credentials."
    ),
    paths(
        super::search_traces, super::trace, super::logs, super::log_histogram, super::correlation, super::services,
        super::overview, super::service_map, super::service, super::errors,
        super::metric_names, super::metric_query,
        views::create, views::list, views::one, views::edit, views::remove, views::pin,
        views::unpin,
        postmortems::create, postmortems::list, postmortems::one, postmortems::edit,
        postmortems::remove, postmortems::add_view, postmortems::remove_view,
        postmortems::move_view, postmortems::add_entry, postmortems::remove_entry,
        postmortems::suggestions, postmortems::settle,
        annotations::create, annotations::list, annotations::remove,
    ),
    tags(
        (name = "traces"), (name = "logs"), (name = "services"), (name = "metrics"),
        (name = "views", description = "Saved views and their pinned evidence"),
        (name = "postmortems"), (name = "annotations"),
    )
)]
pub struct ApiDoc;

/// The routes.
pub fn router() -> Router {
    Router::new().route(
        "/api/v1/openapi.json",
        get(|| async { Json(ApiDoc::openapi()) }),
    )
}
