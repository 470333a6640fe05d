//! Service-level views built from rollups: the overview (RED per service), one service's
//! operations, instances and versions, the service map, and the error timeline and groups.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::metrics::MetricName;
use super::{QueryEngine, QueryError};
use crate::pipeline::{InstanceInfo, ServiceInfo};
use crate::rollup::{
    ErrorGroupDetail, LatencyHistogram, RollupCell, RollupKind, RollupRow, MINUTE,
};
use crate::store::Prefilter;

/// Requests, errors and latency of some set of spans over a window.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Red {
    pub requests: u64,
    pub errors: u64,
    /// Requests per second over the window.
    pub rate: f64,
    /// Errors / requests, 0–1.
    pub error_rate: f64,
    pub p50_nano: Option<i64>,
    pub p95_nano: Option<i64>,
    pub p99_nano: Option<i64>,
}

/// Accumulates RED from rollup rows.
#[derive(Debug, Clone, Default)]
pub struct RedAcc {
    requests: u64,
    errors: u64,
    latency: LatencyHistogram,
}

impl RedAcc {
    /// Adds one rollup row.
    pub fn add(&mut self, r: &RollupRow) {
        self.requests += r.count;
        self.errors += r.errors;
        self.latency.merge(&r.latency);
    }

    /// The figures over a window of `window_nano`.
    pub fn finish(&self, window_nano: i64) -> Red {
        Red {
            requests: self.requests,
            errors: self.errors,
            rate: self.requests as f64 / (window_nano.max(1) as f64 / 1e9),
            error_rate: if self.requests == 0 {
                0.0
            } else {
                self.errors as f64 / self.requests as f64
            },
            p50_nano: self.latency.quantile(0.5),
            p95_nano: self.latency.quantile(0.95),
            p99_nano: self.latency.quantile(0.99),
        }
    }
}

/// An instance with its health.
#[derive(Debug, Clone, Serialize)]
pub struct InstanceHealth {
    #[serde(flatten)]
    pub info: InstanceInfo,
    /// No data for longer than the configured time.
    pub down: bool,
}

/// One row of the overview.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceOverview {
    pub name: String,
    pub red: Red,
    pub instances: Vec<InstanceHealth>,
    pub versions: Vec<String>,
    pub down_instances: usize,
    /// Requests and errors per minute over the window.
    pub requests_per_minute: Vec<u64>,
    pub errors_per_minute: Vec<u64>,
}

/// Per-minute buckets of a window.
pub fn minutes(start: i64, end: i64) -> usize {
    (end.saturating_sub(minute_origin(start))
        .saturating_add(MINUTE - 1)
        / MINUTE)
        .clamp(1, 100_000) as usize
}

/// Where the per-minute series of a window starting at `start` begin: the whole minute it
/// falls in, the minute the rollups count by. Series (and the bursts found in them) then
/// cover the same minutes on every reload, instead of minutes that start when the page was
/// loaded and split one incident into two.
pub fn minute_origin(start: i64) -> i64 {
    start.div_euclid(MINUTE) * MINUTE
}

fn slot(start: i64, t: i64, n: usize) -> Option<usize> {
    let i = (t - minute_origin(start)).div_euclid(MINUTE);
    (i >= 0 && (i as usize) < n).then_some(i as usize)
}

/// Health of instances at `now`.
pub fn health(info: &ServiceInfo, now: i64, down_after: i64) -> Vec<InstanceHealth> {
    info.instances
        .iter()
        .map(|i| InstanceHealth {
            info: i.clone(),
            down: now - i.last_seen_unix_nano > down_after,
        })
        .collect()
}

/// RED per service over `[start, end)`, with instance health from the registry.
pub fn overview(
    rollups: &[RollupRow],
    services: &[ServiceInfo],
    start: i64,
    end: i64,
    now: i64,
    down_after: i64,
) -> Vec<ServiceOverview> {
    let n = minutes(start, end);
    let mut out = Vec::new();
    for info in services {
        let mut acc = RedAcc::default();
        let mut req = vec![0; n];
        let mut err = vec![0; n];
        for r in rollups
            .iter()
            .filter(|r| r.kind() == RollupKind::Red && r.service == info.name)
        {
            acc.add(r);
            if let Some(i) = slot(start, r.minute, n) {
                req[i] += r.count;
                err[i] += r.errors;
            }
        }
        let instances = health(info, now, down_after);
        let versions: BTreeSet<String> = instances
            .iter()
            .map(|i| i.info.version.clone())
            .filter(|v| !v.is_empty())
            .collect();
        out.push(ServiceOverview {
            name: info.name.clone(),
            red: acc.finish(end - start),
            down_instances: instances.iter().filter(|i| i.down).count(),
            instances,
            versions: versions.into_iter().collect(),
            requests_per_minute: req,
            errors_per_minute: err,
        });
    }
    out
}

