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

use crate::model::{MetricKind, MetricPoint};

/// A downsampled point, stored under its own folder.
#[derive(Debug, Clone, PartialEq)]
pub struct MinuteMetric(pub MetricPoint);

/// One raw point as aggregation reads it, borrowed from its batch.
pub struct Sample<'a> {
    pub start: i64,
    pub value: Option<f64>,
    pub count: Option<u64>,
    pub sum: Option<f64>,
    pub bucket_counts: &'a [u64],
    pub explicit_bounds: &'a [f64],
}

/// The minute point of one series' points (`group`, oldest first), starting from its last
/// point; `None` when nothing in the minute is usable.
pub fn minute_point(mut p: MetricPoint, group: &[Sample<'_>]) -> Option<MetricPoint> {
    let gauge_like = p.kind == MetricKind::Gauge || (p.kind == MetricKind::Sum && !p.is_monotonic);
    let delta = p.temporality == "delta";
    if gauge_like {
        let values: Vec<f64> = group
            .iter()
            .filter_map(|s| s.value)
            .filter(|v| v.is_finite())
            .collect();
        if values.is_empty() {
            return None;
        }
        p.value = Some(values.iter().sum::<f64>() / values.len() as f64);
        p.min = values.iter().copied().reduce(f64::min);
        p.max = values.iter().copied().reduce(f64::max);
        p.count = Some(values.len() as u64);
    } else if p.kind == MetricKind::Sum && !delta {
        // Cumulative counter: the last value, plus the first value (`min`) and the increase
        // inside the minute (`sum`, reset-aware) so resets inside the minute lose nothing.
        let values: Vec<(i64, f64)> = group
            .iter()
            .filter_map(|s| s.value.filter(|v| v.is_finite()).map(|v| (s.start, v)))
            .collect();
        let first = values.first()?;
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
        p.min = Some(first.1);
        p.value = values.last().map(|v| v.1);
        p.sum = Some(increase);
    } else if p.kind == MetricKind::Sum && delta {
        p.value = Some(
            group
                .iter()
                .filter_map(|s| s.value)
                .filter(|v| v.is_finite())
                .sum(),
        );
        p.start_time_unix_nano = group.iter().map(|s| s.start).min().unwrap_or(0);
    } else if p.kind == MetricKind::Histogram && delta {
        let well_formed: Vec<&Sample<'_>> = group
            .iter()
            .filter(|s| {
                s.bucket_counts.len() == s.explicit_bounds.len() + 1
                    && s.explicit_bounds == p.explicit_bounds.as_slice()
            })
            .collect();
        if well_formed.is_empty() {
            return None;
        }
        // Every well-formed point has one bucket more than the last point's bounds.
        p.bucket_counts = (0..p.explicit_bounds.len() + 1)
            .map(|i| well_formed.iter().map(|s| s.bucket_counts[i]).sum())
            .collect();
        p.count = Some(well_formed.iter().filter_map(|s| s.count).sum());
        p.sum = Some(well_formed.iter().filter_map(|s| s.sum).sum());
        p.start_time_unix_nano = well_formed.iter().map(|s| s.start).min().unwrap_or(0);
    }
    Some(p)
}
