//! The web port's one router: the JSON and gRPC query APIs, other tools' APIs, the UI, the
//! login pages, probes and self-metrics, behind the login guard, the time limit and the
//! security headers.

use std::path::PathBuf;

use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;

use crate::access::Access;
use crate::notebook::Notebook;
use crate::query::QueryEngine;

/// Everything the UI/API listener serves.
pub fn app(
    engine: QueryEngine,
    notebook: Notebook,
    alerting: crate::alerting::Alerting,
    access: Access,
    data_dir: PathBuf,
) -> anyhow::Result<Router> {
    let app = crate::api::router(
        engine.clone(),
        notebook.clone(),
        crate::alerting::api::document(),
    )
    .merge(crate::compat::jaeger::router(engine.clone()))
    .merge(crate::compat::prometheus::router(engine.clone()))
    .merge(crate::compat::loki::router(engine.clone()))
    .merge(crate::api::grpc::router(engine.clone())?)
    .merge(crate::alerting::api::router(alerting.clone()))
    .merge(crate::web::router(engine, notebook, alerting))
    .route("/metrics", get(|| async { crate::telemetry::render() }))
    .route("/readyz", get(move || readyz(data_dir.clone())))
    .merge(crate::web::login_router(access.clone()))
    .layer(axum::middleware::from_fn_with_state(
        access,
        crate::access::guard,
    ));
    Ok(crate::hardening::harden(app))
}

/// Ready when the WAL is replayed (it is, once the listeners answer) and the data dir takes
/// writes.
async fn readyz(data_dir: PathBuf) -> (StatusCode, String) {
    let probe = data_dir.join(".readyz");
    match std::fs::write(&probe, b"ok").and_then(|()| std::fs::remove_file(&probe)) {
        Ok(()) => (StatusCode::OK, "ready".into()),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("data dir {} is not writable: {e}", data_dir.display()),
        ),
    }
}
