//! An alert rule: the JSON body the API and rule files take, and its checked form. Every
//! problem is refused naming the field (`kind`, `window_secs`, `query`, `receivers[1].webhook`,
//! …), so no rule is stored that could never fire.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::query::log_query;

/// The rule as written (JSON body, or one entry of a rules file).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    pub name: String,
    /// `error_rate`, `latency`, `log_count`, `metric` or `absence`.
    pub kind: String,
    /// The service a RED or absence rule watches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// Narrow an error-rate or latency rule to one operation, instance or version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// `p50`, `p90`, `p95` or `p99` (latency rules; default p95).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percentile: Option<String>,
    /// A log query in Sightline's language (log_count rules).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// A PromQL expression (metric rules).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expr: Option<String>,
    /// `above` (default) or `below`: which side of the threshold fires (log_count, metric).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<String>,
    /// Error rate 0–1, latency in ms, a count, a metric value; seconds of silence for
    /// absence rules (defaults to `window_secs`).
    #[serde(default)]
    pub threshold: f64,
    /// How far back each evaluation looks (default 60 s).
    #[serde(default = "default_window")]
    pub window_secs: i64,
    /// How long the condition must hold before the alert fires (default 0: at once).
    #[serde(default)]
    pub for_secs: i64,
    /// `instance` or `version`: one alert per value instead of one for the service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_by: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// `summary`, `description`, …; `{{ $value }}` and `{{ $labels.KEY }}` are filled in.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    #[serde(default)]
    pub receivers: Vec<Receiver>,
}

fn default_window() -> i64 {
    60
}

/// Where notifications go.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Receiver {
    /// POST the Alertmanager webhook payload (version 4) to this URL.
    Webhook(String),
    /// POST a Slack-compatible `{"text": …}` to this URL.
    Slack(String),
    /// Mail to this address (SMTP settings from the server's configuration).
    Email(String),
}

impl Receiver {
    /// The address, as the notification log shows it.
    pub fn address(&self) -> &str {
        match self {
            Receiver::Webhook(a) | Receiver::Slack(a) | Receiver::Email(a) => a,
        }
    }
}

/// What a rule measures.
#[derive(Debug, Clone, PartialEq)]
pub enum Measure {
    /// Errors / requests of the service's server spans over the window.
    ErrorRate,
    /// A percentile (0–1) of the service's request latency, in ms.
    Latency(f64),
    /// Log records matching the query over the window.
    LogCount(String),
    /// A PromQL expression's value, one per series.
    Metric(String),
    /// Seconds since the service (or each instance) last sent anything.
    Absence,
}

/// A checked rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub id: i64,
    pub spec: RuleSpec,
    pub measure: Measure,
    /// Fire below the threshold instead of above.
    pub below: bool,
    pub group_by: Option<GroupBy>,
}

/// What one alert per value is made for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    Instance,
    Version,
}

impl GroupBy {
    /// The label the group's value goes under.
    pub fn label(self) -> &'static str {
        match self {
            GroupBy::Instance => "instance",
            GroupBy::Version => "version",
        }
    }
}

/// Longest window a rule may look back over: a day.
const MAX_WINDOW_SECS: i64 = 86_400;

/// A rule refused, naming the field.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{field}: {problem}")]
pub struct RuleError {
    pub field: String,
    pub problem: String,
}

fn refuse<T>(field: &str, problem: impl Into<String>) -> Result<T, RuleError> {
    Err(RuleError {
        field: field.to_string(),
        problem: problem.into(),
    })
}

