//! Points in time as every layer passes them: Unix nanoseconds in an `i64`, read from text by
//! one parser whatever the caller (API query strings, forms, the time picker, CLI flags), so
//! every place accepts the same forms and an out-of-range time is an error, never a wrapped
//! number.

/// Nanoseconds in a second.
pub const NANOS_PER_SECOND: i64 = 1_000_000_000;

/// Nanoseconds in an hour.
pub const NANOS_PER_HOUR: i64 = 3600 * NANOS_PER_SECOND;

/// A moment as the edges of the server read it: nanoseconds since the Unix epoch, from
/// [`parse_time`] or the clock. Arithmetic on it saturates at the ends of the `i64` range
/// instead of wrapping; the query layers below take the plain number ([`UnixNanos::nanos`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnixNanos(i64);

impl UnixNanos {
    /// Now.
    pub fn now() -> UnixNanos {
        UnixNanos(now_ns())
    }

    /// A moment given as nanoseconds (as gRPC and JSON numbers carry it).
    pub const fn from_nanos(nanos: i64) -> UnixNanos {
        UnixNanos(nanos)
    }

    /// Reads parameter `name` in any form [`parse_time`] reads; the error names it.
    pub fn parse_param(name: &str, text: &str) -> Result<UnixNanos, String> {
        parse_time(text)
            .map(UnixNanos)
            .map_err(|e| format!("invalid {name}: {e}"))
    }

    /// The nanoseconds.
    pub const fn nanos(self) -> i64 {
        self.0
    }

    /// `nanos` earlier (the earliest moment when that is before it).
    pub fn minus(self, nanos: i64) -> UnixNanos {
        UnixNanos(self.0.saturating_sub(nanos))
    }
}

/// Now, Unix nanoseconds (0 only if the clock is before 1970 or after 2262).
pub fn now_ns() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0)
}

/// Reads a time given as
/// - RFC 3339 (`2026-11-23T10:00:00Z`, any offset, any fraction);
/// - `YYYY-MM-DDTHH:MM[:SS]` in UTC, as `datetime-local` inputs send it;
/// - a Unix timestamp in seconds, milliseconds, microseconds or nanoseconds, told apart by
///   magnitude (as Loki does), or in seconds with a fraction (`1795428900.5`, as Prometheus
///   clients send).
///
/// A time outside what nanoseconds in an `i64` hold (years 1677–2262) is an error naming it.
pub fn parse_time(text: &str) -> Result<i64, String> {
    let text = text.trim();
    let out_of_range = || format!("time {text:?} is out of range (years 1677 to 2262)");
    if let Some((secs, fraction)) = text.split_once('.') {
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if digits(secs) && digits(fraction) {
            let nanos: String = fraction
                .chars()
                .chain(std::iter::repeat('0'))
                .take(9)
                .collect();
            let secs: i64 = secs.parse().map_err(|_| out_of_range())?;
            let nanos: i64 = nanos.parse().map_err(|_| out_of_range())?;
            return secs
                .checked_mul(NANOS_PER_SECOND)
                .and_then(|s| s.checked_add(nanos))
                .ok_or_else(out_of_range);
        }
    }
    if let Ok(n) = text.parse::<i64>() {
        let abs = n.unsigned_abs();
        let scale = if abs < 100_000_000_000 {
            NANOS_PER_SECOND
        } else if abs < 100_000_000_000_000 {
            1_000_000
        } else if abs < 100_000_000_000_000_000 {
            1_000
        } else {
            1
        };
        return n.checked_mul(scale).ok_or_else(out_of_range);
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return t.timestamp_nanos_opt().ok_or_else(out_of_range);
    }
    for form in ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M"] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(text, form) {
            return t.and_utc().timestamp_nanos_opt().ok_or_else(out_of_range);
        }
    }
    Err(format!(
        "invalid time {text:?}: use RFC 3339, YYYY-MM-DDTHH:MM (UTC) or a Unix timestamp"
    ))
}

/// `YYYY-MM-DDTHH:MM` of a Unix-nanosecond time, for `datetime-local` inputs (UTC).
pub fn picker_text(ns: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(ns)
        .format("%Y-%m-%dT%H:%M")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_by_magnitude() {
        let ns = 1_795_428_900_000_000_000;
        assert_eq!(parse_time("1795428900").unwrap(), ns);
        assert_eq!(parse_time("1795428900000").unwrap(), ns);
        assert_eq!(parse_time("1795428900000000000").unwrap(), ns);
        assert_eq!(parse_time("1795428900.25").unwrap(), ns + 250_000_000);
        assert!(parse_time("yesterday").is_err());
    }

    #[test]
    fn every_text_form_reads_the_same_instant() {
        let ns = 1_795_428_900_000_000_000;
        assert_eq!(parse_time("2026-11-23T10:15:00Z").unwrap(), ns);
        assert_eq!(parse_time("2026-11-23T11:15:00+01:00").unwrap(), ns);
        assert_eq!(parse_time("2026-11-23T10:15").unwrap(), ns);
        assert_eq!(parse_time(" 2026-11-23T10:15:00 ").unwrap(), ns);
        assert_eq!(picker_text(ns), "2026-11-23T10:15");
    }

    #[test]
    fn a_time_past_2262_is_an_error_not_a_wrapped_number() {
        for text in [
            "99999999999.5",
            "99999999999",
            "-99999999999",
            "99999999999999999999",
            "9999-01-01T00:00:00Z",
            "9999-01-01T00:00",
        ] {
            let e = parse_time(text).unwrap_err();
            assert!(
                e.contains("out of range") || e.contains("invalid"),
                "{text}: {e}"
            );
        }
        assert!(parse_time("99999999999")
            .unwrap_err()
            .contains("out of range"));
    }
}
