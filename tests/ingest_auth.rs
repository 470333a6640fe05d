//! API keys on OTLP ingest: from the first key on, exports need one (HTTP 401 / gRPC
//! UNAUTHENTICATED without), each key has its own rate limit (HTTP 429 + Retry-After / gRPC
//! RESOURCE_EXHAUSTED with RetryInfo), and keys created or revoked with `sightline apikey`
//! apply to a running server.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::otlp::logs;
use common::Server;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use prost::Message;

fn apikey(data: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_sightline"))
        .arg("apikey")
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

async fn post(server: &Server, key: Option<&str>, records: usize) -> reqwest::Response {
    let bodies: Vec<String> = (0..records)
        .map(|i| format!("authorized line {i}"))
        .collect();
    let mut request = reqwest::Client::new()
        .post(format!("{}/v1/logs", server.otlp_http))
        .header("content-type", "application/x-protobuf")
        .body(logs("keyed", "k-1", &bodies).encode_to_vec());
    if let Some(key) = key {
        request = request.header("authorization", format!("Bearer {key}"));
    }
    request.send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_need_a_valid_key_within_its_rate() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let key = apikey(&data, &["create", "ci"]);
    let slow = apikey(&data, &["create", "slow", "--records-per-second", "100"]);
    assert!(key.starts_with("sl_") && key.len() > 40, "{key}");
    let listed = apikey(&data, &["list"]);
    assert!(listed.contains("ci") && listed.contains("100 records/s") && !listed.contains(&key));
    let server = Server::start(&data);

    // OTLP/HTTP: no key, a wrong key, a malformed header, the right key.
    let r = post(&server, None, 1).await;
    assert_eq!(r.status(), 401);
    assert!(r.text().await.unwrap().contains("API key is required"));
    assert_eq!(post(&server, Some("sl_wrong"), 1).await.status(), 401);
    let r = reqwest::Client::new()
        .post(format!("{}/v1/logs", server.otlp_http))
        .header("content-type", "application/x-protobuf")
        .header("authorization", key.clone())
        .body(logs("keyed", "k", &["x".to_string()]).encode_to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "a key without `Bearer` is refused");
    assert_eq!(post(&server, Some(&key), 10).await.status(), 200);

    // OTLP/gRPC: metadata `authorization: Bearer …`.
    let channel = tonic::transport::Endpoint::from_shared(server.otlp_grpc.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = LogsServiceClient::new(channel);
    let request = logs("keyed", "k-2", &["over grpc".to_string()]);
    let err = client.export(request.clone()).await.expect_err("no key");
    assert_eq!(err.code(), tonic::Code::Unauthenticated, "{err:?}");
    let mut with_key = tonic::Request::new(request.clone());
    with_key
        .metadata_mut()
        .insert("authorization", format!("Bearer {key}").parse().unwrap());
    client
        .export(with_key)
        .await
        .expect("a valid key over gRPC");

    // The slow key: a full second's allowance passes, the next export right after does not.
    assert_eq!(post(&server, Some(&slow), 150).await.status(), 200);
    let r = post(&server, Some(&slow), 150).await;
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    let mut over = tonic::Request::new(request);
    over.metadata_mut()
        .insert("authorization", format!("Bearer {slow}").parse().unwrap());
    let err = client.export(over).await.expect_err("over the rate");
    assert_eq!(err.code(), tonic::Code::ResourceExhausted, "{err:?}");
    // The other key is not slowed down by it.
    assert_eq!(post(&server, Some(&key), 500).await.status(), 200);

    // Everything acknowledged is stored.
    server
        .wait_for("/api/v1/logs?q=service:keyed&limit=1000", |b| {
            b["logs"]
                .as_array()
                .is_some_and(|l| l.len() == 10 + 1 + 150 + 500)
        })
        .await;

    // Revoked while running: refused within seconds.
    apikey(&data, &["revoke", "ci"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while post(&server, Some(&key), 1).await.status() != 401 {
        assert!(Instant::now() < deadline, "the revoked key still works");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    server.stop();

    // With keys, the OTLP ports may listen on every interface (the UI stays on loopback).
    assert!(
        common::starts_with_args(
            &data,
            &[
                "--http-addr",
                "127.0.0.1:0",
                "--otlp-grpc-addr",
                "127.0.0.1:0",
                "--otlp-http-addr",
                "0.0.0.0:0"
            ]
        ),
        "public OTLP with API keys needs no --insecure"
    );
}