impl RuleSpec {
    /// Checks the rule; `id` is the stored rule's (0 before it is stored).
    pub fn check(self, id: i64) -> Result<Rule, RuleError> {
        if self.name.trim().is_empty() {
            return refuse("name", "a rule needs a name");
        }
        if self.window_secs <= 0 || self.window_secs > MAX_WINDOW_SECS {
            return refuse(
                "window_secs",
                format!(
                    "must be 1 to {MAX_WINDOW_SECS} seconds, not {}",
                    self.window_secs
                ),
            );
        }
        if self.for_secs < 0 || self.for_secs > MAX_WINDOW_SECS {
            return refuse(
                "for_secs",
                format!(
                    "must be 0 to {MAX_WINDOW_SECS} seconds, not {}",
                    self.for_secs
                ),
            );
        }
        if !self.threshold.is_finite() {
            return refuse("threshold", "must be a finite number");
        }
        let needs_service = |spec: &RuleSpec| match spec.service.as_deref().map(str::trim) {
            Some(s) if !s.is_empty() => Ok(()),
            _ => refuse(
                "service",
                format!("a {} rule watches one service", spec.kind),
            ),
        };
        let measure = match self.kind.as_str() {
            "error_rate" => {
                needs_service(&self)?;
                if !(0.0..=1.0).contains(&self.threshold) {
                    return refuse("threshold", "an error rate is between 0 and 1");
                }
                Measure::ErrorRate
            }
            "latency" => {
                needs_service(&self)?;
                let q = match self.percentile.as_deref().unwrap_or("p95") {
                    "p50" => 0.5,
                    "p90" => 0.9,
                    "p95" => 0.95,
                    "p99" => 0.99,
                    other => {
                        return refuse("percentile", format!("p50, p90, p95 or p99, not {other:?}"))
                    }
                };
                if self.threshold <= 0.0 {
                    return refuse("threshold", "a latency threshold is a number of ms above 0");
                }
                Measure::Latency(q)
            }
            "log_count" => {
                let query = self.query.clone().unwrap_or_default();
                if query.trim().is_empty() {
                    return refuse("query", "a log_count rule needs a log query");
                }
                log_query::parse(&query).map_err(|e| RuleError {
                    field: "query".into(),
                    problem: e.0,
                })?;
                Measure::LogCount(query)
            }
            "metric" => {
                let expr = self.expr.clone().unwrap_or_default();
                if expr.trim().is_empty() {
                    return refuse("expr", "a metric rule needs a PromQL expression");
                }
                promql_parser::parser::parse(&expr).map_err(|e| RuleError {
                    field: "expr".into(),
                    problem: e.to_string(),
                })?;
                Measure::Metric(expr)
            }
            "absence" => {
                needs_service(&self)?;
                Measure::Absence
            }
            other => {
                return refuse(
                    "kind",
                    format!(
                        "unknown kind {other:?} (error_rate, latency, log_count, metric, absence)"
                    ),
                )
            }
        };
        let below = match self.when.as_deref().unwrap_or("above") {
            "above" => false,
            "below" => true,
            other => return refuse("when", format!("above or below, not {other:?}")),
        };
        let group_by = match self.group_by.as_deref() {
            None | Some("") => None,
            Some("instance") => Some(GroupBy::Instance),
            Some("version") => Some(GroupBy::Version),
            Some(other) => {
                return refuse("group_by", format!("instance or version, not {other:?}"))
            }
        };
        if group_by.is_some() && matches!(measure, Measure::LogCount(_) | Measure::Metric(_)) {
            return refuse(
                "group_by",
                "log_count rules count one query; metric rules fire per series already",
            );
        }
        for (i, receiver) in self.receivers.iter().enumerate() {
            match receiver {
                Receiver::Webhook(url) | Receiver::Slack(url) => {
                    let field = format!(
                        "receivers[{i}].{}",
                        if matches!(receiver, Receiver::Webhook(_)) {
                            "webhook"
                        } else {
                            "slack"
                        }
                    );
                    match reqwest::Url::parse(url) {
                        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
                        Ok(u) => {
                            return refuse(
                                &field,
                                format!("scheme must be http or https, not {:?}", u.scheme()),
                            )
                        }
                        Err(e) => return refuse(&field, format!("not a URL: {e}")),
                    }
                }
                Receiver::Email(address) => {
                    let ok = address
                        .split_once('@')
                        .is_some_and(|(user, host)| !user.is_empty() && host.contains('.'));
                    if !ok {
                        return refuse(
                            &format!("receivers[{i}].email"),
                            format!("{address:?} is not an email address"),
                        );
                    }
                }
            }
        }
        Ok(Rule {
            id,
            measure,
            below,
            group_by,
            spec: self,
        })
    }
}

