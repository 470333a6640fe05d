//! A log-scale latency sketch with the shortest and longest duration it counted: mergeable,
//! small, within 1 % of the true percentile, and never answering outside what was observed.
//!
//! Bucket `i` holds durations in (γ^(i−1), γ^i] ns with γ = 1.02 (the DDSketch layout), kept
//! sparse: a cell stores only the buckets it used (a minute of one operation uses a few dozen).
//! A percentile is read from the geometric middle of its bucket, narrowed to the observed
//! minimum and maximum, so it is within √γ − 1 ≈ 0.995 % of the nearest-rank percentile of the
//! durations counted, exact when they were all the same, and never above the longest nor below
//! the shortest. [`MAX_BUCKET`] reaches 2^45 ns (about 10 hours); longer spans share it.
//!
//! Rollup files written before the sketch hold 128 coarse buckets (2^(i/4) µs, 19 % apart);
//! [`LatencyHistogram::from_coarse`] reads them at their buckets' middles.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Ratio between neighbouring bucket bounds.
const GAMMA: f64 = 1.02;

/// The last bucket: durations beyond γ^MAX_BUCKET ns (≈ 2^45.7 ns) are counted in it.
pub const MAX_BUCKET: u16 = 1600;

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

/// Counts of durations per used bucket, and the extremes.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LatencyHistogram {
    /// Bucket index → durations counted in it.
    pub buckets: BTreeMap<u16, u64>,
    #[serde(default)]
    pub extremes: Extremes,
}

/// Upper bound of bucket `i` in nanoseconds.
pub fn upper_bound_ns(i: u16) -> f64 {
    GAMMA.powi(i32::from(i))
}

/// The bucket a duration falls in.
pub fn bucket_of(ns: i64) -> u16 {
    let ns = (ns as f64).max(1.0);
    let i = (ns.ln() / GAMMA.ln()).ceil();
    // Bucket i holds (γ^(i−1), γ^i]: floating-point rounding may put a bound one off.
    let i = if upper_bound_ns(i as u16) < ns {
        i + 1.0
    } else {
        i
    };
    (i.max(0.0) as u64).min(u64::from(MAX_BUCKET)) as u16
}

impl LatencyHistogram {
    /// Counts one duration.
    pub fn add(&mut self, ns: i64) {
        *self.buckets.entry(bucket_of(ns)).or_default() += 1;
        self.extremes = self.extremes.add(ns);
    }

    /// Adds every count of `other`.
    pub fn merge(&mut self, other: &LatencyHistogram) {
        for (bucket, count) in &other.buckets {
            *self.buckets.entry(*bucket).or_default() += count;
        }
        self.extremes = self.extremes.merge(other.extremes);
    }

    /// Number of durations counted.
    pub fn total(&self) -> u64 {
        self.buckets.values().sum()
    }

    /// The histogram of a rollup file written before the sketch: coarse bucket `i` held
    /// durations up to 2^(i/4) µs; its count goes to the fine bucket of its geometric middle.
    pub fn from_coarse(counts: &[u64], extremes: Extremes) -> LatencyHistogram {
        let mut h = LatencyHistogram {
            buckets: BTreeMap::new(),
            extremes,
        };
        for (i, count) in counts.iter().enumerate().filter(|(_, c)| **c > 0) {
            let upper = 2f64.powf(i as f64 / 4.0) * 1000.0;
            let lower = if i == 0 { 1.0 } else { upper / 2f64.powf(0.25) };
            *h.buckets
                .entry(bucket_of((lower * upper).sqrt() as i64))
                .or_default() += count;
        }
        h
    }

    /// The `q`-quantile (0–1) in nanoseconds (nearest rank), or `None` when empty: the
    /// geometric middle of its bucket narrowed to the observed extremes.
    pub fn quantile(&self, q: f64) -> Option<i64> {
        let total = self.total();
        if total == 0 {
            return None;
        }
        let rank = (q.clamp(0.0, 1.0) * total as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (&i, c) in &self.buckets {
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
                    Extremes::Known { min, max } => (middle.round() as i64).clamp(min, max),
                    _ => middle.round() as i64,
                });
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The nearest-rank `q`-quantile of `values`, the exact answer the sketch approximates.
    fn exact(values: &mut [i64], q: f64) -> i64 {
        values.sort_unstable();
        let rank = (q * values.len() as f64).ceil().max(1.0) as usize;
        values[rank - 1]
    }

    #[test]
    fn quantiles_within_one_percent() {
        let mut rng = fastrand::Rng::with_seed(7);
        // Spread over six orders of magnitude, as span durations are.
        let mut values: Vec<i64> = (0..20_000)
            .map(|_| (10f64.powf(3.0 + rng.f64() * 6.0)) as i64)
            .collect();
        let mut h = LatencyHistogram::default();
        values.iter().for_each(|v| h.add(*v));
        for q in [0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0] {
            let want = exact(&mut values, q) as f64;
            let got = h.quantile(q).unwrap() as f64;
            assert!((got - want).abs() / want <= 0.01, "p{q}: {got} vs {want}");
        }
        assert_eq!(LatencyHistogram::default().quantile(0.5), None);
        // Every duration lands in the bucket whose bounds hold it.
        for v in [1, 2, 999, 1000, 1001, 35_000_000, 2_538_000_000, i64::MAX] {
            let b = bucket_of(v);
            assert!(
                b == MAX_BUCKET || (v as f64) <= upper_bound_ns(b),
                "{v} above bucket {b}"
            );
            assert!(
                b == 0 || (v as f64) > upper_bound_ns(b - 1),
                "{v} below bucket {b}"
            );
        }
    }

    #[test]
    fn coarse_buckets_of_older_files_read_at_their_middles() {
        let mut coarse = vec![0u64; 128];
        coarse[60] = 3; // up to 2^15 µs ≈ 32.8 ms
        let h = LatencyHistogram::from_coarse(&coarse, Extremes::Unknown);
        assert_eq!(h.total(), 3);
        let p50 = h.quantile(0.5).unwrap() as f64;
        let (upper, lower) = (2f64.powf(15.0) * 1e3, 2f64.powf(14.75) * 1e3);
        assert!(p50 > lower && p50 <= upper, "{p50}");
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
        old.buckets.insert(10, 1);
        old.extremes = Extremes::Unknown;
        a.merge(&old);
        assert_eq!(a.extremes, Extremes::Unknown);
        // An empty histogram merges as nothing.
        let mut empty = LatencyHistogram::default();
        empty.merge(&b);
        assert_eq!(empty.extremes, b.extremes);
    }
}
