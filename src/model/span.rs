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
    /// OTLP span kind name without prefix: `INTERNAL`, `SERVER`, `CLIENT`, `PRODUCER`,
    /// `CONSUMER` or `UNSPECIFIED`.
    pub kind: String,
    /// Unix nanoseconds.
    pub start_time_unix_nano: i64,
    /// Unix nanoseconds.
    pub end_time_unix_nano: i64,
    /// `end - start`, kept so that duration filters and sorts need no arithmetic.
    pub duration_nano: i64,
    /// `UNSET`, `OK` or `ERROR`.
    pub status_code: String,
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
    /// Whether the span ended in error (status code ERROR).
    pub fn is_error(&self) -> bool {
        self.status_code == "ERROR"
    }
}
