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

/// OTLP's severity levels: the numbers 1–24 in six ranges of four (1–4 TRACE … 21–24 FATAL).
/// A record keeps its number and its free-form text; every place that needs the level (the
/// query language, the error rollups, the level colours, the demo) reads it through this.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Unspecified,
    Trace,
    Debug,
    Info,
    Warn,
    Error,
    Fatal,
}

impl Severity {
    /// Every level, from unspecified to the gravest.
    pub const ALL: [Severity; 7] = [
        Severity::Unspecified,
        Severity::Trace,
        Severity::Debug,
        Severity::Info,
        Severity::Warn,
        Severity::Error,
        Severity::Fatal,
    ];

    /// The level of an OTLP severity number (outside 1–24: unspecified).
    pub fn of_number(number: i32) -> Severity {
        match number {
            1..=4 => Severity::Trace,
            5..=8 => Severity::Debug,
            9..=12 => Severity::Info,
            13..=16 => Severity::Warn,
            17..=20 => Severity::Error,
            21..=24 => Severity::Fatal,
            _ => Severity::Unspecified,
        }
    }

    /// A level by name, as queries write it (`warn`, `WARNING`, `critical`).
    pub fn parse(name: &str) -> Option<Severity> {
        Some(match name.to_ascii_uppercase().as_str() {
            "TRACE" => Severity::Trace,
            "DEBUG" => Severity::Debug,
            "INFO" => Severity::Info,
            "WARN" | "WARNING" => Severity::Warn,
            "ERROR" => Severity::Error,
            "FATAL" | "CRITICAL" => Severity::Fatal,
            _ => return None,
        })
    }

    /// The canonical short name (`WARN`).
    pub fn name(self) -> &'static str {
        match self {
            Severity::Unspecified => "UNSPECIFIED",
            Severity::Trace => "TRACE",
            Severity::Debug => "DEBUG",
            Severity::Info => "INFO",
            Severity::Warn => "WARN",
            Severity::Error => "ERROR",
            Severity::Fatal => "FATAL",
        }
    }

    /// The lowest severity number of the level (`Warn` → 13).
    pub const fn floor(self) -> i32 {
        match self {
            Severity::Unspecified => 0,
            Severity::Trace => 1,
            Severity::Debug => 5,
            Severity::Info => 9,
            Severity::Warn => 13,
            Severity::Error => 17,
            Severity::Fatal => 21,
        }
    }
}

/// Canonical short severity name of an OTLP severity number (see [`Severity`]).
pub fn severity_name(number: i32) -> &'static str {
    Severity::of_number(number).name()
}

/// The lowest severity number of a named level (`warn` → 13) or a number given as such, for
/// `severity>=WARN` queries.
pub fn severity_floor(name: &str) -> Option<i32> {
    match Severity::parse(name) {
        Some(level) => Some(level.floor()),
        None => name.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_by_number_and_by_name() {
        assert_eq!(Severity::of_number(9), Severity::Info);
        assert_eq!(Severity::of_number(20), Severity::Error);
        assert_eq!(Severity::of_number(0), Severity::Unspecified);
        assert_eq!(Severity::of_number(99), Severity::Unspecified);
        assert_eq!(severity_name(14), "WARN");
        assert_eq!(Severity::parse("warning"), Some(Severity::Warn));
        assert_eq!(Severity::parse("critical"), Some(Severity::Fatal));
        assert_eq!(Severity::parse("loud"), None);
        assert_eq!(severity_floor("warn"), Some(13));
        assert_eq!(severity_floor("17"), Some(17));
        assert_eq!(severity_floor("loud"), None);
        assert!(Severity::Error > Severity::Warn, "levels order by gravity");
        // Every level's floor reads back as that level.
        for level in Severity::ALL.into_iter().skip(1) {
            assert_eq!(Severity::of_number(level.floor()), level);
            assert_eq!(Severity::parse(level.name()), Some(level));
        }
    }
}
