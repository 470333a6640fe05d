//! OTLP metric names and attributes as Prometheus names and labels, by the OpenTelemetry
//! compatibility rules: invalid characters become `_`; the unit becomes a suffix
//! (`s` → `_seconds`, `By` → `_bytes`, `By/s` → `_bytes_per_second`, `{packets}` dropped);
//! monotonic sums end in `_total`; gauges of unit `1` end in `_ratio`; histograms become
//! `_bucket` (cumulative, with `le`), `_sum` and `_count` series. The resource becomes `job`
//! (`service.name`) and `instance` (`service.instance.id`).

use crate::model::MetricKind;

/// Prometheus name of an OTLP metric (before any `_bucket`/`_sum`/`_count` suffix).
pub fn metric_name(otel: &str, unit: &str, kind: MetricKind, monotonic: bool) -> String {
    let mut name = sanitize(otel);
    let unit_suffix = unit_suffix(unit);
    let ratio = kind == MetricKind::Gauge && unit == "1";
    for suffix in unit_suffix
        .iter()
        .map(String::as_str)
        .chain(ratio.then_some("ratio"))
    {
        if !name.ends_with(&format!("_{suffix}")) {
            name.push('_');
            name.push_str(suffix);
        }
    }
    if kind == MetricKind::Sum && monotonic && !name.ends_with("_total") {
        name.push_str("_total");
    }
    name
}

/// A label name from an attribute key: `http.route` → `http_route`; a leading digit gets
/// `key_` in front.
pub fn label_name(key: &str) -> String {
    let name = sanitize(key);
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        format!("key_{name}")
    } else {
        name
    }
}

/// Replaces every character outside `[a-zA-Z0-9_:]` with `_` and collapses runs of `_`.
fn sanitize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let c = if c.is_ascii_alphanumeric() || c == ':' {
            c
        } else {
            '_'
        };
        if !(c == '_' && out.ends_with('_')) {
            out.push(c);
        }
    }
    if out.is_empty() {
        out.push('_');
    }
    out
}

/// The name suffix of a UCUM unit, or `None` (unit `1`, empty, or only annotations).
fn unit_suffix(unit: &str) -> Option<String> {
    let without_annotations: String = {
        let mut depth = 0;
        unit.chars()
            .filter(|c| match c {
                '{' => {
                    depth += 1;
                    false
                }
                '}' => {
                    depth -= 1;
                    false
                }
                _ => depth == 0,
            })
            .collect()
    };
    let unit = without_annotations.trim();
    if unit.is_empty() || unit == "1" {
        return None;
    }
    let (main, per) = match unit.split_once('/') {
        Some((m, p)) => (m, Some(p)),
        None => (unit, None),
    };
    let main = if main.is_empty() || main == "1" {
        None
    } else {
        Some(unit_word(main))
    };
    let per = per.filter(|p| !p.is_empty()).map(per_unit_word);
    let text = match (main, per) {
        (Some(m), Some(p)) => format!("{m}_per_{p}"),
        (Some(m), None) => m,
        (None, Some(p)) => format!("per_{p}"),
        (None, None) => return None,
    };
    Some(sanitize(&text).trim_matches('_').to_string()).filter(|s| !s.is_empty())
}

fn unit_word(unit: &str) -> String {
    match unit {
        "d" => "days",
        "h" => "hours",
        "min" => "minutes",
        "s" => "seconds",
        "ms" => "milliseconds",
        "us" => "microseconds",
        "ns" => "nanoseconds",
        "By" => "bytes",
        "KiBy" => "kibibytes",
        "MiBy" => "mebibytes",
        "GiBy" => "gibibytes",
        "TiBy" => "tibibytes",
        "KBy" => "kilobytes",
        "MBy" => "megabytes",
        "GBy" => "gigabytes",
        "TBy" => "terabytes",
        "m" => "meters",
        "V" => "volts",
        "A" => "amperes",
        "J" => "joules",
        "W" => "watts",
        "g" => "grams",
        "Cel" => "celsius",
        "Hz" => "hertz",
        "%" => "percent",
        other => return other.to_string(),
    }
    .to_string()
}

fn per_unit_word(unit: &str) -> String {
    match unit {
        "s" => "second",
        "m" => "minute",
        "h" => "hour",
        "d" => "day",
        "w" => "week",
        "mo" => "month",
        "y" => "year",
        other => return unit_word(other),
    }
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_opentelemetry_rules() {
        let h = MetricKind::Histogram;
        assert_eq!(
            metric_name("http.server.request.duration", "s", h, false),
            "http_server_request_duration_seconds"
        );
        assert_eq!(
            metric_name("app.requests", "{request}", MetricKind::Sum, true),
            "app_requests_total"
        );
        assert_eq!(
            metric_name("queue.depth", "{item}", MetricKind::Sum, false),
            "queue_depth"
        );
        assert_eq!(
            metric_name("cpu.utilization", "1", MetricKind::Gauge, false),
            "cpu_utilization_ratio"
        );
        assert_eq!(
            metric_name("net.io", "By/s", MetricKind::Gauge, false),
            "net_io_bytes_per_second"
        );
        assert_eq!(
            metric_name("latency_seconds", "s", MetricKind::Gauge, false),
            "latency_seconds"
        );
        assert_eq!(label_name("http.route"), "http_route");
        assert_eq!(label_name("1st"), "key_1st");
    }
}
