//! The alerting JSON API: rules (`/api/v1/alert-rules`), the active alerts (`/api/v1/alerts`)
//! and the notification log (`/api/v1/alert-notifications`). A rule is checked before it is
//! stored: a bad one is a 400 naming the field, and the rule store is unchanged.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::rule::RuleSpec;
use super::silence::SilenceSpec;
use super::Alerting;
use crate::api::ApiError;
use crate::meta::alerts::Phase;

/// The alerting routes: the `/api/v1` ones (also in the OpenAPI document, see [`document`])
/// and Prometheus' rules and alerts APIs.
pub fn router(alerting: Alerting) -> Router {
    let (api, _) = api_routes().split_for_parts();
    api.route("/prometheus/api/v1/rules", get(prometheus_rules))
        .route("/prometheus/api/v1/alerts", get(prometheus_alerts))
        .with_state(alerting)
}

/// The `/api/v1` alerting routes with their OpenAPI operations: each handler's
/// `#[utoipa::path]` says its path once, for the router and the document alike.
fn api_routes() -> OpenApiRouter<Alerting> {
    OpenApiRouter::new()
        .routes(routes!(list_rules, create_rule))
        .routes(routes!(get_rule, replace_rule, delete_rule))
        .routes(routes!(rule_values))
        .routes(routes!(active_alerts))
        .routes(routes!(notifications))
        .routes(routes!(list_silences, create_silence))
        .routes(routes!(expire_silence))
}

/// The whole `/api/v1` OpenAPI document: the query and notebook API's
/// ([`crate::api::document`]) with the alerting operations (made once). Served at
/// `/api/v1/openapi.json` and rendered at `/api/docs`.
pub fn document() -> &'static utoipa::openapi::OpenApi {
    static DOCUMENT: std::sync::OnceLock<utoipa::openapi::OpenApi> = std::sync::OnceLock::new();
    DOCUMENT.get_or_init(|| {
        let mut doc = crate::api::document().clone();
        doc.merge(api_routes().into_openapi());
        doc
    })
}

/// Answers every alerting operation may give besides its own.
const BAD: &str = "Bad input, naming the field: `{\"error\": \"…\"}`";

/// A rule body from JSON, checked: the stored text and the rule's name, or a 400 naming the
/// field.
fn checked(
    alerting: &Alerting,
    body: Result<Json<serde_json::Value>, axum::extract::rejection::JsonRejection>,
) -> Result<(String, String), ApiError> {
    let Json(value) = body.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.body_text()))?;
    let spec: RuleSpec = serde_json::from_value(value)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("invalid rule: {e}")))?;
    let rule = alerting
        .check_rule(spec, 0)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.to_string()))?;
    let text = serde_json::to_string(&rule.spec)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.to_string()))?;
    Ok((text, rule.spec.name))
}

/// A stored rule with its alerts, as the API shows it.
async fn shown(
    alerting: &Alerting,
    stored: crate::meta::alerts::StoredRule,
) -> Result<serde_json::Value, ApiError> {
    let states: Vec<_> = alerting
        .meta
        .alert_states()
        .await?
        .into_iter()
        .filter(|s| s.rule_id == stored.id)
        .collect();
    let rule: serde_json::Value = serde_json::from_str(&stored.body).unwrap_or_default();
    Ok(json!({
        "id": stored.id,
        "name": stored.name,
        "rule": rule,
        "created": stored.created,
        "updated": stored.updated,
        "alerts": states,
    }))
}

#[utoipa::path(get, path = "/api/v1/alert-rules", tag = "alerts",
    responses((status = 200, description = "`{rules[{id, name, rule, created, updated, alerts[]}]}`", body = Object)))]
async fn list_rules(State(alerting): State<Alerting>) -> Result<Response, ApiError> {
    let mut out = Vec::new();
    for stored in alerting.meta.alert_rules().await? {
        out.push(shown(&alerting, stored).await?);
    }
    Ok(Json(json!({ "rules": out })).into_response())
}

#[utoipa::path(post, path = "/api/v1/alert-rules", tag = "alerts", request_body = RuleSpec,
    responses((status = 201, description = "The stored rule", body = Object), (status = 400, description = BAD), (status = 409, description = "A rule of that name exists")))]
