//! One log record as Sightline stores and serves it.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{Attributes, Resource, SpanId, TraceId};

/// A log record, flattened out of its OTLP resource/scope nesting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogRow {
    /// Unix nanoseconds: the record's own time, or its observed time when the sender left the
    /// event time unset, so that every record sorts somewhere sensible.
    pub time_unix_nano: i64,
    pub observed_time_unix_nano: i64,
    /// OTLP severity number, 0 (unspecified) to 24 (FATAL4).
    pub severity_number: i32,
    /// The sender's severity text, or the canonical name of the number when absent.
    pub severity_text: String,
    /// The body as text: string bodies verbatim, structured bodies as compact JSON.
    pub body: String,
    pub attributes: Attributes,
    pub trace_id: Option<TraceId>,
    pub span_id: Option<SpanId>,
    pub flags: u32,
    pub event_name: String,
    pub resource: Arc<Resource>,
    pub scope_name: String,
    /// The business correlation id found under one of the configured attribute keys.
    pub correlation_id: Option<String>,
}

/// Canonical short severity names by OTLP severity number range (1–4 TRACE … 21–24 FATAL).
pub fn severity_name(number: i32) -> &'static str {
    match number {
        1..=4 => "TRACE",
        5..=8 => "DEBUG",
        9..=12 => "INFO",
        13..=16 => "WARN",
        17..=20 => "ERROR",
        21..=24 => "FATAL",
        _ => "UNSPECIFIED",
    }
}

/// The lowest severity number of a named level (`warn` → 13), for `severity>=WARN` queries.
pub fn severity_floor(name: &str) -> Option<i32> {
    let n = match name.to_ascii_uppercase().as_str() {
        "TRACE" => 1,
        "DEBUG" => 5,
        "INFO" => 9,
        "WARN" | "WARNING" => 13,
        "ERROR" => 17,
        "FATAL" | "CRITICAL" => 21,
        other => return other.parse().ok(),
    };
    Some(n)
}
