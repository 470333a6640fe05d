//! The typed rows every layer passes around: spans, log records and metric points, each with
//! its resource and correlation keys.

mod attributes;
mod ids;
mod log;
mod metric;
mod resource;
mod span;
pub mod time;
pub mod window;

pub use attributes::{any_to_json, from_key_values, take_string, value_text, Attributes};
pub use ids::{IdError, SpanId, TraceId};
pub use log::{severity_floor, severity_name, LogRow, Severity};
pub use metric::{MetricKind, MetricPoint};
pub use resource::{LiftedKey, Resource, UNKNOWN_SERVICE};
pub use span::{SpanEvent, SpanKind, SpanLink, SpanRow, SpanStatus};

/// The three OTLP signals. The discriminant is what the WAL writes on disk: never reorder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Signal {
    Traces = 1,
    Logs = 2,
    Metrics = 3,
    /// Aggregates derived from the other signals (see `crate::rollup`); never in the WAL.
    Rollups = 4,
    /// One-minute downsampled metric points (see `crate::rollup::metric_minutes`); never in
    /// the WAL.
    MetricMinutes = 5,
}

impl Signal {
    /// Every signal, in WAL order.
    pub const ALL: [Signal; 3] = [Signal::Traces, Signal::Logs, Signal::Metrics];

    /// Folder name in the store and value of the index's `signal` field.
    pub fn as_str(self) -> &'static str {
        match self {
            Signal::Traces => "traces",
            Signal::Logs => "logs",
            Signal::Metrics => "metrics",
            Signal::Rollups => "rollups",
            Signal::MetricMinutes => "metrics_1m",
        }
    }

    /// The signal whose files live in store folder `folder` (inverse of [`Signal::as_str`]).
    pub fn from_folder(folder: &str) -> Option<Signal> {
        [
            Signal::Traces,
            Signal::Logs,
            Signal::Metrics,
            Signal::Rollups,
            Signal::MetricMinutes,
        ]
        .into_iter()
        .find(|s| s.as_str() == folder)
    }

    /// Inverse of the discriminant, for WAL replay: only the OTLP signals.
    pub fn from_u8(b: u8) -> Option<Signal> {
        Signal::ALL.into_iter().find(|s| *s as u8 == b)
    }
}

/// Rows decoded from one OTLP export request.
#[derive(Debug, Clone, Default)]
pub struct Rows {
    pub spans: Vec<SpanRow>,
    pub logs: Vec<LogRow>,
    pub metrics: Vec<MetricPoint>,
}

impl Rows {
    /// Number of records of all signals.
    pub fn len(&self) -> usize {
        self.spans.len() + self.logs.len() + self.metrics.len()
    }

    /// True when no record of any signal is present.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Moves every row of `other` into `self`.
    pub fn append(&mut self, other: &mut Rows) {
        self.spans.append(&mut other.spans);
        self.logs.append(&mut other.logs);
        self.metrics.append(&mut other.metrics);
    }
}