async fn create_rule(
    State(alerting): State<Alerting>,
    body: Result<Json<serde_json::Value>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let (text, name) = checked(&alerting, body)?;
    let stored = alerting.meta.create_alert_rule(&name, text).await?;
    Ok((StatusCode::CREATED, Json(shown(&alerting, stored).await?)).into_response())
}

#[utoipa::path(get, path = "/api/v1/alert-rules/{id}", tag = "alerts", params(("id" = i64, Path, description = "Rule id")),
    responses((status = 200, description = "The rule, its alerts and `history[{from, to, at, value}]`", body = Object), (status = 404, description = "No such rule")))]
async fn get_rule(
    State(alerting): State<Alerting>,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let stored = alerting.meta.alert_rule(id).await?;
    let history = alerting.meta.alert_history(id, 100).await?;
    let mut body = shown(&alerting, stored).await?;
    body["history"] = json!(history);
    Ok(Json(body).into_response())
}

/// `start`, `end` (any time form the other APIs take; default the last hour) and `step`
/// (seconds; default 60) of a rule's values.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ValuesParams {
    start: Option<String>,
    end: Option<String>,
    step: Option<i64>,
}

/// A rule's values over time — what the evaluator would have seen at each step — with its
/// threshold and the times its alerts fired: `{threshold, below, series[{labels, values[[t,
/// v]]}], firing[{labels, from, to}]}` (times in Unix ns, `to` null while firing).
#[utoipa::path(get, path = "/api/v1/alert-rules/{id}/values", tag = "alerts", params(("id" = i64, Path, description = "Rule id"), ValuesParams),
    responses((status = 200, description = "`{threshold, below, series[{labels, values[[t, v]]}], firing[{labels, from, to}]}`", body = Object), (status = 400, description = BAD), (status = 404, description = "No such rule")))]
async fn rule_values(
    State(alerting): State<Alerting>,
    Path(id): Path<i64>,
    Query(params): Query<ValuesParams>,
) -> Result<Response, ApiError> {
    let bad = |e: String| ApiError::new(StatusCode::BAD_REQUEST, e);
    let window = crate::model::window::Window::from_params(
        params.start.as_deref(),
        params.end.as_deref(),
        3_600_000_000_000,
        crate::model::time::UnixNanos::now(),
    )
    .map_err(|e| bad(e.to_string()))?;
    let step = params.step.unwrap_or(60);
    if step <= 0 {
        return Err(bad(format!(
            "step: must be a number of seconds above 0, not {step}"
        )));
    }
    let rule = alerting
        .rules()
        .await?
        .into_iter()
        .find(|r| r.id == id)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no alert rule {id}")))?;
    let chart = alerting
        .chart(
            &rule,
            window.start(),
            window.end(),
            step.saturating_mul(1_000_000_000),
        )
        .await
        .map_err(bad)?;
    Ok(Json(json!({
        "threshold": chart.threshold,
        "below": rule.below,
        "series": chart.series.iter().map(|(labels, values)| json!({
            "labels": labels,
            "values": values,
        })).collect::<Vec<_>>(),
        "firing": chart.firing.iter().map(|(labels, from, to)| json!({
            "labels": labels, "from": from, "to": to,
        })).collect::<Vec<_>>(),
    }))
    .into_response())
}

#[utoipa::path(put, path = "/api/v1/alert-rules/{id}", tag = "alerts", params(("id" = i64, Path, description = "Rule id")), request_body = RuleSpec,
    responses((status = 200, description = "The replaced rule (its alerts start over)", body = Object), (status = 400, description = BAD), (status = 404, description = "No such rule")))]
async fn replace_rule(
    State(alerting): State<Alerting>,
    Path(id): Path<i64>,
    body: Result<Json<serde_json::Value>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let (text, name) = checked(&alerting, body)?;
    let stored = alerting.meta.replace_alert_rule(id, &name, text).await?;
    Ok(Json(shown(&alerting, stored).await?).into_response())
}

#[utoipa::path(delete, path = "/api/v1/alert-rules/{id}", tag = "alerts", params(("id" = i64, Path, description = "Rule id")),
    responses((status = 204, description = "Deleted"), (status = 404, description = "No such rule")))]
async fn delete_rule(
    State(alerting): State<Alerting>,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    alerting.meta.delete_alert_rule(id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Pending and firing alerts, with their labels, the silences that hold them back, and the
/// page that shows their evidence.
#[utoipa::path(get, path = "/api/v1/alerts", tag = "alerts",
    responses((status = 200, description = "`{alerts[{rule_id, name, labels, state, value, since, fired, silenced_by, generator_url}]}`", body = Object)))]
