//! A fixed log-scale latency histogram with the shortest and longest duration it counted:
//! mergeable, small, and never answering a percentile outside what was observed.
//!
//! Bucket `i` holds durations up to 2^(i/4) µs, so neighbouring bounds differ by 19 %. A
//! percentile is read from the geometric middle of its bucket after the bucket is narrowed
//! to the observed minimum and maximum: within about 9 % of the truth, exact when every
//! duration was the same, and never above the longest nor below the shortest duration (a p99
//! of 2.72 s over spans of at most 2.54 s was what the bucket bound alone gave). 128 buckets
//! reach 2^32 µs (71 minutes); longer spans land in the last bucket.

use serde::{Deserialize, Serialize};

/// Number of buckets.
pub const BUCKETS: usize = 128;

/// What a histogram knows of the extremes it counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Extremes {
    /// Nothing counted yet.
    #[default]
    Empty,
    /// The shortest and longest duration counted (ns).
    Known { min: i64, max: i64 },
    /// Counts stored before the extremes were kept (rollup files of earlier versions), or
    /// merged with such counts: percentiles are not narrowed.
    Unknown,
}

impl Extremes {
    fn add(self, ns: i64) -> Extremes {
        match self {
            Extremes::Empty => Extremes::Known { min: ns, max: ns },
            Extremes::Known { min, max } => Extremes::Known {
                min: min.min(ns),
                max: max.max(ns),
            },
            Extremes::Unknown => Extremes::Unknown,
        }
    }

    fn merge(self, other: Extremes) -> Extremes {
        match (self, other) {
            (Extremes::Empty, x) | (x, Extremes::Empty) => x,
            (Extremes::Known { min: a, max: b }, Extremes::Known { min: c, max: d }) => {
                Extremes::Known {
                    min: a.min(c),
                    max: b.max(d),
                }
            }
            _ => Extremes::Unknown,
        }
    }
}

/// Counts of durations per bucket, and the extremes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LatencyHistogram {
    pub counts: Vec<u64>,
    #[serde(default)]
    pub extremes: Extremes,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self {
            counts: vec![0; BUCKETS],
            extremes: Extremes::Empty,
        }
    }
}

/// Upper bound of bucket `i` in nanoseconds.
pub fn upper_bound_ns(i: usize) -> f64 {
    2f64.powf(i as f64 / 4.0) * 1000.0
}

fn bucket_of(ns: i64) -> usize {
    let us = (ns as f64 / 1000.0).max(1.0);
    ((us.log2() * 4.0).ceil().max(0.0) as usize).min(BUCKETS - 1)
}

impl LatencyHistogram {
    /// Counts one duration.
    pub fn add(&mut self, ns: i64) {
        self.counts[bucket_of(ns)] += 1;
        self.extremes = self.extremes.add(ns);
    }

    /// Adds every count of `other`.
    pub fn merge(&mut self, other: &LatencyHistogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.extremes = self.extremes.merge(other.extremes);
    }

    /// Number of durations counted.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The `q`-quantile (0–1) in nanoseconds, or `None` when empty: the geometric middle of
    /// its bucket narrowed to the observed extremes.
    pub fn quantile(&self, q: f64) -> Option<i64> {
        let total = self.total();
        if total == 0 {
            return None;
        }
        let rank = (q.clamp(0.0, 1.0) * total as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                let mut upper = upper_bound_ns(i);
                let mut lower = if i == 0 { 0.0 } else { upper_bound_ns(i - 1) };
                if let Extremes::Known { min, max } = self.extremes {
                    lower = lower.max(min as f64);
                    upper = upper.min(max as f64).max(lower);
                }
                let middle = (lower * upper).sqrt().max(lower);
                return Some(match self.extremes {
                    Extremes::Known { min, max } => (middle as i64).clamp(min, max),
                    _ => middle as i64,
                });
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_within_ten_percent() {
        let mut h = LatencyHistogram::default();
        for ms in 1..=1000 {
            h.add(ms * 1_000_000);
        }
        for (q, want) in [(0.5, 500e6), (0.95, 950e6), (0.99, 990e6)] {
            let got = h.quantile(q).unwrap() as f64;
            assert!((got - want).abs() / want < 0.1, "p{q}: {got} vs {want}");
        }
        assert_eq!(LatencyHistogram::default().quantile(0.5), None);
    }

    /// Shipping's case: every request took 35.0 ms; the bucket's middle said 35.7 ms.
    #[test]
    fn equal_durations_give_that_duration_at_every_percentile() {
        let mut h = LatencyHistogram::default();
        for _ in 0..50 {
            h.add(35_000_000);
        }
        for q in [0.5, 0.95, 0.99] {
            assert_eq!(h.quantile(q), Some(35_000_000));
        }
    }

    /// Payment's case: a p99 above the slowest span (the bucket's bound) is clamped to it.
    #[test]
    fn no_percentile_above_the_maximum_or_below_the_minimum() {
        let mut a = LatencyHistogram::default();
        for ms in [10, 12, 2_538] {
            a.add(ms * 1_000_000);
        }
        let mut b = LatencyHistogram::default();
        b.add(2_400_000_000);
        a.merge(&b);
        assert_eq!(
            a.extremes,
            Extremes::Known {
                min: 10_000_000,
                max: 2_538_000_000
            }
        );
        let p99 = a.quantile(0.99).unwrap();
        assert!(p99 <= 2_538_000_000, "{p99}");
        let p0 = a.quantile(0.0).unwrap();
        assert!(p0 >= 10_000_000, "{p0}");
        // Merged with counts of unknown extremes, nothing is narrowed any more.
        let mut old = LatencyHistogram::default();
        old.counts[10] = 1;
        old.extremes = Extremes::Unknown;
        a.merge(&old);
        assert_eq!(a.extremes, Extremes::Unknown);
        // An empty histogram merges as nothing.
        let mut empty = LatencyHistogram::default();
        empty.merge(&b);
        assert_eq!(empty.extremes, b.extremes);
    }
}
