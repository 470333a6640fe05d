//! Who may use the UI and query API. With no user configured everything is open (and the
//! server stays on loopback, see `server::check_exposure`); from the first user on
//! (`sightline user add`), every page and API call needs a login session — or, for scripts
//! calling the API, HTTP Basic credentials — and the role decides: viewers read, editors also
//! change saved views, post-mortems and annotations, admins also manage users, keys and
//! retention (today through the CLI).
//!
//! Sessions are `HttpOnly`, `SameSite=Strict` cookies; every HTML form carries the session's
//! own token ([`FormToken`]), checked by `web::forms`.
//!
//! This room is middleware: it knows requests, sessions and roles, and no page. The login and
//! logout pages live in `web::login_page` and act through [`Access::log_in`] and
//! [`Access::log_out`].

use std::net::{IpAddr, Ipv4Addr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use axum_extra::headers::authorization::Basic;
use axum_extra::headers::{Authorization, HeaderMapExt};
use cookie::time;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use moka::sync::Cache;
use sha2::{Digest, Sha256};

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

/// Password checks one client address may make per minute (HTTP Basic credentials not
/// checked recently, and login forms), with as many at once. Each check is an argon2 hash of
/// 19 MiB and tens of milliseconds: unlimited, they are a way to exhaust the server and to
/// guess passwords; past this the client is answered 429 before anything is hashed.
pub const PASSWORD_CHECKS_PER_MINUTE: u32 = 10;

/// How long HTTP Basic credentials that were checked stay trusted without hashing again, so
/// a script calling the API with them costs one hash per this long, not one per call. A
/// changed password or a removed user stops HTTP Basic within this time (sessions at once).
const BASIC_TRUSTED_FOR: Duration = Duration::from_secs(30);

/// The address a request came from: the server's listeners record it per connection
/// (`ConnectInfo<ClientAddr>`), and [`guard`] puts it on every request for the login page's
/// password limit (unspecified when a router is served without connection info).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub IpAddr);

/// A login refused before the password was checked: the address used up its checks.
#[derive(Debug, thiserror::Error)]
#[error(
    "too many password checks from {0}: at most {PASSWORD_CHECKS_PER_MINUTE} a minute; \
     wait a minute and try again"
)]
pub struct TooManyPasswordChecks(pub IpAddr);

/// How a login form ended.
#[derive(Debug)]
pub enum LogIn {
    /// A session was opened: the `Set-Cookie` value that carries it.
    Session(HeaderValue),
    /// No such user, or the wrong password.
    Refused,
    /// Not checked: the address used up its password checks.
    Throttled(TooManyPasswordChecks),
}

/// Login state shared by the middleware and the login pages.
#[derive(Clone)]
pub struct Access {
    meta: MetaStore,
    open_token: Arc<str>,
    users_exist: Arc<AtomicBool>,
    /// The UI is served over TLS: session cookies get `Secure`.
    secure: bool,
    /// Password checks left per client address.
    password_checks: Arc<DefaultKeyedRateLimiter<IpAddr>>,
    /// HTTP Basic credentials checked lately, by the SHA-256 of `name:password`.
    basic_trusted: Cache<[u8; 32], SessionUser>,
}

