//! OTLP metrics export request → one Arrow batch in the metric files' schema (one row per
//! data point) and the resources it names — in one pass over the request's bytes, read in
//! place ([`super::view::metrics`]), with no per-point structs or maps.
//!
//! Gauge and sum points are read in place. Histogram, exponential-histogram and summary data
//! are decoded by prost from their slice of the request (rare, and their bucket lists and
//! distributions become owned column values anyway).

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanBuilder, Float64Builder, ListBuilder, StringBuilder,
    TimestampNanosecondBuilder, UInt64Builder,
};
use arrow::record_batch::RecordBatch;
use opentelemetry_proto::tonic::common::v1::KeyValue as OwnedKeyValue;
use opentelemetry_proto::tonic::metrics::v1::{
    exponential_histogram_data_point::Buckets, AggregationTemporality, ExponentialHistogram,
    ExponentialHistogramDataPoint, Histogram, Summary, SummaryDataPoint,
};
use serde_json::json;

use super::attribute_text::write_object;
use super::record_columns::{append_json, text_builder, ResourceColumns, ResourceText};
use super::record_columns::{DecodeError, Decoded};
use super::rejects::Rejects;
use super::resource::resource_of;
use super::traces::clamp_ns;
use super::view::metrics::{request, Data, Metric, NumberPoint, Numbers};
use super::view::{attributes, KeyValue};
use super::wire::WireError;
use crate::model::{from_key_values, MetricKind};
use crate::rollup::DeltaBuilder;
use crate::store::columns::{json_text, json_value};
use crate::store::StoreError;

/// Decodes every data point. A metric without data and a number point without a value are
/// dropped and counted in [`Decoded::rejects`] (what a chart does with NaN and resets is the
/// query layer's business). `bytes` is an `ExportMetricsServiceRequest` in protobuf; bytes
/// that are not one fail the whole request with [`DecodeError::Wire`].
pub fn decode_metrics(bytes: &[u8]) -> Result<Decoded, DecodeError> {
    let resources = request(bytes)?;
    let metrics = resources
        .iter()
        .flat_map(|r| &r.scopes)
        .map(|s| s.records.len())
        .sum();
    let mut columns = MetricColumns::with_capacity(metrics);
    let mut rollups = DeltaBuilder::default();
    let mut rejects = Rejects::default();
    let mut point = NumberPoint::default();
    for resource_metrics in &resources {
        let resource = ResourceText::new(resource_of(attributes(&resource_metrics.resource)));
        let seen = rollups.resource(resource.resource.clone());
        let first_row = columns.time.values_slice().len();
        for scope_metrics in &resource_metrics.scopes {
            for bytes in &scope_metrics.records {
                let metric = Metric::read(bytes)?;
                let header = Header {
                    metric: &metric,
                    resource: &resource,
                    scope_name: scope_metrics.scope.name,
                };
                match &metric.data {
                    None => rejects.reject(|| format!("metric {:?} has no data", metric.name)),
                    Some(Data::Gauge(numbers)) => {
                        let kind = MetricKind::Gauge;
                        columns.numbers(&header, kind, numbers, &mut point, &mut rejects)?
                    }
                    Some(Data::Sum(numbers)) => {
                        let kind = MetricKind::Sum;
                        columns.numbers(&header, kind, numbers, &mut point, &mut rejects)?
                    }
                    Some(Data::Histogram(parts)) => columns.histogram(&header, merged(parts)?),
                    Some(Data::ExponentialHistogram(parts)) => {
                        columns.exponential_histogram(&header, merged(parts)?)
                    }
                    Some(Data::Summary(parts)) => columns.summary(&header, merged(parts)?),
                }
            }
        }
        // The service list keeps each resource's latest point.
        if let Some(latest) = columns.time.values_slice()[first_row..].iter().max() {
            rollups.seen(seen, *latest);
        }
    }
    Ok(Decoded {
        batch: columns.finish()?,
        rollups: rollups.finish(),
        rejects,
        attribute_values: None,
    })
}

/// The message encoded in `parts`, merged in order as prost merges a repeated message field.
fn merged<T: prost::Message + Default>(parts: &[&[u8]]) -> Result<T, WireError> {
    let mut message = T::default();
    for part in parts {
        message.merge(*part)?;
    }
    Ok(message)
}

/// `AGGREGATION_TEMPORALITY_DELTA` → `delta`; unspecified → empty.
pub(super) fn temporality_name(t: i32) -> &'static str {
    match AggregationTemporality::try_from(t) {
        Ok(AggregationTemporality::Delta) => "delta",
        Ok(AggregationTemporality::Cumulative) => "cumulative",
        _ => "",
    }
}

