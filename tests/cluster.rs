//! Cluster mode on loopback: three nodes — ingest+query, ingest+index, index+query — around a
//! real NATS JetStream, PostgreSQL and S3-compatible server (`tests/common/cluster.rs`).
//! What the real OpenTelemetry SDK exporters send to either ingest node is queryable from
//! both query nodes; `kill -9` of an index node mid-stream and of an ingest node after its
//! acknowledgements loses and doubles nothing (the crash harness's counting).

mod common;

use std::time::{Duration, Instant, SystemTime};

use common::cluster::Cluster;
use common::crash::{count_per_batch, post_batch, Tally};
use common::proxy::Proxy;
use common::s3::READ_CACHE_BYTES;
use common::{enc, Server};
use opentelemetry::logs::{AnyValue, LogRecord, Logger, LoggerProvider};
use opentelemetry::trace::{Span, SpanKind, TraceContextExt, Tracer, TracerProvider};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{LogExporter, Protocol, SpanExporter, WithExportConfig};
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;

/// Long enough for a flush, a registration and a catalog poll, with a loaded machine's slack.
const VISIBLE_WITHIN: Duration = Duration::from_secs(60);

fn resource(name: &str) -> Resource {
    Resource::builder()
        .with_service_name(name.to_string())
        .with_attributes([KeyValue::new("service.instance.id", format!("{name}-1"))])
        .build()
}

