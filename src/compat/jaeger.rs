//! The Jaeger query HTTP API (what Jaeger UI and Grafana's Jaeger data source call), over
//! the one query layer: `/api/services`, `/api/services/{service}/operations`,
//! `/api/operations`, `/api/traces`, `/api/traces/{id}`, `/api/dependencies`, answering in
//! Jaeger's JSON model (`{"data": …, "total", "limit", "offset", "errors"}`; spans with
//! `references`, `processes`, typed `tags`, `logs`; times in microseconds).
//!
//! Operations are the span names the rollups know for a service (server and consumer spans,
//! and the calls it makes to other services) over the last 7 days.

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::model::time::now_ns;
use crate::model::LiftedKey;
use crate::model::{SpanRow, TraceId};
use crate::query::{QueryEngine, QueryError, TraceSearch};
use crate::rollup::RollupCell;

/// The routes.
pub fn router(engine: QueryEngine) -> Router {
    Router::new()
        .route("/api/services", get(services))
        .route(
            "/api/services/{service}/operations",
            get(service_operations),
        )
        .route("/api/operations", get(operations))
        .route("/api/traces", get(search))
        .route("/api/traces/{id}", get(trace))
        .route("/api/dependencies", get(dependencies))
        .with_state(engine)
}

const WEEK_NANO: i64 = 7 * 24 * 3600 * 1_000_000_000;

/// Jaeger's envelope.
fn envelope(data: Value, total: usize) -> Json<Value> {
    Json(json!({"data": data, "total": total, "limit": 0, "offset": 0, "errors": null}))
}

/// Jaeger's error shape.
fn error(status: StatusCode, message: impl Into<String>) -> Response {
    let message = message.into();
    (
        status,
        Json(json!({"data": null, "total": 0, "limit": 0, "offset": 0,
                    "errors": [{"code": status.as_u16(), "msg": message}]})),
    )
        .into_response()
}

fn query_error(e: QueryError) -> Response {
    match e {
        QueryError::BadRequest(m) => error(StatusCode::BAD_REQUEST, m),
        QueryError::TooLarge(m) => error(StatusCode::PAYLOAD_TOO_LARGE, m),
        QueryError::NotFound(m) => error(StatusCode::NOT_FOUND, m),
        other => error(StatusCode::INTERNAL_SERVER_ERROR, other.to_string()),
    }
}

async fn services(State(engine): State<QueryEngine>) -> Response {
    let names: Vec<String> = engine.services().into_iter().map(|s| s.name).collect();
    let n = names.len();
    envelope(json!(names), n).into_response()
}

/// Operation names and span kinds of a service, from the last week's rollups.
async fn operations_of(
    engine: &QueryEngine,
    service: &str,
) -> Result<BTreeSet<(String, String)>, QueryError> {
    let end = now_ns();
    let rollups = engine.rollups(end - WEEK_NANO, end).await?;
    let mut ops = BTreeSet::new();
    for r in rollups.iter().filter(|r| r.service == service) {
        match &r.cell {
            RollupCell::Red {
                operation,
                span_kind,
                ..
            } => {
                ops.insert((operation.clone(), span_kind.as_str().to_ascii_lowercase()));
            }
            RollupCell::Edge { callee, kind } => {
                ops.insert((format!("{} {callee}", kind.as_str()), "client".into()));
            }
            _ => {}
        }
    }
    Ok(ops)
}

async fn service_operations(
    State(engine): State<QueryEngine>,
    Path(service): Path<String>,
) -> Response {
    match operations_of(&engine, &service).await {
        Ok(ops) => {
            let names: BTreeSet<String> = ops.into_iter().map(|(n, _)| n).collect();
            let n = names.len();
            envelope(json!(names), n).into_response()
        }
        Err(e) => query_error(e),
    }
}

/// Query of `/api/operations`.
#[derive(Deserialize)]
struct OperationsParams {
    service: Option<String>,
    #[serde(rename = "spanKind")]
    span_kind: Option<String>,
}

async fn operations(
    State(engine): State<QueryEngine>,
    Query(p): Query<OperationsParams>,
) -> Response {
    let Some(service) = p.service.filter(|s| !s.is_empty()) else {
        return error(StatusCode::BAD_REQUEST, "parameter 'service' is required");
    };
    match operations_of(&engine, &service).await {
        Ok(ops) => {
            let list: Vec<Value> = ops
                .into_iter()
                .filter(|(_, kind)| {
                    p.span_kind
                        .as_deref()
                        .is_none_or(|k| k.is_empty() || k == kind)
                })
                .map(|(name, kind)| json!({"name": name, "spanKind": kind}))
                .collect();
            let n = list.len();
            envelope(json!(list), n).into_response()
        }
        Err(e) => query_error(e),
    }
}

