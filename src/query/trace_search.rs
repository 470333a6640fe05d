//! Parameters of a trace search.

use crate::model::LiftedKey;
use crate::model::TraceId;

/// Whether a trace search wants traces with errors, without, or either.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFilter {
    Ok,
    Error,
}

impl StatusFilter {
    /// The text every front end takes: `ok`, `error`, or empty for either.
    pub fn parse(text: &str) -> Result<Option<StatusFilter>, String> {
        match text.trim() {
            "" => Ok(None),
            "ok" => Ok(Some(StatusFilter::Ok)),
            "error" => Ok(Some(StatusFilter::Error)),
            other => Err(format!("status must be ok or error, not {other:?}")),
        }
    }
}

/// A span attribute filter as front ends take it: `key=value` (trimmed), or empty for none.
pub fn parse_attribute(text: &str) -> Result<Option<(String, String)>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.split_once('=')
        .map(|(k, v)| Some((k.trim().to_string(), v.trim().to_string())))
        .ok_or_else(|| format!("attribute filter must be key=value, not {text:?}"))
}

/// Filters of a trace search. Span-level filters (service, operation, attribute — a span's
/// or its resource's, `service.version=2.5.0` included — correlation id) select traces with
/// at least one span that matches all of them; status applies to the whole trace (any error
/// span). Duration applies to the span the service or operation chose when one is given
/// ("cart `GET /cart/{user}` over 500 ms" means that span took over 500 ms), else to the
/// whole trace (end to end).
#[derive(Debug, Clone, Default)]
pub struct TraceSearch {
    pub service: Option<String>,
    pub operation: Option<String>,
    pub status: Option<StatusFilter>,
    pub min_duration_nano: Option<i64>,
    pub max_duration_nano: Option<i64>,
    /// `key=value` of a span attribute.
    pub attribute: Option<(String, String)>,
    pub trace_id: Option<TraceId>,
    pub correlation_id: Option<String>,
    pub start: Option<i64>,
    pub end: Option<i64>,
    pub limit: usize,
}

impl TraceSearch {
    /// Whether the duration bounds are the chosen span's (a service or an operation is
    /// given) rather than the whole trace's.
    pub fn durations_of_span(&self) -> bool {
        self.service.is_some() || self.operation.is_some()
    }

    /// Column checks implied by the time window, for reading spans.
    pub fn time_prefilter(&self) -> crate::store::Prefilter {
        crate::store::Prefilter::none()
            .at_least("end_time", self.start)
            .at_most("start_time", self.end)
    }

    /// Column checks implied by [`TraceSearch::span_matches`] (all but the attribute), so
    /// that spans they rule out are never decoded.
    pub fn span_prefilter(&self) -> crate::store::Prefilter {
        let mut p = self.time_prefilter();
        if let Some(s) = &self.service {
            p = p.text_is("service_name", s);
        }
        if let Some(o) = &self.operation {
            p = p.text_is("name", o);
        }
        if let Some(c) = &self.correlation_id {
            p = p.text_is("correlation_id", c);
        }
        if let Some((key, value)) = &self.attribute {
            if let Some(lifted) = LiftedKey::of(key) {
                p = p.text_is(lifted.column(), value);
            }
        }
        if self.durations_of_span() {
            p = p
                .at_least("duration_nano", self.min_duration_nano)
                .at_most("duration_nano", self.max_duration_nano);
        }
        p
    }

    /// Whether a single span meets the span-level filters.
    pub fn span_matches(&self, s: &crate::model::SpanRow) -> bool {
        self.service
            .as_ref()
            .is_none_or(|v| s.resource.service_name == *v)
            && self.operation.as_ref().is_none_or(|v| s.name == *v)
            && self
                .correlation_id
                .as_ref()
                .is_none_or(|v| s.correlation_id.as_ref() == Some(v))
            && self
                .attribute
                .as_ref()
                .is_none_or(|(k, v)| s.attribute_text(k).is_some_and(|a| a == *v))
            && self.start.is_none_or(|t| s.end_time_unix_nano >= t)
            && self.end.is_none_or(|t| s.start_time_unix_nano <= t)
            && (!self.durations_of_span()
                || (self.min_duration_nano.is_none_or(|d| s.duration_nano >= d)
                    && self.max_duration_nano.is_none_or(|d| s.duration_nano <= d)))
    }
}