/// RED of a service grouped by one dimension (operation, instance or version).
#[derive(Debug, Clone, Serialize)]
pub struct Breakdown {
    pub key: String,
    pub red: Red,
    pub requests_per_minute: Vec<u64>,
    pub errors_per_minute: Vec<u64>,
    pub p95_per_minute: Vec<Option<i64>>,
}

/// What a service's RED figures are broken down by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakdownBy {
    Operation,
    Instance,
    Version,
}

/// Groups a service's RED rollups by one part of their cells.
pub fn breakdown(
    rollups: &[RollupRow],
    service: &str,
    start: i64,
    end: i64,
    by: BreakdownBy,
) -> Vec<Breakdown> {
    let n = minutes(start, end);
    let mut groups: BTreeMap<String, Group> = BTreeMap::new();
    for r in rollups.iter().filter(|r| r.service == service) {
        let RollupCell::Red {
            operation,
            instance,
            version,
            ..
        } = &r.cell
        else {
            continue;
        };
        let key = match by {
            BreakdownBy::Operation => operation,
            BreakdownBy::Instance => instance,
            BreakdownBy::Version => version,
        };
        let g = groups.entry(key.clone()).or_insert_with(|| Group {
            acc: RedAcc::default(),
            requests: vec![0; n],
            errors: vec![0; n],
            latency: vec![LatencyHistogram::default(); n],
        });
        g.acc.add(r);
        if let Some(i) = slot(start, r.minute, n) {
            g.requests[i] += r.count;
            g.errors[i] += r.errors;
            g.latency[i].merge(&r.latency);
        }
    }
    groups
        .into_iter()
        .map(|(key, g)| Breakdown {
            key,
            red: g.acc.finish(end - start),
            requests_per_minute: g.requests,
            errors_per_minute: g.errors,
            p95_per_minute: g.latency.iter().map(|h| h.quantile(0.95)).collect(),
        })
        .collect()
}

/// Per-minute accumulation of one breakdown group.
struct Group {
    acc: RedAcc,
    requests: Vec<u64>,
    errors: Vec<u64>,
    latency: Vec<LatencyHistogram>,
}

/// A node of the service map.
#[derive(Debug, Clone, Serialize)]
pub struct MapNode {
    pub name: String,
    /// False for peers that do not report themselves (databases, third parties).
    pub instrumented: bool,
    pub red: Option<Red>,
    pub down_instances: usize,
}

/// An edge of the service map.
#[derive(Debug, Clone, Serialize)]
pub struct MapEdge {
    pub caller: String,
    pub callee: String,
    /// `rpc`, `messaging` or `uninstrumented`.
    pub kind: String,
    pub calls: u64,
    pub errors: u64,
    pub calls_per_second: f64,
    pub error_rate: f64,
    pub p95_nano: Option<i64>,
}

/// Nodes and edges of the service map over a window.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceMap {
    pub nodes: Vec<MapNode>,
    pub edges: Vec<MapEdge>,
}

/// Builds the service map from edge and RED rollups.
pub fn service_map(
    rollups: &[RollupRow],
    overview: &[ServiceOverview],
    start: i64,
    end: i64,
) -> ServiceMap {
    let mut edges: BTreeMap<(String, String, &'static str), RedAcc> = BTreeMap::new();
    for r in rollups {
        if let RollupCell::Edge { callee, kind } = &r.cell {
            edges
                .entry((r.service.clone(), callee.clone(), kind.as_str()))
                .or_default()
                .add(r);
        }
    }
    let known: BTreeSet<&str> = overview.iter().map(|o| o.name.as_str()).collect();
    let mut nodes: Vec<MapNode> = overview
        .iter()
        .map(|o| MapNode {
            name: o.name.clone(),
            instrumented: true,
            red: Some(o.red.clone()),
            down_instances: o.down_instances,
        })
        .collect();
    let mut leaves = BTreeSet::new();
    let edges: Vec<MapEdge> = edges
        .into_iter()
        .map(|((caller, callee, kind), acc)| {
            if !known.contains(callee.as_str()) {
                leaves.insert(callee.clone());
            }
            let red = acc.finish(end - start);
            MapEdge {
                caller,
                callee,
                kind: kind.to_string(),
                calls: red.requests,
                errors: red.errors,
                calls_per_second: red.rate,
                error_rate: red.error_rate,
                p95_nano: red.p95_nano,
            }
        })
        .collect();
    nodes.extend(leaves.into_iter().map(|name| MapNode {
        name,
        instrumented: false,
        red: None,
        down_instances: 0,
    }));
    ServiceMap { nodes, edges }
}

/// Errors of one service per minute, and where bursts start.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorSeries {
    pub service: String,
    /// Error spans + ERROR/FATAL logs per minute.
    pub per_minute: Vec<u64>,
}