async fn active_alerts(State(alerting): State<Alerting>) -> Result<Response, ApiError> {
    let rules = alerting.rules().await?;
    let silences = alerting
        .active_silences(crate::model::time::now_ns())
        .await?;
    let mut out = Vec::new();
    for state in alerting.meta.alert_states().await? {
        if !matches!(state.phase, Phase::Pending | Phase::Firing) {
            continue;
        }
        let Some(rule) = rules.iter().find(|r| r.id == state.rule_id) else {
            continue;
        };
        let labels = alerting.labels(rule, &state);
        let silenced_by: Vec<i64> = silences
            .iter()
            .filter(|s| s.matches(&labels))
            .map(|s| s.id)
            .collect();
        out.push(json!({
            "rule_id": rule.id,
            "name": rule.spec.name,
            "labels": labels,
            "silenced_by": silenced_by,
            "state": state.phase,
            "value": state.value,
            "since": state.since,
            "fired": state.fired,
            "generator_url": alerting.evidence_url(rule, &state),
        }));
    }
    Ok(Json(json!({ "alerts": out })).into_response())
}

/// Query string of the notification log.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct LogParams {
    limit: Option<usize>,
}

/// Every notification attempt, newest first.
#[utoipa::path(get, path = "/api/v1/alert-notifications", tag = "alerts", params(LogParams),
    responses((status = 200, description = "`{notifications[{rule_id, group_key, at, status, receiver, attempt, outcome}]}`, newest first", body = Object)))]
async fn notifications(
    State(alerting): State<Alerting>,
    Query(p): Query<LogParams>,
) -> Result<Response, ApiError> {
    let limit = p.limit.unwrap_or(100).clamp(1, 1000);
    Ok(Json(json!({ "notifications": alerting.meta.notifications(limit).await? })).into_response())
}

/// A rule's condition as one line of text (the PromQL itself for metric rules), for tools
/// that show a rule's `query` and for the alerts page.
pub fn condition(rule: &super::rule::Rule) -> String {
    use super::rule::Measure;
    let spec = &rule.spec;
    let side = if rule.below { "<" } else { ">" };
    let service = spec.service.as_deref().unwrap_or_default();
    match &rule.measure {
        Measure::ErrorRate => format!(
            "error_rate{{service=\"{service}\"}}[{}s] {side} {}",
            spec.window_secs, spec.threshold
        ),
        Measure::Latency(q) => format!(
            "latency_ms{{service=\"{service}\", quantile=\"{q}\"}}[{}s] {side} {}",
            spec.window_secs, spec.threshold
        ),
        Measure::LogCount(query) => format!(
            "count_logs({query:?})[{}s] {side} {}",
            spec.window_secs, spec.threshold
        ),
        Measure::Metric(expr) => format!("({expr}) {side} {}", spec.threshold),
        Measure::Absence => format!(
            "silent_seconds{{service=\"{service}\"}} > {}",
            spec.threshold
        ),
    }
}

/// One alert as Prometheus' rules and alerts APIs show it.
fn prometheus_alert(
    alerting: &Alerting,
    rule: &super::rule::Rule,
    state: &crate::meta::alerts::AlertState,
) -> serde_json::Value {
    let labels = alerting.labels(rule, state);
    let annotations: std::collections::BTreeMap<String, String> = rule
        .spec
        .annotations
        .iter()
        .map(|(k, v)| (k.clone(), rule.annotation(v, state.value, &labels)))
        .collect();
    json!({
        "labels": labels,
        "annotations": annotations,
        "state": state.phase.as_str(),
        "activeAt": super::notify::rfc3339(state.fired.unwrap_or(state.since)),
        "value": state.value.map(|v| v.to_string()).unwrap_or_default(),
        "generatorURL": alerting.evidence_url(rule, state),
    })
}