/// A service's SDK providers exporting to `server`: over gRPC, or over HTTP/protobuf.
fn providers(name: &str, server: &Server, grpc: bool) -> (SdkTracerProvider, SdkLoggerProvider) {
    let (spans, logs) = if grpc {
        (
            SpanExporter::builder()
                .with_tonic()
                .with_endpoint(&server.otlp_grpc)
                .build(),
            LogExporter::builder()
                .with_tonic()
                .with_endpoint(&server.otlp_grpc)
                .build(),
        )
    } else {
        (
            SpanExporter::builder()
                .with_http()
                .with_protocol(Protocol::HttpBinary)
                .with_endpoint(format!("{}/v1/traces", server.otlp_http))
                .build(),
            LogExporter::builder()
                .with_http()
                .with_protocol(Protocol::HttpBinary)
                .with_endpoint(format!("{}/v1/logs", server.otlp_http))
                .build(),
        )
    };
    (
        SdkTracerProvider::builder()
            .with_batch_exporter(spans.expect("span exporter"))
            .with_resource(resource(name))
            .build(),
        SdkLoggerProvider::builder()
            .with_batch_exporter(logs.expect("log exporter"))
            .with_resource(resource(name))
            .build(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sdk_exports_to_either_ingest_node_are_queryable_from_every_query_node() {
    let cluster = Cluster::new("sdk");
    let dir = tempfile::tempdir().expect("temp dir");
    let a = cluster.start(&dir.path().join("a"), "ingest,query");
    let b = cluster.start(&dir.path().join("b"), "ingest,index");
    let c = cluster.start(&dir.path().join("c"), "index,query");

    // checkout (gRPC to a) calls billing (HTTP to b): each trace crosses both ingest nodes.
    let (checkout_spans, checkout_logs) = providers("checkout", &a, true);
    let (billing_spans, billing_logs) = providers("billing", &b, false);
    let t0 = SystemTime::now() - Duration::from_secs(5);
    let mut traces = Vec::new();
    for i in 0..20u64 {
        let tracer = checkout_spans.tracer("cluster-test");
        let start = t0 + Duration::from_millis(i * 10);
        let parent = tracer
            .span_builder("POST /checkout")
            .with_kind(SpanKind::Server)
            .with_start_time(start)
            .start(&tracer);
        let parent_cx = Context::new().with_remote_span_context(parent.span_context().clone());
        let billing = billing_spans.tracer("cluster-test");
        let mut child = billing
            .span_builder("charge")
            .with_kind(SpanKind::Server)
            .with_start_time(start + Duration::from_millis(1))
            .start_with_context(&billing, &parent_cx);
        child.end_with_timestamp(start + Duration::from_millis(4));
        let trace_id = parent.span_context().trace_id().to_string();
        let mut parent = parent;
        parent.end_with_timestamp(start + Duration::from_millis(5));
        for (logger, service) in [
            (checkout_logs.logger("cluster-test"), "checkout"),
            (billing_logs.logger("cluster-test"), "billing"),
        ] {
            let mut record = logger.create_log_record();
            record.set_timestamp(start + Duration::from_millis(2));
            record.set_body(AnyValue::from(format!("{service} handled order {i}")));
            record.add_attribute("correlation_id", format!("order-{i}"));
            logger.emit(record);
        }
        traces.push(trace_id);
    }
    tokio::task::spawn_blocking(move || {
        for provider in [checkout_spans, billing_spans] {
            provider.force_flush().expect("spans acknowledged");
            let _ = provider.shutdown();
        }
        for provider in [checkout_logs, billing_logs] {
            provider.force_flush().expect("logs acknowledged");
            let _ = provider.shutdown();
        }
    })
    .await
    .expect("flush thread");

    for query_node in [&a, &c] {
        for trace_id in &traces {
            let trace = query_node
                .wait_for_within(&format!("/api/v1/traces/{trace_id}"), VISIBLE_WITHIN, |t| {
                    t["spans"].as_array().is_some_and(|s| s.len() == 2)
                })
                .await;
            let mut services: Vec<&str> = trace["spans"]
                .as_array()
                .expect("spans")
                .iter()
                .filter_map(|s| s["resource"]["service_name"].as_str())
                .collect();
            services.sort_unstable();
            assert_eq!(services, ["billing", "checkout"], "{trace}");
        }
        for service in ["checkout", "billing"] {
            let path = format!(
                "/api/v1/logs?q={}&limit=1000",
                enc(&format!("service:{service}"))
            );
            query_node
                .wait_for_within(&path, VISIBLE_WITHIN, |l| {
                    l["logs"].as_array().is_some_and(|l| l.len() == 20)
                })
                .await;
        }
    }
    drop((a, b, c));
    cluster.remove().await;
}

/// Polls `node` until every acknowledged batch is visible (or the time is up), then asserts
/// that none was lost and none doubled without a resend.
async fn every_acknowledged_record_once(
    node: &Server,
    tally: &Tally,
    per_batch: usize,
    what: &str,
) {
    let deadline = Instant::now() + VISIBLE_WITHIN;
    let counts = loop {
        let counts = count_per_batch(node).await;
        let complete = tally
            .acked
            .iter()
            .all(|batch| counts.get(&format!("batch-{batch}")).copied().unwrap_or(0) >= per_batch);
        if complete || Instant::now() > deadline {
            break counts;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let (lost, doubled) = tally.lost_and_doubled(&counts, per_batch);
    eprintln!(
        "cluster {what}: {} batches acknowledged, {} resent, {} records on {}",
        tally.acked.len(),
        tally.resent.len(),
        counts.values().sum::<usize>(),
        node.api
    );
    assert!(lost.is_empty(), "acknowledged records lost: {lost:?}");
    assert!(
        doubled.is_empty(),
        "acknowledged records doubled: {doubled:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killed_index_and_ingest_nodes_lose_and_double_nothing() {
    let cluster = Cluster::new("kill");
    let dir = tempfile::tempdir().expect("temp dir");
    let (data_a, data_b, data_c) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("c"),
    );
    let a = cluster.start(&data_a, "ingest,query");
    let mut b = Some(cluster.start(&data_b, "ingest,index"));
    let mut c = Some(cluster.start(&data_c, "index,query"));

    let http = reqwest::Client::new();
    let per_batch = 20usize;
    let mut tally = Tally::default();
    let mut pending: Option<u64> = None;
    let mut next = 0u64;
    let started = Instant::now();
    let (mut killed_c, mut killed_b) = (false, false);
    while started.elapsed() < Duration::from_secs(9) {
        let elapsed = started.elapsed();
        // The index+query node dies mid-stream, holding unregistered messages, and comes back.
        if !killed_c && elapsed > Duration::from_secs(2) {
            c.take().expect("c running").kill9();
            killed_c = true;
        }
        if killed_c && c.is_none() && elapsed > Duration::from_secs(3) {
            c = Some(cluster.start(&data_c, "index,query"));
        }
        let batch = pending.take().unwrap_or_else(|| {
            next += 1;
            next
        });
        // Alternate the ingest nodes while both are up.
        let target = match &b {
            Some(b) if batch.is_multiple_of(2) => b,
            _ => &a,
        };
        if post_batch(&http, target, batch, per_batch, "cluster").await {
            tally.acked.insert(batch);
            // The ingest+index node dies right after acknowledging, and comes back.
            if !killed_b && elapsed > Duration::from_secs(5) && batch.is_multiple_of(2) {
                b.take().expect("b running").kill9();
                killed_b = true;
            }
        } else {
            tally.resent.insert(batch);
            pending = Some(batch);
        }
        if killed_b && b.is_none() && elapsed > Duration::from_secs(6) {
            b = Some(cluster.start(&data_b, "ingest,index"));
        }
    }
    assert!(killed_b && killed_c, "both kills happened");
    let c = c.expect("c restarted");
    let b = b.expect("b restarted");
    for node in [&a, &c] {
        every_acknowledged_record_once(node, &tally, per_batch, "crash").await;
    }
    // The kills were real for the queue: messages a dead node held went to a live one.
    let mut taken_over = 0.0;
    for index_node in [&b, &c] {
        let text = index_node.metrics_text().await;
        taken_over += text
            .lines()
            .filter(|l| l.starts_with("sightline_queue_redeliveries_total"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>();
    }
    assert!(
        taken_over > 0.0,
        "no index node took over a dead node's messages"
    );
    drop((a, b, c));
    cluster.remove().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bucket_and_catalog_outages_pause_indexing_and_lose_nothing() {
    let mut cluster = Cluster::new("outage");
    let mut postgres = Proxy::start(cluster.postgres_addr()).await;
    cluster.postgres_through(postgres.addr);
    let dir = tempfile::tempdir().expect("temp dir");
    let a = cluster.start(&dir.path().join("a"), "ingest,query");
    let b = cluster.start(&dir.path().join("b"), "index");

    let http = reqwest::Client::new();
    let per_batch = 20usize;
    let mut tally = Tally::default();
    let mut late_query_node = None;
    let mut restarted_s3 = false;
    let started = Instant::now();
    let mut batch = 0u64;
    let (mut cut_postgres, mut resumed_postgres, mut stopped_s3) = (false, false, false);
    while started.elapsed() < Duration::from_secs(19) {
        let elapsed = started.elapsed();
        // The bucket's server down from 2 s to 5 s, then PostgreSQL unreachable from 6 s to
        // 16 s: one after the other, so each meets a flush (a flush waiting on the catalog
        // writes no files, and would never see the bucket gone).
        if !cut_postgres && elapsed > Duration::from_secs(6) {
            postgres.cut();
            cut_postgres = true;
        }
        if cut_postgres && !resumed_postgres && elapsed > Duration::from_secs(16) {
            postgres.resume().await;
            resumed_postgres = true;
        }
        if !stopped_s3 && elapsed > Duration::from_secs(2) {
            cluster.s3.stop();
            stopped_s3 = true;
        }
        if stopped_s3 && !restarted_s3 && elapsed > Duration::from_secs(5) {
            cluster.s3.restart();
            restarted_s3 = true;
        }
        // A query node joins while data flows, once the catalog answers again.
        if resumed_postgres && late_query_node.is_none() && elapsed > Duration::from_secs(17) {
            late_query_node = Some(cluster.start(&dir.path().join("d"), "query"));
        }
        batch += 1;
        if post_batch(&http, &a, batch, per_batch, "outage").await {
            tally.acked.insert(batch);
        } else {
            tally.resent.insert(batch);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The queue took every export while the bucket and the catalog were away.
    assert!(
        tally.resent.is_empty(),
        "refused during the outages: {:?}",
        tally.resent
    );
    let d = late_query_node.expect("the late query node started");
    for node in [&a, &d] {
        every_acknowledged_record_once(node, &tally, per_batch, "outage").await;
    }
    // The catalog's outage was real for the index node: its flush waited on it and went on.
    // (A bucket outage shorter than the S3 client's own retries shows up as a slow write,
    // not as a failed step, so only the catalog's can be seen this way.)
    let log = std::fs::read_to_string(dir.path().join("b.log")).expect("index node's log");
    assert!(
        log.contains("flush could not register the files in the metastore, retrying"),
        "the index node's flush never had to wait for the catalog"
    );
    // The late query node read every file through its bounded cache.
    let cached = common::dir_bytes(&dir.path().join("d").join("read-cache"));
    assert!(
        cached > 0 && cached <= READ_CACHE_BYTES,
        "{cached} bytes in the late query node's read cache"
    );
    drop((a, b, d));
    cluster.remove().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_refuses_exports_as_retryable_naming_the_queue() {
    let cluster = Cluster::new("full");
    let dir = tempfile::tempdir().expect("temp dir");
    let mut flags = cluster.flags("ingest");
    // No index node takes anything out: the stream fills at 64 KiB.
    flags.extend(["--queue-max-bytes".to_string(), "65536".to_string()]);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let a = Server::start_with_env(&dir.path().join("a"), &flags, &common::s3::ENV);
    let http = reqwest::Client::new();
    let mut acked = 0;
    let refusal = loop {
        let bodies: Vec<String> = (0..50)
            .map(|i| format!("filling line {i} {acked}"))
            .collect();
        let request = common::otlp::logs("full", "fill", &bodies);
        let response = http
            .post(format!("{}/v1/logs", a.otlp_http))
            .header("content-type", "application/x-protobuf")
            .body(prost::Message::encode_to_vec(&request))
            .send()
            .await
            .expect("answer");
        if response.status() != 200 {
            break response;
        }
        acked += 1;
        assert!(
            acked < 10_000,
            "the stream's byte bound never refused an export"
        );
    };
    assert!(acked > 0, "exports were taken before the bound");
    assert_eq!(refusal.status(), 503, "retryable");
    let message = refusal.text().await.unwrap_or_default();
    assert!(
        message.contains("queue"),
        "the refusal names the queue: {message}"
    );
    drop(a);
    cluster.remove().await;
}
