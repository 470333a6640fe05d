//! Timeline entries suggested from the data of an incident window: the first errors, each
//! service's error-rate peak and recovery, deploys (a `service.version` seen for the first
//! time) and instances going down or coming up. Everything is read from the per-minute
//! rollups, so suggesting is cheap even for long incidents.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::rollup::{RollupCell, RollupRow, MINUTE};

/// A RED rollup row, its cell's parts at hand.
#[derive(Debug, Clone, Copy)]
struct RedRow<'a> {
    minute: i64,
    service: &'a str,
    operation: &'a str,
    instance: &'a str,
    version: &'a str,
    count: u64,
    errors: u64,
}

impl<'a> RedRow<'a> {
    /// `row` when it is a RED cell.
    fn of(row: &'a RollupRow) -> Option<RedRow<'a>> {
        match &row.cell {
            RollupCell::Red {
                operation,
                instance,
                version,
                ..
            } => Some(RedRow {
                minute: row.minute,
                service: &row.service,
                operation,
                instance,
                version,
                count: row.count,
                errors: row.errors,
            }),
            _ => None,
        }
    }
}

/// A suggested timeline entry; `key` identifies it across requests (accept/dismiss).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Suggestion {
    pub key: String,
    /// first_error, error_peak, recovery, deploy, instance_down, instance_up.
    pub kind: &'static str,
    pub time: i64,
    pub service: String,
    /// The version deployed, or the version of the instance concerned.
    pub version: String,
    pub text: String,
}

/// How far before the incident the baseline error rate and the earlier versions are read.
pub const LOOKBACK: i64 = crate::rollup::BASELINE_LOOKBACK;

/// A minute is elevated when its error rate is above `max(2 × baseline, baseline + 2 %)`.
fn threshold(baseline: f64) -> f64 {
    (baseline * 2.0).max(baseline + 0.02)
}

/// Minutes an instance may be silent before it counts as down (longer than the server's
/// health check: quiet instances of sparse traffic have minutes without requests).
const DOWN_AFTER_MINUTES: i64 = 5;

#[derive(Default, Clone, Copy)]
struct Counts {
    requests: u64,
    errors: u64,
}

impl Counts {
    fn rate(self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            self.errors as f64 / self.requests as f64
        }
    }
}

