//! Acceptance: nothing acknowledged is lost — not on SIGKILL right after the ack, not with a
//! torn WAL tail, not across a clean restart.

mod common;

use common::otlp::{logs, span, traces};
use common::{enc, Server};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use prost::Message;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_right_after_ack_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // A long flush age: at the kill, the batch lives only in the WAL.
    let server = Server::start_with(&data, &["--flush-age-ms", "600000"]);
    let corr = "crash-batch";
    let bodies: Vec<String> = (0..500)
        .map(|i| format!("line {i} of the batch that must survive"))
        .collect();
    let request = logs("ledger", corr, &bodies);
    let response = server
        .post_protobuf("/v1/logs", request.encode_to_vec())
        .await;
    assert_eq!(response.status(), 200);

    // The same over gRPC with a real tonic client.
    let trace_id: Vec<u8> = (1..=16).collect();
    let mut client = TraceServiceClient::connect(server.otlp_grpc.clone())
        .await
        .unwrap();
    let spans = (1..=20u8)
        .map(|i| span(trace_id.clone(), vec![i; 8], &format!("step {i}")))
        .collect();
    client.export(traces("ledger", spans)).await.unwrap();
    drop(client);
    server.kill9();

    let server = Server::start(&data);
    let found = server
        .get(&format!(
            "/api/v1/logs?limit=1000&q={}",
            enc(&format!("correlation_id:{corr}"))
        ))
        .await
        .1;
    assert_eq!(
        found["logs"].as_array().unwrap().len(),
        500,
        "every acknowledged log record"
    );
    let (status, trace) = server
        .get(&format!("/api/v1/traces/{}", hex::encode(&trace_id)))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        trace["spans"].as_array().unwrap().len(),
        20,
        "every acknowledged span"
    );

    // After a clean stop (which flushes to Parquet) and another start, nothing is doubled.
    server.stop();
    let server = Server::start(&data);
    let again = server
        .get(&format!(
            "/api/v1/logs?limit=1000&q={}",
            enc(&format!("correlation_id:{corr}"))
        ))
        .await
        .1;
    assert_eq!(again["logs"].as_array().unwrap().len(), 500);
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn torn_wal_tail_is_truncated_and_the_server_starts() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start_with(&data, &["--flush-age-ms", "600000"]);
    let request = logs("ledger", "torn", &["kept before the tear".to_string()]);
    let response = reqwest::Client::new()
        .post(format!("{}/v1/logs", server.otlp_http))
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&request).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    server.kill9();

    // A crash in the middle of the next append: a header promising more bytes than follow.
    let wal = data.join("wal");
    let mut segments: Vec<_> = std::fs::read_dir(&wal)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    segments.sort();
    let last = segments
        .iter()
        .rev()
        .find(|p| std::fs::metadata(p).unwrap().len() > 0)
        .unwrap()
        .clone();
    let before = std::fs::metadata(&last).unwrap().len();
    let mut bytes = std::fs::read(&last).unwrap();
    bytes.extend_from_slice(&[200, 0, 0, 0, 1, 2, 3, 4, 2, b'x', b'y']);
    std::fs::write(&last, bytes).unwrap();

    let server = Server::start(&data);
    assert_eq!(
        std::fs::metadata(&last).map(|m| m.len()).unwrap_or(before),
        before,
        "tail truncated"
    );
    let found = server.get("/api/v1/logs?q=tear").await.1;
    assert_eq!(found["logs"].as_array().unwrap().len(), 1);
    let log = std::fs::read_to_string(data.with_extension("log")).unwrap();
    assert!(log.contains("torn or corrupt tail"), "a warning is logged");
    server.stop();
}
