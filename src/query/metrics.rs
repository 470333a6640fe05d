//! Metric range queries: counters as rates (reset-aware), gauges as avg/min/max/last,
//! histograms as percentiles, grouped by instance, service or any attribute.
//!
//! Rules for bad points (documented in the README): non-finite values are skipped; a
//! cumulative counter that goes down, or whose start time changes, has reset and counts from
//! its new value; a histogram whose bucket counts do not match its bounds is skipped.

use std::collections::BTreeMap;

use serde::Serialize;

use super::scan::group_by_file;
use super::{QueryEngine, QueryError, DOWNSAMPLED_STEP_NANO};
use crate::model::Signal;
use crate::model::{value_text, MetricKind, MetricPoint};
use crate::pipeline::LiveRows;
use crate::rollup::metric_minutes::MinuteMetric;
use crate::store::Prefilter;
use tantivy::query::Query;

/// How to reduce gauge samples within a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GaugeAgg {
    Avg,
    Min,
    Max,
    Last,
}

impl GaugeAgg {
    /// The text every front end takes: `avg` (also the default, empty), `min`, `max`, `last`.
    pub fn parse(text: &str) -> Result<GaugeAgg, String> {
        match text.trim() {
            "" | "avg" => Ok(GaugeAgg::Avg),
            "min" => Ok(GaugeAgg::Min),
            "max" => Ok(GaugeAgg::Max),
            "last" => Ok(GaugeAgg::Last),
            other => Err(format!(
                "aggregation must be avg, min, max or last, not {other:?}"
            )),
        }
    }
}

/// A metric range query.
#[derive(Debug, Clone)]
pub struct MetricQuery {
    pub name: String,
    pub start: i64,
    pub end: i64,
    pub step: i64,
    pub service: Option<String>,
    pub instance: Option<String>,
    /// `service`, `instance`, or an attribute key; empty = one series per source series.
    pub group_by: Vec<String>,
    pub gauge_agg: GaugeAgg,
}

impl MetricQuery {
    /// The step a range query over `[start, end)` uses: the one given (nanoseconds), or the
    /// window / 60; never under a second. The HTTP and gRPC APIs both ask this.
    pub fn step_for(start: i64, end: i64, given: Option<i64>) -> i64 {
        given
            .unwrap_or_else(|| end.saturating_sub(start) / 60)
            .max(crate::model::time::NANOS_PER_SECOND)
    }
}

/// One output series.
#[derive(Debug, Clone, Serialize)]
pub struct Series {
    pub labels: BTreeMap<String, String>,
    /// What the points are (served as `rate`, `gauge`, `p50`, `p95`, `p99`, `count_rate`).
    pub value: SeriesValue,
    pub unit: String,
    /// (step start in Unix ns, value); steps without data are absent.
    pub points: Vec<(i64, f64)>,
}

/// What a series' points measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SeriesValue {
    /// A gauge aggregated per step (or the last value of a non-monotonic sum).
    Gauge,
    /// A monotonic sum's increase per second.
    Rate,
    /// A histogram's percentile (50, 95 or 99), interpolated in its buckets.
    Percentile(u8),
    /// A histogram's observations per second.
    CountRate,
}

impl SeriesValue {
    /// The percentiles a histogram is shown as.
    pub const PERCENTILES: [u8; 3] = [50, 95, 99];

    /// The name it is served and labelled by.
    pub fn name(self) -> String {
        match self {
            SeriesValue::Gauge => "gauge".into(),
            SeriesValue::Rate => "rate".into(),
            SeriesValue::Percentile(p) => format!("p{p}"),
            SeriesValue::CountRate => "count_rate".into(),
        }
    }

    /// Whether the points are per second.
    pub fn is_per_second(self) -> bool {
        matches!(self, SeriesValue::Rate | SeriesValue::CountRate)
    }
}

impl Serialize for SeriesValue {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.name())
    }
}

/// What one step of one group accumulates.
#[derive(Debug, Clone, Default)]
struct Acc {
    sum: f64,
    n: u64,
    min: f64,
    max: f64,
    last: (i64, f64),
    buckets: Vec<f64>,
    bounds: Vec<f64>,
    count: f64,
}

impl Acc {
    /// Adds a gauge sample: a raw point (weight 1), or a one-minute point carrying the
    /// average, min, max and number of the samples it stands for.
    fn gauge(&mut self, p: &MetricPoint, v: f64) {
        let weight = p.count.unwrap_or(1).max(1);
        let (lo, hi) = (p.min.unwrap_or(v), p.max.unwrap_or(v));
        if self.n == 0 {
            self.min = lo;
            self.max = hi;
        }
        self.sum += v * weight as f64;
        self.n += weight;
        self.min = self.min.min(lo);
        self.max = self.max.max(hi);
        if p.time_unix_nano >= self.last.0 {
            self.last = (p.time_unix_nano, v);
        }
    }
}

