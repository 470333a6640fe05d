//! A rule's values at one moment, one per group, read from what Sightline keeps for its
//! pages (never a rescan of raw records): the per-minute RED rollups for error rates and
//! latencies, the log index's counts for log queries, the PromQL evaluator for metrics, the
//! service registry's last-seen times for absence.

use std::collections::BTreeMap;

use super::rule::{GroupBy, Measure, Rule};
use crate::query::QueryEngine;
use crate::rollup::latency::LatencyHistogram;
use crate::rollup::{RollupCell, RollupRow, MINUTE};

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
        Measure::ErrorRate | Measure::Latency(_) => {
            let rollups = engine
                .rollups(start, now)
                .await
                .map_err(|e| e.to_string())?;
            Ok(red(&rollups, rule, start, now))
        }
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
/// rollup minutes in `rollups` overlapping `[start, now]`, per group.
fn red(rollups: &[RollupRow], rule: &Rule, start: i64, now: i64) -> Vec<GroupValue> {
    let spec = &rule.spec;
    let wanted = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
    let mut groups: BTreeMap<String, (u64, u64, LatencyHistogram)> = BTreeMap::new();
    for r in rollups
        .iter()
        .filter(|r| Some(r.service.as_str()) == spec.service.as_deref() && r.minute < now)
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
        return vec![(BTreeMap::new(), None)];
    }
    groups
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
        .collect()
}

/// `(time, value)` points of one group (`None`: nothing to measure then).
pub type Points = Vec<(i64, Option<f64>)>;

/// One group's values over time: its labels and points.
pub type GroupSeries = (BTreeMap<String, String>, Points);

/// Most points [`series`] computes: a day at one-minute steps.
pub const MAX_POINTS: i64 = 1440;

/// The values of `rule` at every `step` from `start` to `end`, one series per group — what
/// the evaluator would have seen at each moment, for the `/alerts` chart, the API and the
/// demo's backfill. RED rules read the rollups once for the whole span; log rules read one
/// histogram; metric rules evaluate the expression at each step. Absence is measured from
/// the rollups (the last minute the service handled a request, called out or logged an
/// error), since the service registry keeps only the last time it saw each instance.
pub async fn series(
    engine: &QueryEngine,
    rule: &Rule,
    start: i64,
    end: i64,
    step: i64,
) -> Result<Vec<GroupSeries>, String> {
    if step <= 0 || end < start || (end - start) / step >= MAX_POINTS {
        return Err(format!(
            "step must be above 0 and give at most {MAX_POINTS} points from start to end"
        ));
    }
    let window = rule.spec.window_secs * 1_000_000_000;
    let times: Vec<i64> = (0..=(end - start) / step)
        .map(|i| start + i * step)
        .collect();
    let mut by_group: BTreeMap<BTreeMap<String, String>, Points> = BTreeMap::new();
    let mut add = |t: i64, found: Vec<GroupValue>| {
        for (labels, value) in found {
            by_group.entry(labels).or_default().push((t, value));
        }
    };
    match &rule.measure {
        Measure::ErrorRate | Measure::Latency(_) | Measure::Absence => {
            let rollups = engine
                .rollups(start - window.max(MINUTE), end)
                .await
                .map_err(|e| e.to_string())?;
            for &t in &times {
                let found = match rule.measure {
                    Measure::Absence => absence(&rollups, rule, t),
                    _ => red(&rollups, rule, t - window, t),
                };
                add(t, found);
            }
        }
        Measure::LogCount(query) => {
            // Buckets no longer than the step or the window, so each point sums whole ones.
            let bucket = step.min(window).max(1_000_000_000);
            let from = start - window;
            let buckets = ((end - from) / bucket + 1).clamp(1, 10_000) as usize;
            let h = engine
                .log_histogram(query, from, end, buckets)
                .await
                .map_err(|e| e.to_string())?;
            for &t in &times {
                let count: u64 = h
                    .counts
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| {
                        let b = h.start_unix_nano + *i as i64 * h.bucket_nano;
                        b + h.bucket_nano > t - window && b < t
                    })
                    .map(|(_, c)| c)
                    .sum();
                add(t, vec![(BTreeMap::new(), Some(count as f64))]);
            }
        }
        Measure::Metric(_) => {
            for &t in &times {
                add(t, values(engine, rule, t).await?);
            }
        }
    }
    Ok(by_group.into_iter().collect())
}

/// Seconds at `now` since the rule's service (or each of its instances or versions) last
/// appeared in `rollups`, at minute resolution.
fn absence(rollups: &[RollupRow], rule: &Rule, now: i64) -> Vec<GroupValue> {
    let service = rule.spec.service.as_deref().unwrap_or_default();
    let mut last: BTreeMap<String, i64> = BTreeMap::new();
    for r in rollups
        .iter()
        .filter(|r| r.service == service && r.minute < now)
    {
        let (instance, version) = match &r.cell {
            RollupCell::Red {
                instance, version, ..
            }
            | RollupCell::LogErrors { instance, version }
            | RollupCell::ErrorGroup {
                instance, version, ..
            } => (instance.as_str(), version.as_str()),
            RollupCell::Edge { .. } => ("", ""),
        };
        let key = match rule.group_by {
            Some(GroupBy::Instance) => instance,
            Some(GroupBy::Version) => version,
            None => "",
        };
        if rule.group_by.is_some() && key.is_empty() {
            continue;
        }
        let seen = (r.minute + MINUTE).min(now);
        let e = last.entry(key.to_string()).or_insert(seen);
        *e = (*e).max(seen);
    }
    if last.is_empty() && rule.group_by.is_none() {
        return vec![(BTreeMap::new(), None)];
    }
    last.into_iter()
        .map(|(key, seen)| {
            let labels = match rule.group_by {
                Some(by) => label(by, &key),
                None => BTreeMap::new(),
            };
            (labels, Some((now - seen).max(0) as f64 / 1e9))
        })
        .collect()
}
