//! Acceptance for the service views: real SDK exporters send a known topology and known
//! metrics (both temporalities); the service map, RED, metric rates and percentiles come out
//! exactly, and an instance that stops sending turns down and comes back up.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use common::{enc, Server};
use opentelemetry::metrics::MeterProvider;
use opentelemetry::trace::{Link, Span, SpanKind, Status, TraceContextExt, Tracer, TracerProvider};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{MetricExporter, Protocol, SpanExporter, WithExportConfig};
use opentelemetry_sdk::metrics::{SdkMeterProvider, Temporality};
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use serde_json::Value;

fn resource(service: &str) -> Resource {
    Resource::builder()
        .with_service_name(service.to_string())
        .with_attribute(KeyValue::new("service.instance.id", format!("{service}-1")))
        .build()
}

fn tracer_provider(service: &str, server: &Server, grpc: bool) -> SdkTracerProvider {
    let exporter = if grpc {
        SpanExporter::builder()
            .with_tonic()
            .with_endpoint(&server.otlp_grpc)
            .build()
    } else {
        SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(format!("{}/v1/traces", server.otlp_http))
            .build()
    };
    SdkTracerProvider::builder()
        .with_batch_exporter(exporter.expect("span exporter"))
        .with_resource(resource(service))
        .build()
}