/// One error group over the window.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorGroup {
    pub key: String,
    pub detail: ErrorGroupDetail,
    pub count: u64,
    pub first_seen: i64,
    pub last_seen: i64,
    pub services: Vec<String>,
    pub instances: Vec<String>,
    pub versions: Vec<String>,
}

/// The error timeline and groups of a window.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorsView {
    pub start: i64,
    pub series: Vec<ErrorSeries>,
    /// Minutes (index into `per_minute`) where an error burst starts.
    pub bursts: Vec<usize>,
    pub groups: Vec<ErrorGroup>,
}

/// Builds the error view; `service` limits it to one service.
pub fn errors(rollups: &[RollupRow], start: i64, end: i64, service: Option<&str>) -> ErrorsView {
    let n = minutes(start, end);
    let mut series: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut groups: BTreeMap<String, ErrorGroup> = BTreeMap::new();
    let mut example_at: BTreeMap<String, i64> = BTreeMap::new();
    for r in rollups
        .iter()
        .filter(|r| service.is_none_or(|s| r.service == s))
    {
        let failures = match &r.cell {
            RollupCell::Red { .. } => r.errors,
            RollupCell::LogErrors { .. } => r.count,
            RollupCell::ErrorGroup {
                key,
                instance,
                version,
                example,
            } => {
                let g = groups.entry(key.clone()).or_insert_with(|| ErrorGroup {
                    key: key.clone(),
                    detail: example.clone(),
                    count: 0,
                    first_seen: r.minute,
                    last_seen: r.minute,
                    services: Vec::new(),
                    instances: Vec::new(),
                    versions: Vec::new(),
                });
                g.count += r.count;
                g.first_seen = g.first_seen.min(r.minute);
                g.last_seen = g.last_seen.max(r.minute + MINUTE - 1);
                // The example is the earliest one (then the smallest id), whatever order the
                // rows come in, so a page renders the same from memory and from Parquet.
                if let Some(id) = &example.example_trace_id {
                    let candidate = (r.minute, id.clone());
                    let better = match (&g.detail.example_trace_id, example_at.get(&g.key)) {
                        (Some(old), Some(at)) => candidate < (*at, old.clone()),
                        _ => true,
                    };
                    if better {
                        example_at.insert(g.key.clone(), r.minute);
                        g.detail = example.clone();
                    }
                }
                for (list, v) in [
                    (&mut g.services, &r.service),
                    (&mut g.instances, instance),
                    (&mut g.versions, version),
                ] {
                    if !v.is_empty() && !list.contains(v) {
                        list.push(v.clone());
                    }
                }
                continue;
            }
            RollupCell::Edge { .. } => continue,
        };
        if failures == 0 {
            continue;
        }
        let s = series
            .entry(r.service.clone())
            .or_insert_with(|| vec![0; n]);
        if let Some(i) = slot(start, r.minute, n) {
            s[i] += failures;
        }
    }
    let total: Vec<u64> = (0..n)
        .map(|i| series.values().map(|s| s[i]).sum())
        .collect();
    let mut groups: Vec<ErrorGroup> = groups.into_values().collect();
    for g in &mut groups {
        g.services.sort();
        g.instances.sort();
        g.versions.sort();
    }
    groups.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.key.cmp(&b.key)));
    ErrorsView {
        start: minute_origin(start),
        bursts: bursts(&total),
        series: series
            .into_iter()
            .map(|(service, per_minute)| ErrorSeries {
                service,
                per_minute,
            })
            .collect(),
        groups,
    }
}

/// Minutes where errors jump from a quiet baseline: at least 3 errors and at least three
/// times the median of the previous ten minutes, after a minute that was not itself a burst.
pub fn bursts(per_minute: &[u64]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut in_burst = false;
    for i in 0..per_minute.len() {
        let mut before: Vec<u64> = per_minute[i.saturating_sub(10)..i].to_vec();
        before.sort_unstable();
        let baseline = before.get(before.len() / 2).copied().unwrap_or(0);
        let high = per_minute[i] >= 3 && per_minute[i] >= 3 * baseline.max(1);
        if high && !in_burst {
            out.push(i);
        }
        in_burst = high || (in_burst && per_minute[i] > baseline);
    }
    out
}

/// Everything the service page shows.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceDetail {
    /// The minute the per-minute series start at ([`minute_origin`] of the window's start).
    pub first_minute: i64,
    pub overview: ServiceOverview,
    pub operations: Vec<Breakdown>,
    pub instances: Vec<Breakdown>,
    pub versions: Vec<Breakdown>,
    pub errors: ErrorsView,
    pub metric_names: Vec<MetricName>,
}

