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
use crate::meta::users::{Role, SessionUser};

/// `/login` and `/logout`, over the server's login state.
pub fn router(access: Access) -> Router {
    Router::new()
        .route("/login", get(login_page).post(login))
        .route("/logout", get(logout_page).post(logout))
        .route("/account", get(account_page))
        .with_state(access)
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    title: String,
    active: &'static str,
    save: Option<SaveForm>,
    /// The signed-in user; none when no users are configured (nobody signs in).
    user: Option<SessionUser>,
    /// What the user's role may do, in words.
    can: &'static str,
}

/// `/account`: who is signed in, what their role allows, and logging out.
async fn account_page(user: Option<Extension<SessionUser>>) -> Response {
    let user = user.map(|Extension(u)| u);
    let can = match user.as_ref().map(|u| u.role) {
        Some(Role::Viewer) => {
            "read every page and API; not save views, write post-mortems or annotate"
        }
        Some(Role::Editor) => "read everything, save views, write post-mortems and annotations",
        Some(Role::Admin) => "everything an editor can, and manage what admins manage",
        None => "everything: no users are configured, so this server asks nobody to sign in",
    };
    let page = AccountPage {
        title: "Account".into(),
        active: "account",
        save: None,
        user,
        can,
    };
    match page.render() {
        Ok(html) => (StatusCode::OK, Html(html)).into_response(),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "page could not be rendered",
        )
            .into_response(),
    }
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