impl Access {
    /// Starts watching whether users exist (users added while running apply within seconds).
    pub async fn start(
        meta: MetaStore,
        open_token: Arc<str>,
        secure: bool,
    ) -> anyhow::Result<Access> {
        let users_exist = Arc::new(AtomicBool::new(meta.has_users().await?));
        let per_minute = NonZeroU32::new(PASSWORD_CHECKS_PER_MINUTE).unwrap_or(NonZeroU32::MIN);
        let access = Access {
            meta: meta.clone(),
            open_token,
            users_exist: users_exist.clone(),
            secure,
            password_checks: Arc::new(RateLimiter::keyed(Quota::per_minute(per_minute))),
            basic_trusted: Cache::builder()
                .max_capacity(1_000)
                .time_to_live(BASIC_TRUSTED_FOR)
                .build(),
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

    /// Checks a name and password from `client` and, if they are right, opens a session.
    pub async fn log_in(
        &self,
        client: ClientAddr,
        name: &str,
        password: &str,
    ) -> anyhow::Result<LogIn> {
        if self.password_checks.check_key(&client.0).is_err() {
            return Ok(LogIn::Throttled(TooManyPasswordChecks(client.0)));
        }
        let Some(user) = self.meta.verify_password(name, password).await? else {
            return Ok(LogIn::Refused);
        };
        let token = self.meta.create_session(&user.name).await?;
        let max_age = time::Duration::seconds(SESSION_LENGTH.as_secs() as i64);
        let cookie = session_cookie(token, max_age, self.secure);
        Ok(LogIn::Session(HeaderValue::from_str(&cookie.to_string())?))
    }

    /// Ends the session the request's cookie names, if any: the `Set-Cookie` value that clears
    /// the cookie in the browser.
    pub async fn log_out(&self, headers: &HeaderMap) -> HeaderValue {
        if let Some(token) = cookie(headers) {
            // A session that cannot be deleted expires on its own; the cookie goes regardless.
            let _ = self.meta.end_session(&token).await;
        }
        let cleared = session_cookie(String::new(), time::Duration::ZERO, self.secure);
        HeaderValue::from_str(&cleared.to_string())
            .unwrap_or_else(|_| HeaderValue::from_static("sightline_session=; Path=/; Max-Age=0"))
    }

    /// The user a request acts as: its session cookie's, or (API calls only) its HTTP Basic
    /// credentials', checked at most [`PASSWORD_CHECKS_PER_MINUTE`] times a minute per client.
    async fn user_of(
        &self,
        headers: &HeaderMap,
        api: bool,
        client: ClientAddr,
    ) -> Result<Option<SessionUser>, TooManyPasswordChecks> {
        if let Some(token) = cookie(headers) {
            if let Ok(Some(user)) = self.meta.session(&token).await {
                return Ok(Some(user));
            }
        }
        if !api {
            return Ok(None);
        }
        let Some((name, password)) = basic_credentials(headers) else {
            return Ok(None);
        };
        let key: [u8; 32] = Sha256::digest(format!("{name}:{password}")).into();
        if let Some(user) = self.basic_trusted.get(&key) {
            return Ok(Some(user));
        }
        if self.password_checks.check_key(&client.0).is_err() {
            return Err(TooManyPasswordChecks(client.0));
        }
        let Ok(Some(user)) = self.meta.verify_password(&name, &password).await else {
            return Ok(None);
        };
        let user = SessionUser {
            name: user.name,
            role: user.role,
            // Basic-auth calls post JSON, never forms.
            csrf: String::new(),
        };
        self.basic_trusted.insert(key, user.clone());
        Ok(Some(user))
    }
}

/// The name and password of an `Authorization: Basic …` header.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let Authorization(basic) = headers.typed_get::<Authorization<Basic>>()?;
    Some((basic.username().to_string(), basic.password().to_string()))
}

/// gRPC query and reflection calls: reads, answered with gRPC statuses rather than pages.
pub fn is_grpc_read(path: &str) -> bool {
    path.starts_with("/sightline.v1.QueryService/") || path.starts_with("/grpc.reflection.")
}

/// Paths anyone may reach: probes, self-metrics, static files and the login itself.
fn public(path: &str) -> bool {
    matches!(
        path,
        "/healthz" | "/readyz" | "/metrics" | "/login" | "/logout"
    ) || path.starts_with("/static/")
}

/// The session token of the request's cookie, if any.
fn cookie(headers: &HeaderMap) -> Option<String> {
    CookieJar::from_headers(headers)
        .get(COOKIE)
        .map(|c| c.value().to_string())
}

/// The session cookie carrying `token` (empty and expired to clear it).
fn session_cookie(token: String, max_age: time::Duration, secure: bool) -> Cookie<'static> {
    Cookie::build((COOKIE, token))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .max_age(max_age)
        .secure(secure)
        .build()
}

