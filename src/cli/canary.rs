//! `sightline canary`: asks a running server for a canary verdict and exits non-zero when the
//! canary fails, for deploy pipelines to gate on.

use anyhow::{bail, Context};
use serde::Deserialize;

/// What the command asks.
pub struct CanaryArgs<'a> {
    pub api: &'a str,
    pub service: &'a str,
    pub baseline: &'a str,
    pub canary: &'a str,
    pub start: Option<&'a str>,
    pub end: Option<&'a str>,
    /// Fail below this score even when the verdict is not `fail`.
    pub fail_below: f64,
}

/// The parts of `GET /api/v1/canary`'s answer the command prints.
#[derive(Deserialize)]
struct Verdict {
    verdict: String,
    score: f64,
    reasons: Vec<String>,
    metrics: Vec<Metric>,
}

#[derive(Deserialize)]
struct Metric {
    metric: String,
    outcome: String,
    contribution: f64,
    weight: f64,
}

/// Prints the verdict; an error when the canary fails (verdict `fail`, or a score below
/// `fail_below`) or cannot be judged, so the process exits non-zero.
pub async fn run(args: CanaryArgs<'_>) -> anyhow::Result<()> {
    let mut url = reqwest::Url::parse(&format!("{}/api/v1/canary", args.api.trim_end_matches('/')))
        .with_context(|| format!("{:?} is not a server URL", args.api))?;
    {
        let mut query = url.query_pairs_mut();
        query
            .append_pair("service", args.service)
            .append_pair("baseline", args.baseline)
            .append_pair("canary", args.canary);
        if let Some(start) = args.start {
            query.append_pair("start", start);
        }
        if let Some(end) = args.end {
            query.append_pair("end", end);
        }
    }
    let verdict: Verdict = super::api_get::get_json(url.as_str())
        .await
        .context("no verdict")?;
    println!(
        "{} {} against {}: {} (score {:.0} of 100)",
        args.service, args.canary, args.baseline, verdict.verdict, verdict.score
    );
    for m in &verdict.metrics {
        println!(
            "  {:<10} {:<8} {:.0} of {:.0}",
            m.metric, m.outcome, m.contribution, m.weight
        );
    }
    for r in &verdict.reasons {
        println!("  - {r}");
    }
    if verdict.verdict == "fail" {
        bail!("the canary failed");
    }
    if verdict.score < args.fail_below {
        bail!(
            "the canary scored {:.0}, below --fail-below {:.0}",
            verdict.score,
            args.fail_below
        );
    }
    Ok(())
}