/// The `distribution` text of an exponential-histogram point: scale, zero bucket and both
/// bucket ranges.
pub(super) fn exponential_distribution(p: &ExponentialHistogramDataPoint) -> serde_json::Value {
    let buckets = |b: &Option<Buckets>| {
        b.as_ref()
            .map(|b| json!({"offset": b.offset, "bucket_counts": b.bucket_counts}))
    };
    json!({
        "scale": p.scale,
        "zero_count": p.zero_count,
        "zero_threshold": p.zero_threshold,
        "positive": buckets(&p.positive),
        "negative": buckets(&p.negative),
    })
}

/// The `distribution` text of a summary point: its quantiles.
pub(super) fn summary_distribution(p: &SummaryDataPoint) -> serde_json::Value {
    let quantiles: Vec<_> = p
        .quantile_values
        .iter()
        .map(|q| json!({"quantile": q.quantile, "value": q.value}))
        .collect();
    json!({ "quantiles": quantiles })
}

/// The parts of a metric every one of its points repeats.
struct Header<'h, 'a> {
    metric: &'h Metric<'a>,
    resource: &'h ResourceText,
    scope_name: &'a str,
}

/// One point's values beyond its header and attributes.
struct PointValues<'p> {
    kind: MetricKind,
    temporality: &'static str,
    is_monotonic: bool,
    time: u64,
    start: u64,
    value: Option<f64>,
    count: Option<u64>,
    sum: Option<f64>,
    min: Option<f64>,
    max: Option<f64>,
    bucket_counts: &'p [u64],
    explicit_bounds: &'p [f64],
    distribution: Option<String>,
}

impl PointValues<'_> {
    /// A point of `kind` with only its times set.
    fn new(kind: MetricKind, temporality: &'static str, time: u64, start: u64) -> Self {
        PointValues {
            kind,
            temporality,
            is_monotonic: false,
            time,
            start,
            value: None,
            count: None,
            sum: None,
            min: None,
            max: None,
            bucket_counts: &[],
            explicit_bounds: &[],
            distribution: None,
        }
    }
}

/// A point's attributes: read in place, or decoded by prost.
enum PointAttributes<'k, 'a> {
    InPlace(&'k [KeyValue<'a>]),
    Decoded(Vec<OwnedKeyValue>),
}

/// Builders of the metric files' columns.
struct MetricColumns {
    time: TimestampNanosecondBuilder,
    start_time: TimestampNanosecondBuilder,
    name: StringBuilder,
    description: StringBuilder,
    unit: StringBuilder,
    kind: StringBuilder,
    temporality: StringBuilder,
    is_monotonic: BooleanBuilder,
    value: Float64Builder,
    count: UInt64Builder,
    sum: Float64Builder,
    min: Float64Builder,
    max: Float64Builder,
    bucket_counts: ListBuilder<UInt64Builder>,
    explicit_bounds: ListBuilder<Float64Builder>,
    distribution: StringBuilder,
    attributes: StringBuilder,
    scope_name: StringBuilder,
    resource: ResourceColumns,
    /// Reused for each point's attribute JSON.
    scratch: Vec<u8>,
}

impl MetricColumns {
    /// Builders for about `rows` points.
    fn with_capacity(rows: usize) -> Self {
        Self {
            time: TimestampNanosecondBuilder::with_capacity(rows),
            start_time: TimestampNanosecondBuilder::with_capacity(rows),
            name: text_builder(rows, 24),
            description: text_builder(rows, 0),
            unit: text_builder(rows, 2),
            kind: text_builder(rows, 5),
            temporality: text_builder(rows, 5),
            is_monotonic: BooleanBuilder::with_capacity(rows),
            value: Float64Builder::with_capacity(rows),
            count: UInt64Builder::with_capacity(rows),
            sum: Float64Builder::with_capacity(rows),
            min: Float64Builder::with_capacity(rows),
            max: Float64Builder::with_capacity(rows),
            bucket_counts: ListBuilder::new(UInt64Builder::new()),
            explicit_bounds: ListBuilder::new(Float64Builder::new()),
            distribution: text_builder(rows, 0),
            attributes: text_builder(rows, 32),
            scope_name: text_builder(rows, 16),
            resource: ResourceColumns::with_capacity(rows),
            scratch: Vec::with_capacity(256),
        }
    }