fn labels_of(p: &MetricPoint, group_by: &[String]) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    if group_by.is_empty() {
        labels.insert("service".into(), p.resource.service_name.clone());
        labels.insert("instance".into(), p.resource.service_instance_id.clone());
        for (k, v) in &p.attributes {
            labels.insert(k.clone(), value_text(v));
        }
        return labels;
    }
    for key in group_by {
        let value = match key.as_str() {
            "service" => p.resource.service_name.clone(),
            "instance" => p.resource.service_instance_id.clone(),
            "version" => p.resource.service_version.clone(),
            other => p.attributes.get(other).map(value_text).unwrap_or_default(),
        };
        labels.insert(key.clone(), value);
    }
    labels
}

/// Identity of a source series: who sent it and with which attributes.
fn source_key(p: &MetricPoint) -> String {
    format!(
        "{}\u{1f}{}\u{1f}{}",
        p.resource.service_name,
        p.resource.service_instance_id,
        serde_json::Value::Object(p.attributes.clone())
    )
}

/// Turns raw points into the requested series.
pub fn evaluate(q: &MetricQuery, mut points: Vec<MetricPoint>) -> Vec<Series> {
    let step = q.step.max(1_000_000_000);
    points.sort_by_key(|p| p.time_unix_nano);
    let unit = points.first().map(|p| p.unit.clone()).unwrap_or_default();
    let Some(kind) = points.first().map(|p| p.kind) else {
        return Vec::new();
    };
    let step_of = |t: i64| q.start + (t - q.start).div_euclid(step) * step;
    let mut groups: BTreeMap<BTreeMap<String, String>, BTreeMap<i64, Acc>> = BTreeMap::new();
    // Previous point per source series, for cumulative deltas.
    let mut previous: BTreeMap<String, &MetricPoint> = BTreeMap::new();
    for p in &points {
        if p.time_unix_nano < q.start || p.time_unix_nano > q.end {
            // Still the baseline of the first delta inside the window.
            if p.time_unix_nano < q.start {
                previous.insert(source_key(p), p);
            }
            continue;
        }
        let acc = groups
            .entry(labels_of(p, &q.group_by))
            .or_default()
            .entry(step_of(p.time_unix_nano))
            .or_default();
        let key = source_key(p);
        let prev = previous.insert(key, p);
        let restarted = |prev: &MetricPoint| prev.start_time_unix_nano != p.start_time_unix_nano;
        match p.kind {
            MetricKind::Gauge => {
                if let Some(v) = p.value.filter(|v| v.is_finite()) {
                    acc.gauge(p, v);
                }
            }
            MetricKind::Sum if !p.is_monotonic => {
                if let Some(v) = p.value.filter(|v| v.is_finite()) {
                    acc.gauge(p, v);
                }
            }
            MetricKind::Sum => {
                let Some(v) = p.value.filter(|v| v.is_finite()) else {
                    continue;
                };
                // A one-minute point also carries its first value (`min`) and the increase
                // inside its minute (`sum`); a raw point has neither.
                let first = p.min.unwrap_or(v);
                let inside = p.sum.unwrap_or(0.0);
                let delta = if p.temporality == "delta" {
                    v
                } else {
                    match prev {
                        Some(pr) if !restarted(pr) && pr.value.is_some_and(|pv| first >= pv) => {
                            first - pr.value.unwrap_or(first) + inside
                        }
                        // A reset: the counter counted `first` since it restarted.
                        Some(_) => first + inside,
                        // The first point: all of it counts only if the counter started
                        // inside the window; otherwise it is just the baseline.
                        None if p.start_time_unix_nano >= q.start => first + inside,
                        None => inside,
                    }
                };
                acc.sum += delta;
                acc.n += 1;
            }
            MetricKind::Histogram => {
                if p.bucket_counts.len() != p.explicit_bounds.len() + 1 {
                    continue;
                }
                let counts: Vec<f64> = p.bucket_counts.iter().map(|c| *c as f64).collect();
                let delta: Vec<f64> = match prev {
                    Some(pr)
                        if p.temporality == "cumulative"
                            && !restarted(pr)
                            && pr.bucket_counts.len() == counts.len() =>
                    {
                        let d: Vec<f64> = counts
                            .iter()
                            .zip(&pr.bucket_counts)
                            .map(|(c, pc)| c - *pc as f64)
                            .collect();
                        if d.iter().any(|x| *x < 0.0) {
                            counts
                        } else {
                            d
                        }
                    }
                    _ => counts,
                };
                if acc.buckets.len() != delta.len() {
                    acc.buckets = vec![0.0; delta.len()];
                    acc.bounds = p.explicit_bounds.clone();
                }
                for (a, d) in acc.buckets.iter_mut().zip(&delta) {
                    *a += d;
                }
                acc.count += delta.iter().sum::<f64>();
                acc.n += 1;
            }
            MetricKind::ExponentialHistogram | MetricKind::Summary => {
                if let Some(c) = p.count {
                    acc.count += c as f64;
                    acc.n += 1;
                }
            }
        }
    }
    let secs = step as f64 / 1e9;
    let mut out = Vec::new();
    for (labels, steps) in groups {
        let series = |value: SeriesValue, f: &dyn Fn(&Acc) -> Option<f64>| Series {
            labels: labels.clone(),
            value,
            unit: unit.clone(),
            points: steps
                .iter()
                .filter(|(_, a)| a.n > 0)
                .filter_map(|(t, a)| f(a).map(|v| (*t, v)))
                .collect(),
        };
        match kind {
            MetricKind::Gauge => out.push(series(SeriesValue::Gauge, &|a| {
                Some(match q.gauge_agg {
                    GaugeAgg::Avg => a.sum / a.n as f64,
                    GaugeAgg::Min => a.min,
                    GaugeAgg::Max => a.max,
                    GaugeAgg::Last => a.last.1,
                })
            })),
            MetricKind::Sum if points.first().is_some_and(|p| !p.is_monotonic) => {
                out.push(series(SeriesValue::Gauge, &|a| Some(a.last.1)))
            }
            MetricKind::Sum => out.push(series(SeriesValue::Rate, &|a| Some(a.sum / secs))),
            MetricKind::Histogram => {
                for p in SeriesValue::PERCENTILES {
                    let q = f64::from(p) / 100.0;
                    out.push(series(SeriesValue::Percentile(p), &|a| {
                        bucket_quantile(&a.buckets, &a.bounds, q)
                    }));
                }
                out.push(series(SeriesValue::CountRate, &|a| Some(a.count / secs)));
            }
            MetricKind::ExponentialHistogram | MetricKind::Summary => {
                out.push(series(SeriesValue::CountRate, &|a| Some(a.count / secs)))
            }
        }
    }
    out
}

