//! A burst of hostile requests against a server holding a million log records — a ten-year
//! window, a catastrophic regex, ten thousand OR terms, five thousand nested brackets, a
//! thousand live tails, wrong passwords in a loop — while an exporter keeps sending: every
//! request is answered within its limit with a clear status, ingest keeps being
//! acknowledged throughout, memory stays under the configured limit, and nothing stored is
//! lost.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use common::otlp::now_ns;
use common::{add_user, enc, fill_logs, loadgen_export, Server};
use sightline::api::grpc::proto::query_service_client::QueryServiceClient;
use sightline::api::grpc::proto::SearchLogsRequest;

/// Load-generator exports of 1 000 log records each: 1 000 of them is a million records.
const EXPORTS: u64 = 1_000;
const BATCH: usize = 1_000;
/// Records per export of the exporter that keeps sending during the burst.
const TRICKLE: usize = 100;
const SECOND: u64 = 1_000_000_000;
/// The server's memory limit (a debug build holding a million records).
const MAX_RSS: u64 = 3 << 30;
const USER: (&str, &str) = ("ops", "ops-password-1");

/// GETs `path` with the user's HTTP Basic credentials: status and body text.
async fn get(http: &reqwest::Client, server: &Server, path: &str) -> (u16, String) {
    let response = http
        .get(format!("{}{path}", server.api))
        .basic_auth(USER.0, Some(USER.1))
        .timeout(Duration::from_secs(60))
        .send()
        .await
        .expect("the server answers");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hostile_requests_are_answered_within_their_limits_while_ingest_goes_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    add_user(&data, USER.0, "viewer", USER.1);
    let server = Server::start_with(
        &data,
        &[
            "--flush-age-ms",
            "2000",
            "--max-rss-bytes",
            &MAX_RSS.to_string(),
        ],
    );
    let base = now_ns() - 20 * 60 * SECOND;
    fill_logs(&server, EXPORTS, BATCH, base).await;

    // An exporter that keeps sending small exports (event times 40 to 20 minutes ago, so they
    // never reach the future), retrying 503 as OTLP exporters do.
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicU64::new(0));
    let exporter = {
        let (stop, acked) = (stop.clone(), acked.clone());
        let url = format!("{}/v1/logs", server.otlp_http);
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut failures = Vec::new();
            let mut n = EXPORTS;
            while !stop.load(Ordering::Relaxed) {
                let body = loadgen_export("logs", n, TRICKLE, base - 20 * 60 * SECOND);
                let status = client
                    .post(&url)
                    .header("content-type", "application/x-protobuf")
                    .body(body)
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .unwrap_or(0);
                match status {
                    200 => {
                        acked.fetch_add(TRICKLE as u64, Ordering::Relaxed);
                        n += 1;
                    }
                    503 => {}
                    other => failures.push(other),
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            failures
        })
    };

    let http = reqwest::Client::new();
    let acked_before = acked.load(Ordering::Relaxed);

    // A ten-year window.
    let (status, body) = get(
        &http,
        &server,
        "/api/v1/logs?q=error&start=2016-01-01T00:00:00Z&end=2026-01-01T00:00:00Z",
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("--max-query-days"), "{body}");

    // A catastrophic regex (nested quantifiers) over the last hour: Rust's regex engine runs
    // in linear time, so it answers (or, if the scan outlasts the request limit, says so).
    let regex = enc(r#"{service_name=~".+"} |~ "(a+)+$""#);
    let (status, body) = get(
        &http,
        &server,
        &format!(
            "/loki/api/v1/query_range?query={regex}&limit=100&start={}&end={}",
            now_ns() - 3600 * SECOND,
            now_ns()
        ),
    )
    .await;
    assert!(
        status == 200 || (status == 503 && body.contains("took too long")),
        "{status} {body}"
    );

    // Ten thousand OR terms, through the gRPC query API (no URL could carry them).
    let terms: Vec<String> = (0..10_000).map(|i| format!("w{i}")).collect();
    let mut grpc = QueryServiceClient::connect(server.api.clone())
        .await
        .expect("gRPC query API");
    let mut request = tonic::Request::new(SearchLogsRequest {
        query: terms.join(" OR "),
        ..Default::default()
    });
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", USER.0, USER.1));
    request.metadata_mut().insert(
        "authorization",
        format!("Basic {basic}").parse().expect("metadata value"),
    );
    let refused = grpc
        .search_logs(request)
        .await
        .expect_err("ten thousand terms are refused");
    assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");
    assert!(refused.message().contains("at most"), "{refused:?}");

    // Five thousand nested brackets.
    let deep = format!("{}a{}", "(".repeat(5000), ")".repeat(5000));
    let (status, body) = get(&http, &server, &format!("/api/v1/logs?q={}", enc(&deep))).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("at most 64"), "{body}");

    // A thousand live tails from one logged-in browser: 64 stream, the rest are refused.
    let login = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
        .post(format!("{}/login", server.api))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("name={}&password={}&next=%2F", USER.0, USER.1))
        .send()
        .await
        .expect("login answered");
    let cookie = login
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .expect("a session cookie")
        .to_string();
    let tails: Vec<_> = (0..1000)
        .map(|_| {
            let (http, url, cookie) = (
                http.clone(),
                format!("{}/logs/tail?q=error", server.api),
                cookie.clone(),
            );
            tokio::spawn(async move {
                http.get(url)
                    .header("cookie", cookie)
                    .send()
                    .await
                    .expect("tail answered")
            })
        })
        .collect();
    let mut open = Vec::new();
    let mut refused = 0;
    for tail in tails {
        let response = tail.await.expect("task");
        match response.status().as_u16() {
            200 => open.push(response),
            429 => refused += 1,
            other => panic!("a live tail answered {other}"),
        }
    }
    assert_eq!((open.len(), refused), (64, 936), "64 tails stream at most");

    drop(open);

    // Ingest was acknowledged while all that went on, and never failed.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while acked.load(Ordering::Relaxed) <= acked_before {
        assert!(
            std::time::Instant::now() < deadline,
            "no export was acknowledged during the burst"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let failures = exporter.await.expect("exporter task");
    assert!(failures.is_empty(), "exports failed: {failures:?}");

    // Memory stayed under the limit.
    let peak = common::rss_of(server.pid(), "VmHWM:");
    assert!(
        peak > 0 && peak < MAX_RSS,
        "peak RSS {peak} B, limit {MAX_RSS} B"
    );

    // Nothing stored was lost: every acknowledged record is counted.
    let expected = EXPORTS * BATCH as u64 + acked.load(Ordering::Relaxed);
    let window = format!(
        "start={}&end={}",
        base - 45 * 60 * SECOND,
        now_ns() + 60 * SECOND
    );
    let (status, body) = get(
        &http,
        &server,
        &format!("/api/v1/logs/histogram?q=&{window}"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let total = serde_json::from_str::<serde_json::Value>(&body).expect("JSON")["total"]
        .as_u64()
        .unwrap_or(0);
    assert_eq!(
        total, expected,
        "records counted against records acknowledged"
    );
    // Wrong passwords in a loop: checked a few times, then refused before hashing.
    let mut statuses = std::collections::BTreeMap::new();
    for _ in 0..100 {
        let status = http
            .get(format!("{}/api/v1/services", server.api))
            .basic_auth(USER.0, Some("wrong-password"))
            .send()
            .await
            .expect("answered")
            .status()
            .as_u16();
        *statuses.entry(status).or_insert(0) += 1;
    }
    assert!(
        statuses.keys().all(|s| *s == 401 || *s == 429) && statuses.get(&429) >= Some(&80),
        "{statuses:?}"
    );

    // The user's session from this same address still works: no password check needed.
    let status = http
        .get(format!("{}/api/v1/services", server.api))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("answered")
        .status();
    assert_eq!(status, 200);
    server.stop();
}
