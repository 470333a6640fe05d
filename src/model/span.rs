//! One span as Sightline stores and serves it.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{Attributes, Resource, SpanId, TraceId};

/// A span, flattened out of its OTLP resource/scope nesting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpanRow {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    /// `None` for a root span.
    pub parent_span_id: Option<SpanId>,
    pub trace_state: String,
    pub name: String,
    pub kind: SpanKind,
    /// Unix nanoseconds.
    pub start_time_unix_nano: i64,
    /// Unix nanoseconds.
    pub end_time_unix_nano: i64,
    /// `end - start`, kept so that duration filters and sorts need no arithmetic.
    pub duration_nano: i64,
    pub status_code: SpanStatus,
    pub status_message: String,
    pub attributes: Attributes,
    pub events: Vec<SpanEvent>,
    pub links: Vec<SpanLink>,
    pub resource: Arc<Resource>,
    pub scope_name: String,
    pub scope_version: String,
    /// The business correlation id found under one of the configured attribute keys.
    pub correlation_id: Option<String>,
}

/// A timestamped event inside a span, such as a recorded exception.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpanEvent {
    pub time_unix_nano: i64,
    pub name: String,
    pub attributes: Attributes,
}

/// A link from a span to a span of another (or the same) trace, e.g. consumer → producer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpanLink {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub trace_state: String,
    pub attributes: Attributes,
}

impl SpanRow {
    /// The span's value of attribute `key` as text: one of the four lifted resource attributes
    /// (kept in fields of their own), else a span attribute, else a resource attribute.
    pub fn attribute_text(&self, key: &str) -> Option<String> {
        match super::LiftedKey::of(key) {
            Some(lifted) => Some(self.resource.lifted(lifted).to_string()),
            None => self
                .attributes
                .get(key)
                .or_else(|| self.resource.attributes.get(key))
                .map(super::value_text),
        }
    }

    /// Whether the span ended in error (status code ERROR).
    pub fn is_error(&self) -> bool {
        self.status_code == SpanStatus::Error
    }
}

/// OTLP's span kind. Stored, indexed and served as its name without the `SPAN_KIND_` prefix
/// (`SERVER`, …), as before it was a type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum SpanKind {
    #[default]
    Unspecified,
    Internal,
    Server,
    Client,
    Producer,
    Consumer,
}

impl SpanKind {
    /// The kind of OTLP's enum number; unknown numbers are `Unspecified`.
    pub fn of_otlp(kind: i32) -> SpanKind {
        match kind {
            1 => SpanKind::Internal,
            2 => SpanKind::Server,
            3 => SpanKind::Client,
            4 => SpanKind::Producer,
            5 => SpanKind::Consumer,
            _ => SpanKind::Unspecified,
        }
    }

    /// The kind a stored name reads as; unknown names are `Unspecified`.
    pub fn of_name(name: &str) -> SpanKind {
        match name {
            "INTERNAL" => SpanKind::Internal,
            "SERVER" => SpanKind::Server,
            "CLIENT" => SpanKind::Client,
            "PRODUCER" => SpanKind::Producer,
            "CONSUMER" => SpanKind::Consumer,
            _ => SpanKind::Unspecified,
        }
    }

    /// `SERVER`, `CLIENT`, …: the text files, the index and the APIs hold.
    pub fn as_str(self) -> &'static str {
        match self {
            SpanKind::Unspecified => "UNSPECIFIED",
            SpanKind::Internal => "INTERNAL",
            SpanKind::Server => "SERVER",
            SpanKind::Client => "CLIENT",
            SpanKind::Producer => "PRODUCER",
            SpanKind::Consumer => "CONSUMER",
        }
    }
}

/// OTLP's span status code, stored and served as `UNSET`, `OK` or `ERROR`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum SpanStatus {
    #[default]
    Unset,
    Ok,
    Error,
}

impl SpanStatus {
    /// The status of OTLP's enum number; unknown numbers are `Unset`.
    pub fn of_otlp(code: i32) -> SpanStatus {
        match code {
            1 => SpanStatus::Ok,
            2 => SpanStatus::Error,
            _ => SpanStatus::Unset,
        }
    }

    /// The status a stored name reads as; unknown names are `Unset`.
    pub fn of_name(name: &str) -> SpanStatus {
        match name {
            "OK" => SpanStatus::Ok,
            "ERROR" => SpanStatus::Error,
            _ => SpanStatus::Unset,
        }
    }

    /// `UNSET`, `OK` or `ERROR`.
    pub fn as_str(self) -> &'static str {
        match self {
            SpanStatus::Unset => "UNSET",
            SpanStatus::Ok => "OK",
            SpanStatus::Error => "ERROR",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{SpanKind, SpanStatus};

    #[test]
    fn kinds_and_statuses_keep_their_otlp_names() {
        for n in 0..7 {
            let kind = SpanKind::of_otlp(n);
            assert_eq!(SpanKind::of_name(kind.as_str()), kind);
            assert_eq!(
                serde_json::to_string(&kind).unwrap(),
                format!("\"{}\"", kind.as_str())
            );
        }
        assert_eq!(SpanKind::of_otlp(2).as_str(), "SERVER");
        assert_eq!(SpanKind::of_otlp(99), SpanKind::Unspecified);
        for n in 0..4 {
            let status = SpanStatus::of_otlp(n);
            assert_eq!(SpanStatus::of_name(status.as_str()), status);
            assert_eq!(
                serde_json::to_string(&status).unwrap(),
                format!("\"{}\"", status.as_str())
            );
        }
        assert_eq!(SpanStatus::of_otlp(2), SpanStatus::Error);
    }
}
