//! Operability and hardened responses: health and readiness, the server's own metrics in the
//! Prometheus format, security headers on every page, and a graceful stop within 10 s.

mod common;

use std::time::Instant;

use common::otlp::{logs, span, traces};
use common::Server;
use prost::Message;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_metrics_headers_and_graceful_stop() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    let http = reqwest::Client::new();
    for (path, want) in [("/healthz", "ok"), ("/readyz", "ready")] {
        let r = http
            .get(format!("{}{path}", server.api))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.text().await.unwrap(), want);
    }

    let bodies: Vec<String> = (0..7).map(|i| format!("line {i}")).collect();
    let r = server
        .post_protobuf("/v1/logs", logs("ops", "c-1", &bodies).encode_to_vec())
        .await;
    assert_eq!(r.status(), 200);
    let bad = traces(
        "ops",
        vec![
            span(vec![1; 3], vec![1; 8], "bad"),
            span(vec![9; 16], vec![2; 8], "good"),
        ],
    );
    let r = server
        .post_protobuf("/v1/traces", bad.encode_to_vec())
        .await;
    assert_eq!(r.status(), 200);

    let metrics = http
        .get(format!("{}/metrics", server.api))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("sightline_ingested_records_total{signal=\"logs\"} 7"),
        "{metrics}"
    );
    assert!(
        metrics.contains("sightline_ingested_records_total{signal=\"traces\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("sightline_rejected_records_total{signal=\"traces\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("sightline_wal_segment_bytes")
            && metrics.contains("sightline_http_request_seconds_count")
    );

    for path in ["/", "/traces", "/api/v1/services", "/nope"] {
        let r = http
            .get(format!("{}{path}", server.api))
            .send()
            .await
            .unwrap();
        let h = r.headers();
        let csp = h
            .get("content-security-policy")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        assert!(
            csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
            "{path}: {csp}"
        );
        let script_src = csp
            .split(';')
            .find(|d| d.trim().starts_with("script-src"))
            .unwrap_or("");
        assert!(
            !script_src.contains("unsafe-inline"),
            "no inline script allowed: {script_src}"
        );
        assert_eq!(
            h.get("x-content-type-options").unwrap(),
            "nosniff",
            "{path}"
        );
    }

    let stopping = Instant::now();
    server.stop();
    assert!(
        stopping.elapsed().as_secs_f64() < 10.0,
        "graceful stop took {:?}",
        stopping.elapsed()
    );
    // The stop flushed: nothing is left to replay.
    let wal: u64 = std::fs::read_dir(dir.path().join("data/wal"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert_eq!(wal, 0, "the final flush emptied the WAL");
}
