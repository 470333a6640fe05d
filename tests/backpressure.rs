//! Backpressure: more load than the server takes is refused as retryable (HTTP 503 with
//! Retry-After) instead of queueing without bound, and every acknowledged record is stored.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::otlp::logs;
use common::Server;
use prost::Message;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overload_is_refused_retryably_and_nothing_acknowledged_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    // A 64 KiB in-flight budget: a few concurrent 20 KB exports already exceed it.
    let server = Server::start_with(
        &dir.path().join("data"),
        &["--inflight-bytes", "65536", "--flush-rows", "2000"],
    );
    let acked = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let body = "x".repeat(400);
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut workers = Vec::new();
    for w in 0..12u64 {
        let (url, acked, refused, body) = (
            format!("{}/v1/logs", server.otlp_http),
            acked.clone(),
            refused.clone(),
            body.clone(),
        );
        workers.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut n = 0u64;
            while Instant::now() < deadline {
                let bodies: Vec<String> = (0..50).map(|i| format!("{body} {w} {n} {i}")).collect();
                let request = logs("bp", &format!("bp-{w}-{n}"), &bodies).encode_to_vec();
                let r = http
                    .post(&url)
                    .header("content-type", "application/x-protobuf")
                    .body(request)
                    .send()
                    .await
                    .unwrap();
                match r.status().as_u16() {
                    200 => {
                        acked.fetch_add(50, Ordering::Relaxed);
                    }
                    503 => {
                        assert_eq!(
                            r.headers().get("retry-after").map(|v| v.to_str().unwrap()),
                            Some("1")
                        );
                        refused.fetch_add(1, Ordering::Relaxed);
                    }
                    other => panic!("unexpected status {other}"),
                }
                n += 1;
            }
        }));
    }
    for w in workers {
        w.await.unwrap();
    }
    let (acked, refused) = (
        acked.load(Ordering::Relaxed),
        refused.load(Ordering::Relaxed),
    );
    assert!(refused > 0, "the overload was refused at least once");
    assert!(acked > 0, "and work still got through");
    // Every acknowledged record is stored, after a restart too.
    server.stop();
    let server = Server::start(&dir.path().join("data"));
    // Count through the pages of the log search.
    let mut stored = 0u64;
    let mut cursor: Option<String> = None;
    loop {
        let page = match &cursor {
            Some(c) => format!("/api/v1/logs?q=service:bp&limit=10000&before={c}"),
            None => "/api/v1/logs?q=service:bp&limit=10000".to_string(),
        };
        let (_, found) = server.get(&page).await;
        stored += found["logs"].as_array().unwrap().len() as u64;
        match found["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(
        stored, acked,
        "acknowledged {acked}, refused {refused} exports"
    );
    server.stop();
}