/// The `q`-quantile of explicit-bucket counts, interpolating linearly inside the bucket (as
/// Prometheus' `histogram_quantile` does); the open last bucket answers its lower bound.
pub fn bucket_quantile(counts: &[f64], bounds: &[f64], q: f64) -> Option<f64> {
    let total: f64 = counts.iter().sum();
    if total <= 0.0 || counts.len() != bounds.len() + 1 {
        return None;
    }
    let rank = q * total;
    let mut seen = 0.0;
    for (i, c) in counts.iter().enumerate() {
        if seen + c >= rank && *c > 0.0 {
            let lower = if i == 0 {
                0f64.min(bounds.first().copied().unwrap_or(0.0))
            } else {
                bounds[i - 1]
            };
            let Some(upper) = bounds.get(i) else {
                return Some(lower);
            };
            return Some(lower + (upper - lower) * ((rank - seen) / c));
        }
        seen += c;
    }
    bounds.last().copied()
}

/// A metric's name with its type and unit.
#[derive(Debug, Clone, Serialize)]
pub struct MetricName {
    pub name: String,
    pub kind: &'static str,
    pub unit: String,
    pub monotonic: bool,
}

impl MetricName {
    fn of(p: &crate::model::MetricPoint) -> Self {
        MetricName {
            name: p.name.clone(),
            kind: p.kind.as_str(),
            unit: p.unit.clone(),
            monotonic: p.is_monotonic,
        }
    }
}

impl QueryEngine {
    /// A metric range query.
    pub async fn metric_query(&self, q: &MetricQuery) -> Result<Vec<Series>, QueryError> {
        let f = self.index.fields();
        // One step before the window: the baseline of the first cumulative delta.
        let from = q.start - q.step.max(1_000_000_000);
        let keep = {
            let q = q.clone();
            move |p: &crate::model::MetricPoint| {
                p.name == q.name
                    && p.time_unix_nano >= from
                    && p.time_unix_nano <= q.end
                    && q.service
                        .as_ref()
                        .is_none_or(|s| p.resource.service_name == *s)
                    && q.instance
                        .as_ref()
                        .is_none_or(|i| p.resource.service_instance_id == *i)
            }
        };
        let metric_prefilter = Prefilter::none()
            .text_is("name", &q.name)
            .at_least("time", Some(from))
            .at_most("time", Some(q.end));
        let points = if q.step >= DOWNSAMPLED_STEP_NANO {
            // Coarse steps read the one-minute points of flushed data (plus the raw points
            // still in memory): one point per series and minute instead of every sample.
            // Raw in-memory points travel wrapped, so both come from one snapshot.
            let minutes: Vec<MinuteMetric> = self
                .rows(
                    self.index.term(f.name, &q.name),
                    Some(from),
                    Some(q.end),
                    metric_prefilter.clone(),
                    move |m: &MinuteMetric| keep(&m.0),
                )
                .await?;
            minutes.into_iter().map(|m| m.0).collect()
        } else {
            self.rows(
                self.index.term(f.name, &q.name),
                Some(from),
                Some(q.end),
                metric_prefilter,
                keep,
            )
            .await?
        };
        Ok(evaluate(q, points))
    }