/// Query of `/api/traces`, as Jaeger UI and Grafana send it.
#[derive(Deserialize, Default)]
struct SearchParams {
    service: Option<String>,
    operation: Option<String>,
    /// JSON object of tag filters, e.g. `{"http.status_code":"500"}`.
    tags: Option<String>,
    /// Microseconds.
    start: Option<i64>,
    end: Option<i64>,
    #[serde(rename = "minDuration")]
    min_duration: Option<String>,
    #[serde(rename = "maxDuration")]
    max_duration: Option<String>,
    limit: Option<usize>,
}

/// Jaeger durations: `1.2s`, `100ms`, `500us`, `2m`, `1h`.
fn parse_duration(text: &str) -> Result<i64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("invalid duration {text:?}: use e.g. 1.2s, 100ms, 500us"))?;
    let per = match unit {
        "ns" => 1.0,
        "us" | "µs" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        "m" => 60e9,
        "h" => 3600e9,
        _ => {
            return Err(format!(
                "invalid duration unit in {text:?}: use ns, us, ms, s, m or h"
            ))
        }
    };
    Ok((value * per) as i64)
}

async fn search(State(engine): State<QueryEngine>, Query(p): Query<SearchParams>) -> Response {
    let Some(service) = p.service.clone().filter(|s| !s.is_empty()) else {
        return error(StatusCode::BAD_REQUEST, "parameter 'service' is required");
    };
    let tags: BTreeMap<String, String> = match p.tags.as_deref().filter(|t| !t.is_empty()) {
        None => BTreeMap::new(),
        Some(text) => match serde_json::from_str::<BTreeMap<String, Value>>(text) {
            Ok(map) => map
                .into_iter()
                .map(|(k, v)| {
                    let v = match v {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    (k, v)
                })
                .collect(),
            Err(e) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("malformed 'tags' parameter, expecting a JSON object: {e}"),
                )
            }
        },
    };
    let duration = |d: &Option<String>| {
        d.as_deref()
            .filter(|s| !s.is_empty())
            .map(parse_duration)
            .transpose()
    };
    let (min, max) = match (duration(&p.min_duration), duration(&p.max_duration)) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => return error(StatusCode::BAD_REQUEST, e),
    };
    // `error=true` is Jaeger's way of asking for failed traces.
    let status = match tags.get("error").map(String::as_str) {
        Some("true") => Some(crate::query::StatusFilter::Error),
        _ => None,
    };
    let mut attributes = tags.iter().filter(|(k, _)| k.as_str() != "error");
    let search = TraceSearch {
        service: Some(service),
        operation: p.operation.clone().filter(|o| !o.is_empty() && o != "all"),
        status,
        min_duration_nano: min,
        max_duration_nano: max,
        attribute: attributes.next().map(|(k, v)| (k.clone(), v.clone())),
        trace_id: None,
        correlation_id: None,
        start: p.start.map(|us| us.saturating_mul(1000)),
        end: p.end.map(|us| us.saturating_mul(1000)),
        limit: p.limit.unwrap_or(20).clamp(1, 1500),
    };
    let extra: Vec<(String, String)> = attributes.map(|(k, v)| (k.clone(), v.clone())).collect();
    let summaries = match engine.search_traces(&search).await {
        Ok(s) => s,
        Err(e) => return query_error(e),
    };
    let mut traces = Vec::new();
    for s in summaries {
        match engine.trace(s.trace_id).await {
            Ok(Some(detail)) => {
                // Further tags: some span of the trace must carry each.
                let all_match = extra.iter().all(|(k, v)| {
                    detail
                        .spans
                        .iter()
                        .any(|span| tag_value(span, k).as_deref() == Some(v))
                });
                if all_match {
                    traces.push(jaeger_trace(s.trace_id, &detail.spans));
                }
            }
            Ok(None) => {}
            Err(e) => return query_error(e),
        }
    }
    let n = traces.len();
    envelope(json!(traces), n).into_response()
}

fn tag_value(span: &SpanRow, key: &str) -> Option<String> {
    span.attributes.get(key).map(|v| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    })
}

async fn trace(State(engine): State<QueryEngine>, Path(id): Path<String>) -> Response {
    let trace_id: TraceId = match id.parse() {
        Ok(t) => t,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("invalid trace id {id:?}: {e}"),
            )
        }
    };
    match engine.trace(trace_id).await {
        Ok(Some(detail)) => {
            envelope(json!([jaeger_trace(trace_id, &detail.spans)]), 1).into_response()
        }
        Ok(None) => error(StatusCode::NOT_FOUND, "trace not found"),
        Err(e) => query_error(e),
    }
}

