//! A corrupt Parquet file is quarantined with a logged error while the rest stays queryable.

mod common;

use common::otlp::logs;
use common::{parquet_files, Server};
use prost::Message;

async fn send(server: &Server, body: &str) {
    let r = server
        .post_protobuf(
            "/v1/logs",
            logs("vault", "c", &[body.to_string()]).encode_to_vec(),
        )
        .await;
    assert_eq!(r.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_file_is_quarantined_and_the_rest_stays_queryable() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data);
    send(&server, "first batch").await;
    server.stop();
    let first = parquet_files(&data.join("store/logs"));
    assert_eq!(first.len(), 1);
    let server = Server::start(&data);
    send(&server, "second batch").await;
    server.stop();

    // Damage the first file in the middle (its footer still parses, its pages do not).
    let mut bytes = std::fs::read(&first[0]).unwrap();
    let mid = bytes.len() / 3;
    for b in &mut bytes[mid..mid + 64] {
        *b ^= 0x5a;
    }
    std::fs::write(&first[0], bytes).unwrap();

    let server = Server::start(&data);
    for _ in 0..2 {
        let (status, found) = server.get("/api/v1/logs?q=service:vault").await;
        assert_eq!(status, 200, "{found}");
        let bodies: Vec<&str> = found["logs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["body"].as_str().unwrap())
            .collect();
        assert_eq!(bodies, ["second batch"]);
    }
    // The quarantine task moves the file the queries reported.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while first[0].exists() && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(!first[0].exists(), "moved away");
    let quarantined = parquet_files(&data.join("store/quarantine"));
    assert_eq!(quarantined.len(), 1);
    server.stop();
    let log = std::fs::read_to_string(data.with_extension("log")).unwrap();
    assert!(log.contains("corrupt Parquet file"), "an error is logged");
    // The quarantined file survives restarts (it is not taken for a crash leftover).
    let server = Server::start(&data);
    assert_eq!(parquet_files(&data.join("store/quarantine")).len(), 1);
    server.stop();
}
