//! Who may use the UI and query API. With no user configured everything is open (and the
//! server stays on loopback, see `server::check_exposure`); from the first user on
//! (`sightline user add`), every page and API call needs a login session — or, for scripts
//! calling the API, HTTP Basic credentials — and the role decides: viewers read, editors also
//! change saved views, post-mortems and annotations, admins also manage users, keys and
//! retention (today through the CLI).
//!
//! Sessions are `HttpOnly`, `SameSite=Strict` cookies; every HTML form carries the session's
//! own token ([`FormToken`]), checked by `web::forms`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use askama::Template;
use axum::extract::{Form, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use base64::Engine;
use serde::Deserialize;

use crate::meta::users::{Role, SessionUser, SESSION_LENGTH};
use crate::meta::MetaStore;

/// The token the forms of this request must carry: the session's, or the data dir's when
/// no login is configured.
#[derive(Debug, Clone)]
pub struct FormToken(pub String);

/// Name of the session cookie.
const COOKIE: &str = "sightline_session";

/// How often the "are there users?" answer is refreshed.
const REFRESH_EVERY: Duration = Duration::from_secs(2);

/// Login state shared by the middleware and the login pages.
#[derive(Clone)]
pub struct Access {
    meta: MetaStore,
    open_token: Arc<str>,
    users_exist: Arc<AtomicBool>,
    /// The UI is served over TLS: session cookies get `Secure`.
    secure: bool,
}

impl Access {
    /// Starts watching whether users exist (users added while running apply within seconds).
    pub async fn start(
        meta: MetaStore,
        open_token: Arc<str>,
        secure: bool,
    ) -> anyhow::Result<Access> {
        let users_exist = Arc::new(AtomicBool::new(meta.has_users().await?));
        let access = Access {
            meta: meta.clone(),
            open_token,
            users_exist: users_exist.clone(),
            secure,
        };
        let weak = Arc::downgrade(&users_exist);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(REFRESH_EVERY).await;
                let Some(flag) = weak.upgrade() else { return };
                if let Ok(exists) = meta.has_users().await {
                    flag.store(exists, Ordering::Relaxed);
                }
            }
        });
        Ok(access)
    }

    /// Whether a login is required.
    pub fn enforced(&self) -> bool {
        self.users_exist.load(Ordering::Relaxed)
    }

    /// The login and logout pages.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/login", get(login_page).post(login))
            .route("/logout", get(logout_page).post(logout))
            .with_state(self.clone())
    }

    async fn user_of(&self, headers: &HeaderMap, api: bool) -> Option<SessionUser> {
        if let Some(token) = cookie(headers) {
            if let Ok(Some(user)) = self.meta.session(&token).await {
                return Some(user);
            }
        }
        if !api {
            return None;
        }
        let basic = headers
            .get(header::AUTHORIZATION)?
            .to_str()
            .ok()?
            .strip_prefix("Basic ")?;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(basic.trim())
            .ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (name, password) = text.split_once(':')?;
        let user = self.meta.verify_password(name, password).await.ok()??;
        Some(SessionUser {
            name: user.name,
            role: user.role,
            // Basic-auth calls post JSON, never forms.
            csrf: String::new(),
        })
    }
}

/// Paths anyone may reach: probes, self-metrics, static files and the login itself.
fn public(path: &str) -> bool {
    matches!(
        path,
        "/healthz" | "/readyz" | "/metrics" | "/login" | "/logout"
    ) || path.starts_with("/static/")
}

fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|kv| {
            kv.trim()
                .strip_prefix(&format!("{COOKIE}="))
                .map(str::to_string)
        })
}

/// The middleware in front of the UI and API.
pub async fn guard(State(access): State<Access>, mut request: Request, next: Next) -> Response {
    let path = request.uri().path().to_string();
    if !access.enforced() || public(&path) {
        request
            .extensions_mut()
            .insert(FormToken(access.open_token.to_string()));
        return next.run(request).await;
    }
    let grpc = crate::api::grpc::is_grpc_read(&path);
    let api = path.starts_with("/api/")
        || path.starts_with("/prometheus/")
        || path.starts_with("/loki/")
        || grpc;
    let Some(user) = access.user_of(request.headers(), api).await else {
        if grpc {
            // gRPC clients read the status from trailers-only responses, not HTTP codes.
            return tonic::Status::unauthenticated(
                "log in: HTTP Basic credentials are required in the authorization metadata",
            )
            .into_http::<axum::body::Body>()
            .into_response();
        }
        if api {
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Basic realm=\"sightline\"")],
                axum::Json(serde_json::json!({"error": "log in: a session cookie or HTTP Basic credentials are required"})),
            )
                .into_response();
        }
        let next_url = request
            .uri()
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/".into());
        let mut ser = form_urlencoded::Serializer::new(String::new());
        ser.append_pair("next", &next_url);
        return Redirect::to(&format!("/login?{}", ser.finish())).into_response();
    };
    let reads = matches!(*request.method(), Method::GET | Method::HEAD)
        // Prometheus clients POST queries as forms; gRPC calls are all POSTs.
        || grpc
        || (request.method() == Method::POST && path.starts_with("/prometheus/api/v1/"));
    let needed = if reads { Role::Viewer } else { Role::Editor };
    if user.role < needed {
        let message = format!(
            "{} is a {}; this needs an {} (ask an admin)",
            user.name,
            user.role.as_str(),
            needed.as_str()
        );
        return if api {
            (
                StatusCode::FORBIDDEN,
                axum::Json(serde_json::json!({ "error": message })),
            )
                .into_response()
        } else {
            (StatusCode::FORBIDDEN, message).into_response()
        };
    }
    request
        .extensions_mut()
        .insert(FormToken(user.csrf.clone()));
    request.extensions_mut().insert(user);
    next.run(request).await
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    title: String,
    active: &'static str,
    save: Option<crate::web::SaveForm>,
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

async fn login(State(access): State<Access>, Form(form): Form<LoginForm>) -> Response {
    match access
        .meta
        .verify_password(&form.name, &form.password)
        .await
    {
        Ok(Some(user)) => match access.meta.create_session(&user.name).await {
            Ok(token) => {
                let cookie = format!(
                    "{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
                    SESSION_LENGTH.as_secs(),
                    if access.secure { "; Secure" } else { "" }
                );
                let mut response = Redirect::to(&safe_next(&form.next)).into_response();
                if let Ok(v) = HeaderValue::from_str(&cookie) {
                    response.headers_mut().insert(header::SET_COOKIE, v);
                }
                response
            }
            Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
        },
        Ok(None) => login_html(
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
    if let Some(token) = cookie(&headers) {
        let _ = access.meta.end_session(&token).await;
    }
    let mut response = Redirect::to("/login").into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static(
            "sightline_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0",
        ),
    );
    response
}
