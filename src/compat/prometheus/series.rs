//! Stored metric points as Prometheus time series: which OTLP metrics a Prometheus name
//! stands for (the [`Catalog`]), and the expansion of points into labelled samples.

use std::collections::{BTreeMap, HashMap};

use crate::model::{value_text, MetricKind, MetricPoint};
use crate::query::MetricName;

use super::names::{label_name, metric_name};

/// A label set, `__name__` included.
pub type Labels = BTreeMap<String, String>;

/// One series of samples, sorted by time (Unix ns).
#[derive(Debug, Clone)]
pub struct RawSeries {
    pub labels: Labels,
    pub samples: Vec<(i64, f64)>,
}

/// Prometheus names and the OTLP metrics behind them.
#[derive(Debug, Default)]
pub struct Catalog {
    /// Prometheus name → OTLP metric names.
    by_prom: BTreeMap<String, Vec<String>>,
}

impl Catalog {
    /// The catalog of every metric the store knows.
    pub fn build(names: &[MetricName]) -> Catalog {
        let mut by_prom: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for n in names {
            let Some(kind) = MetricKind::parse(n.kind) else {
                continue;
            };
            let base = metric_name(&n.name, &n.unit, kind, n.monotonic);
            let exposed: Vec<String> = match kind {
                MetricKind::Gauge | MetricKind::Sum => vec![base],
                MetricKind::Histogram => vec![
                    format!("{base}_bucket"),
                    format!("{base}_sum"),
                    format!("{base}_count"),
                ],
                MetricKind::ExponentialHistogram | MetricKind::Summary => {
                    vec![format!("{base}_sum"), format!("{base}_count")]
                }
            };
            for name in exposed {
                let sources = by_prom.entry(name).or_default();
                if !sources.contains(&n.name) {
                    sources.push(n.name.clone());
                }
            }
        }
        Catalog { by_prom }
    }

    /// Every Prometheus metric name, sorted.
    pub fn names(&self) -> impl Iterator<Item = &String> {
        self.by_prom.keys()
    }

    /// The OTLP metrics behind the Prometheus names `accept`s.
    pub fn sources(&self, accept: impl Fn(&str) -> bool) -> Vec<String> {
        let mut out: Vec<String> = self
            .by_prom
            .iter()
            .filter(|(name, _)| accept(name))
            .flat_map(|(_, s)| s.iter().cloned())
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

/// Prometheus' text for a bucket bound (`le`): shortest float text, `+Inf` for infinity.
pub fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

/// Expands points into Prometheus series. Delta sums and histograms are accumulated from
/// the first point read, so counters look cumulative (rate and increase are exact; the raw
/// value counts from the start of the range read).
pub fn expand(points: Vec<MetricPoint>) -> Vec<RawSeries> {
    let mut series: HashMap<Labels, (bool, Vec<(i64, f64)>)> = HashMap::new();
    let mut push = |labels: Labels, delta: bool, t: i64, v: f64| {
        series
            .entry(labels)
            .or_insert((delta, Vec::new()))
            .1
            .push((t, v));
    };
    for p in points {
        let base_name = metric_name(&p.name, &p.unit, p.kind, p.is_monotonic);
        let mut base = Labels::new();
        base.insert("job".into(), p.resource.service_name.clone());
        if !p.resource.service_instance_id.is_empty() {
            base.insert("instance".into(), p.resource.service_instance_id.clone());
        }
        for (k, v) in &p.attributes {
            base.insert(label_name(k), value_text(v));
        }
        let delta = p.temporality == "delta";
        let t = p.time_unix_nano;
        let named = |suffix: &str| {
            let mut l = base.clone();
            l.insert("__name__".into(), format!("{base_name}{suffix}"));
            l
        };
        match p.kind {
            MetricKind::Gauge | MetricKind::Sum => {
                if let Some(v) = p.value {
                    push(named(""), delta && p.kind == MetricKind::Sum, t, v);
                }
            }
            MetricKind::Histogram | MetricKind::ExponentialHistogram | MetricKind::Summary => {
                if p.kind == MetricKind::Histogram
                    && p.bucket_counts.len() == p.explicit_bounds.len() + 1
                {
                    let mut cumulative = 0u64;
                    for (i, c) in p.bucket_counts.iter().enumerate() {
                        cumulative += c;
                        let le = p.explicit_bounds.get(i).copied().unwrap_or(f64::INFINITY);
                        let mut l = named("_bucket");
                        l.insert("le".into(), format_value(le));
                        push(l, delta, t, cumulative as f64);
                    }
                }
                let delta = delta && p.kind != MetricKind::Summary;
                if let Some(sum) = p.sum {
                    push(named("_sum"), delta, t, sum);
                }
                if let Some(count) = p.count {
                    push(named("_count"), delta, t, count as f64);
                }
            }
        }
    }
    series
        .into_iter()
        .map(|(labels, (delta, mut samples))| {
            samples.sort_by_key(|s| s.0);
            samples.dedup_by_key(|s| s.0);
            if delta {
                let mut total = 0.0;
                for s in &mut samples {
                    total += s.1;
                    s.1 = total;
                }
            }
            RawSeries { labels, samples }
        })
        .collect()
}
