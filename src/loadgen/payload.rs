//! Synthetic but realistic OTLP payloads: many services and instances, 12 attributes per
//! span (a uuid correlation id, a long SQL statement, a user agent, high-cardinality ids),
//! one event per span, log bodies of 60–300 bytes with words, numbers and ids.
//!
//! Built once; each batch gets fresh trace and span ids by rewriting them in place.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    metric::Data, number_data_point, Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::Event;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

/// Number of distinct services in generated data.
pub const SERVICES: usize = 20;

fn s(key: &str, v: String) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v)),
        }),
        ..Default::default()
    }
}

fn resource(i: usize) -> Option<Resource> {
    Some(Resource {
        attributes: vec![
            s("service.name", format!("service-{}", i % SERVICES)),
            s(
                "service.instance.id",
                format!("service-{}-{}", i % SERVICES, i % 3),
            ),
            s("host.name", format!("node-{}", i % 7)),
            s("service.version", format!("1.{}.0", i % 4)),
        ],
        ..Default::default()
    })
}

fn uuid(rng: &mut fastrand::Rng) -> String {
    format!(
        "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
        rng.u32(..),
        rng.u16(..),
        rng.u16(..4095),
        rng.u16(..4095),
        rng.u64(..1 << 48)
    )
}

/// A trace export of `n` spans from one instance (`seed` picks which), stamped at `now`.
pub fn traces(seed: u64, n: usize, now: u64) -> ExportTraceServiceRequest {
    let mut rng = fastrand::Rng::with_seed(seed);
    let spans = (0..n)
        .map(|i| {
            let t = now + i as u64 * 1_000;
            Span {
                trace_id: (0..16).map(|_| rng.u8(..)).collect(),
                span_id: (0..8).map(|_| rng.u8(1..)).collect(),
                parent_span_id: if i % 5 == 0 { Vec::new() } else { (0..8).map(|_| rng.u8(1..)).collect() },
                name: format!("GET /api/v{}/orders/{{id}}", i % 4),
                kind: [2, 3, 1][i % 3],
                start_time_unix_nano: t,
                end_time_unix_nano: t + rng.u64(1_000_000..90_000_000),
                attributes: vec![
                    s("http.request.method", "GET".into()),
                    s("http.route", "/api/orders/{id}".into()),
                    s("url.full", format!("https://shop.example.com/api/orders/{}", rng.u32(..))),
                    s("correlation_id", uuid(&mut rng)),
                    s("db.statement", "SELECT o.id, o.total, o.status, c.email FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.id = $1 AND o.tenant = $2".into()),
                    s("user_agent.original", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0".into()),
                    s("net.peer.name", format!("10.0.{}.{}", rng.u8(..), rng.u8(..))),
                    s("http.response.status_code", "200".into()),
                    s("tenant.id", format!("tenant-{}", rng.u16(..500))),
                    s("user.id", format!("user-{}", rng.u32(..))),
                    s("feature.flag", "checkout-v2".into()),
                    s("cloud.region", "eu-west-1".into()),
                ],
                events: vec![Event { time_unix_nano: t + 500_000, name: "cache.miss".into(), attributes: vec![s("cache.key", format!("order:{}", rng.u32(..)))], ..Default::default() }],
                ..Default::default()
            }
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: resource(seed as usize),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// The words log bodies are made of.
const WORDS: [&str; 14] = [
    "payment",
    "order",
    "declined",
    "timeout",
    "retry",
    "cache",
    "user",
    "session",
    "upstream",
    "connection",
    "pool",
    "latency",
    "checkout",
    "inventory",
];

/// A logs export of `n` records from one instance, stamped at `now`.
pub fn logs(seed: u64, n: usize, now: u64) -> ExportLogsServiceRequest {
    let mut rng = fastrand::Rng::with_seed(seed);
    let words = WORDS;
    let records = (0..n)
        .map(|i| {
            let len = rng.usize(8..40);
            let body: Vec<String> = (0..len)
                .map(|_| match rng.u8(0..4) {
                    0 => rng.u32(..100_000).to_string(),
                    1 => format!("{:016x}", rng.u64(..)),
                    _ => words[rng.usize(..words.len())].to_string(),
                })
                .collect();
            LogRecord {
                time_unix_nano: now + i as u64 * 1_000,
                severity_number: [9, 9, 9, 13, 17][i % 5],
                body: Some(AnyValue {
                    value: Some(any_value::Value::StringValue(body.join(" "))),
                }),
                attributes: vec![s("correlation_id", uuid(&mut rng))],
                trace_id: (0..16).map(|_| rng.u8(..)).collect(),
                span_id: (0..8).map(|_| rng.u8(1..)).collect(),
                ..Default::default()
            }
        })
        .collect();
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: resource(seed as usize),
            scope_logs: vec![ScopeLogs {
                log_records: records,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// A metrics export of `n` gauge points from one instance, stamped at `now`.
pub fn metrics(seed: u64, n: usize, now: u64) -> ExportMetricsServiceRequest {
    let mut rng = fastrand::Rng::with_seed(seed);
    let metrics = (0..n)
        .map(|i| Metric {
            name: format!("app.metric.{}", i % 50),
            unit: "1".into(),
            data: Some(Data::Gauge(Gauge {
                data_points: vec![NumberDataPoint {
                    time_unix_nano: now + i as u64,
                    value: Some(number_data_point::Value::AsDouble(rng.f64())),
                    attributes: vec![s("shard", (i % 16).to_string())],
                    ..Default::default()
                }],
            })),
            ..Default::default()
        })
        .collect();
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: resource(seed as usize),
            scope_metrics: vec![ScopeMetrics {
                metrics,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// Where a request's ids and times stand: ids XORed with `batch`, times moved forward by
/// `shift_nano`, from the prebuilt request ([`Stamp::default`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stamp {
    pub batch: u64,
    pub shift_nano: u64,
}

/// Makes a prebuilt request into a new batch: fresh trace, span and correlation ids derived
/// from `batch` (so repeated sends are distinct records, and a correlation id names one
/// request, not thousands), and every time moved forward by `shift_nano` (so a long run
/// spreads over time the way real traffic does, instead of piling up at the start instant).
pub fn refresh_trace_ids(request: &mut ExportTraceServiceRequest, batch: u64, shift_nano: u64) {
    restamp_traces(request, Stamp::default(), Stamp { batch, shift_nano });
}

/// Moves a request stamped `from` to `to` in place ([`refresh_trace_ids`] from a prebuilt
/// request): a load generator worker keeps one copy and restamps it for every export
/// instead of cloning the prebuilt 1 000-span tree each time.
pub fn restamp_traces(request: &mut ExportTraceServiceRequest, from: Stamp, to: Stamp) {
    let (ids, shift) = delta(from, to);
    for span in request
        .resource_spans
        .iter_mut()
        .flat_map(|r| r.scope_spans.iter_mut())
        .flat_map(|s| s.spans.iter_mut())
    {
        stamp(&mut span.trace_id, ids);
        stamp(&mut span.span_id, ids);
        if !span.parent_span_id.is_empty() {
            stamp(&mut span.parent_span_id, ids);
        }
        span.start_time_unix_nano = span.start_time_unix_nano.wrapping_add(shift);
        span.end_time_unix_nano = span.end_time_unix_nano.wrapping_add(shift);
        for event in &mut span.events {
            event.time_unix_nano = event.time_unix_nano.wrapping_add(shift);
        }
        stamp_correlation_id(&mut span.attributes, to.batch);
    }
}

/// See [`refresh_trace_ids`].
pub fn refresh_log_ids(request: &mut ExportLogsServiceRequest, batch: u64, shift_nano: u64) {
    restamp_logs(request, Stamp::default(), Stamp { batch, shift_nano });
}

/// See [`restamp_traces`].
pub fn restamp_logs(request: &mut ExportLogsServiceRequest, from: Stamp, to: Stamp) {
    let (ids, shift) = delta(from, to);
    for record in request
        .resource_logs
        .iter_mut()
        .flat_map(|r| r.scope_logs.iter_mut())
        .flat_map(|s| s.log_records.iter_mut())
    {
        stamp(&mut record.trace_id, ids);
        stamp(&mut record.span_id, ids);
        record.time_unix_nano = record.time_unix_nano.wrapping_add(shift);
        stamp_correlation_id(&mut record.attributes, to.batch);
    }
}

/// What moves ids and times stamped `from` to `to`: the XOR of the batches, the difference of
/// the shifts (wrapping: a later stamp may shift less, after a clock step back).
fn delta(from: Stamp, to: Stamp) -> (u64, u64) {
    (
        from.batch ^ to.batch,
        to.shift_nano.wrapping_sub(from.shift_nano),
    )
}

/// Gives every record of `request` a body of its own, drawn from `batch`: 5–30 words of
/// the vocabulary, a random 32-bit number and a uuid, in random places — the shape of the
/// peer comparison in issue 19, where every id-like token is rare.
pub fn unique_log_bodies(request: &mut ExportLogsServiceRequest, batch: u64) {
    let mut rng = fastrand::Rng::with_seed(batch.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    for record in request
        .resource_logs
        .iter_mut()
        .flat_map(|r| r.scope_logs.iter_mut())
        .flat_map(|s| s.log_records.iter_mut())
    {
        let mut parts: Vec<String> = (0..rng.usize(5..=30))
            .map(|_| WORDS[rng.usize(..WORDS.len())].to_string())
            .collect();
        parts.insert(rng.usize(..=parts.len()), rng.u32(..).to_string());
        parts.insert(rng.usize(..=parts.len()), uuid(&mut rng));
        record.body = Some(AnyValue {
            value: Some(any_value::Value::StringValue(parts.join(" "))),
        });
    }
}

/// Moves every metric point forward by `shift_nano` (see [`refresh_trace_ids`]; in place
/// from a request already moved, by the difference).
pub fn refresh_metric_times(request: &mut ExportMetricsServiceRequest, shift_nano: u64) {
    for metric in request
        .resource_metrics
        .iter_mut()
        .flat_map(|r| r.scope_metrics.iter_mut())
        .flat_map(|s| s.metrics.iter_mut())
    {
        if let Some(Data::Gauge(g)) = &mut metric.data {
            for point in &mut g.data_points {
                point.time_unix_nano = point.time_unix_nano.wrapping_add(shift_nano);
            }
        }
    }
}

/// XORs `batch` into an id; an id that comes out all zero (invalid in OTLP) gets a first
/// byte of 1 (so restamping such an id in place is off by that bit: still a distinct id).
fn stamp(id: &mut [u8], batch: u64) {
    for (b, x) in id.iter_mut().zip(batch.to_le_bytes()) {
        *b ^= x;
    }
    if id.iter().all(|b| *b == 0) {
        if let Some(first) = id.first_mut() {
            *first = 1;
        }
    }
}

/// Replaces the first 8 hex digits of the `correlation_id` uuid with the batch number: the
/// rest of the uuid differs per record of a prebuilt request, so the result is unique.
fn stamp_correlation_id(attributes: &mut [KeyValue], batch: u64) {
    let Some(any_value::Value::StringValue(id)) = attributes
        .iter_mut()
        .find(|kv| kv.key == "correlation_id")
        .and_then(|kv| kv.value.as_mut())
        .and_then(|v| v.value.as_mut())
    else {
        return;
    };
    let mut digits = [0u8; 8];
    // Cannot fail: 4 bytes fill 8 hex digits exactly.
    let _ = hex::encode_to_slice((batch as u32).to_be_bytes(), &mut digits);
    if id.len() >= 8 && id.is_char_boundary(8) {
        if let Ok(digits) = std::str::from_utf8(&digits) {
            id.replace_range(..8, digits);
        }
    }
}
