//! Cluster mode on loopback: three nodes — ingest+query, ingest+index, index+query — around a
//! real NATS JetStream, PostgreSQL and S3-compatible server (`tests/common/cluster.rs`).
//! What the real OpenTelemetry SDK exporters send to either ingest node is queryable from
//! both query nodes; `kill -9` of an index node mid-stream and of an ingest node after its
//! acknowledgements loses and doubles nothing (the crash harness's counting).

mod common;

use std::time::{Duration, Instant, SystemTime};

use common::alerts::{received, receiver, requests};
use common::cluster::Cluster;
use common::crash::{count_per_batch, post_batch, Tally};
use common::notebook::send_json;
use common::otlp::now_ns;
use common::proxy::Proxy;
use common::s3::READ_CACHE_BYTES;
use common::{add_user_in, enc, Server};
use opentelemetry::logs::{AnyValue, LogRecord, Logger, LoggerProvider};
use opentelemetry::trace::{Span, SpanKind, TraceContextExt, Tracer, TracerProvider};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{LogExporter, Protocol, SpanExporter, WithExportConfig};
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use serde_json::json;

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
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_refuses_exports_as_retryable_naming_the_queue() {
    let mut cluster = Cluster::new("full");
    // No index node takes anything out: the stream fills at 64 KiB.
    cluster.queue_max_bytes = 65_536;
    let dir = tempfile::tempdir().expect("temp dir");
    let flags = cluster.flags("ingest");
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
}

