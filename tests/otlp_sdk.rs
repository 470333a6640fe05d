//! Acceptance: the real OpenTelemetry SDK exporters (gRPC, HTTP/protobuf, HTTP/JSON) send
//! traces, logs and metrics to a real `sightline serve`; the query API returns exactly what
//! was sent, and answers the same after a restart.

mod common;

use std::time::{Duration, SystemTime};

use common::{enc, Server};
use opentelemetry::logs::{AnyValue, LogRecord, Logger, LoggerProvider, Severity};
use opentelemetry::metrics::MeterProvider;
use opentelemetry::trace::{Span, SpanKind, TraceContextExt, Tracer, TracerProvider};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{LogExporter, MetricExporter, Protocol, SpanExporter, WithExportConfig};
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::metrics::{SdkMeterProvider, Temporality};
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use serde_json::Value;

/// How one simulated service sends: over gRPC, HTTP/protobuf or HTTP/JSON.
#[derive(Clone, Copy)]
enum Transport {
    Grpc,
    HttpProtobuf,
    HttpJson,
}

/// The three SDK providers of one simulated service.
struct Service {
    tracer: SdkTracerProvider,
    logger: SdkLoggerProvider,
    meter: SdkMeterProvider,
}

fn resource(name: &str) -> Resource {
    Resource::builder()
        .with_service_name(name.to_string())
        .with_attributes([
            KeyValue::new("service.instance.id", format!("{name}-1")),
            KeyValue::new("service.version", "1.2.3"),
            KeyValue::new("host.name", "test-host"),
        ])
        .build()
}

fn service(name: &str, transport: Transport, server: &Server) -> Service {
    let http = |signal: &str| format!("{}/v1/{signal}", server.otlp_http);
    let (spans, logs, metrics) = match transport {
        Transport::Grpc => (
            SpanExporter::builder()
                .with_tonic()
                .with_endpoint(&server.otlp_grpc)
                .build(),
            LogExporter::builder()
                .with_tonic()
                .with_endpoint(&server.otlp_grpc)
                .build(),
            MetricExporter::builder()
                .with_tonic()
                .with_endpoint(&server.otlp_grpc)
                .with_temporality(Temporality::Cumulative)
                .build(),
        ),
        Transport::HttpProtobuf | Transport::HttpJson => {
            let protocol = match transport {
                Transport::HttpJson => Protocol::HttpJson,
                _ => Protocol::HttpBinary,
            };
            (
                SpanExporter::builder()
                    .with_http()
                    .with_protocol(protocol)
                    .with_endpoint(http("traces"))
                    .build(),
                LogExporter::builder()
                    .with_http()
                    .with_protocol(protocol)
                    .with_endpoint(http("logs"))
                    .build(),
                MetricExporter::builder()
                    .with_http()
                    .with_protocol(protocol)
                    .with_endpoint(http("metrics"))
                    .with_temporality(Temporality::Delta)
                    .build(),
            )
        }
    };
    Service {
        tracer: SdkTracerProvider::builder()
            .with_batch_exporter(spans.expect("span exporter"))
            .with_resource(resource(name))
            .build(),
        logger: SdkLoggerProvider::builder()
            .with_batch_exporter(logs.expect("log exporter"))
            .with_resource(resource(name))
            .build(),
        meter: SdkMeterProvider::builder()
            .with_periodic_exporter(metrics.expect("metric exporter"))
            .with_resource(resource(name))
            .build(),
    }
}

