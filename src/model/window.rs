//! A page's or a query's time window: the picker's relative range (`range=1h`) or absolute
//! `from`/`to`, resolved against now. Shared by the UI, the API and saved views, so it lives
//! with the other time types.

use serde::Deserialize;

use super::time::{parse_time, picker_text, UnixNanos, NANOS_PER_SECOND};

/// A query's time range `[start, end]` as the APIs read it, checked once at the edge:
/// times parsed by the one parser, defaults applied, start not after end. Each protocol says
/// a [`WindowError`] in its own words (Prometheus and Loki clients know theirs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    start: UnixNanos,
    end: UnixNanos,
}

/// Why a window was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    /// A bound did not parse; the text names the parameter.
    #[error("{0}")]
    Invalid(String),
    /// The end is before the start.
    #[error("the end of the time range is before its start")]
    Reversed,
    /// More steps than one series may have.
    #[error("{points} points per series exceed the {max} allowed; use a larger step")]
    TooManyPoints { points: i64, max: i64 },
}

impl Window {
    /// `[start, end]`, refused when the end is before the start.
    pub fn new(start: UnixNanos, end: UnixNanos) -> Result<Window, WindowError> {
        if end < start {
            return Err(WindowError::Reversed);
        }
        Ok(Window { start, end })
    }

    /// From optional `start`/`end` parameters (any form [`parse_time`] reads): the end
    /// defaults to `now`, the start to `default_len` nanoseconds before the end.
    pub fn from_params(
        start: Option<&str>,
        end: Option<&str>,
        default_len: i64,
        now: UnixNanos,
    ) -> Result<Window, WindowError> {
        let read = |name: &str, text: Option<&str>| {
            text.filter(|t| !t.trim().is_empty())
                .map(|t| UnixNanos::parse_param(name, t).map_err(WindowError::Invalid))
                .transpose()
        };
        let end = read("end", end)?.unwrap_or(now);
        let start = read("start", start)?.unwrap_or(end.minus(default_len));
        Window::new(start, end)
    }

    /// The start, Unix ns.
    pub fn start(&self) -> i64 {
        self.start.nanos()
    }

    /// The end, Unix ns.
    pub fn end(&self) -> i64 {
        self.end.nanos()
    }

    /// Whether start and end are the same moment.
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Its length in nanoseconds (saturating: a window across the whole `i64` range is
    /// `i64::MAX` long).
    pub fn len_nanos(&self) -> i64 {
        self.end().saturating_sub(self.start())
    }

    /// The step times `start, start + step, …` up to the end, refused beyond `max_points`
    /// before any is made.
    pub fn steps(&self, step: i64, max_points: i64) -> Result<Vec<i64>, WindowError> {
        let step = step.max(1);
        let count = self.len_nanos() / step;
        if count >= max_points {
            return Err(WindowError::TooManyPoints {
                points: count.saturating_add(1),
                max: max_points,
            });
        }
        Ok((0..=count).map(|i| self.start() + i * step).collect())
    }
}

/// Relative ranges offered by the picker, with their length in seconds.
pub const RANGES: &[(&str, i64)] = &[
    ("15m", 15 * 60),
    ("1h", 3600),
    ("6h", 6 * 3600),
    ("24h", 24 * 3600),
    ("7d", 7 * 24 * 3600),
];

/// Default relative range.
pub const DEFAULT_RANGE: &str = "1h";

/// The picker fields as they come in the URL.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TimeParams {
    pub range: Option<String>,
    /// Absolute start, in any form [`parse_time`] reads.
    pub from: Option<String>,
    pub to: Option<String>,
}

/// A resolved time window.
#[derive(Debug, Clone)]
pub struct TimeWindow {
    pub start: i64,
    pub end: i64,
    /// The relative range in use, or `None` for an absolute window.
    pub range: Option<String>,
    /// The absolute bounds as the picker shows them (`YYYY-MM-DDTHH:MM`, UTC).
    pub from_text: String,
    pub to_text: String,
}

