//! Latency percentiles of the load generator: an HDR histogram (`hdrhistogram`, three
//! significant digits) rather than the rollups' log-scale buckets, whose ≈ 19 % steps made every
//! reported p50 and p99 a bucket bound.

use hdrhistogram::Histogram;

/// Latencies in nanoseconds, 1 µs to 1 h at three significant digits.
#[derive(Clone)]
pub struct Latencies(Histogram<u64>);

impl Default for Latencies {
    fn default() -> Self {
        Latencies(
            Histogram::new_with_bounds(1_000, 3_600_000_000_000, 3)
                .expect("constant bounds: 1 µs ≤ 2 × 1 µs ≤ 1 h, 3 digits"),
        )
    }
}

impl Latencies {
    /// Counts one latency (values past an hour count as an hour).
    pub fn record(&mut self, nanos: u64) {
        self.0.saturating_record(nanos);
    }

    /// The latency at quantile `q` (0–1; 1 is the maximum), in milliseconds; 0 before
    /// anything was recorded.
    pub fn ms(&self, q: f64) -> f64 {
        if self.0.is_empty() {
            return 0.0;
        }
        self.0.value_at_quantile(q) as f64 / 1e6
    }
}

#[cfg(test)]
mod tests {
    use super::Latencies;

    #[test]
    fn percentiles_within_a_tenth_of_a_percent() {
        let mut l = Latencies::default();
        assert_eq!(l.ms(0.99), 0.0);
        for ms in 1..=1000u64 {
            l.record(ms * 1_000_000);
        }
        assert!((l.ms(0.5) - 500.0).abs() <= 0.5, "{}", l.ms(0.5));
        assert!((l.ms(0.99) - 990.0).abs() <= 1.0, "{}", l.ms(0.99));
        l.record(u64::MAX);
        assert!(l.ms(1.0) >= 3_599_000.0, "an hour at most: {}", l.ms(1.0));
    }
}