impl QueryEngine {
    /// Every rollup row of minutes overlapping `[start, end)`.
    pub async fn rollups(
        &self,
        start: i64,
        end: i64,
    ) -> Result<Vec<crate::rollup::RollupRow>, QueryError> {
        use crate::rollup::{RollupRow, MINUTE};
        let in_window = move |r: &RollupRow| r.minute + MINUTE > start && r.minute < end;
        self.rows(
            Box::new(tantivy::query::AllQuery),
            Some(start),
            Some(end),
            Prefilter::none()
                .at_least("minute", Some(start - MINUTE + 1))
                .at_most("minute", Some(end - 1)),
            in_window,
        )
        .await
    }

    /// RED per service with instance health and per-minute sparklines.
    pub async fn overview(
        &self,
        start: i64,
        end: i64,
        now: i64,
    ) -> Result<Vec<ServiceOverview>, QueryError> {
        let rollups = self.rollups(start, end).await?;
        Ok(overview(
            &rollups,
            &self.services(),
            start,
            end,
            now,
            self.down_after_nano,
        ))
    }

    /// The service map of a window.
    pub async fn service_map(
        &self,
        start: i64,
        end: i64,
        now: i64,
    ) -> Result<ServiceMap, QueryError> {
        let rollups = self.rollups(start, end).await?;
        let overview = overview(
            &rollups,
            &self.services(),
            start,
            end,
            now,
            self.down_after_nano,
        );
        Ok(service_map(&rollups, &overview, start, end))
    }

    /// One service: overview row, RED per operation, instance and version, and its errors.
    pub async fn service(
        &self,
        name: &str,
        start: i64,
        end: i64,
        now: i64,
    ) -> Result<Option<ServiceDetail>, QueryError> {
        let rollups = self.rollups(start, end).await?;
        let all = self.services();
        let Some(info) = all.iter().find(|s| s.name == name) else {
            return Ok(None);
        };
        let overview = overview(
            &rollups,
            std::slice::from_ref(info),
            start,
            end,
            now,
            self.down_after_nano,
        )
        .pop();
        let Some(overview) = overview else {
            return Ok(None);
        };
        Ok(Some(ServiceDetail {
            first_minute: minute_origin(start),
            operations: breakdown(&rollups, name, start, end, BreakdownBy::Operation),
            instances: breakdown(&rollups, name, start, end, BreakdownBy::Instance),
            versions: breakdown(&rollups, name, start, end, BreakdownBy::Version),
            errors: errors(&rollups, start, end, Some(name)),
            metric_names: self.metric_names_of(name).await?,
            overview,
        }))
    }

    /// Error timeline and groups of a window.
    pub async fn errors(&self, start: i64, end: i64) -> Result<ErrorsView, QueryError> {
        let rollups = self.rollups(start, end).await?;
        Ok(errors(&rollups, start, end, None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_marked_at_its_start_only() {
        let series = [0, 1, 0, 0, 5, 9, 8, 7, 0, 0, 0];
        assert_eq!(bursts(&series), vec![4]);
        assert!(bursts(&[1, 1, 1, 1]).is_empty());
    }

    /// Reloading a page moves its window's start by seconds; the minutes its series cover,
    /// and the burst found in them, stay the same.
    #[test]
    fn series_and_bursts_sit_on_whole_minutes_whatever_the_window_start() {
        let rows: Vec<RollupRow> = (0..12)
            .map(|m| RollupRow {
                minute: m * MINUTE,
                service: "payment".into(),
                cell: RollupCell::LogErrors {
                    instance: "payment-3".into(),
                    version: "2.5.0".into(),
                },
                count: if (6..9).contains(&m) { 20 } else { 1 },
                errors: 0,
                latency: LatencyHistogram::default(),
            })
            .collect();
        let at = |start_secs: i64| {
            let start = start_secs * 1_000_000_000;
            let view = errors(&rows, start, start + 11 * MINUTE, None);
            let burst_minutes: Vec<i64> = view
                .bursts
                .iter()
                .map(|i| view.start + *i as i64 * MINUTE)
                .collect();
            let series: Vec<Vec<u64>> = view.series.iter().map(|s| s.per_minute.clone()).collect();
            (view.start, series, burst_minutes)
        };
        let first = at(25);
        assert_eq!(first.0, 0, "the series start at the whole minute");
        assert_eq!(first.2, [6 * MINUTE], "the burst starts at minute 6");
        assert_eq!(at(26), first, "a reload a second later");
        assert_eq!(at(59), first, "the same minute, later");
    }
}