impl TimeParams {
    /// Resolves the window at `now` (Unix ns). Absolute bounds win over a relative range.
    pub fn resolve(&self, now: i64) -> Result<TimeWindow, String> {
        let nonempty = |s: &Option<String>| {
            s.as_deref()
                .filter(|s| !s.trim().is_empty())
                .map(str::to_string)
        };
        let (from, to) = (nonempty(&self.from), nonempty(&self.to));
        if from.is_some() || to.is_some() {
            let end = to.as_deref().map(parse_time).transpose()?.unwrap_or(now);
            let start = from
                .as_deref()
                .map(parse_time)
                .transpose()?
                .unwrap_or(end.saturating_sub(3600 * NANOS_PER_SECOND));
            if start >= end {
                return Err("the start of the time range must be before its end".into());
            }
            return Ok(TimeWindow {
                start,
                end,
                range: None,
                from_text: picker_text(start),
                to_text: picker_text(end),
            });
        }
        let range = nonempty(&self.range).unwrap_or_else(|| DEFAULT_RANGE.to_string());
        let seconds = RANGES
            .iter()
            .find(|(name, _)| *name == range)
            .map(|(_, s)| *s)
            .ok_or_else(|| format!("unknown range {range:?}: use 15m, 1h, 6h, 24h or 7d"))?;
        let start = now.saturating_sub(seconds * NANOS_PER_SECOND);
        Ok(TimeWindow {
            start,
            end: now,
            range: Some(range),
            from_text: picker_text(start),
            to_text: picker_text(now),
        })
    }
}

impl TimeParams {
    /// The window at `now`, or — for pages that still render with a message — the default
    /// window and what was wrong with the given one.
    pub fn resolve_or_default(&self, now: i64) -> (TimeWindow, Option<String>) {
        match self.resolve(now) {
            Ok(w) => (w, None),
            Err(e) => (TimeWindow::default_at(now), Some(e)),
        }
    }
}

impl TimeWindow {
    /// The default relative window ending at `now`, used when the URL's window is invalid.
    pub fn default_at(now: i64) -> TimeWindow {
        let start = now.saturating_sub(3600 * NANOS_PER_SECOND);
        TimeWindow {
            start,
            end: now,
            range: Some(DEFAULT_RANGE.to_string()),
            from_text: picker_text(start),
            to_text: picker_text(now),
        }
    }

    /// The moment the page describes: now for a relative window, the window's end (if past)
    /// for an absolute one, so a saved view of last night shows last night's health.
    pub fn as_of(&self, now: i64) -> i64 {
        if self.range.is_some() {
            now
        } else {
            self.end.min(now)
        }
    }

    /// The URL parameters that reproduce this window (relative stays relative).
    pub fn query_pairs(&self) -> Vec<(&'static str, String)> {
        match &self.range {
            Some(r) => vec![("range", r.clone())],
            None => vec![
                ("from", self.from_text.clone()),
                ("to", self.to_text.clone()),
            ],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_and_absolute() {
        let now = 1_795_428_900_000_000_000;
        let w = TimeParams::default().resolve(now).unwrap();
        assert_eq!(w.end - w.start, 3600 * NANOS_PER_SECOND);
        let p = TimeParams {
            from: Some("2026-11-23T09:00".into()),
            to: Some("2026-11-23T10:00".into()),
            range: None,
        };
        let w = p.resolve(now).unwrap();
        assert_eq!(w.range, None);
        assert_eq!(w.to_text, "2026-11-23T10:00");
        assert!(TimeParams {
            range: Some("2y".into()),
            ..Default::default()
        }
        .resolve(now)
        .is_err());
    }

    #[test]
    fn query_windows_default_check_and_step() {
        let now = UnixNanos::from_nanos(10 * NANOS_PER_SECOND);
        let w = Window::from_params(None, None, 4 * NANOS_PER_SECOND, now).unwrap();
        assert_eq!(
            (w.start(), w.end()),
            (6 * NANOS_PER_SECOND, 10 * NANOS_PER_SECOND)
        );
        assert_eq!(
            w.steps(2 * NANOS_PER_SECOND, 100).unwrap(),
            [6, 8, 10].map(|s| s * NANOS_PER_SECOND)
        );
        assert!(matches!(
            w.steps(1, 100),
            Err(WindowError::TooManyPoints { max: 100, .. })
        ));
        assert_eq!(
            Window::from_params(Some("20"), Some("10"), 0, now),
            Err(WindowError::Reversed)
        );
        let bad = Window::from_params(Some("yesterday"), None, 0, now).unwrap_err();
        assert!(bad.to_string().starts_with("invalid start:"), "{bad}");
        // 580 years: the length saturates instead of wrapping.
        let huge = Window::new(
            UnixNanos::from_nanos(i64::MIN + 1),
            UnixNanos::from_nanos(i64::MAX),
        )
        .unwrap();
        assert_eq!(huge.len_nanos(), i64::MAX);
        assert!(huge.steps(NANOS_PER_SECOND, 11_000).is_err());
    }
}