/// The middleware in front of the UI and API.
pub async fn guard(State(access): State<Access>, mut request: Request, next: Next) -> Response {
    let client = request
        .extensions()
        .get::<ConnectInfo<ClientAddr>>()
        .map_or(ClientAddr(IpAddr::V4(Ipv4Addr::UNSPECIFIED)), |c| c.0);
    request.extensions_mut().insert(client);
    let path = request.uri().path().to_string();
    if !access.enforced() || public(&path) {
        request
            .extensions_mut()
            .insert(FormToken(access.open_token.to_string()));
        return next.run(request).await;
    }
    let grpc = is_grpc_read(&path);
    let api = path.starts_with("/api/")
        || path.starts_with("/prometheus/")
        || path.starts_with("/loki/")
        || grpc;
    let user = match access.user_of(request.headers(), api, client).await {
        Ok(user) => user,
        Err(throttled) => {
            return if grpc {
                tonic::Status::resource_exhausted(throttled.to_string())
                    .into_http::<axum::body::Body>()
                    .into_response()
            } else {
                (
                    StatusCode::TOO_MANY_REQUESTS,
                    [(header::RETRY_AFTER, "60")],
                    axum::Json(serde_json::json!({ "error": throttled.to_string() })),
                )
                    .into_response()
            };
        }
    };
    let Some(user) = user else {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn the_session_cookie_is_found_among_others_and_written_locked_down() {
        let h = headers(&[("cookie", "theme=dark; sightline_session=abc123; x=1")]);
        assert_eq!(cookie(&h).as_deref(), Some("abc123"));
        assert_eq!(
            cookie(&headers(&[("cookie", "sightline_sessionx=no")])),
            None
        );
        let written = session_cookie("t0k".into(), time::Duration::seconds(60), true).to_string();
        for part in [
            "sightline_session=t0k",
            "HttpOnly",
            "SameSite=Strict",
            "Path=/",
            "Max-Age=60",
            "Secure",
        ] {
            assert!(written.contains(part), "{written} lacks {part}");
        }
        let plain = session_cookie("t".into(), time::Duration::ZERO, false).to_string();
        assert!(
            plain.contains("Max-Age=0") && !plain.contains("Secure"),
            "{plain}"
        );
    }

    #[test]
    fn basic_credentials_are_read_and_malformed_ones_ignored() {
        // "ops:pa:ss" — a password may hold colons.
        let h = headers(&[("authorization", "Basic b3BzOnBhOnNz")]);
        assert_eq!(
            basic_credentials(&h),
            Some(("ops".to_string(), "pa:ss".to_string()))
        );
        for bad in ["Basic !!!", "Bearer abc", "Basic bm9jb2xvbg=="] {
            assert_eq!(
                basic_credentials(&headers(&[("authorization", bad)])),
                None,
                "{bad}"
            );
        }
    }

    #[test]
    fn only_probes_static_files_and_the_login_are_public() {
        for path in [
            "/healthz",
            "/readyz",
            "/metrics",
            "/login",
            "/logout",
            "/static/app.js",
        ] {
            assert!(public(path), "{path}");
        }
        for path in ["/", "/logs", "/api/v1/services", "/loginx", "/static"] {
            assert!(!public(path), "{path}");
        }
        assert!(is_grpc_read("/sightline.v1.QueryService/SearchLogs"));
        assert!(is_grpc_read(
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"
        ));
        assert!(!is_grpc_read("/api/v1/logs"));
    }

    #[test]
    fn a_refusal_names_the_address_and_the_limit() {
        let text = TooManyPasswordChecks(IpAddr::V4(Ipv4Addr::LOCALHOST)).to_string();
        assert!(
            text.contains("127.0.0.1") && text.contains("10 a minute"),
            "{text}"
        );
    }
}
