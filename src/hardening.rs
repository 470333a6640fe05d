//! What every UI and query API response gets: security headers (`tower-http`'s
//! `SetResponseHeaderLayer`), and a time limit so one heavy request cannot hold a connection
//! (or the flusher's CPU) forever — answered 503 with a message saying what to narrow, which
//! `tower-http`'s timeout layer (an empty 408) cannot say.

use std::time::{Duration, Instant};

use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use tower_http::set_header::SetResponseHeaderLayer;

/// Longest time a UI page or query may take before it is answered 503.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// No inline script anywhere (the UI loads `/static/app.js`); inline `style` attributes are
/// allowed because charts position bars with them; no framing.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// Puts the security headers on every response of `app` and the time limit and latency
/// metric around every request.
pub fn harden(app: Router) -> Router {
    let set =
        |name, value| SetResponseHeaderLayer::overriding(name, HeaderValue::from_static(value));
    app.layer(axum::middleware::from_fn(time_limit))
        .layer(set(header::CONTENT_SECURITY_POLICY, CSP))
        .layer(set(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .layer(set(header::X_FRAME_OPTIONS, "DENY"))
        .layer(set(header::REFERRER_POLICY, "no-referrer"))
}

/// Enforces [`REQUEST_TIMEOUT`] and records the request's latency.
async fn time_limit(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let response = match tokio::time::timeout(REQUEST_TIMEOUT, next.run(request)).await {
        Ok(response) => response,
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "the request took too long and was stopped; narrow the time range or the query",
        )
            .into_response(),
    };
    crate::telemetry::get()
        .request_seconds
        .observe(started.elapsed().as_secs_f64());
    response
}
