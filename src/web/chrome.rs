//! What every page has around its content: the "Save view" form (which needs the page's own
//! URL and the window it shows) and the annotations drawn on its charts.

use axum::extract::{FromRef, FromRequestParts, OriginalUri};
use axum::http::request::Parts;

use super::charts::Chart;
use super::WebState;
use crate::meta::annotations::Annotation;
use crate::meta::views::PageAddress;
use crate::notebook::Notebook;

/// The "Save view" form of a page.
#[derive(Debug, Clone)]
pub struct SaveForm {
    /// Path and query of the page.
    pub url: String,
    /// The window the page shows (Unix ns).
    pub start: i64,
    pub end: i64,
    pub token: String,
    /// Whether the page has a time range (offer "keep it relative").
    pub has_range: bool,
    /// Whether the page was opened with a relative range.
    pub relative: bool,
}

/// Request-derived page chrome, taken by every page handler.
pub struct PageChrome {
    url: String,
    /// The token forms carry (the login session's, or the data dir's).
    token: String,
    notebook: Notebook,
    /// False while rendering pinned evidence: that page is a copy and is not saved again.
    live: bool,
}

impl<S> FromRequestParts<S> for PageChrome
where
    WebState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = WebState::from_ref(state);
        let uri = parts
            .extensions
            .get::<OriginalUri>()
            .map(|u| u.0.clone())
            .unwrap_or_else(|| parts.uri.clone());
        let url = uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/".into());
        let token = parts
            .extensions
            .get::<crate::access::FormToken>()
            .map(|t| t.0.clone())
            .unwrap_or_else(|| state.notebook.form_token.to_string());
        Ok(PageChrome {
            url,
            token,
            notebook: state.notebook,
            live: state.live,
        })
    }
}

impl PageChrome {
    /// The Save form for a page showing `[start, end]`, or none for an evidence copy.
    pub fn save_form(&self, start: i64, end: i64) -> Option<SaveForm> {
        if !self.live {
            return None;
        }
        let address = PageAddress::parse(&self.url).ok()?;
        let (kind, query) = (address.kind, address.query);
        let has_range = kind.has_time_range();
        // Absolute bounds win over a relative range, as in `TimeParams::resolve`.
        let absolute = form_urlencoded::parse(query.as_bytes())
            .any(|(k, v)| (k == "from" || k == "to") && !v.trim().is_empty());
        let relative = has_range && !absolute;
        Some(SaveForm {
            url: self.url.clone(),
            start,
            end,
            token: self.token.clone(),
            has_range,
            relative,
        })
    }

    /// Annotations of `[start, end]` (global ones and `service`'s, or all with no service);
    /// empty if the metadata store cannot answer (charts still draw).
    pub async fn annotations(
        &self,
        start: i64,
        end: i64,
        service: Option<&str>,
    ) -> Vec<Annotation> {
        match self
            .notebook
            .annotations(start, end, service.map(str::to_string))
            .await
        {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!("could not read annotations: {e}");
                Vec::new()
            }
        }
    }

    /// Adds annotation markers to `chart`, which spans `[start, end]`.
    pub fn annotate(chart: &mut Chart, annotations: &[Annotation], start: i64, end: i64) {
        for a in annotations {
            let label = match &a.service {
                Some(s) => format!("{} · {s}: {}", super::format::clock(a.time), a.text),
                None => format!("{}: {}", super::format::clock(a.time), a.text),
            };
            chart
                .annotations
                .push((super::charts::x_of(a.time, start, end), label));
        }
    }
}
