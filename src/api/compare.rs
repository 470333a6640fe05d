//! Comparisons as JSON: two traces, a selection of spans against a baseline, and the canary
//! verdict a deploy script gates on.

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{bad_request, ApiError, Window};
use crate::model::time::parse_time;
use crate::model::TraceId;
use crate::query::canary::CanaryQuestion;
use crate::query::group_compare::{Baseline, GroupQuestion, Selection};
use crate::query::trace_compare::TYPICAL_AROUND_NANO;
use crate::query::{parse_attribute, QueryEngine};

/// The comparison routes, with their OpenAPI operations.
pub(super) fn routes() -> OpenApiRouter<QueryEngine> {
    OpenApiRouter::new()
        .routes(routes!(compare_traces))
        .routes(routes!(compare_groups))
        .routes(routes!(canary))
}

/// Query string of `GET /api/v1/compare/traces`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct TracePairParams {
    /// The first trace (32 hex digits).
    #[param(required = true)]
    a: Option<String>,
    /// The second trace, or `typical`: the trace of A's root operation closest to that
    /// operation's median duration within half an hour of A.
    #[param(required = true)]
    b: Option<String>,
}

/// The values of required parameters, or a 400 naming every one that is missing (a JSON
/// answer like every other error, where axum's own rejection would be plain text).
fn required<const N: usize>(params: [(&str, Option<String>); N]) -> Result<[String; N], ApiError> {
    let missing: Vec<&str> = params
        .iter()
        .filter(|(_, v)| v.as_deref().is_none_or(|v| v.trim().is_empty()))
        .map(|(name, _)| *name)
        .collect();
    if !missing.is_empty() {
        return Err(bad_request(format!(
            "missing parameter{}: {}",
            if missing.len() > 1 { "s" } else { "" },
            missing.join(", ")
        )));
    }
    Ok(params.map(|(_, v)| v.unwrap_or_default().trim().to_string()))
}

/// A trace id parameter, or a 400 naming it.
fn trace_param(name: &str, text: &str) -> Result<TraceId, ApiError> {
    text.parse()
        .map_err(|e| bad_request(format!("{name}: invalid trace id {text:?}: {e}")))
}

#[utoipa::path(get, path = "/api/v1/compare/traces", tag = "compare", params(TracePairParams),
    responses((status = 200, description = "`{a, b, duration_delta_nano, spans[{depth, service, operation, ordinal, presence, a, b, duration_delta_nano, self_delta_nano}], only_in_a, only_in_b, explaining[]}`: the two span trees aligned by (service, operation, position among siblings); `explaining` indexes the spans whose self time changed most", body = Object),
        (status = 400, description = "Bad input: `{\"error\": \"…\"}`"), (status = 404, description = "A trace is not stored, or no typical trace exists")))]
async fn compare_traces(
    State(engine): State<QueryEngine>,
    Query(p): Query<TracePairParams>,
) -> Result<Response, ApiError> {
    let [a, b] = required([("a", p.a), ("b", p.b)])?;
    let a = trace_param("a", &a)?;
    let b = match b.as_str() {
        "typical" => engine
            .typical_trace(a, TYPICAL_AROUND_NANO)
            .await?
            .ok_or_else(|| {
                ApiError(
                    axum::http::StatusCode::NOT_FOUND,
                    format!(
                        "no other trace of trace {a}'s root operation within half an hour of it"
                    ),
                )
            })?,
        text => trace_param("b", text)?,
    };
    Ok(Json(engine.compare_traces(a, b).await?).into_response())
}

/// Query string of `GET /api/v1/compare/groups`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct GroupParams {
    /// The population: spans of this service (default: all).
    pub service: Option<String>,
    /// … and this operation.
    pub operation: Option<String>,
    /// The window (default: the last hour).
    pub start: Option<String>,
    pub end: Option<String>,
    /// Select failed spans (the selection when no other is given: "what is different about
    /// the failing requests?").
    #[serde(default)]
    pub errors: bool,
    pub min_duration_ms: Option<f64>,
    pub max_duration_ms: Option<f64>,
    /// Select spans carrying `key=value`.
    pub attribute: Option<String>,
    /// Select spans started in this part of the window.
    pub from: Option<String>,
    pub to: Option<String>,
    /// Compare with the population in this window instead of the rest of the selection's.
    pub baseline_start: Option<String>,
    pub baseline_end: Option<String>,
}

