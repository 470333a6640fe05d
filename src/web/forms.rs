//! HTML form posts: their fields, the token that proves the form came from one of our pages
//! (so another site cannot make a visitor's browser change saved views), and the answers.

use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

use super::message;
use crate::access::FormToken;
use crate::evidence::PinError;
use crate::meta::MetaError;
use crate::notebook::Notebook;

/// The fields of a posted form, in order (repeated names allowed), and the token this request
/// must carry (the login session's; empty when no login is configured).
pub struct FormFields(Vec<(String, String)>, String);

impl<S: Send + Sync> FromRequest<S> for FormFields {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Response> {
        let expected = req
            .extensions()
            .get::<FormToken>()
            .map(|t| t.0.clone())
            .unwrap_or_default();
        match axum::Form::<Vec<(String, String)>>::from_request(req, state).await {
            Ok(axum::Form(fields)) => Ok(FormFields(fields, expected)),
            Err(e) => Err(message(
                StatusCode::BAD_REQUEST,
                "Bad form",
                format!("The form could not be read: {}", e.body_text()),
            )),
        }
    }
}

impl FormFields {
    /// The first value of `name`, or "".
    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }

    /// Whether the form has a field `name` at all.
    pub fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(k, _)| k == name)
    }

    /// Whether a checkbox `name` was ticked.
    pub fn checked(&self, name: &str) -> bool {
        !self.get(name).is_empty()
    }

    /// Checks the form token; a missing or wrong one is answered 403.
    pub fn check_token(&self, notebook: &Notebook) -> Result<(), Box<Response>> {
        let expected = if self.1.is_empty() {
            &*notebook.form_token
        } else {
            self.1.as_str()
        };
        if !expected.is_empty() && self.get("token") == expected {
            Ok(())
        } else {
            Err(Box::new(message(
                StatusCode::FORBIDDEN,
                "Form refused",
                "This form did not come from a Sightline page (or is from before a reset of \
                 this data dir). Reload the page and submit it again.",
            )))
        }
    }
}

/// The token a page's forms carry: the login session's, or the data dir's without logins.
pub struct PageToken(pub String);

impl<S> axum::extract::FromRequestParts<S> for PageToken
where
    super::WebState: axum::extract::FromRef<S>,
    S: Send + Sync,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(PageToken(match parts.extensions.get::<FormToken>() {
            Some(t) => t.0.clone(),
            None => {
                use axum::extract::FromRef;
                super::WebState::from_ref(state)
                    .notebook
                    .form_token
                    .to_string()
            }
        }))
    }
}

/// The page that says why a change was refused.
pub fn meta_error(e: MetaError) -> Response {
    match e {
        MetaError::Invalid(m) => message(StatusCode::BAD_REQUEST, "Not saved", m),
        MetaError::NotFound(m) => message(StatusCode::NOT_FOUND, "Not found", m),
        MetaError::Conflict(m) => message(StatusCode::CONFLICT, "Not saved", m),
        busy @ MetaError::Busy(_) => message(
            StatusCode::SERVICE_UNAVAILABLE,
            "Not saved",
            format!("{busy}; try again in a moment"),
        ),
        other => {
            tracing::error!("metadata store failed: {other}");
            message(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Not saved",
                other.to_string(),
            )
        }
    }
}

/// The page that says why pinning (or saving with a pin) failed.
pub fn pin_error(e: PinError) -> Response {
    match e {
        PinError::Meta(m) => meta_error(m),
        PinError::Query(crate::query::QueryError::BadRequest(m)) => {
            message(StatusCode::BAD_REQUEST, "Not saved", m)
        }
        PinError::Query(crate::query::QueryError::TooLarge(m)) => {
            message(StatusCode::PAYLOAD_TOO_LARGE, "Not pinned", m)
        }
        PinError::NothingToPin(m) => message(StatusCode::NOT_FOUND, "Not pinned", m),
        other => message(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Not pinned",
            other.to_string(),
        ),
    }
}

/// After a successful post: go to `to` (303, so a reload does not post again).
pub fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_refusal_has_its_status() {
        let status = |e: MetaError| meta_error(e).status();
        assert_eq!(
            status(MetaError::Invalid("x".into())),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            status(MetaError::NotFound("x".into())),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            status(MetaError::Conflict("x".into())),
            StatusCode::CONFLICT
        );
        assert_eq!(
            status(MetaError::Task("x".into())),
            StatusCode::INTERNAL_SERVER_ERROR
        );
        let pin_status = |e: PinError| pin_error(e).status();
        assert_eq!(
            pin_status(PinError::NothingToPin("gone".into())),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            pin_status(PinError::Query(crate::query::QueryError::TooLarge(
                "2 000 001 rows".into()
            ))),
            StatusCode::PAYLOAD_TOO_LARGE
        );
        assert_eq!(
            pin_status(PinError::Meta(MetaError::Conflict("pinning".into()))),
            StatusCode::CONFLICT
        );
        assert_eq!(see_other("/views/1").status(), StatusCode::SEE_OTHER);
    }
}
