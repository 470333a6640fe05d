//! `collector.metrics.v1.ExportMetricsServiceRequest` read in place: its resource and scope
//! blocks ([`super::blocks`]), each metric parsed when the decoder reaches it.
//!
//! Gauge and sum points — nearly every point services send — are read in place as well.
//! Histogram, exponential-histogram and summary data, rarer and nested deeper, are left as
//! their encoded slices for prost to decode ([`Data`]): their points carry lists and
//! distributions that become owned columns anyway.

use super::blocks::{ResourceBlock, Shape};
use super::{field, push_key_value, KeyValue};
use crate::ingest::wire::{Fields, WireError};

/// The names of this signal's request.
pub const SHAPE: Shape = Shape {
    request: "ExportMetricsServiceRequest",
    resources: "resource_metrics",
    resource_message: "ResourceMetrics",
    scopes: "scope_metrics",
    scope_message: "ScopeMetrics",
    records: "metrics",
};

/// The resource blocks of an export request.
pub fn request(bytes: &[u8]) -> Result<Vec<ResourceBlock<'_>>, WireError> {
    super::blocks::request(bytes, &SHAPE)
}

/// `metrics.v1.Metric`: its names and its data, the points still encoded.
#[derive(Debug, Default)]
pub struct Metric<'a> {
    pub name: &'a str,
    pub description: &'a str,
    pub unit: &'a str,
    /// `None` when the metric has no data field set.
    pub data: Option<Data<'a>>,
}

/// The `data` oneof of a metric.
///
/// A oneof field given more than once merges as prost merges it: the same kind again adds
/// its points (and its later scalars win); another kind replaces it. The prost-decoded kinds
/// keep every encoded occurrence, in order, so merging them is prost's own.
#[derive(Debug, Clone, PartialEq)]
pub enum Data<'a> {
    Gauge(Numbers<'a>),
    Sum(Numbers<'a>),
    Histogram(Vec<&'a [u8]>),
    ExponentialHistogram(Vec<&'a [u8]>),
    Summary(Vec<&'a [u8]>),
}

/// `metrics.v1.Gauge` or `metrics.v1.Sum`: encoded `NumberDataPoint`s and the sum's flags
/// (a gauge's are left at their defaults).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Numbers<'a> {
    pub points: Vec<&'a [u8]>,
    pub aggregation_temporality: i32,
    pub is_monotonic: bool,
}

impl<'a> Metric<'a> {
    /// The metric encoded in `bytes`.
    pub fn read(bytes: &'a [u8]) -> Result<Self, WireError> {
        const M: &str = "Metric";
        let mut metric = Metric::default();
        for f in Fields::new(bytes) {
            match f? {
                (1, v) => metric.name = v.str(&field(M, "name"))?,
                (2, v) => metric.description = v.str(&field(M, "description"))?,
                (3, v) => metric.unit = v.str(&field(M, "unit"))?,
                (number @ (5 | 7), v) => {
                    let gauge = number == 5;
                    let message = if gauge { "Gauge" } else { "Sum" };
                    let bytes = v.bytes(&field(M, if gauge { "gauge" } else { "sum" }))?;
                    let mut numbers = match metric.data.take() {
                        Some(Data::Gauge(n)) if gauge => n,
                        Some(Data::Sum(n)) if !gauge => n,
                        _ => Numbers::default(),
                    };
                    numbers.read(bytes, message)?;
                    metric.data = Some(if gauge {
                        Data::Gauge(numbers)
                    } else {
                        Data::Sum(numbers)
                    });
                }
                (number @ 9..=11, v) => {
                    type Wrap<'a> = fn(Vec<&'a [u8]>) -> Data<'a>;
                    let (name, wrap): (&str, Wrap<'a>) = match number {
                        9 => ("histogram", Data::Histogram),
                        10 => ("exponential_histogram", Data::ExponentialHistogram),
                        _ => ("summary", Data::Summary),
                    };
                    let bytes = v.bytes(&field(M, name))?;
                    let mut parts = match (metric.data.take(), number) {
                        (Some(Data::Histogram(parts)), 9)
                        | (Some(Data::ExponentialHistogram(parts)), 10)
                        | (Some(Data::Summary(parts)), 11) => parts,
                        _ => Vec::new(),
                    };
                    parts.push(bytes);
                    metric.data = Some(wrap(parts));
                }
                (12, v) => {
                    // Metadata: checked, not kept.
                    let mut metadata = Vec::new();
                    push_key_value(&mut metadata, v.bytes(&field(M, "metadata"))?)?;
                }
                _ => {}
            }
        }
        Ok(metric)
    }
}

impl<'a> Numbers<'a> {
    /// Merges one encoded `Gauge` or `Sum` (`message` names it) into these.
    fn read(&mut self, bytes: &'a [u8], message: &str) -> Result<(), WireError> {
        for f in Fields::new(bytes) {
            match f? {
                (1, v) => self.points.push(v.bytes(&field(message, "data_points"))?),
                (2, v) if message == "Sum" => {
                    self.aggregation_temporality =
                        v.varint(&field(message, "aggregation_temporality"))? as i32
                }
                (3, v) if message == "Sum" => {
                    self.is_monotonic = v.varint(&field(message, "is_monotonic"))? != 0
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// `metrics.v1.NumberDataPoint`: what the columns keep (exemplars are checked, not kept).
#[derive(Debug, Default)]
pub struct NumberPoint<'a> {
    pub attributes: Vec<KeyValue<'a>>,
    pub start_time_unix_nano: u64,
    pub time_unix_nano: u64,
    /// `None` when the point has no value.
    pub value: Option<f64>,
}

impl<'a> NumberPoint<'a> {
    /// Replaces this point with the one encoded in `bytes`, keeping the memory of its
    /// attribute list (see [`super::trace::Span::read`]).
    pub fn read(&mut self, bytes: &'a [u8]) -> Result<(), WireError> {
        const M: &str = "NumberDataPoint";
        let mut attributes = std::mem::take(&mut self.attributes);
        attributes.clear();
        *self = NumberPoint {
            attributes,
            ..NumberPoint::default()
        };
        for f in Fields::new(bytes) {
            match f? {
                (2, v) => {
                    self.start_time_unix_nano = v.fixed64(&field(M, "start_time_unix_nano"))?
                }
                (3, v) => self.time_unix_nano = v.fixed64(&field(M, "time_unix_nano"))?,
                (4, v) => {
                    self.value = Some(f64::from_bits(v.fixed64(&field(M, "as_double"))?));
                }
                (5, v) => {
                    v.bytes(&field(M, "exemplars"))?;
                }
                (6, v) => self.value = Some(v.fixed64(&field(M, "as_int"))? as i64 as f64),
                (7, v) => push_key_value(&mut self.attributes, v.bytes(&field(M, "attributes"))?)?,
                (8, v) => {
                    v.varint(&field(M, "flags"))?;
                }
                _ => {}
            }
        }
        Ok(())
    }
}