/// Polls `node`'s self-metric `name` until `ready` holds; returns its value.
async fn metric_until(node: &Server, name: &str, ready: impl Fn(f64) -> bool) -> f64 {
    let deadline = Instant::now() + VISIBLE_WITHIN;
    loop {
        let value = node.metric(name).await;
        if ready(value) {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "{name} stayed at {value} on {}",
            node.api
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn metadata_logins_and_alerting_are_shared_by_the_cluster() {
    let cluster = Cluster::new("meta");
    let dir = tempfile::tempdir().expect("temp dir");
    let fast = ["--alert-eval-secs", "1"];
    let (data_a, data_c) = (dir.path().join("a"), dir.path().join("c"));
    let a = cluster.start_with(&data_a, "ingest,query", &fast);
    let b = cluster.start_with(&dir.path().join("b"), "ingest,index", &fast);
    let c = cluster.start_with(&data_c, "index,query", &fast);

    // A view saved on one query node is listed on the other, where a name differing only in
    // case is refused as a duplicate (PostgreSQL compares names as SQLite's NOCASE does).
    let end = now_ns() as i64;
    let start = end - 3_600_000_000_000;
    let view = json!({"name": "Checkout errors", "url": "/logs?q=service%3Acheckout",
                      "start": start, "end": end, "tags": ["checkout"]});
    let (status, saved) = send_json(&a, "POST", "/api/v1/views", view.clone()).await;
    assert_eq!(status, 201, "{saved}");
    let (_, listed) = c.get("/api/v1/views").await;
    assert_eq!(listed["views"][0]["name"], "Checkout errors", "{listed}");
    let mut shouting = view;
    shouting["name"] = json!("CHECKOUT ERRORS");
    let (status, refused) = send_json(&c, "POST", "/api/v1/views", shouting).await;
    assert_eq!(status, 409, "{refused}");
    // An annotation made on C shows on A; a post-mortem written on A, with A's view, on C.
    let (status, note) = send_json(
        &c,
        "POST",
        "/api/v1/annotations",
        json!({"time": end - 60_000_000_000, "service": "checkout", "text": "checkout 2.4 rollout"}),
    )
    .await;
    assert_eq!(status, 201, "{note}");
    let (_, notes) = a
        .get(&format!("/api/v1/annotations?start={start}&end={end}"))
        .await;
    assert!(
        notes.to_string().contains("checkout 2.4 rollout"),
        "{notes}"
    );
    let (status, pm) = send_json(
        &a,
        "POST",
        "/api/v1/postmortems",
        json!({"title": "Checkout outage", "views": [{"view_id": saved["id"]}]}),
    )
    .await;
    assert_eq!(status, 201, "{pm}");
    let (_, pm) = c.get(&format!("/api/v1/postmortems/{}", pm["id"])).await;
    assert_eq!(pm["title"], "Checkout outage", "{pm}");
    assert_eq!(pm["views"][0]["view_name"], "Checkout errors", "{pm}");

    // An alert rule stored through C; spans with errors sent to B. One query node evaluates
    // (it holds the lease) and the receiver hears of the alert once.
    let (hook, inbox) = receiver().await;
    let (status, rule) = send_json(
        &c,
        "POST",
        "/api/v1/alert-rules",
        json!({"name": "shop errors", "kind": "error_rate", "service": "shop", "threshold": 0.2,
               "window_secs": 600, "for_secs": 0, "receivers": [{"webhook": hook}]}),
    )
    .await;
    assert_eq!(status, 201, "{rule}");
    assert_eq!(
        b.post_protobuf("/v1/traces", requests("shop", "shop-1", 10, 5, 1))
            .await
            .status(),
        200
    );
    let firing = received(&inbox, 1).await.remove(0);
    assert_eq!(firing["status"], "firing", "{firing}");
    let fingerprint = firing["alerts"][0]["fingerprint"].clone();
    let held_a = a.metric("sightline_alert_lease_held").await;
    let held_c = c.metric("sightline_alert_lease_held").await;
    assert_eq!(held_a + held_c, 1.0, "exactly one node holds the lease");
    let (leader, follower, follower_data) = if held_a == 1.0 {
        (a, c, data_c)
    } else {
        (c, a, data_a)
    };
    assert_eq!(b.metric("sightline_alert_evaluations_total").await, 0.0);
    let evaluated = leader.metric("sightline_alert_evaluations_total").await;
    metric_until(&leader, "sightline_alert_evaluations_total", |n| {
        n >= evaluated + 3.0
    })
    .await;
    assert_eq!(
        follower.metric("sightline_alert_evaluations_total").await,
        0.0,
        "the node without the lease never evaluates"
    );
    assert_eq!(inbox.lock().unwrap().len(), 1, "one message for one alert");

    // The evaluating node dies: the other takes the lease over and goes on from the shared
    // state — the firing alert is not announced again, and its resolution comes from there.
    leader.kill9();
    metric_until(&follower, "sightline_alert_lease_held", |v| v == 1.0).await;
    metric_until(&follower, "sightline_alert_evaluations_total", |n| n >= 3.0).await;
    assert_eq!(
        inbox.lock().unwrap().len(),
        1,
        "no second firing message after the takeover"
    );
    assert_eq!(
        b.post_protobuf("/v1/traces", requests("shop", "shop-1", 200, 0, 2))
            .await
            .status(),
        200
    );
    let resolved = received(&inbox, 2).await.remove(1);
    assert_eq!(resolved["status"], "resolved", "{resolved}");
    assert_eq!(resolved["alerts"][0]["fingerprint"], fingerprint);

    // A user added to the metastore logs in on one node; the session works on another.
    add_user_in(
        &["--metastore", &cluster.metastore()],
        "ana",
        "editor",
        "editor-password-1",
    );
    let restarted = cluster.start_with(&follower_data.with_file_name("restarted"), "query", &fast);
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let login = http
        .post(format!("{}/login", restarted.api))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("name=ANA&password=editor-password-1&next=%2F")
        .send()
        .await
        .expect("login");
    assert_eq!(login.status(), 303, "names compare without case");
    let cookie = login.headers()["set-cookie"]
        .to_str()
        .expect("cookie")
        .split(';')
        .next()
        .expect("name=value")
        .to_string();
    // The running node learns that logins are required at its next look at the users.
    let deadline = Instant::now() + VISIBLE_WITHIN;
    loop {
        let anonymous = http
            .get(format!("{}/api/v1/views", follower.api))
            .send()
            .await
            .expect("request");
        if anonymous.status() == 401 {
            break;
        }
        assert_eq!(anonymous.status(), 200);
        assert!(
            Instant::now() < deadline,
            "the user is not known on every node"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let signed_in = http
        .get(format!("{}/api/v1/views", follower.api))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("request");
    assert_eq!(signed_in.status(), 200, "a session from another node");

    // An API key made in the metastore is asked for by every ingest node from then on.
    let made = std::process::Command::new(env!("CARGO_BIN_EXE_sightline"))
        .args(["apikey", "create", "shop-exporter", "--metastore"])
        .arg(cluster.metastore())
        .output()
        .expect("sightline apikey create");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let deadline = Instant::now() + VISIBLE_WITHIN;
    loop {
        let status = b
            .post_protobuf("/v1/traces", requests("shop", "shop-1", 1, 0, 3))
            .await
            .status();
        if status == 401 {
            break;
        }
        assert_eq!(status, 200, "before the key table refreshes");
        assert!(
            Instant::now() < deadline,
            "B still takes exports without a key"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop((restarted, follower, b));
}

/// One log record of service `keeper` with `body`, stamped `age` ago, as OTLP protobuf.
fn keeper_log(body: &str, age: Duration) -> Vec<u8> {
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue as WireValue};
    use opentelemetry_proto::tonic::logs::v1::{LogRecord as WireRecord, ResourceLogs, ScopeLogs};
    use prost::Message;
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(opentelemetry_proto::tonic::resource::v1::Resource {
                attributes: vec![common::otlp::kv("service.name", "keeper")],
                ..Default::default()
            }),
            scope_logs: vec![ScopeLogs {
                log_records: vec![WireRecord {
                    time_unix_nano: now_ns() - age.as_nanos() as u64,
                    severity_number: 9,
                    body: Some(WireValue {
                        value: Some(any_value::Value::StringValue(body.into())),
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
}

/// The bodies of service `keeper`'s logs on `node`, sorted.
async fn keeper_bodies(node: &Server) -> Vec<String> {
    let (_, found) = node.get("/api/v1/logs?q=service:keeper").await;
    let mut bodies: Vec<String> = found["logs"]
        .as_array()
        .map(|logs| {
            logs.iter()
                .filter_map(|l| l["body"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    bodies.sort();
    bodies
}

/// Polls until `node` shows exactly `bodies` of service `keeper`.
async fn wait_for_bodies(node: &Server, bodies: &[&str]) {
    let deadline = Instant::now() + VISIBLE_WITHIN;
    loop {
        let now = keeper_bodies(node).await;
        if now == bodies {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} shows {now:?}, not {bodies:?}",
            node.api
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Parquet files in `folder` and below.
fn parquet_files_under(folder: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut todo = vec![folder.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                todo.push(path);
            } else if path.extension().is_some_and(|e| e == "parquet") {
                found.push(path);
            }
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn retention_takes_old_partitions_out_of_every_query_node_then_the_bucket() {
    let cluster = Cluster::new("retain");
    let dir = tempfile::tempdir().expect("temp dir");
    let a = cluster.start(&dir.path().join("a"), "ingest,query");
    // B keeps the default week of logs: a three-day-old record stays while B holds the lease.
    let b = cluster.start(&dir.path().join("b"), "index");
    let c = cluster.start(&dir.path().join("c"), "query");
    let day = Duration::from_secs(24 * 3600);
    for (body, age) in [("three days old", 3 * day), ("fresh", Duration::ZERO)] {
        assert_eq!(
            a.post_protobuf("/v1/logs", keeper_log(body, age))
                .await
                .status(),
            200
        );
    }
    for node in [&a, &c] {
        wait_for_bodies(node, &["fresh", "three days old"]).await;
    }
    let old_date =
        chrono::DateTime::from_timestamp_nanos((now_ns() - 3 * day.as_nanos() as u64) as i64)
            .format("date=%Y-%m-%d")
            .to_string();
    let logs = cluster.s3.folder(&cluster.prefix).join("logs");
    let old_files = || {
        parquet_files_under(&logs)
            .into_iter()
            .filter(|p| p.to_string_lossy().contains(&old_date))
            .count()
    };
    assert!(old_files() > 0, "the old partition is in the bucket");

    // An index node keeping one day takes the maintenance lease once B is gone: the old
    // partition leaves the catalog, then both query nodes, and after the grace time the bucket.
    b.stop();
    let d = cluster.start_with(
        &dir.path().join("d"),
        "index",
        &[
            "--retention-hours-logs",
            "24",
            "--retention-every-secs",
            "1",
        ],
    );
    for node in [&a, &c] {
        wait_for_bodies(node, &["fresh"]).await;
    }
    let removed = cluster
        .count("SELECT count(*) FROM catalog_removals WHERE path LIKE '%logs/%'")
        .await;
    assert!(removed > 0, "the removals feed lists the old files");
    assert_eq!(
        cluster
            .count(&format!(
                "SELECT count(*) FROM catalog_files WHERE path LIKE '%{old_date}%' AND signal = 'logs'"
            ))
            .await,
        0
    );
    // Past the grace time (the request time limit) the objects go too; the fresh ones stay.
    let deadline = Instant::now() + Duration::from_secs(90);
    while old_files() > 0 {
        assert!(
            Instant::now() < deadline,
            "the removed files are still in the bucket"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(
        cluster
            .count("SELECT count(*) FROM catalog_removals WHERE deleted_at IS NULL")
            .await,
        0,
        "every removal is marked deleted"
    );
    assert!(
        !parquet_files_under(&logs).is_empty(),
        "the fresh partition stays"
    );
    wait_for_bodies(&c, &["fresh"]).await;
    drop((a, c, d));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn compaction_swaps_files_in_the_catalog_without_a_record_lost_or_doubled() {
    let cluster = Cluster::new("compact");
    let dir = tempfile::tempdir().expect("temp dir");
    let a = cluster.start(&dir.path().join("a"), "ingest,query");
    // B compacts every five minutes (the default): the files stay small while they arrive.
    let b = cluster.start(&dir.path().join("b"), "index");
    let c = cluster.start(&dir.path().join("c"), "query");
    // Every record in one hour partition: half past the previous hour.
    let hour = 3_600_000_000_000u64;
    let stamp = now_ns() / hour * hour - hour / 2;
    let age = Duration::from_nanos(now_ns() - stamp);
    let log_files = "SELECT count(*) FROM catalog_files WHERE signal = 'logs' AND NOT compacted";
    let mut expected = Vec::new();
    for i in 0..6 {
        let body = format!("record {i}");
        let before = cluster.count(log_files).await;
        assert_eq!(
            a.post_protobuf("/v1/logs", keeper_log(&body, age))
                .await
                .status(),
            200
        );
        expected.push(body);
        // Each record in a file of its own: the next is sent once this one is registered.
        let deadline = Instant::now() + VISIBLE_WITHIN;
        while cluster.count(log_files).await == before {
            assert!(Instant::now() < deadline, "record {i} was not registered");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    expected.sort();
    let expected: Vec<&str> = expected.iter().map(String::as_str).collect();
    for node in [&a, &c] {
        wait_for_bodies(node, &expected).await;
    }

    // D compacts every second once B is gone: the six files become one in a catalog swap.
    b.stop();
    let d = cluster.start_with(
        &dir.path().join("d"),
        "index",
        &["--compaction-interval-secs", "1"],
    );
    let logs = cluster.s3.folder(&cluster.prefix).join("logs");
    let before = parquet_files_under(&logs).len();
    assert!(before >= 6, "{before} log files");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        // While the swap happens and after, both query nodes show every record once.
        for node in [&a, &c] {
            assert_eq!(keeper_bodies(node).await, expected, "on {}", node.api);
        }
        let merged = cluster
            .count("SELECT count(*) FROM catalog_files WHERE signal = 'logs' AND compacted")
            .await;
        let pending = cluster
            .count("SELECT count(*) FROM catalog_removals WHERE deleted_at IS NULL")
            .await;
        if merged == 1 && pending == 0 && parquet_files_under(&logs).len() < before {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no compaction: {merged} merged, {pending} pending"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(
        cluster.count(log_files).await,
        0,
        "every small file was merged"
    );
    assert_eq!(
        cluster
            .count("SELECT count(*) FROM catalog_removals WHERE replaced_by IS NOT NULL")
            .await,
        6
    );
    // The inputs are gone from the bucket: the query nodes read the merged file.
    assert_eq!(parquet_files_under(&logs).len(), before - 6 + 1);
    for node in [&a, &c] {
        assert_eq!(keeper_bodies(node).await, expected, "on {}", node.api);
    }
    drop((a, c, d));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_corrupt_file_leaves_the_catalog_and_every_query_node_and_is_kept_aside() {
    let cluster = Cluster::new("quarantine");
    let dir = tempfile::tempdir().expect("temp dir");
    let a = cluster.start(&dir.path().join("a"), "ingest,query");
    let _b = cluster.start(&dir.path().join("b"), "index");
    let c = cluster.start(&dir.path().join("c"), "query");
    let logs = cluster.s3.folder(&cluster.prefix).join("logs");
    assert_eq!(
        a.post_protobuf("/v1/logs", keeper_log("first batch", Duration::ZERO))
            .await
            .status(),
        200
    );
    for node in [&a, &c] {
        wait_for_bodies(node, &["first batch"]).await;
    }
    let first = parquet_files_under(&logs);
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(
        a.post_protobuf("/v1/logs", keeper_log("second batch", Duration::ZERO))
            .await
            .status(),
        200
    );
    for node in [&a, &c] {
        wait_for_bodies(node, &["first batch", "second batch"]).await;
    }

    // Damage the first file in the bucket (its footer still parses, its pages do not).
    let mut bytes = std::fs::read(&first[0]).expect("read the object");
    let mid = bytes.len() / 3;
    for b in &mut bytes[mid..mid + 64] {
        *b ^= 0x5a;
    }
    std::fs::write(&first[0], bytes).expect("write the object");

    // A and C hold its bytes in their read caches; D, a query node started now, reads them
    // from the bucket as it builds its index, meets the damage and reports it instead of
    // waiting on it forever. The file leaves the catalog, so A and C drop it too, and it is
    // moved under quarantine/ in the bucket, not deleted.
    let d = cluster.start(&dir.path().join("d"), "query");
    wait_for_bodies(&d, &["second batch"]).await;
    wait_for_bodies(&a, &["second batch"]).await;
    wait_for_bodies(&c, &["second batch"]).await;
    let quarantined = cluster.s3.folder(&cluster.prefix).join("quarantine");
    let deadline = Instant::now() + VISIBLE_WITHIN;
    while parquet_files_under(&quarantined).len() != 1 {
        assert!(
            Instant::now() < deadline,
            "the corrupt file was not moved aside"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!first[0].exists(), "moved, not copied");
    assert_eq!(
        cluster
            .count("SELECT count(*) FROM catalog_removals WHERE deleted_at IS NOT NULL AND replaced_by IS NULL")
            .await,
        1,
        "one settled removal: the purge never deletes a quarantined file"
    );
}
