//! Three times the sustainable rate for a minute: the server stays up, its resident memory
//! stays under `--max-rss-bytes`, the excess is refused as retryable, and every acknowledged
//! record is stored. `SIGHTLINE_OVERLOAD_SECS` shortens the minute for local runs.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::demo::page;
use common::otlp::logs;
use common::{rss_of, Server};
use prost::Message;
use regex::Regex;

const LIMIT: u64 = 384 << 20;
const BATCH: usize = 200;

#[derive(Default)]
struct Counts {
    acked: AtomicU64,
    refused: AtomicU64,
    failed: AtomicU64,
}

async fn send_batch(http: &reqwest::Client, url: &str, n: u64, counts: &Counts) {
    let bodies: Vec<String> = (0..BATCH)
        .map(|i| {
            format!(
                "overload record {n} {i} checkout accepted for customer {}",
                i * 7
            )
        })
        .collect();
    let body = logs("overload", &format!("ov-{n}"), &bodies).encode_to_vec();
    match http
        .post(url)
        .header("content-type", "application/x-protobuf")
        .body(body)
        .send()
        .await
    {
        Ok(r) if r.status() == 200 => {
            counts.acked.fetch_add(BATCH as u64, Ordering::Relaxed);
        }
        Ok(r) if r.status() == 503 || r.status() == 429 => {
            assert!(
                r.headers().contains_key("retry-after"),
                "refusals say when to retry"
            );
            counts.refused.fetch_add(BATCH as u64, Ordering::Relaxed);
        }
        _ => {
            counts.failed.fetch_add(BATCH as u64, Ordering::Relaxed);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_times_the_sustainable_rate_for_a_minute() {
    let secs: u64 = std::env::var("SIGHTLINE_OVERLOAD_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let dir = tempfile::tempdir().unwrap();
    let limit = LIMIT.to_string();
    let server = Server::start_with(
        &dir.path().join("data"),
        &["--max-rss-bytes", &limit, "--flush-rows", "50000"],
    );
    let pid = server.pid();
    let url = format!("{}/v1/logs", server.otlp_http);
    let http = reqwest::Client::new();

    // What the server sustains: four closed-loop senders for five seconds.
    let probe = Arc::new(Counts::default());
    let until = Instant::now() + Duration::from_secs(5);
    let mut workers = Vec::new();
    for w in 0..4u64 {
        let (http, url, probe) = (http.clone(), url.clone(), probe.clone());
        workers.push(tokio::spawn(async move {
            let mut n = w << 40;
            while Instant::now() < until {
                send_batch(&http, &url, n, &probe).await;
                n += 1;
            }
        }));
    }
    for w in workers {
        w.await.unwrap();
    }
    let sustainable = probe.acked.load(Ordering::Relaxed) as f64 / 5.0;
    assert!(sustainable > 0.0);

    // Three times that, open loop (each batch leaves on schedule whatever the answers).
    let offered_rate = 3.0 * sustainable;
    let interval = Duration::from_secs_f64(BATCH as f64 / offered_rate);
    let counts = Arc::new(Counts::default());
    let peak = Arc::new(AtomicU64::new(0));
    let sampling = {
        let peak = peak.clone();
        tokio::spawn(async move {
            loop {
                peak.fetch_max(rss_of(pid, "VmRSS:"), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    let in_flight = Arc::new(tokio::sync::Semaphore::new(512));
    let started = Instant::now();
    let mut tasks = Vec::new();
    let mut n = 1u64 << 50;
    while started.elapsed() < Duration::from_secs(secs) {
        let permit = in_flight.clone().acquire_owned().await.unwrap();
        let (http, url, counts) = (http.clone(), url.clone(), counts.clone());
        tasks.push(tokio::spawn(async move {
            send_batch(&http, &url, n, &counts).await;
            drop(permit);
        }));
        n += 1;
        let due = started + interval * (n - (1u64 << 50)) as u32;
        tokio::time::sleep_until(due.into()).await;
    }
    for t in tasks {
        t.await.unwrap();
    }
    sampling.abort();
    let (acked, refused, failed) = (
        counts.acked.load(Ordering::Relaxed),
        counts.refused.load(Ordering::Relaxed),
        counts.failed.load(Ordering::Relaxed),
    );
    let peak_rss = peak.load(Ordering::Relaxed).max(rss_of(pid, "VmHWM:"));
    eprintln!(
        "overload: sustainable {sustainable:.0} records/s, offered {offered_rate:.0}/s for {secs} s; \
         acknowledged {acked}, refused {refused}, failed {failed}; peak RSS {} MiB of {} MiB",
        peak_rss >> 20,
        LIMIT >> 20
    );
    let metrics = reqwest::get(format!("{}/metrics", server.api))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in metrics
        .lines()
        .filter(|l| l.contains("refused") && !l.starts_with('#'))
    {
        eprintln!("overload: {line}");
    }
    let health = reqwest::get(format!("{}/healthz", server.api))
        .await
        .unwrap();
    assert_eq!(health.status(), 200, "the server is still up");
    assert_eq!(failed, 0, "every export got an answer");
    assert!(
        refused > 0,
        "three times the sustainable rate must be refused in part"
    );
    assert!(
        peak_rss <= LIMIT,
        "peak RSS {peak_rss} over the limit {LIMIT}"
    );

    // Every acknowledged record is stored, once.
    let total = Regex::new(r"(\d+) matching records").unwrap();
    let expected = acked + probe.acked.load(Ordering::Relaxed);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, html) = page(&server, "/logs?q=service:overload&range=1h").await;
        assert_eq!(status, 200);
        let stored: u64 = total.captures(&html).unwrap()[1].parse().unwrap();
        if stored == expected {
            break;
        }
        assert!(
            stored <= expected,
            "stored {stored} > acknowledged {expected}"
        );
        assert!(
            Instant::now() < deadline,
            "stored {stored} of {expected} acknowledged"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Close the pooled connections, so the graceful stop does not wait on them.
    drop(http);
    server.stop();
}
