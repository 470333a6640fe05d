//! Time buckets of histograms, aligned to whole multiples of a round width (10 s, 1 min,
//! 5 min, …) rather than to the moment a page was loaded: the same record lands in the same
//! bucket on every reload, one burst is not split in two by where the window happened to
//! start, and a bucket is a whole number of the blocks' minutes, so counts kept per block
//! can be added without reading the block.

/// Round bucket widths, in seconds.
const WIDTHS_SECS: [i64; 19] = [
    1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1_800, 3_600, 7_200, 10_800, 21_600, 43_200,
    86_400, 604_800,
];

/// Equal buckets covering a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Buckets {
    /// Start of the first bucket: a multiple of `width` at or before the window's start.
    pub first: i64,
    /// Width of each bucket in nanoseconds.
    pub width: i64,
    /// Number of buckets; the last one ends at or after the window's end.
    pub count: usize,
}

impl Buckets {
    /// The smallest round width that covers `[start, end]` in about `max` buckets: at most
    /// `max` whole widths fit in the window, so a window a little longer than an hour still
    /// gets 1-minute buckets for `max` = 60 (and one or two more buckets, as the window does
    /// not start or end on a boundary).
    pub fn covering(start: i64, end: i64, max: usize) -> Buckets {
        let span = (end - start).max(1);
        let max = max.max(1) as i64;
        let width = WIDTHS_SECS
            .iter()
            .map(|s| s * 1_000_000_000)
            .find(|w| span / w <= max)
            .unwrap_or_else(|| (span / max).max(1));
        let first = start.div_euclid(width) * width;
        let count = (end - first).div_euclid(width) + 1;
        Buckets {
            first,
            width,
            count: count.clamp(1, max + 2) as usize,
        }
    }

    /// The bucket of time `t`, clamped into range.
    pub fn of(&self, t: i64) -> usize {
        ((t - self.first).div_euclid(self.width)).clamp(0, self.count as i64 - 1) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    #[test]
    fn an_hour_in_sixty_buckets_is_minutes_on_minute_boundaries() {
        let start = 1_795_428_925 * S + 553_000_000; // 10:15:25.553
        let b = Buckets::covering(start, start + 3_600 * S, 60);
        assert_eq!(b.width, 60 * S);
        assert_eq!(b.first % (60 * S), 0);
        assert!(b.first <= start && b.first > start - 60 * S);
        assert_eq!(b.count, 61);
        // Reloading a moment later keeps every record in a bucket with the same start.
        let later = Buckets::covering(start + 754_000_000, start + 3_600 * S + 754_000_000, 60);
        let t = start + 1_000 * S;
        assert_eq!(
            b.first + b.of(t) as i64 * b.width,
            later.first + later.of(t) as i64 * later.width
        );
    }

    #[test]
    fn odd_windows_get_round_widths() {
        assert_eq!(Buckets::covering(0, 15 * 60 * S, 60).width, 15 * S);
        assert_eq!(
            Buckets::covering(0, 7 * 86_400 * S, 60).width,
            3 * 3_600 * S
        );
        assert_eq!(Buckets::covering(0, 1, 60).width, S);
        let huge = Buckets::covering(0, 3_650 * 86_400 * S, 60);
        assert!(huge.count <= 62);
        // A moment longer than an hour is still minutes.
        assert_eq!(Buckets::covering(0, 3_600 * S + 5, 60).width, 60 * S);
        assert_eq!(huge.of(-5), 0);
        assert_eq!(huge.of(i64::MAX / 2), huge.count - 1);
    }
}
