//! `sightline reindex` rebuilds a lost index from Parquet; a server never deletes data
//! because its index is missing.

mod common;

use std::process::Command;

use common::otlp::{logs, span, traces};
use common::Server;
use prost::Message;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_index_is_rebuilt_from_parquet() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data);
    let trace_id: Vec<u8> = (40..56).collect();
    for (path, body) in [
        (
            "/v1/traces",
            traces(
                "vault",
                vec![span(trace_id.clone(), vec![1; 8], "GET /vault")],
            )
            .encode_to_vec(),
        ),
        (
            "/v1/logs",
            logs("vault", "corr-9", &["opened the vault".to_string()]).encode_to_vec(),
        ),
    ] {
        let r = server.post_protobuf(path, body).await;
        assert_eq!(r.status(), 200);
    }
    server.stop();

    std::fs::remove_dir_all(data.join("index")).unwrap();
    let start = Command::new(env!("CARGO_BIN_EXE_sightline"))
        .args([
            "serve",
            "--http-addr",
            "127.0.0.1:0",
            "--otlp-grpc-addr",
            "127.0.0.1:0",
            "--otlp-http-addr",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        !start.status.success(),
        "a server must not start (and delete data) without its index"
    );
    assert!(String::from_utf8_lossy(&start.stderr).contains("sightline reindex"));

    let out = Command::new(env!("CARGO_BIN_EXE_sightline"))
        .args(["reindex", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("reindexed"));

    let server = Server::start(&data);
    let (status, trace) = server
        .get(&format!("/api/v1/traces/{}", hex::encode(&trace_id)))
        .await;
    assert_eq!(status, 200);
    assert_eq!(trace["spans"].as_array().unwrap().len(), 1);
    let (_, found) = server.get("/api/v1/logs?q=vault").await;
    assert_eq!(found["logs"].as_array().unwrap().len(), 1);
    let (_, overview) = server.get("/api/v1/services").await;
    assert_eq!(
        overview["services"][0]["name"], "vault",
        "the service list comes back too"
    );
    server.stop();
}