impl Rule {
    /// Whether `value` breaks the rule.
    pub fn breached(&self, value: f64) -> bool {
        match self.measure {
            // Silence is measured in seconds; without a threshold the window is the limit.
            Measure::Absence => {
                let limit = if self.spec.threshold > 0.0 {
                    self.spec.threshold
                } else {
                    self.spec.window_secs as f64
                };
                value > limit
            }
            _ if self.below => value < self.spec.threshold,
            _ => value > self.spec.threshold,
        }
    }

    /// An annotation with `{{ $value }}` and `{{ $labels.KEY }}` filled in.
    pub fn annotation(
        &self,
        text: &str,
        value: Option<f64>,
        labels: &BTreeMap<String, String>,
    ) -> String {
        let mut out = text.replace(
            "{{ $value }}",
            &value.map(|v| format!("{v:.4}")).unwrap_or_default(),
        );
        for (k, v) in labels {
            out = out.replace(&format!("{{{{ $labels.{k} }}}}"), v);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> Result<Rule, String> {
        serde_json::from_str::<RuleSpec>(json)
            .map_err(|e| e.to_string())?
            .check(0)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn the_issue_example_is_a_rule() {
        let rule = spec(
            r#"{"name": "payment errors", "kind": "error_rate", "service": "payment", "threshold": 0.05,
                "window_secs": 60, "for_secs": 0, "labels": {"team": "pay"},
                "receivers": [{"webhook": "http://127.0.0.1:9/hook"}, {"email": "ops@example.com"}]}"#,
        )
        .unwrap();
        assert_eq!(rule.measure, Measure::ErrorRate);
        assert!(rule.breached(0.06) && !rule.breached(0.05));
    }

    #[test]
    fn bad_rules_name_the_field() {
        let cases = [
            (r#"{"name": "x", "kind": "nope"}"#, "kind: unknown kind"),
            (
                r#"{"name": "x", "kind": "error_rate", "service": "a", "window_secs": -5}"#,
                "window_secs:",
            ),
            (
                r#"{"name": "x", "kind": "log_count", "query": "service:(payment"}"#,
                "query:",
            ),
            (
                r#"{"name": "x", "kind": "metric", "expr": "rate(x[5m]"}"#,
                "expr:",
            ),
            (r#"{"name": "x", "kind": "error_rate"}"#, "service:"),
            (
                r#"{"name": "x", "kind": "latency", "service": "a", "threshold": 10, "percentile": "p42"}"#,
                "percentile:",
            ),
            (
                r#"{"name": "x", "kind": "absence", "service": "a", "receivers": [{"webhook": "ftp://h/x"}]}"#,
                "receivers[0].webhook: scheme must be http or https",
            ),
            (
                r#"{"name": "x", "kind": "absence", "service": "a", "receivers": [{"email": "nobody"}]}"#,
                "receivers[0].email:",
            ),
            (
                r#"{"name": "x", "kind": "absence", "service": "a", "group_by": "host"}"#,
                "group_by:",
            ),
            (
                r#"{"name": "x", "kind": "absence", "service": "a", "colour": "red"}"#,
                "unknown field `colour`",
            ),
        ];
        for (json, want) in cases {
            let got = spec(json).unwrap_err();
            assert!(got.contains(want), "{json}: {got}");
        }
    }

    #[test]
    fn placeholders_are_filled_in() {
        let rule = spec(r#"{"name": "x", "kind": "absence", "service": "a"}"#).unwrap();
        let labels = BTreeMap::from([("instance".to_string(), "a-1".to_string())]);
        assert_eq!(
            rule.annotation(
                "{{ $labels.instance }} silent for {{ $value }} s",
                Some(75.0),
                &labels
            ),
            "a-1 silent for 75.0000 s"
        );
        // Absence: silence beyond the window (no threshold given) breaks the rule.
        assert!(rule.breached(61.0) && !rule.breached(59.0));
    }
}
