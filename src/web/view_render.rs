//! Rendering a saved view: its page, run through the same page handlers over the live data
//! or, when pinned, over the view's evidence snapshot.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use tower::ServiceExt;

use super::WebState;
use crate::meta::views::SavedView;

/// Most bytes of one rendered page kept for embedding.
const MAX_PAGE_BYTES: usize = 32 << 20;

/// Where the page content sits in every rendered page (see `base.html`). User text is escaped,
/// so these comments can only come from the template.
pub const CONTENT_START: &str = "<!--view-content-->";
pub const CONTENT_END: &str = "<!--/view-content-->";

/// A rendered view: the page's status and its whole HTML.
pub struct RenderedView {
    pub status: StatusCode,
    pub html: String,
}

impl RenderedView {
    /// The page content without the site header, for embedding.
    pub fn content(&self) -> &str {
        let start = self
            .html
            .find(CONTENT_START)
            .map(|i| i + CONTENT_START.len())
            .unwrap_or(0);
        let end = self.html[start..]
            .find(CONTENT_END)
            .map(|i| start + i)
            .unwrap_or(self.html.len());
        &self.html[start..end]
    }
}

/// Renders `view`'s page: from its evidence when pinned, else from the live data.
pub async fn render(state: &WebState, view: &SavedView) -> RenderedView {
    let engine = if view.pin.is_some() {
        match state.notebook.pinned_engine(view.id) {
            Ok(engine) => engine,
            Err(e) => {
                return failed(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("The evidence of this view cannot be opened: {e}"),
                )
            }
        }
    } else {
        state.engine.clone()
    };
    let pages = super::pages(WebState {
        engine,
        notebook: state.notebook.clone(),
        live: false,
    });
    let request = match Request::get(view.url.as_str()).body(Body::empty()) {
        Ok(r) => r,
        Err(e) => {
            return failed(
                StatusCode::BAD_REQUEST,
                format!("This view's address no longer parses: {e}"),
            )
        }
    };
    let response = match pages.oneshot(request).await {
        Ok(r) => r,
        Err(never) => match never {},
    };
    let status = response.status();
    let html = match axum::body::to_bytes(response.into_body(), MAX_PAGE_BYTES).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) => return failed(status, format!("The page is too large to embed: {e}")),
    };
    RenderedView { status, html }
}

/// A failure shown where the view's content would be.
#[derive(askama::Template)]
#[template(
    source = "<!--view-content--><p class=\"error\">{{ message }}</p><!--/view-content-->",
    ext = "html"
)]
struct Failure {
    message: String,
}

fn failed(status: StatusCode, message: String) -> RenderedView {
    use askama::Template;
    RenderedView {
        status,
        html: Failure { message }.render().unwrap_or_default(),
    }
}