fn meter_provider(service: &str, server: &Server, temporality: Temporality) -> SdkMeterProvider {
    let exporter = match temporality {
        Temporality::Cumulative => MetricExporter::builder()
            .with_tonic()
            .with_endpoint(&server.otlp_grpc)
            .with_temporality(temporality)
            .build(),
        _ => MetricExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpJson)
            .with_endpoint(format!("{}/v1/metrics", server.otlp_http))
            .with_temporality(temporality)
            .build(),
    };
    SdkMeterProvider::builder()
        .with_periodic_exporter(exporter.expect("metric exporter"))
        .with_resource(resource(service))
        .build()
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("blocking task")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn map_red_metrics_and_health_from_real_exporters() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(
        &dir.path().join("data"),
        &["--flush-age-ms", "300", "--instance-down-after-secs", "5"],
    );
    let web = tracer_provider("web", &server, true);
    let api = tracer_provider("api", &server, false);
    let worker = tracer_provider("worker", &server, false);
    let (tw, ta, tk) = (web.tracer("t"), api.tracer("t"), worker.tracer("t"));

    // web → api (rpc, 2 of 5 fail) → postgresql (uninstrumented) and → worker (through a queue).
    let t0 = SystemTime::now() - Duration::from_millis(800);
    let at = |ms: u64| t0 + Duration::from_millis(ms);
    for i in 0..5u64 {
        let base = i * 100;
        let mut root = tw
            .span_builder("GET /")
            .with_kind(SpanKind::Server)
            .with_start_time(at(base))
            .start(&tw);
        let root_cx = Context::new().with_remote_span_context(root.span_context().clone());
        let mut call = tw
            .span_builder("call api")
            .with_kind(SpanKind::Client)
            .with_start_time(at(base + 1))
            .start_with_context(&tw, &root_cx);
        let call_cx = Context::new().with_remote_span_context(call.span_context().clone());
        let mut srv = ta
            .span_builder("POST /work")
            .with_kind(SpanKind::Server)
            .with_start_time(at(base + 2))
            .start_with_context(&ta, &call_cx);
        if i < 2 {
            srv.set_status(Status::error("boom"));
        }
        let srv_cx = Context::new().with_remote_span_context(srv.span_context().clone());
        let mut db = ta
            .span_builder("SELECT jobs")
            .with_kind(SpanKind::Client)
            .with_start_time(at(base + 3))
            .with_attributes([KeyValue::new("db.system", "postgresql")])
            .start_with_context(&ta, &srv_cx);
        db.end_with_timestamp(at(base + 8));
        let mut produce = ta
            .span_builder("jobs publish")
            .with_kind(SpanKind::Producer)
            .with_start_time(at(base + 9))
            .start_with_context(&ta, &srv_cx);
        let producer = produce.span_context().clone();
        produce.end_with_timestamp(at(base + 10));
        srv.end_with_timestamp(at(base + 20));
        call.end_with_timestamp(at(base + 21));
        root.end_with_timestamp(at(base + 22));
        // A new trace on the consumer side, tied to the producer by a span link.
        let mut consume = tk
            .span_builder("jobs process")
            .with_kind(SpanKind::Consumer)
            .with_start_time(at(base + 40))
            .with_links(vec![Link::with_context(producer)])
            .start_with_context(&tk, &Context::new());
        consume.end_with_timestamp(at(base + 60));
    }

    // Metrics: a cumulative counter over gRPC and a delta counter and histogram over HTTP/JSON.
    let web_meter = meter_provider("web", &server, Temporality::Cumulative);
    let api_meter = meter_provider("api", &server, Temporality::Delta);
    let web_jobs = web_meter.meter("m").u64_counter("jobs_total").build();
    let api_jobs = api_meter.meter("m").u64_counter("jobs_total").build();
    let api_latency = api_meter
        .meter("m")
        .f64_histogram("work_duration")
        .with_unit("ms")
        .with_boundaries(vec![10.0, 25.0, 50.0, 75.0, 100.0, 250.0])
        .build();
    web_jobs.add(3, &[]);
    api_jobs.add(2, &[]);
    for v in 1..=10 {
        api_latency.record(v as f64 * 10.0, &[]);
    }
    let (web_meter, api_meter) = blocking(move || {
        web_meter.force_flush().unwrap();
        api_meter.force_flush().unwrap();
        (web_meter, api_meter)
    })
    .await;
    web_jobs.add(4, &[]);
    api_jobs.add(3, &[]);
    blocking(move || {
        for p in [web, api, worker] {
            p.force_flush().unwrap();
            let _ = p.shutdown();
        }
        for m in [web_meter, api_meter] {
            m.force_flush().unwrap();
            let _ = m.shutdown();
        }
    })
    .await;

    // The service map has exactly the sent topology with the right counts.
    let map = server
        .wait_for("/api/v1/service-map", |m| {
            m["edges"].as_array().is_some_and(|e| e.len() >= 3)
        })
        .await;
    let edges: BTreeMap<(String, String), (String, u64, u64)> = map["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                (
                    e["caller"].as_str().unwrap().to_string(),
                    e["callee"].as_str().unwrap().to_string(),
                ),
                (
                    e["kind"].as_str().unwrap().to_string(),
                    e["calls"].as_u64().unwrap(),
                    e["errors"].as_u64().unwrap(),
                ),
            )
        })
        .collect();
    let expected: BTreeMap<(String, String), (String, u64, u64)> = [
        (("web", "api"), ("rpc", 5, 2)),
        (("api", "postgresql"), ("uninstrumented", 5, 0)),
        (("api", "worker"), ("messaging", 5, 0)),
    ]
    .into_iter()
    .map(|((a, b), (k, c, e))| ((a.to_string(), b.to_string()), (k.to_string(), c, e)))
    .collect();
    assert_eq!(edges, expected, "{map}");
    let leaf = map["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == "postgresql")
        .unwrap();
    assert_eq!(leaf["instrumented"], false);

    // RED per service from server/consumer spans.
    let (_, overview) = server.get("/api/v1/overview").await;
    let red = |name: &str| -> Value {
        overview["services"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .unwrap()["red"]
            .clone()
    };
    assert_eq!(red("api")["requests"], 5);
    assert_eq!(red("api")["errors"], 2);
    assert_eq!(red("web")["requests"], 5);
    assert_eq!(red("worker")["requests"], 5);
    let p95 = red("api")["p95_nano"].as_i64().unwrap() as f64;
    assert!((p95 - 18e6).abs() / 18e6 < 0.2, "api p95 {p95} near 18 ms");

    // Counter rates equal the sent counts over the window, for both temporalities.
    let start = (t0 - Duration::from_secs(60))
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let window = 180u64;
    let end = start + window;
    let total = |svc: &'static str| {
        let path = format!("/api/v1/metrics/query?name=jobs_total&service={svc}&start={start}&end={end}&step={window}");
        let server = &server;
        async move {
            let (_, body) = server.get(&path).await;
            body["series"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|s| {
                    s["points"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|p| p[1].as_f64().unwrap())
                })
                .sum::<f64>()
                * window as f64
        }
    };
    assert!(
        (total("web").await - 7.0).abs() < 1e-6,
        "cumulative counter: 3 then 4"
    );
    assert!(
        (total("api").await - 5.0).abs() < 1e-6,
        "delta counter: 2 then 3"
    );
    // Histogram percentiles within the bucket resolution.
    let (_, hist) = server.get(&format!("/api/v1/metrics/query?name=work_duration&service=api&start={start}&end={end}&step={window}")).await;
    let value = |name: &str| -> f64 {
        hist["series"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["value"] == name)
            .unwrap()["points"][0][1]
            .as_f64()
            .unwrap()
    };
    assert!(
        (50.0..=75.0).contains(&value("p50")),
        "p50 {} in the 50–75 bucket",
        value("p50")
    );
    assert!(
        (75.0..=100.0).contains(&value("p95")),
        "p95 {} in the 75–100 bucket",
        value("p95")
    );
    let (_, names) = server.get("/api/v1/metrics?service=api").await;
    let names: Vec<&str> = names["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["jobs_total", "work_duration"]);

    // Health: silent for longer than 5 s → down; data again → up.
    let down = |o: &Value, svc: &str| {
        o["services"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == svc)
            .unwrap()["down_instances"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(down(&server.get("/api/v1/overview").await.1, "worker"), 0);
    // Polled: the worker turns down once it has been silent for 5 s.
    server
        .wait_for_within("/api/v1/overview", Duration::from_secs(15), |o| {
            down(o, "worker") == 1
        })
        .await;
    let worker = tracer_provider("worker", &server, false);
    let tracer = worker.tracer("t");
    tracer
        .span_builder("jobs process")
        .with_kind(SpanKind::Consumer)
        .start(&tracer)
        .end();
    blocking(move || {
        worker.force_flush().unwrap();
        let _ = worker.shutdown();
    })
    .await;
    let back = server
        .wait_for("/api/v1/overview", |o| down(o, "worker") == 0)
        .await;
    assert_eq!(down(&back, "worker"), 0, "worker is back up");
    let (status, _) = server
        .get(&format!("/api/v1/services/{}", enc("no-such-service")))
        .await;
    assert_eq!(status, 404);
    server.stop();
}
