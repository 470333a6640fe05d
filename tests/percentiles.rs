//! Percentiles never leave what was observed: a service whose requests all took 35.0 ms shows
//! 35.0 ms at p50, p95 and p99 (the histogram bucket's middle said 35.7 ms), and a p99 is never
//! above the slowest request (the bucket's bound said 2.72 s over spans of at most 2.538 s).

mod common;

use common::otlp::{span, traces};
use common::Server;
use prost::Message;

/// Server spans of `service` with the given durations (ms), each its own trace.
async fn send(server: &Server, service: &str, durations_ms: &[u64], seed: u8) {
    let spans = durations_ms
        .iter()
        .enumerate()
        .map(|(i, ms)| {
            let mut trace_id = vec![seed; 16];
            trace_id[..8].copy_from_slice(&(i as u64 + 1).to_be_bytes());
            let mut s = span(
                trace_id,
                vec![seed, 1, 2, 3, 4, 5, 6, i as u8 + 1],
                "GET /x",
            );
            s.end_time_unix_nano = s.start_time_unix_nano + ms * 1_000_000;
            s
        })
        .collect();
    let response = server
        .post_protobuf("/v1/traces", traces(service, spans).encode_to_vec())
        .await;
    assert_eq!(response.status(), 200);
}

/// p50, p95, p99 and request count of `service` over the last hour.
async fn percentiles(server: &Server, service: &str, requests: u64) -> [i64; 3] {
    let detail = server
        .wait_for(&format!("/api/v1/services/{service}"), |v| {
            v["overview"]["red"]["requests"].as_u64() == Some(requests)
        })
        .await;
    let red = &detail["overview"]["red"];
    ["p50_nano", "p95_nano", "p99_nano"].map(|p| red[p].as_i64().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn percentiles_stay_within_the_observed_durations() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));

    send(&server, "shipping", &[35; 40], 1).await;
    assert_eq!(
        percentiles(&server, "shipping", 40).await,
        [35_000_000; 3],
        "every request took 35.0 ms"
    );

    // Five slow requests of 2.538 s: p99 falls in their bucket, whose middle is 2.72 s.
    let mut payment: Vec<u64> = (0..95).map(|i| 10 + i % 5).collect();
    payment.extend([2_538; 5]);
    send(&server, "payment", &payment, 2).await;
    let [p50, _, p99] = percentiles(&server, "payment", 100).await;
    assert!(
        (2_400_000_000..=2_538_000_000).contains(&p99),
        "p99 {p99} not at the slow requests or above the slowest"
    );
    assert!(
        (10_000_000..=14_000_000).contains(&p50),
        "p50 {p50} outside the 10–14 ms the requests took"
    );
    server.stop();
}