/// `GET /prometheus/api/v1/rules`: the rules in Prometheus' format, so Grafana lists them
/// with their alerts.
async fn prometheus_rules(State(alerting): State<Alerting>) -> Result<Response, ApiError> {
    let rules = alerting.rules().await?;
    let states = alerting.meta.alert_states().await?;
    let listed: Vec<serde_json::Value> = rules
        .iter()
        .map(|rule| {
            let alerts: Vec<serde_json::Value> = states
                .iter()
                .filter(|s| {
                    s.rule_id == rule.id && matches!(s.phase, Phase::Pending | Phase::Firing)
                })
                .map(|s| prometheus_alert(&alerting, rule, s))
                .collect();
            let state = if alerts.iter().any(|a| a["state"] == "firing") {
                "firing"
            } else if alerts.is_empty() {
                "inactive"
            } else {
                "pending"
            };
            json!({
                "name": rule.spec.name,
                "query": condition(rule),
                "duration": rule.spec.for_secs,
                "labels": rule.spec.labels,
                "annotations": rule.spec.annotations,
                "alerts": alerts,
                "health": "ok",
                "state": state,
                "type": "alerting",
            })
        })
        .collect();
    Ok(Json(json!({
        "status": "success",
        "data": { "groups": [{
            "name": "sightline",
            "file": "sightline",
            "interval": alerting.settings.every.as_secs(),
            "rules": listed,
        }]}
    }))
    .into_response())
}

/// `GET /prometheus/api/v1/alerts`: pending and firing alerts in Prometheus' format.
async fn prometheus_alerts(State(alerting): State<Alerting>) -> Result<Response, ApiError> {
    let rules = alerting.rules().await?;
    let alerts: Vec<serde_json::Value> = alerting
        .meta
        .alert_states()
        .await?
        .iter()
        .filter(|s| matches!(s.phase, Phase::Pending | Phase::Firing))
        .filter_map(|s| {
            rules
                .iter()
                .find(|r| r.id == s.rule_id)
                .map(|rule| prometheus_alert(&alerting, rule, s))
        })
        .collect();
    Ok(Json(json!({ "status": "success", "data": { "alerts": alerts } })).into_response())
}

/// Every silence with its status (`active`, `pending` or `expired`), newest first.
#[utoipa::path(get, path = "/api/v1/silences", tag = "alerts",
    responses((status = 200, description = "`{silences[{id, matchers, startsAt, endsAt, createdBy, comment, status{state}}]}`", body = Object)))]
async fn list_silences(State(alerting): State<Alerting>) -> Result<Response, ApiError> {
    let now = crate::model::time::now_ns();
    let listed: Vec<serde_json::Value> = alerting
        .meta
        .silences()
        .await?
        .into_iter()
        .map(|s| {
            let status = if now < s.starts {
                "pending"
            } else if now < s.ends {
                "active"
            } else {
                "expired"
            };
            let matchers: serde_json::Value = serde_json::from_str(&s.matchers).unwrap_or_default();
            json!({
                "id": s.id,
                "matchers": matchers,
                "startsAt": super::notify::rfc3339(s.starts),
                "endsAt": super::notify::rfc3339(s.ends),
                "createdBy": s.created_by,
                "comment": s.comment,
                "status": { "state": status },
            })
        })
        .collect();
    Ok(Json(json!({ "silences": listed })).into_response())
}

/// Creates a silence (Alertmanager's body: `matchers`, `startsAt`, `endsAt`, `createdBy`,
/// `comment`); a bad one is a 400 naming the field.
#[utoipa::path(post, path = "/api/v1/silences", tag = "alerts", request_body = SilenceSpec,
    responses((status = 201, description = "`{silenceID}`", body = Object), (status = 400, description = BAD)))]
async fn create_silence(
    State(alerting): State<Alerting>,
    body: Result<Json<serde_json::Value>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(value) = body.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.body_text()))?;
    let spec: SilenceSpec = serde_json::from_value(value)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("invalid silence: {e}")))?;
    let (matchers, starts, ends, created_by, comment) = spec
        .check(crate::model::time::now_ns())
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e))?;
    let stored = alerting
        .create_silence(matchers, starts, ends, created_by, comment)
        .await?;
    Ok((StatusCode::CREATED, Json(json!({ "silenceID": stored.id }))).into_response())
}

/// Ends a silence now.
#[utoipa::path(delete, path = "/api/v1/silences/{id}", tag = "alerts", params(("id" = i64, Path, description = "Silence id")),
    responses((status = 204, description = "Ended now"), (status = 404, description = "No such silence")))]
async fn expire_silence(
    State(alerting): State<Alerting>,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    alerting.expire_silence(id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
