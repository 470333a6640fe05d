//! Time parameters of the query API.

/// Parses a time given as RFC 3339 (`2026-11-23T10:00:00Z`) or as a Unix timestamp in
/// seconds, milliseconds, microseconds or nanoseconds (told apart by magnitude, as Loki does),
/// or in seconds with a fraction (`1795428900.5`, as Prometheus clients send).
pub fn parse_time(text: &str) -> Result<i64, String> {
    let text = text.trim();
    if let Some((secs, fraction)) = text.split_once('.') {
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if digits(secs) && digits(fraction) && secs.len() <= 11 {
            let nanos: String = fraction
                .chars()
                .chain(std::iter::repeat('0'))
                .take(9)
                .collect();
            if let (Ok(s), Ok(n)) = (secs.parse::<i64>(), nanos.parse::<i64>()) {
                return Ok(s * 1_000_000_000 + n);
            }
        }
    }
    if let Ok(n) = text.parse::<i64>() {
        let abs = n.unsigned_abs();
        return Ok(if abs < 100_000_000_000 {
            n.saturating_mul(1_000_000_000)
        } else if abs < 100_000_000_000_000 {
            n.saturating_mul(1_000_000)
        } else if abs < 100_000_000_000_000_000 {
            n.saturating_mul(1_000)
        } else {
            n
        });
    }
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        .and_then(|t| t.timestamp_nanos_opt())
        .ok_or_else(|| format!("invalid time {text:?}: use RFC 3339 or a Unix timestamp"))
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
        assert_eq!(parse_time("2026-11-23T10:15:00Z").unwrap(), ns);
        assert_eq!(parse_time("1795428900.25").unwrap(), ns + 250_000_000);
        assert!(parse_time("yesterday").is_err());
    }
}
