//! The login and logout pages: forms over [`Access::log_in`] and [`Access::log_out`], so the
//! access middleware itself renders no page.

use askama::Template;
use axum::extract::{Form, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Extension;
use axum::Router;
use serde::Deserialize;

use super::SaveForm;
use crate::access::{Access, ClientAddr, LogIn};

/// `/login` and `/logout`, over the server's login state.
pub fn router(access: Access) -> Router {
    Router::new()
        .route("/login", get(login_page).post(login))
        .route("/logout", get(logout_page).post(logout))
        .with_state(access)
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    title: String,
    active: &'static str,
    save: Option<SaveForm>,
    next: String,
    error: Option<String>,
    enforced: bool,
}

#[derive(Deserialize, Default)]
struct NextParam {
    #[serde(default)]
    next: String,
}

/// Only local paths, so a login link cannot send people elsewhere.
fn safe_next(next: &str) -> String {
    if next.starts_with('/') && !next.starts_with("//") && !next.starts_with("/\\") {
        next.to_string()
    } else {
        "/".into()
    }
}

fn login_html(status: StatusCode, next: &str, error: Option<String>, enforced: bool) -> Response {
    let page = LoginPage {
        title: "Log in".into(),
        active: "",
        save: None,
        next: safe_next(next),
        error,
        enforced,
    };
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "page could not be rendered",
        )
            .into_response(),
    }
}

async fn login_page(State(access): State<Access>, Query(p): Query<NextParam>) -> Response {
    login_html(StatusCode::OK, &p.next, None, access.enforced())
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: String,
}

async fn login(
    State(access): State<Access>,
    Extension(client): Extension<ClientAddr>,
    Form(form): Form<LoginForm>,
) -> Response {
    match access.log_in(client, &form.name, &form.password).await {
        Ok(LogIn::Throttled(throttled)) => login_html(
            StatusCode::TOO_MANY_REQUESTS,
            &form.next,
            Some(throttled.to_string()),
            access.enforced(),
        ),
        Ok(LogIn::Session(cookie)) => {
            let mut response = Redirect::to(&safe_next(&form.next)).into_response();
            response.headers_mut().insert(header::SET_COOKIE, cookie);
            response
        }
        Ok(LogIn::Refused) => login_html(
            StatusCode::UNAUTHORIZED,
            &form.next,
            Some("Wrong name or password.".into()),
            access.enforced(),
        ),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn logout_page(State(access): State<Access>) -> Response {
    login_html(StatusCode::OK, "/", None, access.enforced())
}

async fn logout(State(access): State<Access>, headers: HeaderMap) -> Response {
    let cleared = access.log_out(&headers).await;
    let mut response = Redirect::to("/login").into_response();
    response.headers_mut().insert(header::SET_COOKIE, cleared);
    response
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn a_login_only_sends_people_to_local_paths() {
        assert_eq!(safe_next("/traces?service=a"), "/traces?service=a");
        assert_eq!(safe_next("//evil.example/"), "/");
        assert_eq!(safe_next("/\\evil.example"), "/");
        assert_eq!(safe_next("https://evil.example/"), "/");
        assert_eq!(safe_next(""), "/");
    }
}
