//! The row-based metrics conversion the columnar decoder replaced, kept as the test oracle:
//! OTLP → [`MetricPoint`]s → `MetricPoint::to_batch` must give exactly the batch
//! [`super::metrics::decode_metrics`] builds.

use std::sync::Arc;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::{metric::Data, number_data_point, NumberDataPoint};

use super::metrics::{exponential_distribution, summary_distribution, temporality_name};
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
                row.distribution = Some(exponential_distribution(&p));
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
                row.distribution = Some(summary_distribution(&p));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loadgen::payload;
    use crate::store::StoredRow;
    use opentelemetry_proto::tonic::common::v1::{any_value::Value as V, AnyValue, KeyValue};
    use opentelemetry_proto::tonic::metrics::v1::{
        exponential_histogram_data_point::Buckets, summary_data_point::ValueAtQuantile,
        ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Histogram, HistogramDataPoint,
        Metric, ResourceMetrics, ScopeMetrics, Sum, Summary, SummaryDataPoint,
    };
    use opentelemetry_proto::tonic::resource::v1::Resource as OtlpResource;
    use prost::Message;

    const NOW: u64 = 1_795_428_900_000_000_000;

    fn same_batch(request: ExportMetricsServiceRequest) {
        same_batch_of_bytes(&request.encode_to_vec());
    }

    /// The columns decoded from `bytes` equal the rows prost's decoding of them converts to.
    fn same_batch_of_bytes(bytes: &[u8]) {
        let decoded = super::super::metrics::decode_metrics(bytes).unwrap();
        let request = ExportMetricsServiceRequest::decode(bytes).unwrap();
        let (rows, rejects) = convert_metrics(request);
        let refs: Vec<&MetricPoint> = rows.iter().collect();
        assert_eq!(decoded.batch, MetricPoint::to_batch(&refs).unwrap());
        assert_eq!(decoded.rejects, rejects);
        // The service list: one entry per run of points of one resource, at its latest point.
        let mut expected: Vec<(Arc<Resource>, i64)> = Vec::new();
        for p in &rows {
            match expected.last_mut() {
                Some((r, t)) if Arc::ptr_eq(r, &p.resource) => *t = (*t).max(p.time_unix_nano),
                _ => expected.push((p.resource.clone(), p.time_unix_nano)),
            }
        }
        let seen = |s: &[(Arc<Resource>, i64)]| -> Vec<(Resource, i64)> {
            s.iter().map(|(r, t)| (Resource::clone(r), *t)).collect()
        };
        assert_eq!(seen(&decoded.rollups.seen), seen(&expected));
    }

    fn kv(key: &str, value: V) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(value) }),
            ..Default::default()
        }
    }

    fn metric(name: &str, data: Option<Data>) -> Metric {
        Metric {
            name: name.into(),
            description: format!("{name} described"),
            unit: "ms".into(),
            data,
            ..Default::default()
        }
    }

    fn number(t: u64, value: Option<number_data_point::Value>, shard: i64) -> NumberDataPoint {
        NumberDataPoint {
            time_unix_nano: t,
            start_time_unix_nano: t - 10,
            value,
            attributes: vec![
                kv("shard", V::IntValue(shard)),
                kv("zone", V::StringValue("b".into())),
            ],
            ..Default::default()
        }
    }

    #[test]
    fn columns_equal_the_row_conversion_on_loadgen_payloads() {
        for seed in 0..4 {
            same_batch(payload::metrics(seed, 300, NOW));
        }
    }

    #[test]
    fn columns_equal_the_row_conversion_on_every_kind() {
        use number_data_point::Value::{AsDouble, AsInt};
        let metrics = vec![
            metric(
                "gauge",
                Some(Data::Gauge(Gauge {
                    data_points: vec![
                        number(NOW, Some(AsDouble(1.5)), 1),
                        number(NOW + 1, Some(AsInt(-7)), 2),
                        number(NOW + 2, None, 3),
                        number(NOW + 3, Some(AsDouble(f64::NAN)), 4),
                    ],
                })),
            ),
            metric(
                "sum",
                Some(Data::Sum(Sum {
                    data_points: vec![number(u64::MAX, Some(AsInt(5)), 1)],
                    aggregation_temporality: 1,
                    is_monotonic: true,
                })),
            ),
            metric(
                "cumulative",
                Some(Data::Sum(Sum {
                    data_points: vec![number(NOW, Some(AsDouble(2.0)), 1)],
                    aggregation_temporality: 2,
                    is_monotonic: false,
                })),
            ),
            metric("empty", None),
            metric(
                "histogram",
                Some(Data::Histogram(Histogram {
                    data_points: vec![HistogramDataPoint {
                        time_unix_nano: NOW,
                        count: 3,
                        sum: Some(4.5),
                        min: Some(0.5),
                        bucket_counts: vec![1, 2, 0],
                        explicit_bounds: vec![1.0, 5.0],
                        attributes: vec![kv("route", V::StringValue("/a".into()))],
                        ..Default::default()
                    }],
                    aggregation_temporality: 1,
                })),
            ),
            metric(
                "exponential",
                Some(Data::ExponentialHistogram(ExponentialHistogram {
                    data_points: vec![ExponentialHistogramDataPoint {
                        time_unix_nano: NOW,
                        count: 4,
                        scale: -2,
                        zero_count: 1,
                        zero_threshold: 0.001,
                        positive: Some(Buckets {
                            offset: -3,
                            bucket_counts: vec![1, 2],
                        }),
                        max: Some(9.0),
                        ..Default::default()
                    }],
                    aggregation_temporality: 2,
                })),
            ),
            metric(
                "summary",
                Some(Data::Summary(Summary {
                    data_points: vec![SummaryDataPoint {
                        time_unix_nano: NOW,
                        count: 10,
                        sum: 12.0,
                        quantile_values: vec![ValueAtQuantile {
                            quantile: 0.99,
                            value: 3.0,
                        }],
                        attributes: vec![kv("q", V::BoolValue(true))],
                        ..Default::default()
                    }],
                })),
            ),
        ];
        let request = ExportMetricsServiceRequest {
            resource_metrics: vec![
                ResourceMetrics {
                    resource: Some(OtlpResource {
                        attributes: vec![
                            kv("service.name", V::StringValue("api".into())),
                            kv("host.name", V::StringValue("h1".into())),
                        ],
                        ..Default::default()
                    }),
                    scope_metrics: vec![ScopeMetrics {
                        metrics: metrics.clone(),
                        ..Default::default()
                    }],
                    ..Default::default()
                },
                // No resource, and no points that count: no service-list entry.
                ResourceMetrics {
                    scope_metrics: vec![ScopeMetrics {
                        metrics: vec![metric("empty", None)],
                        ..Default::default()
                    }],
                    ..Default::default()
                },
            ],
        };
        same_batch(request);
    }

    #[test]
    fn a_data_field_given_twice_merges_as_prost_merges_it() {
        use number_data_point::Value::{AsDouble, AsInt};
        let gauge = |t: u64| {
            let points = vec![number(t, Some(AsDouble(1.0)), 1)];
            metric(
                "g",
                Some(Data::Gauge(Gauge {
                    data_points: points,
                })),
            )
            .encode_to_vec()
        };
        let sum = metric(
            "g",
            Some(Data::Sum(Sum {
                data_points: vec![number(NOW, Some(AsInt(2)), 1)],
                aggregation_temporality: 1,
                is_monotonic: true,
            })),
        )
        .encode_to_vec();
        let summary = |count: u64| {
            let points = vec![SummaryDataPoint {
                time_unix_nano: NOW,
                count,
                ..Default::default()
            }];
            metric(
                "g",
                Some(Data::Summary(Summary {
                    data_points: points,
                })),
            )
            .encode_to_vec()
        };
        // One metric message sent in two parts: two gauges add up their points, a sum after
        // a gauge replaces it, a gauge after a sum replaces it again; two summaries merge
        // (prost's own merge), a summary after a gauge replaces it.
        for parts in [
            [gauge(NOW), gauge(NOW + 1)],
            [gauge(NOW), sum.clone()],
            [sum.clone(), gauge(NOW + 5)],
            [summary(1), summary(2)],
            [gauge(NOW), summary(3)],
            [summary(4), gauge(NOW)],
        ] {
            let nest = |field: u32, bytes: &[u8]| {
                let mut out = Vec::new();
                prost::encoding::bytes::encode(field, &bytes.to_vec(), &mut out);
                out
            };
            let scope = nest(2, &parts.concat());
            let request = nest(1, &nest(2, &scope));
            same_batch_of_bytes(&request);
        }
    }

    #[test]
    fn bytes_that_are_no_request_are_refused() {
        let err = super::super::metrics::decode_metrics(&[0x0a, 0x05, 0x12])
            .err()
            .unwrap();
        assert!(err.to_string().contains("invalid OTLP protobuf"), "{err}");
        assert!(ExportMetricsServiceRequest::decode(&[0x0a, 0x05, 0x12][..]).is_err());
    }
}
