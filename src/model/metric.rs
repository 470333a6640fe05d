//! One metric data point as Sightline stores it: every OTLP point type in one row shape.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{Attributes, Resource};

/// The OTLP metric data type a point came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricKind {
    Gauge,
    Sum,
    Histogram,
    ExponentialHistogram,
    Summary,
}

impl MetricKind {
    /// Stable lower-case name stored in Parquet.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricKind::Gauge => "gauge",
            MetricKind::Sum => "sum",
            MetricKind::Histogram => "histogram",
            MetricKind::ExponentialHistogram => "exponential_histogram",
            MetricKind::Summary => "summary",
        }
    }

    /// Inverse of [`MetricKind::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "gauge" => MetricKind::Gauge,
            "sum" => MetricKind::Sum,
            "histogram" => MetricKind::Histogram,
            "exponential_histogram" => MetricKind::ExponentialHistogram,
            "summary" => MetricKind::Summary,
            _ => return None,
        })
    }
}

/// One data point. Fields that do not apply to its kind are empty (`None`/empty vectors).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricPoint {
    pub name: String,
    pub description: String,
    pub unit: String,
    pub kind: MetricKind,
    /// `delta`, `cumulative`, or empty for gauges and summaries.
    pub temporality: String,
    pub is_monotonic: bool,
    pub time_unix_nano: i64,
    pub start_time_unix_nano: i64,
    /// Gauge and sum value.
    pub value: Option<f64>,
    /// Histogram, exponential histogram and summary count.
    pub count: Option<u64>,
    pub sum: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    /// Explicit-bucket histogram: `bucket_counts.len() == explicit_bounds.len() + 1`.
    pub bucket_counts: Vec<u64>,
    pub explicit_bounds: Vec<f64>,
    /// Exponential histogram buckets and summary quantiles, as JSON (rarely filtered on).
    pub distribution: Option<serde_json::Value>,
    pub attributes: Attributes,
    pub resource: Arc<Resource>,
    pub scope_name: String,
}
