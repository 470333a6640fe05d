//! One-minute downsampling of metric points, written beside the raw points at flush so that
//! charts with steps of five minutes or more read one point per series and minute.
//!
//! Per series and minute: gauges (and non-monotonic sums) keep the average of their finite
//! values with min, max and the number of samples (`count`) as its weight; delta sums and
//! delta histograms add up; cumulative series (sums, histograms) and exponential histograms
//! and summaries keep their last point, so increases are still computed between consecutive
//! points, across minutes and flushes alike. Cumulative counters also keep their first value
//! of the minute (`min`) and their increase inside the minute (`sum`, reset-aware), so a reset
//! inside a minute loses nothing. (Cumulative histograms that reset inside a minute do lose the
//! part before the reset.)

use std::collections::BTreeMap;

use crate::model::{MetricKind, MetricPoint};

/// A downsampled point, stored under its own folder.
#[derive(Debug, Clone, PartialEq)]
pub struct MinuteMetric(pub MetricPoint);

const MINUTE: i64 = super::MINUTE;

fn series_key(p: &MetricPoint) -> (String, String, String, String, String, String) {
    (
        p.name.clone(),
        p.resource.service_name.clone(),
        p.resource.service_instance_id.clone(),
        serde_json::Value::Object(p.attributes.clone()).to_string(),
        p.kind.as_str().to_string(),
        p.temporality.clone(),
    )
}

/// Downsamples raw points to one point per series and minute.
pub fn downsample(points: &[MetricPoint]) -> Vec<MinuteMetric> {
    let mut groups: BTreeMap<(_, i64), Vec<&MetricPoint>> = BTreeMap::new();
    for p in points {
        groups
            .entry((series_key(p), p.time_unix_nano.div_euclid(MINUTE)))
            .or_default()
            .push(p);
    }
    let mut out = Vec::new();
    for (_, mut group) in groups {
        group.sort_by_key(|p| p.time_unix_nano);
        let Some(last) = group.last().copied() else {
            continue;
        };
        let gauge_like =
            last.kind == MetricKind::Gauge || (last.kind == MetricKind::Sum && !last.is_monotonic);
        let delta = last.temporality == "delta";
        let point = if gauge_like {
            let values: Vec<f64> = group
                .iter()
                .filter_map(|p| p.value)
                .filter(|v| v.is_finite())
                .collect();
            if values.is_empty() {
                continue;
            }
            let mut p = last.clone();
            p.value = Some(values.iter().sum::<f64>() / values.len() as f64);
            p.min = values.iter().copied().reduce(f64::min);
            p.max = values.iter().copied().reduce(f64::max);
            p.count = Some(values.len() as u64);
            p
        } else if last.kind == MetricKind::Sum && !delta {
            // Cumulative counter: the last value, plus the first value (`min`) and the increase
            // inside the minute (`sum`, reset-aware) so resets inside the minute lose nothing.
            let values: Vec<(i64, f64)> = group
                .iter()
                .filter_map(|p| {
                    p.value
                        .filter(|v| v.is_finite())
                        .map(|v| (p.start_time_unix_nano, v))
                })
                .collect();
            let Some(first) = values.first() else {
                continue;
            };
            let increase = values
                .windows(2)
                .map(|w| {
                    if w[1].0 == w[0].0 && w[1].1 >= w[0].1 {
                        w[1].1 - w[0].1
                    } else {
                        w[1].1
                    }
                })
                .sum();
            let mut p = last.clone();
            p.value = values.last().map(|v| v.1);
            p.min = Some(first.1);
            p.sum = Some(increase);
            p
        } else if last.kind == MetricKind::Sum && delta {
            let mut p = last.clone();
            p.value = Some(
                group
                    .iter()
                    .filter_map(|p| p.value)
                    .filter(|v| v.is_finite())
                    .sum(),
            );
            p.start_time_unix_nano = group
                .iter()
                .map(|p| p.start_time_unix_nano)
                .min()
                .unwrap_or(0);
            p
        } else if last.kind == MetricKind::Histogram && delta {
            let well_formed: Vec<&&MetricPoint> = group
                .iter()
                .filter(|p| {
                    p.bucket_counts.len() == p.explicit_bounds.len() + 1
                        && p.explicit_bounds == last.explicit_bounds
                })
                .collect();
            if well_formed.is_empty() {
                continue;
            }
            let mut p = last.clone();
            p.bucket_counts = (0..last.bucket_counts.len())
                .map(|i| well_formed.iter().map(|q| q.bucket_counts[i]).sum())
                .collect();
            p.count = Some(well_formed.iter().filter_map(|q| q.count).sum());
            p.sum = Some(well_formed.iter().filter_map(|q| q.sum).sum());
            p.start_time_unix_nano = well_formed
                .iter()
                .map(|q| q.start_time_unix_nano)
                .min()
                .unwrap_or(0);
            p
        } else {
            last.clone()
        };
        out.push(MinuteMetric(point));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn point(kind: MetricKind, temporality: &str, t: i64, v: f64) -> MetricPoint {
        MetricPoint {
            name: "m".into(),
            description: String::new(),
            unit: String::new(),
            kind,
            temporality: temporality.into(),
            is_monotonic: kind == MetricKind::Sum,
            time_unix_nano: t,
            start_time_unix_nano: 0,
            value: Some(v),
            count: None,
            sum: None,
            min: None,
            max: None,
            bucket_counts: Vec::new(),
            explicit_bounds: Vec::new(),
            distribution: None,
            attributes: Default::default(),
            resource: Arc::new(Default::default()),
            scope_name: String::new(),
        }
    }

    #[test]
    fn gauges_average_deltas_add_cumulatives_keep_last() {
        let s = 1_000_000_000;
        let raw = vec![
            point(MetricKind::Gauge, "", s, 10.0),
            point(MetricKind::Gauge, "", 2 * s, f64::NAN),
            point(MetricKind::Gauge, "", 3 * s, 20.0),
            point(MetricKind::Sum, "delta", s, 2.0),
            point(MetricKind::Sum, "delta", 2 * s, 3.0),
            point(MetricKind::Sum, "cumulative", s, 100.0),
            point(MetricKind::Sum, "cumulative", 2 * s, 107.0),
            point(MetricKind::Gauge, "", 61 * s, 5.0),
        ];
        let out = downsample(&raw);
        assert_eq!(out.len(), 4);
        let find = |kind: MetricKind, temporality: &str, minute: i64| {
            out.iter()
                .find(|m| {
                    m.0.kind == kind
                        && m.0.temporality == temporality
                        && m.0.time_unix_nano / (60 * s) == minute
                })
                .unwrap()
                .0
                .clone()
        };
        let g = find(MetricKind::Gauge, "", 0);
        assert_eq!(
            (g.value, g.min, g.max, g.count),
            (Some(15.0), Some(10.0), Some(20.0), Some(2))
        );
        assert_eq!(find(MetricKind::Sum, "delta", 0).value, Some(5.0));
        let c = find(MetricKind::Sum, "cumulative", 0);
        assert_eq!(
            (c.value, c.min, c.sum),
            (Some(107.0), Some(100.0), Some(7.0))
        );
        assert_eq!(find(MetricKind::Gauge, "", 1).value, Some(5.0));
    }
}
