//! OTLP metrics export request → [`MetricPoint`]s, one per data point.

use std::sync::Arc;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::{
    metric::Data, number_data_point, AggregationTemporality, NumberDataPoint,
};
use serde_json::json;

use super::rejects::Rejects;
use super::resource::{convert_resource, scope_name_version};
use super::traces::clamp_ns;
use crate::model::{from_key_values, MetricKind, MetricPoint, Resource};

/// The parts of a metric shared by all its points.
struct MetricHeader {
    name: String,
    description: String,
    unit: String,
    resource: Arc<Resource>,
    scope_name: String,
}

impl MetricHeader {
    fn point(&self, kind: MetricKind, time: u64, start: u64) -> MetricPoint {
        MetricPoint {
            name: self.name.clone(),
            description: self.description.clone(),
            unit: self.unit.clone(),
            kind,
            temporality: String::new(),
            is_monotonic: false,
            time_unix_nano: clamp_ns(time),
            start_time_unix_nano: clamp_ns(start),
            value: None,
            count: None,
            sum: None,
            min: None,
            max: None,
            bucket_counts: Vec::new(),
            explicit_bounds: Vec::new(),
            distribution: None,
            attributes: Default::default(),
            resource: self.resource.clone(),
            scope_name: self.scope_name.clone(),
        }
    }
}

/// Converts every data point. A metric without a data type or a point without a value is
/// dropped and counted; what a chart does with NaN and resets is the query layer's business.
pub fn convert_metrics(request: ExportMetricsServiceRequest) -> (Vec<MetricPoint>, Rejects) {
    let mut rows = Vec::new();
    let mut rejects = Rejects::default();
    for resource_metrics in request.resource_metrics {
        let resource = convert_resource(resource_metrics.resource);
        for scope_metrics in resource_metrics.scope_metrics {
            let (scope_name, _) = scope_name_version(scope_metrics.scope);
            for metric in scope_metrics.metrics {
                let header = MetricHeader {
                    name: metric.name,
                    description: metric.description,
                    unit: metric.unit,
                    resource: resource.clone(),
                    scope_name: scope_name.clone(),
                };
                let Some(data) = metric.data else {
                    rejects.reject(|| format!("metric {:?} has no data", header.name));
                    continue;
                };
                convert_data(&header, data, &mut rows, &mut rejects);
            }
        }
    }
    (rows, rejects)
}

fn convert_data(h: &MetricHeader, data: Data, rows: &mut Vec<MetricPoint>, rejects: &mut Rejects) {
    match data {
        Data::Gauge(g) => {
            for p in g.data_points {
                number_point(h, MetricKind::Gauge, "", false, p, rows, rejects);
            }
        }
        Data::Sum(s) => {
            let temporality = temporality_name(s.aggregation_temporality);
            for p in s.data_points {
                number_point(
                    h,
                    MetricKind::Sum,
                    temporality,
                    s.is_monotonic,
                    p,
                    rows,
                    rejects,
                );
            }
        }
        Data::Histogram(hist) => {
            let temporality = temporality_name(hist.aggregation_temporality);
            for p in hist.data_points {
                let mut row = h.point(
                    MetricKind::Histogram,
                    p.time_unix_nano,
                    p.start_time_unix_nano,
                );
                row.temporality = temporality.to_string();
                row.count = Some(p.count);
                row.sum = p.sum;
                row.min = p.min;
                row.max = p.max;
                row.bucket_counts = p.bucket_counts;
                row.explicit_bounds = p.explicit_bounds;
                row.attributes = from_key_values(p.attributes);
                rows.push(row);
            }
        }
        Data::ExponentialHistogram(hist) => {
            let temporality = temporality_name(hist.aggregation_temporality);
            for p in hist.data_points {
                let mut row = h.point(
                    MetricKind::ExponentialHistogram,
                    p.time_unix_nano,
                    p.start_time_unix_nano,
                );
                row.temporality = temporality.to_string();
                row.count = Some(p.count);
                row.sum = p.sum;
                row.min = p.min;
                row.max = p.max;
                let buckets = |b: Option<opentelemetry_proto::tonic::metrics::v1::exponential_histogram_data_point::Buckets>| {
                    b.map(|b| json!({"offset": b.offset, "bucket_counts": b.bucket_counts}))
                };
                row.distribution = Some(json!({
                    "scale": p.scale,
                    "zero_count": p.zero_count,
                    "zero_threshold": p.zero_threshold,
                    "positive": buckets(p.positive),
                    "negative": buckets(p.negative),
                }));
                row.attributes = from_key_values(p.attributes);
                rows.push(row);
            }
        }
        Data::Summary(summary) => {
            for p in summary.data_points {
                let mut row = h.point(
                    MetricKind::Summary,
                    p.time_unix_nano,
                    p.start_time_unix_nano,
                );
                row.count = Some(p.count);
                row.sum = Some(p.sum);
                let quantiles: Vec<_> = p
                    .quantile_values
                    .iter()
                    .map(|q| json!({"quantile": q.quantile, "value": q.value}))
                    .collect();
                row.distribution = Some(json!({ "quantiles": quantiles }));
                row.attributes = from_key_values(p.attributes);
                rows.push(row);
            }
        }
    }
}

fn number_point(
    h: &MetricHeader,
    kind: MetricKind,
    temporality: &str,
    is_monotonic: bool,
    p: NumberDataPoint,
    rows: &mut Vec<MetricPoint>,
    rejects: &mut Rejects,
) {
    let value = match p.value {
        Some(number_data_point::Value::AsDouble(d)) => d,
        Some(number_data_point::Value::AsInt(i)) => i as f64,
        None => {
            rejects.reject(|| format!("metric {:?}: data point without a value", h.name));
            return;
        }
    };
    let mut row = h.point(kind, p.time_unix_nano, p.start_time_unix_nano);
    row.temporality = temporality.to_string();
    row.is_monotonic = is_monotonic;
    row.value = Some(value);
    row.attributes = from_key_values(p.attributes);
    rows.push(row);
}

/// `AGGREGATION_TEMPORALITY_DELTA` → `delta`; unspecified → empty.
fn temporality_name(t: i32) -> &'static str {
    match AggregationTemporality::try_from(t) {
        Ok(AggregationTemporality::Delta) => "delta",
        Ok(AggregationTemporality::Cumulative) => "cumulative",
        _ => "",
    }
}
