//! A fixed log-scale latency histogram: mergeable, small, and accurate to about 9 %.
//!
//! Bucket `i` holds durations up to 2^(i/4) µs, so neighbouring bounds differ by 19 % and a
//! percentile read from the bucket's geometric middle is within about 9 % of the truth. 128
//! buckets reach 2^32 µs (71 minutes); longer spans land in the last bucket.

use serde::{Deserialize, Serialize};

/// Number of buckets.
pub const BUCKETS: usize = 128;

/// Counts of durations per bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LatencyHistogram {
    pub counts: Vec<u64>,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self {
            counts: vec![0; BUCKETS],
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
    }

    /// Adds every count of `other`.
    pub fn merge(&mut self, other: &LatencyHistogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
    }

    /// Number of durations counted.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The `q`-quantile (0–1) in nanoseconds, or `None` when empty.
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
                let upper = upper_bound_ns(i);
                let lower = if i == 0 { 0.0 } else { upper_bound_ns(i - 1) };
                return Some(((lower * upper).sqrt().max(lower)) as i64);
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
}