impl GroupParams {
    /// The question, or a 400 naming the parameter.
    pub(crate) fn question(self) -> Result<GroupQuestion, ApiError> {
        let (start, end, _) = Window {
            start: self.start,
            end: self.end,
        }
        .resolve()?;
        let time = |name: &str, t: Option<String>| {
            t.filter(|t| !t.trim().is_empty())
                .map(|t| parse_time(&t).map_err(|e| bad_request(format!("{name}: {e}"))))
                .transpose()
        };
        let ms = |name: &str, v: Option<f64>| match v {
            Some(v) if !v.is_finite() || v < 0.0 => {
                Err(bad_request(format!("{name} must be a duration in ms ≥ 0")))
            }
            other => Ok(other.map(|v| (v * 1e6) as i64)),
        };
        let baseline = match (
            time("baseline_start", self.baseline_start)?,
            time("baseline_end", self.baseline_end)?,
        ) {
            (None, None) => Baseline::Rest,
            (Some(start), Some(end)) => Baseline::Window { start, end },
            _ => {
                return Err(bad_request(
                    "baseline_start and baseline_end go together (or neither, for the rest of the window)",
                ))
            }
        };
        let mut selection = Selection {
            errors: self.errors,
            min_duration_nano: ms("min_duration_ms", self.min_duration_ms)?,
            max_duration_nano: ms("max_duration_ms", self.max_duration_ms)?,
            attribute: parse_attribute(self.attribute.as_deref().unwrap_or(""))
                .map_err(|e| bad_request(format!("attribute: {e}")))?,
            from: time("from", self.from)?,
            to: time("to", self.to)?,
        };
        if selection.is_empty() {
            selection.errors = true;
        }
        Ok(GroupQuestion {
            service: self.service.filter(|s| !s.is_empty()),
            operation: self.operation.filter(|s| !s.is_empty()),
            start,
            end,
            selection,
            baseline,
        })
    }
}

#[utoipa::path(get, path = "/api/v1/compare/groups", tag = "compare", params(GroupParams),
    responses((status = 200, description = "`{selection_spans, baseline_spans, spans_read, ranked[{key, value, selection_count, baseline_count, selection_share, baseline_share, difference, z}], describes_selection[], skipped_keys[], operations[]}`: every attribute value ranked by how much more often selected spans carry it than baseline spans", body = Object),
        (status = 400, description = "Bad input (an empty selection, an inverted window): `{\"error\": \"…\"}`"), (status = 404, description = "Nothing matches the selection, or the baseline is empty")))]
async fn compare_groups(
    State(engine): State<QueryEngine>,
    Query(p): Query<GroupParams>,
) -> Result<Response, ApiError> {
    let question = p.question()?;
    Ok(Json(engine.compare_groups(&question).await?).into_response())
}

/// Query string of `GET /api/v1/canary`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct CanaryParams {
    #[param(required = true)]
    service: Option<String>,
    /// The version in service now.
    #[param(required = true)]
    baseline: Option<String>,
    /// The new version.
    #[param(required = true)]
    canary: Option<String>,
    /// The window (default: the last hour).
    start: Option<String>,
    end: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/canary", tag = "compare", params(CanaryParams),
    responses((status = 200, description = "`{service, start, end, baseline, canary, metrics[{metric, baseline, canary, z, p_value, effect, outcome, weight, contribution, reason}], score, verdict, reasons[], evidence[{label, href}]}`: verdict `pass`, `marginal` or `fail`; score 0–100", body = Object),
        (status = 400, description = "Bad input: `{\"error\": \"…\"}`"), (status = 404, description = "Unknown service, or a version without requests in the window")))]
async fn canary(
    State(engine): State<QueryEngine>,
    Query(p): Query<CanaryParams>,
) -> Result<Response, ApiError> {
    let (start, end, _) = Window {
        start: p.start,
        end: p.end,
    }
    .resolve()?;
    let [service, baseline, canary] = required([
        ("service", p.service),
        ("baseline", p.baseline),
        ("canary", p.canary),
    ])?;
    let question = CanaryQuestion {
        service,
        baseline,
        canary,
        start,
        end,
    };
    let report = engine.canary(&question).await?;
    let evidence = crate::query::canary::evidence_links(&report);
    let mut body = serde_json::to_value(&report).map_err(|e| bad_request(e.to_string()))?;
    body["evidence"] = serde_json::json!(evidence
        .iter()
        .map(|(label, href)| serde_json::json!({ "label": label, "href": href }))
        .collect::<Vec<_>>());
    Ok(Json(body).into_response())
}