/// A Jaeger tag from a JSON attribute value.
fn tag(key: &str, value: &Value) -> Value {
    match value {
        Value::Bool(b) => json!({"key": key, "type": "bool", "value": b}),
        Value::Number(n) if n.is_i64() || n.is_u64() => {
            json!({"key": key, "type": "int64", "value": n})
        }
        Value::Number(n) => json!({"key": key, "type": "float64", "value": n}),
        Value::String(s) => json!({"key": key, "type": "string", "value": s}),
        other => json!({"key": key, "type": "string", "value": other.to_string()}),
    }
}

/// One trace in Jaeger's model: spans with references and tags, one process per resource.
fn jaeger_trace(trace_id: TraceId, spans: &[SpanRow]) -> Value {
    let mut processes: BTreeMap<String, Value> = BTreeMap::new();
    let mut process_of: Vec<(&crate::model::Resource, String)> = Vec::new();
    let mut out = Vec::new();
    for s in spans {
        let r = &*s.resource;
        let pid = match process_of.iter().find(|(res, _)| *res == r) {
            Some((_, id)) => id.clone(),
            None => {
                let id = format!("p{}", process_of.len() + 1);
                let mut tags: Vec<Value> = r.attributes.iter().map(|(k, v)| tag(k, v)).collect();
                // The service name is the process's own field; the other lifted keys are tags.
                for k in LiftedKey::ALL
                    .into_iter()
                    .filter(|k| *k != LiftedKey::ServiceName)
                {
                    let v = r.lifted(k);
                    if !v.is_empty() {
                        tags.push(json!({"key": k.key(), "type": "string", "value": v}));
                    }
                }
                processes.insert(
                    id.clone(),
                    json!({"serviceName": r.service_name, "tags": tags}),
                );
                process_of.push((r, id.clone()));
                id
            }
        };
        let mut references: Vec<Value> = s
            .parent_span_id
            .iter()
            .map(|p| json!({"refType": "CHILD_OF", "traceID": trace_id.to_hex(), "spanID": p.to_hex()}))
            .collect();
        references.extend(s.links.iter().map(|l| {
            json!({"refType": "FOLLOWS_FROM", "traceID": l.trace_id.to_hex(), "spanID": l.span_id.to_hex()})
        }));
        let mut tags: Vec<Value> = s.attributes.iter().map(|(k, v)| tag(k, v)).collect();
        tags.push(
            json!({"key": "span.kind", "type": "string", "value": s.kind.as_str().to_ascii_lowercase()}),
        );
        if s.is_error() {
            tags.push(json!({"key": "error", "type": "bool", "value": true}));
            if !s.status_message.is_empty() {
                tags.push(json!({"key": "otel.status_description", "type": "string", "value": s.status_message}));
            }
        }
        let logs: Vec<Value> = s
            .events
            .iter()
            .map(|e| {
                let mut fields = vec![json!({"key": "event", "type": "string", "value": e.name})];
                fields.extend(e.attributes.iter().map(|(k, v)| tag(k, v)));
                json!({"timestamp": e.time_unix_nano / 1000, "fields": fields})
            })
            .collect();
        out.push(json!({
            "traceID": trace_id.to_hex(),
            "spanID": s.span_id.to_hex(),
            "flags": 1,
            "operationName": s.name,
            "references": references,
            "startTime": s.start_time_unix_nano / 1000,
            "duration": s.duration_nano / 1000,
            "tags": tags,
            "logs": logs,
            "processID": pid,
            "warnings": null,
        }));
    }
    json!({"traceID": trace_id.to_hex(), "spans": out, "processes": processes, "warnings": null})
}

/// Query of `/api/dependencies`: `endTs` and `lookback` in milliseconds.
#[derive(Deserialize)]
struct DependencyParams {
    #[serde(rename = "endTs")]
    end_ts: Option<i64>,
    lookback: Option<i64>,
}

async fn dependencies(
    State(engine): State<QueryEngine>,
    Query(p): Query<DependencyParams>,
) -> Response {
    let now = now_ns();
    let end = p
        .end_ts
        .map(|ms| ms.saturating_mul(1_000_000))
        .unwrap_or(now);
    let lookback = p
        .lookback
        .map(|ms| ms.saturating_mul(1_000_000))
        .unwrap_or(WEEK_NANO);
    match engine
        .service_map(end.saturating_sub(lookback), end, now)
        .await
    {
        Ok(map) => {
            let links: Vec<Value> = map
                .edges
                .iter()
                .map(|e| json!({"parent": e.caller, "child": e.callee, "callCount": e.calls}))
                .collect();
            let n = links.len();
            envelope(json!(links), n).into_response()
        }
        Err(e) => query_error(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jaeger_durations() {
        assert_eq!(parse_duration("1.5s").unwrap(), 1_500_000_000);
        assert_eq!(parse_duration("100ms").unwrap(), 100_000_000);
        assert_eq!(parse_duration("500us").unwrap(), 500_000);
        assert!(parse_duration("5 parsecs").is_err());
    }
}