/// Suggestions for the incident `[start, end]` from the rollups of
/// `[start - LOOKBACK, end]`, in time order.
pub fn suggest(rollups: &[RollupRow], start: i64, end: i64) -> Vec<Suggestion> {
    let red: Vec<RedRow> = rollups
        .iter()
        .filter(|r| r.minute >= start - LOOKBACK && r.minute <= end)
        .filter_map(RedRow::of)
        .collect();
    // Per service: minute → counts, and the baseline before the incident.
    let mut per_minute: BTreeMap<&str, BTreeMap<i64, Counts>> = BTreeMap::new();
    let mut baseline: BTreeMap<&str, Counts> = BTreeMap::new();
    for r in &red {
        if r.minute < start {
            let b = baseline.entry(r.service).or_default();
            b.requests += r.count;
            b.errors += r.errors;
        } else {
            let c = per_minute
                .entry(r.service)
                .or_default()
                .entry(r.minute)
                .or_default();
            c.requests += r.count;
            c.errors += r.errors;
        }
    }
    let mut out = Vec::new();
    // Each service's first elevated minute, to find where the errors started.
    let mut first_elevated: Vec<(i64, &str, Counts)> = Vec::new();
    for (service, minutes) in &per_minute {
        let base = baseline.get(service).copied().unwrap_or_default().rate();
        let limit = threshold(base);
        let elevated: Vec<(i64, Counts)> = minutes
            .iter()
            .filter(|(_, c)| c.errors > 0 && c.rate() > limit)
            .map(|(m, c)| (*m, *c))
            .collect();
        let Some(&(first, first_counts)) = elevated.first() else {
            continue;
        };
        first_elevated.push((first, service, first_counts));
        let (peak_minute, peak) = elevated
            .iter()
            .copied()
            .max_by(|a, b| a.1.rate().total_cmp(&b.1.rate()).then(b.0.cmp(&a.0)))
            .unwrap_or((first, first_counts));
        out.push(Suggestion {
            key: format!("error_peak:{service}"),
            kind: "error_peak",
            time: peak_minute,
            service: service.to_string(),
            version: versions_at(&red, service, peak_minute, true),
            text: format!(
                "Error-rate peak in {service}: {:.0} % ({} of {} requests; baseline {:.1} %)",
                peak.rate() * 100.0,
                peak.errors,
                peak.requests,
                base * 100.0
            ),
        });
        // Recovery: the first minute after the peak from which the rate stays at or below
        // the threshold for the rest of the window (at least three minutes of it).
        let after: Vec<(i64, Counts)> = minutes
            .range(peak_minute + MINUTE..)
            .map(|(m, c)| (*m, *c))
            .collect();
        let recovered_at = after.iter().enumerate().find_map(|(i, (m, _))| {
            let rest = &after[i..];
            (rest.len() >= 3 && rest.iter().all(|(_, c)| c.rate() <= limit)).then_some(*m)
        });
        if let Some(m) = recovered_at {
            out.push(Suggestion {
                key: format!("recovery:{service}"),
                kind: "recovery",
                time: m,
                service: service.to_string(),
                version: String::new(),
                text: format!(
                    "{service} recovered: error rate back to baseline ({:.1} %)",
                    base * 100.0
                ),
            });
        }
    }
    if let Some((t, service, _)) = origin(&first_elevated, rollups) {
        let operations: BTreeSet<&str> = red
            .iter()
            .filter(|r| r.minute == t && r.service == service && r.errors > 0)
            .map(|r| r.operation)
            .collect();
        // Counted over the versions named (the failing ones), not the whole service: "2.5.0
        // failed 2 of 2", not "2 of 4" with the healthy version's requests added.
        let version = versions_at(&red, service, t, true);
        let named: BTreeSet<&str> = version.split(", ").collect();
        let counts = red
            .iter()
            .filter(|r| r.minute == t && r.service == service)
            .filter(|r| version.is_empty() || named.contains(r.version))
            .fold(Counts::default(), |c, r| Counts {
                requests: c.requests + r.count,
                errors: c.errors + r.errors,
            });
        out.push(Suggestion {
            key: "first_error".into(),
            kind: "first_error",
            time: t,
            service: service.to_string(),
            text: format!(
                "First errors: {service}{} ({}) failed {} of {} requests",
                match version.as_str() {
                    "" => String::new(),
                    v => format!(" {v}"),
                },
                operations.into_iter().collect::<Vec<_>>().join(", "),
                counts.errors,
                counts.requests
            ),
            version,
        });
    }
    out.extend(deploys(&red, start, end));
    out.extend(instance_changes(&red, start, end));
    out.sort_by(|a, b| a.time.cmp(&b.time).then_with(|| a.key.cmp(&b.key)));
    out
}

