//! The web UI: server-rendered pages (askama templates in `templates/`) over the query
//! layer, with static CSS/JS from `web/` built into the binary. Every page works without
//! JavaScript and keeps its whole state in the URL.

mod alerts_page;
mod annotations_page;
mod api_docs_page;
mod assets;
mod canary_page;
mod charts;
mod chrome;
mod compare_page;
mod errors_page;
mod events;
mod explore_page;
mod format;
mod forms;
mod groups_page;
mod login_page;
mod logs_page;
mod map_layout;
mod map_page;
mod overview_page;
mod postmortem_export;
mod postmortem_page;
mod service_page;
mod trace_page;
mod traces_page;
mod view_render;
mod views_page;

use askama::Template;
use axum::extract::FromRef;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::meta::views::ViewKind;
use crate::model::window;
use crate::notebook::Notebook;
use crate::query::QueryEngine;

pub use chrome::SaveForm;
pub use login_page::router as login_router;

/// What the pages render from.
#[derive(Clone)]
pub struct WebState {
    /// The live data, or a pinned view's evidence.
    pub engine: QueryEngine,
    pub notebook: Notebook,
    /// False while rendering pinned evidence (no "Save view" on a copy).
    pub live: bool,
}

impl FromRef<WebState> for QueryEngine {
    fn from_ref(state: &WebState) -> QueryEngine {
        state.engine.clone()
    }
}

/// The UI: the data pages plus saved views and post-mortems.
pub fn router(
    engine: QueryEngine,
    notebook: Notebook,
    alerting: crate::alerting::Alerting,
) -> Router {
    format::seed_service_colors(engine.services().into_iter().map(|s| s.name));
    let tails = logs_page::LiveTails::new(engine.clone());
    let state = WebState {
        engine,
        notebook,
        live: true,
    };
    pages(state.clone())
        .route("/logs/tail", get(logs_page::tail).with_state(tails))
        .merge(views_page::router(state.clone()))
        .merge(postmortem_page::router(state.clone()))
        .merge(alerts_page::router(state.clone(), alerting))
        .merge(annotations_page::router(state))
        .route("/api/docs", get(api_docs_page::handler))
        .route("/static/{file}", get(assets::handler))
        .fallback(not_found_handler)
}

/// The data pages (overview, map, service, errors, traces, trace, logs, metrics) over
/// `state`'s engine; also used to render a pinned view from its evidence.
pub fn pages(state: WebState) -> Router {
    Router::new()
        // The savable pages, at the routes saved views are matched against.
        .route(ViewKind::Overview.route(), get(overview_page::handler))
        .route(ViewKind::Map.route(), get(map_page::handler))
        .route(ViewKind::Service.route(), get(service_page::handler))
        .route(ViewKind::Errors.route(), get(errors_page::handler))
        .route(ViewKind::TraceSearch.route(), get(traces_page::handler))
        .route(ViewKind::Trace.route(), get(trace_page::handler))
        .route(ViewKind::Logs.route(), get(logs_page::handler))
        .route(ViewKind::Metrics.route(), get(explore_page::handler))
        .route(ViewKind::CompareTraces.route(), get(compare_page::handler))
        .route(ViewKind::CompareGroups.route(), get(groups_page::handler))
        .route(ViewKind::Canary.route(), get(canary_page::handler))
        .with_state(state)
}

/// A link to `path` with `pairs` and the page's `window` after them: the window follows
/// every link a page builds (a pair of the link's own wins, being first).
pub fn url_in(window: &window::TimeWindow, path: &str, pairs: &[(&str, String)]) -> String {
    let mut all = pairs.to_vec();
    all.extend(window.query_pairs());
    url(path, &all)
}

/// `text` as one path segment (`/services/{name}` with any name).
pub fn path_segment(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// Builds a URL from a path and query pairs, skipping empty values.
pub fn url(path: &str, pairs: &[(&str, String)]) -> String {
    let mut ser = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs.iter().filter(|(_, v)| !v.is_empty()) {
        ser.append_pair(k, v);
    }
    let query = ser.finish();
    if query.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{query}")
    }
}

/// Renders a page with a status, or a plain 500 if the template itself fails.
fn render(page: &impl Template, status: StatusCode) -> Response {
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!("template failed: {e}");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "page could not be rendered",
            )
                .into_response()
        }
    }
}

/// A page that only says what went wrong (unknown trace, bad id, unknown page).
#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage {
    title: String,
    active: &'static str,
    save: Option<SaveForm>,
    heading: String,
    message: String,
}

fn message(status: StatusCode, heading: impl Into<String>, message: impl Into<String>) -> Response {
    let heading = heading.into();
    let page = MessagePage {
        title: heading.clone(),
        active: "",
        save: None,
        heading,
        message: message.into(),
    };
    render(&page, status)
}

/// How a page shows a question the query layer refused: the status and the message for the
/// page's own error line, or a whole error page when the query itself failed.
fn refused(e: crate::query::QueryError) -> Result<(StatusCode, String), Box<Response>> {
    use crate::query::QueryError;
    match e {
        QueryError::BadRequest(m) => Ok((StatusCode::BAD_REQUEST, m)),
        QueryError::NotFound(m) => Ok((StatusCode::NOT_FOUND, m)),
        QueryError::TooLarge(m) => Ok((StatusCode::PAYLOAD_TOO_LARGE, m)),
        other => Err(Box::new(message(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Query failed",
            other.to_string(),
        ))),
    }
}

/// The time window of a page's URL, or the page saying what is wrong with it.
fn window_or_error(
    params: &window::TimeParams,
    now: i64,
) -> Result<window::TimeWindow, Box<Response>> {
    params
        .resolve(now)
        .map_err(|e| Box::new(message(StatusCode::BAD_REQUEST, "Bad time range", e)))
}

async fn not_found_handler() -> Response {
    message(
        StatusCode::NOT_FOUND,
        "Page not found",
        "There is no page at this address.",
    )
}