/// Flushes and shuts down every provider (blocking calls, so off the async workers).
async fn flush_all(services: Vec<Service>) {
    tokio::task::spawn_blocking(move || {
        for s in services {
            s.tracer.force_flush().expect("flush spans");
            s.logger.force_flush().expect("flush logs");
            s.meter.force_flush().expect("flush metrics");
            let _ = s.tracer.shutdown();
            let _ = s.logger.shutdown();
            let _ = s.meter.shutdown();
        }
    })
    .await
    .expect("flush thread");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_exporters_round_trip_and_survive_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data);

    let names = ["frontend", "checkout", "payment"];
    let transports = [
        Transport::Grpc,
        Transport::HttpProtobuf,
        Transport::HttpJson,
    ];
    let services: Vec<Service> = names
        .iter()
        .zip(transports)
        .map(|(n, t)| service(n, t, &server))
        .collect();

    let correlation = format!("order-{}", std::process::id());
    let t0 = SystemTime::now() - Duration::from_secs(2);
    let ms = |n: u64| t0 + Duration::from_millis(n);
    // frontend (0-100 ms) → checkout (10-80 ms) → payment (20-60 ms, ERROR)
    let plan = [
        (0u64, 100u64, SpanKind::Server),
        (10, 80, SpanKind::Server),
        (20, 60, SpanKind::Server),
    ];
    let mut parent_cx = Context::new();
    let mut sent = Vec::new();
    for (i, s) in services.iter().enumerate() {
        let tracer = s.tracer.tracer("sightline-test");
        let (start, end, kind) = plan[i].clone();
        let mut span = tracer
            .span_builder(format!("{} op", names[i]))
            .with_kind(kind)
            .with_start_time(ms(start))
            .with_attributes([KeyValue::new("correlation_id", correlation.clone())])
            .start_with_context(&tracer, &parent_cx);
        if i == 2 {
            span.set_status(opentelemetry::trace::Status::error("card declined"));
        }
        let ctx = span.span_context().clone();
        // One log per service inside the span, carrying the correlation id…
        let logger = s.logger.logger("sightline-test");
        let mut record = logger.create_log_record();
        record.set_timestamp(ms(start + 1));
        record.set_severity_number(if i == 2 {
            Severity::Error
        } else {
            Severity::Info
        });
        record.set_body(AnyValue::from(format!("{} handled the order", names[i])));
        record.add_attribute("correlation_id", correlation.clone());
        record.set_trace_context(ctx.trace_id(), ctx.span_id(), None);
        logger.emit(record);
        // …and one that belongs to another request.
        let mut other = logger.create_log_record();
        other.set_timestamp(ms(start + 2));
        other.set_body(AnyValue::from("unrelated request"));
        other.add_attribute("correlation_id", format!("{correlation}-other"));
        logger.emit(other);
        // A counter per service.
        let counter = s
            .meter
            .meter("sightline-test")
            .u64_counter("orders_total")
            .build();
        counter.add(3, &[KeyValue::new("route", "/buy")]);

        span.end_with_timestamp(ms(end));
        sent.push((
            ctx.trace_id().to_string(),
            ctx.span_id().to_string(),
            names[i],
            end - start,
        ));
        parent_cx = Context::new().with_remote_span_context(ctx);
    }
    flush_all(services).await;

    let trace_id = sent[0].0.clone();
    let trace_path = format!("/api/v1/traces/{trace_id}");
    let trace = server
        .wait_for(&trace_path, |t| {
            t["spans"].as_array().is_some_and(|s| s.len() == 3)
        })
        .await;
    let spans = trace["spans"].as_array().unwrap();
    assert_eq!(spans.len(), 3, "exactly the spans sent: {trace}");
    for (i, (tid, sid, service, duration_ms)) in sent.iter().enumerate() {
        let span = spans
            .iter()
            .find(|s| s["span_id"] == *sid)
            .expect("span present");
        assert_eq!(span["trace_id"], *tid);
        assert_eq!(span["resource"]["service_name"], *service);
        assert_eq!(
            span["resource"]["service_instance_id"],
            format!("{service}-1")
        );
        assert_eq!(
            span["duration_nano"].as_i64().unwrap(),
            *duration_ms as i64 * 1_000_000
        );
        let expected_parent = if i == 0 {
            Value::Null
        } else {
            Value::from(sent[i - 1].1.clone())
        };
        assert_eq!(
            span["parent_span_id"], expected_parent,
            "parent of {service}"
        );
        assert_eq!(span["correlation_id"], Value::from(correlation.clone()));
    }
    assert_eq!(
        spans.iter().find(|s| s["span_id"] == *sent[2].1).unwrap()["status_code"],
        "ERROR"
    );
    assert_eq!(
        trace["logs"].as_array().unwrap().len(),
        3,
        "the trace's own logs"
    );

    let logs_path = format!(
        "/api/v1/logs?q={}",
        enc(&format!("correlation_id:\"{correlation}\""))
    );
    let logs = server
        .wait_for(&logs_path, |l| {
            l["logs"].as_array().is_some_and(|l| l.len() >= 3)
        })
        .await;
    let mut services_seen: Vec<&str> = logs["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            assert_eq!(l["correlation_id"], Value::from(correlation.clone()));
            l["resource"]["service_name"].as_str().unwrap()
        })
        .collect();
    services_seen.sort();
    assert_eq!(
        services_seen,
        ["checkout", "frontend", "payment"],
        "exactly the matching logs"
    );

    let correlated = server
        .get(&format!("/api/v1/correlations/{}", enc(&correlation)))
        .await
        .1;
    assert_eq!(correlated["traces"].as_array().unwrap().len(), 1);
    assert_eq!(
        correlated["traces"][0]["trace_id"],
        Value::from(trace_id.clone())
    );
    assert_eq!(correlated["logs"].as_array().unwrap().len(), 3);
    let services = server.get("/api/v1/services").await.1;
    let listed: Vec<&str> = services["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ["checkout", "frontend", "payment"]);

    // Every query answers the same after a restart on the same data dir.
    let before = [
        server.get(&trace_path).await.1,
        common::search::found_part(server.get(&logs_path).await.1),
        server
            .get(&format!("/api/v1/correlations/{}", enc(&correlation)))
            .await
            .1,
        server.get("/api/v1/services").await.1,
    ];
    server.stop();
    let server = Server::start(&data);
    let after = [
        server.get(&trace_path).await.1,
        common::search::found_part(server.get(&logs_path).await.1),
        server
            .get(&format!("/api/v1/correlations/{}", enc(&correlation)))
            .await
            .1,
        server.get("/api/v1/services").await.1,
    ];
    assert_eq!(before, after);
    server.stop();

    // The metrics of all three transports are in the store: read the Parquet files back.
    let points = common_metrics(&data.join("store"));
    for name in names {
        let values = points
            .iter()
            .filter(|p| p.0 == name && p.1 == "orders_total");
        // Cumulative points each carry the running total; delta points add up to it.
        let total = match names.iter().position(|n| *n == name) {
            Some(0) => values.map(|p| p.2).fold(0.0, f64::max),
            _ => values.map(|p| p.2).sum(),
        };
        assert_eq!(total, 3.0, "orders_total of {name}: {points:?}");
    }
}

/// (service, metric, value) of every stored metric point, read with parquet's row API.
fn common_metrics(store: &std::path::Path) -> Vec<(String, String, f64)> {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let mut out = Vec::new();
    for file in common::parquet_files(&store.join("metrics")) {
        let reader = SerializedFileReader::new(std::fs::File::open(&file).unwrap()).unwrap();
        for row in reader.get_row_iter(None).unwrap() {
            let row = row.unwrap();
            let mut service = String::new();
            let mut name = String::new();
            let mut value = 0.0;
            for (col, field) in row.get_column_iter() {
                match (col.as_str(), field) {
                    ("service_name", parquet::record::Field::Str(s)) => service = s.clone(),
                    ("name", parquet::record::Field::Str(s)) => name = s.clone(),
                    ("value", parquet::record::Field::Double(v)) => value = *v,
                    _ => {}
                }
            }
            out.push((service, name, value));
        }
    }
    out
}
