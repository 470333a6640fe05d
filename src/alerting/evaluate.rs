//! A rule's values at one moment, one per group, read from what Sightline keeps for its
//! pages (never a rescan of raw records): the per-minute RED rollups for error rates and
//! latencies, the log index's counts for log queries, the PromQL evaluator for metrics, the
//! service registry's last-seen times for absence.

use std::collections::BTreeMap;

use super::rule::{GroupBy, Measure, Rule};
use crate::query::QueryEngine;
use crate::rollup::latency::LatencyHistogram;
use crate::rollup::{RollupCell, MINUTE};

/// One group's labels and value (`None`: nothing to measure, e.g. no requests).
pub type GroupValue = (BTreeMap<String, String>, Option<f64>);

/// The values of `rule` at `now` (Unix ns), one per group.
pub async fn values(
    engine: &QueryEngine,
    rule: &Rule,
    now: i64,
) -> Result<Vec<GroupValue>, String> {
    let spec = &rule.spec;
    let start = now - spec.window_secs * 1_000_000_000;
    match &rule.measure {
        Measure::ErrorRate | Measure::Latency(_) => red(engine, rule, start, now).await,
        Measure::LogCount(query) => {
            // Fine buckets, summed over those that start inside the window.
            let h = engine
                .log_histogram(query, start, now, 1000)
                .await
                .map_err(|e| e.to_string())?;
            let count: u64 = h
                .counts
                .iter()
                .enumerate()
                .filter(|(i, _)| h.start_unix_nano + *i as i64 * h.bucket_nano >= start)
                .map(|(_, c)| c)
                .sum();
            Ok(vec![(BTreeMap::new(), Some(count as f64))])
        }
        Measure::Metric(expr) => {
            let found = crate::compat::prometheus::instant_values(engine, expr, now).await?;
            Ok(found
                .into_iter()
                .map(|(labels, v)| (labels, Some(v)))
                .collect())
        }
        Measure::Absence => {
            let service = spec.service.as_deref().unwrap_or_default();
            let Some(info) = engine.services().into_iter().find(|s| s.name == service) else {
                return Ok(vec![(BTreeMap::new(), None)]);
            };
            let silent = |last: i64| Some((now - last).max(0) as f64 / 1e9);
            Ok(match rule.group_by {
                Some(GroupBy::Instance) => info
                    .instances
                    .iter()
                    .map(|i| {
                        (
                            label(GroupBy::Instance, &i.instance),
                            silent(i.last_seen_unix_nano),
                        )
                    })
                    .collect(),
                Some(GroupBy::Version) => {
                    let mut latest: BTreeMap<&str, i64> = BTreeMap::new();
                    for i in &info.instances {
                        let e = latest
                            .entry(i.version.as_str())
                            .or_insert(i.last_seen_unix_nano);
                        *e = (*e).max(i.last_seen_unix_nano);
                    }
                    latest
                        .into_iter()
                        .map(|(v, last)| (label(GroupBy::Version, v), silent(last)))
                        .collect()
                }
                None => vec![(BTreeMap::new(), silent(info.last_seen_unix_nano))],
            })
        }
    }
}

fn label(by: GroupBy, value: &str) -> BTreeMap<String, String> {
    BTreeMap::from([(by.label().to_string(), value.to_string())])
}

/// Error rate or latency of the rule's service (and operation, instance, version) from the
/// rollup minutes overlapping `[start, now]`, per group.
async fn red(
    engine: &QueryEngine,
    rule: &Rule,
    start: i64,
    now: i64,
) -> Result<Vec<GroupValue>, String> {
    let spec = &rule.spec;
    let rollups = engine
        .rollups(start, now)
        .await
        .map_err(|e| e.to_string())?;
    let wanted = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
    let mut groups: BTreeMap<String, (u64, u64, LatencyHistogram)> = BTreeMap::new();
    for r in rollups
        .iter()
        .filter(|r| Some(r.service.as_str()) == spec.service.as_deref())
    {
        let RollupCell::Red {
            operation,
            instance,
            version,
            ..
        } = &r.cell
        else {
            continue;
        };
        if r.minute + MINUTE <= start
            || !wanted(&spec.operation, operation)
            || !wanted(&spec.instance, instance)
            || !wanted(&spec.version, version)
        {
            continue;
        }
        let key = match rule.group_by {
            Some(GroupBy::Instance) => instance.clone(),
            Some(GroupBy::Version) => version.clone(),
            None => String::new(),
        };
        let g = groups.entry(key).or_default();
        g.0 += r.count;
        g.1 += r.errors;
        g.2.merge(&r.latency);
    }
    if groups.is_empty() && rule.group_by.is_none() {
        return Ok(vec![(BTreeMap::new(), None)]);
    }
    Ok(groups
        .into_iter()
        .map(|(key, (requests, errors, latency))| {
            let labels = match rule.group_by {
                Some(by) => label(by, &key),
                None => BTreeMap::new(),
            };
            let value = match rule.measure {
                Measure::Latency(q) => latency.quantile(q).map(|ns| ns as f64 / 1e6),
                _ if requests == 0 => None,
                _ => Some(errors as f64 / requests as f64),
            };
            (labels, value)
        })
        .collect())
}