/// Where the errors started: of the services whose errors began first (in the same minute,
/// errors travel up the call chain), the one that calls none of the others.
fn origin<'a>(
    first_elevated: &[(i64, &'a str, Counts)],
    rollups: &[RollupRow],
) -> Option<(i64, &'a str, Counts)> {
    let earliest = first_elevated.iter().map(|f| f.0).min()?;
    let candidates: Vec<&(i64, &str, Counts)> =
        first_elevated.iter().filter(|f| f.0 == earliest).collect();
    let calls_another = |caller: &str| {
        rollups.iter().any(|r| match &r.cell {
            RollupCell::Edge { callee, .. } => {
                r.service == caller && callee != caller && candidates.iter().any(|c| c.1 == callee)
            }
            _ => false,
        })
    };
    candidates
        .iter()
        .find(|c| !calls_another(c.1))
        .or(candidates.first())
        .map(|c| **c)
}

/// The versions of `service` that served requests in `minute` (only erroring ones if asked).
fn versions_at(red: &[RedRow], service: &str, minute: i64, erroring: bool) -> String {
    let versions: BTreeSet<&str> = red
        .iter()
        .filter(|r| r.service == service && r.minute == minute && (!erroring || r.errors > 0))
        .map(|r| r.version)
        .filter(|v| !v.is_empty())
        .collect();
    versions.into_iter().collect::<Vec<_>>().join(", ")
}

/// A version first seen inside the window, of a service that ran another version before.
fn deploys(red: &[RedRow], start: i64, end: i64) -> Vec<Suggestion> {
    let mut first_seen: BTreeMap<(&str, &str), (i64, &str)> = BTreeMap::new();
    for r in red.iter().filter(|r| !r.version.is_empty()) {
        let e = first_seen
            .entry((r.service, r.version))
            .or_insert((r.minute, r.instance));
        if r.minute < e.0 {
            *e = (r.minute, r.instance);
        }
    }
    let mut out = Vec::new();
    for (&(service, version), &(minute, instance)) in &first_seen {
        if minute < start || minute > end {
            continue;
        }
        let earlier: BTreeSet<&str> = first_seen
            .iter()
            .filter(|((s, v), (m, _))| *s == service && *v != version && *m < minute)
            .map(|((_, v), _)| *v)
            .collect();
        if earlier.is_empty() {
            continue;
        }
        out.push(Suggestion {
            key: format!("deploy:{service}:{version}"),
            kind: "deploy",
            time: minute,
            service: service.to_string(),
            version: version.to_string(),
            text: format!(
                "Deploy: {service} {version} first seen (on {instance}; {} before)",
                earlier.into_iter().collect::<Vec<_>>().join(", ")
            ),
        });
    }
    out
}

/// Instances that stopped reporting inside the window, and ones that started.
fn instance_changes(red: &[RedRow], start: i64, end: i64) -> Vec<Suggestion> {
    let mut seen: BTreeMap<(&str, &str), (i64, i64, &str)> = BTreeMap::new();
    let mut service_first: BTreeMap<&str, i64> = BTreeMap::new();
    for r in red.iter().filter(|r| !r.instance.is_empty()) {
        let e = seen
            .entry((r.service, r.instance))
            .or_insert((r.minute, r.minute, r.version));
        e.0 = e.0.min(r.minute);
        if r.minute >= e.1 {
            e.1 = r.minute;
            e.2 = r.version;
        }
        let f = service_first.entry(r.service).or_insert(r.minute);
        *f = (*f).min(r.minute);
    }
    let mut out = Vec::new();
    for (&(service, instance), &(first, last, version)) in &seen {
        if last >= start && last + DOWN_AFTER_MINUTES * MINUTE < end {
            out.push(Suggestion {
                key: format!("instance_down:{service}:{instance}"),
                kind: "instance_down",
                time: last + MINUTE,
                service: service.to_string(),
                version: version.to_string(),
                text: format!("{instance} ({service} {version}) stopped reporting"),
            });
        }
        let service_started = service_first.get(service).copied().unwrap_or(first);
        if first > start && first <= end && first > service_started {
            out.push(Suggestion {
                key: format!("instance_up:{service}:{instance}"),
                kind: "instance_up",
                time: first,
                service: service.to_string(),
                version: version.to_string(),
                text: format!("{instance} ({service} {version}) started reporting"),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollup::LatencyHistogram;

    fn red(minute: i64, service: &str, instance: &str, version: &str, n: u64, e: u64) -> RollupRow {
        RollupRow {
            minute: minute * MINUTE,
            service: service.into(),
            cell: RollupCell::Red {
                operation: "POST /charge".into(),
                instance: instance.into(),
                version: version.into(),
                span_kind: crate::model::SpanKind::Server,
            },
            count: n,
            errors: e,
            latency: LatencyHistogram::default(),
        }
    }

    #[test]
    fn canary_incident() {
        let mut rows = Vec::new();
        for m in 0..60 {
            rows.push(red(m, "payment", "payment-1", "2.4.0", 10, 0));
            if (35..52).contains(&m) {
                let errors = if m >= 40 { 8 } else { 0 };
                rows.push(red(m, "payment", "payment-3", "2.5.0", 10, errors));
            }
        }
        let s = suggest(&rows, 30 * MINUTE, 60 * MINUTE);
        let kinds: Vec<(&str, i64)> = s.iter().map(|s| (s.kind, s.time / MINUTE)).collect();
        assert!(kinds.contains(&("deploy", 35)), "{kinds:?}");
        assert!(kinds.contains(&("first_error", 40)), "{kinds:?}");
        assert!(kinds.contains(&("error_peak", 40)), "{kinds:?}");
        assert!(kinds.contains(&("recovery", 52)), "{kinds:?}");
        assert!(kinds.contains(&("instance_down", 52)), "{kinds:?}");
        assert!(kinds.contains(&("instance_up", 35)), "{kinds:?}");
        let first = s.iter().find(|s| s.kind == "first_error").unwrap();
        assert_eq!(first.version, "2.5.0");
        // The canary's own requests, not the service's: 8 of its 10 failed.
        assert!(
            first.text.ends_with("failed 8 of 10 requests"),
            "{}",
            first.text
        );
    }
}
