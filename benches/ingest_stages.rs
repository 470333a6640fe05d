//! Each ingest stage on its own, on realistic payloads (see BENCHMARKS.md for figures):
//! OTLP decode, conversion to rows, WAL append with and without fsync, Parquet encode, and
//! block indexing. Bounded so the suite finishes in a few minutes: `cargo bench`.

use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::Event;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use sightline::index::{block, BlockIndex};
use sightline::ingest::{convert_logs, convert_traces, CorrelationKeys};
use sightline::model::Signal;
use sightline::store::Store;
use sightline::wal::{SyncPolicy, Wal};

const BATCH: usize = 1000;

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
            s("service.name", format!("service-{}", i % 20)),
            s(
                "service.instance.id",
                format!("service-{}-{}", i % 20, i % 3),
            ),
            s("host.name", format!("node-{}", i % 7)),
            s("service.version", "1.4.2".into()),
        ],
        ..Default::default()
    })
}

/// 1000 spans of ~700 B: 12 attributes incl. a uuid correlation id, a long SQL statement,
/// a user agent, and one event.
fn traces(seed: u64) -> ExportTraceServiceRequest {
    let mut rng = fastrand::Rng::with_seed(seed);
    let spans = (0..BATCH)
        .map(|i| {
            let t = 1_795_428_900_000_000_000 + i as u64 * 1_000_000;
            Span {
                trace_id: (0..16).map(|_| rng.u8(..)).collect(),
                span_id: (0..8).map(|_| rng.u8(1..)).collect(),
                parent_span_id: (0..8).map(|_| rng.u8(1..)).collect(),
                name: format!("GET /api/v{}/orders/{{id}}", i % 4),
                kind: 2,
                start_time_unix_nano: t,
                end_time_unix_nano: t + rng.u64(1_000_000..90_000_000),
                attributes: vec![
                    s("http.request.method", "GET".into()),
                    s("http.route", "/api/orders/{id}".into()),
                    s("url.full", format!("https://shop.example.com/api/orders/{}", rng.u32(..))),
                    s("correlation_id", format!("{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}", rng.u32(..), rng.u16(..), rng.u16(..4095), rng.u16(..4095), rng.u64(..1 << 48))),
                    s("db.statement", "SELECT o.id, o.total, o.status, c.email FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.id = $1 AND o.tenant = $2".into()),
                    s("user_agent.original", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0".into()),
                    s("net.peer.name", format!("10.0.{}.{}", rng.u8(..), rng.u8(..))),
                    s("http.response.status_code", "200".into()),
                    s("tenant.id", format!("tenant-{}", rng.u16(..500))),
                    s("user.id", format!("user-{}", rng.u32(..))),
                    s("feature.flag", "checkout-v2".into()),
                    s("region", "eu-west-1".into()),
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

/// 1000 log records with bodies of 60–300 B containing words, numbers and ids.
fn logs(seed: u64) -> ExportLogsServiceRequest {
    let mut rng = fastrand::Rng::with_seed(seed);
    let words = [
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
    ];
    let records = (0..BATCH)
        .map(|i| {
            let n = rng.usize(8..40);
            let body: Vec<String> = (0..n)
                .map(|_| match rng.u8(0..4) {
                    0 => rng.u32(..100_000).to_string(),
                    1 => format!("{:016x}", rng.u64(..)),
                    _ => words[rng.usize(..words.len())].to_string(),
                })
                .collect();
            LogRecord {
                time_unix_nano: 1_795_428_900_000_000_000 + i as u64 * 1_000_000,
                severity_number: [9, 9, 9, 13, 17][i % 5],
                body: Some(AnyValue {
                    value: Some(any_value::Value::StringValue(body.join(" "))),
                }),
                attributes: vec![s("correlation_id", format!("req-{}", rng.u64(..)))],
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

fn stages(c: &mut Criterion) {
    let keys = CorrelationKeys::default();
    let trace_bytes = traces(1).encode_to_vec();
    let log_bytes = logs(2).encode_to_vec();
    let mut g = c.benchmark_group("stage");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    g.throughput(Throughput::Elements(BATCH as u64));

    g.bench_function("decode traces (1000 spans)", |b| {
        b.iter(|| ExportTraceServiceRequest::decode(trace_bytes.as_slice()).unwrap())
    });
    g.bench_function("decode+convert traces", |b| {
        b.iter(|| {
            convert_traces(
                ExportTraceServiceRequest::decode(trace_bytes.as_slice()).unwrap(),
                &keys,
            )
        })
    });
    g.bench_function("decode+convert logs (1000 records)", |b| {
        b.iter(|| {
            convert_logs(
                ExportLogsServiceRequest::decode(log_bytes.as_slice()).unwrap(),
                &keys,
            )
        })
    });

    for (name, policy) in [
        ("wal append traces, no fsync", SyncPolicy::Never),
        ("wal append traces, fsync", SyncPolicy::Always),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, _) = Wal::open(dir.path(), policy, None).unwrap();
        g.bench_function(name, |b| {
            b.iter(|| {
                wal.append(Signal::Traces, &trace_bytes);
                wal.commit().unwrap();
            })
        });
    }

    let spans = convert_traces(traces(3), &keys).0;
    let log_rows = convert_logs(logs(4), &keys).0;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_local(dir.path(), 16_384).unwrap();
    g.bench_function("parquet encode+write spans", |b| {
        b.iter(|| rt.block_on(store.write(&spans)).unwrap().len())
    });
    g.bench_function("parquet encode+write logs", |b| {
        b.iter(|| rt.block_on(store.write(&log_rows)).unwrap().len())
    });

    let index_dir = tempfile::tempdir().unwrap();
    let index = Arc::new(BlockIndex::open(index_dir.path()).unwrap());
    let fields = index.fields().clone();
    let span_refs: Vec<_> = spans.iter().collect();
    let log_refs: Vec<_> = log_rows.iter().collect();
    let mut seq = 0;
    g.bench_function("index one span block + commit", |b| {
        b.iter_batched(
            || block::span_block(&fields, "traces/x.parquet", 0, &span_refs),
            |doc| {
                seq += 1;
                index.commit_blocks(vec![doc], seq).unwrap()
            },
            BatchSize::SmallInput,
        )
    });
    g.bench_function("index one log block + commit", |b| {
        b.iter_batched(
            || block::log_block(&fields, "logs/x.parquet", 0, &log_refs),
            |doc| {
                seq += 1;
                index.commit_blocks(vec![doc], seq).unwrap()
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, stages);
criterion_main!(benches);
