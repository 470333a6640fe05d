//! The live demo: `serve --demo` keeps the shop's traffic going after the recorded hour, so
//! records newer than the server's start keep arriving (live tail moves, instances stay up).
//! (`--demo-frozen`, the recorded hour only, is what every other demo test runs on.)

mod common;

use std::time::Duration;

use common::Server;
use serde_json::Value;

/// Times of the log records of `answer` (newest first).
fn times(answer: &Value) -> Vec<i64> {
    answer["logs"]
        .as_array()
        .map(|logs| {
            logs.iter()
                .filter_map(|l| l["time_unix_nano"].as_i64())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn the_demo_keeps_sending_after_the_recorded_hour() {
    let dir = tempfile::tempdir().unwrap();
    let started = common::otlp::now_ns() as i64;
    let server = Server::start_with(&dir.path().join("data"), &["--demo"]);
    // Log records (each checkout logs as it answers) with times after the server started.
    let since = |t: i64| format!("/api/v1/logs?q=&start={t}&limit=1000");
    let first = server
        .wait_for_within(&since(started), Duration::from_secs(60), |a| {
            !times(a).is_empty()
        })
        .await;
    let newest = times(&first)[0];
    assert!(
        newest >= started,
        "a record from before the start: {newest} < {started}"
    );
    // And it goes on: later records follow the first ones.
    let later = server
        .wait_for_within(&since(newest + 1), Duration::from_secs(60), |a| {
            !times(a).is_empty()
        })
        .await;
    assert!(times(&later).iter().all(|t| *t > newest));
    // The shop's services keep being seen (their instances stay up).
    let seen_since_start = |answer: &Value| {
        let services = answer["services"].as_array().cloned().unwrap_or_default();
        ["frontend", "checkout", "payment", "inventory"]
            .iter()
            .all(|name| {
                services.iter().any(|s| {
                    s["name"] == *name && s["last_seen_unix_nano"].as_i64().unwrap_or(0) >= started
                })
            })
    };
    server
        .wait_for_within(
            "/api/v1/services",
            Duration::from_secs(90),
            seen_since_start,
        )
        .await;
}
