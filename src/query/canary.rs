//! The canary verdict: is a new version of a service worse than the one it replaces?
//!
//! Read from the per-minute RED rollups of the two versions (requests, errors and the
//! latency sketch of every request the service served), as Spinnaker's Kayenta judges a
//! canary: each metric is compared with a one-sided test ("is the canary worse?") and an
//! effect size, classed pass / marginal / fail, and weighted into a score of 0–100.
//!
//! | metric | test | fail | marginal |
//! |---|---|---|---|
//! | error rate (weight 50) | two-proportion z | p < 0.01 and the rate is higher by more than the tolerance | p < 0.05 and higher by more than the tolerance |
//! | latency (weight 50) | Mann–Whitney U | p < 0.01 and superiority ≥ 0.64 | p < 0.05 and superiority ≥ 0.56 |
//!
//! The error-rate tolerance is max(0.5 percentage points, a quarter of the baseline's rate);
//! 0.56 and 0.64 are Vargha and Delaney's "small" and "medium" effects. A metric that passes
//! adds its whole weight, a marginal one half, a failing one nothing. Both metrics are
//! critical: one failing fails the canary whatever the score. Otherwise a score of at least
//! [`PASS_SCORE`] passes and anything lower is marginal. Volume is a sanity check, not a
//! metric: with fewer than [`MIN_REQUESTS`] requests on either side a canary that failed
//! nothing is `marginal`, with the reason (a failure found on little traffic still fails).

use serde::Serialize;

use super::services::RedAcc;
use super::stats::{mann_whitney, two_proportion};
use super::{QueryEngine, QueryError};
use crate::rollup::latency::LatencyHistogram;
use crate::rollup::RollupCell;

/// Fewest requests each version needs before a canary can pass.
pub const MIN_REQUESTS: u64 = 50;
/// Lowest score that passes (when no metric failed).
pub const PASS_SCORE: f64 = 80.0;

/// How one metric, or the whole canary, came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Pass,
    Marginal,
    Fail,
}

impl Outcome {
    /// The name the API and the pages show.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Marginal => "marginal",
            Outcome::Fail => "fail",
        }
    }

    /// The share of a metric's weight this outcome earns.
    fn credit(self) -> f64 {
        match self {
            Outcome::Pass => 1.0,
            Outcome::Marginal => 0.5,
            Outcome::Fail => 0.0,
        }
    }
}

/// One version's figures over the window.
#[derive(Debug, Clone, Serialize)]
pub struct VersionFigures {
    pub version: String,
    pub requests: u64,
    pub errors: u64,
    pub error_rate: f64,
    pub p50_nano: Option<i64>,
    pub p95_nano: Option<i64>,
    pub p99_nano: Option<i64>,
}

/// One compared metric: both sides, the test, the outcome and what it added to the score.
#[derive(Debug, Clone, Serialize)]
pub struct MetricVerdict {
    /// `error_rate` or `latency`.
    pub metric: &'static str,
    pub baseline: f64,
    pub canary: f64,
    /// The test's statistic (z) and one-sided p-value of "the canary is worse".
    pub z: f64,
    pub p_value: f64,
    /// The effect: the rate difference (error rate), or the probability that a canary
    /// request is slower than a baseline one (latency, 0.5 = no difference).
    pub effect: f64,
    pub outcome: Outcome,
    pub weight: f64,
    /// Points this metric added to the score.
    pub contribution: f64,
    /// The outcome in words, with the numbers.
    pub reason: String,
}

/// The verdict on a canary version against a baseline version of one service.
#[derive(Debug, Clone, Serialize)]
pub struct CanaryReport {
    pub service: String,
    pub start: i64,
    pub end: i64,
    pub baseline: VersionFigures,
    pub canary: VersionFigures,
    pub metrics: Vec<MetricVerdict>,
    /// 0–100: the sum of the metrics' contributions.
    pub score: f64,
    pub verdict: Outcome,
    /// Why the verdict is what it is, one sentence per finding.
    pub reasons: Vec<String>,
}

/// What a canary question asks.
#[derive(Debug, Clone)]
pub struct CanaryQuestion {
    pub service: String,
    pub baseline: String,
    pub canary: String,
    pub start: i64,
    pub end: i64,
}

/// One version's rollups summed.
#[derive(Default)]
struct Side {
    acc: RedAcc,
    latency: LatencyHistogram,
}

