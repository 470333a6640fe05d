//! Disk budget: at the budget, exports are refused as retryable with a clear message and a
//! log line, queries keep working, and exports resume when space returns.

mod common;

use std::time::{Duration, Instant};

use common::otlp::logs;
use common::Server;

async fn post(server: &Server) -> (u16, String) {
    let r = reqwest::Client::new()
        .post(format!("{}/v1/logs", server.otlp_http))
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&logs("disk", "d", &["hello".to_string()])).unwrap())
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn wait_for_status(server: &Server, want: u16) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = post(server).await;
        if status == want {
            return body;
        }
        assert!(Instant::now() < deadline, "still {status}: {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn budget_refuses_exports_until_space_returns() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let ballast = data.join("ballast.bin");
    std::fs::write(&ballast, vec![0u8; 400_000]).unwrap();
    let server = Server::start_with(&data, &["--disk-budget-bytes", "300000"]);

    let body = wait_for_status(&server, 503).await;
    assert!(body.contains("disk budget reached"), "{body}");
    let (status, _) = server.get("/api/v1/services").await;
    assert_eq!(status, 200, "queries keep working");

    std::fs::remove_file(&ballast).unwrap();
    wait_for_status(&server, 200).await;
    let (_, found) = server.get("/api/v1/logs?q=service:disk").await;
    assert!(!found["logs"].as_array().unwrap().is_empty());
    server.stop();
    let log = std::fs::read_to_string(data.with_extension("log")).unwrap();
    assert!(log.contains("disk budget reached") && log.contains("below the disk budget again"));
}