    /// Appends one point.
    fn append(
        &mut self,
        header: &Header<'_, '_>,
        values: PointValues<'_>,
        attributes: PointAttributes<'_, '_>,
    ) {
        self.time.append_value(clamp_ns(values.time));
        self.start_time.append_value(clamp_ns(values.start));
        self.name.append_value(header.metric.name);
        self.description.append_value(header.metric.description);
        self.unit.append_value(header.metric.unit);
        self.kind.append_value(values.kind.as_str());
        self.temporality.append_value(values.temporality);
        self.is_monotonic.append_value(values.is_monotonic);
        self.value.append_option(values.value);
        self.count.append_option(values.count);
        self.sum.append_option(values.sum);
        self.min.append_option(values.min);
        self.max.append_option(values.max);
        self.bucket_counts
            .append_value(values.bucket_counts.iter().map(|c| Some(*c)));
        self.explicit_bounds
            .append_value(values.explicit_bounds.iter().map(|b| Some(*b)));
        self.distribution
            .append_option(values.distribution.as_deref());
        match attributes {
            PointAttributes::InPlace(kvs) => {
                append_json(&mut self.attributes, &mut self.scratch, |out| {
                    write_object(out, kvs, None)
                })
            }
            PointAttributes::Decoded(kvs) => self
                .attributes
                .append_value(json_text(&from_key_values(kvs))),
        }
        self.scope_name.append_value(header.scope_name);
        self.resource.append(header.resource);
    }

    /// Appends a gauge's or sum's points, read in place.
    fn numbers<'a>(
        &mut self,
        header: &Header<'_, 'a>,
        kind: MetricKind,
        numbers: &Numbers<'a>,
        point: &mut NumberPoint<'a>,
        rejects: &mut Rejects,
    ) -> Result<(), WireError> {
        let temporality = temporality_name(numbers.aggregation_temporality);
        for bytes in &numbers.points {
            point.read(bytes)?;
            let Some(value) = point.value else {
                let name = header.metric.name;
                rejects.reject(|| format!("metric {name:?}: data point without a value"));
                continue;
            };
            let mut values = PointValues::new(
                kind,
                temporality,
                point.time_unix_nano,
                point.start_time_unix_nano,
            );
            values.is_monotonic = numbers.is_monotonic;
            values.value = Some(value);
            self.append(header, values, PointAttributes::InPlace(&point.attributes));
        }
        Ok(())
    }

    /// Appends a histogram's points.
    fn histogram(&mut self, header: &Header<'_, '_>, histogram: Histogram) {
        let temporality = temporality_name(histogram.aggregation_temporality);
        for p in histogram.data_points {
            let mut values = PointValues::new(
                MetricKind::Histogram,
                temporality,
                p.time_unix_nano,
                p.start_time_unix_nano,
            );
            values.count = Some(p.count);
            values.sum = p.sum;
            values.min = p.min;
            values.max = p.max;
            values.bucket_counts = &p.bucket_counts;
            values.explicit_bounds = &p.explicit_bounds;
            self.append(header, values, PointAttributes::Decoded(p.attributes));
        }
    }

    /// Appends an exponential histogram's points.
    fn exponential_histogram(&mut self, header: &Header<'_, '_>, histogram: ExponentialHistogram) {
        let temporality = temporality_name(histogram.aggregation_temporality);
        for p in histogram.data_points {
            let mut values = PointValues::new(
                MetricKind::ExponentialHistogram,
                temporality,
                p.time_unix_nano,
                p.start_time_unix_nano,
            );
            values.count = Some(p.count);
            values.sum = p.sum;
            values.min = p.min;
            values.max = p.max;
            values.distribution = Some(json_value(&exponential_distribution(&p)));
            self.append(header, values, PointAttributes::Decoded(p.attributes));
        }
    }

    /// Appends a summary's points.
    fn summary(&mut self, header: &Header<'_, '_>, summary: Summary) {
        for p in summary.data_points {
            let mut values = PointValues::new(
                MetricKind::Summary,
                "",
                p.time_unix_nano,
                p.start_time_unix_nano,
            );
            values.count = Some(p.count);
            values.sum = Some(p.sum);
            values.distribution = Some(json_value(&summary_distribution(&p)));
            self.append(header, values, PointAttributes::Decoded(p.attributes));
        }
    }

    /// The batch, columns in [`crate::store::metrics::schema`] order.
    fn finish(mut self) -> Result<RecordBatch, StoreError> {
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(self.time.finish().with_timezone("UTC")),
            Arc::new(self.start_time.finish().with_timezone("UTC")),
            Arc::new(self.name.finish()),
            Arc::new(self.description.finish()),
            Arc::new(self.unit.finish()),
            Arc::new(self.kind.finish()),
            Arc::new(self.temporality.finish()),
            Arc::new(self.is_monotonic.finish()),
            Arc::new(self.value.finish()),
            Arc::new(self.count.finish()),
            Arc::new(self.sum.finish()),
            Arc::new(self.min.finish()),
            Arc::new(self.max.finish()),
            Arc::new(self.bucket_counts.finish()),
            Arc::new(self.explicit_bounds.finish()),
            Arc::new(self.distribution.finish()),
            Arc::new(self.attributes.finish()),
            Arc::new(self.scope_name.finish()),
        ];
        columns.extend(self.resource.finish());
        Ok(RecordBatch::try_new(
            crate::store::metrics::schema(),
            columns,
        )?)
    }
}