impl QueryEngine {
    /// Judges `question.canary` against `question.baseline`. A bad question (the same
    /// version twice, an inverted window, an unknown service or a version without requests
    /// in the window) is `BadRequest` or `NotFound` with the reason.
    pub async fn canary(&self, question: &CanaryQuestion) -> Result<CanaryReport, QueryError> {
        let q = question;
        if q.end <= q.start {
            return Err(QueryError::BadRequest(format!(
                "the window ends before it starts (start {} > end {})",
                q.start, q.end
            )));
        }
        if q.baseline == q.canary {
            return Err(QueryError::BadRequest(format!(
                "baseline and canary are the same version ({:?}); name two versions",
                q.canary
            )));
        }
        if !self.services().iter().any(|s| s.name == q.service) {
            return Err(QueryError::NotFound(format!(
                "no service named {:?} has sent data",
                q.service
            )));
        }
        let rollups = self.rollups(q.start, q.end).await?;
        let (mut base, mut canary) = (Side::default(), Side::default());
        let mut seen_versions = std::collections::BTreeSet::new();
        for r in rollups.iter().filter(|r| r.service == q.service) {
            let RollupCell::Red { version, .. } = &r.cell else {
                continue;
            };
            seen_versions.insert(version.as_str());
            let side = if *version == q.baseline {
                &mut base
            } else if *version == q.canary {
                &mut canary
            } else {
                continue;
            };
            side.acc.add(r);
            side.latency.merge(&r.latency);
        }
        let window = q.end - q.start;
        let figures = |version: &str, side: &Side| {
            let red = side.acc.finish(window);
            VersionFigures {
                version: version.to_string(),
                requests: red.requests,
                errors: red.errors,
                error_rate: red.error_rate,
                p50_nano: red.p50_nano,
                p95_nano: red.p95_nano,
                p99_nano: red.p99_nano,
            }
        };
        let (baseline, canary_figures) = (figures(&q.baseline, &base), figures(&q.canary, &canary));
        for side in [&baseline, &canary_figures] {
            if side.requests == 0 {
                return Err(QueryError::NotFound(format!(
                    "{} {} served no requests in this window (versions seen: {})",
                    q.service,
                    side.version,
                    if seen_versions.is_empty() {
                        "none".to_string()
                    } else {
                        seen_versions.into_iter().collect::<Vec<_>>().join(", ")
                    }
                )));
            }
        }
        let metrics = vec![
            error_rate_verdict(&baseline, &canary_figures),
            latency_verdict(&base.latency, &canary.latency),
        ];
        Ok(judge(q, baseline, canary_figures, metrics))
    }
}

/// The error-rate metric (weight 50).
fn error_rate_verdict(base: &VersionFigures, canary: &VersionFigures) -> MetricVerdict {
    let test = two_proportion(base.errors, base.requests, canary.errors, canary.requests);
    let effect = canary.error_rate - base.error_rate;
    let tolerance = (base.error_rate * 0.25).max(0.005);
    let worse = effect > tolerance;
    let outcome = match test.p_value {
        p if worse && p < 0.01 => Outcome::Fail,
        p if worse && p < 0.05 => Outcome::Marginal,
        _ => Outcome::Pass,
    };
    let pct = |r: f64| format!("{:.2} %", r * 100.0);
    let reason = format!(
        "error rate {} ({} of {}) against {} ({} of {}): {} by {:.2} points, p = {:.2e}",
        pct(canary.error_rate),
        canary.errors,
        canary.requests,
        pct(base.error_rate),
        base.errors,
        base.requests,
        if effect > 0.0 { "higher" } else { "not higher" },
        effect.abs() * 100.0,
        test.p_value
    );
    metric(
        "error_rate",
        base.error_rate,
        canary.error_rate,
        test.z,
        test.p_value,
        effect,
        outcome,
        reason,
    )
}

/// The latency metric (weight 50).
fn latency_verdict(base: &LatencyHistogram, canary: &LatencyHistogram) -> MetricVerdict {
    let median = |h: &LatencyHistogram| h.quantile(0.5).unwrap_or(0) as f64;
    let (b, c) = (median(base), median(canary));
    let Some(test) = mann_whitney(base, canary) else {
        return metric(
            "latency",
            b,
            c,
            0.0,
            0.5,
            0.5,
            Outcome::Pass,
            "no latencies to compare".into(),
        );
    };
    let outcome = match (test.p_value, test.superiority) {
        (p, s) if p < 0.01 && s >= 0.64 => Outcome::Fail,
        (p, s) if p < 0.05 && s >= 0.56 => Outcome::Marginal,
        _ => Outcome::Pass,
    };
    let reason = format!(
        "median {:.1} ms against {:.1} ms; a canary request is slower than a baseline one {:.0} % of the time (50 % = no difference), Mann–Whitney p = {:.2e}",
        c / 1e6,
        b / 1e6,
        test.superiority * 100.0,
        test.p_value
    );
    metric(
        "latency",
        b,
        c,
        test.z,
        test.p_value,
        test.superiority,
        outcome,
        reason,
    )
}

#[allow(clippy::too_many_arguments)]
fn metric(
    name: &'static str,
    baseline: f64,
    canary: f64,
    z: f64,
    p_value: f64,
    effect: f64,
    outcome: Outcome,
    reason: String,
) -> MetricVerdict {
    const WEIGHT: f64 = 50.0;
    MetricVerdict {
        metric: name,
        baseline,
        canary,
        z,
        p_value,
        effect,
        outcome,
        weight: WEIGHT,
        contribution: WEIGHT * outcome.credit(),
        reason,
    }
}