    /// Every raw point of the metrics named in `names` in `[start, end]`, unordered: for
    /// query languages that evaluate points themselves (the Prometheus API).
    pub async fn metric_points(
        &self,
        names: &[String],
        start: i64,
        end: i64,
    ) -> Result<Vec<crate::model::MetricPoint>, QueryError> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let f = self.index.fields();
        let wanted: std::collections::HashSet<String> = names.iter().cloned().collect();
        let keep = move |p: &crate::model::MetricPoint| {
            p.time_unix_nano >= start && p.time_unix_nano <= end && wanted.contains(&p.name)
        };
        let block_query: Box<dyn Query> = Box::new(tantivy::query::BooleanQuery::union(
            names.iter().map(|n| self.index.term(f.name, n)).collect(),
        ));
        self.rows(
            block_query,
            Some(start),
            Some(end),
            Prefilter::none()
                .at_least("time", Some(start))
                .at_most("time", Some(end)),
            keep,
        )
        .await
    }

    /// Metric names, with kind and unit, that `service` (or anyone, when empty) sends.
    pub async fn metric_names_of(&self, service: &str) -> Result<Vec<MetricName>, QueryError> {
        let f = self.index.fields();
        let query: Box<dyn Query> = if service.is_empty() {
            Box::new(tantivy::query::AllQuery)
        } else {
            self.index.term(f.service, service)
        };
        let svc = service.to_string();
        let mut names: BTreeMap<String, MetricName> = BTreeMap::new();
        let of_service = match service {
            "" => Prefilter::none(),
            s => Prefilter::none().text_is("service_name", s),
        };
        let searcher = {
            let live = self.live.read();
            crate::model::MetricPoint::scan_live(&live, &of_service, &mut |p| {
                if !names.contains_key(&p.name) {
                    names.insert(p.name.clone(), MetricName::of(p));
                }
                false
            })?;
            self.index.searcher()
        };
        // Names are in the block documents; one row per block is enough for kind and unit.
        let blocks = self
            .index
            .search(&searcher, Signal::Metrics, query, None, None)?;
        for (path, groups) in group_by_file(&blocks) {
            let row_groups = groups.iter().map(|(rg, _)| *rg).collect();
            let mut keep = |p: &crate::model::MetricPoint| {
                (svc.is_empty() || p.resource.service_name == svc) && !names.contains_key(&p.name)
            };
            for p in self
                .read_file::<crate::model::MetricPoint>(
                    &path,
                    row_groups,
                    &Prefilter::none(),
                    &mut keep,
                )
                .await?
            {
                names
                    .entry(p.name.clone())
                    .or_insert_with(|| MetricName::of(&p));
            }
        }
        Ok(names.into_values().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn front_end_texts_parse_in_one_place() {
        use crate::query::{parse_attribute, StatusFilter};
        assert_eq!(GaugeAgg::parse(""), Ok(GaugeAgg::Avg));
        assert_eq!(GaugeAgg::parse("last"), Ok(GaugeAgg::Last));
        assert!(GaugeAgg::parse("median").unwrap_err().contains("median"));
        assert_eq!(
            StatusFilter::parse(" error "),
            Ok(Some(StatusFilter::Error))
        );
        assert_eq!(StatusFilter::parse(""), Ok(None));
        assert!(StatusFilter::parse("failed").is_err());
        assert_eq!(
            parse_attribute(" tenant = a=b "),
            Ok(Some(("tenant".into(), "a=b".into())))
        );
        assert_eq!(parse_attribute(""), Ok(None));
        assert!(parse_attribute("tenant").is_err());
    }

    #[test]
    fn quantile_interpolates_within_bucket() {
        // 10 in (0,10], 10 in (10,20]: the median is at the top of the first bucket.
        assert_eq!(
            bucket_quantile(&[10.0, 10.0, 0.0], &[10.0, 20.0], 0.5),
            Some(10.0)
        );
        assert_eq!(
            bucket_quantile(&[0.0, 10.0, 0.0], &[10.0, 20.0], 0.5),
            Some(15.0)
        );
        assert_eq!(bucket_quantile(&[0.0, 0.0, 0.0], &[10.0, 20.0], 0.5), None);
    }
}
