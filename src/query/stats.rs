//! The two tests a canary verdict rests on, as Kayenta and textbook statistics run them: a
//! two-proportion z-test for error rates and the Mann–Whitney U test for latency
//! distributions, both one-sided ("is the canary worse?") with the normal approximation.
//!
//! Mann–Whitney is computed from latency sketches rather than from raw durations: every
//! sketch bucket (2 % wide) is one group of ties, ranked at its middle rank, with the tie
//! correction in the variance. Two durations within 2 % of each other count as equal, which
//! only makes the test more cautious.

use crate::rollup::latency::LatencyHistogram;

/// P(Z ≥ z) for a standard normal Z.
pub fn normal_upper_tail(z: f64) -> f64 {
    0.5 * libm::erfc(z / std::f64::consts::SQRT_2)
}

/// A one-sided two-proportion z-test: is the second group's rate higher than the first's?
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct ProportionTest {
    /// The z statistic (positive when the second rate is higher).
    pub z: f64,
    /// One-sided p-value of "the second rate is higher".
    pub p_value: f64,
}

/// Tests `hits_b / n_b` against `hits_a / n_a` with the pooled standard error. With no
/// trials on either side, or no variance at all (both rates 0 or both 1), there is no
/// evidence of a difference: z = 0, p = 0.5.
pub fn two_proportion(hits_a: u64, n_a: u64, hits_b: u64, n_b: u64) -> ProportionTest {
    if n_a == 0 || n_b == 0 {
        return ProportionTest {
            z: 0.0,
            p_value: 0.5,
        };
    }
    let (na, nb) = (n_a as f64, n_b as f64);
    let (pa, pb) = (hits_a as f64 / na, hits_b as f64 / nb);
    let pooled = (hits_a + hits_b) as f64 / (na + nb);
    let se = (pooled * (1.0 - pooled) * (1.0 / na + 1.0 / nb)).sqrt();
    if se == 0.0 {
        return ProportionTest {
            z: 0.0,
            p_value: 0.5,
        };
    }
    let z = (pb - pa) / se;
    ProportionTest {
        z,
        p_value: normal_upper_tail(z),
    }
}

/// A one-sided Mann–Whitney U test: are the second sample's values larger?
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct RankTest {
    /// U of the second sample (pairs where its value is larger, ties counting one half).
    pub u: f64,
    pub z: f64,
    /// One-sided p-value of "the second sample is larger".
    pub p_value: f64,
    /// U / (n_a · n_b): the probability that a value of the second sample is larger than one
    /// of the first (ties one half), the Vargha–Delaney effect size; 0.5 means no difference.
    pub superiority: f64,
}

/// Mann–Whitney U of `b` against `a`, with each sketch bucket as one group of ties. `None`
/// when either side is empty.
pub fn mann_whitney(a: &LatencyHistogram, b: &LatencyHistogram) -> Option<RankTest> {
    let (n_a, n_b) = (a.total() as f64, b.total() as f64);
    if n_a == 0.0 || n_b == 0.0 {
        return None;
    }
    let n = n_a + n_b;
    let mut buckets: Vec<u16> = a.buckets.keys().chain(b.buckets.keys()).copied().collect();
    buckets.sort_unstable();
    buckets.dedup();
    // Walk the merged buckets in order: each bucket's values share the middle rank.
    let (mut below, mut rank_sum_b, mut ties) = (0.0f64, 0.0f64, 0.0f64);
    for bucket in buckets {
        let in_a = a.buckets.get(&bucket).copied().unwrap_or(0) as f64;
        let in_b = b.buckets.get(&bucket).copied().unwrap_or(0) as f64;
        let t = in_a + in_b;
        let middle_rank = below + (t + 1.0) / 2.0;
        rank_sum_b += in_b * middle_rank;
        ties += t * t * t - t;
        below += t;
    }
    let u = rank_sum_b - n_b * (n_b + 1.0) / 2.0;
    let mean = n_a * n_b / 2.0;
    let variance = n_a * n_b / 12.0 * ((n + 1.0) - ties / (n * (n - 1.0)).max(1.0));
    let z = if variance > 0.0 {
        (u - mean) / variance.sqrt()
    } else {
        0.0
    };
    Some(RankTest {
        u,
        z,
        p_value: normal_upper_tail(z),
        superiority: u / (n_a * n_b),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sketch(durations_ms: &[i64]) -> LatencyHistogram {
        let mut h = LatencyHistogram::default();
        for d in durations_ms {
            h.add(d * 1_000_000);
        }
        h
    }

    #[test]
    fn normal_tail_matches_the_table() {
        assert!((normal_upper_tail(0.0) - 0.5).abs() < 1e-12);
        assert!((normal_upper_tail(1.96) - 0.025).abs() < 1e-4);
        assert!((normal_upper_tail(-1.6449) - 0.95).abs() < 1e-4);
    }

    #[test]
    fn two_proportions_as_the_textbook_computes_them() {
        // 10 of 1000 against 30 of 1000: pooled 0.02, se = sqrt(.02·.98·.002) = 0.006261,
        // z = 0.02 / 0.006261 = 3.194.
        let t = two_proportion(10, 1000, 30, 1000);
        assert!((t.z - 3.194).abs() < 1e-3, "{t:?}");
        assert!(t.p_value < 0.001);
        // The same rates: no evidence either way.
        let same = two_proportion(10, 1000, 20, 2000);
        assert!(same.z.abs() < 1e-9 && (same.p_value - 0.5).abs() < 1e-9);
        // No errors anywhere, or no trials: nothing to test.
        assert_eq!(two_proportion(0, 100, 0, 100).p_value, 0.5);
        assert_eq!(two_proportion(0, 0, 3, 10).p_value, 0.5);
    }

    #[test]
    fn mann_whitney_on_separated_overlapping_and_equal_samples() {
        // Every value of b above every value of a: U = n_a · n_b, superiority 1.
        let a = sketch(&[10, 11, 12, 13, 14, 15, 16, 17, 18, 19]);
        let b = sketch(&[30, 31, 32, 33, 34, 35, 36, 37, 38, 39]);
        let t = mann_whitney(&a, &b).unwrap();
        assert_eq!(t.u, 100.0);
        assert_eq!(t.superiority, 1.0);
        assert!(t.p_value < 0.001, "{t:?}");
        // Reversed: b is smaller, the one-sided test sees no evidence it is larger.
        let r = mann_whitney(&b, &a).unwrap();
        assert_eq!(r.u, 0.0);
        assert!(r.p_value > 0.999);
        // The same sample on both sides: U is exactly half of the pairs.
        let same = mann_whitney(&a, &a).unwrap();
        assert_eq!(same.u, 50.0);
        assert!((same.p_value - 0.5).abs() < 1e-9);
        // All values tied: no variance, no evidence.
        let flat = sketch(&[35; 20]);
        let t = mann_whitney(&flat, &flat).unwrap();
        assert_eq!((t.z, t.superiority), (0.0, 0.5));
        assert!(mann_whitney(&a, &LatencyHistogram::default()).is_none());
    }

    #[test]
    fn mann_whitney_small_sample_against_the_exact_u() {
        // a = {1, 3, 5}, b = {2, 4, 6, 8} (ms, in distinct buckets): pairs with b larger:
        // 2>1; 4>1,3; 6>1,3,5; 8>1,3,5 → 1 + 2 + 3 + 3 = 9.
        let t = mann_whitney(&sketch(&[1, 3, 5]), &sketch(&[2, 4, 6, 8])).unwrap();
        assert_eq!(t.u, 9.0);
        assert!((t.superiority - 0.75).abs() < 1e-12);
    }
}