/// The score and verdict from the metrics and the volume check.
fn judge(
    q: &CanaryQuestion,
    baseline: VersionFigures,
    canary: VersionFigures,
    metrics: Vec<MetricVerdict>,
) -> CanaryReport {
    let score = metrics.iter().map(|m| m.contribution).sum::<f64>();
    let mut reasons: Vec<String> = metrics
        .iter()
        .filter(|m| m.outcome != Outcome::Pass)
        .map(|m| format!("{}: {}", m.outcome.as_str(), m.reason))
        .collect();
    let failed = metrics.iter().any(|m| m.outcome == Outcome::Fail);
    let thin: Vec<String> = [&baseline, &canary]
        .iter()
        .filter(|v| v.requests < MIN_REQUESTS)
        .map(|v| {
            format!(
                "too little traffic: {} served {} requests, at least {MIN_REQUESTS} are needed for a verdict",
                v.version, v.requests
            )
        })
        .collect();
    let verdict = if failed {
        Outcome::Fail
    } else if !thin.is_empty() || score < PASS_SCORE {
        Outcome::Marginal
    } else {
        Outcome::Pass
    };
    reasons.extend(thin);
    if reasons.is_empty() {
        reasons.push(format!(
            "{} is no worse than {} in error rate or latency",
            canary.version, baseline.version
        ));
    }
    CanaryReport {
        service: q.service.clone(),
        start: q.start,
        end: q.end,
        baseline,
        canary,
        metrics,
        score,
        verdict,
        reasons,
    }
}

/// The pages that show the records behind a verdict (label, path with query), for every
/// front end to link to: each version's failed traces and slowest traces, and the service
/// page, all over the verdict's window.
pub fn evidence_links(report: &CanaryReport) -> Vec<(String, String)> {
    let link = |path: &str, pairs: &[(&str, &str)]| {
        crate::meta::views::url_with_window(path, pairs, report.start, report.end)
    };
    let service = report.service.as_str();
    let mut links = Vec::new();
    for v in [&report.canary, &report.baseline] {
        let attribute = format!("service.version={}", v.version);
        links.push((
            format!("failed traces of {service} {}", v.version),
            link(
                "/traces",
                &[
                    ("service", service),
                    ("attr", &attribute),
                    ("status", "error"),
                ],
            ),
        ));
        links.push((
            format!("traces of {service} {}", v.version),
            link("/traces", &[("service", service), ("attr", &attribute)]),
        ));
    }
    let segment =
        percent_encoding::utf8_percent_encode(service, percent_encoding::NON_ALPHANUMERIC);
    links.push((
        format!("{service}: versions side by side"),
        link(&format!("/services/{segment}"), &[]),
    ));
    links
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures(version: &str, requests: u64, errors: u64) -> VersionFigures {
        VersionFigures {
            version: version.into(),
            requests,
            errors,
            error_rate: errors as f64 / requests as f64,
            p50_nano: None,
            p95_nano: None,
            p99_nano: None,
        }
    }

    fn sketch(ms: impl Iterator<Item = i64>) -> LatencyHistogram {
        let mut h = LatencyHistogram::default();
        ms.for_each(|d| h.add(d * 1_000_000));
        h
    }

    fn question() -> CanaryQuestion {
        CanaryQuestion {
            service: "payment".into(),
            baseline: "1".into(),
            canary: "2".into(),
            start: 0,
            end: 60_000_000_000,
        }
    }

    fn verdict(
        base: VersionFigures,
        canary: VersionFigures,
        lat: (&LatencyHistogram, &LatencyHistogram),
    ) -> CanaryReport {
        let metrics = vec![
            error_rate_verdict(&base, &canary),
            latency_verdict(lat.0, lat.1),
        ];
        judge(&question(), base, canary, metrics)
    }

    #[test]
    fn worse_errors_or_latency_fail_the_same_pass_little_traffic_is_marginal() {
        let normal = sketch((0..1000).map(|i| 20 + i % 10));
        let slow = sketch((0..1000).map(|i| 40 + i % 10));
        let same = verdict(
            figures("1", 1000, 10),
            figures("2", 1000, 11),
            (&normal, &normal),
        );
        assert_eq!(
            (same.verdict, same.score),
            (Outcome::Pass, 100.0),
            "{same:?}"
        );

        let errors = verdict(
            figures("1", 1000, 10),
            figures("2", 1000, 80),
            (&normal, &normal),
        );
        assert_eq!(errors.verdict, Outcome::Fail, "{errors:?}");
        assert_eq!(errors.score, 50.0);
        assert!(
            errors.reasons[0].starts_with("fail: error rate 8.00 %"),
            "{:?}",
            errors.reasons
        );

        let latency = verdict(
            figures("1", 1000, 10),
            figures("2", 1000, 10),
            (&normal, &slow),
        );
        assert_eq!(latency.verdict, Outcome::Fail, "{latency:?}");
        assert_eq!(latency.metrics[1].outcome, Outcome::Fail);

        let few = sketch((0..20).map(|i| 20 + i % 10));
        let thin = verdict(figures("1", 1000, 10), figures("2", 20, 0), (&normal, &few));
        assert_eq!(thin.verdict, Outcome::Marginal, "{thin:?}");
        assert!(thin
            .reasons
            .iter()
            .any(|r| r.contains("too little traffic: 2 served 20")));
    }
}
