//! APIs of other tools, so their clients (Grafana data sources, Jaeger UI, scripts) work
//! against Sightline unchanged. Each lives in its own module over the one query layer and
//! never reaches into storage.

pub mod jaeger;
pub mod loki;
pub mod prometheus;

/// A query step as Prometheus and Loki take it: float seconds or a duration (`15s`, `1m`),
/// in nanoseconds; zero and negative steps are refused with Prometheus' own words.
pub fn parse_step(text: &str) -> Result<i64, String> {
    let nanos = match text.parse::<f64>() {
        Ok(secs) if secs.is_finite() => (secs * 1e9) as i64,
        _ => promql_parser::util::parse_duration(text)
            .map_err(|e| format!("invalid parameter \"step\": {e}"))?
            .as_nanos()
            .min(i64::MAX as u128) as i64,
    };
    if nanos <= 0 {
        return Err(
            "zero or negative query resolution step widths are not accepted. Try a positive integer"
                .into(),
        );
    }
    Ok(nanos)
}
